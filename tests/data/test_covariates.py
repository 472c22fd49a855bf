"""Covariates as extra input channels: causal by construction, on real Sapelo data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import TINY
from wq_pipeline.config import EvaluateConfig
from wq_pipeline.data.covariates import build_covariates, causal_fill, covariate_windows
from wq_pipeline.errors import InputError
from wq_pipeline.evaluation.pipeline import lstm_job, load_stage, plan_stage


def test_causal_fill_carries_readings_forward_only():
    v = np.array([1.0, 2.0, np.nan, np.nan, np.nan, 6.0, np.nan])
    seen = np.isfinite(v)
    out = causal_fill(v, seen, max_fill=2)
    np.testing.assert_array_equal(out, [1.0, 2.0, 2.0, 2.0, np.nan, 6.0, 6.0])
    # a reading that QC interpolated is not a reading: it is replaced by the last real one
    interpolated = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 6.0])
    np.testing.assert_array_equal(causal_fill(interpolated, seen, max_fill=2), out)
    # nothing before the first reading
    assert np.isnan(causal_fill(np.array([np.nan, 1.0]), np.array([False, True]), 5)[0])


def _with_gap_and_later_change(src: Path, dst: Path, cut: pd.Timestamp, change_later: bool) -> None:
    """``src`` with the two Temp/Sal readings of the hour ending at ``cut`` removed (QC then
    interpolates that hour with the reading after ``cut``) and, if asked, every later Temp/Sal
    reading changed."""
    df = pd.read_csv(src)
    ts = pd.to_datetime(df["DateTimeStamp"], utc=True)
    hole = (ts > cut - pd.Timedelta("1h")) & (ts <= cut)
    df.loc[hole, ["Temp", "Sal"]] = np.nan
    if change_later:
        later = ts > cut
        df.loc[later, "Temp"] = df.loc[later, "Temp"] + 3.0
        df.loc[later, "Sal"] = df.loc[later, "Sal"] * 0.5
    df.to_csv(dst, index=False)


def test_covariate_inputs_never_reach_past_the_origin(sapelo_tiny_csv, tmp_path):
    cfg = EvaluateConfig(data=sapelo_tiny_csv, covariates=["Temp", "sal"], **TINY)
    plan = plan_stage(load_stage(cfg), cfg)
    test = plan.split.test
    cut_pos = int(test[test.size // 2])
    cut = plan.times[cut_pos]
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    _with_gap_and_later_change(sapelo_tiny_csv, a, cut, change_later=False)
    _with_gap_and_later_change(sapelo_tiny_csv, b, cut, change_later=True)
    plans, jobs = {}, {}
    for name, path in (("a", a), ("b", b)):
        c = cfg.model_copy(update={"data": path})
        station = load_stage(c)
        # QC interpolated the hole with the reading after the cut: the changed data reached the frame
        plans[name] = plan_stage(station, c)
        jobs[name] = lstm_job(plans[name], c)
    assert plans["a"].covariates.names == ["Temp", "Sal"]
    fa, fb = (load_stage(cfg.model_copy(update={"data": p})).frame for p in (a, b))
    assert abs(fa["Temp"].iloc[cut_pos] - fb["Temp"].iloc[cut_pos]) > 1.0  # interpolation used the later reading
    # ... but the covariate inputs of every origin up to the cut are identical, bit for bit
    up_to = test <= cut_pos
    np.testing.assert_array_equal(jobs["a"].X_test[up_to], jobs["b"].X_test[up_to])
    np.testing.assert_array_equal(jobs["a"].X_train, jobs["b"].X_train)
    # channel order: target, then covariates; the last input step is the origin itself
    X = jobs["a"].X_test
    assert X.shape[2] == 3
    np.testing.assert_array_equal(X[:, -1, 0], plans["a"].values[test])
    np.testing.assert_array_equal(X[:, :, 1:], covariate_windows(plans["a"].covariates, test, cfg.window))
    # in the hole the input is the last reading before it, carried forward
    k = int(np.flatnonzero(test == cut_pos)[0])
    assert X[k, -1, 1] == X[k, -2, 1] == plans["a"].covariates.values[cut_pos - 1, 0]
    # and later origins did see the change
    assert np.abs(jobs["a"].X_test[~up_to] - jobs["b"].X_test[~up_to]).max() > 1.0


def test_missing_covariates_are_filled_with_the_training_mean(sapelo_tiny_csv):
    cfg = EvaluateConfig(data=sapelo_tiny_csv, **TINY)
    station = load_stage(cfg)
    station.frame_observed.loc[station.frame.index[-100:], "Sal"] = False  # the last 100 hours lost
    cov = build_covariates(station, ["Sal"], train_end=800, max_fill=3)
    assert cov.info["Sal"]["filled_with_training_mean"] == 97
    readings = causal_fill(station.frame["Sal"].to_numpy(), station.frame_observed["Sal"].to_numpy(), 3)
    train_mean = np.nanmean(readings[:800])
    assert cov.values[-1, 0] == pytest.approx(train_mean)
    assert np.isfinite(cov.values).all()


@pytest.mark.parametrize("wanted, message", [
    (["Salinity"], "covariate column 'Salinity' not found"),
    (["DO_obs"], "is the target column"),
    (["Sal", "SAL"], "given twice"),
])
def test_bad_covariates_name_the_file_and_the_columns(sapelo_tiny_csv, wanted, message):
    station = load_stage(EvaluateConfig(data=sapelo_tiny_csv, **TINY))
    with pytest.raises(InputError, match=message) as err:
        build_covariates(station, wanted, train_end=800, max_fill=3)
    assert sapelo_tiny_csv.name in str(err.value)
