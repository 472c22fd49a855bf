"""Seasonal-naive baseline and a simple autocorrelation period detector."""

from __future__ import annotations

import numpy as np

from wq_pipeline.baselines._common import check_series_origins


def autocorrelation(y: np.ndarray, max_lag: int) -> np.ndarray:
    """NaN-safe sample autocorrelation ``(max_lag + 1,)`` for lags ``0..max_lag``.

    The series is centred on its NaN-ignoring mean; lag ``k`` averages ``z[t] * z[t+k]`` over
    the pairs where both are finite and divides by the variance of the finite values.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"series must be 1-D (N,), got shape {y.shape}")
    ok = np.isfinite(y)
    if ok.sum() < 2:
        raise ValueError("need at least two finite values to compute an autocorrelation")
    z = np.where(ok, y - y[ok].mean(), 0.0)
    var = float(np.mean(z[ok] ** 2))
    acf = np.full(int(max_lag) + 1, np.nan)
    if var == 0.0:
        return acf
    okf = ok.astype(np.float64)
    for k in range(min(int(max_lag), y.size - 1) + 1):
        n_pairs = float(np.dot(okf[: y.size - k], okf[k:]))
        if n_pairs > 0:
            acf[k] = float(np.dot(z[: y.size - k], z[k:])) / n_pairs / var
    return acf


def detect_period(y_train: np.ndarray, max_lag: int) -> int:
    """Dominant period (in steps) of the training series: a lag in ``[2, max_lag]``.

    Picks the highest *local peak* of the autocorrelation in ``[2, max_lag]`` (a lag whose ACF is
    >= both neighbours). A smooth series has its raw ACF maximum at the shortest lag, so a plain
    argmax would always answer 2; if there is no interior peak, the argmax is returned.
    """
    if int(max_lag) < 2:
        raise ValueError(f"max_lag must be >= 2, got {max_lag}")
    max_lag = int(max_lag)
    acf = autocorrelation(y_train, max_lag + 1)
    lags = np.arange(2, max_lag + 1)
    vals = acf[lags]
    if not np.isfinite(vals).any():
        raise ValueError("autocorrelation undefined (constant or too short training series)")
    left, right = acf[lags - 1], acf[lags + 1]
    right = np.where(np.isfinite(right), right, -np.inf)  # last lag: no right neighbour needed
    peak = np.isfinite(vals) & (vals >= left) & (vals >= right)
    if peak.any():
        cand = np.where(peak, vals, -np.inf)
        return int(lags[int(np.argmax(cand))])
    return int(lags[int(np.nanargmax(vals))])


def seasonal_naive_forecast(y: np.ndarray, origins: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """Forecast ``(n_origins, horizon)``: ``y[t + h - period * ceil(h / period)]`` for ``h = 1..H``.

    The value one period before each target, stepping back whole periods until it is ``<= t``;
    positions before the start of the series give NaN.
    """
    y, o = check_series_origins(y, origins, horizon)
    period = int(period)
    if period < 1:
        raise ValueError(f"period must be >= 1, got {period}")
    h = np.arange(1, int(horizon) + 1)
    back = h - period * np.ceil(h / period).astype(np.int64)  # in [-(period-1), 0]
    idx = o[:, None] + back[None, :]
    out = np.full(idx.shape, np.nan)
    ok = idx >= 0
    out[ok] = y[idx[ok]]
    return out
