"""The forecast archive on real SQLite files: schema and upgrades, idempotent writes, UTC times,
filters, exports, runs, bad URLs, and two processes writing one file at once."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import stat
from datetime import timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from wq_pipeline.store import archive as archive_mod
from wq_pipeline.store.archive import SCHEMA_VERSION, Archive
from wq_pipeline.errors import InputError

T0 = pd.Timestamp("2024-03-01 00:00", tz="UTC")
STEPS = 6


def expected_value(hour: int, step: int) -> float:
    """Deterministic forecast value of issue hour ``hour`` (hours after T0), step ``step``."""
    return hour * 10.0 + step + 0.25


def forecast_frame(hours, steps: int = STEPS, site: str = "sapelo", target: str = "DO_obs",
                   model_version: str = "m1", tz="UTC") -> pd.DataFrame:
    """Rows for issue times ``T0 + hours`` (expressed in zone ``tz``) and steps 1..``steps``."""
    hours = np.asarray(list(hours))
    issued = (T0 + pd.to_timedelta(np.repeat(hours, steps), unit="h")).tz_convert(tz)
    step = np.tile(np.arange(1, steps + 1), hours.size)
    return pd.DataFrame({
        "site": site, "target": target, "model_version": model_version,
        "issued_at": issued,
        "target_time": issued + pd.to_timedelta(step, unit="h"),
        "step": step,
        "value": [expected_value(h, s) for h, s in zip(np.repeat(hours, steps), step)],
    })


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def db(tmp_path: Path):
    a = Archive(sqlite_url(tmp_path / "data" / "wq.db"))
    yield a
    a.close()


def count_rows(path: Path, table: str = "forecasts") -> int:
    with sqlite3.connect(path) as con:
        return con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


# --------------------------------------------------------------------------- schema


def test_new_database_has_current_schema_and_wal(tmp_path: Path):
    path = tmp_path / "new" / "sub" / "wq.db"
    a = Archive(sqlite_url(path))
    try:
        assert path.is_file()
        assert a.schema_version() == SCHEMA_VERSION == 4
        with a.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            insp = sa.inspect(conn)
            assert set(insp.get_table_names()) == {"schema_info", "runs", "model_versions", "forecasts",
                                                   "forecast_quantiles", "forecast_crossings", "alerts"}
            assert insp.get_pk_constraint("forecast_crossings")["constrained_columns"] == [
                "site", "target", "model_version", "issued_at", "step", "threshold"]
            assert insp.get_pk_constraint("alerts")["constrained_columns"] == [
                "site", "target", "model_version", "issued_at", "threshold"]
            assert insp.get_pk_constraint("forecast_quantiles")["constrained_columns"] == [
                "site", "target", "model_version", "issued_at", "step", "level"]
            assert insp.get_pk_constraint("forecasts")["constrained_columns"] == [
                "site", "target", "model_version", "issued_at", "step"]
            idx = {i["name"]: i["column_names"] for i in insp.get_indexes("forecasts")}
            assert idx["ix_forecasts_site_target_issued_at"] == ["site", "target", "issued_at"]
            assert conn.exec_driver_sql("SELECT COUNT(*) FROM schema_info").scalar() == 1
    finally:
        a.close()


def test_reopening_keeps_data(tmp_path: Path):
    url = sqlite_url(tmp_path / "wq.db")
    with Archive(url) as a:
        assert a.write_forecasts(forecast_frame(range(4))) == 24
    with Archive(url) as b:
        got = b.forecasts()
        assert len(got) == 24
        assert got["value"].tolist() == forecast_frame(range(4))["value"].tolist()
        assert b.schema_version() == SCHEMA_VERSION


def build_v1_database(path: Path) -> None:
    """A version-1 archive built without :class:`Archive`: tables, stamp, one forecast row."""
    engine = sa.create_engine(sqlite_url(path))
    with engine.begin() as conn:
        archive_mod._migrate_to_v1(conn)
        conn.exec_driver_sql("INSERT INTO schema_info (version) VALUES (1)")
        conn.exec_driver_sql(
            "INSERT INTO forecasts (site, target, model_version, issued_at, target_time, step, value, created_at)"
            " VALUES ('s', 'DO', 'm0', '2024-01-01 00:00:00.000000', '2024-01-01 01:00:00.000000', 1, 7.5,"
            " '2024-01-01 00:05:00.000000')")
    engine.dispose()


def test_v1_database_opens_idempotently_and_upgrades(tmp_path: Path, monkeypatch):
    path = tmp_path / "v1.db"
    build_v1_database(path)
    url = sqlite_url(path)
    for _ in range(2):  # opening twice upgrades once (v2: issued_by, v3: quantiles, v4: crossings, alerts)
        with Archive(url) as a:  # and keeps the stored row
            assert a.schema_version() == 4
            assert len(a.quantiles()) == len(a.crossings()) == len(a.alerts()) == 0
            got = a.forecasts()
            assert len(got) == 1 and got["value"].iloc[0] == 7.5
            assert got["issued_at"].iloc[0] == pd.Timestamp("2024-01-01 00:00", tz="UTC")
            assert got["issued_by"].iloc[0] is None  # stored before the column existed
    assert count_rows(path, "schema_info") == 1
    with Archive(url) as a:  # new rows record the model that issued them
        rows = forecast_frame(range(1)).assign(issued_by="persistence")
        assert a.write_forecasts(rows) == len(rows)
        got = a.forecasts(model_version=rows["model_version"].iloc[0])
        assert set(got["issued_by"]) == {"persistence"}

    # A version 5 that adds a column: applied once on open, data kept, not applied again.
    def add_note(conn: sa.Connection) -> None:
        conn.exec_driver_sql("ALTER TABLE forecasts ADD COLUMN note TEXT")

    monkeypatch.setattr(archive_mod, "MIGRATIONS", archive_mod.MIGRATIONS + [add_note])
    for _ in range(2):  # a second ALTER TABLE would fail: the migration runs once only
        with Archive(url) as a:
            assert a.schema_version() == 5
            assert len(a.forecasts()) == 1 + len(rows)
    with sqlite3.connect(path) as con:
        columns = [r[1] for r in con.execute("PRAGMA table_info(forecasts)")]
        assert "note" in columns and "issued_by" in columns
        assert con.execute("SELECT version FROM schema_info").fetchall() == [(5,)]


def test_quantiles_are_stored_with_their_forecasts_in_one_transaction(tmp_path: Path):
    rows = forecast_frame(range(2))
    q = pd.concat([rows[["site", "target", "model_version", "issued_at", "step"]].assign(
        level=lv, value=rows["value"] + (lv - 0.5) * 2) for lv in (0.1, 0.5, 0.9)], ignore_index=True)
    with Archive(sqlite_url(tmp_path / "wq.db")) as a:
        assert a.write_forecasts(rows, quantiles=q) == len(rows)
        assert a.write_forecasts(rows, quantiles=q) == 0  # idempotent, quantiles included
        got = a.quantiles()
        assert len(got) == 3 * len(rows) and sorted(set(got["level"])) == [0.1, 0.5, 0.9]
        med = got[got["level"] == 0.5].sort_values(["issued_at", "step"])["value"].to_numpy()
        np.testing.assert_allclose(med, rows.sort_values(["issued_at", "step"])["value"].to_numpy())
        # a bad forecast row stores nothing, not even its quantiles
        bad = forecast_frame(range(5, 6))
        bad.loc[bad.index[0], "value"] = np.nan
        qb = q.assign(issued_at=bad["issued_at"].iloc[0])
        with pytest.raises(InputError):
            a.write_forecasts(bad, quantiles=qb.drop_duplicates(["issued_at", "step", "level"]))
        assert len(a.quantiles()) == 3 * len(rows)


def _crossings_and_alert(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Crossing probabilities of ``rows`` for one threshold (rising with the step) and the alert
    they raise at level 0.5 (first at step 4)."""
    from wq_pipeline.serve.alerts import find_alerts

    c = rows[["site", "target", "model_version", "issued_at", "target_time", "step"]].assign(
        threshold="DO<2", probability=rows["step"] / 7.0)
    return c, find_alerts(c, 0.5)


