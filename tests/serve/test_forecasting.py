"""Forecasts as of a time: equal to the evaluation's at the same origin, using data up to then only."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from tests.conftest import TINY, TINY_TRAIN_AS_OF
from tests.serve.test_training import _cut_file
from wq_pipeline.store.archive import Archive
from wq_pipeline.serve.backfill import run_backfill
from wq_pipeline.config import EvaluateConfig
from wq_pipeline.errors import InputError
from wq_pipeline.serve.forecasting import issue_forecast
from wq_pipeline.models.forecaster import SeriesView
from wq_pipeline.store.registry import Registry
from wq_pipeline.serve.training import register_evaluation


def test_stored_forecasts_equal_the_evaluation_at_every_test_origin(tiny_stepwise_run, sapelo_tiny_csv, tmp_path):
    out, result = tiny_stepwise_run
    cfg = EvaluateConfig(data=sapelo_tiny_csv, out=out, **TINY)
    registry = Registry(tmp_path / "models")
    version = register_evaluation(result, cfg, registry)
    plan = result.plan
    assert version.trained_until == plan.times[plan.split.test_start - 1]

    assert version.model == "ensemble"  # the main model, by default
    evaluated = pd.read_csv(out / "forecasts.csv")
    evaluated = evaluated[evaluated["model"] == "ensemble"]
    evaluated["issued_at"] = pd.to_datetime(evaluated["issued_at"], utc=True)

    # one forecast through the single-forecast path
    origin = plan.times[plan.split.test[len(plan.split.test) // 2]]
    one = issue_forecast(cfg, registry, origin)
    assert one.version == version.version and one.issued_at[0] == origin
    expected = evaluated[evaluated["issued_at"] == origin].sort_values("step")["forecast"].to_numpy()
    np.testing.assert_allclose(one.values[0], expected, rtol=0, atol=1e-5)

    # every test origin through the batched backfill path, stored and read back
    archive = Archive(f"sqlite:///{tmp_path / 'wq.db'}")
    first, last = plan.times[plan.split.test[0]], plan.times[plan.split.test[-1]]
    res = run_backfill(cfg, registry, archive, start=first, end=last, every="1h", model_version=version.version)
    assert res.written_origins == plan.split.test.size and res.skipped == res.issue_times - plan.split.test.size
    stored = archive.forecasts(site=one.site, target="DO_obs").sort_values(["issued_at", "step"])
    merged = stored.merge(evaluated, on=["issued_at", "step"], how="inner")
    assert len(merged) == len(evaluated) == plan.split.test.size * TINY["horizon"]
    np.testing.assert_allclose(merged["value"], merged["forecast"], rtol=0, atol=1e-5)

    # the stored quantiles are the evaluation's too (the ensemble's own errors over its record)
    stored_q = archive.quantiles(site=one.site, target="DO_obs")
    assert len(stored_q) == plan.split.test.size * TINY["horizon"] * 9
    wide = stored_q.pivot_table(index=["issued_at", "step"], columns="level", values="value")
    ev = evaluated.set_index(["issued_at", "step"])[[f"q{lv:g}" for lv in wide.columns]]
    # (forecasts.csv holds 6 significant digits: 5e-5 at 10 mg/L)
    np.testing.assert_allclose(wide.to_numpy(), ev.loc[wide.index].to_numpy(), rtol=0, atol=1e-4)

    # the served ensemble's weights at every test origin are the evaluation's, bit for bit: they
    # come from the record of member forecasts and the observations known at each origin
    loaded = registry.load(version.version)
    view = SeriesView(plan.values, plan.observed, plan.times, TINY["horizon"], plan.values.size, np.empty(0, np.int64))
    fold = result.folds[-1]
    np.testing.assert_array_equal(loaded.forecaster.weights(view, plan.split.test), fold.weights[plan.split.val.size:])


def test_forecast_as_of_uses_only_observations_up_to_then(tiny_model, sapelo_tiny_csv, tmp_path):
    cfg, root, version = tiny_model
    registry = Registry(root)
    as_of = "2012-02-10T12:00:00-05:00"
    full = issue_forecast(cfg, registry, as_of)
    cut = _cut_file(sapelo_tiny_csv, tmp_path / "cut", as_of)
    known = issue_forecast(cfg.model_copy(update={"data": cut}), registry, None)
    assert full.issued_at[0] == known.issued_at[0] == pd.Timestamp(as_of)
    np.testing.assert_array_equal(full.values, known.values)  # later data changes nothing
    assert full.version == version.version
    assert list(full.frame()["target_time"]) == [pd.Timestamp(as_of) + pd.Timedelta(hours=h) for h in (1, 2, 3)]


def test_forecast_between_observations_is_issued_from_the_last_one(tiny_model):
    cfg, root, _ = tiny_model
    # a time between grid steps: the forecast comes from the newest hour at or before it
    issued = issue_forecast(cfg, Registry(root), "2012-02-10T12:40:00-05:00")
    assert issued.issued_at[0] == pd.Timestamp("2012-02-10T12:00:00-05:00")


def test_no_version_trained_before_as_of_is_a_clear_error(tiny_model, tmp_path):
    cfg, root, _ = tiny_model
    with pytest.raises(InputError, match="no model version .* trained on data up to 2012-01-20"):
        issue_forecast(cfg, Registry(root), "2012-01-20T00:00")
    reg = tmp_path / "reg"
    shutil.copytree(root, reg)
    with pytest.raises(InputError, match="unknown model version 'nope'"):
        issue_forecast(cfg, Registry(reg), "2012-02-10T00:00", model_version="nope")
    assert pd.Timestamp(TINY_TRAIN_AS_OF) < pd.Timestamp("2012-02-10T00:00-05:00")


def test_two_stage_version_forecasts_with_the_groups_learnt_in_evaluation(sapelo_tiny_csv, tmp_path):
    """A registered ceemdan-se-vmd model keeps the entropy groups its evaluation learnt on training
    windows, so 'wq forecast' rebuilds the same channels and issues the evaluation's forecasts."""
    from wq_pipeline.evaluation.pipeline import run_evaluation

    cfg = EvaluateConfig(data=sapelo_tiny_csv, out=tmp_path / "eval",
                         **dict(TINY, method="ceemdan-se-vmd", modes=3, secondary_modes=2, emd_trials=5))
    result = run_evaluation(cfg)
    groups = result.metrics["decomposer_fitted"]["groups"]
    assert len(groups) == 4 and result.metrics["components"] == ["high_vmd1", "high_vmd2", "medium", "low", "residual"]
    registry = Registry(tmp_path / "models")
    version = register_evaluation(result, cfg, registry)
    assert version.manifest["decomposer_params"]["groups"] == groups
    plan = result.plan
    origin = plan.times[plan.split.test[len(plan.split.test) // 3]]
    issued = issue_forecast(cfg, registry, origin)
    evaluated = result.forecasts[(result.forecasts["model"] == "ensemble")
                                 & (pd.to_datetime(result.forecasts["issued_at"], utc=True) == origin)]
    np.testing.assert_allclose(issued.values[0], evaluated.sort_values("step")["forecast"].to_numpy(), rtol=0, atol=1e-5)


def test_a_version_with_covariates_serves_what_the_evaluation_scored(sapelo_tiny_csv, tmp_path, capsys):
    """``wq evaluate --covariates Temp,Sal --register``: the version stores its covariate columns
    and fill means; stored forecasts equal the evaluation's at every test origin; a live file
    without a registered column exits 2 naming it."""
    from wq_pipeline.cli import main
    from wq_pipeline.evaluation.pipeline import run_evaluation

    cfg = EvaluateConfig(data=sapelo_tiny_csv, out=tmp_path / "eval", covariates=["Temp", "Sal"], **TINY)
    result = run_evaluation(cfg)
    registry = Registry(tmp_path / "models")
    version = register_evaluation(result, cfg, registry)
    record = version.manifest["covariates"]
    assert record["names"] == ["Temp", "Sal"] and set(record["fill_means"]) == {"Temp", "Sal"}
    assert record["fill_means"]["Temp"] == pytest.approx(result.plan.covariates.info["Temp"]["fill_mean"])

    evaluated = result.forecasts[result.forecasts["model"] == "ensemble"]
    plan = result.plan
    archive = Archive(f"sqlite:///{tmp_path / 'wq.db'}")
    first, last = plan.times[plan.split.test[0]], plan.times[plan.split.test[-1]]
    run_backfill(cfg, registry, archive, start=first, end=last, every="1h", model_version=version.version)
    stored = archive.forecasts(target="DO_obs")
    served = stored[stored["issued_by"] == "ensemble"]
    merged = served.merge(evaluated.assign(issued_at=pd.to_datetime(evaluated["issued_at"], utc=True)),
                          on=["issued_at", "step"], how="inner")
    assert len(merged) == plan.split.test.size * TINY["horizon"]
    np.testing.assert_allclose(merged["value"], merged["forecast"], rtol=0, atol=1e-5)

    # the same station file without Sal: refused, naming the column and the version
    (tmp_path / "live").mkdir()
    no_sal = tmp_path / "live" / sapelo_tiny_csv.name  # same file name: the same site
    pd.read_csv(sapelo_tiny_csv).drop(columns=["Sal"]).to_csv(no_sal, index=False)
    rc = main(["forecast", "--data", str(no_sal), "--target", "DO_obs", "--model-version", version.version,
               "--models", str(tmp_path / "models"), "--database", f"sqlite:///{tmp_path / 'wq.db'}",
               "--as-of", str(last)])
    err = capsys.readouterr().err
    assert rc == 2 and "covariate column 'Sal' not found" in err and version.version in err, err
