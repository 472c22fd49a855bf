"""Forecast scores: RMSE, MAE, MAPE, R2, NSE, KGE and skill, overall and per horizon step.

All point metrics take 1-D ``obs`` and ``pred`` of equal length (units of the variable, e.g. mg/L)
and ignore pairs where either value is NaN. They return a plain ``float`` (NaN when undefined:
no valid pairs, or a zero variance where one is divided by).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np

MetricFn = Callable[[np.ndarray, np.ndarray], float]


def _pairs(obs: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    o = np.asarray(obs, dtype=np.float64).ravel()
    p = np.asarray(pred, dtype=np.float64).ravel()
    if o.shape != p.shape:
        raise ValueError(f"obs and pred differ in length: {o.shape} vs {p.shape}")
    ok = np.isfinite(o) & np.isfinite(p)
    return o[ok], p[ok]


def rmse(obs: np.ndarray, pred: np.ndarray) -> float:
    """Root mean squared error (units of the variable)."""
    o, p = _pairs(obs, pred)
    return float(np.sqrt(np.mean((p - o) ** 2))) if o.size else math.nan


def mae(obs: np.ndarray, pred: np.ndarray) -> float:
    """Mean absolute error (units of the variable)."""
    o, p = _pairs(obs, pred)
    return float(np.mean(np.abs(p - o))) if o.size else math.nan


def mape(obs: np.ndarray, pred: np.ndarray) -> float:
    """Mean absolute percentage error, in percent.

    Points with ``|obs| < eps`` are excluded, where ``eps = 1e-6 + 0.01 * mean(|obs|)`` over the
    valid pairs (near-zero observations would otherwise dominate the mean).
    """
    o, p = _pairs(obs, pred)
    if not o.size:
        return math.nan
    eps = 1e-6 + 0.01 * float(np.mean(np.abs(o)))
    keep = np.abs(o) >= eps
    if not keep.any():
        return math.nan
    return float(100.0 * np.mean(np.abs(p[keep] - o[keep]) / np.abs(o[keep])))


def _pearson(o: np.ndarray, p: np.ndarray) -> float:
    if o.size < 2:
        return math.nan
    do, dp = o - o.mean(), p - p.mean()
    den = math.sqrt(float(np.sum(do**2)) * float(np.sum(dp**2)))
    return float(np.sum(do * dp)) / den if den > 0 else math.nan


def r2(obs: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination as the squared Pearson correlation of obs and pred (the
    hydrology convention; insensitive to bias and scale, unlike :func:`nse`)."""
    r = _pearson(*_pairs(obs, pred))
    return r * r if math.isfinite(r) else math.nan


def nse(obs: np.ndarray, pred: np.ndarray) -> float:
    """Nash-Sutcliffe efficiency ``1 - SSE / SST`` (SST about the observed mean); 1 is perfect,
    0 is no better than the observed mean."""
    o, p = _pairs(obs, pred)
    if not o.size:
        return math.nan
    sst = float(np.sum((o - o.mean()) ** 2))
    return 1.0 - float(np.sum((p - o) ** 2)) / sst if sst > 0 else math.nan


def kge(obs: np.ndarray, pred: np.ndarray) -> float:
    """Kling-Gupta efficiency (Gupta et al. 2009): ``1 - sqrt((r-1)^2 + (alpha-1)^2 + (beta-1)^2)``
    with ``r`` the Pearson correlation, ``alpha = std(pred)/std(obs)``, ``beta = mean(pred)/mean(obs)``."""
    o, p = _pairs(obs, pred)
    r = _pearson(o, p)
    so, mo = (float(np.std(o)), float(np.mean(o))) if o.size else (math.nan, math.nan)
    if not math.isfinite(r) or not so > 0 or mo == 0:
        return math.nan
    alpha = float(np.std(p)) / so
    beta = float(np.mean(p)) / mo
    return 1.0 - math.sqrt((r - 1.0) ** 2 + (alpha - 1.0) ** 2 + (beta - 1.0) ** 2)


METRICS: dict[str, MetricFn] = {"rmse": rmse, "mae": mae, "mape": mape, "r2": r2, "nse": nse, "kge": kge}


def score(obs: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """Score forecasts: ``obs`` and ``pred`` are ``(n_origins, H)`` (column ``h-1`` = step ``h``).

    Returns ``{metric: value at step H, ..., "n_points": valid pairs at step H,
    "per_step": {metric: [step 1, ..., step H], "n_points": [...]}}`` with plain floats / ints.
    """
    o = np.asarray(obs, dtype=np.float64)
    p = np.asarray(pred, dtype=np.float64)
    if o.ndim == 1 and p.ndim == 1:  # a single step: (n,) -> (n, 1)
        o, p = o[:, None], p[:, None]
    if o.shape != p.shape or o.ndim != 2 or o.shape[1] < 1:
        raise ValueError(f"obs and pred must both be (n_origins, H); got {o.shape} and {p.shape}")
    steps = range(o.shape[1])
    per_step: dict[str, list[Any]] = {name: [fn(o[:, h], p[:, h]) for h in steps] for name, fn in METRICS.items()}
    per_step["n_points"] = [int(np.sum(np.isfinite(o[:, h]) & np.isfinite(p[:, h]))) for h in steps]
    out: dict[str, Any] = {name: vals[-1] for name, vals in per_step.items()}
    out["per_step"] = per_step
    return out


def add_skill(scores: dict[str, dict[str, Any]], reference: str = "persistence") -> dict[str, dict[str, Any]]:
    """Add ``skill = 1 - RMSE / RMSE_reference`` at step H (``"skill"``) and per step
    (``per_step["skill"]``) to every model of ``{model: score(...)}``, in place; returns the same
    dict. The reference itself gets 0; NaN where undefined (e.g. reference RMSE of 0)."""
    if reference not in scores:
        raise KeyError(f"reference model {reference!r} not among the scores: {sorted(scores)}")
    ref = copy.deepcopy(scores[reference])
    out = scores

    def skill(value: float, ref_value: float) -> float:
        if not (math.isfinite(value) and math.isfinite(ref_value)) or ref_value == 0:
            return math.nan
        return 1.0 - value / ref_value

    ref_steps = ref.get("per_step", {}).get("rmse", [])
    for s in out.values():
        s["skill"] = skill(float(s["rmse"]), float(ref["rmse"]))
        if "per_step" in s:
            steps = s["per_step"].get("rmse", [])
            s["per_step"]["skill"] = [
                skill(float(v), float(ref_steps[i])) if i < len(ref_steps) else math.nan for i, v in enumerate(steps)
            ]
    return out


def add_best_baseline_skill(scores: dict[str, dict[str, Any]], baselines: tuple[str, ...]) -> str | None:
    """Add ``mse_skill_best_baseline = 1 - MSE / MSE_best`` at step H to every model, in place,
    where ``best`` is the baseline with the lowest RMSE at step H on these points (also stored as
    ``best_baseline``). Positive only for a model that beats every baseline; the daily cycle alone
    inflates NSE and skill against persistence, so this is the harder number. Returns ``best``."""
    finite = [b for b in baselines if b in scores and math.isfinite(float(scores[b]["rmse"]))]
    best = min(finite, key=lambda b: float(scores[b]["rmse"])) if finite else None
    ref = float(scores[best]["rmse"]) if best else math.nan
    for s in scores.values():
        r = float(s["rmse"])
        s["best_baseline"] = best
        s["mse_skill_best_baseline"] = 1.0 - (r / ref) ** 2 if math.isfinite(r) and ref > 0 else math.nan
    return best