def test_v3_database_upgrades_to_crossings_and_alerts_keeping_its_quantiles(tmp_path: Path, monkeypatch):
    """A database written by schema version 3 (forecasts with quantiles) opens under version 4:
    its rows are kept and new forecasts store their crossing probabilities and alerts."""
    path = tmp_path / "v3.db"
    url = sqlite_url(path)
    rows = forecast_frame(range(1))
    q = rows[["site", "target", "model_version", "issued_at", "step"]].assign(level=0.5, value=rows["value"])
    monkeypatch.setattr(archive_mod, "MIGRATIONS", archive_mod.MIGRATIONS[:3])  # the program as it was at v3
    with Archive(url) as a:
        assert a.schema_version() == 3
        assert a.write_forecasts(rows, quantiles=q) == len(rows)
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT name FROM sqlite_master WHERE name = 'alerts'").fetchall() == []
    monkeypatch.undo()
    for _ in range(2):
        with Archive(url) as a:
            assert a.schema_version() == 4
            assert len(a.forecasts()) == len(a.quantiles()) == len(rows)
            np.testing.assert_allclose(a.quantiles()["value"], q["value"])
    later = forecast_frame(range(1, 2))
    c, alerts = _crossings_and_alert(later)
    assert list(alerts["step"]) == [4] and alerts["probability"].iloc[0] == pytest.approx(6 / 7)
    with Archive(url) as a:
        stored = a.store(later, crossings=c, alerts=alerts)
        assert stored.rows == len(later) and len(stored.alerts) == 1
        assert stored.alerts["issued_at"].iloc[0] == later["issued_at"].iloc[0]
        again = a.store(later, crossings=c, alerts=alerts)  # idempotent: nothing new, no alert announced twice
        assert again.rows == 0 and again.alerts.empty
        got = a.crossings()
        assert len(got) == len(c) and got["probability"].tolist() == pytest.approx(c["probability"].tolist())
        (alert,) = a.alerts().itertuples(index=False)
        assert (alert.threshold, alert.step, alert.alert_level) == ("DO<2", 4, 0.5)
        assert alert.target_time == later["target_time"].iloc[3]
        assert len(a.forecasts()) == 2 * len(rows)


