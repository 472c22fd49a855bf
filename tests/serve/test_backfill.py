"""Backfill: batched, resumable after SIGKILL, safe with two processes at once (real processes,
real SQLite, real Keras files)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import TINY
from wq_pipeline.store.archive import Archive
from wq_pipeline.serve.backfill import run_backfill
from wq_pipeline.errors import InputError
from wq_pipeline.store.registry import Registry

WQ = Path(sys.executable).with_name("wq")
TINY_ARGS = ["--target", "DO_obs", "--freq", "1h", "--modes", str(TINY["modes"]), "--window", str(TINY["window"]),
             "--decomp-window", str(TINY["decomp_window"]), "--horizon", str(TINY["horizon"]),
             "--epochs", str(TINY["epochs"]), "--units", str(TINY["units"]), "--seed", str(TINY["seed"]), "--jobs", "1"]
KEY = ["site", "target", "model_version", "issued_at", "step"]


def _wq(*args: str) -> subprocess.Popen:
    env = dict(os.environ, WQ_NO_PROGRESS="1")
    return subprocess.Popen([str(WQ), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return con.execute("SELECT count(*) FROM forecasts").fetchone()[0]
    except sqlite3.OperationalError:  # schema not created yet
        return 0


def _versions(models: Path) -> int:
    return len([p for p in models.glob("*") if not p.name.startswith(".")]) if models.exists() else 0


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 240) -> None:
    t0 = time.monotonic()
    while not ready():
        assert proc.poll() is None, f"finished before it could be killed: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() - t0 < timeout, "condition never met"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _table(db: Path) -> pd.DataFrame:
    return Archive(f"sqlite:///{db}").forecasts().sort_values(KEY).reset_index(drop=True)


def _without_offsets(src: Path, folder: Path, zone: str) -> Path:
    """``src`` with its timestamps rewritten as naive local times of ``zone`` (as a logger that
    knows no offsets exports them), under the same file name (the site key)."""
    df = pd.read_csv(src, dtype=str)
    local = pd.to_datetime(df["DateTimeStamp"], utc=True).dt.tz_convert(zone).dt.tz_localize(None)
    df["DateTimeStamp"] = local.dt.strftime("%Y-%m-%d %H:%M")
    folder.mkdir()
    out = folder / src.name
    df.to_csv(out, index=False)
    return out


def test_backfill_killed_twice_with_sigkill_then_resumed_equals_an_uninterrupted_run(sapelo_tiny_csv, tmp_path):
    """The killed and resumed runs read a copy without UTC offsets with --tz; the reference reads
    the original file (offsets -05:00). Stored forecasts and model versions must be identical."""
    span = ["--start", "2012-02-05T00:00", "--end", "2012-02-14T23:00", "--retrain-every", "5d", "--chunk", "8"]
    naive = _without_offsets(sapelo_tiny_csv, tmp_path / "naive", "America/New_York")
    args = ["backfill", "--data", str(naive), "--tz", "America/New_York", *TINY_ARGS, *span]
    ref_args = ["backfill", "--data", str(sapelo_tiny_csv), *TINY_ARGS, *span]

    ref_db, ref_models = tmp_path / "ref.db", tmp_path / "ref-models"
    ref = _wq(*ref_args, "--database", f"sqlite:///{ref_db}", "--models", str(ref_models))
    db, models = tmp_path / "wq.db", tmp_path / "models"
    store = ["--database", f"sqlite:///{db}", "--models", str(models)]
    # first kill: while the second model version is being trained (the first is registered)
    _kill_when(_wq(*args, *store), lambda: _versions(models) >= 1)
    assert _rows(db) == 0 and _versions(models) == 1
    # second kill: in the middle of storing forecasts
    _kill_when(_wq(*args, *store), lambda: _rows(db) > 0)
    partial = _rows(db)
    out, err = ref.communicate(timeout=600)
    assert ref.returncode == 0, err[-3000:]
    expected = _table(ref_db)
    assert len(expected) == 240 * TINY["horizon"]  # 10 days of hourly issue times, none skipped here
    assert 0 < partial < len(expected), "the second kill must land mid-way"

    resumed = _wq(*args, *store)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    assert f"{partial // TINY['horizon']} already stored" in out
    got = _table(db)
    pd.testing.assert_frame_equal(got[KEY + ["target_time", "value"]], expected[KEY + ["target_time", "value"]])
    assert not got.duplicated(KEY).any()
    assert sorted(got["model_version"].unique()) == sorted(v.version for v in Registry(models).list())
    assert len(Registry(models).list()) == 2  # the killed training left no half-written version
    assert {v.model for v in Registry(models).list()} == {"ensemble"}  # the main model, served by default
    assert [v.version for v in Registry(models).list()] == [v.version for v in Registry(ref_models).list()]
    assert all("local times of America/New_York" in v.manifest["timestamps"] for v in Registry(models).list())
    runs = Archive(f"sqlite:///{db}").runs()
    assert sorted(runs["status"]) == ["ok", "running", "running"]  # the killed runs are visible as such


def test_two_concurrent_backfills_over_overlapping_ranges(tiny_model, tmp_path):
    cfg, root, version = tiny_model
    reg = tmp_path / "models"
    shutil.copytree(root, reg)
    db = tmp_path / "wq.db"
    common = ["backfill", "--data", str(cfg.data), *TINY_ARGS, "--model-version", version.version, "--chunk", "4",
              "--database", f"sqlite:///{db}", "--models", str(reg)]
    a = _wq(*common, "--start", "2012-02-05T00:00", "--end", "2012-02-12T23:00")
    b = _wq(*common, "--start", "2012-02-09T00:00", "--end", "2012-02-16T23:00")
    for p in (a, b):
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    got = _table(db)
    assert not got.duplicated(KEY).any()

    ref = Archive(f"sqlite:///{tmp_path / 'ref.db'}")
    res = run_backfill(cfg, Registry(reg), ref, start="2012-02-05T00:00", end="2012-02-16T23:00",
                       model_version=version.version)
    expected = ref.forecasts().sort_values(KEY).reset_index(drop=True)
    assert res.written_origins == 288 and len(expected) == 288 * TINY["horizon"]
    pd.testing.assert_frame_equal(got[KEY + ["value"]], expected[KEY + ["value"]])


def test_backfill_is_batched_resumable_and_counts_what_it_skips(tiny_model, tmp_path):
    cfg, root, version = tiny_model
    reg = Registry(tmp_path / "models")
    shutil.copytree(root, reg.root)
    archive = Archive(f"sqlite:///{tmp_path / 'wq.db'}")
    # the tiny file has a two-hour hole on 2012-01-21 (rows 1000-1003 dropped) that QC interpolates:
    # issue times in it are served from the last real observation before them
    done = []
    cfg = cfg.model_copy(update={"thresholds": ["DO_obs<5"]})  # crossing probabilities stored, no alerts
    res = run_backfill(cfg, reg, archive, start="2012-02-02T00:00", end="2012-02-03T23:30", every="30min",
                       chunk=10, progress=done.append)
    assert res.issue_times == 96 and res.origins == 48 and res.skipped == 0
    assert sum(done) == 96 and res.rows_written == 48 * TINY["horizon"]
    assert res.versions == [version.version] and res.trained == []
    again = run_backfill(cfg, reg, archive, start="2012-02-02T00:00", end="2012-02-03T23:30", every="30min")
    assert again.rows_written == 0 and again.already_stored == 48
    stored = archive.forecasts()
    assert len(stored) == 48 * TINY["horizon"] and stored["value"].between(0, 25).all()
    # issue times are the grid hours (half-hour issue times reuse the hour before them)
    assert (pd.DatetimeIndex(stored["issued_at"]).minute == 0).all()
    crossings = archive.crossings()
    assert len(crossings) == 48 * TINY["horizon"] and set(crossings["threshold"]) == {"DO_obs<5"}
    assert crossings["probability"].between(0, 1).all() and crossings["probability"].nunique() > 3
    key = ["issued_at", "step"]
    pd.testing.assert_frame_equal(crossings[key].reset_index(drop=True), stored[key].reset_index(drop=True))
    assert archive.alerts().empty  # a hindcast raises no alerts


def test_backfill_bad_input_writes_nothing(tiny_model, tmp_path):
    cfg, root, _ = tiny_model
    db = tmp_path / "wq.db"
    with pytest.raises(InputError, match="--end .* is before --start"):
        run_backfill(cfg, Registry(root), lambda: Archive(f"sqlite:///{db}"), start="2012-02-10", end="2012-02-05")
    with pytest.raises(InputError, match="past the end of the data"):
        run_backfill(cfg, Registry(root), lambda: Archive(f"sqlite:///{db}"), start="2012-02-10", end="2013-01-01")
    with pytest.raises(InputError, match="unknown model version"):
        run_backfill(cfg, Registry(root), lambda: Archive(f"sqlite:///{db}"), start="2012-02-10", end="2012-02-11",
                     model_version="nope")
    with pytest.raises(InputError, match="--every 'soon': not a duration"):
        run_backfill(cfg, Registry(root), lambda: Archive(f"sqlite:///{db}"), start="2012-02-10", end="2012-02-11",
                     every="soon")
    assert not db.exists()
    np.testing.assert_equal(len(Registry(root).list()), 1)


def _with_hole(src: Path, dst: Path, start: str, end: str) -> Path:
    """``src`` without its readings in ``[start, end)``, written to ``dst``."""
    df = pd.read_csv(src)
    times = pd.to_datetime(df["DateTimeStamp"], utc=True)
    df[(times < pd.Timestamp(start)) | (times >= pd.Timestamp(end))].to_csv(dst, index=False)
    return dst


def test_fallback_never_leaves_a_hole_and_records_who_issued(sapelo_tiny_csv, tmp_path):
    """A seasonal-naive version with a 30-day period cannot issue where its value one period back
    fell in a 3-day hole of the file. Those origins are issued by the best other registered
    statistical version (harmonic + AR) or, without one, by persistence; every row says which."""
    from wq_pipeline.config import EvaluateConfig
    from wq_pipeline.serve.forecasting import forecasts_from
    from wq_pipeline.evaluation.pipeline import load_stage
    from wq_pipeline.serve.training import config_for, train_version

    data = _with_hole(sapelo_tiny_csv, tmp_path / "holey.csv", "2012-01-06T05:00Z", "2012-01-09T05:00Z")
    cfg = EvaluateConfig(data=data, target="DO_obs", freq="1h", window=24, decomp_window=96, horizon=3,
                         seasonal_period=720)
    as_of = pd.Timestamp("2012-02-04T00:00-05:00")
    span = dict(start="2012-02-05T00:00", end="2012-02-10T23:00")

    def backfill(models: Path, db: Path) -> pd.DataFrame:
        registry = Registry(models)
        train_version(cfg.model_copy(update={"model": "seasonal_naive"}), registry, as_of=as_of)
        result = run_backfill(cfg.model_copy(update={"model": "seasonal_naive"}), registry,
                              Archive(f"sqlite:///{db}"), **span)
        assert result.rows_written == 144 * 3  # six days of hourly issue times, none missing
        return Archive(f"sqlite:///{db}").forecasts().sort_values(KEY).reset_index(drop=True)

    alone = backfill(tmp_path / "m1", tmp_path / "a.db")
    assert np.isfinite(alone["value"]).all()
    by = alone.groupby("issued_at")["issued_by"].agg(set)
    assert set(map(frozenset, by)) == {frozenset({"seasonal_naive"}), frozenset({"persistence"})}
    stood_in = by[by == {"persistence"}].index
    # the origins whose value 720 h back lies in the hole (6-9 Jan + 30 days, minus the steps ahead)
    assert stood_in.min() >= pd.Timestamp("2012-02-05T05:00Z") and stood_in.max() < pd.Timestamp("2012-02-08T05:00Z")
    assert 60 <= len(stood_in) <= 72, len(stood_in)
    last = alone[alone["issued_at"].isin(stood_in) & (alone["step"] == 1)]
    assert np.isfinite(last["value"]).all()

    # with a harmonic + AR version registered (trained no later), it stands in first
    registry = Registry(tmp_path / "m2")
    harmonic, _ = train_version(cfg.model_copy(update={"model": "harmonic_ar"}), registry, as_of=as_of)
    both = backfill(tmp_path / "m2", tmp_path / "b.db")
    by2 = both.groupby("issued_at")["issued_by"].agg(set)
    assert list(by2[by2 != {"seasonal_naive"}].index) == list(stood_in)
    assert set(map(frozenset, by2[by2 != {"seasonal_naive"}])) == {frozenset({"harmonic_ar"})}
    # and its rows are exactly what the harmonic version forecasts at those origins
    station = load_stage(cfg)
    origins = np.flatnonzero(station.values.index.isin(stood_in))
    own, _ = forecasts_from(station, harmonic.site, registry.load(harmonic.version), config_for(harmonic, cfg), origins)
    got = both[both["issued_at"].isin(stood_in)].pivot(index="issued_at", columns="step", values="value")
    np.testing.assert_allclose(got.to_numpy(), own.values, rtol=0, atol=1e-12)


def test_issue_times_after_a_gap_are_issued_by_a_fallback_not_skipped(sapelo_tiny_csv, tmp_path):
    """A 12-hour hole in the file breaks the served version's 96-hour window for four days after
    it. Issue times with a real observation within H steps are still issued (by persistence,
    recorded); only those with none are skipped."""
    from wq_pipeline.config import EvaluateConfig
    from wq_pipeline.serve.training import train_version

    data = _with_hole(sapelo_tiny_csv, tmp_path / "gap.csv", "2012-02-08T12:00-05:00", "2012-02-09T00:00-05:00")
    cfg = EvaluateConfig(data=data, target="DO_obs", freq="1h", window=24, decomp_window=96, horizon=3,
                         model="seasonal_naive")
    registry = Registry(tmp_path / "models")
    train_version(cfg, registry, as_of=pd.Timestamp("2012-02-06T00:00-05:00"))
    result = run_backfill(cfg, registry, Archive(f"sqlite:///{tmp_path / 'wq.db'}"),
                          start="2012-02-08T00:00", end="2012-02-10T23:00")
    assert result.issue_times == 72
    # half-hourly readings averaged on (t - 1 h, t]: the 12:00 grid point keeps its 11:30 reading, so 13:00-15:00
    # are issued from it and 16:00-23:00 have no real observation within 3 steps
    assert result.skipped == 8 and result.written_origins == 61
    got = Archive(f"sqlite:///{tmp_path / 'wq.db'}").forecasts()
    by = got.groupby("issued_at")["issued_by"].agg(lambda s: set(s))
    after = by.index >= pd.Timestamp("2012-02-09T00:00-05:00")
    assert after.sum() == 48 and all(b == {"persistence"} for b in by[after])
    assert all(b == {"seasonal_naive"} for b in by[~after])
    # persistence repeats the issuing observation
    first = got[got["issued_at"] == pd.Timestamp("2012-02-09T00:00-05:00")]
    station_value = pd.read_csv(data).set_index("DateTimeStamp").loc["2012-02-09T00:00:00-0500", "DO_obs"]
    np.testing.assert_allclose(first["value"], float(np.mean(station_value)), rtol=0, atol=1e-9)


def test_the_ensemble_stands_in_with_its_statistical_members_where_a_gap_breaks_the_networks(sapelo_tiny_csv,
                                                                                          tmp_path):
    """With the main model served, the issue times whose 96-hour window a 12-hour hole breaks are
    issued by the ensemble's own statistical members, weighted as at that origin (a convex
    combination of their forecasts), recorded as ``ensemble:statistical``; nothing is skipped that
    has a real observation within H steps."""
    from tests.conftest import TINY
    from wq_pipeline.config import EvaluateConfig
    from wq_pipeline.models.forecaster import SeriesView
    from wq_pipeline.evaluation.pipeline import load_stage
    from wq_pipeline.serve.training import train_version

    data = _with_hole(sapelo_tiny_csv, tmp_path / "gap.csv", "2012-02-08T12:00-05:00", "2012-02-09T00:00-05:00")
    cfg = EvaluateConfig(data=data, **TINY)
    registry = Registry(tmp_path / "models")
    version, _ = train_version(cfg, registry, as_of=pd.Timestamp("2012-02-06T00:00-05:00"))
    assert version.model == "ensemble"
    result = run_backfill(cfg, registry, Archive(f"sqlite:///{tmp_path / 'wq.db'}"),
                          start="2012-02-08T00:00", end="2012-02-10T23:00")
    assert result.skipped == 8 and result.written_origins == 61
    got = Archive(f"sqlite:///{tmp_path / 'wq.db'}").forecasts()
    assert np.isfinite(got["value"]).all()
    by = got.groupby("issued_at")["issued_by"].agg(lambda s: set(s))
    after = by.index >= pd.Timestamp("2012-02-09T00:00-05:00")
    assert after.sum() == 48 and all(b == {"ensemble:statistical"} for b in by[after])
    assert all(b == {"ensemble"} for b in by[~after])

    # each stand-in row lies within its statistical members' own forecasts at that origin
    station = load_stage(cfg)
    ens = registry.load(version.version).forecaster
    origins = np.flatnonzero(station.values.index.isin(by.index[after]))
    view = SeriesView(station.values.to_numpy(float), station.observed.to_numpy(bool), station.values.index,
                      TINY["horizon"], len(station.values), np.empty(0, np.int64))
    own = np.stack([ens.members[m].forecast(view, origins) for m in ens.statistical_members()])
    stood = got[got["issued_at"].isin(by.index[after])].pivot(index="issued_at", columns="step", values="value")
    lo, hi = np.nanmin(own, axis=0), np.nanmax(own, axis=0)
    assert ((stood.to_numpy() >= lo - 1e-9) & (stood.to_numpy() <= hi + 1e-9)).all()
    assert (np.nanmax(own, axis=0) - np.nanmin(own, axis=0)).max() > 0  # the members disagree: a real check
