"""Prefect flows for operations: scheduled forecasts, retraining and backfills.

Thin: each station's work is one library call (:func:`wq_pipeline.serve.forecasting.issue_forecast`,
:func:`wq_pipeline.serve.training.train_version`, :func:`wq_pipeline.serve.backfill.run_backfill`) plus its
archive records, run as a Prefect task. ``forecast_flow`` and ``train_flow`` submit one task per
station, so stations fan out through the flow's task runner (threads by default; ``wq serve``
sets the configured runner, see :mod:`flows.deployments`).

The as-of time: an explicit ``as_of`` wins; otherwise it is the flow run's *scheduled* start time
(``prefect.runtime.flow_run.scheduled_start_time``), read when the run starts. A run scheduled
for 10:00 that starts late still forecasts as of 10:00, and nothing is frozen when the deployment
is built. Outside a scheduled run (a flow called directly) the scheduled start time is the time
the run was created.

Failures: tasks retry twice (5 s apart) on errors that may pass (a locked or unreachable
database, a file being rewritten), never on :class:`~wq_pipeline.errors.InputError` (bad input
stays bad). Every error is logged to the flow run. One station's failure does not stop the
others; the flow run fails at the end, naming the stations that failed. Nothing is half-written:
model versions are renamed into place whole, forecast rows of one call go in one transaction, a
failed run record is marked ``failed``.

Alerts: a forecast whose crossing probability reaches the station's ``alert_level`` raises an
alert (:mod:`wq_pipeline.serve.alerts`), stored in the archive with the forecast. Each *new* alert is
published by the forecast task: a warning in the log, a Prefect event ``wq.alert.crossing`` (an
automation can notify on it) and a markdown artifact per station. A retried or repeated run
finds its alerts already stored and publishes nothing twice.

``database`` and ``models`` default to the settings (``wq.toml`` in the working folder,
``WQ_CONFIG``, then ``WQ_DATABASE_URL`` / ``WQ_MODELS_DIR``), read when the run starts; so do the
stations when ``stations`` is None.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.events import emit_event
from prefect.futures import PrefectFuture, wait
from prefect.runtime import deployment as runtime_deployment
from prefect.runtime import flow_run as runtime_flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from wq_pipeline.serve.alerts import ALERT_EVENT, alert_markdown, alert_sentence
from wq_pipeline.store.archive import Archive
from wq_pipeline.config import EvaluateConfig
from wq_pipeline.errors import InputError
from wq_pipeline.serve.global_versions import global_groups
from wq_pipeline.serve.jobs import backfill_job, forecast_job, train_global_job, train_job
from wq_pipeline.store.registry import Registry
from wq_pipeline.settings import load_serve_settings

RETRIES = 2
RETRY_DELAY_S = 5
DEFAULT_THREADS = 4  # the flows' own task runner; deployments built by flows.deployments override it


class StationsFailed(RuntimeError):
    """Some stations' tasks failed (after retries); the others' results were stored."""


def retry_unless_input_error(task: Any, task_run: Any, state: Any) -> bool:
    """``retry_condition_fn``: retry any failure except bad input (:class:`InputError`)."""
    try:
        state.result()
    except InputError:
        return False
    except Exception:  # noqa: BLE001 - anything else may be transient
        return True
    return True


def _task(name: str):
    return task(name=name, cache_policy=NO_CACHE, persist_result=False, retries=RETRIES,
                retry_delay_seconds=RETRY_DELAY_S, retry_condition_fn=retry_unless_input_error)


# --------------------------------------------------------------------------- helpers (flow side)


def _stores(database: str | None, models: str | None) -> tuple[str, str]:
    """Archive URL and registry folder: the given ones, else the settings'."""
    if database and models:
        return database, str(models)
    settings = load_serve_settings(None, database, Path(models) if models else None)
    return settings.archive.database, str(settings.archive.models)


def _station_configs(stations: list[dict[str, Any]] | None) -> list[EvaluateConfig]:
    if stations is None:
        configs = load_serve_settings(None).stations
    else:
        configs = [EvaluateConfig.model_validate(s) for s in stations]
    if not configs:
        raise InputError("no stations given (and no [[stations]] in the config file)")
    return configs


