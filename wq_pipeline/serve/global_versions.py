"""Global model versions (``wq train --all-sites``): one training of every network kind on the
pooled samples of every station, registered once, serving every station.

Each station is cut at the data known at ``as_of`` and fitted by the evaluation's fold code on
its own thread (:func:`~wq_pipeline.evaluation.pipeline.fit_folds`), exactly as ``wq train`` fits one
station, except that its networks are handed to a
:class:`~wq_pipeline.evaluation.global_networks.GlobalTrainer` and trained once with every other station's
(:mod:`wq_pipeline.evaluation.global_networks`). Its QC, decomposition, statistical members, hybrid weights,
ensemble weights and record stay its own.

The registry then holds one *global* version (the pooled networks, ``kind`` "global") and one
version per station beside it whose networks are the global version's, reached through the
station's :class:`~wq_pipeline.models.scaling.SeriesScaler` (:meth:`Registry.save_forecaster` with
``shared``). ``wq forecast``, ``wq backfill`` and ``wq serve`` find a station's version as any
other. Ids are deterministic: retraining on the same data finds every version and trains nothing.

Honesty across stations: the pooled networks learnt from every station's data, up to the latest
station's last observation. So every station's version is trained *until* then (its id and
``training_period.end``; its own data's end is ``training.station_data_end``), and no forecast
issued before that time (a backfill, a station whose file ends earlier) can use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from wq_pipeline.evaluation.asof import as_timestamp, check_within, data_hash, known_series, site_key
from wq_pipeline.common import content_sha256
from wq_pipeline.config import EvaluateConfig
from wq_pipeline.errors import InputError
from wq_pipeline.evaluation.global_networks import in_threads, pooled_trainer
from wq_pipeline.models.kinds import kind
from wq_pipeline.evaluation.pipeline import StageRunner, fit_folds, load_stage
from wq_pipeline.data.qc import StationSeries
from wq_pipeline.store.registry import ModelVersion, Registry, version_id
from wq_pipeline.serve.training import (
    _save,
    build_manifest,
    check_origins,
    fit_split,
    fold_forecaster,
    model_settings,
    training_plan,
    validation_scores,
    version_content,
)

PROCEDURE = "wq train --all-sites"
#: the site name of a global version (its stations are listed in its manifest)
GLOBAL_SITE = "global"


@dataclass
class _Station:
    """One station cut at the training time, with its version id."""

    cfg: EvaluateConfig
    station: StationSeries
    values: np.ndarray
    observed: np.ndarray
    times: pd.DatetimeIndex
    train: np.ndarray
    val: np.ndarray
    site: str
    digest: str


@dataclass
class GlobalTraining:
    """What :func:`train_global` did: the global version, each station's version (by label),
    whether anything was trained, the stations left out with the reason, the training's wall
    seconds and each station's fitted fold."""

    version: ModelVersion
    stations: dict[str, ModelVersion]
    trained: bool
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    folds: dict[str, Any] = field(default_factory=dict)  # label -> FoldResult, when trained


def _settings(cfg: EvaluateConfig) -> dict[str, Any]:
    """The model settings every station of a global version shares (its own site left out)."""
    return {k: v for k, v in model_settings(cfg).items() if k != "site"}


def global_groups(configs: list[EvaluateConfig]) -> list[list[EvaluateConfig]]:
    """``configs`` grouped by file, target and model settings (in first-seen order): the stations
    one global version can serve together."""
    groups: dict[str, list[EvaluateConfig]] = {}
    for cfg in configs:
        key = content_sha256({"data": str(cfg.data), "target": cfg.target, "settings": _settings(cfg)})
        groups.setdefault(key, []).append(cfg)
    return list(groups.values())


def _prepare(cfg: EvaluateConfig, as_of: str | None) -> _Station:
    station = load_stage(cfg)
    when = None
    if as_of:
        when = as_timestamp(as_of, station.values.index.tz, "--as-of")
        check_within(station, when, "--as-of")
    values, observed, times = known_series(station, when)
    train, val = fit_split(values, observed, cfg)
    check_origins(cfg, times, train, val)
    return _Station(cfg, station, values, observed, times, train, val, site_key(station, cfg.site, cfg.data),
                    data_hash(values, observed, times))


def _ids(ready: dict[str, _Station]) -> tuple[str, dict[str, str]]:
    """The global version's id and each station's, from the stations' data and settings."""
    first = next(iter(ready.values())).cfg
    content = {"config": _settings(first), "procedure": PROCEDURE, "model": first.model,
               "stations": {s.site: s.digest for s in ready.values()}}
    end = max(s.times[-1].tz_convert("UTC") if s.times.tz is not None else s.times[-1].tz_localize("UTC")
              for s in ready.values())
    gid = version_id(GLOBAL_SITE, first.target, end, content)
    # every station's version knows what the pooled networks learnt: data up to the latest
    # station's end, so it serves (Registry.newest) only from then, like the global version
    return gid, {label: version_id(s.site, s.cfg.target, end,
                                   version_content(s.cfg, s.digest, PROCEDURE, global_version=gid))
                 for label, s in ready.items()}


def _existing(registry: Registry, gid: str, heads: dict[str, str]) -> tuple[ModelVersion, dict[str, ModelVersion]] | None:
    try:
        return registry.get(gid), {label: registry.get(v) for label, v in heads.items()}
    except InputError:
        return None