def test_failed_migration_changes_nothing(tmp_path: Path, monkeypatch):
    path = tmp_path / "v1.db"
    build_v1_database(path)

    def broken(conn: sa.Connection) -> None:
        conn.exec_driver_sql("CREATE TABLE extra (x INTEGER)")
        conn.exec_driver_sql("ALTER TABLE no_such_table ADD COLUMN y TEXT")

    monkeypatch.setattr(archive_mod, "MIGRATIONS", archive_mod.MIGRATIONS + [broken])
    with pytest.raises(InputError, match="no such table"):
        Archive(sqlite_url(path))
    with sqlite3.connect(path) as con:  # the whole upgrade rolled back, DDL included
        assert con.execute("SELECT version FROM schema_info").fetchall() == [(1,)]
        assert "issued_by" not in [r[1] for r in con.execute("PRAGMA table_info(forecasts)")]
        assert con.execute("SELECT name FROM sqlite_master WHERE name = 'extra'").fetchall() == []
        assert con.execute("SELECT COUNT(*) FROM forecasts").fetchone()[0] == 1


def test_newer_schema_is_refused(tmp_path: Path):
    path = tmp_path / "future.db"
    Archive(sqlite_url(path)).close()
    with sqlite3.connect(path) as con:
        con.execute("UPDATE schema_info SET version = ?", (SCHEMA_VERSION + 1,))
    url = sqlite_url(path)
    with pytest.raises(InputError) as err:
        Archive(url)
    msg = str(err.value)
    assert url in msg
    assert f"version {SCHEMA_VERSION + 1}" in msg and f"version {SCHEMA_VERSION})" in msg
    assert path.is_file()  # an existing database is never removed


# --------------------------------------------------------------------------- forecasts


