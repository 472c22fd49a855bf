"""Climatology baselines: the training mean at each phase of a fixed period (e.g. hour of day), or
at each day of year (daily grids)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from wq_pipeline.models.baselines._common import check_series_origins, check_training_series


def fit_climatology(y_train: np.ndarray, period: int) -> np.ndarray:
    """Profile ``(period,)``: mean of the finite training values at each phase ``position % period``.

    ``y_train (N,)`` starts at grid position 0 (phase 0), units kept. NaNs are ignored; a phase
    with no finite value is NaN. With ``period`` = steps per day this is the hour-of-day climatology.
    """
    y = check_training_series(y_train)
    period = int(period)
    if period < 1:
        raise ValueError(f"period must be >= 1, got {period}")
    ok = np.isfinite(y)
    phase = np.arange(y.size) % period
    sums = np.bincount(phase[ok], weights=y[ok], minlength=period)
    counts = np.bincount(phase[ok], minlength=period)
    profile = np.full(period, np.nan)
    has = counts > 0
    profile[has] = sums[has] / counts[has]
    return profile


def climatology_forecast(y: np.ndarray, origins: np.ndarray, horizon: int, profile: np.ndarray) -> np.ndarray:
    """Forecast ``(n_origins, horizon)``: ``profile[(t + h) % period]`` for ``h = 1..H``.

    Positions are absolute grid positions of ``y (N,)`` (phase 0 = position 0, as in
    :func:`fit_climatology`); ``y`` itself is only used to check the origins. ``profile (period,)``
    comes from training data; NaN phases give NaN forecasts.
    """
    _, o = check_series_origins(y, origins, horizon)
    prof = np.asarray(profile, dtype=np.float64)
    if prof.ndim != 1 or prof.size < 1:
        raise ValueError(f"profile must be 1-D (period,) and non-empty, got shape {prof.shape}")
    pos = o[:, None] + np.arange(1, int(horizon) + 1)[None, :]
    return prof[pos % prof.size]


#: half-width (days) of the moving window that smooths the day-of-year climatology
DOY_HALF_WIDTH = 7
DAYS = 366  # day-of-year index 0..365 (pandas ``dayofyear - 1``; 365 only in leap years)


def _doy_index(times: pd.DatetimeIndex) -> np.ndarray:
    """Day of year ``(n,)`` as 0..365 (``dayofyear - 1``)."""
    return np.asarray(pd.DatetimeIndex(times).dayofyear, dtype=np.int64) - 1


def fit_doy_climatology(
    y_train: np.ndarray, times_train: pd.DatetimeIndex, half_width: int = DOY_HALF_WIDTH
) -> np.ndarray:
    """Day-of-year profile ``(366,)`` (index = ``dayofyear - 1``) in the units of ``y_train (N,)``.

    First the mean of the finite training values on each day of year (``times_train (N,)``, the
    grid times of ``y_train``); then each day's value is the mean of those daily means over the
    days ``d - half_width .. d + half_width`` that have one (circular over the 366 days); a day
    with none in reach gets the mean of all finite training values (NaN if there are none).
    """
    y = check_training_series(y_train)
    t = pd.DatetimeIndex(times_train)
    if t.size != y.size:
        raise ValueError(f"times ({t.size},) and training series {y.shape} differ in length")
    if int(half_width) < 0:
        raise ValueError(f"half_width must be >= 0, got {half_width}")
    ok = np.isfinite(y)
    doy = _doy_index(t)
    sums = np.bincount(doy[ok], weights=y[ok], minlength=DAYS)
    counts = np.bincount(doy[ok], minlength=DAYS)
    has = counts > 0
    daily = np.where(has, sums / np.maximum(counts, 1), 0.0)
    k = int(half_width)
    offsets = np.arange(-k, k + 1)
    idx = (np.arange(DAYS)[:, None] + offsets[None, :]) % DAYS  # (366, 2k + 1)
    n_days = has[idx].sum(axis=1)
    profile = np.full(DAYS, float(y[ok].mean()) if ok.any() else np.nan)
    reach = n_days > 0
    profile[reach] = daily[idx].sum(axis=1)[reach] / n_days[reach]
    return profile


def grid_times(times: pd.DatetimeIndex, positions: np.ndarray) -> pd.DatetimeIndex:
    """Times of grid ``positions`` (any shape, flattened), extrapolated at the grid step past
    the end of ``times (N,)`` (a forecast's targets may lie beyond the last grid time)."""
    t = pd.DatetimeIndex(times)
    pos = np.asarray(positions, dtype=np.int64).ravel()
    if t.size < 2:
        raise ValueError("need at least two grid times to know the grid step")
    step = t[1] - t[0]
    inside = np.clip(pos, 0, t.size - 1)
    return t[inside] + (pos - inside) * step


def doy_climatology_forecast(
    times: pd.DatetimeIndex, origins: np.ndarray, horizon: int, profile: np.ndarray
) -> np.ndarray:
    """Forecast ``(n_origins, horizon)``: ``profile[dayofyear(t + h) - 1]`` for ``h = 1..H``.

    ``times (N,)`` are the grid times of the series (the origins index them; targets past the end
    are extrapolated at the grid step); ``profile (366,)`` comes from :func:`fit_doy_climatology`.
    """
    t = pd.DatetimeIndex(times)
    _, o = check_series_origins(np.zeros(t.size), origins, horizon)
    prof = np.asarray(profile, dtype=np.float64)
    if prof.shape != (DAYS,):
        raise ValueError(f"profile must have shape ({DAYS},), got {prof.shape}")
    pos = o[:, None] + np.arange(1, int(horizon) + 1)[None, :]
    doy = _doy_index(grid_times(t, pos)).reshape(pos.shape)
    return prof[doy]
