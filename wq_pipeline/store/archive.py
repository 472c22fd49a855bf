"""The forecast archive: a database of issued forecasts, the runs that issued them and the model
versions that produced them, through SQLAlchemy Core.

SQLite is the default (``sqlite:///data/wq.db``; the file and its folder are created on first
use). SQLite files are opened in WAL mode (``PRAGMA journal_mode=WAL``) with
``synchronous=NORMAL``, a 30 s busy timeout and foreign keys on; every write transaction starts
with ``BEGIN IMMEDIATE`` and is retried a few times if the file is still locked, so several
processes can read and write one file at once.

PostgreSQL works too: pass ``--database postgresql+psycopg://user:pass@host/db`` after
``pip install psycopg[binary]``. A server that does not answer fails within a few seconds.

Tables (the program creates and upgrades them itself; ``schema_info`` holds the version):

- ``runs``: one row per command run (``start_run`` / ``finish_run``).
- ``model_versions``: one row per trained model version (``register_model_version``).
- ``forecasts``: one row per (site, target, model_version, issued_at, step) -- the natural key and
  primary key. Writing the same forecast twice stores it once. ``issued_by`` (schema version 2)
  names the model that issued the row: the version's own model, or the fallback that stood in
  where it could not issue (NULL in rows stored before version 2).
- ``forecast_quantiles`` (version 3): the quantiles of each forecast, keyed by the forecast's key
  plus ``level``.
- ``forecast_crossings`` (version 4): the probability of each threshold crossing
  (``threshold`` is its label, e.g. ``DO_obs<2``), keyed by the forecast's key plus ``threshold``.
- ``alerts`` (version 4): one row per (site, target, model_version, issued_at, threshold) whose
  crossing probability reached the station's alert level at some step: the first such step, its
  target time, the highest probability over the steps, and the alert level.

Quantiles, crossings and alerts are written in the same transaction as their forecast rows and
are idempotent on their keys, as the forecasts are.

All times are stored in UTC and returned as tz-aware UTC pandas timestamps. Naive timestamps
passed in are a programming error (``ValueError``).
"""

from __future__ import annotations

import json
import os
import random
import re
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from wq_pipeline.errors import InputError

T = TypeVar("T")

FORECAST_KEY = ("site", "target", "model_version", "issued_at", "step")
FORECAST_INPUT_COLUMNS = ("site", "target", "model_version", "issued_at", "target_time", "step", "value")
FORECAST_COLUMNS = FORECAST_INPUT_COLUMNS + ("created_at", "run_id", "issued_by")
QUANTILE_KEY = ("site", "target", "model_version", "issued_at", "step", "level")
QUANTILE_COLUMNS = ("site", "target", "model_version", "issued_at", "step", "level", "value")
CROSSING_KEY = ("site", "target", "model_version", "issued_at", "step", "threshold")
CROSSING_COLUMNS = ("site", "target", "model_version", "issued_at", "target_time", "step", "threshold", "probability")
ALERT_KEY = ("site", "target", "model_version", "issued_at", "threshold")
ALERT_INPUT_COLUMNS = ALERT_KEY + ("alert_level", "probability", "step", "target_time")
ALERT_COLUMNS = ALERT_INPUT_COLUMNS + ("created_at", "run_id")
EXPORT_COLUMNS = FORECAST_INPUT_COLUMNS + ("created_at", "issued_by")
EXPORT_FORMATS = ("csv", "parquet", "efi")
RUN_COLUMNS = ("run_id", "kind", "command", "params", "started_at", "finished_at", "status", "n_forecasts",
               "message")
SUPPORTED_BACKENDS = ("sqlite", "postgresql")

PG_CONNECT_TIMEOUT_S = 5
SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_ATTEMPTS = 6  # a write transaction is tried this often when the database stays locked
_PG_MIGRATION_LOCK = 0x57515F41  # pg_advisory_xact_lock key serialising schema upgrades ("WQ_A")
_RETRYABLE = ("locked", "deadlock detected", "could not serialize")