def test_write_is_idempotent_and_overlap_inserts_only_new_rows(db: Archive):
    first = forecast_frame(range(0, 10))
    assert db.write_forecasts(first) == 60
    assert db.write_forecasts(first) == 0
    assert len(db.forecasts()) == 60
    overlap = forecast_frame(range(5, 15))  # hours 5..9 stored already, 10..14 new
    assert db.write_forecasts(overlap) == 30
    got = db.forecasts()
    assert len(got) == 90
    assert not got.duplicated(["site", "target", "model_version", "issued_at", "step"]).any()
    hours = ((got["issued_at"] - T0) / pd.Timedelta("1h")).astype(int)
    assert np.array_equal(got["value"].to_numpy(), [expected_value(h, s) for h, s in zip(hours, got["step"])])
    # another model version of the same forecasts is a different key
    assert db.write_forecasts(forecast_frame(range(0, 10), model_version="m2")) == 60
    assert len(db.forecasts()) == 150
    assert db.write_forecasts(first.iloc[:0]) == 0


def test_times_round_trip_as_utc(db: Archive):
    minus5 = timezone(timedelta(hours=-5))
    rows = forecast_frame(range(3), steps=2, tz=minus5)
    assert str(rows["issued_at"].iloc[0]) == "2024-02-29 19:00:00-05:00"
    assert db.write_forecasts(rows) == 6
    got = db.forecasts()
    assert str(got["issued_at"].dtype) == "datetime64[ns, UTC]"
    assert str(got["target_time"].dtype) == "datetime64[ns, UTC]"
    assert str(got["created_at"].dtype) == "datetime64[ns, UTC]"
    assert got["issued_at"].iloc[0] == pd.Timestamp("2024-03-01 00:00", tz="UTC")
    assert (got["issued_at"].to_numpy() == rows["issued_at"].dt.tz_convert("UTC").to_numpy()).all()
    assert (got["target_time"].to_numpy() == rows["target_time"].dt.tz_convert("UTC").to_numpy()).all()
    assert (got["target_time"] - got["issued_at"] == pd.to_timedelta(got["step"], unit="h")).all()
    # stored as naive UTC text in SQLite
    with db.engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT issued_at FROM forecasts ORDER BY issued_at LIMIT 1").scalar()
    assert raw == "2024-03-01 00:00:00.000000"
    # filters accept any zone and compare instants
    one = db.forecasts(start=pd.Timestamp("2024-02-29 20:00", tz=minus5),
                       end=pd.Timestamp("2024-03-01 01:00", tz="UTC"))
    assert len(one) == 2 and (one["issued_at"] == pd.Timestamp("2024-03-01 01:00", tz="UTC")).all()


def test_object_arrays_of_aware_timestamps_are_accepted(db: Archive):
    rows = forecast_frame(range(3), tz="America/New_York")
    rows["issued_at"] = pd.Series(rows["issued_at"].to_numpy(dtype=object), dtype=object)
    # mixed zones in one column: each stamp is converted on its own
    mixed = [t.tz_convert("UTC") if i % 2 else t for i, t in enumerate(rows["target_time"])]
    rows["target_time"] = pd.Series(mixed, dtype=object)
    assert rows["issued_at"].dtype == object and rows["target_time"].dtype == object
    assert db.write_forecasts(rows) == 18
    got = db.forecasts()
    assert got["issued_at"].iloc[0] == T0
    assert (got["target_time"] - got["issued_at"] == pd.to_timedelta(got["step"], unit="h")).all()


def test_naive_timestamps_are_rejected(db: Archive):
    rows = forecast_frame(range(2))
    rows["issued_at"] = rows["issued_at"].dt.tz_localize(None)
    with pytest.raises(ValueError, match="naive"):
        db.write_forecasts(rows)
    with pytest.raises(ValueError, match="naive"):
        db.forecasts(start=pd.Timestamp("2024-03-01"))
    assert len(db.forecasts()) == 0


