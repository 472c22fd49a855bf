"""Train a model version for production and register it: the main model (the online-weighted
ensemble of every member) by default, any single model with ``--model``, always as a forecaster
(:mod:`wq_pipeline.models.forecaster`) fitted on the data known at ``as_of``.

Network models and the ensemble are fitted by the evaluation's own fold code
(:func:`wq_pipeline.evaluation.pipeline.fit_folds`) on one fold without a test period: every origin up to
the cut-off, the last ``val_fraction`` of the period validating (early stopping, the baselines'
and the hybrid's choices, the ensemble's first weights). Statistical models are fitted through
the forecaster contract. ``wq evaluate --register`` builds the same forecaster from the last fold
of an evaluation (:func:`fold_forecaster`), so an evaluated model is put into service unchanged:
its forecasts at the test origins, and the ensemble's weights there, are the evaluation's.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import pandas as pd

from wq_pipeline.evaluation.asof import data_hash, known_series, site_key
from wq_pipeline.config import READ_FIELDS, EvaluateConfig
from wq_pipeline.data.covariates import Covariates, build_covariates
from wq_pipeline.errors import InputError
from wq_pipeline.models.intervals import IntervalOptions
from wq_pipeline.evaluation.metrics import score
from wq_pipeline.models.forecaster import Fitted, Forecaster, SeriesView
from wq_pipeline.models.kinds import forecaster_from_fitted, kind
from wq_pipeline.evaluation.pipeline import (
    MAIN_MODEL,
    MEMBER_NAMES,
    EvaluationResult,
    FoldResult,
    Plan,
    StageRunner,
    fit_folds,
    load_stage,
    positions_to_decompose,
    step_hours_of,
)
from wq_pipeline.models.protocol import Split, eligible_origins, target_matrix
from wq_pipeline.data.qc import StationSeries
from wq_pipeline.store.registry import DEFAULT_MODEL, ModelVersion, Registry, version_id

# Options of the evaluation only: they do not shape the networks a version holds.
#: how the file is read (READ_FIELDS) describes the file, not the model: a live file may come in another form
#: the served model is recorded on its own (manifest "model"; version content only when not the default, so
#: the ids of versions trained before --model stay the same)
MODEL_FIELDS_EXCLUDED = {"data", "out", "command", "jobs", "protocol", "seasonal_period", "folds", "test_start",
                         "ensemble_rule", "ensemble_half_life", "model", "quantiles", "interval_method",
                         "thresholds", "alert_level", "challenge", *READ_FIELDS}


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
    """Fit ``cfg.model`` on the data known at ``as_of`` (all data when None) and register it.
    Returns ``(version, trained)``; ``trained`` is False when the same version (same data,
    options and cut-off) was already registered, which makes retraining idempotent.
    ``workers``: training processes for the networks (``cfg.jobs`` wins when set).
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
    t0 = time.perf_counter()
    if not kind(cfg.model).trains_networks:  # a statistical model: fitted alone, in seconds
        if progress:
            progress(f"fitting {cfg.model} on {times.size} points")
        view = series_view(values, observed, times, cfg, val)
        forecaster = forecaster_from_fitted(cfg.model, Fitted(view, {}, [], {"window": cfg.window,
                                                                           "seasonal_period": cfg.seasonal_period}))
        val_forecast, info = forecaster.forecast(view, val), {"choices": getattr(forecaster, "info", {})}
        utc = times.tz_convert("UTC") if times.tz is not None else times
        forecaster = with_record(forecaster, utc.asi8[val], val_forecast, max(cfg.window, cfg.decomp_window),
                                 cfg.interval_options(view.step_hours))
        cov, fold = None, None
    else:
        check_origins(cfg, times, train, val)
        plan = training_plan(station, values, observed, times, cfg, train, val)
        if progress:
            progress(f"fitting every model on {train.size} training and {val.size} validation origins")
        fold = fit_training_fold(plan, cfg if cfg.jobs else cfg.model_copy(update={"jobs": workers}))
        forecaster = fold_forecaster(fold, cfg, cfg.model)
        val_forecast = fold.forecasts[cfg.model][: val.size]
        info = {"networks": {t.name: {k: t.training[k] for k in ("epochs_run", "best_epoch", "seconds", "skipped")
                                      if k in t.training} for t in fold.trained},
                "ensemble": {k: fold.ensemble[k] for k in ("rule", "half_life_steps", "members", "duplicates")}}
        cov = plan.covariates
    manifest = build_manifest(
        version=version, site=site, cfg=cfg, station=station, components=[], decomposer_params={}, times=times,
        digest=digest, procedure="wq train",
        validation=validation_scores(values, observed, val, val_forecast, cfg.horizon),
        training={"n_train": int(train.size), "n_val": int(val.size), "seconds": round(time.perf_counter() - t0, 3),
                  **info},
    )
    return _save(registry, manifest, forecaster, cfg, cov, fold.decomposer_fitted if fold else {}), True


