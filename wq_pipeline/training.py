"""Train a model version for production: the decomposition model's component networks (or, with
``--model``, a statistical model through the forecaster contract), fitted on the data known at
``as_of``, saved to the registry with a manifest.

The networks are exactly those ``wq evaluate`` trains for its per-component model (``decomp_feca_lstm``):
the same stepwise decomposition, samples, scaling and training; only the split differs. Here all
origins up to the cut-off are used, the last ``val_fraction`` of the period for early stopping.
``wq evaluate --register`` saves the networks an evaluation trained instead, so an evaluated model
can be put into service unchanged.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import pandas as pd

from .asof import data_hash, known_series, site_key
from .config import READ_FIELDS, STATISTICAL_MODELS, EvaluateConfig
from .covariates import Covariates, build_covariates, with_covariates
from .decompose import make_decomposer
from .errors import InputError
from .metrics import score
from .pipeline import (
    EvaluationResult,
    StageRunner,
    fit_on_origins,
    load_stage,
    observed_component_targets,
    positions_to_decompose,
    recombine,
    train_stage,
    training_workers,
)
from .protocol import eligible_origins, raw_windows, select_rows, stepwise_decompose, target_matrix
from .models.forecaster import SeriesView
from .network_jobs import TrainedForecast, TrainJob
from .qc import StationSeries
from .registry import DEFAULT_MODEL, ModelVersion, Registry, version_id

# Options of the evaluation only: they do not shape the networks a version holds.
#: how the file is read (READ_FIELDS) describes the file, not the model: a live file may come in another form
#: the served model is recorded on its own (manifest "model"; version content only when not the default, so
#: the ids of versions trained before --model stay the same)
MODEL_FIELDS_EXCLUDED = {"data", "out", "command", "jobs", "protocol", "seasonal_period", "folds", "test_start",
                         "ensemble_rule", "ensemble_half_life", "model", *READ_FIELDS}


def version_content(cfg: EvaluateConfig, digest: str, procedure: str, **extra: Any) -> dict[str, Any]:
    """What a version id hashes: the model settings, the data, the procedure (and the model when
    it is not the default per-component networks)."""
    content = {"config": model_settings(cfg), "data_sha256": digest, "procedure": procedure, **extra}
    if cfg.model != DEFAULT_MODEL:
        content["model"] = cfg.model
        if cfg.seasonal_period:
            content["seasonal_period"] = cfg.seasonal_period
    return content


def model_settings(cfg: EvaluateConfig) -> dict[str, Any]:
    """The options that shape a model (data file, output folder and process count excluded)."""
    return cfg.model_dump(mode="json", exclude=MODEL_FIELDS_EXCLUDED)


def config_for(version: ModelVersion, cfg: EvaluateConfig) -> EvaluateConfig:
    """``cfg`` (data file, site) with the model options a version was trained with."""
    return EvaluateConfig.model_validate({**cfg.model_dump(), **version.manifest["config"],
                                          "data": cfg.data, "site": cfg.site or version.manifest["config"].get("site")})


def fit_split(values: np.ndarray, observed: np.ndarray, cfg: EvaluateConfig) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation origins of a series cut at the data known at training time: the
    last ``val_fraction`` of the period validates (early stopping), the rest trains. All targets
    lie inside the series."""
    H = cfg.horizon
    ok = eligible_origins(values, observed, max(cfg.window, cfg.decomp_window), H)
    val_start = int(round(values.size * (1.0 - cfg.val_fraction)))
    idx = np.flatnonzero(ok)
    return idx[idx + H < val_start], idx[idx >= val_start]


def _train_all(jobs: list[TrainJob], cfg: EvaluateConfig, workers: int) -> list[TrainedForecast]:
    return StageRunner().map("train", train_stage, [(job, cfg, workers) for job in jobs], [job.name for job in jobs],
                             workers=workers)


def validation_scores(values: np.ndarray, observed: np.ndarray, origins: np.ndarray, forecast: np.ndarray,
                      horizon: int) -> dict[str, Any]:
    """RMSE, MAE, NSE, KGE at step H on validation origins, with persistence and skill."""
    obs = target_matrix(np.where(observed, values, np.nan), origins, horizon)
    model = score(obs, forecast)
    persist = score(obs, np.repeat(values[origins][:, None], horizon, axis=1))
    keep = ("rmse", "mae", "nse", "kge", "n_points")
    out = {k: model[k] for k in keep}
    out["persistence_rmse"] = persist["rmse"]
    out["skill"] = (1.0 - model["rmse"] / persist["rmse"]) if persist["rmse"] and np.isfinite(persist["rmse"]) else None
    return out


