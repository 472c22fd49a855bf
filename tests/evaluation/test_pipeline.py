"""The evaluation pipeline end to end (in-process): outputs, and the honest-protocol guarantee."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wq_pipeline.config import EvaluateConfig
from tests.conftest import TINY
from wq_pipeline.evaluation.pipeline import MODEL_NAMES, load_stage, lstm_job, plan_folds, plan_stage, run_evaluation

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
    qcols = [f"q{q:g}" for q in metrics["probabilistic"]["levels"]]
    assert list(fc.columns) == ["model", "issued_at", "target_time", "step", "forecast", "observed", "fold", *qcols,
                                "P(DO_obs<4)"]
    assert len(fc) == metrics["n_test"] * 3 * len(MODEL_NAMES)
    # every model's quantiles: ordered, the median beside the point forecast, calibrated only once
    # enough errors were observed (the test period follows a validation period, so all are finite)
    q = fc[qcols].to_numpy()
    assert np.isfinite(q).all() and (np.diff(q, axis=1) >= 0).all() and "q0.5" in qcols
    prob = metrics["probabilistic"]
    assert prob["method"] == "aci" and set(prob["models"]) == set(MODEL_NAMES)
    for name, sc in prob["models"].items():
        assert len(sc["crps_per_step"]) == 3 and sc["crps"] > 0 and set(sc["intervals"]) == {"50", "80", "90", "95"}
        assert 0 <= sc["intervals"]["90"]["coverage"] <= 1 and sc["n_points"] == metrics["models"][name]["n_points"]
    assert prob["models"]["climatology"]["crps_skill_climatology"] == pytest.approx(0.0)
    # the crossing probability of every row, from its own quantiles, and its scores
    p = fc["P(DO_obs<4)"].to_numpy()
    assert np.isfinite(p).all() and (p > 0).all() and (p < 1).all()
    low = fc["q0.975"] < 4  # the whole 95 % interval below the threshold: a high probability
    assert (p[low] >= 0.975).all() and (p[fc["q0.025"] > 4] <= 0.025).all()
    (ex,) = metrics["exceedance"]
    assert ex["threshold"] == "DO_obs<4" and 0 < ex["events"] < ex["n_points"]
    main = ex["models"]["ensemble"]
    assert 0 <= main["brier"] <= 1 and len(main["brier_per_step"]) == 3
    assert sum(r["count"] for r in ex["reliability"]) == ex["n_points"]
    # the alerts the main model would have raised at the default level 0.5, recounted from forecasts.csv
    ens = fc[fc["model"] == "ensemble"]
    per_origin = ens.groupby(["fold", "issued_at"]).agg(alert=("P(DO_obs<4)", lambda v: (v >= 0.5).any()),
                                                         event=("observed", lambda v: (v < 4).any()),
                                                         seen=("observed", lambda v: v.notna().any()))
    per_origin = per_origin[per_origin["seen"]]
    a = ex["alerts"]
    assert a["alert_level"] == 0.5 and a["origins"] == len(per_origin)
    assert a["alerts"] == per_origin["alert"].sum() and a["events"] == per_origin["event"].sum()
    assert a["hits"] == (per_origin["alert"] & per_origin["event"]).sum() and a["hits"] + a["misses"] == a["events"]
    assert fc["issued_at"].str.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d").all()
    assert metrics["main_model"] == "ensemble" and metrics["ensemble"]["members"] == list(MODEL_NAMES[:-1])
    # every model's validation RMSE at step H (what a choice between models may use), recomputed
    val = res.folds[0]
    o = val.plan.split.val
    obs = val.plan.obs_values[o + 3]
    for name in ("persistence", "harmonic_ar", "lstm", "ensemble"):
        err = val.forecasts[name][: o.size, -1] - obs
        assert metrics["validation_rmse"][name] == pytest.approx(float(np.sqrt(np.nanmean(err ** 2))), rel=1e-9)
    wt = pd.read_csv(out / "weights.csv")
    assert list(wt.columns) == ["fold", "issued_at", "period", *MODEL_NAMES[:-1]]
    assert len(wt) == metrics["n_val"] + metrics["n_test"] and set(wt["period"]) == {"validation", "test"}
    assert np.allclose(wt[list(MODEL_NAMES[:-1])].sum(axis=1), 1.0)
    assert metrics["ensemble"]["mean_weight"] == pytest.approx(
        wt[wt.period == "test"][list(MODEL_NAMES[:-1])].mean().to_dict(), abs=1e-4)
    st = pd.read_csv(out / "stationarity.csv")
    assert set(st["series"]) == {"raw", "imf1", "imf2", "residual"}
    assert set(st["test"].str.lower()) == {"adf", "kpss"}
    # persistence RMSE recomputed from the forecast table
    p = fc[(fc.model == "persistence") & (fc.step == 3)].dropna()
    rmse = float(np.sqrt(np.mean((p.forecast - p.observed) ** 2)))
    assert metrics["models"]["persistence"]["rmse"] == pytest.approx(rmse, rel=1e-4)


def _choices(result, cut: pd.Timestamp | None = None) -> dict:
    """Every choice a run made from data, per fold: baseline settings, hybrid shrink weights,
    every network's scaler statistics, best epoch and validation losses, covariate fill
    statistics, and the ensemble's weights (and the hybrid network's own forecast before
    shrinking) at the origins up to ``cut``."""
    out = {}
    for fold in result.folds:
        o = fold.plan.split.fit_origins
        upto = o.size if cut is None else int((fold.plan.times[o] <= cut).sum())
        out[fold.plan.split.fold] = {
            # (timings, and counts of robustness events over every origin, test ones included, are
            # not choices)
            "baselines": {k: v for k, v in fold.baselines.items() if not k.endswith(("seconds", "_events"))},
            "shrink": fold.hybrid["shrink_weights"],
            "networks": {t.name: {k: t.training.get(k) for k in ("scaler", "best_epoch", "epochs_run", "val_loss",
                                                                  "loss", "skipped")} for t in fold.trained},
            "covariate_fill": fold.plan.covariates.info,
            "weights": fold.weights[:upto].tobytes(),
            "correction": fold.correction[:upto].tobytes(),
            "forecasts": {k: v[:upto].tobytes() for k, v in fold.forecasts.items()},
        }
    return out


def _drop_hours(df: pd.DataFrame, ts: pd.Series, first: pd.Timestamp, hours: int) -> pd.DataFrame:
    """Remove every reading of the ``hours`` grid hours ending at ``first``, ``first + 1h``, ..."""
    hole = (ts > first - pd.Timedelta("1h")) & (ts <= first + pd.Timedelta(hours - 1, "h"))
    return df.loc[~hole.to_numpy()].reset_index(drop=True)


@pytest.fixture(scope="module")
def honesty_case(sapelo_tiny_csv, tmp_path_factory):
    """The tiny Sapelo file with a two-hour gap straddling a test origin ``cut`` (QC interpolates
    it with the reading after ``cut``), evaluated with Temp as a covariate."""
    tmp = tmp_path_factory.mktemp("honesty")
    cfg = EvaluateConfig(data=sapelo_tiny_csv, covariates=["Temp"], **TINY)
    plan = plan_stage(load_stage(cfg), cfg)
    cut = plan.times[plan.split.test_start + 150]
    df = pd.read_csv(sapelo_tiny_csv)
    src = tmp / "gapped.csv"
    _drop_hours(df, pd.to_datetime(df["DateTimeStamp"], utc=True), cut, 2).to_csv(src, index=False)
    res = run_evaluation(cfg.model_copy(update={"data": src, "out": tmp / "base"}))
    return src, cut, res, cfg


def test_stepwise_forecasts_and_choices_ignore_data_after_their_origin(honesty_case, tmp_path):
    src, cut, res, cfg = honesty_case
    plan = res.plan
    pos = int(np.searchsorted(plan.times, cut))
    assert not plan.observed[pos] and plan.observed[pos - 1]  # the gap straddles the cut
    altered = tmp_path / "altered.csv"
    _altered_after(src, altered, cut)
    # the base run trained in-process; this one in two worker processes, so the check also shows
    # that nothing depends on how training is spread over processes
    assert res.metrics["training_workers"] == 1
    res2 = run_evaluation(cfg.model_copy(update={"data": altered, "out": tmp_path / "out2", "jobs": 2}))
    assert res2.metrics["training_workers"] == 2
    before = _issued_up_to(res.forecasts, cut)
    after = _issued_up_to(res2.forecasts, cut)
    assert len(before) > 0 and set(before.model) == set(MODEL_NAMES)
    pd.testing.assert_frame_equal(before, after, check_exact=True)
    # every choice made from data is unchanged, and so are the ensemble's weights and the hybrid
    # network's own forecasts (before shrinking) at every validation and test origin up to the cut
    a, b = _choices(res, cut), _choices(res2, cut)
    assert a == b
    w = res.folds[0].weights
    assert w.shape[2] == len(res.metrics["ensemble"]["members"]) and np.allclose(w.sum(axis=2), 1.0)
    # ... and the later forecasts did change, so the alteration reached the pipeline
    later1 = res.forecasts.loc[pd.to_datetime(res.forecasts["issued_at"], utc=True) > cut, "forecast"].to_numpy()
    later2 = res2.forecasts.loc[pd.to_datetime(res2.forecasts["issued_at"], utc=True) > cut, "forecast"].to_numpy()
    assert np.abs(later1 - later2).max() > 0.1
    assert not np.array_equal(res.folds[0].weights, res2.folds[0].weights)


def test_each_fold_chooses_on_its_own_past_and_a_gap_before_its_test_start_never_leaks(sapelo_tiny_csv, tmp_path):
    """Two folds. A two-hour gap right before fold 1's test period is interpolated by QC with
    the first test reading; every reading from there on is then changed. Fold 1's training and
    validation targets, its choices and its forecasts up to the cut are unchanged (targets and
    selection scores use real observations only); fold 2, which trains on the changed data,
    changes."""
    cfg = EvaluateConfig(data=sapelo_tiny_csv, folds=2, **TINY)
    plans = plan_folds(load_stage(cfg), cfg)
    assert [p.split.fold for p in plans] == [1, 2]
    s1, s2 = plans[0].split, plans[1].split
    assert s1.test_end == s2.test_start and s2.test_end == plans[0].values.size
    assert s2.val_start > s1.val_start and s2.train.size > s1.train.size
    first_test = plans[0].times[s1.test_start]
    df = pd.read_csv(sapelo_tiny_csv)
    gapped = tmp_path / "gap_before_test.csv"
    _drop_hours(df, pd.to_datetime(df["DateTimeStamp"], utc=True), first_test - pd.Timedelta("2h"), 2) \
        .to_csv(gapped, index=False)
    cut = first_test - pd.Timedelta("1h")  # inside the gap: everything after it changes
    altered = tmp_path / "altered.csv"
    _altered_after(gapped, altered, cut)
    runs = [run_evaluation(cfg.model_copy(update={"data": f, "out": tmp_path / f.stem})) for f in (gapped, altered)]
    p1 = runs[0].folds[0].plan
    assert p1.split.test_start == s1.test_start
    assert not p1.observed[s1.test_start - 2:s1.test_start].any() and p1.observed[s1.test_start]
    # targets at the interpolated hours are not real observations: never trained on or scored
    y_val = lstm_job(p1, cfg).Y_val
    assert np.isnan(y_val[-1, -1]) and np.array_equal(y_val, lstm_job(runs[1].folds[0].plan, cfg).Y_val,
                                                      equal_nan=True)
    a, b = _choices(runs[0], cut), _choices(runs[1], cut)
    assert a[1] == b[1]
    assert a[2]["networks"] != b[2]["networks"] and a[2]["baselines"] != b[2]["baselines"]
    m = runs[0].metrics
    assert m["n_folds"] == 2 and [f["fold"] for f in m["folds"]] == [1, 2]
    # the ensemble's record carries over: fold 2 starts with fold 1's forecasts issued before it
    assert m["folds"][0]["ensemble"]["history_origins"] == 0
    f1, f2 = (f.plan.split for f in runs[0].folds)
    assert m["folds"][1]["ensemble"]["history_origins"] == int((f1.fit_origins < f2.val[0]).sum()) > 0
    assert m["n_test"] == sum(f["n_test"] for f in m["folds"])
    assert m["folds"][0]["periods"]["test_start"] == first_test.isoformat()
    fc = runs[0].forecasts
    assert set(fc["fold"]) == {1, 2}
    # pooled scores are the scores of both folds' test points together
    main = fc[(fc.model == "ensemble") & (fc.step == 3)].dropna()
    assert m["models"]["ensemble"]["n_points"] == len(main)


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
    main = a.model == "decomp_feca_lstm"  # the published per-component model
    assert np.abs(a.loc[main, "forecast"].to_numpy() - b.loc[main, "forecast"].to_numpy()).max() > 1e-3


def test_entropy_groups_are_chosen_on_training_windows_only(sapelo_tiny_csv, tmp_path):
    """CEEMDAN-SE-VMD learns its grouping from data: changing everything after the training
    period leaves the entropies and groups unchanged; changing the training period does not."""
    from wq_pipeline.decompose import make_decomposer
    from wq_pipeline.evaluation.pipeline import fit_decomposer, learnt_parameters, load_stage, plan_stage

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
