"""Global networks: each network trained once on every series' samples (``wq evaluate --global``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wq_pipeline.cli import main
from wq_pipeline.config import EvaluateConfig
from wq_pipeline.errors import InputError
from wq_pipeline.evaluation.global_networks import pool_jobs, run_global, unpool
from wq_pipeline.models.network_jobs import TrainedForecast, TrainJob

TINY_DAILY = dict(target="oxygen", freq="1D", time_col="datetime", window=14, decomp_window=32, horizon=3, modes=2,
                  epochs=2, units=4, seed=1, test_start="2022-01-01")


def _job(rng: np.random.Generator, scale: float, n: tuple[int, int, int], own: bool = False) -> TrainJob:
    W, C, H = 5, 2, 3
    X = [scale * rng.normal(size=(k, W, C)) for k in n]
    Y = [scale * rng.normal(size=(k, H)) for k in n[:2]]
    return TrainJob("feca_imf1", True, X[0], Y[0], X[1], Y[1], X[2], own_target_scale=own)


def test_pooled_samples_are_unit_free_with_a_series_channel_and_split_back():
    rng = np.random.default_rng(0)
    a, b = _job(rng, 1.0, (40, 10, 6)), _job(rng, 100.0, (30, 8, 4))  # the same quantity, units 100x apart
    pooled, splits = pool_jobs([a, b])
    assert pooled.X_train.shape == (70, 5, 2 + 2) and pooled.fixed_channels == 2 and not pooled.predict_val
    np.testing.assert_array_equal(pooled.X_train[:40, :, 2], 1.0)  # series 0's identifier channel
    np.testing.assert_array_equal(pooled.X_train[40:, :, 3], 1.0)
    np.testing.assert_array_equal(pooled.X_train[:40, :, 3], 0.0)
    # each series divided by its own training spread: both about unit spread now
    for rows in (slice(0, 40), slice(40, 70)):
        assert np.std(pooled.X_train[rows, :, 0]) == pytest.approx(1.0, rel=1e-9)
    sd_b = np.std(b.X_train[:, :, 0])
    np.testing.assert_allclose(pooled.Y_train[40:], b.Y_train / sd_b)
    # test inputs: each series' validation, then test inputs, in series order
    assert pooled.X_test.shape[0] == 10 + 6 + 8 + 4
    np.testing.assert_allclose(pooled.X_test[16:24, :, :2], b.X_val / np.std(b.X_train.reshape(-1, 2), axis=0))
    # a pooled network's forecasts come back per series, in its own units
    fc = np.arange(28 * 3, dtype=float).reshape(28, 3)
    back = unpool(TrainedForecast("feca_imf1", fc, {"n_train": 70}), splits, 1)
    np.testing.assert_allclose(back.val_forecast, fc[16:24] * sd_b)
    np.testing.assert_allclose(back.forecast, fc[24:28] * sd_b)
    assert back.training["global"]["series"] == 2 and back.training["n_train"] == 70
    own = _job(rng, 3.0, (20, 5, 2), own=True)  # a first stage's errors: scaled by their own spread
    _, sp = pool_jobs([own, _job(rng, 1.0, (20, 5, 2), own=True)])
    assert sp[0][2] == pytest.approx(np.std(own.Y_train))


def test_global_training_is_deterministic_per_seed_and_pools_every_series(shared_data, tmp_path):
    data = shared_data / "neon_aquatics_daily_2020_2022.csv.gz"
    runs = []
    for k in range(2):
        cfgs = {s: EvaluateConfig(data=data, site=s, out=tmp_path / f"run{k}" / s, **TINY_DAILY) for s in ("BARC", "SUGG")}
        results, errors = run_global(cfgs)
        assert not errors and set(results) == {"BARC", "SUGG"}
        runs.append(results)
    for site in ("BARC", "SUGG"):
        first, again = runs[0][site], runs[1][site]
        for name in ("lstm", "decomp_feca_lstm", "hybrid_feca_lstm", "ensemble"):
            np.testing.assert_array_equal(first.folds[0].forecasts[name], again.folds[0].forecasts[name], err_msg=name)
        m = first.metrics
        assert m["global_networks"]["series"] == 2
        assert m["training"]["lstm"]["global"]["series"] == 2
    pooled = runs[0]["BARC"].metrics["global_networks"]["n_train"]
    assert pooled["lstm"] == runs[0]["BARC"].metrics["n_train"] + runs[0]["SUGG"].metrics["n_train"]
    # one network serves both sites: the same trained model object
    assert runs[0]["BARC"].folds[0].trained[0].model is runs[0]["SUGG"].folds[0].trained[0].model


def test_global_needs_several_series(capsys, tmp_path, shared_data):
    rc = main(["evaluate", "--data", str(shared_data / "neon_aquatics_daily_2020_2022.csv.gz"), "--site", "BARC",
               "--target", "oxygen", "--freq", "1D", "--global", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "--global trains each network once across two or more series" in err, err
    assert not (tmp_path / "out").exists()


def test_a_global_version_serves_every_station_from_the_registry(shared_data, tmp_path, capsys):
    """``wq train --all-sites``: networks trained once and stored once; each station's version
    serves through them what the training fitted, from the registry, and ``wq forecast`` uses it."""
    from wq_pipeline.serve.global_versions import train_global
    from wq_pipeline.store.registry import Registry
    from wq_pipeline.serve.training import fold_view

    data = shared_data / "neon_aquatics_daily_2020_2022.csv.gz"
    registry = Registry(tmp_path / "models")
    settings = {k: v for k, v in TINY_DAILY.items() if k != "test_start"}
    cfgs = {s: EvaluateConfig(data=data, site=s, **settings) for s in ("BARC", "SUGG", "PRLA")}
    done = train_global(cfgs, registry, as_of="2022-01-01")
    assert done.trained and set(done.stations) == {"BARC", "SUGG"}
    assert "PRLA" in done.skipped and "no observation of 'oxygen'" in done.skipped["PRLA"]
    g = done.version
    assert g.kind == "global" and g.manifest["stations"] == ["BARC", "SUGG"]
    assert sorted(p.name for p in (g.path / "networks").iterdir()) == sorted(f"{n}.keras" for n in g.manifest["components"])
    # SUGG's data end on 2021-12-15, BARC's on 2022-01-01: each version knew the pooled networks,
    # which learnt from both, so neither serves a forecast issued before 2022-01-01
    assert done.stations["SUGG"].manifest["training"]["station_data_end"].startswith("2021-12-15")
    assert registry.newest("SUGG", "oxygen", pd.Timestamp("2021-12-20", tz="UTC")) is None
    for label, head in done.stations.items():
        assert head.site == label and head.model == "ensemble" and head.trained_until == g.trained_until
        assert head.manifest["shared"]["version"] == g.version and not (head.path / "networks").exists()
        assert registry.newest(label, "oxygen", pd.Timestamp("2022-06-01", tz="UTC")).version == head.version
        ensemble = registry.load(head.version).forecaster
        fold = done.folds[label]
        origins = fold.plan.split.val
        served = ensemble.member_forecasts(fold_view(fold), origins)
        names = list(ensemble.members)
        # the network members, served through the station's scaler and the stored pooled networks,
        # forecast what the training fitted (the hybrid's validation forecasts are cross-fitted by design)
        for name in ("lstm", "decomp_feca_lstm", "decomp_lstm"):
            np.testing.assert_allclose(served[names.index(name)], fold.forecasts[name][: origins.size], rtol=0,
                                       atol=1e-5, err_msg=f"{label} {name}")
    again = train_global(cfgs, registry, as_of="2022-01-01")
    assert not again.trained and again.version.version == g.version
    assert {k: v.version for k, v in again.stations.items()} == {k: v.version for k, v in done.stations.items()}

    store = ["--models", str(tmp_path / "models"), "--database", f"sqlite:///{tmp_path / 'wq.db'}"]
    for site in ("BARC", "SUGG"):
        rc = main(["forecast", "--data", str(data), "--site", site, "--target", "oxygen", "--freq", "1D",
                   "--as-of", "2022-03-01", *store])
        out = capsys.readouterr().out
        assert rc == 0 and f"by model version {done.stations[site].version}" in out, out
    assert main(["models", "list", "--models", str(tmp_path / "models")]) == 0
    listed = capsys.readouterr().out
    assert f"{g.version}" in listed and "ensemble (global, 2 sites)" in listed
    (g.path / "networks" / "lstm.keras").write_bytes(b"not a network")
    rc = main(["forecast", "--data", str(data), "--site", "BARC", "--target", "oxygen", "--freq", "1D",
               "--as-of", "2022-03-02", *store])
    err = capsys.readouterr().err
    assert rc == 2 and "lstm.keras: corrupted" in err, err


def test_evaluate_global_against_local_compares_the_main_model_on_the_same_points(shared_data, tmp_path, capsys):
    import json

    data = shared_data / "neon_aquatics_daily_2020_2022.csv.gz"
    args = ["evaluate", "--data", str(data), "--site", "BARC,SUGG", "--target", "oxygen", "--freq", "1D",
            "--time-col", "datetime", "--window", "14", "--decomp-window", "32", "--horizon", "3", "--modes", "2",
            "--epochs", "2", "--units", "4", "--seed", "1", "--test-start", "2022-01-01", "--no-flow"]
    rc = main([*args, "--against-local", "--out", str(tmp_path / "bad")])
    assert rc == 2 and "give --global too" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    out = tmp_path / "out"
    assert main([*args, "--global", "--against-local", "--out", str(out)]) == 0
    table = pd.read_csv(out / "global_vs_local.csv")
    assert list(table["series"]) == ["BARC", "SUGG", "all"] and table["same_points"].all()
    for row in table.iloc[:2].itertuples():
        for which, folder in (("global", out / row.series), ("local", out / "local" / row.series)):
            m = json.loads((folder / "metrics.json").read_text())
            assert (folder / "report.html").is_file()
            assert m["models"]["ensemble"]["n_points"] == row.n_points
            assert getattr(row, f"rmse_{which}") == pytest.approx(m["models"]["ensemble"]["rmse"], rel=1e-5)
            assert ("global_networks" in m) == (which == "global")
        assert row.global_at_most_local == float(row.crps_global <= row.crps_local)
    assert table.iloc[2]["global_at_most_local"] == pytest.approx(table.iloc[:2]["global_at_most_local"].mean())
    assert "id=global-vs-local" in (out / "summary.html").read_text()
    assert "global networks against local ones" in (out / "summary.md").read_text()


def test_global_refuses_folds_that_do_not_line_up_in_time(shared_data, tmp_path):
    """Two folds as fractions of each series (no --test-start): BARC's and SUGG's periods differ, so
    a network pooled across them would learn from one series' data after the other's test start."""
    data = shared_data / "neon_aquatics_daily_2020_2022.csv.gz"
    settings = {**{k: v for k, v in TINY_DAILY.items() if k != "test_start"}, "folds": 2}
    cfgs = {s: EvaluateConfig(data=data, site=s, out=tmp_path / s, **settings) for s in ("BARC", "SUGG")}
    results, errors = run_global(cfgs)
    assert not results and set(errors) == {"BARC", "SUGG"}
    for exc in errors.values():
        assert isinstance(exc, InputError) and "folds line up in time" in str(exc), exc
    assert not (tmp_path / "BARC" / "metrics.json").exists()
