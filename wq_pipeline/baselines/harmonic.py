"""Harmonic regression + AR residual baseline, refitted on the trailing window at every origin.

At origin ``t`` the model ``y[p] = harmonic(p) + e[p]`` is fitted to ``y[t - n_fit + 1 .. t]``:
the harmonic part (intercept plus a cosine and sine per period, at absolute time
``p * step_hours`` hours since the series start) by least squares on the finite values, then an
AR(``p_ar``) without intercept on the residuals by least squares. The forecast for ``t + h`` is
``harmonic(t + h)`` plus the residual AR recursion run forward from the last ``p_ar`` residuals,
feeding back its own forecasts. Only ``y[<= t]`` is used.

Resolution caveat: two periods are separable in a window of ``T`` hours only if
``T >= 1 / |1/P1 - 1/P2|`` (Rayleigh). In a 14-day window M2/S2 (14.8 d) and S1/O1 (14.2 d) are
just about resolved, S1/K1 (~1 yr) is not: those two columns are nearly collinear and their
individual amplitudes are unstable, but least squares still fits their sum, which is what the
short-range forecast uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from wq_pipeline.baselines._common import check_series_origins

# Periods in hours.
DIEL: Mapping[str, float] = {"S1 (24 h)": 24.0, "S2/12 h": 12.0}
TIDAL: Mapping[str, float] = {"M2": 12.4206012, "S2": 12.0, "K1": 23.9344697, "O1": 25.8193417}


def harmonic_periods(tides: bool) -> tuple[float, ...]:
    """Distinct periods (hours) in order: :data:`DIEL`, plus :data:`TIDAL` when ``tides``."""
    out: list[float] = []
    for p in list(DIEL.values()) + (list(TIDAL.values()) if tides else []):
        if float(p) not in out:
            out.append(float(p))
    return tuple(out)


def harmonic_design(hours: np.ndarray, periods: Iterable[float]) -> np.ndarray:
    """Design ``(n, 1 + 2K)``: ``[1, cos(2 pi h / P1), sin(2 pi h / P1), cos(.. P2), ...]``.

    ``hours (n,)`` is absolute time in hours; ``periods`` are ``K`` periods in hours (equal
    periods are kept once, first occurrence).
    """
    h = np.asarray(hours, dtype=np.float64)
    if h.ndim != 1:
        raise ValueError(f"hours must be 1-D (n,), got shape {h.shape}")
    uniq: list[float] = []
    for p in periods:
        if float(p) <= 0:
            raise ValueError(f"periods must be > 0 hours, got {p}")
        if float(p) not in uniq:
            uniq.append(float(p))
    cols = [np.ones_like(h)]
    for p in uniq:
        w = 2.0 * np.pi * h / p
        cols += [np.cos(w), np.sin(w)]
    return np.stack(cols, axis=1)


def harmonic_fit(window_values: np.ndarray, window_hours: np.ndarray, periods: Iterable[float]) -> np.ndarray:
    """Least-squares coefficients ``(1 + 2K,)`` of :func:`harmonic_design` on the finite values.

    ``window_values (n,)`` in the units of the series, ``window_hours (n,)`` absolute hours.
    """
    v = np.asarray(window_values, dtype=np.float64)
    X = harmonic_design(window_hours, periods)
    if v.shape != X.shape[:1]:
        raise ValueError(f"values {v.shape} and hours {X.shape[:1]} differ in length")
    ok = np.isfinite(v)
    return np.linalg.lstsq(X[ok], v[ok], rcond=None)[0]


def _ar_rows(resid: np.ndarray, p_ar: int) -> tuple[np.ndarray, np.ndarray]:
    """Lag matrix ``(m, p_ar)`` (column j = lag j + 1) and target ``(m,)`` over complete rows."""
    n = resid.size
    target = resid[p_ar:]
    lags = np.stack([resid[p_ar - j - 1 : n - j - 1] for j in range(p_ar)], axis=1)
    ok = np.isfinite(target) & np.isfinite(lags).all(axis=1)
    return lags[ok], target[ok]


def ar_fit(resid: np.ndarray, p_ar: int) -> np.ndarray:
    """AR(``p_ar``) coefficients ``(p_ar,)`` (lag 1 first), no intercept, by least squares.

    ``resid (n,)`` is a regular series; rows whose target or any lag is NaN are dropped. Equals
    ``statsmodels`` ``AutoReg(resid, lags=p_ar, trend="n").fit().params`` on a gap-free series.
    """
    r = np.asarray(resid, dtype=np.float64)
    p_ar = int(p_ar)
    if p_ar == 0:
        return np.zeros(0)
    if r.ndim != 1 or r.size <= p_ar:
        raise ValueError(f"need a 1-D residual series longer than p_ar={p_ar}")
    X, z = _ar_rows(r, p_ar)
    return np.linalg.lstsq(X, z, rcond=None)[0]


def _ar_recursion(last: np.ndarray, phi: np.ndarray, horizon: int) -> np.ndarray:
    """Residual forecasts ``(horizon,)`` from ``last = [e[t-p+1], ..., e[t]]`` and ``phi`` (lag 1 first)."""
    p = phi.size
    hist = np.concatenate([np.asarray(last, dtype=np.float64)[-p:] if p else np.zeros(0), np.zeros(horizon)])
    for h in range(horizon):
        hist[p + h] = float(np.dot(phi, hist[h : p + h][::-1])) if p else 0.0
    return hist[p:]


def harmonic_ar_forecast(
    y: np.ndarray,
    origins: np.ndarray,
    horizon: int,
    step_hours: float,
    *,
    n_fit: int = 336,
    p_ar: int = 2,
    tides: bool = False,
) -> np.ndarray:
    """Harmonic + AR forecasts ``(n_origins, horizon)`` in the units of ``y (N,)``.

    For each origin ``t`` the model is refitted on ``y[max(0, t - n_fit + 1) .. t]`` (see the module
    docstring); periods are :data:`DIEL`, plus :data:`TIDAL` when ``tides`` (estuaries); time is
    ``position * step_hours`` hours. A row is NaN when the window has fewer than ``n_fit / 2``
    finite values, any of the last ``p_ar`` values is NaN, or fewer than ``p_ar + 1`` complete AR
    rows remain. ``p_ar = 0`` gives the pure harmonic forecast. About 0.3 ms per origin
    (one numpy ``lstsq`` per origin for each of the two fits; ~1 s for 3,000 hourly origins).
    """
    y, o = check_series_origins(y, origins, horizon)
    horizon, n_fit, p_ar = int(horizon), int(n_fit), int(p_ar)
    step = float(step_hours)
    if not np.isfinite(step) or step <= 0:
        raise ValueError(f"step_hours must be > 0, got {step_hours}")
    if p_ar < 0:
        raise ValueError(f"p_ar must be >= 0, got {p_ar}")
    periods = harmonic_periods(tides)
    n_cols = 1 + 2 * len(periods)
    if n_fit < 2 * n_cols or n_fit <= 2 * p_ar:
        raise ValueError(f"n_fit={n_fit} too short for {n_cols} harmonic columns and p_ar={p_ar}")
    min_finite = n_fit / 2.0
    n_total = y.size + horizon
    X_all = harmonic_design(np.arange(n_total) * step, periods)  # (N + H, k)
    finite = np.isfinite(y)
    out = np.full((o.size, horizon), np.nan)
    for i, t in enumerate(o):
        lo = max(0, int(t) - n_fit + 1)
        yw = y[lo : t + 1]
        okw = finite[lo : t + 1]
        if okw.sum() < min_finite or (p_ar and not okw[-p_ar:].all()):
            continue
        Xw = X_all[lo : t + 1]
        beta = np.linalg.lstsq(Xw[okw], yw[okw], rcond=None)[0]
        harm_future = X_all[t + 1 : t + 1 + horizon] @ beta
        if p_ar == 0:
            out[i] = harm_future
            continue
        resid = yw - Xw @ beta  # NaN where y is missing
        lags, target = _ar_rows(resid, p_ar)
        if target.size < p_ar + 1:
            continue
        phi = np.linalg.lstsq(lags, target, rcond=None)[0]
        out[i] = harm_future + _ar_recursion(resid[-p_ar:], phi, horizon)
    return out
