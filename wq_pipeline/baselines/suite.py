"""Every statistical baseline of an evaluation, each tuned on training and validation data only.

* ``persistence``: the last observation.
* ``seasonal_naive``: the value one period earlier; the period is ``--seasonal-period`` or the
  candidate (the autocorrelation peak, 24 h, 24.84 h = two M2 tides, 12 h, ...) with the lowest
  seasonal-naive RMSE at step H on the training series (:func:`~.seasonal_naive.select_period`).
* ``level_adjusted_seasonal_naive``: the same, shifted by the level change over the last period.
* ``climatology``: the training mean at the same time of day (the same phase of the period when
  the grid step does not divide a day).
* ``harmonic_ar``: diel (and tidal) harmonics plus AR residuals, refitted on each origin's
  trailing window; window length, AR order and tidal constituents are chosen by RMSE at step H on
  the validation origins.

ARIMA lives in :mod:`.arima` (fitted once on the training series) and is run by the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .climatology import climatology_forecast, fit_climatology
from .harmonic import harmonic_ar_forecast
from .persistence import persistence_forecast
from .seasonal_naive import (
    detect_period,
    level_adjusted_seasonal_naive_forecast,
    period_candidates,
    seasonal_naive_forecast,
    select_period,
)

STATISTICAL = ("persistence", "seasonal_naive", "level_adjusted_seasonal_naive", "climatology", "harmonic_ar")
# (trailing window in hours, AR order, tidal constituents) tried for harmonic + AR on validation
HARMONIC_GRID = tuple((hours, p_ar, tides) for hours in (336.0, 672.0) for p_ar in (2, 24) for tides in (False, True))
MIN_SCORED = 20


@dataclass
class BaselineForecasts:
    """``forecasts[name]``: ``(n_test, H)`` in target units; ``info``: the choices made (JSON)."""

    forecasts: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)


def step_rmse(forecast: np.ndarray, observed: np.ndarray) -> float:
    """RMSE over the finite pairs of two ``(n,)`` arrays; NaN with fewer than :data:`MIN_SCORED`."""
    ok = np.isfinite(forecast) & np.isfinite(observed)
    return float(np.sqrt(np.mean((forecast[ok] - observed[ok]) ** 2))) if ok.sum() >= MIN_SCORED else float("nan")


def statistical_baselines(y: np.ndarray, val_start: int, val_origins: np.ndarray, test_origins: np.ndarray,
                          horizon: int, step_hours: float, seasonal_period: int | None = None,
                          max_lag: int | None = None) -> BaselineForecasts:
    """Forecasts ``(n_test, H)`` of every baseline in :data:`STATISTICAL` at ``test_origins``.

    ``y (N,)`` is the series on its grid (NaN in gaps); positions ``< val_start`` are training
    data, ``val_origins`` are validation origins (their targets lie before the test period).
    Nothing about the test period is used to choose a parameter.
    """
    train = y[:val_start]
    H = int(horizon)
    info: dict[str, Any] = {}
    if seasonal_period:
        period = int(seasonal_period)
        info["seasonal_period_source"] = "--seasonal-period"
    else:
        lag = max_lag or max(2, min(int(round(200 / step_hours)), train.size // 4))
        try:
            detected: int | None = detect_period(train, max_lag=max(2, lag))
        except ValueError:
            detected = None
        period, by_period = select_period(train, H, period_candidates(step_hours, detected))
        info.update(seasonal_period_source="lowest training RMSE at step H among candidates",
                    seasonal_period_candidates_rmse={str(k): v for k, v in by_period.items()},
                    acf_period=detected)
    info["seasonal_period"] = period
    per_day = 24.0 / step_hours
    clim_period = int(round(per_day)) if per_day >= 2 and abs(per_day - round(per_day)) < 1e-9 else period
    info["climatology_period"] = clim_period

    obs_val = y[np.minimum(val_origins + H, y.size - 1)]
    best, scores = None, {}
    for hours, p_ar, tides in HARMONIC_GRID:
        n_fit = max(int(round(hours / step_hours)), 4 * (p_ar + 1), 16)
        f = harmonic_ar_forecast(y, val_origins, H, step_hours, n_fit=n_fit, p_ar=p_ar, tides=tides)[:, -1]
        r = step_rmse(f, obs_val)
        key = f"window {hours:g} h, AR({p_ar}), {'diel + tidal' if tides else 'diel'}"
        scores[key] = r
        if np.isfinite(r) and (best is None or r < best[0]):
            best = (r, key, dict(n_fit=n_fit, p_ar=p_ar, tides=tides))
    chosen = best[2] if best else dict(n_fit=int(round(336 / step_hours)), p_ar=2, tides=False)
    info.update(harmonic_ar=best[1] if best else "default (no validation score)", harmonic_ar_validation_rmse=scores,
                harmonic_ar_params=chosen)

    o = test_origins
    return BaselineForecasts(forecasts={
        "persistence": persistence_forecast(y, o, H),
        "seasonal_naive": seasonal_naive_forecast(y, o, H, period),
        "level_adjusted_seasonal_naive": level_adjusted_seasonal_naive_forecast(y, o, H, period),
        "climatology": climatology_forecast(y, o, H, fit_climatology(train, clim_period)),
        "harmonic_ar": harmonic_ar_forecast(y, o, H, step_hours, **chosen),
    }, info=info)
