"""Baseline forecasters: each returns ``(n_origins, H)`` forecasts from integer origins."""

from wq_pipeline.baselines.arima import arima_forecast, fit_arima, select_order
from wq_pipeline.baselines.climatology import climatology_forecast, fit_climatology
from wq_pipeline.baselines.harmonic import (
    DIEL,
    TIDAL,
    ar_fit,
    harmonic_ar_forecast,
    harmonic_design,
    harmonic_fit,
    harmonic_periods,
)
from wq_pipeline.baselines.persistence import persistence_forecast
from wq_pipeline.baselines.seasonal_naive import (
    autocorrelation,
    detect_period,
    level_adjusted_seasonal_naive_forecast,
    period_candidates,
    seasonal_naive_forecast,
    select_period,
)

__all__ = [
    "DIEL",
    "TIDAL",
    "ar_fit",
    "arima_forecast",
    "autocorrelation",
    "climatology_forecast",
    "detect_period",
    "fit_arima",
    "fit_climatology",
    "harmonic_ar_forecast",
    "harmonic_design",
    "harmonic_fit",
    "harmonic_periods",
    "level_adjusted_seasonal_naive_forecast",
    "period_candidates",
    "persistence_forecast",
    "seasonal_naive_forecast",
    "select_order",
    "select_period",
]
