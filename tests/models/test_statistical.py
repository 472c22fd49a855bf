"""wq_pipeline.models.statistical: the statistical baselines under the forecaster contract, on the
real Sapelo DO series. Each forecaster fits exactly as the evaluation's baseline suite does, its
JSON state gives back an equal forecaster, and it is causal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wq_pipeline.models.baselines.arima import arima_forecast, fit_arima, select_order
from wq_pipeline.models.baselines.suite import statistical_baselines
from wq_pipeline.errors import InputError
from wq_pipeline.data.station import load_station
from wq_pipeline.models.forecaster import SeriesView, dump_forecaster
from wq_pipeline.models.kinds import load_forecaster
from wq_pipeline.models.statistical import STATISTICAL_FORECASTERS, statistical_forecaster

H, WINDOW = 6, 48


@pytest.fixture(scope="module")
def sapelo(shared_data: Path):
    s = load_station(shared_data / "nerr_sapelo_deancreek_2012.csv", "DO_obs", freq="1h")
    y, obs, t = s.values.to_numpy(float), s.observed.to_numpy(bool), s.values.index
    n = 4000  # January to mid-June: enough for every setting, quick to fit
    y, obs, t = y[:n], obs[:n], t[:n]
    val_start, test_start = int(n * 0.7), int(n * 0.85)
    val = np.arange(val_start, test_start - H)
    test = np.arange(test_start, n - H)
    return SeriesView(y, obs, t, H, val_start, val), test


@pytest.fixture(scope="module")
def fitted(sapelo):
    view, _ = sapelo
    return {name: statistical_forecaster(name, window=WINDOW).fit(view) for name in STATISTICAL_FORECASTERS}


def test_each_forecaster_equals_the_evaluation_baseline(sapelo, fitted):
    view, test = sapelo
    ref = statistical_baselines(view.values, view.val_start, view.val_origins, test, H, 1.0,
                                max_lag=max(2, min(WINDOW * 2, view.val_start // 4)), times=view.times,
                                y_obs=view.obs_values)
    train = view.obs_values[:view.val_start]
    ref.forecasts["arima"] = arima_forecast(fit_arima(train, select_order(train)), view.values, test, H)
    for name, f in fitted.items():
        got = f.forecast(view, test)
        assert got.shape == (test.size, H)
        np.testing.assert_array_equal(got, ref.forecasts[name], err_msg=name)
        assert np.isfinite(got).mean() > 0.95, name


def test_json_state_round_trip_gives_equal_forecasts(sapelo, fitted):
    view, test = sapelo
    for name, f in fitted.items():
        text = json.dumps(dump_forecaster(f), allow_nan=False)  # what the registry writes
        back = load_forecaster(json.loads(text))
        assert type(back) is type(f) and back.name == name
        np.testing.assert_array_equal(back.forecast(view, test), f.forecast(view, test), err_msg=name)
    assert fitted["harmonic_ar"].state()["params"]["n_fit"] > 0
    assert len(fitted["arima"].state()["order"]) == 3


def test_forecasts_are_causal_for_every_forecaster(sapelo, fitted):
    """Change every value after t: forecasts issued at origins <= t must not move."""
    view, test = sapelo
    t = int(test[test.size // 2])
    rng = np.random.default_rng(0)
    future = view.values.copy()
    future[t + 1:] = future[t + 1:] * 1.7 + rng.normal(0, 2, future.size - t - 1)
    changed = SeriesView(future, view.observed, view.times, H, view.val_start, view.val_origins)
    past = test[test <= t]
    for name, f in fitted.items():
        before, after = f.forecast(view, past), f.forecast(changed, past)
        np.testing.assert_array_equal(before, after, err_msg=name)
        assert not np.array_equal(f.forecast(view, test[test > t]), f.forecast(changed, test[test > t])) \
            or name == "climatology", name  # later origins do see the change (climatology ignores levels)


def test_unknown_or_corrupted_state_is_a_clear_error():
    with pytest.raises(InputError, match="unknown model kind 'prophet'"):
        load_forecaster({"name": "prophet", "state": {}})
    with pytest.raises(InputError, match="corrupted state for 'seasonal_naive'"):
        load_forecaster({"name": "seasonal_naive", "state": {"period": "a week"}})
    with pytest.raises(InputError, match="corrupted state for 'arima'"):
        load_forecaster({"name": "arima", "state": {"order": [1, 0], "params": [0.5]}})
    with pytest.raises(InputError, match="corrupted"):
        load_forecaster({"state": {}})


def test_daily_series_fits_every_forecaster(shared_data: Path):
    """NEON daily DO (POSE): annual terms, day-of-year climatology; no forecaster raises."""
    s = load_station(shared_data / "neon_aquatics_daily_2020_2022.csv.gz", "oxygen", site="POSE", freq="1D")
    y, obs, t = s.values.to_numpy(float), s.observed.to_numpy(bool), s.values.index
    n = y.size
    val_start, test_start = int(n * 0.6), int(n * 0.8)
    view = SeriesView(y, obs, t, 7, val_start, np.arange(val_start, test_start - 7))
    test = np.arange(test_start, n - 7)
    for name in STATISTICAL_FORECASTERS:
        f = statistical_forecaster(name).fit(view)
        out = load_forecaster(json.loads(json.dumps(dump_forecaster(f), allow_nan=False))).forecast(view, test)
        assert out.shape == (test.size, 7)
        assert np.isfinite(out[np.isfinite(y[test])]).mean() > 0.5, name
    assert statistical_forecaster("climatology").fit(view).state()["kind"] == "day_of_year"
    assert pd.Timedelta(t[1] - t[0]) == pd.Timedelta("1D")


def test_every_statistical_model_the_config_names_has_a_forecaster():
    from wq_pipeline.config import STATISTICAL_MODELS

    assert tuple(STATISTICAL_FORECASTERS) == STATISTICAL_MODELS
