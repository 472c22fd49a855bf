"""Any served model with honest quantiles: the model and the record of its own forecasts.

A model other than the ensemble is served wrapped in :class:`CalibratedForecaster`. Its state is
the model's state, the trailing window an origin needs, the calibration options and the
**record**: the origins (UTC times) and the model's forecasts there ``(r, H)``, as the training
(validation origins) or the evaluation (every fold's validation and test origins) computed them.

``forecast`` is the model's own forecast, unchanged. ``forecast_with_quantiles`` at origin ``t``
also recomputes the model at every usable origin after the record up to ``t`` (each from data up
to its own origin, remembered across a backfill's chunks) and calibrates on the errors of those
forecasts whose targets were observed by ``t`` (:func:`~wq_pipeline.models.intervals.conformal_quantiles`),
as the evaluation calibrates that model. It is the ensemble's machinery with a single member of
weight one, so the two calibrate alike.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from wq_pipeline.models.ensemble import EnsembleOptions
from wq_pipeline.models.intervals import IntervalOptions, conformal_quantiles
from wq_pipeline.models.ensemble_forecaster import RECORD_FORECASTS, RECORD_TIMES, EnsembleForecaster
from wq_pipeline.models.forecaster import (
    Fitted,
    Forecaster,
    Parts,
    SeriesView,
    dump_forecaster,
    forecaster_from_doc,
    register,
)


@register
class CalibratedForecaster(EnsembleForecaster):
    """``model`` (a fitted forecaster) with the record of its forecasts ``(r, H)`` at
    ``record_times (r,)`` (UTC nanoseconds)."""

    name = "calibrated"

    def __init__(self, model: Forecaster, lookback: int, record_times: np.ndarray, record: np.ndarray,
                 intervals: IntervalOptions | None = None) -> None:
        record = np.asarray(record, dtype=np.float64)
        if record.ndim != 2:
            raise ValueError(f"record must be (r, H), got {record.shape}")
        super().__init__({model.name: model}, EnsembleOptions(), lookback, record_times, record[None],
                         intervals=intervals)
        self.model = model

    @property
    def served_model(self) -> str:
        return self.model.served_model

    @property
    def trains_networks(self) -> bool:  # type: ignore[override]
        return self.model.trains_networks

    @property
    def info(self) -> dict[str, Any]:
        return getattr(self.model, "info", {})

    def statistical_members(self) -> list[str]:
        """None: a fallback stands in for the model itself (:mod:`wq_pipeline.serve.forecasting`)."""
        return []

    def forecast(self, view: SeriesView, origins: np.ndarray, only: list[str] | None = None) -> np.ndarray:
        """``(n, H)``: the model's forecasts at ``origins``."""
        origins = np.asarray(origins, dtype=np.int64)
        if origins.size == 0:
            return np.zeros((0, view.horizon))
        return self.member_forecasts(view, origins)[0]

    def forecast_with_quantiles(self, view: SeriesView, origins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(n, H)`` forecasts and ``(n, H, Q)`` quantiles at ``self.intervals.levels``."""
        origins = np.asarray(origins, dtype=np.int64)
        if origins.size == 0:
            return np.zeros((0, view.horizon)), np.zeros((0, view.horizon, len(self.intervals.levels)))
        seq_o, seq_F = self._rows(view, origins)
        f = seq_F[0]
        idx = np.searchsorted(seq_o, origins)
        return f[idx], conformal_quantiles(f, seq_o, view.obs_values, self.intervals)[idx]

    def state(self) -> dict[str, Any]:
        return {"model": dump_forecaster(self.model), "lookback": self.lookback,
                "intervals": {**asdict(self.intervals), "levels": list(self.intervals.levels)}}

    def parts(self) -> Parts:
        return Parts(networks=self.model.parts().networks,
                     arrays={RECORD_TIMES: self.record_times, RECORD_FORECASTS: self.record[0]})

    @classmethod
    def from_fitted(cls, fitted: Fitted) -> "CalibratedForecaster":
        raise TypeError("a calibrated model is built by wq_pipeline.serve.training around a fitted model and its record")

    @classmethod
    def from_state(cls, state: dict[str, Any], parts: Parts | None = None) -> "CalibratedForecaster":
        if parts is None or RECORD_TIMES not in parts.arrays or RECORD_FORECASTS not in parts.arrays:
            raise ValueError("the model's record (record_times, record_forecasts) is missing")
        model = forecaster_from_doc(state["model"], "calibrated model", parts)
        iv = state["intervals"]
        return cls(model, int(state["lookback"]), parts.arrays[RECORD_TIMES], parts.arrays[RECORD_FORECASTS],
                   IntervalOptions(**{**iv, "levels": tuple(iv["levels"])}))