def check_origins(cfg: EvaluateConfig, times: pd.DatetimeIndex, train: np.ndarray, val: np.ndarray) -> None:
    """Enough training and validation origins for the networks, else :class:`InputError`."""
    where = f"{cfg.data}" + (f" site {cfg.site}" if cfg.site else "")
    for name, part, minimum in (("training", train, 50), ("validation", val, 10)):
        if part.size < minimum:
            raise InputError(
                f"{where}: '{cfg.target}' up to {times[-1].isoformat()} yields {part.size} {name} origins with "
                f"window {cfg.window}, decomposition window {cfg.decomp_window} and horizon {cfg.horizon} "
                f"(at least {minimum} needed); train on more data (a later --as-of) or shorten the windows")


def training_plan(station: StationSeries, values: np.ndarray, observed: np.ndarray, times: pd.DatetimeIndex,
                  cfg: EvaluateConfig, train: np.ndarray, val: np.ndarray) -> Plan:
    """The one fold ``wq train`` fits: ``train``/``val`` origins, no test period; covariate fill
    statistics from the training period."""
    val_start = int(val[0]) if val.size else int(values.size)
    split = Split(train=train, val=val, test=np.empty(0, np.int64), val_start=val_start, test_start=int(values.size))
    at = positions_to_decompose(values, np.concatenate([train, val]), split.test, cfg.horizon, cfg.decomp_window)
    cov = build_covariates(station, cfg.covariates, val_start, cfg.qc.max_gap)
    return Plan(values=values, observed=observed, times=times, split=split, decompose_at=at, covariates=cov)