def build_manifest(*, version: str, site: str, cfg: EvaluateConfig, station: StationSeries, components: list[str],
                   decomposer_params: dict, times: pd.DatetimeIndex, digest: str, procedure: str,
                   validation: dict[str, Any], training: dict[str, Any]) -> dict[str, Any]:
    """The manifest fields a caller supplies (the registry adds created_at, files and versions)."""
    return {
        "version": version, "site": site, "target": cfg.target, "unit": station.unit, "freq": station.freq,
        "method": cfg.method, "components": components, "decomposer_params": decomposer_params,
        "config": model_settings(cfg), "procedure": procedure, "data_file": str(cfg.data),
        "training_period": {"start": times[0].isoformat(), "end": times[-1].isoformat()},
        "data_sha256": digest, "validation": validation, "training": training,
        "timestamps": station.summary.get("timestamps", ""),
    }


def train_version(cfg: EvaluateConfig, registry: Registry, *, as_of: pd.Timestamp | None = None,
                  station: StationSeries | None = None, workers: int = 1,
                  progress: Callable[[str], None] | None = None) -> tuple[ModelVersion, bool]:
    """Train the component networks on the data known at ``as_of`` (all data when None) and
    register them. Returns ``(version, trained)``; ``trained`` is False when the same version
    (same data, options and cut-off) was already registered, which makes retraining idempotent.
    """
    station = station if station is not None else load_stage(cfg)
    values, observed, times = known_series(station, as_of)
    site = site_key(station, cfg.site, cfg.data)
    digest = data_hash(values, observed, times)
    version = version_id(site, cfg.target, times[-1], version_content(cfg, digest, "wq train"))
    try:
        return registry.get(version), False
    except InputError:
        pass
    train, val = fit_split(values, observed, cfg)
    if cfg.model in STATISTICAL_MODELS:
        return _train_statistical(cfg, registry, station, (values, observed, times), (train, val), version, digest,
                                  site, progress), True
    for name, part, minimum in (("training", train, 50), ("validation", val, 10)):
        if part.size < minimum:
            raise InputError(
                f"{cfg.data}: '{cfg.target}' up to {times[-1].isoformat()} yields {part.size} {name} origins with "
                f"window {cfg.window}, decomposition window {cfg.decomp_window} and horizon {cfg.horizon} "
                f"(at least {minimum} needed); train on more data (a later --as-of) or shorten the windows")
    if cfg.model == "lstm":
        return _train_plain_lstm(cfg, registry, station, (values, observed, times), (train, val), version, digest,
                                 site, workers, progress), True
    decomposer = make_decomposer(cfg.method, cfg.modes, cfg.seed, **cfg.decomposer_params())
    t0 = time.perf_counter()
    if progress:
        progress(f"decomposing {train.size + val.size} origins")
    if hasattr(decomposer, "fit"):
        fit_on_origins(decomposer, values, train, cfg.decomp_window)
    at = positions_to_decompose(values, np.concatenate([train, val]), np.empty(0, np.int64), cfg.horizon,
                                cfg.decomp_window)
    samples = stepwise_decompose(values, at, decomposer, cfg.decomp_window, cfg.window)
    t_dec = time.perf_counter() - t0
    cov = build_covariates(station, cfg.covariates, int(val[0]) if val.size else values.size, cfg.qc.max_gap)
    X_tr = with_covariates(select_rows(samples, train), cov, train)
    X_va = with_covariates(select_rows(samples, val), cov, val)
    Y_tr = observed_component_targets(samples, observed, train, cfg.horizon)
    Y_va = observed_component_targets(samples, observed, val, cfg.horizon)
    K = len(decomposer.names)

    def inputs(X: np.ndarray, k: int) -> np.ndarray:  # component k, then the covariate channels
        return np.concatenate([X[:, :, k:k + 1], X[:, :, K:]], axis=2)

    feca = cfg.model == "decomp_feca_lstm"
    jobs = [TrainJob(("feca_" if feca else "plain_") + name, feca, inputs(X_tr, k), Y_tr[:, k, :], inputs(X_va, k),
                     Y_va[:, k, :], inputs(X_va, k), predict_val=False) for k, name in enumerate(decomposer.names)]
    if progress:
        progress(f"training {len(jobs)} networks on {train.size} samples")
    trained = _train_all(jobs, cfg, min(workers, training_workers(cfg, jobs)))
    val_forecast = recombine(trained)
    manifest = build_manifest(
        version=version, site=site, cfg=cfg, station=station, components=decomposer.names,
        decomposer_params=decomposer.params(), times=times, digest=digest, procedure="wq train",
        validation=validation_scores(values, observed, val, val_forecast, cfg.horizon),
        training={"n_train": int(train.size), "n_val": int(val.size), "decompose_seconds": round(t_dec, 3),
                  "seconds": round(time.perf_counter() - t0, 3),
                  "networks": {t.name: {k: t.training[k] for k in ("epochs_run", "best_epoch", "seconds")}
                               for t in trained}},
    )
    manifest["covariates"] = covariate_record(cov, cfg)
    manifest["model"] = cfg.model
    networks = [(name, t.model, t.scaler) for name, t in zip(decomposer.names, trained)]
    return registry.save(manifest, networks), True


