"""Level-free scaling: networks see and predict changes from each window's last value."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.conftest import TINY
from wq_pipeline.config import EvaluateConfig
from wq_pipeline.models.network_jobs import fit_predict
from wq_pipeline.evaluation.pipeline import lstm_job, load_stage, plan_stage
from wq_pipeline.models.scaling import Scaler

SHIFT = 4.0  # mg/L: a level the training period never saw


@pytest.fixture(scope="module")
def lstm_inputs(sapelo_tiny_csv):
    cfg = EvaluateConfig(data=sapelo_tiny_csv, **TINY)
    plan = plan_stage(load_stage(cfg), cfg)
    return cfg, lstm_job(plan, cfg)


def _shifted(job, c: float, fixed: int = 0):
    k = job.X_train.shape[2] - fixed
    X = {n: getattr(job, n).copy() for n in ("X_train", "X_val", "X_test")}
    for a in X.values():
        a[:, :, :k] += c
    return dataclasses.replace(job, **X, Y_train=job.Y_train + c, Y_val=job.Y_val + c)


def test_level_free_scaler_round_trip_and_json(lstm_inputs):
    _, job = lstm_inputs
    X, Y = job.X_train, job.Y_train
    ok = np.isfinite(Y).all(axis=1)
    sc = Scaler.for_samples(X[ok], Y[ok], level_free=True)
    z = sc.transform_target(Y[ok], X[ok])
    assert np.allclose(sc.inverse(z, X[ok]), Y[ok])
    assert np.allclose(sc.transform_inputs(X[ok])[:, -1, 0], -sc.mean / sc.std)  # last value is the origin
    shifted = Scaler.for_samples(X[ok] + SHIFT, Y[ok] + SHIFT, level_free=True)
    assert shifted.mean == pytest.approx(sc.mean, abs=1e-12) and shifted.target == pytest.approx(sc.target)
    assert Scaler.from_json(sc.to_json()) == sc
    old = Scaler.from_json({"mean": 7.5, "std": 1.25})  # a version saved before level-free scaling
    assert not old.level_free and old.inverse(np.zeros((1, 2))).tolist() == [[7.5, 7.5]]


def test_a_level_free_network_forecasts_a_shifted_series_shifted(lstm_inputs):
    """Plain LSTM on the real tiny Sapelo series: trained and forecasting on the series + 4 mg/L,
    it forecasts its forecasts of the original + 4 mg/L (float tolerance); without level-free
    scaling it does not."""
    cfg, job = lstm_inputs
    base = fit_predict(job, cfg)
    moved = fit_predict(_shifted(job, SHIFT), cfg)
    assert np.abs(moved.forecast - (base.forecast + SHIFT)).max() < 1e-3
    assert np.abs(moved.val_forecast - (base.val_forecast + SHIFT)).max() < 1e-3
    # the test inputs alone shifted (a level outside training): the same
    net, scaler = base.model, base.scaler
    from wq_pipeline.models.network_jobs import network_forecast

    assert np.abs(network_forecast(net, scaler, job.X_test + SHIFT) - (base.forecast + SHIFT)).max() < 1e-4
    plain = cfg.model_copy(update={"level_free": False})
    p_base = fit_predict(job, plain)
    p_out = network_forecast(p_base.model, p_base.scaler, job.X_test + SHIFT)
    assert np.abs(p_out - (p_base.forecast + SHIFT)).max() > 0.05  # the published scaling is not level-free


def test_level_free_residual_network_ignores_every_channels_level(lstm_inputs):
    """A network predicting a first stage's error (no level in its targets) with a calendar
    channel: adding constants to every non-calendar channel leaves its forecast unchanged."""
    cfg, job = lstm_inputs
    rng = np.random.default_rng(0)
    cal = {n: rng.uniform(-1, 1, getattr(job, n).shape[:2] + (1,)) for n in ("X_train", "X_val", "X_test")}
    X = {n: np.concatenate([getattr(job, n), getattr(job, n) * 0.5, cal[n]], axis=2) for n in cal}
    resid = dataclasses.replace(job, **X, Y_train=job.Y_train - job.X_train[:, -1:, 0],
                                Y_val=job.Y_val - job.X_val[:, -1:, 0], own_target_scale=True, fixed_channels=1)
    base = fit_predict(resid, cfg)
    moved = _shifted(resid, SHIFT, fixed=1)
    moved = dataclasses.replace(moved, Y_train=resid.Y_train, Y_val=resid.Y_val)
    out = fit_predict(moved, cfg)
    assert np.abs(out.forecast - base.forecast).max() < 1e-3
    assert base.scaler.fixed_channels == 1 and not base.scaler.target_from_level
