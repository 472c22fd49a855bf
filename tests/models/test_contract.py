"""The forecaster contract, driven the same way for every model kind: a forecast at origin t uses
data up to t only, and every kind builds from one fit of every model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TINY
from wq_pipeline.config import SERVED_MODELS, EvaluateConfig
from wq_pipeline.models.forecaster import KINDS, SeriesView
from wq_pipeline.models.kinds import kind
from wq_pipeline.serve.training import fold_forecaster


@pytest.mark.parametrize("name", SERVED_MODELS)
def test_changing_the_future_leaves_every_models_past_forecasts_unchanged(name, tiny_stepwise_run):
    out, result = tiny_stepwise_run
    cfg = EvaluateConfig(data=Path(result.metrics["dataset"]), out=out, **TINY)
    fold = result.folds[-1]
    plan = fold.plan
    forecaster = fold_forecaster(fold, cfg, name)
    # every model other than the main one is served with the record of its own forecasts
    assert kind(name) is type(getattr(forecaster, "model", forecaster)) and KINDS[name].name == name
    assert forecaster.served_model == name
    origins = plan.split.test
    t = int(origins[origins.size // 2])
    H = TINY["horizon"]
    empty = np.empty(0, np.int64)
    view = SeriesView(plan.values, plan.observed, plan.times, H, plan.values.size, empty, plan.covariates)
    future = plan.values.copy()
    future[t + 1:] = future[t + 1:] * 1.7 + 3.0  # a different future, same grid
    observed = plan.observed.copy()
    observed[t + 1::5] = False
    changed = SeriesView(future, observed, plan.times, H, plan.values.size, empty, plan.covariates)
    past = origins[origins <= t]
    before = forecaster.forecast(view, past)
    after = forecaster.forecast(changed, past)
    assert before.shape == (past.size, H) and np.isfinite(before).any()
    np.testing.assert_array_equal(before, after)
    # so are its quantiles: calibrated only on errors whose targets were observed by each origin
    f_before, q_before = forecaster.forecast_with_quantiles(view, past)
    f_after, q_after = forecaster.forecast_with_quantiles(changed, past)
    np.testing.assert_array_equal(f_before, before)
    np.testing.assert_array_equal(q_before, q_after)
    assert q_before.shape == (past.size, H, len(cfg.quantiles)) and np.isfinite(q_before).any()
    later = origins[-5:]  # well after t: every model that reads the series sees the changed values there
    if name == "climatology":  # a fixed profile of the training period: reads nothing at forecast time
        return
    assert not np.allclose(forecaster.forecast(view, later), forecaster.forecast(changed, later), equal_nan=True)
