"""ADF / KPSS wrappers: identical to direct statsmodels calls on real Sapelo DO; verdicts."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.tools.sm_exceptions import InterpolationWarning
from statsmodels.tsa.stattools import adfuller, kpss

from wq_pipeline.evaluation.stationarity import adf_test, joint_verdict, kpss_test, stationarity_table

KEYS = {
    "test", "statistic", "pvalue", "pvalue_note", "lags", "nobs", "n_nan_dropped",
    "crit_1pct", "crit_5pct", "crit_10pct", "stationary", "verdict",
}


@pytest.fixture(scope="module")
def do2000(sapelo_do_hourly: np.ndarray) -> np.ndarray:
    return sapelo_do_hourly[:2000].copy()


def test_adf_equals_statsmodels(do2000: np.ndarray) -> None:
    res = adf_test(do2000)
    stat, p, lags, nobs, crit, _ = adfuller(do2000, autolag="AIC", regression="c")
    assert set(res) == KEYS
    assert res["statistic"] == stat and res["pvalue"] == p
    assert res["lags"] == lags and res["nobs"] == nobs
    assert (res["crit_1pct"], res["crit_5pct"], res["crit_10pct"]) == (crit["1%"], crit["5%"], crit["10%"])
    assert res["stationary"] == (p < 0.05)
    assert res["verdict"] == ("stationary" if p < 0.05 else "non-stationary")


def test_kpss_equals_statsmodels(do2000: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # our wrapper must not leak InterpolationWarning
        res = kpss_test(do2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InterpolationWarning)
        stat, p, lags, crit = kpss(do2000, regression="c", nlags="auto")
    assert set(res) == KEYS
    assert res["statistic"] == stat and res["pvalue"] == p and res["lags"] == lags
    assert res["nobs"] == do2000.size
    assert (res["crit_1pct"], res["crit_5pct"], res["crit_10pct"]) == (crit["1%"], crit["5%"], crit["10%"])


def test_verdicts_random_walk_vs_white_noise() -> None:
    rng = np.random.default_rng(42)
    noise = rng.normal(size=1500)
    walk = np.cumsum(rng.normal(size=1500))
    assert adf_test(noise)["stationary"] and kpss_test(noise)["stationary"]
    adf_w, kpss_w = adf_test(walk), kpss_test(walk)
    assert not adf_w["stationary"] and adf_w["verdict"] == "non-stationary"
    assert not kpss_w["stationary"] and kpss_w["verdict"] == "non-stationary"
    assert kpss_w["pvalue_note"] == "p-value <= 0.01"
    assert joint_verdict(adf_test(noise), kpss_test(noise)) == "stationary"
    assert joint_verdict(adf_w, kpss_w) == "non-stationary"


def test_kpss_bound_note_on_white_noise() -> None:
    noise = np.random.default_rng(0).normal(size=800)
    res = kpss_test(noise)
    assert res["pvalue"] == 0.1 and res["pvalue_note"] == "p-value >= 0.1" and res["stationary"]


def test_nan_dropped_and_constant() -> None:
    x = np.random.default_rng(3).normal(size=300)
    y = x.copy()
    y[[5, 50, 200]] = np.nan
    a, b = adf_test(y), adf_test(np.delete(x, [5, 50, 200]))
    assert a["n_nan_dropped"] == 3 and a["statistic"] == b["statistic"]
    assert kpss_test(y)["statistic"] == kpss_test(np.delete(x, [5, 50, 200]))["statistic"]
    const = np.full(100, 4.2)
    for fn in (adf_test, kpss_test):
        r = fn(const)
        assert r["verdict"] == "constant" and np.isnan(r["statistic"])
    with pytest.raises(ValueError):
        adf_test(np.arange(5.0))


def test_joint_verdict_table() -> None:
    def r(stationary: bool) -> dict:
        return {"stationary": stationary, "verdict": "x"}

    assert joint_verdict(r(True), r(True)) == "stationary"
    assert joint_verdict(r(False), r(False)) == "non-stationary"
    assert joint_verdict(r(True), r(False)) == "inconclusive"
    assert joint_verdict(r(False), r(True)) == "inconclusive (too little evidence)"


def test_stationarity_table(do2000: np.ndarray) -> None:
    noise = np.random.default_rng(0).normal(size=800)  # KPSS p >= 0.1 (see test above)
    table = stationarity_table({"do": do2000, "noise": noise, "flat": np.ones(50)})
    assert isinstance(table, pd.DataFrame) and len(table) == 6
    assert list(table["series"]) == ["do", "do", "noise", "noise", "flat", "flat"]
    assert list(table["test"]) == ["ADF", "KPSS"] * 3
    assert KEYS | {"series", "joint_verdict"} == set(table.columns)
    assert (table.loc[table.series == "noise", "joint_verdict"] == "stationary").all()
    assert (table.loc[table.series == "flat", "joint_verdict"] == "constant").all()
    do_rows = table[table.series == "do"].set_index("test")
    assert do_rows.loc["ADF", "statistic"] == adf_test(do2000)["statistic"]
    assert do_rows["joint_verdict"].nunique() == 1
