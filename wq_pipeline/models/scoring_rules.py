"""Scores of quantile forecasts: CRPS, pinball loss, interval coverage, width and Winkler score.

Inputs are observations ``obs (n,)`` (units of the variable, NaN where none) and quantile
forecasts ``q (n, Q)`` at increasing ``levels (Q,)``; pairs with a NaN are left out.

**CRPS from the quantiles.** The forecast distribution is the one whose quantile function
interpolates the given quantiles linearly and is flat beyond the outermost levels (its tails
end at the 2.5 % and 97.5 % quantiles by default). Its CRPS is ``2 * integral_0^1 pinball_tau(y,
Q(tau)) d tau``, integrated on a fine grid of ``tau`` (midpoint rule, :data:`CRPS_GRID` points), which
for a dense set of levels converges to the CRPS of the underlying distribution (tested against
``properscoring.crps_gaussian``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

CRPS_GRID = 400


def _valid(obs: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    o = np.asarray(obs, dtype=np.float64).ravel()
    Q = np.asarray(q, dtype=np.float64).reshape(o.size, -1)
    ok = np.isfinite(o) & np.isfinite(Q).all(axis=1)
    return o[ok], Q[ok]


def pinball(obs: np.ndarray, q: np.ndarray, levels: np.ndarray) -> float:
    """Mean pinball (quantile) loss over pairs and levels (units of the variable)."""
    o, Q = _valid(obs, q)
    if o.size == 0:
        return float("nan")
    tau = np.asarray(levels, dtype=np.float64)[None, :]
    d = o[:, None] - Q
    return float(np.mean(np.maximum(tau * d, (tau - 1.0) * d)))


def quantile_function(q: np.ndarray, levels: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """``(n, T)``: the quantile forecasts ``q (n, Q)`` interpolated linearly at ``tau (T,)``
    (flat beyond the outermost levels)."""
    lv = np.asarray(levels, dtype=np.float64)
    k = np.clip(np.searchsorted(lv, tau, side="right") - 1, 0, lv.size - 2)
    a = np.clip((tau - lv[k]) / (lv[k + 1] - lv[k]), 0.0, 1.0)
    return q[:, k] * (1.0 - a)[None, :] + q[:, k + 1] * a[None, :]


def crps_values(obs: np.ndarray, q: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """CRPS of each valid pair ``(n_valid,)`` (see the module docstring)."""
    o, Q = _valid(obs, q)
    tau = (np.arange(CRPS_GRID) + 0.5) / CRPS_GRID
    qf = quantile_function(Q, levels, tau)
    d = o[:, None] - qf
    return 2.0 * np.mean(np.maximum(tau[None, :] * d, (tau[None, :] - 1.0) * d), axis=1)


def crps(obs: np.ndarray, q: np.ndarray, levels: np.ndarray) -> float:
    """Mean CRPS over valid pairs (units of the variable)."""
    v = crps_values(obs, q, levels)
    return float(v.mean()) if v.size else float("nan")


def interval_scores(obs: np.ndarray, lo: np.ndarray, hi: np.ndarray, nominal: float) -> dict[str, float]:
    """Coverage (fraction of ``obs`` in ``[lo, hi]``), mean width and mean Winkler (interval)
    score of a central ``nominal`` interval (e.g. 0.9)."""
    o = np.asarray(obs, dtype=np.float64).ravel()
    lo, hi = np.asarray(lo, dtype=np.float64).ravel(), np.asarray(hi, dtype=np.float64).ravel()
    ok = np.isfinite(o) & np.isfinite(lo) & np.isfinite(hi)
    o, lo, hi = o[ok], lo[ok], hi[ok]
    if o.size == 0:
        return {"coverage": float("nan"), "width": float("nan"), "winkler": float("nan"), "n_points": 0}
    alpha = 1.0 - nominal
    w = hi - lo
    winkler = w + (2.0 / alpha) * (np.maximum(lo - o, 0.0) + np.maximum(o - hi, 0.0))
    return {"coverage": float(np.mean((o >= lo) & (o <= hi))), "width": float(np.mean(w)),
            "winkler": float(np.mean(winkler)), "n_points": int(o.size)}


def quantile_scores(obs: np.ndarray, q: np.ndarray, levels: tuple[float, ...],
                    intervals: tuple[float, ...]) -> dict[str, Any]:
    """Scores of ``q (n, H, Q)`` against ``obs (n, H)``: per step (lists over ``1..H``) and at H:
    ``crps``, ``pinball``, and per central interval whose two levels are among ``levels``:
    ``coverage``, ``width``, ``winkler``."""
    lv = np.asarray(levels, dtype=np.float64)
    H = obs.shape[1]
    out: dict[str, Any] = {"crps_per_step": [], "pinball_per_step": []}
    for h in range(H):
        out["crps_per_step"].append(crps(obs[:, h], q[:, h, :], lv))
        out["pinball_per_step"].append(pinball(obs[:, h], q[:, h, :], lv))
    out["crps"], out["pinball"] = out["crps_per_step"][-1], out["pinball_per_step"][-1]
    out["intervals"] = {}
    for nominal in intervals:
        lo_q, hi_q = round((1 - nominal) / 2, 6), round(1 - (1 - nominal) / 2, 6)
        lo_i, hi_i = np.flatnonzero(np.isclose(lv, lo_q)), np.flatnonzero(np.isclose(lv, hi_q))
        if lo_i.size and hi_i.size:
            out["intervals"][f"{round(nominal * 100)}"] = interval_scores(obs[:, -1], q[:, -1, lo_i[0]],
                                                                         q[:, -1, hi_i[0]], nominal)
    med = np.flatnonzero(np.isclose(lv, 0.5))
    out["median_mae"] = float(np.nanmean(np.abs(obs[:, -1] - q[:, -1, med[0]]))) if med.size else None
    out["n_points"] = int(np.sum(np.isfinite(obs[:, -1]) & np.isfinite(q[:, -1, :]).all(axis=1)))
    return out