def test_stored_issue_times_filters(db: Archive):
    db.write_forecasts(forecast_frame(range(0, 6), model_version="m1"))
    db.write_forecasts(forecast_frame(range(4, 10), model_version="m2"))
    db.write_forecasts(forecast_frame(range(0, 3), site="other"))
    hour = lambda hs: pd.DatetimeIndex([T0 + pd.Timedelta(hours=h) for h in hs], name="issued_at")  # noqa: E731
    got = db.stored_issue_times("sapelo", "DO_obs")
    assert got.equals(hour(range(0, 10)))
    assert str(got.tz) == "UTC"
    assert db.stored_issue_times("sapelo", "DO_obs", model_version="m1").equals(hour(range(0, 6)))
    assert db.stored_issue_times("sapelo", "DO_obs", model_version="m2").equals(hour(range(4, 10)))
    assert db.stored_issue_times("sapelo", "DO_obs", start=T0 + pd.Timedelta(hours=3),
                                 end=T0 + pd.Timedelta(hours=5)).equals(hour([3, 4, 5]))
    assert db.stored_issue_times("sapelo", "DO_obs", model_version="m2",
                                 end=T0 + pd.Timedelta(hours=5)).equals(hour([4, 5]))
    assert db.stored_issue_times("other", "DO_obs").equals(hour(range(0, 3)))
    assert len(db.stored_issue_times("sapelo", "Temp")) == 0
    assert len(db.forecasts(site="sapelo", model_version="m2")) == 36


def test_non_finite_value_is_rejected_and_nothing_stored(db: Archive):
    db.write_forecasts(forecast_frame(range(0, 2)))
    rows = forecast_frame(range(0, 20))  # 108 new rows and one NaN
    rows.loc[100, "value"] = np.nan
    with pytest.raises(InputError, match="nan"):
        db.write_forecasts(rows)
    rows.loc[100, "value"] = np.inf
    with pytest.raises(InputError):
        db.write_forecasts(rows)
    assert len(db.forecasts()) == 12
    assert db.write_forecasts(forecast_frame(range(0, 20))) == 108


def test_duplicate_keys_in_one_call_and_unknown_run_are_errors(db: Archive):
    rows = forecast_frame(range(2))
    with pytest.raises(ValueError, match="duplicate"):
        db.write_forecasts(pd.concat([rows, rows.iloc[:1]]))
    with pytest.raises(ValueError, match="unknown run_id"):
        db.write_forecasts(rows, run_id="nope")
    with pytest.raises(ValueError, match="lack column"):
        db.write_forecasts(rows.drop(columns="step"))
    assert len(db.forecasts()) == 0


# --------------------------------------------------------------------------- runs, model versions


def test_runs_start_and_finish(db: Archive):
    run_id = db.start_run("forecast", "wq forecast --site sapelo", {"horizon": 6, "sites": ["sapelo"]})
    assert len(run_id) == 32 and int(run_id, 16) >= 0
    runs = db.runs()
    assert runs["status"].tolist() == ["running"]
    assert runs["finished_at"].isna().all()
    assert db.write_forecasts(forecast_frame(range(3)), run_id=run_id) == 18
    db.finish_run(run_id, "succeeded", 18)
    failed = db.start_run("retrain", "wq retrain", {})
    db.finish_run(failed, "failed", 0, message="no data")
    runs = db.runs().set_index("run_id")
    assert runs.loc[run_id, "status"] == "succeeded"
    assert runs.loc[run_id, "n_forecasts"] == 18
    assert runs.loc[run_id, "params"] == {"horizon": 6, "sites": ["sapelo"]}
    assert runs.loc[run_id, "kind"] == "forecast"
    assert runs.loc[run_id, "finished_at"] >= runs.loc[run_id, "started_at"]
    assert str(runs["started_at"].dtype) == "datetime64[ns, UTC]"
    assert runs.loc[failed, "message"] == "no data" and runs.loc[failed, "n_forecasts"] == 0
    assert (db.forecasts()["run_id"] == run_id).all()
    with pytest.raises(ValueError, match="unknown run_id"):
        db.finish_run("0" * 32, "succeeded", 1)


