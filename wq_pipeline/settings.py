"""Operational settings: where the forecast archive and the model registry live, the stations a
deployment serves, their schedules and the task runner. Validated at the edge.

Precedence, lowest first: built-in defaults, the config file (``--config FILE``, else ``wq.toml``
in the working folder when present), the environment (``WQ_DATABASE_URL``, ``WQ_MODELS_DIR``),
then command-line options. Relative paths in a config file are relative to that file's folder.

A config file (TOML)::

    [archive]
    database = "sqlite:///data/wq.db"     # or postgresql+psycopg://user:pass@host/db
    models = "models"

    [schedule]
    forecast_cron = "0 * * * *"           # every hour, on the hour
    retrain_cron = "30 2 * * 1"           # Mondays 02:30
    timezone = "America/New_York"
    retrain_global = false                # true: one global version per file and target

    [runner]
    task_runner = "thread"                # or "dask"
    dask_address = ""                     # empty: a local Dask cluster; else tcp://scheduler:8786

    [[stations]]
    data = "../shared/data/nerr_sapelo_deancreek_2012.csv"
    target = "DO_obs"
    freq = "1h"
    horizon = 6
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from wq_pipeline.config import EvaluateConfig
from wq_pipeline.errors import InputError

DEFAULT_DATABASE = "sqlite:///data/wq.db"
DEFAULT_MODELS = Path("models")
DEFAULT_CONFIG = Path("wq.toml")


class ArchiveSettings(BaseModel):
    """Forecast archive URL (SQLAlchemy) and model registry folder."""

    model_config = ConfigDict(extra="forbid")

    database: str = DEFAULT_DATABASE
    models: Path = DEFAULT_MODELS


class ScheduleSettings(BaseModel):
    """Cron schedules of the served deployments, in ``timezone`` (an IANA name)."""

    model_config = ConfigDict(extra="forbid")

    forecast_cron: str = "0 * * * *"
    retrain_cron: str = "30 2 * * 1"
    timezone: str = "UTC"
    #: the retrain trains one global version per group of stations that share a file, a target
    #: and model settings (networks trained once on the group's pooled samples), not one per station
    retrain_global: bool = False

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as 'America/New_York')") from None
        return v

    @field_validator("forecast_cron", "retrain_cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        fields = v.split()
        if len(fields) != 5 or not all(re.fullmatch(r"[0-9A-Za-z*/,\-]+", f) for f in fields):
            raise ValueError(f"not a five-field cron expression (minute hour day month weekday): {v!r}")
        return v


class RunnerSettings(BaseModel):
    """Prefect task runner for the per-station fan-out: threads (default) or Dask."""

    model_config = ConfigDict(extra="forbid")

    task_runner: Literal["thread", "dask"] = "thread"
    max_workers: int = Field(default=4, ge=1, le=1024)
    dask_address: str | None = None  # None / "": start a local cluster


class ServeSettings(BaseModel):
    """Everything ``wq serve`` and the scheduled flows need."""

    model_config = ConfigDict(extra="forbid")

    archive: ArchiveSettings = Field(default_factory=ArchiveSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    runner: RunnerSettings = Field(default_factory=RunnerSettings)
    stations: list[EvaluateConfig] = Field(default_factory=list)


def _resolve(base: Path, p: str | Path) -> Path:
    p = Path(p).expanduser()
    return p if p.is_absolute() else (base / p)


def _resolve_sqlite(base: Path, url: str) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
        return prefix + str(_resolve(base, url[len(prefix):]))
    return url


def read_config_file(path: Path | None) -> tuple[dict[str, Any], Path | None]:
    """Parse the config file (``path``, else ``wq.toml`` here if present) with relative paths
    resolved against its folder. Returns ``({}, None)`` when there is none."""
    explicit = path is not None or bool(os.environ.get("WQ_CONFIG"))
    path = Path(path or os.environ.get("WQ_CONFIG") or DEFAULT_CONFIG)
    if not path.is_file():
        if explicit:
            raise InputError(f"--config {path}: file not found")
        return {}, None
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from None
    base = path.resolve().parent
    archive = raw.get("archive")
    if isinstance(archive, dict):
        if isinstance(archive.get("database"), str):
            archive["database"] = _resolve_sqlite(base, archive["database"])
        if isinstance(archive.get("models"), str):
            archive["models"] = str(_resolve(base, archive["models"]))
    for station in raw.get("stations") or []:
        if isinstance(station, dict) and isinstance(station.get("data"), str):
            station["data"] = str(_resolve(base, station["data"]))
    return raw, path


def load_serve_settings(config: Path | None = None, database: str | None = None,
                        models: Path | None = None) -> ServeSettings:
    """Settings from defaults < config file < environment < the given options."""
    raw, path = read_config_file(config)
    try:
        settings = ServeSettings.model_validate(raw)
    except ValidationError as exc:
        where = path or "settings"
        raise InputError(f"{where}: " + "; ".join(
            f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())) from None
    env_db, env_models = os.environ.get("WQ_DATABASE_URL"), os.environ.get("WQ_MODELS_DIR")
    update: dict[str, Any] = {}
    if env_db:
        update["database"] = env_db
    if env_models:
        update["models"] = Path(env_models)
    if database:
        update["database"] = database
    if models:
        update["models"] = Path(models)
    if update:
        settings = settings.model_copy(update={"archive": settings.archive.model_copy(update=update)})
    return settings
