"""The evaluation pipeline end to end (in-process): outputs, and the honest-protocol guarantee."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wq_pipeline.config import EvaluateConfig
from tests.conftest import TINY
from wq_pipeline.pipeline import MODEL_NAMES, run_evaluation

def _altered_after(src: Path, dst: Path, cut: pd.Timestamp) -> None:
    """Copy of ``src`` with every DO reading after ``cut`` changed (kept within its physical range)."""
    df = pd.read_csv(src)
    ts = pd.to_datetime(df["DateTimeStamp"], utc=True)
    later = ts > cut
    df.loc[later, "DO_obs"] = np.clip(df.loc[later, "DO_obs"] * 0.6 + 1.5, 0.1, 20)
    df.to_csv(dst, index=False)


def _issued_up_to(forecasts: pd.DataFrame, cut: pd.Timestamp) -> pd.DataFrame:
    issued = pd.to_datetime(forecasts["issued_at"], utc=True)
    return forecasts.loc[issued <= cut, ["model", "issued_at", "step", "forecast"]].reset_index(drop=True)


def test_outputs_follow_the_contract(tiny_stepwise_run):
    out, res = tiny_stepwise_run
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("dataset", "target", "site", "freq", "protocol", "method", "modes", "window", "decomp_window",
                "horizon", "n_train", "n_test", "qc", "models", "timings_s"):
        assert key in metrics
    assert set(metrics["models"]) == set(MODEL_NAMES)
    for m in metrics["models"].values():
        for k in ("rmse", "mae", "mape", "r2", "nse", "kge", "skill"):
            assert k in m
        assert len(m["per_step"]["rmse"]) == 3
    assert metrics["models"]["persistence"]["skill"] == pytest.approx(0.0)
    assert metrics["freq"] == "1h" and metrics["protocol"] == "stepwise" and not metrics["leaky"]
    assert metrics["qc"]["grid_points"] == 1488
    fc = pd.read_csv(out / "forecasts.csv")
    assert list(fc.columns) == ["model", "issued_at", "target_time", "step", "forecast", "observed"]
    assert len(fc) == metrics["n_test"] * 3 * len(MODEL_NAMES)
    assert fc["issued_at"].str.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d").all()
    st = pd.read_csv(out / "stationarity.csv")
    assert set(st["series"]) == {"raw", "imf1", "imf2", "residual"}
    assert set(st["test"].str.lower()) == {"adf", "kpss"}
    # persistence RMSE recomputed from the forecast table
    p = fc[(fc.model == "persistence") & (fc.step == 3)].dropna()
    rmse = float(np.sqrt(np.mean((p.forecast - p.observed) ** 2)))
    assert metrics["models"]["persistence"]["rmse"] == pytest.approx(rmse, rel=1e-4)


def test_stepwise_forecasts_ignore_data_after_their_origin(tiny_stepwise_run, sapelo_tiny_csv, tmp_path):
    out, res = tiny_stepwise_run
    issued = pd.to_datetime(res.forecasts["issued_at"], utc=True).sort_values().unique()
    cut = issued[len(issued) // 2]  # a test origin halfway through the test period
    altered = tmp_path / "sapelo_62d_altered.csv"
    _altered_after(sapelo_tiny_csv, altered, cut)
    # the shared run trained in-process; this one trains in two worker processes, so the check
    # also shows that forecasts do not depend on how training is spread over processes
    assert res.metrics["training_workers"] == 1
    res2 = run_evaluation(EvaluateConfig(data=altered, out=tmp_path / "out2", jobs=2, **TINY))
    assert res2.metrics["training_workers"] == 2
    before = _issued_up_to(res.forecasts, cut)
    after = _issued_up_to(res2.forecasts, cut)
    assert len(before) > 0 and set(before.model) == set(MODEL_NAMES)
    pd.testing.assert_frame_equal(before, after, check_exact=True)
    # ... and the later forecasts did change, so the alteration reached the pipeline
    later1 = res.forecasts.loc[pd.to_datetime(res.forecasts["issued_at"], utc=True) > cut, "forecast"].to_numpy()
    later2 = res2.forecasts.loc[pd.to_datetime(res2.forecasts["issued_at"], utc=True) > cut, "forecast"].to_numpy()
    assert np.abs(later1 - later2).max() > 0.1


def test_global_protocol_fails_the_same_check(sapelo_tiny_csv, tmp_path):
    cfg = dict(TINY, protocol="global")
    res = run_evaluation(EvaluateConfig(data=sapelo_tiny_csv, out=tmp_path / "g1", **cfg))
    assert res.metrics["leaky"] and "LEAKY" in res.metrics["protocol_label"]
    issued = pd.to_datetime(res.forecasts["issued_at"], utc=True).sort_values().unique()
    cut = issued[len(issued) // 2]
    altered = tmp_path / "altered.csv"
    _altered_after(sapelo_tiny_csv, altered, cut)
    res2 = run_evaluation(EvaluateConfig(data=altered, out=tmp_path / "g2", **cfg))
    a = _issued_up_to(res.forecasts, cut)
    b = _issued_up_to(res2.forecasts, cut)
    main = a.model == "decomp_feca_lstm"
    assert np.abs(a.loc[main, "forecast"].to_numpy() - b.loc[main, "forecast"].to_numpy()).max() > 1e-3


def test_entropy_groups_are_chosen_on_training_windows_only(sapelo_tiny_csv, tmp_path):
    """CEEMDAN-SE-VMD learns its grouping from data: changing everything after the training
    period leaves the entropies and groups unchanged; changing the training period does not."""
    from wq_pipeline.decompose import make_decomposer
    from wq_pipeline.pipeline import fit_decomposer, learnt_parameters, load_stage, plan_stage

    cfg = EvaluateConfig(data=sapelo_tiny_csv, **dict(TINY, method="ceemdan-se-vmd", modes=4, emd_trials=5))

    def fitted(path: Path) -> dict:
        c = cfg.model_copy(update={"data": path})
        plan = plan_stage(load_stage(c), c)
        decomposer = make_decomposer(c.method, c.modes, c.seed, **c.decomposer_params())
        return learnt_parameters(fit_decomposer(decomposer, plan, c)), plan

    base, plan = fitted(sapelo_tiny_csv)
    assert len(base["groups"]) == 5 and base["groups"][0] == 0 and base["groups"][-1] == 2
    later = tmp_path / "later.csv"
    _altered_after(sapelo_tiny_csv, later, plan.times[plan.split.val_start - 1])
    assert fitted(later)[0] == base
    earlier = tmp_path / "earlier.csv"
    _altered_after(sapelo_tiny_csv, earlier, plan.times[plan.split.val_start // 2])
    assert fitted(earlier)[0]["entropies"] != base["entropies"]
