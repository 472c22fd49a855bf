"""Baseline forecasters: each returns ``(n_origins, H)`` forecasts from integer origins."""

from wq_pipeline.baselines.arima import arima_forecast, fit_arima, select_order
from wq_pipeline.baselines.persistence import persistence_forecast
from wq_pipeline.baselines.seasonal_naive import autocorrelation, detect_period, seasonal_naive_forecast

__all__ = [
    "arima_forecast",
    "autocorrelation",
    "detect_period",
    "fit_arima",
    "persistence_forecast",
    "seasonal_naive_forecast",
    "select_order",
]