def fit_training_fold(plan: Plan, cfg: EvaluateConfig) -> FoldResult:
    """Fit every model of the evaluation on ``plan`` (:func:`~wq_pipeline.evaluation.pipeline.fit_folds`)."""
    timings: dict[str, float] = {}
    runner = StageRunner()

    def timed(name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return runner.run(name, fn, *args, **kwargs)

    folds, _, _, _ = fit_folds([plan], cfg, runner, timed, timings, stationarity=False)
    return folds[0]


def fold_view(fold: FoldResult) -> SeriesView:
    """What the fold's models were fitted on: the series up to its test period, its validation
    origins, its covariates."""
    plan, s = fold.plan, fold.plan.split
    end = s.test_start
    H = fold.forecasts[MAIN_MODEL].shape[1]
    return SeriesView(plan.values[:end], plan.observed[:end], plan.times[:end], H, s.val_start, s.val, plan.covariates)


def fold_fitted(fold: FoldResult, cfg: EvaluateConfig) -> Fitted:
    """What a fold fitted, for :func:`~wq_pipeline.models.kinds.forecaster_from_fitted`."""
    from wq_pipeline.models.networks import Decomposition

    learnt = {"groups": fold.decomposer_fitted["groups"]} if "groups" in fold.decomposer_fitted else {}
    positions, F = fold.record
    utc = fold.plan.times.tz_convert("UTC") if fold.plan.times.tz is not None else fold.plan.times
    channels = {t.name: t.training.get("channels") for t in fold.trained}
    return Fitted(
        view=fold_view(fold),
        networks={t.name: None if t.model is None else (t.model, t.scaler, None if channels[t.name] is None
                                                          else int(channels[t.name])) for t in fold.trained},
        components=[t.name[len("feca_"):] for t in fold.trained if t.name.startswith("feca_")],
        settings={"window": cfg.window, "seasonal_period": cfg.seasonal_period,
                  "decomposition": Decomposition(cfg.method, cfg.modes, cfg.seed, cfg.decomposer_params(),
                                                 cfg.decomp_window, cfg.window, learnt),
                  "hybrid_options": cfg.hybrid_options(), "first_stage_params": fold.baselines.get("harmonic_ar_params"),
                  "hybrid_weights": fold.hybrid_weights, "ensemble_options": cfg.ensemble_options(step_hours_of(fold.plan)),
                  "lookback": max(cfg.window, cfg.decomp_window), "members": list(MEMBER_NAMES),
                  "interval_options": cfg.interval_options(step_hours_of(fold.plan))},
        record=(utc.asi8[positions], F), duplicates=dict(fold.ensemble.get("duplicates") or {}))


def fold_forecaster(fold: FoldResult, cfg: EvaluateConfig, name: str) -> Forecaster:
    """The fitted forecaster ``name`` of a fold (any kind of :mod:`wq_pipeline.models`): its
    forecasts at the fold's test origins are the fold's. A model other than the main model comes
    with the record of its own forecasts at the fold's (and earlier folds') origins, for its
    quantiles (:class:`~wq_pipeline.models.calibrated.CalibratedForecaster`)."""
    fitted = fold_fitted(fold, cfg)
    model = forecaster_from_fitted(name, fitted)
    if name == MAIN_MODEL:
        return model
    times, F = fitted.record
    row = MEMBER_NAMES.index(fitted.duplicates.get(name, name))  # a duplicate: the member it repeats
    return with_record(model, times, F[row], fitted.settings["lookback"], fitted.settings["interval_options"])


def with_record(model: Forecaster, times_utc_ns: np.ndarray, forecasts: np.ndarray, lookback: int,
                intervals: IntervalOptions) -> Forecaster:
    """``model`` served with the record of its forecasts ``(r, H)`` at ``times_utc_ns (r,)``, so
    it issues quantiles calibrated on its own errors."""
    from wq_pipeline.models.calibrated import CalibratedForecaster

    return CalibratedForecaster(model, lookback, times_utc_ns, forecasts, intervals)


def _save(registry: Registry, manifest: dict[str, Any], forecaster: Forecaster, cfg: EvaluateConfig,
          cov: Covariates | None, learnt: dict[str, Any], shared: ModelVersion | None = None) -> ModelVersion:
    """Register a fitted forecaster with its covariate record and decomposition settings (with
    what the decomposer ``learnt`` on training windows)."""
    if cov is not None:
        manifest["covariates"] = covariate_record(cov, cfg)
    if forecaster.trains_networks:
        manifest["decomposer_params"] = {**make_decomposer_params(cfg), **learnt}
    else:
        manifest["method"] = cfg.model
    return registry.save_forecaster(manifest, forecaster, shared=shared)


def make_decomposer_params(cfg: EvaluateConfig) -> dict[str, Any]:
    """The decomposition settings recorded in a manifest."""
    from wq_pipeline.decompose import make_decomposer

    return make_decomposer(cfg.method, cfg.modes, cfg.seed, **cfg.decomposer_params()).params()


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


def register_evaluation(result: EvaluationResult, cfg: EvaluateConfig, registry: Registry) -> ModelVersion:
    """Register ``cfg.model`` (the main model by default) as an honest evaluation fitted it in
    its last fold: fitted on data before the test period, so its forecasts at the test origins are
    the evaluation's (and, for the ensemble, so are its weights: its record holds every member's
    forecasts at the validation and test origins of every fold)."""
    if cfg.protocol != "stepwise" or result.plan is None or result.station is None or not result.folds:
        raise InputError("only a stepwise (honest) evaluation can be registered as a model version")
    fold, station, metrics = result.folds[-1], result.station, result.metrics
    plan = fold.plan
    end = plan.split.test_start  # training and validation targets all lie before the test period
    values, observed, times = plan.values[:end], plan.observed[:end], plan.times[:end]
    site = site_key(station, cfg.site, cfg.data)
    digest = data_hash(values, observed, times)
    version = version_id(site, cfg.target, times[-1],
                         version_content(cfg, digest, "wq evaluate", test_fraction=cfg.test_fraction))
    forecaster = fold_forecaster(fold, cfg, cfg.model)
    scored = metrics["models"].get(cfg.model, {})
    manifest = build_manifest(
        version=version, site=site, cfg=cfg, station=station, components=[], decomposer_params={}, times=times,
        digest=digest, procedure="wq evaluate",
        validation={"rmse": validation_scores(values, observed, plan.split.val,
                                              fold.forecasts[cfg.model][: plan.split.val.size], cfg.horizon)["rmse"],
                    "test": {k: scored.get(k) for k in ("rmse", "mae", "nse", "kge", "skill", "n_points")}},
        training={"n_train": metrics["n_train"], "n_val": metrics["n_val"], "evaluation_out": str(cfg.out),
                  "choices": getattr(forecaster, "info", {})},
    )
    networks = forecaster.trains_networks
    return _save(registry, manifest, forecaster, cfg, plan.covariates if networks else None,
                 fold.decomposer_fitted if networks else {})
