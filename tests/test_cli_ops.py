"""The operational commands as a user types them: wq train / forecast / models / forecasts export,
settings from flags, environment and a config file, and exit code 2 with nothing written on bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import TINY
from wq_pipeline.store.archive import Archive
from wq_pipeline.cli import main
from wq_pipeline.errors import InputError
from wq_pipeline.settings import load_serve_settings


@pytest.fixture()
def store(tiny_model, tmp_path):
    """A copy of the tiny registry and a database URL in tmp_path."""
    cfg, root, version = tiny_model
    models = tmp_path / "models"
    shutil.copytree(root, models)
    return cfg, models, tmp_path / "wq.db", version


def _opts(cfg, models: Path, db: Path) -> list[str]:
    return ["--data", str(cfg.data), "--target", "DO_obs", "--freq", "1h", "--database", f"sqlite:///{db}",
            "--models", str(models)]


def test_forecast_twice_stores_it_once_and_exports_csv_and_parquet(store, capsys, tmp_path):
    cfg, models, db, version = store
    for expected in ("Stored 3 new rows", "Stored 0 new rows"):
        assert main(["forecast", *_opts(cfg, models, db), "--as-of", "2012-02-10T12:00"]) == 0
        out = capsys.readouterr().out
        assert expected in out and version.version in out
        assert "median   90 % interval" in out  # the main model's quantiles, printed beside the forecast
    archive = Archive(f"sqlite:///{db}")
    rows = archive.forecasts()
    assert len(rows) == TINY["horizon"] and set(rows["model_version"]) == {version.version}
    q = archive.quantiles()  # stored with the forecast, once
    assert len(q) == TINY["horizon"] * 9 and set(q["model_version"]) == {version.version}
    for step, g in q.groupby("step"):
        assert np.all(np.diff(g.sort_values("level")["value"].to_numpy()) >= 0)
    assert list(archive.runs()["status"]) == ["ok", "ok"]
    assert version.version in set(archive.model_versions()["version"])

    db_opt = ["--database", f"sqlite:///{db}"]
    assert main(["forecasts", "export", *db_opt, "--target", "DO_obs", "--format", "csv", "--out", str(tmp_path / "f.csv")]) == 0
    assert main(["forecasts", "export", *db_opt, "--format", "parquet", "--out", str(tmp_path / "f.parquet")]) == 0
    csv, pq = pd.read_csv(tmp_path / "f.csv"), pd.read_parquet(tmp_path / "f.parquet")
    assert len(csv) == len(pq) == 3
    pd.testing.assert_series_equal(csv["value"], pq["value"])
    assert csv["issued_at"].iloc[0] == "2012-02-10T17:00:00+00:00"  # stored in UTC

    # the EFI / NEON Forecasting Challenge standard: each forecast's quantiles as 31 ensemble members
    assert main(["forecasts", "export", *db_opt, "--format", "efi", "--out", str(tmp_path / "efi.csv")]) == 0
    efi = pd.read_csv(tmp_path / "efi.csv")
    assert list(efi.columns) == ["project_id", "model_id", "datetime", "reference_datetime", "duration", "site_id",
                                 "family", "parameter", "variable", "prediction"]
    assert len(efi) == 3 * 31 and set(efi["family"]) == {"ensemble"} and set(efi["duration"]) == {"PT1H"}
    assert set(efi["variable"]) == {"DO_obs"} and set(efi["model_id"]) == {version.version}
    assert set(efi["reference_datetime"]) == {"2012-02-10T17:00:00Z"}
    q = archive.quantiles()
    for step, (when, g) in enumerate(efi.groupby("datetime"), start=1):
        members = g.sort_values("parameter")["prediction"].to_numpy()
        qs = q[q["step"] == step].set_index("level")["value"]
        assert (np.diff(members) >= 0).all() and qs[0.025] <= members.min() and members.max() <= qs[0.975]
        assert np.median(members) == pytest.approx(qs[0.5], abs=1e-9)  # the middle member is the median


def test_forecast_crossings_raise_alerts_once_and_alerts_list_shows_them(store, capsys):
    """P(DO < 20 mg/L) is all but certain at every step (above every quantile: 1 - 0.025 / 2),
    P(DO < 0.5) all but impossible; at alert level 0.9 only the first raises an alert, at its
    first step. The stored probabilities are those of the stored quantiles. A rerun stores and
    announces nothing new."""
    from wq_pipeline.models.exceedance import crossing_probability, parse_threshold

    cfg, models, db, version = store
    args = ["forecast", *_opts(cfg, models, db), "--as-of", "2012-02-10T12:00", "--threshold", "DO_obs<20",
            "--threshold", "DO_obs<0.5", "--alert-level", "0.9"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "P(DO_obs<20) by step: 0.99, 0.99, 0.99" in out and "P(DO_obs<0.5) by step: 0.01, 0.01, 0.01" in out
    assert out.count("ALERT: ") == 1 and "ALERT: P(DO_obs<20) = 0.99 >= 0.9 at" in out
    assert "first at step 1, 2012-02-10T18:00:00+00:00" in out
    archive = Archive(f"sqlite:///{db}")
    c, q = archive.crossings(), archive.quantiles()
    assert len(c) == 2 * TINY["horizon"] and set(c["threshold"]) == {"DO_obs<20", "DO_obs<0.5"}
    levels = tuple(sorted(set(q["level"])))
    for label, g in c.groupby("threshold"):
        qs = q.pivot_table(index="step", columns="level", values="value").to_numpy()  # (H, Q)
        np.testing.assert_allclose(g.sort_values("step")["probability"],
                                   crossing_probability(qs, levels, parse_threshold(label)))
    assert list(c.loc[c["threshold"] == "DO_obs<20", "probability"]) == [1 - 0.025 / 2] * 3
    (alert,) = archive.alerts().itertuples(index=False)
    assert (alert.threshold, alert.step, alert.alert_level, alert.model_version) == ("DO_obs<20", 1, 0.9,
                                                                                      version.version)
    assert alert.probability == pytest.approx(0.9875) and alert.target_time == pd.Timestamp("2012-02-10T18:00Z")

    assert main(args) == 0  # a rerun: stored once, not announced again
    out = capsys.readouterr().out
    assert "ALERT" not in out and "Stored 0 new rows" in out
    assert len(archive.crossings()) == 6 and len(archive.alerts()) == 1

    assert main(["alerts", "list", "--database", f"sqlite:///{db}"]) == 0
    out = capsys.readouterr().out
    assert "1 alert(s)" in out and "P(DO_obs<20) = 0.99 >= 0.9" in out and version.version in out
    assert main(["alerts", "list", "--database", f"sqlite:///{db}", "--start", "2012-02-11"]) == 0
    assert "No alerts" in capsys.readouterr().out


def test_models_list_and_show(store, capsys):
    cfg, models, db, version = store
    assert main(["models", "list", "--models", str(models)]) == 0
    out = capsys.readouterr().out
    assert version.version in out and "2012-02-01T00:00:00-05:00" in out
    assert main(["models", "show", version.version, "--models", str(models)]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["version"] == version.version and manifest["config"]["modes"] == TINY["modes"]


def test_settings_come_from_flags_then_environment_then_config_file(tmp_path, monkeypatch):
    cfg_file = tmp_path / "wq.toml"
    cfg_file.write_text('[archive]\ndatabase = "sqlite:///arch/wq.db"\nmodels = "reg"\n'
                        '[schedule]\ntimezone = "America/New_York"\n')
    s = load_serve_settings(cfg_file)
    assert s.archive.database == f"sqlite:///{tmp_path / 'arch/wq.db'}"  # relative to the file
    assert s.archive.models == tmp_path / "reg" and s.schedule.timezone == "America/New_York"
    monkeypatch.setenv("WQ_DATABASE_URL", "sqlite:////env/wq.db")
    monkeypatch.setenv("WQ_MODELS_DIR", "/env/models")
    s = load_serve_settings(cfg_file)
    assert s.archive.database == "sqlite:////env/wq.db" and s.archive.models == Path("/env/models")
    s = load_serve_settings(cfg_file, database="sqlite:////flag.db", models=Path("/flag"))
    assert s.archive.database == "sqlite:////flag.db" and s.archive.models == Path("/flag")
    bad = tmp_path / "bad.toml"
    bad.write_text('[schedule]\ntimezone = "Mars/Olympus"\n')
    with pytest.raises(Exception, match="unknown time zone 'Mars/Olympus'"):
        load_serve_settings(bad)


def test_stations_in_the_config_take_the_file_reading_options(tmp_path):
    """Each served station says how its file is read, as the CLI options do."""
    cfg_file = tmp_path / "wq.toml"
    cfg_file.write_text('[[stations]]\ndata = "logger.txt"\ntarget = "DO"\nsep = "tab"\ndecimal = ","\n'
                        'time_format = "%d.%m.%Y %H:%M"\ntz = "Europe/Berlin"\n'
                        '[[stations]]\ndata = "export.xlsx"\ntarget = "DO"\nsheet = "Data"\n')
    first, second = load_serve_settings(cfg_file).stations
    assert first.read_options().model_dump() == {"sep": "\t", "decimal": ",", "sheet": None,
                                                 "time_format": "%d.%m.%Y %H:%M", "tz": "Europe/Berlin"}
    assert second.read_options().sheet == "Data" and second.read_options().tz is None
    cfg_file.write_text('[[stations]]\ndata = "logger.txt"\ntarget = "DO"\ntz = "Europe/Atlantis"\n')
    with pytest.raises(InputError, match=r"stations.0.tz: Value error, unknown time zone 'Europe/Atlantis'"):
        load_serve_settings(cfg_file)


@pytest.mark.parametrize("extra, message", [
    (["forecast", "--model-version", "nope"], "unknown model version 'nope'"),
    (["forecast", "--as-of", "2011-06-01"], "is before the data of 'DO_obs' start"),
    (["forecast", "--as-of", "2013-06-01"], "is past the end of the data"),
    (["forecast", "--as-of", "yesterday-ish"], "not a timestamp"),
    (["backfill", "--start", "2012-02-10", "--end", "2012-02-05"], "is before --start"),
    (["backfill", "--start", "2012-02-10", "--end", "2012-02-11", "--every", "0h"], "--every '0h': must be positive"),
    (["forecast", "--threshold", "DO_obs<2", "--alert-level", "0"], "--alert-level: Input should be greater than 0"),
    (["forecast", "--threshold", "DO_obs<2", "--alert-level", "1.5"], "--alert-level: Input should be less than or equal to 1"),
    (["forecast", "--threshold", "Oxygen<2"], "names column 'Oxygen', which the file does not have"),
    (["forecast", "--threshold", "DO_obs=2"], "expected COLUMN<VALUE or COLUMN>VALUE"),
    (["backfill", "--start", "2012-02-10", "--end", "2012-02-11", "--threshold", "Oxygen<2"], "names column 'Oxygen'"),
])
def test_bad_operational_input_exits_2_and_writes_nothing(store, capsys, extra, message):
    cfg, models, db, _ = store
    before = sorted(p.name for p in models.iterdir())
    rc = main([extra[0], *_opts(cfg, models, db), *extra[1:]])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert message in err and "Traceback" not in err and err.count("\n") == 1, err
    assert not db.exists() and sorted(p.name for p in models.iterdir()) == before


def test_database_that_cannot_be_opened_exits_2(store, capsys, tmp_path):
    cfg, models, _, _ = store
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    rc = main(["forecast", "--data", str(cfg.data), "--target", "DO_obs", "--models", str(models),
               "--database", f"sqlite:///{blocker}/wq.db"])
    err = capsys.readouterr().err
    assert rc == 2 and f"{blocker}/wq.db" in err, err


def test_serve_without_stations_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no wq.toml here
    cfg = tmp_path / "empty.toml"
    cfg.write_text('[schedule]\nforecast_cron = "15 * * * *"\n')
    assert main(["serve", "--config", str(cfg)]) == 2
    assert "no [[stations]]" in capsys.readouterr().err
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "missing.toml: file not found" in capsys.readouterr().err
    cfg.write_text('[schedule]\nforecast_cron = "every hour"\n')
    assert main(["serve", "--config", str(cfg)]) == 2
    assert "not a five-field cron expression" in capsys.readouterr().err


def test_help_lists_the_operational_commands(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ("evaluate", "train", "forecast", "backfill", "models", "forecasts", "alerts", "serve"):
        assert command in text
    assert main(["backfill", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--start", "--end", "--every", "--retrain-every", "--database", "--models", "--config", "--chunk"):
        assert option in text