def test_register_model_version_is_idempotent(db: Archive):
    manifest = {"version": "sapelo-DO-20240301-abc", "site": "sapelo", "target": "DO_obs", "method": "vmd",
                "training_period": {"start": "2012-01-01T00:00:00-05:00", "end": "2012-06-30T23:00:00+00:00"},
                "data_sha256": "ab" * 32, "created_at": "2024-03-01T12:00:00+01:00", "extra": [1, 2]}
    db.register_model_version(manifest)
    db.register_model_version(manifest)
    mv = db.model_versions()
    assert len(mv) == 1
    row = mv.iloc[0]
    assert row["trained_from"] == pd.Timestamp("2012-01-01 05:00", tz="UTC")
    assert row["trained_until"] == pd.Timestamp("2012-06-30 23:00", tz="UTC")
    assert row["created_at"] == pd.Timestamp("2024-03-01 11:00", tz="UTC")
    assert row["manifest"] == manifest and row["method"] == "vmd"
    with pytest.raises(InputError, match="missing method"):
        db.register_model_version({k: v for k, v in manifest.items() if k != "method"} | {"version": "x"})
    with pytest.raises(InputError, match="created_at"):
        db.register_model_version(manifest | {"version": "y", "created_at": "yesterday-ish"})
    assert len(db.model_versions()) == 1
    db.register_model_version(manifest | {"version": "old", "created_at": "2024-03-01T12:00:00"})  # no offset: UTC
    assert db.model_versions().set_index("version").loc["old", "created_at"] == pd.Timestamp("2024-03-01 12:00",
                                                                                            tz="UTC")


# --------------------------------------------------------------------------- export


def test_export_csv_and_parquet_round_trip(db: Archive, tmp_path: Path):
    db.write_forecasts(forecast_frame(range(0, 8)))
    db.write_forecasts(forecast_frame(range(0, 8), model_version="m0"))
    db.write_forecasts(forecast_frame(range(0, 4), site="altamaha"))
    want = db.forecasts(site="sapelo")
    assert len(want) == 96
    # sorted by site, target, issued_at, model_version, step
    assert want["model_version"].tolist()[:12] == ["m0"] * 6 + ["m1"] * 6

    csv_path = tmp_path / "exports" / "deep" / "sapelo.csv"
    assert db.export(csv_path, "csv", site="sapelo") == 96
    assert stat.S_IMODE(csv_path.stat().st_mode) == 0o644
    text = csv_path.read_text().splitlines()
    assert text[0] == "site,target,model_version,issued_at,target_time,step,value,created_at,issued_by"
    assert text[1].startswith("sapelo,DO_obs,m0,2024-03-01T00:00:00+00:00,2024-03-01T01:00:00+00:00,1,1.25,")
    assert text[1].endswith("+00:00,")  # issued_by not given by these writers
    back = pd.read_csv(csv_path)
    assert len(back) == 96
    assert back["value"].tolist() == want["value"].tolist()
    assert back["step"].tolist() == want["step"].tolist()
    assert (pd.to_datetime(back["issued_at"], utc=True) == want["issued_at"].reset_index(drop=True)).all()
    assert (pd.to_datetime(back["created_at"], utc=True) == want["created_at"].reset_index(drop=True)).all()

    pq_path = tmp_path / "exports" / "all.parquet"
    assert db.export(pq_path, "parquet") == 120
    assert stat.S_IMODE(pq_path.stat().st_mode) == 0o644
    back = pd.read_parquet(pq_path)
    full = db.forecasts()
    assert list(back.columns) == ["site", "target", "model_version", "issued_at", "target_time", "step", "value",
                                  "created_at", "issued_by"]
    assert len(back) == 120
    assert str(back["issued_at"].dt.tz) == "UTC"
    assert back["site"].tolist() == ["altamaha"] * 24 + ["sapelo"] * 96
    assert back["value"].tolist() == full["value"].tolist()
    assert (back["target_time"] == full["target_time"]).all()
    assert sorted(p.name for p in pq_path.parent.iterdir()) == ["all.parquet", "deep"]  # no temp files left

    with pytest.raises(InputError, match="xlsx"):
        db.export(tmp_path / "x.xlsx", "xlsx")
    assert not (tmp_path / "x.xlsx").exists()
    assert db.export(tmp_path / "none.csv", "csv", site="nowhere") == 0
    assert pd.read_csv(tmp_path / "none.csv").shape == (0, 9)


# --------------------------------------------------------------------------- bad URLs