class UTCDateTime(sa.TypeDecorator):
    """``DateTime(timezone=True)`` holding UTC instants.

    Binds tz-aware datetimes only (naive -> ``ValueError``): converted to UTC, and made naive for
    SQLite, which has no time-zone type. Results always come back tz-aware UTC.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, pd.Timestamp):
            value = value.to_pydatetime()
        if not isinstance(value, datetime):
            raise ValueError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        if value.tzinfo is timezone.utc:  # the common case, kept cheap for bulk inserts
            return value.replace(tzinfo=None) if dialect.name == "sqlite" else value
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive timestamp {value.isoformat()}: give a tz-aware timestamp")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


# --------------------------------------------------------------------------- schema


def _v1_metadata() -> sa.MetaData:
    """The tables as schema version 1 created them. Frozen: a later schema change gets its own
    migration function and its own current table definitions; this one stays as it is."""
    md = sa.MetaData()
    sa.Table("schema_info", md, sa.Column("version", sa.Integer, nullable=False))
    sa.Table(
        "runs", md,
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("params", sa.Text, nullable=False),  # JSON
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("n_forecasts", sa.Integer, nullable=True),
        sa.Column("message", sa.Text, nullable=True),
    )
    sa.Table(
        "model_versions", md,
        sa.Column("version", sa.String, primary_key=True),
        sa.Column("site", sa.String, nullable=False),
        sa.Column("target", sa.String, nullable=False),
        sa.Column("method", sa.String, nullable=False),
        sa.Column("trained_from", UTCDateTime, nullable=True),
        sa.Column("trained_until", UTCDateTime, nullable=True),
        sa.Column("data_sha256", sa.String, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("manifest", sa.Text, nullable=False),  # JSON
    )
    sa.Table(
        "forecasts", md,
        sa.Column("site", sa.String, nullable=False),
        sa.Column("target", sa.String, nullable=False),
        sa.Column("model_version", sa.String, nullable=False),
        sa.Column("issued_at", UTCDateTime, nullable=False),
        sa.Column("target_time", UTCDateTime, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), nullable=True),
        sa.PrimaryKeyConstraint(*FORECAST_KEY, name="pk_forecasts"),
        sa.Index("ix_forecasts_site_target_issued_at", "site", "target", "issued_at"),
    )
    return md


def _migrate_to_v1(conn: sa.Connection) -> None:
    """Version 1: create all tables."""
    _v1_metadata().create_all(conn, checkfirst=False)


def _migrate_to_v2(conn: sa.Connection) -> None:
    """Version 2: ``forecasts.issued_by``, the model that issued each row (existing rows: NULL)."""
    conn.exec_driver_sql("ALTER TABLE forecasts ADD COLUMN issued_by VARCHAR")


def _issue_columns() -> list[sa.Column]:
    """The columns naming an issued forecast (site, target, model_version, issued_at), new ones
    for each table that keys on it (version 3 on)."""
    return [sa.Column("site", sa.String, nullable=False), sa.Column("target", sa.String, nullable=False),
            sa.Column("model_version", sa.String, nullable=False), sa.Column("issued_at", UTCDateTime, nullable=False)]


def _written_columns() -> list[sa.Column]:
    """When and by which run a row was written (version 3 on)."""
    return [sa.Column("created_at", UTCDateTime, nullable=False), sa.Column("run_id", sa.String(32), nullable=True)]


def _quantiles_table(md: sa.MetaData) -> sa.Table:
    """Version 3's table of forecast quantiles (frozen, as version 1's tables)."""
    return sa.Table(
        "forecast_quantiles", md,
        *_issue_columns(),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("level", sa.Double, nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        *_written_columns(),
        sa.PrimaryKeyConstraint(*QUANTILE_KEY, name="pk_forecast_quantiles"),
    )


def _migrate_to_v3(conn: sa.Connection) -> None:
    """Version 3: ``forecast_quantiles``, the quantiles of each stored forecast (a new table; no
    existing row changes)."""
    _quantiles_table(sa.MetaData()).create(conn, checkfirst=False)


def _v4_tables(md: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    """Version 4's tables of crossing probabilities and alerts (frozen, as version 1's tables)."""
    crossings = sa.Table(
        "forecast_crossings", md,
        *_issue_columns(),
        sa.Column("target_time", UTCDateTime, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("threshold", sa.String, nullable=False),
        sa.Column("probability", sa.Double, nullable=False),
        *_written_columns(),
        sa.PrimaryKeyConstraint(*CROSSING_KEY, name="pk_forecast_crossings"),
    )
    alerts = sa.Table(
        "alerts", md,
        *_issue_columns(),
        sa.Column("threshold", sa.String, nullable=False),
        sa.Column("alert_level", sa.Double, nullable=False),
        sa.Column("probability", sa.Double, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("target_time", UTCDateTime, nullable=False),
        *_written_columns(),
        sa.PrimaryKeyConstraint(*ALERT_KEY, name="pk_alerts"),
        sa.Index("ix_alerts_issued_at", "issued_at"),
    )
    return crossings, alerts


def _migrate_to_v4(conn: sa.Connection) -> None:
    """Version 4: ``forecast_crossings`` and ``alerts`` (new tables; no existing row changes)."""
    for table in _v4_tables(sa.MetaData()):
        table.create(conn, checkfirst=False)


def _current_metadata() -> sa.MetaData:
    """The tables as the newest schema version has them (version 1 plus later migrations)."""
    md = _v1_metadata()
    md.tables["forecasts"].append_column(sa.Column("issued_by", sa.String, nullable=True))
    _quantiles_table(md)
    _v4_tables(md)
    return md


# Ordered: MIGRATIONS[i] upgrades a database from version i to version i + 1.
MIGRATIONS: list[Callable[[sa.Connection], None]] = [_migrate_to_v1, _migrate_to_v2, _migrate_to_v3, _migrate_to_v4]
SCHEMA_VERSION: int = len(MIGRATIONS)

# Current table definitions used by the queries.
metadata = _current_metadata()
schema_info_table = metadata.tables["schema_info"]
runs_table = metadata.tables["runs"]
model_versions_table = metadata.tables["model_versions"]
forecasts_table = metadata.tables["forecasts"]
quantiles_table = metadata.tables["forecast_quantiles"]
crossings_table = metadata.tables["forecast_crossings"]
alerts_table = metadata.tables["alerts"]


@dataclass(frozen=True)
class Stored:
    """What :meth:`Archive.store` wrote: ``rows`` new forecast rows and the ``alerts`` that were
    new (a frame with :data:`ALERT_COLUMNS`)."""

    rows: int
    alerts: pd.DataFrame


# --------------------------------------------------------------------------- helpers


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (works on URLs SQLAlchemy cannot parse)."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - unparseable: mask by pattern
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _reason(exc: BaseException) -> str:
    """First line of the driver's message (SQLAlchemy wraps it in ``.orig``)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip() or type(orig).__name__
    return text.splitlines()[0].strip()


