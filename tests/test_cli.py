"""`wq` command line: help, and exit code 2 with one clear message for every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from wq_pipeline.cli import main
from wq_pipeline.evaluation.pipeline import SKILL_REFERENCES


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.fixture()
def small_csv(tmp_path: Path, shared_data: Path) -> Path:
    """First 600 rows of the real Sapelo file."""
    df = pd.read_csv(shared_data / "nerr_sapelo_deancreek_2012.csv", nrows=600)
    p = tmp_path / "sapelo_small.csv"
    df.to_csv(p, index=False)
    return p


def _run_bad(capsys, tmp_path: Path, args: list[str]) -> str:
    out = tmp_path / "out"
    rc = main(["evaluate", *args, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert not out.exists(), "nothing may be written when input is rejected"
    return err


def test_help_lists_every_option(capsys):
    assert main(["evaluate", "--help"]) == 0
    text = capsys.readouterr().out
    for opt in ("--data", "--target", "--time-col", "--site", "--site-col", "--freq", "--method", "--modes",
                "--window", "--decomp-window", "--horizon", "--protocol", "--test-fraction", "--epochs",
                "--seed", "--out", "--folds", "--test-start", "--level-free", "--ensemble-rule",
                "--ensemble-half-life", "--spike-guard", "--spike-threshold"):
        assert opt in text
    assert "LEAKY" in text


def test_missing_file(capsys, tmp_path):
    err = _run_bad(capsys, tmp_path, ["--data", str(tmp_path / "nope.csv"), "--target", "DO"])
    assert "nope.csv" in err


def test_unknown_column_lists_available(capsys, tmp_path, small_csv):
    err = _run_bad(capsys, tmp_path, ["--data", str(small_csv), "--target", "DO_mgl"])
    assert "sapelo_small.csv" in err and "DO_mgl" in err and "DO_obs" in err and "Temp" in err


def test_unparseable_timestamp_names_value_and_row(capsys, tmp_path):
    rows = ["DateTimeStamp,DO"] + [f"2012-01-01T{h:02d}:00:00,{5 + h % 3}" for h in range(10)]
    rows[5] = "yesterday noon,5.0"
    p = _write(tmp_path, "bad_time.csv", "\n".join(rows) + "\n")
    err = _run_bad(capsys, tmp_path, ["--data", str(p), "--target", "DO"])
    assert "bad_time.csv" in err and "yesterday noon" in err and "line 6" in err


def test_non_numeric_target(capsys, tmp_path):
    rows = ["DateTimeStamp,DO"] + [f"2012-01-01T{h:02d}:00:00,{5 + h % 3}" for h in range(10)]
    rows[7] = "2012-01-01T06:00:00,high"
    p = _write(tmp_path, "bad_value.csv", "\n".join(rows) + "\n")
    err = _run_bad(capsys, tmp_path, ["--data", str(p), "--target", "DO"])
    assert "bad_value.csv" in err and "'high'" in err and "DO" in err


@pytest.mark.parametrize("value, word", [("", "no values"), ("4.2", "constant")])
def test_all_missing_or_constant_target(capsys, tmp_path, value, word):
    rows = ["DateTimeStamp,DO,Temp"] + [f"2012-01-{1 + h // 24:02d}T{h % 24:02d}:00:00,{value},{h}" for h in range(100)]
    p = _write(tmp_path, "flat.csv", "\n".join(rows) + "\n")
    err = _run_bad(capsys, tmp_path, ["--data", str(p), "--target", "DO"])
    assert "flat.csv" in err and "DO" in err and word in err.lower()


def test_too_few_points_for_the_windows(capsys, tmp_path, small_csv):
    err = _run_bad(capsys, tmp_path, ["--data", str(small_csv), "--target", "DO_obs", "--freq", "1h"])
    assert "sapelo_small.csv" in err and "DO_obs" in err and "decomposition window 512" in err


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--horizon", "0"], "--horizon"),
        (["--horizon", "100000"], "--horizon"),
        (["--modes", "0"], "--modes"),
        (["--modes", "99"], "--modes"),
        (["--method", "wavelet"], "--method"),
        (["--protocol", "leaky"], "--protocol"),
        (["--window", "64", "--decomp-window", "32"], "decomp_window"),
    ],
)
def test_options_out_of_range(capsys, tmp_path, small_csv, args, needle):
    out = tmp_path / "out"
    rc = main(["evaluate", "--data", str(small_csv), "--target", "DO_obs", *args, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and "Traceback" not in err, err
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--target", "DO_obs,Temp,DO_Obs"], "distinct"),
    (["--target", "DO_obs,Temp", "--covariates", "Salinity"], "covariate column 'Salinity' not found"),
    (["--target", "DO_obs", "--method", "ceemdan-se-vmd", "--se-thresholds", "0.5"], "LOW,HIGH"),
])
def test_bad_multi_target_and_covariate_options(capsys, tmp_path, small_csv, args, message):
    err = _run_bad(capsys, tmp_path, ["--data", str(small_csv), *args])
    assert message in err


def test_several_targets_with_covariates_write_one_folder_each_and_a_summary(tmp_path, sapelo_tiny_csv, capsys):
    """Two targets in one run, each with the other station variables as covariates (a target is
    never its own covariate), and the summary table across them."""
    import json

    from tests.conftest import TINY

    out = tmp_path / "multi"
    opts = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items() if k not in ("target", "batch_size")]
    rc = main(["evaluate", "--data", str(sapelo_tiny_csv), "--target", "DO_obs,Temp", "--covariates", "Temp,Sal",
               *opts, "--no-flow", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    do = json.loads((out / "DO_obs" / "metrics.json").read_text())
    temp = json.loads((out / "Temp" / "metrics.json").read_text())
    assert do["covariates"] == ["Temp", "Sal"] and temp["covariates"] == ["Sal"]
    assert len(do["training"]["feca_imf1"]["scaler"]["extra"]) == 2
    assert len(temp["training"]["lstm"]["scaler"]["extra"]) == 1
    assert (out / "DO_obs" / "report.html").is_file() and (out / "Temp" / "report.html").is_file()
    table = pd.read_csv(out / "summary.csv")
    assert len(table) == 2 * len(do["models"])
    for target, m in (("DO_obs", do), ("Temp", temp)):
        rows = table[table.target == target].set_index("model")
        assert rows.loc["decomp_feca_lstm", "rmse"] == pytest.approx(m["models"]["decomp_feca_lstm"]["rmse"], rel=1e-5)
        best = rows.loc[list(SKILL_REFERENCES), "rmse"].idxmin()  # every baseline and the plain LSTM
        assert (rows["best_baseline"] == best).all()
        assert rows.loc[best, "mse_skill_vs_best_baseline"] == pytest.approx(0.0, abs=1e-12)
        assert rows.loc["lstm", "mse_skill_vs_best_baseline"] == pytest.approx(
            1 - (rows.loc["lstm", "rmse"] / rows.loc[best, "rmse"]) ** 2, rel=1e-4, abs=1e-5)
    assert "| DO_obs | stepwise |" in (out / "summary.md").read_text()
    page = (out / "summary.html").read_text()
    assert 'href="DO_obs/report.html"' in page and 'href="Temp/report.html"' in page


def test_folds_and_test_start_that_the_data_cannot_hold_exit_2(capsys, tmp_path, sapelo_tiny_csv):
    """Too many folds: exit 2 naming the number of forecast origins needed; a test start outside
    the data: exit 2 naming the data's span. Nothing is written."""
    tiny = ["--data", str(sapelo_tiny_csv), "--target", "DO_obs", "--freq", "1h", "--window", "24",
            "--decomp-window", "96", "--horizon", "3"]
    err = _run_bad(capsys, tmp_path, [*tiny, "--folds", "8"])
    import re

    need = int(re.search(r"--folds 8 needs at least (\d+) forecast origins", err).group(1))
    has = int(re.search(r"has (\d+) on its 1488-step 1h grid", err).group(1))
    assert need > has > 1000
    err = _run_bad(capsys, tmp_path, [*tiny, "--folds", "4", "--val-fraction", "0.3"])
    assert "--val-fraction below 1/5" in err
    for when in ("2011-06-01T00:00", "2013-01-01T00:00"):
        err = _run_bad(capsys, tmp_path, [*tiny, "--test-start", when])
        assert f"--test-start {when} lies outside the data" in err and "2012-01-01T00:00:00-05:00" in err
    err = _run_bad(capsys, tmp_path, [*tiny, "--test-start", "not a time"])
    assert "--test-start 'not a time': not a timestamp" in err