@dataclass
class Prepared:
    """The stations of a global training, cut and checked (:func:`prepare_global`)."""

    ready: dict[str, _Station]
    skipped: dict[str, str]


def prepare_global(cfgs: dict[str, EvaluateConfig], as_of: str | None = None) -> Prepared:
    """Load and cut every station of ``cfgs`` ({label: config}, the same model settings, one site
    each) at ``as_of`` (ISO 8601; None: all data; without an offset, in each station's zone). A
    station without enough data is left out (``skipped``); fewer than two left, settings that
    differ, or a model without networks is :class:`InputError`."""
    labels = list(cfgs)
    first = cfgs[labels[0]]
    if not kind(first.model).trains_networks:
        raise InputError(f"--all-sites trains networks once across stations; {first.model} has none "
                         f"(train it per station, without --all-sites)")
    differ = [label for label in labels if _settings(cfgs[label]) != _settings(first)]
    if differ:
        raise InputError(f"a global version needs the same model settings at every station; "
                         f"{', '.join(differ)} differ from {labels[0]}")
    ready: dict[str, _Station] = {}
    skipped: dict[str, str] = {}
    for label in labels:
        try:
            ready[label] = _prepare(cfgs[label], as_of)
        except InputError as exc:
            skipped[label] = str(exc)
    if len(ready) < 2:
        why = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        raise InputError(f"a global version needs two or more stations with enough data, {len(ready)} have it"
                         + (f" ({why})" if why else ""))
    return Prepared(ready, skipped)


def train_global(cfgs: dict[str, EvaluateConfig], registry: Registry, *, as_of: str | None = None,
                 progress: Callable[[str], None] | None = None) -> GlobalTraining:
    """Train one global version of the stations' model on every station of ``cfgs`` known at
    ``as_of`` (:func:`prepare_global`) and register it with one version per station."""
    return fit_global(prepare_global(cfgs, as_of), registry, progress)


def fit_global(prepared: Prepared, registry: Registry,
               progress: Callable[[str], None] | None = None) -> GlobalTraining:
    """Train and register the global version of ``prepared`` stations, or find it registered
    (nothing trained). A station that fails to fit with bad input joins ``skipped``."""
    ready, skipped = dict(prepared.ready), dict(prepared.skipped)
    first = next(iter(ready.values())).cfg
    gid, heads = _ids(ready)
    found = _existing(registry, gid, heads)
    if found is not None:
        return GlobalTraining(found[0], found[1], False, skipped)

    t0 = time.perf_counter()
    order = list(ready)
    trainer = pooled_trainer(first, len(order), order)
    if progress:
        progress(f"fitting {len(order)} stations, their networks once on the pooled samples")

    def fit(index: int, label: str) -> Any:
        s = ready[label]
        plan = training_plan(s.station, s.values, s.observed, s.times, s.cfg, s.train, s.val)
        runner = StageRunner()
        folds, _, _, _ = fit_folds([plan], s.cfg, runner, runner.run, {}, stationarity=False, trainer=trainer,
                                   series_index=index)
        return folds[0]

    folds, errors = in_threads(trainer, order, fit)
    for label, exc in errors.items():
        if not isinstance(exc, InputError):
            raise exc
        skipped[label] = str(exc)
        del ready[label]
    if len(ready) < 2 or not trainer.pooled:
        raise InputError(f"a global version needs two or more stations that fit; {len(ready)} did: "
                         + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    if errors:  # the pooled networks learnt from the stations that fitted: ids name those
        gid, heads = _ids(ready)
    seconds = round(time.perf_counter() - t0, 3)

    starts = [s.times[0] for s in ready.values()]
    ends = [s.times[-1] for s in ready.values()]
    pooled = trainer.pooled[0]
    g_manifest = {
        "version": gid, "site": GLOBAL_SITE, "target": first.target, "method": first.method,
        "components": [t.name for t in pooled], "config": _settings(first), "procedure": PROCEDURE,
        "model": first.model, "data_file": str(first.data),
        "training_period": {"start": min(starts).isoformat(), "end": max(ends).isoformat()},
        "data_sha256": content_sha256({s.site: s.digest for s in ready.values()}),
        "validation": {}, "training": {**trainer.info, "seconds": seconds},
    }
    version = registry.save_global(g_manifest, [(t.name, t.model, t.scaler) for t in pooled],
                                   [s.site for s in ready.values()])
    stations = {}
    for label, s in ready.items():
        fold, cfg = folds[label], s.cfg
        forecaster = fold_forecaster(fold, cfg, cfg.model)
        manifest = build_manifest(
            version=heads[label], site=s.site, cfg=cfg, station=s.station, components=[], decomposer_params={},
            times=s.times, digest=s.digest, procedure=PROCEDURE,
            validation=validation_scores(s.values, s.observed, s.val, fold.forecasts[cfg.model][: s.val.size],
                                         cfg.horizon),
            training={"n_train": int(s.train.size), "n_val": int(s.val.size), "seconds": seconds,
                      "global_version": gid, "station_data_end": s.times[-1].isoformat(),
                      "ensemble": {k: fold.ensemble[k] for k in ("rule", "half_life_steps", "members", "duplicates")}},
        )
        manifest["training_period"]["end"] = g_manifest["training_period"]["end"]  # what the networks knew
        stations[label] = _save(registry, manifest, forecaster, cfg, fold.plan.covariates, fold.decomposer_fitted,
                                shared=version)
    return GlobalTraining(version, stations, True, skipped, seconds, {label: folds[label] for label in ready})
