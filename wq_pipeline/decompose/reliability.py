"""End-effect profile of a decomposer: how many end samples of a trailing window are unreliable.

Stepwise ("honest") forecasting decomposes only the trailing window ``x[t-L+1 .. t]`` of each
forecast origin ``t`` (:func:`wq_pipeline.models.protocol.stepwise_decompose`). Near the window's right
end a mode is distorted by the boundary: its value at ``t-d`` from the trailing window differs
from its value at the same time from a decomposition of a long stretch centred on ``t``, where
``t-d`` is far from both ends. :func:`end_effect_profile` measures that difference per channel
and per lag ``d`` (samples back from the origin), so one can read off from which lag on the
trailing-window modes are trustworthy.

Reference (centred) decomposition: ``x[t-h .. t+h]`` with ``h = centred_half`` (length
``2h+1``); it uses data after ``t`` and serves only as the "interior" value of each mode at
``t-d``. It is itself not the truth (its own ends are ``h-d`` and ``h+d`` samples away), so
``h`` should be well above the lags of interest.

Units: ``rmse`` is in the unit of ``values`` (e.g. mg/L); ``rel_error`` is dimensionless (the
RMS error divided by the RMS of the centred channel, which includes the channel's mean level,
so a channel carrying the series level -- a trend/residual or a lowest-frequency VMD mode --
gets a small ``rel_error`` for a given absolute error). Lags are in samples of the grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wq_pipeline.decompose.base import Decomposer

__all__ = ["EndEffects", "end_effect_profile"]


@dataclass
class EndEffects:
    """Result of :func:`end_effect_profile`.

    Attributes:
        names: channel names (C,), the decomposer's ``names``.
        lags: ``(D,)`` int, ``0 .. max_lag``: samples back from the origin (``d = 0`` is the
            window's last sample, time ``t``).
        rel_error: ``(C, D)`` float, dimensionless: RMS over origins of
            ``trailing_k(t-d) - centred_k(t-d)`` divided by the RMS of the centred channel ``k``
            over all origins and lags (``scale[k]``). ``0`` where both are 0, ``inf`` where only
            the scale is 0, NaN when no origin was usable.
        rmse: ``(C, D)`` float, the same RMS error in the unit of the series.
        scale: ``(C,)`` float, RMS of the centred channel over origins and lags (series unit).
        n_origins: number of origins used (both windows inside the series and finite).
        origins: ``(n_origins,)`` int, the positions used.
        decomp_window: trailing window length ``L``.
        centred_half: ``h``; the centred window is ``x[t-h .. t+h]``.
        method: the decomposer's ``params()`` (JSON-serialisable), for the record.
    """

    names: list[str]
    lags: np.ndarray
    rel_error: np.ndarray
    rmse: np.ndarray
    scale: np.ndarray
    n_origins: int
    origins: np.ndarray
    decomp_window: int
    centred_half: int
    method: dict[str, Any] = field(default_factory=dict)

    def reliable_lag(self, threshold: float = 0.2) -> list[int]:
        """Per channel, the smallest lag ``d`` from which ``rel_error`` stays below ``threshold``
        for every larger lag up to ``max_lag``; ``max_lag + 1`` if the last lag is not below it
        (NaN counts as not below). ``0`` means even the window's end point is reliable."""
        below = self.rel_error < threshold  # NaN -> False
        out: list[int] = []
        for row in below:
            bad = np.flatnonzero(~row)
            out.append(int(bad[-1]) + 1 if bad.size else 0)
        return out

    def to_dict(self, threshold: float = 0.2) -> dict[str, Any]:
        """JSON-ready dict (lists of floats; non-finite values as None), with the reliable lag
        at ``threshold``."""

        def clean(a: np.ndarray) -> list:
            return [[None if not np.isfinite(v) else float(v) for v in row] for row in np.atleast_2d(a)]

        return {
            "method": self.method,
            "names": list(self.names),
            "lags": [int(v) for v in self.lags],
            "decomp_window": int(self.decomp_window),
            "centred_half": int(self.centred_half),
            "n_origins": int(self.n_origins),
            "rel_error": clean(self.rel_error),
            "rmse": clean(self.rmse),
            "scale": clean(self.scale)[0],
            "threshold": float(threshold),
            "reliable_lag": self.reliable_lag(threshold),
        }


def end_effect_profile(
    values: np.ndarray,
    origins: np.ndarray,
    decomposer: Decomposer,
    decomp_window: int,
    centred_half: int,
    max_lag: int = 48,
) -> EndEffects:
    """Compare trailing-window and centred-window decompositions at the window's end.

    Args:
        values: the series ``(N,)`` on a regular grid, any unit, NaN in gaps.
        origins: ``(n,)`` int positions ``t`` (forecast origins) to evaluate.
        decomposer: any :class:`Decomposer` (fitted if it needs fitting); used for both windows.
        decomp_window: ``L``, trailing window ``values[t-L+1 .. t]``.
        centred_half: ``h``, centred window ``values[t-h .. t+h]`` (length ``2h+1``).
        max_lag: largest lag ``d`` compared (``0 <= max_lag <= min(L-1, h)``).

    Origins whose trailing or centred window leaves the series or contains a non-finite value are
    skipped. All trailing windows go through one ``decompose_batch`` call, all centred windows
    through another. Raises ValueError for bad sizes.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"values must be 1-D (N,), got shape {x.shape}")
    L, h, D = int(decomp_window), int(centred_half), int(max_lag) + 1
    if L < 1 or h < 0 or max_lag < 0:
        raise ValueError(f"need decomp_window >= 1, centred_half >= 0, max_lag >= 0 (got {L}, {h}, {max_lag})")
    if max_lag > L - 1 or max_lag > h:
        raise ValueError(f"max_lag={max_lag} must be <= decomp_window-1={L - 1} and <= centred_half={h}")
    t = np.asarray(origins, dtype=np.int64).ravel()
    N = x.size
    inside = (t - L + 1 >= 0) & (t - h >= 0) & (t + h < N)
    t = t[inside]
    # finite-count prefix sum: a window [a, b] is finite iff no non-finite value in it
    bad = np.concatenate([[0], np.cumsum(~np.isfinite(x))])
    ok = (bad[t + 1] - bad[t - L + 1] == 0) & (bad[t + h + 1] - bad[t - h] == 0)
    t = t[ok]
    C = decomposer.n_components
    names = list(decomposer.names)
    lags = np.arange(D)
    if t.size == 0:
        nan = np.full((C, D), np.nan)
        return EndEffects(names, lags, nan, nan.copy(), np.full(C, np.nan), 0, t, L, h, decomposer.params())

    trail = decomposer.decompose_batch(x[t[:, None] + np.arange(-L + 1, 1)[None, :]])  # (n, C, L)
    cent = decomposer.decompose_batch(x[t[:, None] + np.arange(-h, h + 1)[None, :]])  # (n, C, 2h+1)
    if trail.shape[1] != cent.shape[1]:
        raise ValueError(f"channel counts differ: trailing {trail.shape[1]}, centred {cent.shape[1]}")
    # time t-d sits at index L-1-d of the trailing window and h-d of the centred one
    tr = trail[:, :, L - 1 - lags]  # (n, C, D)
    ce = cent[:, :, h - lags]  # (n, C, D)
    rmse = np.sqrt(np.mean((tr - ce) ** 2, axis=0))  # (C, D)
    scale = np.sqrt(np.mean(ce**2, axis=(0, 2)))  # (C,)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = rmse / scale[:, None]
    rel[(scale[:, None] == 0) & (rmse == 0)] = 0.0
    return EndEffects(
        names=names, lags=lags, rel_error=rel, rmse=rmse, scale=scale, n_origins=int(t.size),
        origins=t, decomp_window=L, centred_half=h, method=decomposer.params(),
    )
