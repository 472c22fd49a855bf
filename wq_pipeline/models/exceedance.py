"""Threshold crossings: the probability that the target falls below (or rises above) a level.

A threshold is written ``COLUMN<VALUE`` or ``COLUMN>VALUE`` (``--threshold "DO_obs<2"``: hypoxia
at 2 mg/L). The probability at an origin and step comes from that forecast's quantiles
(:mod:`wq_pipeline.models.intervals`): the cumulative distribution interpolates the levels linearly
between the quantile values; beyond the outermost quantiles half of the tail's mass is assigned
(a value below the 2.5 % quantile gets P = 1.25 %), so no forecast claims certainty it was never
calibrated for.

Scores (:func:`exceedance_scores`): the Brier score per step and at H, its skill against
climatology's own probabilities, the base rate, a reliability table of the main model
(forecast probability in ten bins against the observed frequency), and the alerts it would have
raised at the run's alert level: hits, misses, false alarms, probability of detection and false
alarm ratio (:func:`alert_table`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wq_pipeline.options import Threshold, parse_threshold  # noqa: F401  (re-exported: station thresholds)

def crossing_probability(q: np.ndarray, levels: tuple[float, ...] | np.ndarray, threshold: Threshold) -> np.ndarray:
    """``P(y < value)`` (or ``> value``) from quantiles ``q (..., Q)`` at ``levels (Q,)``; NaN where
    a quantile is NaN. Shape ``q.shape[:-1]``."""
    lv = np.asarray(levels, dtype=np.float64)
    Q = np.asarray(q, dtype=np.float64)
    flat = Q.reshape(-1, lv.size)
    out = np.full(flat.shape[0], np.nan)
    ok = np.isfinite(flat).all(axis=1)
    x = threshold.value
    for i in np.flatnonzero(ok):
        qs = flat[i]
        if x < qs[0]:
            cdf = lv[0] / 2
        elif x > qs[-1]:
            cdf = 1.0 - (1.0 - lv[-1]) / 2
        else:
            # the largest level whose quantile is <= x, interpolated (ties: the upper level)
            cdf = float(np.interp(x, qs, lv))
        out[i] = cdf if threshold.op == "<" else 1.0 - cdf
    return out.reshape(Q.shape[:-1])


def crossed(obs: np.ndarray, threshold: Threshold) -> np.ndarray:
    """``obs`` crossed the threshold: 1.0 / 0.0, NaN where ``obs`` is NaN."""
    o = np.asarray(obs, dtype=np.float64)
    hit = (o < threshold.value) if threshold.op == "<" else (o > threshold.value)
    return np.where(np.isfinite(o), hit.astype(np.float64), np.nan)


def brier(p: np.ndarray, event: np.ndarray) -> float:
    """Mean ``(p - event)^2`` over pairs where both are finite."""
    p, e = np.asarray(p, dtype=np.float64).ravel(), np.asarray(event, dtype=np.float64).ravel()
    ok = np.isfinite(p) & np.isfinite(e)
    return float(np.mean((p[ok] - e[ok]) ** 2)) if ok.any() else float("nan")


def reliability(p: np.ndarray, event: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Forecast probability in ``bins`` equal bins: per non-empty bin its range, mean forecast
    probability, observed frequency and count."""
    p, e = np.asarray(p, dtype=np.float64).ravel(), np.asarray(event, dtype=np.float64).ravel()
    ok = np.isfinite(p) & np.isfinite(e)
    p, e = p[ok], e[ok]
    which = np.minimum((p * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        sel = which == b
        if sel.any():
            out.append({"from": b / bins, "to": (b + 1) / bins, "mean_probability": float(p[sel].mean()),
                        "observed_frequency": float(e[sel].mean()), "count": int(sel.sum())})
    return out


def alert_table(p: np.ndarray, event: np.ndarray, alert_level: float) -> dict[str, Any]:
    """How alerts at ``alert_level`` would have fared, per origin: an origin alerts when its
    probability ``p (n, H)`` reaches the level at any step, and had an event when the crossing was
    observed at any step of ``event (n, H)``. Origins with no observed step are left out. Counts,
    the probability of detection (hits / events) and the false alarm ratio (false alarms / alerts)."""
    p, e = np.asarray(p, dtype=np.float64), np.asarray(event, dtype=np.float64)
    ok = np.isfinite(e).any(axis=1) & np.isfinite(p).all(axis=1)
    alert = (np.nan_to_num(p[ok], nan=0.0) >= alert_level).any(axis=1)
    happened = (np.nan_to_num(e[ok], nan=0.0) > 0).any(axis=1)
    hits, misses = int((alert & happened).sum()), int((~alert & happened).sum())
    false_alarms = int((alert & ~happened).sum())
    return {"alert_level": float(alert_level), "origins": int(ok.sum()), "alerts": int(alert.sum()),
            "events": int(happened.sum()), "hits": hits, "misses": misses, "false_alarms": false_alarms,
            "pod": hits / (hits + misses) if hits + misses else None,
            "far": false_alarms / int(alert.sum()) if alert.any() else None}


def exceedance_scores(obs: np.ndarray, quantiles: dict[str, np.ndarray], levels: tuple[float, ...],
                      threshold: Threshold, main: str, alert_level: float = 0.5) -> dict[str, Any]:
    """For one threshold: every model's Brier score per step and at H on ``obs (n, H)`` from its
    quantiles ``(n, H, Q)``, the Brier skill against climatology's, the base rate, the main
    model's reliability table at step H, and how its alerts at ``alert_level`` would have fared
    (:func:`alert_table`)."""
    event = crossed(obs, threshold)
    probs = {name: crossing_probability(q, levels, threshold) for name, q in quantiles.items()}
    models = {}
    for name, p in probs.items():
        per_step = [brier(p[:, h], event[:, h]) for h in range(obs.shape[1])]
        models[name] = {"brier": per_step[-1], "brier_per_step": per_step}
    ref = models.get("climatology", {}).get("brier")
    for sc in models.values():
        sc["brier_skill_climatology"] = (1.0 - sc["brier"] / ref) if ref and np.isfinite(ref) and ref > 0 else None
    e_h = event[:, -1]
    return {"threshold": threshold.label, "base_rate": float(np.nanmean(e_h)) if np.isfinite(e_h).any() else None,
            "events": int(np.nansum(e_h)), "n_points": int(np.isfinite(e_h).sum()), "models": models,
            "reliability": reliability(probs[main][:, -1], e_h) if main in probs else [],
            "alerts": alert_table(probs[main], event, alert_level) if main in probs else None}