def _train_plain_lstm(cfg: EvaluateConfig, registry: Registry, station: StationSeries,
                      series: tuple[np.ndarray, np.ndarray, pd.DatetimeIndex], split: tuple[np.ndarray, np.ndarray],
                      version: str, digest: str, site: str, workers: int,
                      progress: Callable[[str], None] | None) -> ModelVersion:
    """Train and register the plain LSTM (the raw window plus the covariates), as the evaluation
    trains it: targets at real observations only."""
    (values, observed, times), (train, val) = series, split
    t0 = time.perf_counter()
    cov = build_covariates(station, cfg.covariates, int(val[0]) if val.size else values.size, cfg.qc.max_gap)
    y_obs = np.where(observed, values, np.nan)
    X_tr = with_covariates(raw_windows(values, train, cfg.window), cov, train)
    X_va = with_covariates(raw_windows(values, val, cfg.window), cov, val)
    job = TrainJob("lstm", False, X_tr, target_matrix(y_obs, train, cfg.horizon), X_va,
                   target_matrix(y_obs, val, cfg.horizon), X_va, predict_val=False)
    if progress:
        progress(f"training the plain LSTM on {train.size} samples")
    (trained,) = _train_all([job], cfg, 1)
    manifest = build_manifest(
        version=version, site=site, cfg=cfg, station=station, components=["lstm"], decomposer_params={},
        times=times, digest=digest, procedure="wq train",
        validation=validation_scores(values, observed, val, trained.forecast, cfg.horizon),
        training={"n_train": int(train.size), "n_val": int(val.size), "seconds": round(time.perf_counter() - t0, 3),
                  "networks": {"lstm": {k: trained.training[k] for k in ("epochs_run", "best_epoch", "seconds")}}},
    )
    manifest.update(method="lstm", model="lstm", covariates=covariate_record(cov, cfg))
    return registry.save(manifest, [("lstm", trained.model, trained.scaler)])


def covariate_record(cov: Covariates, cfg: EvaluateConfig) -> dict[str, Any]:
    """What serving needs to rebuild a version's covariate channels from a live file: the column
    names, the fill mean of each (from the training period) and the carry-forward limit."""
    return {"names": list(cov.names), "fill_means": {n: cov.info[n]["fill_mean"] for n in cov.names},
            "max_fill": int(cfg.qc.max_gap)}


def series_view(values: np.ndarray, observed: np.ndarray, times: pd.DatetimeIndex, cfg: EvaluateConfig,
                val: np.ndarray) -> SeriesView:
    """The :class:`SeriesView` of a series cut at training time; validation starts at the first
    validation origin (``val (n_val,)``; everything else trains)."""
    val_start = int(val[0]) if val.size else int(values.size)
    return SeriesView(values, observed, times, cfg.horizon, val_start, val)


def _train_statistical(cfg: EvaluateConfig, registry: Registry, station: StationSeries,
                       series: tuple[np.ndarray, np.ndarray, pd.DatetimeIndex], split: tuple[np.ndarray, np.ndarray],
                       version: str, digest: str, site: str,
                       progress: Callable[[str], None] | None) -> ModelVersion:
    """Fit and register the statistical model ``cfg.model`` (:mod:`wq_pipeline.models.statistical`)."""
    from .models.statistical import statistical_forecaster

    (values, observed, times), (train, val) = series, split
    t0 = time.perf_counter()
    if progress:
        progress(f"fitting {cfg.model} on {times.size} points")
    view = series_view(values, observed, times, cfg, val)
    forecaster = statistical_forecaster(cfg.model, seasonal_period=cfg.seasonal_period, window=cfg.window).fit(view)
    manifest = build_manifest(
        version=version, site=site, cfg=cfg, station=station, components=[], decomposer_params={}, times=times,
        digest=digest, procedure="wq train",
        validation=validation_scores(values, observed, val, forecaster.forecast(view, val), cfg.horizon),
        training={"n_train": int(train.size), "n_val": int(val.size), "seconds": round(time.perf_counter() - t0, 3),
                  "choices": getattr(forecaster, "info", {})},
    )
    manifest["method"] = cfg.model
    return registry.save_forecaster(manifest, forecaster)


