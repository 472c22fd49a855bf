"""Baseline forecasters: each returns ``(n_origins, H)`` forecasts from integer origins."""

from wq_pipeline.models.baselines.arima import arima_forecast, fit_arima, select_order
from wq_pipeline.models.baselines.climatology import (
    climatology_forecast,
    doy_climatology_forecast,
    fit_climatology,
    fit_doy_climatology,
)
from wq_pipeline.models.baselines.harmonic import (
    ANNUAL,
    DIEL,
    PLAIN,
    ROBUST,
    TIDAL,
    WEEKLY,
    ar_fit,
    ar_spectral_radius,
    effective_ar_order,
    harmonic_ar_diagnose,
    harmonic_ar_forecast,
    harmonic_design,
    harmonic_fit,
    harmonic_periods,
    resolvable_periods,
    shrink_ar,
)
from wq_pipeline.models.baselines.persistence import persistence_forecast
from wq_pipeline.models.baselines.seasonal_naive import (
    autocorrelation,
    detect_period,
    level_adjusted_seasonal_naive_forecast,
    period_candidates,
    seasonal_naive_forecast,
    select_period,
)

__all__ = [
    "ANNUAL",
    "DIEL",
    "PLAIN",
    "ROBUST",
    "TIDAL",
    "WEEKLY",
    "ar_fit",
    "ar_spectral_radius",
    "arima_forecast",
    "autocorrelation",
    "climatology_forecast",
    "detect_period",
    "doy_climatology_forecast",
    "effective_ar_order",
    "fit_arima",
    "fit_climatology",
    "fit_doy_climatology",
    "harmonic_ar_diagnose",
    "harmonic_ar_forecast",
    "harmonic_design",
    "harmonic_fit",
    "harmonic_periods",
    "resolvable_periods",
    "shrink_ar",
    "level_adjusted_seasonal_naive_forecast",
    "period_candidates",
    "persistence_forecast",
    "seasonal_naive_forecast",
    "select_order",
    "select_period",
]
