"""Backfill: the forecasts the product would have issued over a past period.

For every issue time from ``start`` to ``end`` at a cadence ``every``: the forecast as of that
time (:mod:`wq_pipeline.serve.forecasting`), optionally retraining every ``retrain_every`` on the data
known at that time. Work is batched: the issue times of one model version are decomposed and
predicted together, in chunks that are each written in one database transaction.

Resumable and crash-safe: a chunk is stored whole or not at all, a rerun skips origins already
stored, model versions are deterministic (same data and options -> same version id, registered
once), and the archive's natural key makes every write idempotent. Killing a backfill at any
moment and rerunning it yields exactly the forecasts of an uninterrupted run.

The quantiles and the crossing probabilities of the station's thresholds are stored with each
forecast. Alerts are not: they are raised by operational forecasts (:func:`wq_pipeline.serve.jobs.forecast_job`),
not by a hindcast, whose crossing probabilities are kept to judge the alerts it would have raised.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import pandas as pd

from wq_pipeline.store.archive import Archive
from wq_pipeline.evaluation.asof import as_timestamp, check_within, site_key
from wq_pipeline.config import EvaluateConfig
from wq_pipeline.errors import InputError
from wq_pipeline.serve.forecasting import (
    fallback_models,
    forecasts_from,
    select_version,
    served_and_fallback,
    station_for,
)
from wq_pipeline.evaluation.pipeline import load_stage, target_thresholds
from wq_pipeline.store.registry import ModelVersion, Registry
from wq_pipeline.serve.training import config_for, train_version


@dataclass
class BackfillResult:
    """What a backfill did: counts of issue times and forecasts (rows = issue times x H)."""

    issue_times: int = 0
    origins: int = 0
    already_stored: int = 0
    written_origins: int = 0
    rows_written: int = 0
    skipped: int = 0  # issue times without a usable origin (gaps, sensor outages)
    versions: list[str] = field(default_factory=list)
    trained: list[str] = field(default_factory=list)
    seconds: float = 0.0
    decompose_seconds: float = 0.0
    train_seconds: float = 0.0


def parse_duration(text: str, option: str) -> pd.Timedelta:
    """A positive pandas duration such as ``1h``, ``30min``, ``7d``."""
    try:
        delta = pd.Timedelta(text)
    except (ValueError, TypeError):
        raise InputError(f"{option} {text!r}: not a duration (e.g. 1h, 30min, 7d)") from None
    if delta <= pd.Timedelta(0):
        raise InputError(f"{option} {text!r}: must be positive")
    return delta


def issue_schedule(start: pd.Timestamp, end: pd.Timestamp, every: pd.Timedelta) -> pd.DatetimeIndex:
    """Issue times ``start, start+every, ... <= end``."""
    if end < start:
        raise InputError(f"--end {end.isoformat()} is before --start {start.isoformat()}")
    return pd.date_range(start, end, freq=every)


def run_backfill(cfg: EvaluateConfig, registry: Registry, archive: Archive | Callable[[], Archive], *, start: str | pd.Timestamp,
                 end: str | pd.Timestamp, every: str = "1h", retrain_every: str | None = None,
                 model_version: str | None = None, chunk: int = 96, workers: int = 1,
                 on_start: Callable[[int, Archive], str | None] | None = None, progress: Callable[[int], None] | None = None,
                 log: Callable[[str], None] | None = None) -> BackfillResult:
    """Backfill forecasts for ``start .. end`` (inclusive) and store them in ``archive``.

    Without ``retrain_every`` every issue time uses the newest registered version trained on
    data up to it (or ``model_version``); when none exists at ``start``, one is trained as of
    ``start``. With ``retrain_every``, versions are trained as of ``start``, ``start +
    retrain_every``, ... and each serves the issue times until the next. ``progress(n)`` is
    called with the number of issue times finished; ``on_start(n_issue_times, archive)``, called once the
    inputs are checked and before anything is trained or stored, returns the archive run id
    recorded with the forecasts. ``archive`` may be a callable that opens it: it is called only
    once the inputs are checked, so bad input writes nothing, not even an empty database.
    """
    say = log or (lambda _msg: None)
    t_all = time.perf_counter()
    station = load_stage(cfg)
    thresholds = tuple(target_thresholds(station, cfg))
    tz = station.values.index.tz
    t0, t1 = as_timestamp(start, tz, "--start"), as_timestamp(end, tz, "--end")
    step_every = parse_duration(every, "--every")
    retrain = parse_duration(retrain_every, "--retrain-every") if retrain_every else None
    schedule = issue_schedule(t0, t1, step_every)
    check_within(station, t0, "--start")
    check_within(station, t1, "--end")
    if model_version and retrain is not None:
        raise InputError("--model-version and --retrain-every exclude each other")
    site = site_key(station, cfg.site, cfg.data)
    if model_version:
        select_version(registry, site, cfg.target, t0, model_version, cfg.model)  # unknown or unusable: fail before work
    result = BackfillResult(issue_times=schedule.size)
    if callable(archive):
        archive = archive()
    run_id = on_start(schedule.size, archive) if on_start else None

    # which version serves which issue time
    assigned: dict[str, tuple[ModelVersion, list[int]]] = {}
    if retrain is not None:
        cuts = pd.date_range(t0, t1, freq=retrain)
        which = np.searchsorted(cuts.asi8, schedule.asi8, side="right") - 1
        versions = []
        for cut in cuts:
            t_train = time.perf_counter()
            say(f"model as of {cut.isoformat()}")
            version, trained = train_version(cfg, registry, as_of=cut, station=station, workers=workers)
            result.train_seconds += time.perf_counter() - t_train
            (result.trained if trained else result.versions).append(version.version)
            versions.append(version)
        for i, k in enumerate(which):
            assigned.setdefault(versions[k].version, (versions[k], []))[1].append(i)
    else:
        if not model_version and registry.newest(site, cfg.target, t0, cfg.model) is None:
            say(f"no model version trained on data up to {t0.isoformat()}: training one")
            t_train = time.perf_counter()
            version, _ = train_version(cfg, registry, as_of=t0, station=station, workers=workers)
            result.train_seconds += time.perf_counter() - t_train
            result.trained.append(version.version)
        for i, when in enumerate(schedule):
            version = select_version(registry, site, cfg.target, when, model_version, cfg.model)
            assigned.setdefault(version.version, (version, []))[1].append(i)
    result.versions = sorted(set(result.versions) | {v for v in assigned})

    for version, rows in assigned.values():
        st = station_for(cfg, version, station)
        mcfg = config_for(version, cfg)
        pos, served = served_and_fallback(st, mcfg, schedule[rows])  # a broken window: a fallback issues
        result.skipped += int((pos < 0).sum())
        origins = np.unique(pos[pos >= 0])
        times = st.values.index
        stored = archive.stored_issue_times(site, cfg.target, version.version) if origins.size else pd.DatetimeIndex([])
        done = times[origins].isin(stored)
        result.origins += origins.size
        result.already_stored += int(done.sum())
        if progress:
            progress(int(np.isin(pos, origins[done]).sum() + (pos < 0).sum()))
        todo = origins[~done]
        if todo.size == 0:
            continue
        loaded = registry.load(version.version)
        fallbacks = fallback_models(registry, version)
        archive.register_model_version(version.manifest)
        for a in range(0, todo.size, chunk):
            part = todo[a:a + chunk]
            issued, secs = forecasts_from(st, site, loaded, mcfg, part, fallbacks, served=np.isin(part, served))
            result.decompose_seconds += secs
            issued = replace(issued, thresholds=thresholds)
            result.rows_written += archive.write_forecasts(issued.frame(), run_id, issued.quantile_frame(),
                                                           issued.crossing_frame())  # one transaction
            result.written_origins += part.size
            if progress:
                progress(int(np.isin(pos, part).sum()))
    result.seconds = time.perf_counter() - t_all
    return result