def _register_statistical(result: EvaluationResult, cfg: EvaluateConfig, registry: Registry, version: str,
                          digest: str, site: str) -> ModelVersion:
    """Register the statistical model ``cfg.model`` as the evaluation fitted it: on the (last)
    fold's training data, settings chosen on its validation origins; its forecasts at the test
    origins are the evaluation's."""
    from .models.statistical import statistical_forecaster

    plan, station, metrics = result.plan, result.station, result.metrics
    s = plan.split
    end = s.test_start
    view = SeriesView(plan.values[:end], plan.observed[:end], plan.times[:end], cfg.horizon, s.val_start, s.val)
    forecaster = statistical_forecaster(cfg.model, seasonal_period=cfg.seasonal_period, window=cfg.window).fit(view)
    scored = metrics["models"].get(cfg.model, {})
    manifest = build_manifest(
        version=version, site=site, cfg=cfg, station=station, components=[], decomposer_params={},
        times=plan.times[:end], digest=digest, procedure="wq evaluate",
        validation={"test": {k: scored.get(k) for k in ("rmse", "mae", "nse", "kge", "skill", "n_points")}},
        training={"n_train": metrics["n_train"], "n_val": metrics["n_val"], "evaluation_out": str(cfg.out),
                  "choices": getattr(forecaster, "info", {})},
    )
    manifest["method"] = cfg.model
    return registry.save_forecaster(manifest, forecaster)


def register_evaluation(result: EvaluationResult, cfg: EvaluateConfig, registry: Registry) -> ModelVersion:
    """Register ``cfg.model`` as an honest evaluation fitted it (the per-component networks by
    default), as it was scored: fitted on data before the test period, so its forecasts at the
    test origins are the evaluation's forecasts."""
    if cfg.protocol != "stepwise" or result.plan is None or result.station is None:
        raise InputError("only a stepwise (honest) evaluation can be registered as a model version")
    plan, station, metrics = result.plan, result.station, result.metrics
    end = plan.split.test_start  # training and validation targets all lie before the test period
    values, observed, times = plan.values[:end], plan.observed[:end], plan.times[:end]
    site = site_key(station, cfg.site, cfg.data)
    digest = data_hash(values, observed, times)
    version = version_id(site, cfg.target, times[-1],
                         version_content(cfg, digest, "wq evaluate", test_fraction=cfg.test_fraction))
    if cfg.model in STATISTICAL_MODELS:
        return _register_statistical(result, cfg, registry, version, digest, site)
    by_name = {t.name: t for t in result.trained}
    if cfg.model == "lstm":
        components, nets = ["lstm"], [by_name["lstm"]]
    else:
        components = list(metrics["components"])
        prefix = "feca_" if cfg.model == "decomp_feca_lstm" else "plain_"
        nets = [by_name[prefix + name] for name in components]
    main = metrics["models"][cfg.model]
    manifest = build_manifest(
        version=version, site=site, cfg=cfg, station=station, components=components,
        decomposer_params=metrics["decomposer_params"], times=times, digest=digest, procedure="wq evaluate",
        validation={"val_loss": {t.name: min(t.training["val_loss"]) for t in nets if t.training.get("val_loss")},
                    "test": {k: main.get(k) for k in ("rmse", "mae", "nse", "kge", "skill", "n_points")}},
        training={"n_train": metrics["n_train"], "n_val": metrics["n_val"], "evaluation_out": str(cfg.out),
                  "networks": {t.name: {k: t.training[k] for k in ("epochs_run", "best_epoch", "seconds")} for t in nets}},
    )
    manifest.update(covariates=covariate_record(plan.covariates, cfg), model=cfg.model)
    if cfg.model == "lstm":
        manifest.update(method="lstm", decomposer_params={})
    return registry.save(manifest, [(name, t.model, t.scaler) for name, t in zip(components, nets)])
