"""The forecast archive on a real PostgreSQL server (a throwaway one from Debian's ``postgresql``
package, see tests/postgres.py): schema creation and upgrades, the backend-neutral behaviour
tests of tests/test_archive.py, UTC times through a non-UTC session, two processes writing
overlapping rows at once, and an unreachable server.

Skipped where the server programs are missing, unless ``WQ_REQUIRE_POSTGRES=1`` (``make test``)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import timedelta, timezone

import pandas as pd
import pytest
import sqlalchemy as sa

from tests.store import test_archive as sqlite_suite
from tests.postgres import free_port, throwaway_server
from tests.store.test_archive import STEPS, T0, forecast_frame, run_two_writers
from wq_pipeline.store import archive as archive_mod
from wq_pipeline.store.archive import SCHEMA_VERSION, Archive
from wq_pipeline.errors import InputError

KEY = list(archive_mod.FORECAST_KEY)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of the database ``wq_test`` on a server started for this session."""
    with throwaway_server("wq_test") as url:
        yield url


@pytest.fixture
def pg_url(postgres_url: str) -> str:
    """``postgres_url`` emptied: no tables, as a new database."""
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("SET lock_timeout = '10s'")
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    return postgres_url


@pytest.fixture
def db(pg_url: str) -> Iterator[Archive]:
    a = Archive(pg_url)
    yield a
    a.close()