def test_daily_neon_file_runs_end_to_end(tmp_path, shared_data, capsys):
    """The NEON challenge's daily targets (gappy, long format) at one site, two folds in 2022,
    14 days ahead: every baseline, network and the ensemble run and are scored."""
    import json

    out = tmp_path / "pose"
    rc = main(["evaluate", "--data", str(shared_data / "neon_aquatics_daily_2020_2022.csv.gz"), "--site", "POSE",
               "--target", "oxygen", "--time-col", "datetime", "--freq", "1D", "--horizon", "14", "--window", "28",
               "--decomp-window", "64", "--modes", "3", "--folds", "2", "--test-start", "2022-01-01",
               "--epochs", "2", "--units", "4", "--no-flow", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    m = json.loads((out / "metrics.json").read_text())
    assert m["freq"] == "1D" and m["unit"] == "mg/L" and m["n_folds"] == 2
    assert m["folds"][0]["periods"]["test_start"].startswith("2022-01-01")
    for name in ("persistence", "seasonal_naive", "climatology", "arima", "harmonic_ar", "lstm", "ensemble"):
        assert m["models"][name]["n_points"] > 100 and m["models"][name]["rmse"] < 3.0, name
    assert m["baselines"]["climatology"].startswith("day of year")
    assert (out / "report.html").is_file()


NEON_DAILY_TINY = ["--target", "oxygen", "--freq", "1D", "--window", "14", "--decomp-window", "32", "--horizon", "3",
                   "--modes", "2", "--epochs", "2", "--units", "4", "--seed", "1", "--test-start", "2022-01-01"]


def test_several_sites_of_a_long_file_one_too_short_is_skipped_and_the_others_pooled(tmp_path, shared_data, capsys):
    """Three NEON sites of the daily file in one run: PRLA (91 observed days) is too short and is
    listed with its reason; BARC and SUGG finish, each in its own folder, and the summary pools
    them over their test points."""
    import json

    import numpy as np

    out = tmp_path / "fleet"
    rc = main(["evaluate", "--data", str(shared_data / "neon_aquatics_daily_2020_2022.csv.gz"),
               "--site", "BARC,PRLA,SUGG", *NEON_DAILY_TINY, "--challenge", "--no-flow", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    (skip,) = summary["skipped"]
    assert skip["series"] == "PRLA" and "91 usable points" in skip["reason"] and "training period" in skip["reason"]
    assert not (out / "PRLA").exists()
    site_metrics = {s: json.loads((out / s / "metrics.json").read_text()) for s in ("BARC", "SUGG")}
    assert {s: m["site"] for s, m in site_metrics.items()} == {"BARC": "BARC", "SUGG": "SUGG"}
    table = pd.read_csv(out / "summary.csv")
    per_site = table[(table.series != "all") & (table.model == "ensemble")].set_index("series")
    assert sorted(per_site.index) == ["BARC", "SUGG"]
    for s, m in site_metrics.items():
        assert per_site.loc[s, "rmse"] == pytest.approx(m["models"]["ensemble"]["rmse"], rel=1e-5)  # metrics.json: 6 digits
    pooled = table[(table.series == "all") & (table.model == "ensemble")].iloc[0]
    n = per_site["n_points"]
    assert pooled["n_points"] == n.sum() and pooled["site"] == "2 sites"
    assert pooled["rmse"] == pytest.approx(np.sqrt((per_site["rmse"] ** 2 * n).sum() / n.sum()), rel=1e-5)  # the csv: 6 digits
    assert pooled["crps"] == pytest.approx((per_site["crps"] * n).sum() / n.sum(), rel=1e-5)
    wins = (per_site["mse_skill_vs_best_baseline"] > 0).mean()
    assert pooled["share_sites_beating_best_baseline"] == pytest.approx(wins)
    page = (out / "summary.html").read_text()
    assert 'href="BARC/report.html"' in page and "id=over-sites" in page and "<b>PRLA</b>" in page
    # the Forecasting Challenge's scores, per horizon, at the 30-day windows of 2022 and at every origin
    ch = site_metrics["BARC"]["challenge"]
    assert set(ch["all_origins"]["models"]) == {"ensemble", "challenge_climatology", "challenge_persistence"}
    assert 1 <= ch["n_window_origins"] <= 13 and ch["n_origins"] == site_metrics["BARC"]["n_test"]
    for part in ("windows", "all_origins"):
        for sc in ch[part]["models"].values():
            assert len(sc["crps_per_horizon"]) == 3 and sc["crps"] > 0
    rw = ch["all_origins"]["models"]["challenge_persistence"]["crps_per_horizon"]
    assert rw[0] < rw[2]  # a random walk spreads with the horizon
    assert 'id="challenge-table"' in (out / "BARC" / "report.html").read_text()
    assert "Skipped (1):" in (out / "summary.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--all-sites"], "has no site column to choose sites from"),
    (["--challenge", "--freq", "1h"], "--challenge scores daily forecasts"),
    (["--site", "BARC,SUGG"], "has no site column"),
])
def test_site_options_on_a_wide_file_exit_2(capsys, tmp_path, sapelo_tiny_csv, args, message):
    err = _run_bad(capsys, tmp_path, ["--data", str(sapelo_tiny_csv), "--target", "DO_obs", *args])
    assert message in err


def test_unknown_sites_and_repeated_files_exit_2(capsys, tmp_path, shared_data):
    neon = str(shared_data / "neon_aquatics_daily_2020_2022.csv.gz")
    err = _run_bad(capsys, tmp_path, ["--data", neon, "--site", "BARC,NOPE", *NEON_DAILY_TINY])
    assert "site(s) 'NOPE' not found; sites: ARIK, BARC" in err
    err = _run_bad(capsys, tmp_path, ["--data", neon, "--data", neon, "--site", "BARC", *NEON_DAILY_TINY])
    assert "the same file is given twice" in err
