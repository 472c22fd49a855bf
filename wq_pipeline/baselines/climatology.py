"""Climatology baseline: the training mean at each phase of a fixed period (e.g. hour of day)."""

from __future__ import annotations

import numpy as np

from wq_pipeline.baselines._common import check_series_origins, check_training_series


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