def sql(url: str, text: str) -> list[tuple]:
    """Rows of one statement run outside the archive."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(text).all()]
    finally:
        engine.dispose()


# The backend-neutral tests of the SQLite suite, run here with this module's PostgreSQL `db`.
test_write_is_idempotent_and_overlap_inserts_only_new_rows = \
    sqlite_suite.test_write_is_idempotent_and_overlap_inserts_only_new_rows
test_object_arrays_of_aware_timestamps_are_accepted = sqlite_suite.test_object_arrays_of_aware_timestamps_are_accepted
test_naive_timestamps_are_rejected = sqlite_suite.test_naive_timestamps_are_rejected
test_stored_issue_times_filters = sqlite_suite.test_stored_issue_times_filters
test_non_finite_value_is_rejected_and_nothing_stored = sqlite_suite.test_non_finite_value_is_rejected_and_nothing_stored
test_duplicate_keys_in_one_call_and_unknown_run_are_errors = \
    sqlite_suite.test_duplicate_keys_in_one_call_and_unknown_run_are_errors
test_runs_start_and_finish = sqlite_suite.test_runs_start_and_finish
test_register_model_version_is_idempotent = sqlite_suite.test_register_model_version_is_idempotent
test_export_csv_and_parquet_round_trip = sqlite_suite.test_export_csv_and_parquet_round_trip


# --------------------------------------------------------------------------- schema


def test_schema_is_created_and_reopening_is_idempotent(pg_url: str):
    with Archive(pg_url) as a:
        assert a.engine.dialect.name == "postgresql"
        assert a.schema_version() == SCHEMA_VERSION
        with a.engine.connect() as conn:
            insp = sa.inspect(conn)
            assert set(insp.get_table_names()) == {"schema_info", "runs", "model_versions", "forecasts",
                                                   "forecast_quantiles", "forecast_crossings", "alerts"}
            assert insp.get_pk_constraint("forecasts")["constrained_columns"] == KEY
            idx = {i["name"]: i["column_names"] for i in insp.get_indexes("forecasts")}
            assert idx["ix_forecasts_site_target_issued_at"] == ["site", "target", "issued_at"]
        rows = forecast_frame(range(4))
        q = rows[["site", "target", "model_version", "issued_at", "step"]].assign(level=0.5, value=rows["value"])
        assert a.write_forecasts(rows, quantiles=q) == 4 * STEPS
        assert a.write_forecasts(rows, quantiles=q) == 0  # idempotent on PostgreSQL too, quantiles included
        assert a.quantiles()["value"].tolist() == a.forecasts()["value"].tolist()
    types = dict(sql(pg_url, "SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'forecasts'"))
    assert types["issued_at"] == types["target_time"] == types["created_at"] == "timestamp with time zone"
    assert types["value"] == "double precision" and types["step"] == "integer"
    for _ in range(2):  # opening again creates nothing and keeps the data
        with Archive(pg_url) as a:
            assert a.schema_version() == SCHEMA_VERSION
            assert a.forecasts()["value"].tolist() == forecast_frame(range(4))["value"].tolist()
    assert sql(pg_url, "SELECT version FROM schema_info") == [(SCHEMA_VERSION,)]


def test_upgrade_runs_once_and_a_failed_one_rolls_back(pg_url: str, monkeypatch):
    with Archive(pg_url) as a:
        a.write_forecasts(forecast_frame(range(2)))

    def broken(conn: sa.Connection) -> None:  # DDL then an error: PostgreSQL rolls the DDL back too
        conn.exec_driver_sql("ALTER TABLE forecasts ADD COLUMN half_done TEXT")
        conn.exec_driver_sql("ALTER TABLE no_such_table ADD COLUMN y TEXT")

    monkeypatch.setattr(archive_mod, "MIGRATIONS", archive_mod.MIGRATIONS + [broken])
    with pytest.raises(InputError, match="no_such_table"):
        Archive(pg_url)
    columns = "SELECT column_name FROM information_schema.columns WHERE table_name = 'forecasts'"
    assert ("half_done",) not in sql(pg_url, columns)
    assert sql(pg_url, "SELECT version FROM schema_info") == [(SCHEMA_VERSION,)]

    def add_note(conn: sa.Connection) -> None:  # a second run would fail: the column exists
        conn.exec_driver_sql("ALTER TABLE forecasts ADD COLUMN note TEXT")

    monkeypatch.setattr(archive_mod, "MIGRATIONS", archive_mod.MIGRATIONS[:-1] + [add_note])
    for _ in range(2):
        with Archive(pg_url) as a:
            assert a.schema_version() == SCHEMA_VERSION + 1
            assert len(a.forecasts()) == 2 * STEPS
    assert ("note",) in sql(pg_url, columns)
    assert sql(pg_url, "SELECT version FROM schema_info") == [(SCHEMA_VERSION + 1,)]


# --------------------------------------------------------------------------- times


def test_times_round_trip_as_utc_through_a_non_utc_session(db: Archive):
    minus5 = timezone(timedelta(hours=-5))
    rows = forecast_frame(range(3), steps=2, tz=minus5)
    assert str(rows["issued_at"].iloc[0]) == "2024-02-29 19:00:00-05:00"
    assert db.write_forecasts(rows) == 6
    got = db.forecasts()
    for col in ("issued_at", "target_time", "created_at"):
        assert str(got[col].dtype) == "datetime64[ns, UTC]"
    assert got["issued_at"].tolist() == [T0 + pd.Timedelta(hours=h) for h in (0, 0, 1, 1, 2, 2)]
    assert (got["target_time"].to_numpy() == rows["target_time"].dt.tz_convert("UTC").to_numpy()).all()
    assert (got["target_time"] - got["issued_at"] == pd.to_timedelta(got["step"], unit="h")).all()
    now = pd.Timestamp.now(tz="UTC")
    assert ((now - got["created_at"]).abs() < pd.Timedelta(minutes=1)).all()
    with db.engine.connect() as conn:
        # the server's sessions are in New York time (tests/postgres.py); the stored instant is UTC midnight
        assert conn.exec_driver_sql("SHOW timezone").scalar() == "America/New_York"
        raw = conn.exec_driver_sql("SELECT issued_at FROM forecasts ORDER BY issued_at LIMIT 1").scalar()
        utc_wall = conn.exec_driver_sql("SELECT min(issued_at) AT TIME ZONE 'UTC' FROM forecasts").scalar()
    assert raw.utcoffset() == timedelta(hours=-5) and raw.hour == 19
    assert utc_wall == pd.Timestamp("2024-03-01 00:00").to_pydatetime()
    one = db.forecasts(start=pd.Timestamp("2024-02-29 20:00", tz=minus5),
                       end=pd.Timestamp("2024-03-01 01:00", tz="UTC"))
    assert len(one) == 2 and (one["issued_at"] == T0 + pd.Timedelta(hours=1)).all()
    assert db.stored_issue_times("sapelo", "DO_obs", start=pd.Timestamp("2024-02-29 20:00", tz=minus5)).tolist() \
        == [T0 + pd.Timedelta(hours=1), T0 + pd.Timedelta(hours=2)]


# --------------------------------------------------------------------------- concurrency


def test_two_processes_write_overlapping_rows(pg_url: str):
    # Both race on creating the schema, then A writes 299 -> 0 and B 155 -> 449 in calls of ten
    # issue times; the calls overlap without lining up (A: 290-299, 280-289, ...; B: 155-164, ...).
    inserted, _ = run_two_writers(pg_url, 155)
    assert inserted[0] >= 155 * STEPS and inserted[155] >= 150 * STEPS  # the hours only each wrote
    count, distinct = sql(pg_url, "SELECT count(*), count(DISTINCT (site, target, model_version, issued_at, step))"
                                  " FROM forecasts")[0]
    assert count == distinct == 450 * STEPS
    assert sql(pg_url, "SELECT version FROM schema_info") == [(SCHEMA_VERSION,)]


# --------------------------------------------------------------------------- unreachable servers


@pytest.mark.parametrize("password", ["", ":s3cret"])
def test_dead_server_is_an_input_error_naming_the_url(password: str):
    url = f"postgresql+psycopg://postgres{password}@127.0.0.1:{free_port()}/x"
    began = time.monotonic()
    with pytest.raises(InputError) as err:
        Archive(url)
    assert time.monotonic() - began < 5
    msg = str(err.value)
    assert url.replace(":s3cret@", ":***@") in msg and "s3cret" not in msg, msg
    assert "cannot open" in msg and "refused" in msg.lower(), msg


def test_silent_server_times_out_within_the_connect_timeout():
    """A port that accepts TCP connections but never answers: fails once the archive's default
    connect timeout has passed, not later."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"postgresql+psycopg://postgres@127.0.0.1:{listener.getsockname()[1]}/x"
        began = time.monotonic()
        with pytest.raises(InputError) as err:
            Archive(url)
        elapsed = time.monotonic() - began
    assert archive_mod.PG_CONNECT_TIMEOUT_S - 0.5 < elapsed < archive_mod.PG_CONNECT_TIMEOUT_S + 3, elapsed
    assert url in str(err.value) and "timeout" in str(err.value).lower(), str(err.value)
