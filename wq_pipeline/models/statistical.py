"""The statistical baselines as forecasters (:mod:`wq_pipeline.models.forecaster`): each fits
and chooses its settings exactly as :func:`wq_pipeline.models.baselines.suite.statistical_baselines`
does for an evaluation (same helpers), so a fitted forecaster's forecasts at the test origins are
the evaluation's, and its state (JSON) can be registered and served.

State, per kind: persistence nothing; seasonal naive (plain and level-adjusted) the period;
climatology the profile; harmonic + AR the chosen window, AR order, terms and robustness
settings; ARIMA the order and the fitted parameters.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from wq_pipeline.models.baselines.arima import arima_forecast, fit_arima, select_order
from wq_pipeline.models.baselines.harmonic import harmonic_ar_diagnose
from wq_pipeline.models.baselines.persistence import persistence_forecast
from wq_pipeline.models.baselines.seasonal_naive import (
    level_adjusted_seasonal_naive_forecast,
    seasonal_naive_forecast,
)
from wq_pipeline.models.baselines.suite import (
    choose_harmonic,
    choose_period,
    climatology_from_profile,
    fit_climatology_profile,
    validation_targets,
)
from wq_pipeline.models.forecaster import Fitted, Forecaster, Parts, SeriesView, register


def _floats(values: Any) -> list[float | None]:
    """JSON-safe floats: NaN -> None."""
    return [None if (v is None or not math.isfinite(float(v))) else float(v) for v in values]


def _array(values: list[float | None]) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)


def _max_lag(view: SeriesView, window: int | None) -> int | None:
    """The autocorrelation search range an evaluation uses (``--window``-based), else the default."""
    return None if window is None else max(2, min(window * 2, view.val_start // 4))


class _Periodic(Forecaster):
    """A forecaster with a seasonal period chosen on the training series."""

    def __init__(self, seasonal_period: int | None = None, window: int | None = None) -> None:
        self.seasonal_period, self.window = seasonal_period, window
        self.period: int | None = None
        self.info: dict[str, Any] = {}

    @classmethod
    def from_fitted(cls, fitted: Fitted) -> "_Periodic":
        return cls(seasonal_period=fitted.settings.get("seasonal_period"),
                   window=fitted.settings.get("window")).fit(fitted.view)

    def _fit_period(self, view: SeriesView) -> int:
        y = np.asarray(view.values, dtype=np.float64)
        self.period = choose_period(y[:view.val_start], view.obs_values[:view.val_start], view.horizon,
                                    view.step_hours, self.seasonal_period, _max_lag(view, self.window), self.info)
        return self.period


@register
class Persistence(Forecaster):
    """The last value, repeated over the horizon."""

    name = "persistence"

    def fit(self, view: SeriesView) -> "Persistence":
        self._fitted = True
        return self

    def forecast(self, view: SeriesView, origins: np.ndarray) -> np.ndarray:
        self._require_fitted()
        return persistence_forecast(view.values, origins, view.horizon)

    def state(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_state(cls, state: dict[str, Any], parts: Parts | None = None) -> "Persistence":
        out = cls()
        out._fitted = True
        return out


@register
class SeasonalNaive(_Periodic):
    """The value one seasonal period earlier."""

    name = "seasonal_naive"

    def fit(self, view: SeriesView) -> "SeasonalNaive":
        self._fit_period(view)
        self._fitted = True
        return self

    def forecast(self, view: SeriesView, origins: np.ndarray) -> np.ndarray:
        self._require_fitted()
        return seasonal_naive_forecast(view.values, origins, view.horizon, int(self.period))

    def state(self) -> dict[str, Any]:
        return {"period": int(self.period)}

    @classmethod
    def from_state(cls, state: dict[str, Any], parts: Parts | None = None) -> "SeasonalNaive":
        out = cls()
        out.period = int(state["period"])
        if out.period < 1:
            raise ValueError(f"period must be >= 1, got {out.period}")
        out._fitted = True
        return out


@register
class LevelAdjustedSeasonalNaive(SeasonalNaive):
    """Seasonal naive shifted by the level change over the last period."""

    name = "level_adjusted_seasonal_naive"

    def forecast(self, view: SeriesView, origins: np.ndarray) -> np.ndarray:
        self._require_fitted()
        return level_adjusted_seasonal_naive_forecast(view.values, origins, view.horizon, int(self.period))


@register
class Climatology(_Periodic):
    """The training mean at the same time of day (sub-daily) or day of year (daily)."""

    name = "climatology"

    def __init__(self, seasonal_period: int | None = None, window: int | None = None) -> None:
        super().__init__(seasonal_period, window)
        self.profile: dict[str, Any] | None = None

    def fit(self, view: SeriesView) -> "Climatology":
        period = self._fit_period(view)
        self.profile, info = fit_climatology_profile(np.asarray(view.values, dtype=np.float64), view.val_start,
                                                     view.step_hours, period, view.times)
        self.info.update(info)
        self._fitted = True
        return self

    def forecast(self, view: SeriesView, origins: np.ndarray) -> np.ndarray:
        self._require_fitted()
        assert self.profile is not None
        return climatology_from_profile(self.profile, view.values, origins, view.horizon, view.times)

    def state(self) -> dict[str, Any]:
        assert self.profile is not None
        return {"kind": self.profile["kind"], "profile": _floats(self.profile["profile"])}

    @classmethod
    def from_state(cls, state: dict[str, Any], parts: Parts | None = None) -> "Climatology":
        if state["kind"] not in ("period", "day_of_year"):
            raise ValueError(f"unknown climatology kind {state['kind']!r}")
        out = cls()
        out.profile = {"kind": state["kind"], "profile": _array(state["profile"])}
        out._fitted = True
        return out


@register
class HarmonicAR(_Periodic):
    """Harmonics plus AR residuals refitted on each origin's trailing window; window, AR order
    and terms chosen on validation (:func:`wq_pipeline.models.baselines.suite.choose_harmonic`)."""

    name = "harmonic_ar"

    def __init__(self, seasonal_period: int | None = None, window: int | None = None) -> None:
        super().__init__(seasonal_period, window)
        self.params: dict[str, Any] | None = None
        self.step_hours: float | None = None

    def fit(self, view: SeriesView) -> "HarmonicAR":
        period = self._fit_period(view)
        y = np.asarray(view.values, dtype=np.float64)
        val = np.asarray(view.val_origins, dtype=np.int64)
        obs_val = validation_targets(view.obs_values, val, view.horizon)
        self.params, label, scores, _ = choose_harmonic(y, obs_val, val, view.horizon, view.step_hours, period)
        self.step_hours = view.step_hours
        self.info.update(harmonic_ar=label, harmonic_ar_validation_rmse=scores)
        self._fitted = True
        return self

    def forecast(self, view: SeriesView, origins: np.ndarray) -> np.ndarray:
        self._require_fitted()
        assert self.params is not None
        if self.step_hours is not None and not math.isclose(self.step_hours, view.step_hours):
            raise ValueError(f"harmonic_ar fitted on a {self.step_hours} h grid, asked on a {view.step_hours} h one")
        return harmonic_ar_diagnose(view.values, origins, view.horizon, view.step_hours, **self.params)[0]

    def state(self) -> dict[str, Any]:
        return {"params": self.params, "step_hours": self.step_hours}

    @classmethod
    def from_state(cls, state: dict[str, Any], parts: Parts | None = None) -> "HarmonicAR":
        out = cls()
        out.params = dict(state["params"])
        out.step_hours = float(state["step_hours"])
        out._fitted = True
        return out


@register
class Arima(Forecaster):
    """ARIMA with the AICc order, fitted once on the training observations; its parameters are
    applied to the whole series in one causal Kalman filter pass."""

    name = "arima"

    def __init__(self) -> None:
        self.order: tuple[int, int, int] | None = None
        self.params: np.ndarray | None = None
        self._results: Any = None

    def fit(self, view: SeriesView) -> "Arima":
        train = view.obs_values[:view.val_start]
        self.order = select_order(train)
        self._results = fit_arima(train, self.order)
        self.params = np.asarray(self._results.params, dtype=np.float64)
        self._fitted = True
        return self

    def _model_results(self, y: np.ndarray) -> Any:
        """Results carrying the stored parameters (rebuilt after loading)."""
        if self._results is not None:
            return self._results
        from statsmodels.tsa.arima.model import ARIMA

        from wq_pipeline.models.baselines.arima import _trend

        p, d, q = self.order
        concentrate = p + q + (d == 0) > 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ARIMA(np.asarray(y, dtype=np.float64), order=self.order, trend=_trend(d),
                          concentrate_scale=concentrate)
            self._results = model.filter(self.params)
        return self._results

    def forecast(self, view: SeriesView, origins: np.ndarray) -> np.ndarray:
        self._require_fitted()
        return arima_forecast(self._model_results(view.values), view.values, origins, view.horizon)

    def state(self) -> dict[str, Any]:
        return {"order": list(map(int, self.order)), "params": _floats(self.params)}

    @classmethod
    def from_state(cls, state: dict[str, Any], parts: Parts | None = None) -> "Arima":
        out = cls()
        order = tuple(int(v) for v in state["order"])
        if len(order) != 3 or min(order) < 0:
            raise ValueError(f"order must be (p, d, q) >= 0, got {state['order']!r}")
        out.order = order  # type: ignore[assignment]
        out.params = _array(state["params"])
        if not np.isfinite(out.params).all():
            raise ValueError("ARIMA parameters must be finite")
        out._fitted = True
        return out


#: the statistical models, by name, in the evaluation's order
STATISTICAL_FORECASTERS: dict[str, type[Forecaster]] = {
    cls.name: cls for cls in (Persistence, SeasonalNaive, LevelAdjustedSeasonalNaive, Climatology, Arima, HarmonicAR)
}


def statistical_forecaster(name: str, *, seasonal_period: int | None = None, window: int | None = None) -> Forecaster:
    """A fresh statistical forecaster by name, with an evaluation's options."""
    cls = STATISTICAL_FORECASTERS[name]
    if issubclass(cls, _Periodic):
        return cls(seasonal_period=seasonal_period, window=window)
    return cls()
