"""The hybrid main model's parts: calendar terms, first stage, inputs, shrinking; and its run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from wq_pipeline.models.baselines.harmonic import harmonic_ar_forecast
from wq_pipeline.data.covariates import no_covariates
from wq_pipeline.decompose import make_decomposer
from wq_pipeline.models.hybrid import HybridOptions, calendar_channels, first_stage_forecast, hybrid_inputs, shrink_weights
from wq_pipeline.models.protocol import stepwise_decompose


def test_calendar_channels_hourly_and_daily() -> None:
    t = pd.date_range("2012-01-01", periods=48, freq="1h", tz="UTC")
    cal = calendar_channels(t)
    assert cal.shape == (48, 4)
    assert cal[6, 0] == pytest.approx(1.0) and cal[6, 1] == pytest.approx(0.0, abs=1e-12)  # 06:00: sin = 1
    assert cal[18, 0] == pytest.approx(-1.0)
    assert cal[0, 2] == pytest.approx(0.0) and cal[0, 3] == pytest.approx(1.0)  # 1 January
    assert np.allclose(cal[:24], cal[24:48], atol=0.02)  # one day later: same hour, day of year moves slightly
    daily = calendar_channels(pd.date_range("2019-01-01", periods=400, freq="1D"))
    assert daily.shape == (400, 2)  # no hour of day on a daily grid
    assert daily[365, 0] == pytest.approx(daily[0, 0], abs=0.02)


def test_first_stage_is_harmonic_ar_or_nothing(sapelo_do_hourly) -> None:
    y = sapelo_do_hourly
    origins = np.flatnonzero(np.isfinite(y))[800:820]
    params = dict(n_fit=336, p_ar=2, tides=True)
    got = first_stage_forecast(y, origins, 6, 1.0, "harmonic_ar", params)
    assert np.array_equal(got, harmonic_ar_forecast(y, origins, 6, 1.0, **params), equal_nan=True)
    assert np.isfinite(got).all()
    assert np.array_equal(first_stage_forecast(y, origins, 6, 1.0, "none", None), np.zeros((20, 6)))
    with pytest.raises(ValueError, match="first stage"):
        first_stage_forecast(y, origins, 6, 1.0, "arima", None)  # type: ignore[arg-type]


def test_hybrid_inputs_use_nothing_after_the_origin(sapelo_do_hourly) -> None:
    y = sapelo_do_hourly[:3000].copy()
    assert np.isfinite(y[1000:2000]).all()
    origins = np.arange(1200, 1400)
    dec = make_decomposer("atrous", 4)
    times = pd.date_range("2012-01-01", periods=y.size, freq="1h", tz="UTC")
    opts = HybridOptions()

    def inputs(v: np.ndarray) -> np.ndarray:
        samples = stepwise_decompose(v, origins, dec, 128, 24)
        return hybrid_inputs(v, origins, 24, opts, samples, no_covariates(v.size), calendar_channels(times))

    base = inputs(y)
    assert base.shape == (200, 24, 1 + 5 + 4)
    assert np.array_equal(base[:, :, 0], y[origins[:, None] + np.arange(-23, 1)])
    assert np.allclose(base[:, :, 1:6].sum(axis=2), base[:, :, 0], atol=1e-12)  # components sum to the raw window
    changed = y.copy()
    changed[1300:] += 3.0
    after = inputs(changed)
    early = origins < 1300
    assert np.array_equal(after[early], base[early])
    assert not np.array_equal(after[~early], base[~early])
    only_raw = hybrid_inputs(y, origins, 24, HybridOptions(components=False, calendar=True), None,
                             no_covariates(y.size), calendar_channels(times))
    assert only_raw.shape == (200, 24, 5)
    with pytest.raises(ValueError, match="raw channel"):
        hybrid_inputs(y, origins, 24, HybridOptions(raw_channel=False, components=False), None,
                      no_covariates(y.size), None)


def test_shrink_weights_least_squares_in_unit_interval() -> None:
    rng = np.random.default_rng(3)
    c = rng.normal(size=(500, 3))
    r = np.column_stack([0.4 * c[:, 0], 2.0 * c[:, 1], -c[:, 2]]) + 0.01 * rng.normal(size=(500, 3))
    r[5, 0] = np.nan
    w = shrink_weights(r, c)
    assert w[0] == pytest.approx(0.4, abs=0.01)
    assert w[1] == 1.0 and w[2] == 0.0  # clipped: never amplify, never flip the correction
    assert np.array_equal(shrink_weights(r, np.zeros_like(r)), np.zeros(3))


def test_evaluation_reports_the_hybrid_with_validation_scores(tiny_stepwise_run) -> None:
    out, res = tiny_stepwise_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["main_model"] == "ensemble" and "hybrid_feca_lstm" in metrics["ensemble"]["members"]
    h = metrics["hybrid"]
    assert len(h["shrink_weights"]) == metrics["horizon"] and all(0 <= w <= 1 for w in h["shrink_weights"])
    # a weight of 0 is allowed, so shrinking can never make validation worse than the first stage
    assert h["validation_rmse"] <= h["validation_rmse_first_stage"] + 1e-9
    assert metrics["baselines"]["harmonic_ar_params"]["n_fit"] > 0
    fc = res.forecasts
    hyb = fc[fc.model == "hybrid_feca_lstm"]
    assert hyb.forecast.notna().all()
    # the network is trained on the first stage's error: the hybrid is not the harmonic baseline itself
    harm = fc[fc.model == "harmonic_ar"].forecast.to_numpy()
    assert not np.allclose(hyb.forecast.to_numpy(), harm) or max(h["shrink_weights"]) == 0