def run_as_of(as_of: str | None) -> str:
    """``as_of`` when given, else the flow run's scheduled start time (ISO 8601 with offset)."""
    if as_of:
        return str(as_of)
    return pd.Timestamp(runtime_flow_run.scheduled_start_time).isoformat()


def _command(kind: str) -> str:
    """What the archive's run record names as the command: the flow run and its deployment."""
    where = runtime_deployment.name or runtime_flow_run.flow_name
    return f"prefect flow run {runtime_flow_run.name} ({where}): {kind}"


def _runner_name() -> str:
    """The task runner this flow run fans out with (logged, so an operator sees what ran)."""
    ctx = FlowRunContext.get()
    return type(ctx.task_runner).__name__ if ctx and ctx.task_runner else "no task runner"


def _label(cfg: EvaluateConfig) -> str:
    return f"{cfg.site or Path(cfg.data).stem}-{cfg.target}"


def _collect(futures: list[PrefectFuture], labels: list[str], what: str) -> list[Any]:
    """Results of all stations; raises :class:`StationsFailed` after all finished if any failed."""
    logger = get_run_logger()
    wait(futures)
    results, failed = [], []
    for fut, label in zip(futures, labels):
        if fut.state.is_completed():
            results.append(fut.result())
        else:
            exc = fut.result(raise_on_failure=False)
            failed.append(f"{label}: {type(exc).__name__}: {exc}")
    for line in failed:
        logger.error("%s failed for %s", what, line)
    if failed:
        raise StationsFailed(f"{what} failed for {len(failed)} of {len(labels)} station(s) or group(s): "
                             + "; ".join(failed))
    return results


# --------------------------------------------------------------------------- tasks


@_task("forecast-station")
def forecast_station(station: dict[str, Any], as_of: str, database: str, models: str,
                     command: str = "prefect") -> dict[str, Any]:
    """Issue one station's forecast as of ``as_of`` and store it (idempotent)."""
    logger = get_run_logger()
    cfg = EvaluateConfig.model_validate(station)
    try:
        done = forecast_job(cfg, Registry(Path(models)), lambda: Archive(database), as_of=as_of, model_version=None,
                            command=command)
    except Exception as exc:
        logger.error("forecast of %s as of %s failed: %s: %s", _label(cfg), as_of, type(exc).__name__, exc)
        raise
    issued = done.issued
    issued_at = issued.issued_at[0].isoformat()
    logger.info("%s at %s as of %s: issued at %s by %s, %d new rows", cfg.target, issued.site, as_of, issued_at,
                issued.version, done.rows_written)
    for note in done.notes:
        logger.warning("%s: %s", _label(cfg), note)
    publish_alerts(done.alerts, as_of)
    return {"site": issued.site, "target": issued.target, "version": issued.version, "as_of": as_of,
            "issued_at": issued_at, "rows_written": done.rows_written, "run_id": done.run_id,
            "alerts": [alert_sentence(r) for r in done.alerts.itertuples(index=False)]}


def publish_alerts(alerts: pd.DataFrame, as_of: str) -> None:
    """Tell operators about new alerts three ways: a warning in the run's log per alert, one
    markdown artifact (key ``wq-alerts-<site>-<target>``, so the UI keeps its history), and one
    Prefect event per alert (``wq.alert.crossing`` on resource ``wq.station.<site>.<target>``,
    payload: threshold, probability, alert level, step, times, version) for automations."""
    if alerts.empty:
        return
    logger = get_run_logger()
    for r in alerts.itertuples(index=False):
        logger.warning("ALERT: %s", alert_sentence(r))
        emit_event(
            event=ALERT_EVENT,
            resource={"prefect.resource.id": f"wq.station.{r.site}.{r.target}",
                      "prefect.resource.name": f"{r.site} {r.target}"},
            related=[{"prefect.resource.id": f"wq.model-version.{r.model_version}",
                      "prefect.resource.role": "model-version"}],
            payload={"site": r.site, "target": r.target, "threshold": r.threshold,
                     "probability": float(r.probability), "alert_level": float(r.alert_level), "step": int(r.step),
                     "target_time": pd.Timestamp(r.target_time).isoformat(),
                     "issued_at": pd.Timestamp(r.issued_at).isoformat(), "model_version": r.model_version})
    for (site, target), group in alerts.groupby(["site", "target"], sort=True):
        key = re.sub(r"[^a-z0-9-]+", "-", f"wq-alerts-{site}-{target}".lower()).strip("-")
        create_markdown_artifact(markdown=alert_markdown(group, as_of), key=key,
                                 description=f"crossing alerts of {target} at {site}")