def test_unopenable_urls_raise_input_error_and_create_nothing(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    not_sqlite = tmp_path / "junk.db"
    not_sqlite.write_bytes(b"this is not an sqlite database " * 100)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    urls = [
        sqlite_url(blocker / "x" / "y.db"),      # parent cannot be created (a file is in the way)
        sqlite_url(not_sqlite),                  # exists but is not a database
        sqlite_url(tmp_path),                    # a folder
        "postgresql://nobody:s3cret@127.0.0.1:1/x",  # no driver or no server
        "notadb://x",
        "not a url at all",
    ]
    for url in urls:
        with pytest.raises(InputError) as err:
            Archive(url)
        msg = str(err.value)
        assert url.replace(":s3cret@", ":***@") in msg, msg
        assert "s3cret" not in msg
        assert len(msg) > len(url) + 10  # says why
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert not_sqlite.read_bytes().startswith(b"this is not")


def test_postgresql_statements_compile():
    """No server here: check that the schema and the upsert render as PostgreSQL wants them."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateTable

    dialect = postgresql.dialect()
    ddl = str(CreateTable(archive_mod.forecasts_table).compile(dialect=dialect))
    assert "issued_at TIMESTAMP WITH TIME ZONE NOT NULL" in ddl
    assert "value DOUBLE PRECISION NOT NULL" in ddl
    assert "PRIMARY KEY (site, target, model_version, issued_at, step)" in ddl
    upsert = postgresql.insert(archive_mod.forecasts_table).on_conflict_do_nothing(
        index_elements=list(archive_mod.FORECAST_KEY))
    sql = str(upsert.compile(dialect=dialect))
    assert "ON CONFLICT (site, target, model_version, issued_at, step) DO NOTHING" in sql
    minus5 = pd.Timestamp("2024-03-01 07:00", tz=timezone(timedelta(hours=-5))).to_pydatetime()
    bound = archive_mod.UTCDateTime().process_bind_param(minus5, dialect)
    assert bound.tzinfo is not None and bound.utcoffset() == timedelta(0) and bound.hour == 12
    with pytest.raises(ValueError, match="naive"):
        archive_mod.UTCDateTime().process_bind_param(minus5.replace(tzinfo=None), dialect)


# --------------------------------------------------------------------------- concurrency


def _writer(url: str, first_hour: int, last_hour: int, descending: bool, barrier, results) -> None:
    """Child process: open the archive (racing the other on creating it), then write hours
    ``first_hour..last_hour`` in calls of 10 issue times, last chunk first if ``descending``."""
    a = Archive(url)
    barrier.wait(timeout=60)
    inserted = 0
    chunks = list(range(first_hour, last_hour + 1, 10))
    for h in reversed(chunks) if descending else chunks:
        inserted += a.write_forecasts(forecast_frame(range(h, min(h + 10, last_hour + 1))))
    a.close()
    results.put((first_hour, inserted))


def run_two_writers(url: str, second_start: int) -> tuple[dict[int, int], pd.DataFrame]:
    """Two spawned processes write at the same moment: A hours 299 -> 0, B ``second_start`` -> 449,
    in calls of ten issue times. Returns the rows each inserted and the final table, after
    checking that every hour 0..449 is stored once with its expected values."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, lo, hi, desc, barrier, results))
             for lo, hi, desc in ((0, 299, True), (second_start, 449, False))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    inserted = dict(results.get(timeout=5) for _ in procs)
    assert inserted[0] + inserted[second_start] == 450 * STEPS  # every row inserted by exactly one writer
    with Archive(url) as a:
        got = a.forecasts()
    assert len(got) == 450 * STEPS
    assert not got.duplicated(["site", "target", "model_version", "issued_at", "step"]).any()
    hours = ((got["issued_at"] - T0) / pd.Timedelta("1h")).astype(int).to_numpy()
    assert sorted(set(hours)) == list(range(450))
    assert np.array_equal(got["value"].to_numpy(), [expected_value(h, s) for h, s in zip(hours, got["step"])])
    return inserted, got


def test_two_processes_write_overlapping_rows(tmp_path: Path):
    path = tmp_path / "shared.db"
    # both start inside the overlap 150..299 at the same time
    inserted, got = run_two_writers(sqlite_url(path), 150)
    assert min(inserted.values()) >= 150 * STEPS  # each had 150 hours nobody else wrote
    assert len(got) == count_rows(path)