def _is_retryable(exc: sa.exc.OperationalError) -> bool:
    text = str(exc).lower()
    return any(word in text for word in _RETRYABLE)


def _utc_index(values: Any, what: str) -> pd.DatetimeIndex:
    """Tz-aware timestamps (any zone) -> ``DatetimeIndex`` in UTC; naive ones -> ``ValueError``."""
    if isinstance(values, pd.Series):
        values = values.array
    if isinstance(getattr(values, "dtype", None), pd.DatetimeTZDtype):
        return pd.DatetimeIndex(values).tz_convert("UTC")
    try:  # fast path: one zone throughout (e.g. an object array of tz-aware Timestamps)
        idx = pd.DatetimeIndex(values)
        if idx.tz is not None:
            return idx.tz_convert("UTC")
    except (TypeError, ValueError):
        pass  # mixed zones, or naive and aware mixed: checked one by one below
    stamps = [pd.Timestamp(v) for v in values]
    naive = [s for s in stamps if s is not pd.NaT and s.tzinfo is None]
    if naive:
        raise ValueError(f"{what}: naive timestamp {naive[0]} ({len(naive)} in all); give tz-aware timestamps")
    return pd.DatetimeIndex(pd.to_datetime(stamps, utc=True))


def _utc_timestamp(value: Any, what: str) -> pd.Timestamp | None:
    """One tz-aware timestamp (Timestamp, datetime or ISO string with offset) -> UTC; None passes."""
    if value is None:
        return None
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        raise ValueError(f"{what}: not a timestamp: {value!r}")
    if ts.tzinfo is None:
        raise ValueError(f"{what}={value!r} is naive; give a tz-aware timestamp")
    return ts.tz_convert("UTC")


def _times_from_db(values: list[Any]) -> pd.DatetimeIndex:
    """Datetimes read back through :class:`UTCDateTime` -> ``datetime64[ns, UTC]``."""
    if not values:
        return pd.DatetimeIndex([], dtype="datetime64[ns, UTC]")
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("ns")


def _iso_strings(times: pd.Series) -> pd.Series:
    """UTC timestamps -> ISO 8601 strings with ``+00:00`` (microseconds only where present)."""
    t = times.dt.tz_convert("UTC").dt.tz_localize(None)
    unit = "us" if (t.dt.microsecond != 0).any() else "s"
    return pd.Series(np.datetime_as_string(t.to_numpy(), unit=unit), index=times.index) + "+00:00"


def _manifest_time(manifest: dict, *keys: str) -> datetime | None:
    node: Any = manifest
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    if node is None:
        return None
    where = "manifest " + ".".join(keys)
    try:
        ts = pd.Timestamp(node)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{where}={node!r}: not an ISO 8601 time ({exc})") from None
    if ts is pd.NaT:
        raise InputError(f"{where}={node!r}: expected an ISO 8601 time with a UTC offset")
    if ts.tzinfo is None:  # an old manifest without offset: read as UTC, as the registry does
        ts = ts.tz_localize("UTC")
    return ts.tz_convert("UTC").to_pydatetime()


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------- archive