@_task("train-station")
def train_station(station: dict[str, Any], as_of: str, database: str, models: str,
                  command: str = "prefect") -> dict[str, Any]:
    """Train (or find, when already trained) the model version on the data known at ``as_of``
    and record it in the archive. One training process: the fan-out is across stations."""
    logger = get_run_logger()
    cfg = EvaluateConfig.model_validate(station)
    try:
        version, trained, run_id = train_job(cfg, Registry(Path(models)), lambda: Archive(database), as_of=as_of,
                                             command=command, workers=1)
    except Exception as exc:
        logger.error("training %s as of %s failed: %s: %s", _label(cfg), as_of, type(exc).__name__, exc)
        raise
    m = version.manifest
    logger.info("%s model version %s (trained on %s .. %s)", "registered" if trained else "already registered",
                version.version, m["training_period"]["start"], m["training_period"]["end"])
    return {"site": version.site, "target": version.target, "version": version.version, "as_of": as_of,
            "trained": trained, "trained_until": m["training_period"]["end"], "validation": m.get("validation"),
            "run_id": run_id}


@_task("train-global")
def train_global_stations(stations: list[dict[str, Any]], as_of: str, database: str, models: str,
                          command: str = "prefect") -> list[dict[str, Any]]:
    """Train (or find) one global version for ``stations`` (one file, target and model settings)
    on the data known at ``as_of``: their networks once, on every station's samples, in one task."""
    logger = get_run_logger()
    cfgs = {_label(c): c for c in (EvaluateConfig.model_validate(s) for s in stations)}
    try:
        done, run_id = train_global_job(cfgs, Registry(Path(models)), lambda: Archive(database), as_of=as_of,
                                        command=command)
    except Exception as exc:
        logger.error("global training of %s as of %s failed: %s: %s", ", ".join(cfgs), as_of,
                     type(exc).__name__, exc)
        raise
    logger.info("%s global version %s for %d stations", "registered" if done.trained else "already registered",
                done.version.version, len(done.stations))
    for label, why in done.skipped.items():
        logger.warning("global training as of %s left out %s: %s", as_of, label, why)
    return [{"site": v.site, "target": v.target, "version": v.version, "as_of": as_of, "trained": done.trained,
             "trained_until": v.manifest["training_period"]["end"], "validation": v.manifest.get("validation"),
             "global_version": done.version.version, "run_id": run_id} for v in done.stations.values()]


@_task("backfill-station")
def backfill_station(station: dict[str, Any], start: str, end: str, every: str, retrain_every: str | None,
                     model_version: str | None, database: str, models: str, command: str = "prefect") -> dict[str, Any]:
    """Backfill one station (resumable: a retry continues where the failed attempt stopped). The
    archive is opened only once the library has checked the inputs."""
    logger = get_run_logger()
    cfg = EvaluateConfig.model_validate(station)
    try:
        res, run_id = backfill_job(
            cfg, Registry(Path(models)), lambda: Archive(database), start=start, end=end, every=every,
            retrain_every=retrain_every, model_version=model_version, workers=1, command=command,
            on_start=lambda n: logger.info("backfill %s .. %s every %s: %d issue times", start, end, every, n),
            log=logger.info)
    except BaseException as exc:
        logger.error("backfill of %s failed: %s: %s", _label(cfg), type(exc).__name__, exc)
        raise
    logger.info("backfill: %d forecasts (%d already stored, %d new), %d rows written, %d issue times without a "
                "usable observation; versions %s", res.origins, res.already_stored, res.written_origins,
                res.rows_written, res.skipped, ", ".join(res.versions))
    return {**dataclasses.asdict(res), "run_id": run_id}


