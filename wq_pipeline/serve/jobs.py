"""The operational jobs as the CLI and the Prefect flows run them: the library call plus its
records in the forecast archive (a ``runs`` row per job, the model version's manifest, the rows).

Every job checks its inputs before it opens the archive (``open_archive`` is a callable), so bad
input writes nothing, not even an empty database. A job that fails after its run was recorded
leaves that run marked ``failed`` with the error; a job killed outright leaves it ``running``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd

from wq_pipeline.store.archive import Archive
from wq_pipeline.serve.alerts import find_alerts
from wq_pipeline.evaluation.asof import as_timestamp, check_within
from wq_pipeline.serve.backfill import BackfillResult, run_backfill
from wq_pipeline.config import EvaluateConfig
from wq_pipeline.serve.forecasting import Issued, issue_forecast
from wq_pipeline.serve.global_versions import GlobalTraining, fit_global, prepare_global
from wq_pipeline.evaluation.pipeline import load_stage
from wq_pipeline.store.registry import ModelVersion, Registry
from wq_pipeline.serve.training import train_version

OpenArchive = Callable[[], Archive]


@dataclass
class RunRecord:
    """The archive run a job writes under; set ``rows`` (and a ``message`` saying what it did)
    before the job ends."""

    run_id: str
    rows: int = 0
    message: str | None = None


@contextmanager
def recorded_run(archive: Archive, kind: str, command: str, params: dict[str, Any]) -> Iterator[RunRecord]:
    """Record a job in ``runs``: ``running`` now, then ``ok`` with its row count, or ``failed``
    with the error (which is re-raised)."""
    record = RunRecord(archive.start_run(kind, command, params))
    try:
        yield record
    except BaseException as exc:
        archive.finish_run(record.run_id, "failed", record.rows, f"{type(exc).__name__}: {exc}")
        raise
    archive.finish_run(record.run_id, "ok", record.rows, record.message)


def train_job(cfg: EvaluateConfig, registry: Registry, open_archive: OpenArchive, *, as_of: str | None,
              command: str, workers: int = 1) -> tuple[ModelVersion, bool, str]:
    """Train (or find) the version on the data known at ``as_of`` and record it:
    ``(version, trained, run_id)``."""
    station = load_stage(cfg)
    when = None
    if as_of:
        when = as_timestamp(as_of, station.values.index.tz, "--as-of")
        check_within(station, when, "--as-of")
    archive = open_archive()  # inputs checked: a bad URL still fails before training
    params = {"as_of": str(as_of), "data": str(cfg.data), "target": cfg.target}
    with recorded_run(archive, "train", command, params) as run:
        version, trained = train_version(cfg, registry, as_of=when, station=station, workers=workers)
        archive.register_model_version(version.manifest)
        run.message = f"{'trained' if trained else 'already registered'} {version.version}"
    return version, trained, run.run_id


def train_global_job(cfgs: dict[str, EvaluateConfig], registry: Registry, open_archive: OpenArchive, *,
                     as_of: str | None, command: str) -> tuple[GlobalTraining, str]:
    """Train (or find) one global version for every station of ``cfgs`` ({label: config}) on the
    data known at ``as_of`` (:mod:`wq_pipeline.serve.global_versions`) and record it and every
    station's version: ``(training, run_id)``."""
    prepared = prepare_global(cfgs, as_of)
    archive = open_archive()  # inputs checked: a bad URL still fails before training
    first = next(iter(cfgs.values()))
    params = {"as_of": str(as_of), "data": str(first.data), "target": first.target, "sites": list(prepared.ready)}
    with recorded_run(archive, "train", command, params) as run:
        done = fit_global(prepared, registry)
        for version in (done.version, *done.stations.values()):
            archive.register_model_version(version.manifest)
        run.message = (f"{'trained' if done.trained else 'already registered'} global version "
                       f"{done.version.version} for {len(done.stations)} stations")
    return done, run.run_id


@dataclass
class ForecastDone:
    """What :func:`forecast_job` did: the forecast, how many rows were new, the archive run, and
    the alerts that were new (a frame as :meth:`~wq_pipeline.store.archive.Archive.alerts` returns)."""

    issued: Issued
    rows_written: int
    run_id: str
    alerts: pd.DataFrame
    notes: list[str]  # why thresholds got no crossing probabilities, when they did not
    crossings: pd.DataFrame  # the crossing probabilities stored with the forecast (Issued.crossing_frame)


def forecast_job(cfg: EvaluateConfig, registry: Registry, open_archive: OpenArchive, *,
                 as_of: str | pd.Timestamp | None, model_version: str | None, command: str) -> ForecastDone:
    """Issue the forecast as of ``as_of`` and store it (idempotent) with its quantiles, the
    crossing probabilities of the station's thresholds and the alerts they raise at its
    ``alert_level`` (:mod:`wq_pipeline.serve.alerts`). An alert already stored is not returned again."""
    issued = issue_forecast(cfg, registry, as_of, model_version)
    crossings = issued.crossing_frame()
    raised = find_alerts(crossings, cfg.alert_level)
    archive = open_archive()
    archive.register_model_version(registry.get(issued.version).manifest)
    params = {"as_of": str(as_of), "version": issued.version, "data": str(cfg.data), "target": cfg.target}
    with recorded_run(archive, "forecast", command, params) as run:
        stored = archive.store(issued.frame(), run.run_id, issued.quantile_frame(), crossings, raised)
        run.rows = stored.rows
        run.message = f"issued at {issued.issued_at[0].isoformat()} by {issued.version}" + (
            f"; {len(stored.alerts)} new alert(s)" if len(stored.alerts) else "")
    notes = []
    if issued.thresholds and crossings.empty:
        why = (f"model {issued.model} issues no quantiles" if issued.quantiles is None
               else f"{issued.issued_by[0]} stood in for {issued.model} and issues no quantiles")
        notes.append(f"no crossing probabilities for {', '.join(t.label for t in issued.thresholds)}: {why}")
    return ForecastDone(issued, stored.rows, run.run_id, stored.alerts, notes, crossings)


def backfill_job(cfg: EvaluateConfig, registry: Registry, open_archive: OpenArchive, *, start: str, end: str,
                 every: str = "1h", retrain_every: str | None = None, model_version: str | None = None,
                 chunk: int = 96, workers: int = 1, command: str = "",
                 on_start: Callable[[int], None] | None = None, progress: Callable[[int], None] | None = None,
                 log: Callable[[str], None] | None = None) -> tuple[BackfillResult, str]:
    """:func:`~wq_pipeline.serve.backfill.run_backfill` recorded as one run: ``(result, run_id)``.
    ``on_start(n_issue_times)`` is called once the inputs are checked."""
    record: RunRecord | None = None
    with ExitStack() as stack:  # the run record closes as ok, or as failed with the error

        def started(total: int, archive: Archive) -> str:
            nonlocal record
            record = stack.enter_context(recorded_run(
                archive, "backfill", command, {"start": str(start), "end": str(end), "every": every,
                                               "retrain_every": retrain_every, "data": str(cfg.data),
                                               "target": cfg.target}))
            if on_start:
                on_start(total)
            return record.run_id

        res = run_backfill(cfg, registry, open_archive, start=start, end=end, every=every,
                           retrain_every=retrain_every, model_version=model_version, chunk=chunk, workers=workers,
                           on_start=started, progress=progress, log=log)
        record.rows = res.rows_written
        record.message = (f"{res.written_origins} new forecasts, {res.already_stored} already stored, {res.skipped} "
                          f"issue times without a usable observation; versions {', '.join(res.versions)}")
    return res, record.run_id