class Archive:
    """A forecast archive at a SQLAlchemy URL (SQLite or PostgreSQL)."""

    url: str
    engine: sa.Engine

    def __init__(self, url: str) -> None:
        """Open (creating the SQLite file and its parent folder if needed) and create/upgrade the schema.

        Any URL that cannot be parsed or opened raises :class:`InputError` naming the URL
        (password masked) and the reason; nothing is then left on disk.
        """
        self.url = url
        shown = mask_url(url)
        try:
            parsed = sa.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise InputError(f"database {shown}: not a database URL ({exc})") from None
        backend = parsed.get_backend_name()
        if backend not in SUPPORTED_BACKENDS:
            raise InputError(f"database {shown}: unsupported database {backend!r} "
                             f"(use sqlite:///path/to/file.db or postgresql+psycopg://user:pass@host/db)")
        created_dirs: list[Path] = []
        db_file = self._sqlite_file(parsed, shown) if backend == "sqlite" else None
        file_existed = db_file is not None and db_file.exists()
        engine: sa.Engine | None = None
        try:
            if db_file is not None:
                created_dirs = self._make_parent(db_file, shown)
            engine = self._create_engine(parsed, shown)
            self.engine = engine
            self._upgrade_schema(shown)
        except BaseException as exc:
            if engine is not None:
                engine.dispose()
            if db_file is not None and not file_existed:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    try:
                        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
                    except OSError:
                        pass
            for folder in reversed(created_dirs):
                try:
                    folder.rmdir()
                except OSError:
                    pass
            if isinstance(exc, InputError) or not isinstance(exc, (sa.exc.SQLAlchemyError, OSError)):
                raise
            raise InputError(f"database {shown}: cannot open ({_reason(exc)})") from None

    # ---------------------------------------------------------------- opening

    @staticmethod
    def _sqlite_file(parsed: sa.URL, shown: str) -> Path | None:
        """The SQLite file of ``parsed``, or None for in-memory and ``file:`` URI databases."""
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:") or parsed.query.get("mode") == "memory":
            return None
        path = Path(database)
        if path.is_dir():
            raise InputError(f"database {shown}: {path} is a folder, not a database file")
        return path

    @staticmethod
    def _make_parent(path: Path, shown: str) -> list[Path]:
        """Create the folder of ``path``; returns the folders created (outermost first)."""
        missing: list[Path] = []
        p = path.parent
        while not p.exists() and p != p.parent:
            missing.append(p)
            p = p.parent
        missing.reverse()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            for folder in reversed(missing):
                if folder.is_dir():
                    try:
                        folder.rmdir()
                    except OSError:
                        pass
            raise InputError(f"database {shown}: cannot create folder {path.parent} "
                             f"({exc.strerror or exc})") from None
        return missing

    @staticmethod
    def _create_engine(parsed: sa.URL, shown: str) -> sa.Engine:
        backend = parsed.get_backend_name()
        try:
            if backend == "postgresql":
                connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": PG_CONNECT_TIMEOUT_S}
                engine = sa.create_engine(parsed, connect_args=connect_args, pool_pre_ping=True)
            else:
                engine = sa.create_engine(parsed)
        except ImportError as exc:
            driver = parsed.get_driver_name()
            package = {"psycopg": "psycopg[binary]", "psycopg2": "psycopg2-binary"}.get(driver, driver)
            hint = f"pip install {package}"
            if backend == "postgresql" and driver != "psycopg":
                hint += " (or use a postgresql+psycopg:// URL after pip install psycopg[binary])"
            raise InputError(f"database {shown}: database driver {driver!r} is not installed ({exc}); {hint}") from None
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
            raise InputError(f"database {shown}: {exc}") from None
        if backend == "sqlite":
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
        return engine

    def _upgrade_schema(self, shown: str) -> None:
        """Apply the migrations newer than the stored version, all in one write transaction."""
        target = len(MIGRATIONS)
        with self.engine.connect() as conn:
            current = _stored_version(conn)
        if current > target:
            raise InputError(f"database {shown}: schema version {current} is newer than this program "
                             f"supports (version {target}); upgrade wq-pipeline")
        if current == target:
            return

        def upgrade(conn: sa.Connection) -> None:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.literal(_PG_MIGRATION_LOCK, sa.BigInteger))))
            version = _stored_version(conn)  # again: another process may have upgraded meanwhile
            if version > target:
                raise InputError(f"database {shown}: schema version {version} is newer than this program "
                                 f"supports (version {target}); upgrade wq-pipeline")
            for step in range(version, target):
                MIGRATIONS[step](conn)
            if version == 0:
                conn.execute(schema_info_table.insert().values(version=target))
            elif version < target:
                conn.execute(schema_info_table.update().values(version=target))

        self._write(upgrade)

    # ---------------------------------------------------------------- transactions

    def _write(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run ``fn(conn)`` in one write transaction (``BEGIN IMMEDIATE`` on SQLite), committing on
        success; retried with backoff while the database reports it is locked."""
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with self.engine.connect() as conn:
                    conn.execution_options(wq_write=True)
                    with conn.begin():
                        return fn(conn)
            except sa.exc.OperationalError as exc:
                if attempt == WRITE_ATTEMPTS - 1 or not _is_retryable(exc):
                    raise
                time.sleep(0.05 * 2**attempt * (1 + random.random()))
        raise AssertionError("unreachable")

    def _select(self, stmt: sa.Select) -> list[sa.Row]:
        with self.engine.connect() as conn:
            return list(conn.execute(stmt).all())

    def _insert(self, table: sa.Table) -> Any:
        """Dialect-specific INSERT supporting ``on_conflict_do_nothing``."""
        if self.engine.dialect.name == "postgresql":
            return pg_dialect.insert(table)
        return sqlite_dialect.insert(table)

    # ---------------------------------------------------------------- public API

    def schema_version(self) -> int:
        """The schema version stored in the database."""
        with self.engine.connect() as conn:
            return _stored_version(conn)

    def start_run(self, kind: str, command: str, params: dict) -> str:
        """Record a run that starts now (status ``'running'``); returns its ``run_id`` (uuid4 hex).

        ``params`` is stored as JSON (values that JSON cannot hold are stored as strings)."""
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"run kind must be a non-empty string, got {kind!r}")
        run_id = uuid.uuid4().hex
        row = dict(run_id=run_id, kind=kind, command=str(command),
                   params=json.dumps(params or {}, sort_keys=True, default=str),
                   started_at=_now(), finished_at=None, status="running", n_forecasts=0, message=None)
        self._write(lambda conn: conn.execute(runs_table.insert().values(**row)))
        return run_id

    def finish_run(self, run_id: str, status: str, n_forecasts: int, message: str | None = None) -> None:
        """Mark run ``run_id`` finished now with ``status`` (e.g. ``'succeeded'``, ``'failed'``),
        the number of forecasts it stored and an optional message."""
        if not isinstance(status, str) or not status:
            raise ValueError(f"run status must be a non-empty string, got {status!r}")
        values = dict(finished_at=_now(), status=status, n_forecasts=int(n_forecasts), message=message)

        def update(conn: sa.Connection) -> int:
            return conn.execute(runs_table.update().where(runs_table.c.run_id == run_id).values(**values)).rowcount

        if self._write(update) == 0:
            raise ValueError(f"unknown run_id {run_id!r}")

    def register_model_version(self, manifest: dict) -> None:
        """Record a model version from its manifest; does nothing if ``manifest['version']`` is
        already registered.

        Reads ``version, site, target, method, training_period: {start, end}, data_sha256,
        created_at`` (times: ISO 8601 strings with offsets; one without is read as UTC, as
        :mod:`wq_pipeline.store.registry` does). Missing keys or unparseable times -> :class:`InputError`."""
        missing = [k for k in ("version", "site", "target", "method", "created_at") if not manifest.get(k)]
        if missing:
            raise InputError(f"model manifest {manifest.get('version', '?')}: missing {', '.join(missing)}")
        row = dict(
            version=str(manifest["version"]), site=str(manifest["site"]), target=str(manifest["target"]),
            method=str(manifest["method"]),
            trained_from=_manifest_time(manifest, "training_period", "start"),
            trained_until=_manifest_time(manifest, "training_period", "end"),
            data_sha256=manifest.get("data_sha256"),
            created_at=_manifest_time(manifest, "created_at"),
            manifest=json.dumps(manifest, sort_keys=True, default=str),
        )
        stmt = self._insert(model_versions_table).values(**row).on_conflict_do_nothing(index_elements=["version"])
        self._write(lambda conn: conn.execute(stmt))

    def model_versions(self) -> pd.DataFrame:
        """Registered model versions, oldest first; times tz-aware UTC, ``manifest`` as a dict."""
        t = model_versions_table
        rows = self._select(sa.select(t).order_by(t.c.created_at, t.c.version))
        df = pd.DataFrame([r._asdict() for r in rows], columns=[c.name for c in t.columns])
        for col in ("trained_from", "trained_until", "created_at"):
            df[col] = _times_from_db(list(df[col]))
        df["manifest"] = [json.loads(m) for m in df["manifest"]]
        return df

    def stored_issue_times(self, site: str, target: str, model_version: str | None = None,
                           start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> pd.DatetimeIndex:
        """Distinct issue times stored for ``site``/``target`` (optionally one model version, and
        ``start <= issued_at <= end``), sorted, tz-aware UTC."""
        t = forecasts_table
        stmt = sa.select(t.c.issued_at).distinct().where(*self._filters(site, target, start, end, model_version))
        rows = self._select(stmt.order_by(t.c.issued_at))
        return pd.DatetimeIndex(_times_from_db([r[0] for r in rows]), name="issued_at")

    def write_forecasts(self, rows: pd.DataFrame, run_id: str | None = None,
                        quantiles: pd.DataFrame | None = None, crossings: pd.DataFrame | None = None) -> int:
        """Store forecasts (and what was issued with them, see :meth:`store`); returns how many
        forecast rows were new."""
        return self.store(rows, run_id, quantiles, crossings).rows

    def store(self, rows: pd.DataFrame, run_id: str | None = None, quantiles: pd.DataFrame | None = None,
              crossings: pd.DataFrame | None = None, alerts: pd.DataFrame | None = None) -> Stored:
        """Store forecasts with their quantiles, crossing probabilities and alerts, all in one
        transaction (each idempotent on its key), so a forecast is never stored without what was
        issued with it. Returns how many forecast rows were new and the alerts that were new (an
        alert already stored, e.g. by a retried run, is not returned again).

        ``quantiles`` (optional): columns ``site, target, model_version, issued_at, step, level,
        value``. ``crossings``: ``site, target, model_version, issued_at, target_time, step,
        threshold, probability``. ``alerts``: ``site, target, model_version, issued_at,
        threshold, alert_level, probability, step, target_time``.

        ``rows`` has columns ``site, target, model_version, issued_at, target_time, step, value``
        (times tz-aware, any zone; ``value`` float) and optionally ``issued_by`` (the model that
        issued the row; NULL when absent). All rows go in one transaction with ON
        CONFLICT DO NOTHING on the natural key ``(site, target, model_version, issued_at, step)``:
        rows already stored are skipped, and a failure stores nothing of this call.
        A non-finite ``value`` -> :class:`InputError` (nothing stored); naive times, missing
        columns, duplicate keys within ``rows`` or an unknown ``run_id`` -> ``ValueError``.
        """
        missing = [c for c in FORECAST_INPUT_COLUMNS if c not in rows.columns]
        if missing:
            raise ValueError(f"forecast rows lack column(s) {', '.join(missing)}")
        if len(rows) == 0:
            return Stored(0, _alert_frame([]))
        df = pd.DataFrame({
            "site": rows["site"].to_numpy(), "target": rows["target"].to_numpy(),
            "model_version": rows["model_version"].to_numpy(),
            "issued_at": _utc_index(rows["issued_at"], "issued_at"),
            "target_time": _utc_index(rows["target_time"], "target_time"),
            "step": rows["step"].to_numpy(), "value": rows["value"].to_numpy(),
            "issued_by": rows["issued_by"].to_numpy() if "issued_by" in rows.columns else None,
        })
        for col in ("site", "target", "model_version"):
            if df[col].isna().any() or not all(isinstance(v, str) and v for v in df[col]):
                raise ValueError(f"forecast rows: column {col} must hold non-empty strings")
        if df["issued_at"].isna().any() or df["target_time"].isna().any():
            raise ValueError("forecast rows: issued_at and target_time must not be missing")
        step = pd.to_numeric(df["step"], errors="coerce")
        if step.isna().any() or (step != np.round(step)).any():
            raise ValueError("forecast rows: step must hold integers")
        df["step"] = step.astype(np.int64)
        value = pd.to_numeric(df["value"], errors="coerce").astype(float)
        bad = ~np.isfinite(value.to_numpy())
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            r = df.iloc[i]
            raise InputError(f"forecast value is {rows['value'].iloc[i]!r} for site {r['site']}, target "
                             f"{r['target']}, model {r['model_version']}, issued {r['issued_at'].isoformat()}, "
                             f"step {r['step']} ({int(bad.sum())} non-finite value(s)); nothing was stored")
        df["value"] = value
        dup = df.duplicated(list(FORECAST_KEY))
        if dup.any():
            r = df[dup].iloc[0]
            raise ValueError(f"forecast rows: {int(dup.sum())} duplicate key(s), e.g. site {r['site']}, "
                             f"target {r['target']}, model {r['model_version']}, issued "
                             f"{r['issued_at'].isoformat()}, step {r['step']}")
        # A fixed key order keeps concurrent PostgreSQL writers of overlapping rows deadlock-free.
        df = df.sort_values(list(FORECAST_KEY), kind="stable")
        created_at = _now()
        records = [
            dict(site=s, target=tg, model_version=m, issued_at=i, target_time=tt, step=int(st), value=float(v),
                 created_at=created_at, run_id=run_id, issued_by=None if by is None or by != by else str(by))
            for s, tg, m, i, tt, st, v, by in zip(
                df["site"], df["target"], df["model_version"], pd.DatetimeIndex(df["issued_at"]).to_pydatetime(),
                pd.DatetimeIndex(df["target_time"]).to_pydatetime(), df["step"], df["value"], df["issued_by"])
        ]
        t = forecasts_table
        stmt = self._insert(t).on_conflict_do_nothing(index_elements=list(FORECAST_KEY)).returning(t.c.step)
        q_records = _quantile_records(quantiles, created_at, run_id) if quantiles is not None else []
        q_stmt = self._insert(quantiles_table).on_conflict_do_nothing(index_elements=list(QUANTILE_KEY))
        c_records = _crossing_records(crossings, created_at, run_id) if crossings is not None else []
        c_stmt = self._insert(crossings_table).on_conflict_do_nothing(index_elements=list(CROSSING_KEY))
        a_records = _alert_records(alerts, created_at, run_id) if alerts is not None else []
        a = alerts_table
        a_stmt = (self._insert(a).on_conflict_do_nothing(index_elements=list(ALERT_KEY))
                  .returning(*[a.c[c] for c in ALERT_KEY]))

        def insert(conn: sa.Connection) -> Stored:
            if run_id is not None:
                known = conn.execute(sa.select(runs_table.c.run_id).where(runs_table.c.run_id == run_id)).first()
                if known is None:
                    raise ValueError(f"unknown run_id {run_id!r}; create it with start_run()")
            n = len(conn.execute(stmt, records).all())
            if q_records:
                conn.execute(q_stmt, q_records)
            if c_records:
                conn.execute(c_stmt, c_records)
            new = []
            for rec in a_records:  # one by one: RETURNING says which were new
                if conn.execute(a_stmt, rec).first() is not None:
                    new.append(rec)
            return Stored(n, _alert_frame(new))

        return self._write(insert)

    def quantiles(self, site: str | None = None, target: str | None = None, start=None, end=None,
                  model_version: str | None = None) -> pd.DataFrame:
        """Stored forecast quantiles, filtered as :meth:`forecasts`: columns ``site, target,
        model_version, issued_at, step, level, value`` (times tz-aware UTC), sorted by key."""
        t = quantiles_table
        stmt = (sa.select(*[t.c[c] for c in QUANTILE_COLUMNS])
                .where(*self._filters(site, target, start, end, model_version, table=t))
                .order_by(*[t.c[c] for c in QUANTILE_KEY]))
        rows = self._select(stmt)
        cols = list(zip(*rows)) if rows else [[] for _ in QUANTILE_COLUMNS]
        data = dict(zip(QUANTILE_COLUMNS, cols))
        return pd.DataFrame({
            "site": pd.Series(data["site"], dtype=object), "target": pd.Series(data["target"], dtype=object),
            "model_version": pd.Series(data["model_version"], dtype=object),
            "issued_at": _times_from_db(list(data["issued_at"])), "step": pd.Series(data["step"], dtype=np.int64),
            "level": pd.Series(data["level"], dtype=float), "value": pd.Series(data["value"], dtype=float),
        })

    def crossings(self, site: str | None = None, target: str | None = None, start=None, end=None,
                  model_version: str | None = None) -> pd.DataFrame:
        """Stored crossing probabilities, filtered as :meth:`forecasts`: columns ``site, target,
        model_version, issued_at, target_time, step, threshold, probability``, sorted by key."""
        t = crossings_table
        stmt = (sa.select(*[t.c[c] for c in CROSSING_COLUMNS])
                .where(*self._filters(site, target, start, end, model_version, table=t))
                .order_by(*[t.c[c] for c in CROSSING_KEY]))
        rows = self._select(stmt)
        data = dict(zip(CROSSING_COLUMNS, list(zip(*rows)) if rows else [[] for _ in CROSSING_COLUMNS]))
        return pd.DataFrame({
            "site": pd.Series(data["site"], dtype=object), "target": pd.Series(data["target"], dtype=object),
            "model_version": pd.Series(data["model_version"], dtype=object),
            "issued_at": _times_from_db(list(data["issued_at"])),
            "target_time": _times_from_db(list(data["target_time"])),
            "step": pd.Series(data["step"], dtype=np.int64), "threshold": pd.Series(data["threshold"], dtype=object),
            "probability": pd.Series(data["probability"], dtype=float),
        })

    def alerts(self, site: str | None = None, target: str | None = None, start=None, end=None,
               model_version: str | None = None) -> pd.DataFrame:
        """Stored alerts, filtered as :meth:`forecasts` (on ``issued_at``), newest first: columns
        ``site, target, model_version, issued_at, threshold, alert_level, probability, step,
        target_time, created_at, run_id``."""
        t = alerts_table
        stmt = (sa.select(*[t.c[c] for c in ALERT_COLUMNS])
                .where(*self._filters(site, target, start, end, model_version, table=t))
                .order_by(t.c.issued_at.desc(), t.c.site, t.c.target, t.c.model_version, t.c.threshold))
        return _alert_frame([r._asdict() for r in self._select(stmt)])

    def forecasts(self, site: str | None = None, target: str | None = None, start=None, end=None,
                  model_version: str | None = None) -> pd.DataFrame:
        """Stored forecasts, optionally filtered (``start <= issued_at <= end``, tz-aware bounds).

        Columns ``site, target, model_version, issued_at, target_time, step, value, created_at,
        run_id, issued_by``; times tz-aware UTC; sorted by site, target, issued_at, model_version, step."""
        t = forecasts_table
        stmt = (sa.select(*[t.c[c] for c in FORECAST_COLUMNS])
                .where(*self._filters(site, target, start, end, model_version))
                .order_by(t.c.site, t.c.target, t.c.issued_at, t.c.model_version, t.c.step))
        rows = self._select(stmt)
        cols = list(zip(*rows)) if rows else [[] for _ in FORECAST_COLUMNS]
        data = dict(zip(FORECAST_COLUMNS, cols))
        return pd.DataFrame({
            "site": pd.Series(data["site"], dtype=object),
            "target": pd.Series(data["target"], dtype=object),
            "model_version": pd.Series(data["model_version"], dtype=object),
            "issued_at": _times_from_db(list(data["issued_at"])),
            "target_time": _times_from_db(list(data["target_time"])),
            "step": pd.Series(data["step"], dtype=np.int64),
            "value": pd.Series(data["value"], dtype=float),
            "created_at": _times_from_db(list(data["created_at"])),
            "run_id": pd.Series(data["run_id"], dtype=object),
            "issued_by": pd.Series(data["issued_by"], dtype=object),
        })

    def export(self, out: Path, fmt: str, **filters) -> int:
        """Write the forecasts selected by ``filters`` (as for :meth:`forecasts`) to ``out`` as
        ``'csv'`` (times ISO 8601 with ``+00:00``), ``'parquet'`` (tz-aware UTC timestamps) or
        ``'efi'`` (CSV in the EFI / NEON Forecasting Challenge standard, with the quantiles as
        ensemble members, :mod:`wq_pipeline.store.efi`); returns the row count. Written atomically (temporary file in the destination folder, then
        renamed; mode 0644); the folder is created if needed."""
        kind = str(fmt).lower()
        if kind not in EXPORT_FORMATS:
            raise InputError(f"export format {fmt!r}: expected one of {', '.join(EXPORT_FORMATS)}")
        out = Path(out)
        if out.is_dir():
            raise InputError(f"export to {out}: is a folder; give a file name")
        if kind == "efi":
            from wq_pipeline.store.efi import efi_frame

            df = efi_frame(self.forecasts(**filters), self.quantiles(**filters))
        else:
            df = self.forecasts(**filters)[list(EXPORT_COLUMNS)]
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"export to {out}: cannot create folder {out.parent} ({exc.strerror or exc})") from None
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; exports are meant to be shared
            if kind == "efi":
                df.to_csv(tmp, index=False)
            elif kind == "csv":
                text = df.copy()
                for col in ("issued_at", "target_time", "created_at"):
                    text[col] = _iso_strings(df[col])
                text.to_csv(tmp, index=False)
            else:
                df.to_parquet(tmp, index=False, engine="pyarrow")
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        return len(df)

    def runs(self) -> pd.DataFrame:
        """All runs, oldest first: ``run_id, kind, command, params`` (dict), ``started_at,
        finished_at`` (tz-aware UTC; NaT while running), ``status, n_forecasts, message``."""
        t = runs_table
        rows = self._select(sa.select(t).order_by(t.c.started_at, t.c.run_id))
        df = pd.DataFrame([r._asdict() for r in rows], columns=list(RUN_COLUMNS))
        df["params"] = [json.loads(p) for p in df["params"]]
        for col in ("started_at", "finished_at"):
            df[col] = _times_from_db([v if v is not None else pd.NaT for v in df[col]])
        df["n_forecasts"] = df["n_forecasts"].astype("Int64")
        return df

    def close(self) -> None:
        """Close all pooled connections."""
        self.engine.dispose()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Archive({mask_url(self.url)!r})"

    # ---------------------------------------------------------------- internals

    @staticmethod
    def _filters(site: str | None, target: str | None, start: Any, end: Any,
                 model_version: str | None, table: sa.Table | None = None) -> list[sa.ColumnElement[bool]]:
        t = forecasts_table if table is None else table
        clauses: list[sa.ColumnElement[bool]] = []
        if site is not None:
            clauses.append(t.c.site == site)
        if target is not None:
            clauses.append(t.c.target == target)
        if model_version is not None:
            clauses.append(t.c.model_version == model_version)
        lo, hi = _utc_timestamp(start, "start"), _utc_timestamp(end, "end")
        if lo is not None:
            clauses.append(t.c.issued_at >= lo.to_pydatetime())
        if hi is not None:
            clauses.append(t.c.issued_at <= hi.to_pydatetime())
        return clauses


def _quantile_records(q: pd.DataFrame, created_at: datetime, run_id: str | None) -> list[dict[str, Any]]:
    """Checked rows for ``forecast_quantiles`` (``ValueError`` for missing columns or values)."""
    missing = [c for c in QUANTILE_COLUMNS if c not in q.columns]
    if missing:
        raise ValueError(f"quantile rows lack column(s) {', '.join(missing)}")
    q = q[np.isfinite(pd.to_numeric(q["value"], errors="coerce").astype(float).to_numpy())]
    issued = pd.DatetimeIndex(_utc_index(q["issued_at"], "issued_at")).to_pydatetime()
    return [dict(site=str(s), target=str(tg), model_version=str(m), issued_at=i, step=int(st), level=float(lv),
                 value=float(v), created_at=created_at, run_id=run_id)
            for s, tg, m, i, st, lv, v in zip(q["site"], q["target"], q["model_version"], issued, q["step"],
                                              q["level"], q["value"])]


def _crossing_records(c: pd.DataFrame, created_at: datetime, run_id: str | None) -> list[dict[str, Any]]:
    """Checked rows for ``forecast_crossings`` (``ValueError`` for missing columns; NaN
    probabilities are left out)."""
    missing = [col for col in CROSSING_COLUMNS if col not in c.columns]
    if missing:
        raise ValueError(f"crossing rows lack column(s) {', '.join(missing)}")
    p = pd.to_numeric(c["probability"], errors="coerce").astype(float).to_numpy()
    c = c[np.isfinite(p)]
    if ((c["probability"] < 0) | (c["probability"] > 1)).any():
        raise ValueError("crossing probabilities must lie in [0, 1]")
    issued = pd.DatetimeIndex(_utc_index(c["issued_at"], "issued_at")).to_pydatetime()
    when = pd.DatetimeIndex(_utc_index(c["target_time"], "target_time")).to_pydatetime()
    return [dict(site=str(s), target=str(tg), model_version=str(m), issued_at=i, target_time=tt, step=int(st),
                 threshold=str(th), probability=float(pr), created_at=created_at, run_id=run_id)
            for s, tg, m, i, tt, st, th, pr in zip(c["site"], c["target"], c["model_version"], issued, when,
                                                   c["step"], c["threshold"], c["probability"])]


def _alert_records(a: pd.DataFrame, created_at: datetime, run_id: str | None) -> list[dict[str, Any]]:
    """Checked rows for ``alerts`` (``ValueError`` for missing columns)."""
    missing = [col for col in ALERT_INPUT_COLUMNS if col not in a.columns]
    if missing:
        raise ValueError(f"alert rows lack column(s) {', '.join(missing)}")
    issued = pd.DatetimeIndex(_utc_index(a["issued_at"], "issued_at")).to_pydatetime()
    when = pd.DatetimeIndex(_utc_index(a["target_time"], "target_time")).to_pydatetime()
    return [dict(site=str(s), target=str(tg), model_version=str(m), issued_at=i, threshold=str(th),
                 alert_level=float(lv), probability=float(pr), step=int(st), target_time=tt, created_at=created_at,
                 run_id=run_id)
            for s, tg, m, i, th, lv, pr, st, tt in zip(a["site"], a["target"], a["model_version"], issued,
                                                       a["threshold"], a["alert_level"], a["probability"], a["step"],
                                                       when)]


def _alert_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Alert records as a frame with :data:`ALERT_COLUMNS` (times tz-aware UTC)."""
    data = {c: [r.get(c) for r in records] for c in ALERT_COLUMNS}
    return pd.DataFrame({
        "site": pd.Series(data["site"], dtype=object), "target": pd.Series(data["target"], dtype=object),
        "model_version": pd.Series(data["model_version"], dtype=object),
        "issued_at": _times_from_db(data["issued_at"]), "threshold": pd.Series(data["threshold"], dtype=object),
        "alert_level": pd.Series(data["alert_level"], dtype=float),
        "probability": pd.Series(data["probability"], dtype=float),
        "step": pd.Series(data["step"], dtype=np.int64), "target_time": _times_from_db(data["target_time"]),
        "created_at": _times_from_db(data["created_at"]), "run_id": pd.Series(data["run_id"], dtype=object),
    })


def _stored_version(conn: sa.Connection) -> int:
    """Schema version recorded in ``schema_info``; 0 for a database without that table."""
    if not sa.inspect(conn).has_table("schema_info"):
        return 0
    version = conn.execute(sa.select(sa.func.max(schema_info_table.c.version))).scalar()
    return int(version or 0)


def _sqlite_on_connect(dbapi_conn: Any, record: Any) -> None:
    """Every new SQLite connection: take over BEGIN from the driver, then WAL and friends."""
    dbapi_conn.isolation_level = None  # the driver emits no BEGIN; _sqlite_on_begin does
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
    finally:
        cur.close()


def _sqlite_on_begin(conn: sa.Connection) -> None:
    """Write transactions take the write lock up front (``BEGIN IMMEDIATE``), so two writers queue
    on the busy timeout instead of failing with "database is locked" on lock upgrade."""
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("wq_write") else "BEGIN")