def _fan_out(kind: str, station_task: Any, stations: list[dict[str, Any]] | None, as_of: str | None,
             database: str | None, models: str | None) -> list[dict[str, Any]]:
    """Submit ``station_task`` once per station through the flow's task runner and collect."""
    configs = _station_configs(stations)
    when = run_as_of(as_of)
    db, reg = _stores(database, models)
    get_run_logger().info("%s as of %s for %d station(s) on %s", kind, when, len(configs), _runner_name())
    command = _command(kind)
    futures = [station_task.with_options(task_run_name=f"{kind}-{_label(c)}")
               .submit(c.model_dump(mode="json"), when, db, reg, command) for c in configs]
    return _collect(futures, [_label(c) for c in configs], kind)


# --------------------------------------------------------------------------- flows


@flow(name="wq-forecast", task_runner=ThreadPoolTaskRunner(max_workers=DEFAULT_THREADS))
def forecast_flow(stations: list[dict[str, Any]] | None = None, as_of: str | None = None,
                  database: str | None = None, models: str | None = None) -> list[dict[str, Any]]:
    """Issue and store every station's forecast as of ``as_of`` (default: this run's scheduled
    start time). Returns one summary per station: site, target, version, issued_at, rows_written."""
    return _fan_out("forecast", forecast_station, stations, as_of, database, models)


@flow(name="wq-train", task_runner=ThreadPoolTaskRunner(max_workers=DEFAULT_THREADS))
def train_flow(stations: list[dict[str, Any]] | None = None, as_of: str | None = None,
               database: str | None = None, models: str | None = None,
               global_networks: bool = False) -> list[dict[str, Any]]:
    """Train every station's model version on the data known at ``as_of`` (default: this run's
    scheduled start time) and record it. Idempotent: an existing version is found, not retrained.
    ``global_networks``: one global version per group of stations sharing a file, a target and
    model settings, each group one task (its networks trained once); a station alone in its
    group is trained as usual."""
    if not global_networks:
        return _fan_out("train", train_station, stations, as_of, database, models)
    configs = _station_configs(stations)
    when = run_as_of(as_of)
    db, reg = _stores(database, models)
    groups = global_groups(configs)
    get_run_logger().info("train as of %s: %d global version(s) and %d single station(s) on %s", when,
                          sum(len(g) > 1 for g in groups), sum(len(g) == 1 for g in groups), _runner_name())
    command = _command("train")
    futures, labels = [], []
    for group in groups:
        if len(group) > 1:
            fut = train_global_stations.with_options(task_run_name=f"train-global-{group[0].target}").submit(
                [c.model_dump(mode="json") for c in group], when, db, reg, command)
        else:
            fut = train_station.with_options(task_run_name=f"train-{_label(group[0])}").submit(
                group[0].model_dump(mode="json"), when, db, reg, command)
        futures.append(fut)
        labels.append(" + ".join(_label(c) for c in group))
    results = _collect(futures, labels, "train")
    return [row for r in results for row in (r if isinstance(r, list) else [r])]


@flow(name="wq-backfill")
def backfill_flow(station: dict[str, Any], start: str, end: str, every: str = "1h", retrain_every: str | None = None,
                  model_version: str | None = None, database: str | None = None,
                  models: str | None = None) -> dict[str, Any]:
    """Store the forecasts one station would have issued from ``start`` to ``end`` every
    ``every`` (optionally retraining every ``retrain_every``). Returns the backfill's counts."""
    cfg = EvaluateConfig.model_validate(station)
    db, reg = _stores(database, models)
    return backfill_station.with_options(task_run_name=f"backfill-{_label(cfg)}")(
        cfg.model_dump(mode="json"), start, end, every, retrain_every, model_version, db, reg,
        _command("backfill"))
