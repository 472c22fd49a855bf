"""The evaluation pipeline as plain stage functions.

:func:`run_evaluation` chains the stages. It takes a :class:`StageRunner` so that the Prefect
flow in ``flows/evaluate.py`` can run every stage as a task (with caching of decompositions)
while the library itself never imports Prefect.

A run has one or more folds (``--folds``): each fold trains every model on the data before its
own validation period, forecasts its validation and test origins, and lets the main model, the
online-weighted ensemble (:mod:`wq_pipeline.models.ensemble`), weigh the members by their errors on
forecasts whose targets were already observed. Scores are per fold and pooled over the folds.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from wq_pipeline._version import __version__
from wq_pipeline.config import MAIN_MODEL, STATISTICAL_MODELS, EvaluateConfig
from wq_pipeline.data.covariates import (
    Covariates,
    build_covariates,
    covariate_windows,
    resolve_covariates,
    with_covariates,
)
from wq_pipeline.decompose import Decomposer, make_decomposer
from wq_pipeline.models.ensemble import (
    History,
    combine,
    distinct_members,
    online_weights,
    weight_summary,
    with_history,
)
from wq_pipeline.errors import InputError
from wq_pipeline.models.hybrid import calendar_channels, first_stage_forecast, hybrid_inputs, shrink_weights
from wq_pipeline.data.station import load_station
from wq_pipeline.common import file_sha256, library_versions, to_jsonable
from wq_pipeline.evaluation.metrics import add_best_baseline_skill, add_skill, score
from wq_pipeline.models.network_jobs import TrainedForecast, TrainJob, fit_predict, fit_predict_portable
from wq_pipeline.models.protocol import (
    LEAKY_LABEL,
    ComponentSamples,
    Split,
    component_targets,
    eligible_origins,
    fold_bounds,
    fold_split,
    global_decompose,
    raw_windows,
    select_rows,
    stepwise_decompose,
    target_matrix,
    window_ok,
)
from wq_pipeline.data.qc import StationSeries
from wq_pipeline.evaluation.stationarity import stationarity_table
from wq_pipeline.models.workers import resolve_jobs, training_pool

BASELINE_NAMES = STATISTICAL_MODELS
NETWORK_MODELS = ("lstm", "decomp_lstm", "decomp_feca_lstm", "hybrid_feca_lstm")
# What the ensemble combines: every baseline and every network model.
MEMBER_NAMES = (*BASELINE_NAMES, *NETWORK_MODELS)
MODEL_NAMES = (*MEMBER_NAMES, MAIN_MODEL)
HYBRID_JOB = "hybrid"
# What "the best baseline" is chosen from: every statistical baseline and the plain LSTM.
SKILL_REFERENCES = (*BASELINE_NAMES, "lstm")
POOL_MIN_SAMPLE_EPOCHS = 200_000
# Fewest origins a fold's training, validation and test periods may have.
MIN_ORIGINS = {"training": 50, "validation": 10, "test": 5}


class StageRunner:
    """Runs pipeline stages. This default calls them in-process; the Prefect flow subclasses it
    so every stage becomes a task (``flows/evaluate.py``)."""

    def run(self, name: str, fn: Callable[..., Any], *args: Any, cache_key: str | None = None, **kwargs: Any) -> Any:
        """Run one stage; ``cache_key`` (a content hash) lets a runner reuse an earlier result."""
        return fn(*args, **kwargs)

    def map(self, name: str, fn: Callable[..., Any], calls: list[tuple], labels: list[str],
            workers: int, progress: Callable[[int], Any] | None = None) -> list[Any]:
        """Run ``fn(*call)`` for every call, up to ``workers`` at once; results in call order."""
        from concurrent.futures import ThreadPoolExecutor

        def one(call: tuple) -> Any:
            out = fn(*call)
            if progress is not None:
                progress(1)
            return out

        with ThreadPoolExecutor(max_workers=max(1, workers)) as ex:
            return list(ex.map(one, calls))

    def submit(self, name: str, label: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Start ``fn(*args)`` in the background; returns an object whose ``result()`` waits for it."""
        from concurrent.futures import ThreadPoolExecutor

        ex = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-{label}")
        try:
            return ex.submit(fn, *args)
        finally:
            ex.shutdown(wait=False)


def _progress_bar(total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="win" if "ecompos" in desc else "it", file=sys.stderr,
                disable=os.environ.get("WQ_NO_PROGRESS") == "1", leave=False)


# --------------------------------------------------------------------------- stages


def load_stage(cfg: EvaluateConfig) -> StationSeries:
    """Load, quality-control and regularise the target series."""
    return load_station(
        cfg.data, cfg.target, time_col=cfg.time_col, site=cfg.site, site_col=cfg.site_col, freq=cfg.freq, qc=cfg.qc,
        read=cfg.read_options(),
    )


@dataclass
class Plan:
    """One fold: where forecasts are issued and which windows must be decomposed."""

    values: np.ndarray  # (N,) target after QC, NaN in long gaps
    observed: np.ndarray  # (N,) bool, real observations
    times: pd.DatetimeIndex
    split: Split
    decompose_at: np.ndarray  # sorted positions whose trailing window is decomposed
    covariates: Covariates  # (N, K) causal extra input channels, K = 0 without --covariates

    @property
    def obs_values(self) -> np.ndarray:
        """``(N,)``: the target where it is a real observation, NaN elsewhere (interpolated and
        QC-removed points). Every training target and every score uses these only."""
        return np.where(self.observed, self.values, np.nan)


def resolve_test_start(station: StationSeries, cfg: EvaluateConfig) -> int | None:
    """Grid position of ``--test-start`` (the first grid time at or after it), None when unset.
    Raises :class:`InputError` when it lies outside the data."""
    if cfg.test_start is None:
        return None
    from wq_pipeline.evaluation.asof import as_timestamp

    times = station.values.index
    when = as_timestamp(cfg.test_start, times.tz, "--test-start")
    if when <= times[0] or when > times[-1]:
        raise InputError(f"{cfg.data}: --test-start {cfg.test_start} lies outside the data of '{cfg.target}' "
                         f"({times[0].isoformat()} .. {times[-1].isoformat()}); expected a time after the first "
                         f"and at or before the last grid time")
    return int(np.searchsorted(times.asi8, when.value, side="left"))


def _minimum_origins(cfg: EvaluateConfig) -> int | None:
    """Fewest forecast origins ``--folds`` needs (None: no number is enough with this
    ``--val-fraction``)."""
    per_fold = 1.0 / (cfg.folds + 1) - cfg.val_fraction
    if per_fold <= 0:
        return None
    return int(np.ceil((MIN_ORIGINS["training"] + cfg.horizon + 1) / per_fold))


def plan_folds(station: StationSeries, cfg: EvaluateConfig) -> list[Plan]:
    """Choose eligible origins, split them into the folds' chronological periods and list the
    windows each fold decomposes. Each fold's covariate fill statistics come from its own
    training period.

    Raises :class:`InputError` when the series is too short for the folds, the window,
    decomposition window and horizon, or ``--test-start`` lies outside the data.
    """
    resolve_covariates(station, cfg.covariates)  # names checked before lengths: the likelier mistake
    target_thresholds(station, cfg)
    values = station.values.to_numpy(dtype=float)
    observed = station.observed.to_numpy(dtype=bool)
    lookback = max(cfg.window, cfg.decomp_window)
    ok = eligible_origins(values, observed, lookback, cfg.horizon)
    start = resolve_test_start(station, cfg)
    need = f"window {cfg.window}, decomposition window {cfg.decomp_window} and horizon {cfg.horizon}"
    origins = np.flatnonzero(ok)
    if cfg.folds > 1:
        minimum = _minimum_origins(cfg)
        before = origins.size if start is None else int(np.searchsorted(origins, start))
        after = origins.size - before
        if minimum is None or origins.size < minimum or (start is not None and (
                before - round(origins.size * cfg.val_fraction) < MIN_ORIGINS["training"] + cfg.horizon
                or after < cfg.folds * MIN_ORIGINS["test"])):
            raise InputError(
                f"{cfg.data}: --folds {cfg.folds} needs "
                + (f"at least {minimum} forecast origins (real observations with a complete "
                   f"{lookback}-step window)" if minimum else f"--val-fraction below 1/{cfg.folds + 1}")
                + f" with {need} and --val-fraction {cfg.val_fraction:g}"
                + ("" if start is None else f", {MIN_ORIGINS['training'] + cfg.horizon} of them before the "
                   f"validation period and {cfg.folds * MIN_ORIGINS['test']} from --test-start on")
                + f"; column '{cfg.target}' has {origins.size} on its {values.size}-step {station.freq} grid"
                + ("" if start is None else f" ({before} before --test-start)")
                + ". Use fewer --folds or a longer file."
            )
    bounds = fold_bounds(values.size, cfg.folds, cfg.test_fraction, cfg.val_fraction, start, origins)
    plans = []
    for k, b in enumerate(bounds, start=1):
        split = fold_split(ok, cfg.horizon, b, fold=k)
        where = f"fold {k} of {cfg.folds}: the " if cfg.folds > 1 else "the "
        for name, part in (("training", split.train), ("validation", split.val), ("test", split.test)):
            if part.size < MIN_ORIGINS[name]:
                raise InputError(
                    f"{cfg.data}: column '{cfg.target}' has {int(np.isfinite(values).sum())} usable points on a "
                    f"{values.size}-step {station.freq} grid (longest gap {station.summary.get('longest_gap_steps')} "
                    f"steps); {where}{name} period ({_period(station, b, name)}) yields only {part.size} forecast "
                    f"origins with {need} (at least {MIN_ORIGINS[name]} needed). Use a longer file, fewer --folds, "
                    f"another --test-start or smaller --window/--decomp-window/--horizon."
                )
        at = positions_to_decompose(values, np.concatenate([split.train, split.val]), split.test, cfg.horizon,
                                    cfg.decomp_window)
        cov = build_covariates(station, cfg.covariates, split.val_start, cfg.qc.max_gap)
        plans.append(Plan(values=values, observed=observed, times=station.values.index, split=split,
                          decompose_at=at, covariates=cov))
    return plans


def target_thresholds(station: StationSeries, cfg: EvaluateConfig) -> list[Any]:
    """The thresholds of ``cfg`` on this run's target (:class:`~wq_pipeline.models.exceedance.Threshold`);
    :class:`InputError` for one naming a column the file does not have."""
    from wq_pipeline.models.exceedance import parse_threshold
    from wq_pipeline.data.load import find_column

    out = []
    columns = list(station.frame.columns)
    for text in cfg.thresholds:
        th = parse_threshold(text)
        col = find_column(columns, th.column)
        if col is None:
            raise InputError(f"{station.path.name}: --threshold {text!r} names column {th.column!r}, which the file "
                             f"does not have; available numeric columns: {', '.join(columns)}")
        if col == station.target:
            out.append(th)
    return out


def _period(station: StationSeries, b: Any, name: str) -> str:
    t = station.values.index
    lo, hi = {"training": (0, b.val_start), "validation": (b.val_start, b.test_start),
              "test": (b.test_start, b.test_end)}[name]
    lo, hi = max(lo, 0), min(max(hi, 1), t.size)
    return f"{t[lo].isoformat()} .. {t[hi - 1].isoformat()}" if hi > lo else "empty"


def plan_stage(station: StationSeries, cfg: EvaluateConfig) -> Plan:
    """The last fold's :class:`Plan` (the only one without ``--folds``)."""
    return plan_folds(station, cfg)[-1]


FIT_WINDOWS = 64


def fit_decomposer(decomposer: Decomposer, plan: Plan, cfg: EvaluateConfig) -> Decomposer:
    """Fit what a decomposer learns from data (CEEMDAN-SE-VMD's entropy groups) on trailing
    windows ending at training origins only, so nothing of the validation or test period shapes
    it. Returns the decomposer, fitted (unchanged when it has nothing to fit)."""
    if hasattr(decomposer, "fit"):
        fit_on_origins(decomposer, plan.values, plan.split.train, cfg.decomp_window)
    return decomposer


def fit_on_origins(decomposer: Decomposer, values: np.ndarray, origins: np.ndarray, decomp_window: int) -> None:
    """``decomposer.fit`` on up to :data:`FIT_WINDOWS` trailing windows ``(n, L)`` ending at
    ``origins`` (evenly spaced)."""
    pick = origins[np.unique(np.linspace(0, origins.size - 1, min(FIT_WINDOWS, origins.size)).astype(int))]
    decomposer.fit(values[pick[:, None] + np.arange(-decomp_window + 1, 1)[None, :]])


def learnt_parameters(decomposer: Decomposer) -> dict[str, Any]:
    """What a fitted decomposer learnt from the training data (empty when nothing)."""
    return {k: v for k, v in decomposer.params().items() if k in ("groups", "entropies")}


def positions_to_decompose(values: np.ndarray, fit_origins: np.ndarray, other_origins: np.ndarray,
                           horizon: int, decomp_window: int) -> np.ndarray:
    """Sorted positions whose trailing window must be decomposed: every origin, and for the
    training/validation origins also ``t+1 .. t+H`` (their component targets are the end points
    of those windows) where the window is finite."""
    later = (fit_origins[:, None] + np.arange(1, horizon + 1)[None, :]).ravel()
    later = later[later < values.size]
    later = later[window_ok(np.isfinite(values), decomp_window)[later]]
    return np.unique(np.concatenate([fit_origins, other_origins, later]).astype(np.int64))


@dataclass
class Stationarity:
    """ADF/KPSS table and the decomposition it was computed on (training period only)."""

    table: pd.DataFrame
    components: pd.DataFrame  # time, raw, one column per component


def stationarity_stage(plan: Plan, decomposer: Decomposer) -> Stationarity:
    """ADF and KPSS on the raw training series and on every component of its decomposition.

    Uses the training period only (the longest finite stretch before validation starts), so the
    table carries no information from the test period.
    """
    train = plan.values[: plan.split.val_start]
    finite = np.isfinite(train)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], finite.astype(np.int8), [0]])))
    a, b = max(zip(edges[::2], edges[1::2]), key=lambda ab: ab[1] - ab[0])
    seg = train[a:b]
    series = {"raw": seg}
    comps = decomposer.decompose(seg)
    for name, comp in zip(decomposer.names, comps):
        series[name] = comp
    frame = pd.DataFrame({"time": [t.isoformat() for t in plan.times[a:b]], **series})
    return Stationarity(table=stationarity_table(series), components=frame)


def series_frame(station: StationSeries) -> pd.DataFrame:
    """The target on its grid with QC marks: ``time, raw, value, observed, interpolated, removed``."""
    return pd.DataFrame({
        "time": [t.isoformat() for t in station.values.index],
        "raw": station.raw.to_numpy(), "value": station.values.to_numpy(),
        "observed": station.observed.to_numpy(), "interpolated": station.interpolated.to_numpy(),
        "removed": station.removed.to_numpy(),
    })


def decompose_stage(plan: Plan, cfg: EvaluateConfig, decomposer: Decomposer) -> ComponentSamples:
    """Decompose under the configured protocol (stepwise: one trailing window per position)."""
    if cfg.protocol == "global":
        return global_decompose(plan.values, plan.decompose_at, decomposer, cfg.window, cfg.decomp_window)
    bar = _progress_bar(plan.decompose_at.size, f"Decomposing {plan.decompose_at.size} windows ({cfg.method})")
    try:
        return stepwise_decompose(
            plan.values, plan.decompose_at, decomposer, cfg.decomp_window, cfg.window, progress=bar.update
        )
    finally:
        bar.close()


def workers_for(cfg: EvaluateConfig, samples: int) -> int:
    """Worker processes for training on ``samples`` training samples in all (over every network):
    ``cfg.jobs`` when set; with ``jobs=0`` (auto) one per core, unless the whole training is too
    small to pay for starting TensorFlow in each worker."""
    if cfg.jobs > 0:
        return cfg.jobs
    return resolve_jobs(0) if samples * cfg.epochs >= POOL_MIN_SAMPLE_EPOCHS else 1


def train_stage(job: TrainJob, cfg: EvaluateConfig, workers: int) -> TrainedForecast:
    """Train one network: in-process when ``workers == 1``, else in the training pool."""
    if workers == 1:
        return fit_predict(job, cfg)
    return training_pool(workers).submit(fit_predict_portable, job, cfg).result()


def training_jobs(samples: ComponentSamples, plan: Plan, cfg: EvaluateConfig, names: list[str]) -> list[TrainJob]:
    """Every network of a run: :func:`lstm_job`, then :func:`component_jobs`."""
    return [lstm_job(plan, cfg), *component_jobs(samples, plan, cfg, names)]


def lstm_job(plan: Plan, cfg: EvaluateConfig) -> TrainJob:
    """The plain LSTM on the raw series' last W values, plus the covariates (needs no
    decomposition). Its targets are real observations only."""
    s, y, H, W, cov = plan.split, plan.values, cfg.horizon, cfg.window, plan.covariates
    X = {part: with_covariates(raw_windows(y, o, W), cov, o) for part, o in (("tr", s.train), ("va", s.val), ("te", s.test))}
    y_obs = plan.obs_values
    return TrainJob("lstm", False, X["tr"], target_matrix(y_obs, s.train, H), X["va"], target_matrix(y_obs, s.val, H),
                    X["te"])


def observed_component_targets(samples: ComponentSamples, observed: np.ndarray, origins: np.ndarray,
                               horizon: int) -> np.ndarray:
    """``(n, C, H)`` component targets (:func:`~wq_pipeline.models.protocol.component_targets`), NaN where
    ``t + h`` is not a real observation (``observed (N,)``): an interpolated end point would carry
    a later reading."""
    Y = component_targets(samples, origins, horizon)
    pos = origins[:, None] + np.arange(1, horizon + 1)[None, :]
    seen = np.zeros(pos.shape, dtype=bool)
    inside = pos < observed.size
    seen[inside] = observed[pos[inside]]
    return np.where(seen[:, None, :], Y, np.nan)


def component_jobs(samples: ComponentSamples, plan: Plan, cfg: EvaluateConfig, names: list[str]) -> list[TrainJob]:
    """One network per component with FECA, then one without (the ablation). Component ``k``'s
    inputs are its last W points, then the covariates' last W values; its targets are its next H
    end points (see :mod:`wq_pipeline.models.protocol`), at real observations only."""
    s, H, cov = plan.split, cfg.horizon, plan.covariates
    jobs: list[TrainJob] = []
    X = {part: select_rows(samples, o) for part, o in (("tr", s.train), ("va", s.val), ("te", s.test))}
    C = {part: covariate_windows(cov, o, cfg.window) for part, o in (("tr", s.train), ("va", s.val), ("te", s.test))}
    Ytr = observed_component_targets(samples, plan.observed, s.train, H)
    Yva = observed_component_targets(samples, plan.observed, s.val, H)

    def inputs(part: str, k: int) -> np.ndarray:
        return np.concatenate([X[part][:, :, k:k + 1], C[part]], axis=2)

    for feca in (True, False):
        prefix = "feca_" if feca else "plain_"
        for k, name in enumerate(names):
            jobs.append(TrainJob(prefix + name, feca, inputs("tr", k), Ytr[:, k, :], inputs("va", k),
                                 Yva[:, k, :], inputs("te", k)))
    return jobs


def step_hours_of(plan: Plan) -> float:
    """The grid step in hours."""
    return (plan.times[1] - plan.times[0]).total_seconds() / 3600.0


def hybrid_job(plan: Plan, cfg: EvaluateConfig, samples: ComponentSamples | None,
               first_stage_params: dict[str, Any] | None) -> tuple[TrainJob, dict[str, np.ndarray]]:
    """The hybrid network's job (:mod:`wq_pipeline.models.hybrid`): inputs ``(n, W, C)`` from positions
    ``<= t`` and targets ``(n, H)`` = observed series minus the first stage's forecast. Also
    returns the first-stage forecasts ``{"train"|"val"|"test": (n, H)}``."""
    opts = cfg.hybrid_options()
    s, y, H, W = plan.split, plan.values, cfg.horizon, cfg.window
    cal = calendar_channels(plan.times) if opts.calendar else None
    parts = {"train": s.train, "val": s.val, "test": s.test}
    f1 = {k: first_stage_forecast(y, o, H, step_hours_of(plan), opts.first_stage, first_stage_params)
          for k, o in parts.items()}
    X = {k: hybrid_inputs(y, o, W, opts, samples, plan.covariates, cal) for k, o in parts.items()}
    residual = opts.first_stage != "none"
    y_obs = plan.obs_values
    job = TrainJob(HYBRID_JOB, opts.feca, X["train"], target_matrix(y_obs, s.train, H) - f1["train"], X["val"],
                   target_matrix(y_obs, s.val, H) - f1["val"], X["test"], own_target_scale=residual,
                   fixed_channels=0 if cal is None else cal.shape[1])
    return job, f1


@dataclass
class HybridForecast:
    """The hybrid model at a fold's validation and test origins (``Split.fit_origins``):
    ``forecast (n_val + n_test, H)`` = first stage + weight x ``correction``, the network's own
    forecast before shrinking; ``info``: options, weights, validation RMSE."""

    forecast: np.ndarray
    correction: np.ndarray
    info: dict[str, Any]
    weights: np.ndarray | None = None  # (H,) the shrink weights the test forecasts use (unrounded)


def hybrid_forecast(trained: TrainedForecast, first_stage: dict[str, np.ndarray], plan: Plan,
                    cfg: EvaluateConfig, val_first_stage: np.ndarray | None = None) -> HybridForecast:
    """First stage + per-step weight x network correction, the weights fitted on the validation
    origins' real observations (all 1 without ``shrink`` or a first stage).

    The validation rows, which only warm the ensemble's weights up, are cross-fitted: each half
    uses the weights fitted on the other half, and ``val_first_stage`` (the harmonic + AR member's
    own cross-fitted validation forecasts, when given) as its first stage, so that the hybrid does
    not look better on validation than it is."""
    opts = cfg.hybrid_options()
    H = cfg.horizon
    val_obs = target_matrix(plan.obs_values, plan.split.val, H)
    weights = np.ones(H)
    correction = trained.fit_forecast()
    n_val = first_stage["val"].shape[0]
    skipped = bool(trained.training.get("skipped"))
    if skipped:  # no network: the hybrid is its first stage
        correction, weights = np.zeros_like(correction), np.zeros(H)
    shrinking = opts.shrink and opts.first_stage != "none" and not skipped
    if shrinking:
        weights = shrink_weights(val_obs - first_stage["val"], correction[:n_val])
    info: dict[str, Any] = {"options": opts.label(), "shrink_weights": [round(float(w), 4) for w in weights],
                            "channels": trained.training.get("channels")}
    info["validation_rmse"] = _rmse_last(first_stage["val"] + weights[None, :] * correction[:n_val], val_obs)
    info["validation_rmse_first_stage"] = _rmse_last(first_stage["val"], val_obs)
    f1_val = first_stage["val"] if val_first_stage is None else val_first_stage
    val = f1_val + weights[None, :] * correction[:n_val]
    if shrinking and n_val >= 2:
        half = n_val // 2
        for rows, other in ((slice(0, half), slice(half, n_val)), (slice(half, n_val), slice(0, half))):
            w = shrink_weights(val_obs[other] - first_stage["val"][other], correction[:n_val][other])
            val[rows] = f1_val[rows] + w[None, :] * correction[:n_val][rows]
    test = first_stage["test"] + weights[None, :] * correction[n_val:]
    return HybridForecast(forecast=np.concatenate([val, test]), correction=correction, info=info, weights=weights)


def _rmse_last(forecast: np.ndarray, observed: np.ndarray) -> float | None:
    """RMSE at the last step of ``(n, H)`` arrays over finite pairs (None when there are none)."""
    err = (forecast - observed)[:, -1]
    err = err[np.isfinite(err)]
    return float(np.sqrt(np.mean(err ** 2))) if err.size else None


def baselines_stage(plan: Plan, cfg: EvaluateConfig) -> dict[str, Any]:
    """Every baseline of :data:`BASELINE_NAMES` at the fold's validation and test origins
    ``(n_val + n_test, H)``, each tuned on training and validation observations only
    (:mod:`wq_pipeline.models.baselines.suite`; ARIMA fitted on the training series)."""
    from wq_pipeline.models.baselines.arima import arima_forecast, fit_arima, select_order
    from wq_pipeline.models.baselines.suite import statistical_baselines

    y, y_obs, s, H = plan.values, plan.obs_values, plan.split, cfg.horizon
    origins = s.fit_origins
    stats = statistical_baselines(y, s.val_start, s.val, origins, H, step_hours_of(plan), cfg.seasonal_period,
                                  max_lag=max(2, min(cfg.window * 2, s.val_start // 4)), times=plan.times, y_obs=y_obs)
    t0 = time.perf_counter()
    order = select_order(y_obs[: s.val_start])
    arima = arima_forecast(fit_arima(y_obs[: s.val_start], order), y, origins, H)
    return {**stats.forecasts, "arima": arima,
            "info": {**stats.info, "arima_order": list(map(int, order)),
                     "arima_seconds": round(time.perf_counter() - t0, 3)}}


def ensemble_stage(plan: Plan, cfg: EvaluateConfig, members: dict[str, np.ndarray],
                   history: History | None = None) -> dict[str, Any]:
    """The main model at the fold's validation and test origins: the online-weighted ensemble of
    ``members`` (``{name: (n_val + n_test, H)}``). ``history``: the record of the previous fold's
    models before this fold's first origin (:func:`~wq_pipeline.models.ensemble.with_history`), as a
    deployed ensemble keeps its record across a retraining. Returns ``forecast (n, H)``,
    ``weights (n, H, M)``, the record to hand on (``history``) and a JSON ``info`` (rule,
    half-life, members, mean test weights at step H)."""
    opts = cfg.ensemble_options(step_hours_of(plan))
    names = list(members)
    F, same = distinct_members(np.stack([members[n] for n in names]), names)
    origins = plan.split.fit_origins
    t0 = time.perf_counter()
    seq_o, seq_f, n_hist = with_history(history, origins, F)
    weights = online_weights(seq_f, seq_o, plan.obs_values, opts)[n_hist:]
    forecast = combine(F, weights)
    info = {"rule": opts.rule, "half_life_steps": opts.half_life, "eta": opts.eta, "min_records": opts.min_records,
            "members": names, "duplicates": same, "history_origins": n_hist,
            "seconds": round(time.perf_counter() - t0, 3),
            **weight_summary(weights, names, origins, plan.split.test_start)}
    return {"forecast": forecast, "weights": weights, "info": info, "history": (seq_o, seq_f)}


# --------------------------------------------------------------------------- one fold


@dataclass
class FoldResult:
    """Everything one fold produced. ``forecasts[name]``: ``(n_val + n_test, H)`` at
    ``plan.split.fit_origins`` for every model of :data:`MODEL_NAMES`; ``weights (n, H, M)``: the
    ensemble's weights of :data:`MEMBER_NAMES` at those origins; ``correction``: the hybrid
    network's own forecast before shrinking."""

    plan: Plan
    forecasts: dict[str, np.ndarray]
    weights: np.ndarray
    correction: np.ndarray
    trained: list[TrainedForecast]
    baselines: dict[str, Any]
    hybrid: dict[str, Any]
    ensemble: dict[str, Any]
    decomposer_fitted: dict[str, Any]
    samples: ComponentSamples | None = None
    record: History | None = None  # the ensemble's record up to this fold's last origin (positions, (M, r, H))
    hybrid_weights: np.ndarray | None = None  # (H,) the hybrid's shrink weights
    quantiles: dict[str, np.ndarray] = field(default_factory=dict)  # {name: (n_val + n_test, H, Q)}

    def test_forecasts(self) -> dict[str, np.ndarray]:
        """``{name: (n_test, H)}``: the test rows of :attr:`forecasts`."""
        n_val = self.plan.split.val.size
        return {k: v[n_val:] for k, v in self.forecasts.items()}


def fold_forecasts(plan: Plan, cfg: EvaluateConfig, base: dict[str, Any], by_name: dict[str, TrainedForecast],
                   names: list[str], first_stage: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], HybridForecast]:
    """Every member's forecasts ``(n_val + n_test, H)`` at the fold's validation and test origins."""
    n_val = plan.split.val.size
    crossed = base["harmonic_ar"][:n_val] if cfg.first_stage == "harmonic_ar" else None
    hybrid = hybrid_forecast(by_name[HYBRID_JOB], first_stage, plan, cfg, crossed)

    def summed(prefix: str) -> np.ndarray:
        return np.sum([by_name[prefix + n].fit_forecast() for n in names], axis=0)

    forecasts = {
        **{name: base[name] for name in BASELINE_NAMES},
        "lstm": by_name["lstm"].fit_forecast(),
        "decomp_lstm": summed("plain_"),
        "decomp_feca_lstm": summed("feca_"),
        "hybrid_feca_lstm": hybrid.forecast,
    }
    return {name: forecasts[name] for name in MEMBER_NAMES}, hybrid


def quantile_stage(folds: list[FoldResult], cfg: EvaluateConfig) -> None:
    """Every model's quantiles at every fold's validation and test origins (``fold.quantiles``),
    calibrated on that model's errors already observed at each origin
    (:func:`~wq_pipeline.models.intervals.conformal_quantiles`). A model's record carries over from
    fold to fold, as the ensemble's does."""
    from wq_pipeline.models.intervals import conformal_quantiles

    records: dict[str, History] = {}
    for fold in folds:
        s = fold.plan.split
        opts = cfg.interval_options(step_hours_of(fold.plan))
        o = s.fit_origins
        for name in MODEL_NAMES:
            seq_o, seq_f, n_hist = with_history(records.get(name), o, fold.forecasts[name][None])
            records[name] = (seq_o, seq_f)
            Q = conformal_quantiles(seq_f[0], seq_o, fold.plan.obs_values, opts, first_test=s.test_start)
            fold.quantiles[name] = Q[n_hist:]


def probabilistic_scores(folds: list[FoldResult], observed: list[np.ndarray], cfg: EvaluateConfig) -> dict[str, Any]:
    """Quantile scores of every model on the same test points as the point scores (``observed``:
    each fold's ``(n_test, H)`` common observations): pooled, per fold, with CRPS skill against
    climatology's and persistence's distributions (their forecasts with their own conformal
    quantiles)."""
    from wq_pipeline.models.intervals import INTERVALS
    from wq_pipeline.models.scoring_rules import quantile_scores

    levels = tuple(cfg.quantiles)

    def scores(obs: np.ndarray, qs: dict[str, np.ndarray]) -> dict[str, Any]:
        out = {name: quantile_scores(obs, qs[name], levels, INTERVALS) for name in MODEL_NAMES}
        for name, sc in out.items():
            for ref in ("climatology", "persistence"):
                base = out[ref]["crps"]
                sc[f"crps_skill_{ref}"] = (1.0 - sc["crps"] / base) if base and np.isfinite(base) and base > 0 else None
        return out

    tests = [{n: f.quantiles[n][f.plan.split.val.size:] for n in MODEL_NAMES} for f in folds]
    pooled = scores(np.concatenate(observed), {n: np.concatenate([t[n] for t in tests]) for n in MODEL_NAMES})
    return {"method": cfg.interval_method, "levels": list(levels),
            "crps": "from the quantiles: the distribution whose quantile function interpolates them linearly "
                    "(flat beyond the outermost levels), integrated exactly on a fine grid",
            "models": pooled, "folds": [scores(o, t) for o, t in zip(observed, tests)]}


def challenge_stage(folds: list[FoldResult], observed: list[np.ndarray], cfg: EvaluateConfig) -> dict[str, Any]:
    """The Forecasting Challenge's scores (:mod:`wq_pipeline.evaluation.challenge`) over every fold's test
    origins: the main model against the challenge's climatology and random-walk persistence,
    each computed from the data before that fold's test period."""
    from wq_pipeline.evaluation.challenge import (
        challenge_scores,
        climatology_quantiles,
        doy_climatology,
        random_walk_offsets,
        window_origins,
    )

    levels = tuple(cfg.quantiles)
    parts: dict[str, list[np.ndarray]] = {MAIN_MODEL: [], "challenge_climatology": [], "challenge_persistence": []}
    windows = []
    for f, obs in zip(folds, observed):
        p, s = f.plan, f.plan.split
        H = obs.shape[1]
        origins = s.test
        targets = p.times[np.minimum(origins[:, None] + np.arange(1, H + 1)[None, :], p.times.size - 1).ravel()]
        mean, sd = doy_climatology(p.obs_values, p.times, s.test_start)
        parts[MAIN_MODEL].append(f.quantiles[MAIN_MODEL][s.val.size:])
        parts["challenge_climatology"].append(climatology_quantiles(mean, sd, targets, obs.shape, levels))
        offsets = random_walk_offsets(p.values, p.observed, s.test_start, H, levels)
        parts["challenge_persistence"].append(p.values[origins][:, None, None] + offsets[None])
        windows.append(window_origins(p.times[origins], p.times[s.test_start]))
    return challenge_scores(np.concatenate(observed), {k: np.concatenate(v) for k, v in parts.items()}, levels,
                            np.concatenate(windows), MAIN_MODEL)


def exceedance_stage(folds: list[FoldResult], observed: list[np.ndarray], cfg: EvaluateConfig,
                     thresholds: list[Any]) -> list[dict[str, Any]]:
    """Per threshold on the target: every model's Brier score over the test points of every fold
    (pooled), its skill against climatology, the base rate and the main model's reliability table
    (:func:`~wq_pipeline.models.exceedance.exceedance_scores`)."""
    from wq_pipeline.models.exceedance import exceedance_scores

    if not thresholds:
        return []
    qs = {n: np.concatenate([f.quantiles[n][f.plan.split.val.size:] for f in folds]) for n in MODEL_NAMES}
    obs = np.concatenate(observed)
    return [exceedance_scores(obs, qs, tuple(cfg.quantiles), th, MAIN_MODEL, cfg.alert_level) for th in thresholds]


def add_crossing_columns(table: pd.DataFrame, cfg: EvaluateConfig, thresholds: list[Any]) -> pd.DataFrame:
    """forecasts.csv with one column ``P(<threshold>)`` per threshold: each row's crossing
    probability from its quantiles."""
    from wq_pipeline.models.exceedance import crossing_probability

    if not thresholds:
        return table
    levels = tuple(cfg.quantiles)
    q = table[[f"q{lv:g}" for lv in levels]].to_numpy(dtype=np.float64)
    out = table.copy()
    for th in thresholds:
        out[f"P({th.label})"] = crossing_probability(q, levels, th)
    return out


# --------------------------------------------------------------------------- scoring and outputs


def common_observed(plan: Plan, H: int, forecasts: dict[str, np.ndarray]) -> np.ndarray:
    """``(n_test, H)`` observations at the test targets, NaN where any model has no forecast or
    the target is not a real observation: every model is scored on the same points. A model
    without any forecast (a network skipped for want of samples) is left out of the mask."""
    obs = target_matrix(plan.obs_values, plan.split.test, H)
    common = np.ones(obs.shape, dtype=bool)
    for f in forecasts.values():
        if np.isfinite(f).any():
            common &= np.isfinite(f)
    return np.where(common, obs, np.nan)


def score_models(obs: np.ndarray, forecasts: dict[str, np.ndarray]) -> dict[str, Any]:
    """Every model's scores on ``obs (n, H)`` with skill against persistence and MSE skill
    against the best baseline."""
    scores = {name: score(obs, forecasts[name]) for name in MODEL_NAMES}
    add_skill(scores, reference="persistence")
    add_best_baseline_skill(scores, SKILL_REFERENCES)
    return scores


def forecast_table(plan: Plan, H: int, forecasts: dict[str, np.ndarray],
                   quantiles: dict[str, np.ndarray] | None = None, levels: tuple[float, ...] = ()) -> pd.DataFrame:
    """Long test forecast table ``model, issued_at, target_time, step, forecast, observed, fold``
    (observed: real observations only), then with ``quantiles`` (``{name: (n_test, H, Q)}``) one
    column ``q<level>`` per level (``q0.5`` is the median, beside the point forecast)."""
    s = plan.split
    obs = target_matrix(plan.obs_values, s.test, H)
    iso = np.asarray([t.isoformat() for t in plan.times])
    pos = s.test[:, None] + np.arange(1, H + 1)[None, :]
    frames = []
    for name in MODEL_NAMES:
        frames.append(pd.DataFrame({
            "model": name,
            "issued_at": np.repeat(iso[s.test], H),
            "target_time": iso[pos.ravel()],
            "step": np.tile(np.arange(1, H + 1), s.test.size),
            "forecast": forecasts[name].ravel(),
            "observed": obs.ravel(),
            "fold": s.fold,
            **({f"q{lv:g}": quantiles[name][:, :, k].ravel() for k, lv in enumerate(levels)} if quantiles else {}),
        }))
    return pd.concat(frames, ignore_index=True)


def evaluate_stage(
    plan: Plan, cfg: EvaluateConfig, forecasts: dict[str, np.ndarray]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Score every model's test forecasts ``{name: (n_test, H)}`` on the same test points (real
    observations only) and build the long forecast table."""
    return score_models(common_observed(plan, cfg.horizon, forecasts), forecasts), \
        forecast_table(plan, cfg.horizon, forecasts)


def validation_rmse(fold: FoldResult, H: int) -> dict[str, float | None]:
    """Every model's RMSE at step H over the fold's validation origins (real observations only):
    what a choice between models may be based on (the test period never is). The ensemble's is
    its warm-up period."""
    s = fold.plan.split
    obs = target_matrix(fold.plan.obs_values, s.val, H)[:, -1]
    out = {}
    for name, f in fold.forecasts.items():
        err = f[: s.val.size, -1] - obs
        err = err[np.isfinite(err)]
        out[name] = float(np.sqrt(np.mean(err ** 2))) if err.size else None
    return out


def weights_table(fold: FoldResult) -> pd.DataFrame:
    """The ensemble's weights at step H at every validation and test origin of a fold:
    ``fold, issued_at, period, <one column per member>``."""
    s = fold.plan.split
    o = s.fit_origins
    frame = pd.DataFrame(fold.weights[:, -1, :], columns=list(fold.ensemble["members"]))
    frame.insert(0, "period", np.where(o >= s.test_start, "test", "validation"))
    frame.insert(0, "issued_at", [fold.plan.times[i].isoformat() for i in o])
    frame.insert(0, "fold", s.fold)
    return frame


def write_outputs(out_dir: Path, metrics: dict, tables: dict[str, pd.DataFrame], name: str = "metrics.json") -> None:
    """Write ``metrics`` as JSON (``name``) and one CSV per table atomically: every file is first
    written to a temporary file in ``out_dir``, then all are renamed into place (the JSON last)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    writers: list[tuple[str, Callable[[Path], Any]]] = [
        (fname, lambda p, df=df: df.to_csv(p, index=False, float_format="%.6g")) for fname, df in tables.items()
    ]
    writers.append((name, lambda p: p.write_text(json.dumps(to_jsonable(metrics), indent=2, allow_nan=False))))
    staged: list[tuple[Path, Path]] = []
    try:
        for fname, writer in writers:
            fd, tmp = tempfile.mkstemp(prefix=f".{fname}.", dir=out_dir)
            os.close(fd)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be shared
            writer(Path(tmp))
            staged.append((Path(tmp), out_dir / fname))
        for tmp, final in staged:
            os.replace(tmp, final)
    finally:
        for tmp, _ in staged:
            if tmp.exists():
                tmp.unlink()


# --------------------------------------------------------------------------- orchestration


@dataclass
class EvaluationResult:
    metrics: dict[str, Any]
    forecasts: pd.DataFrame
    stationarity: Stationarity
    station: StationSeries | None = None
    plan: Plan | None = None  # the last fold's
    trained: list[TrainedForecast] = field(default_factory=list)  # the last fold's networks
    samples: ComponentSamples | None = None  # the last fold's stepwise decomposition (for ablations)
    folds: list[FoldResult] = field(default_factory=list)


def decomposition_cache_key(plan: Plan, cfg: EvaluateConfig, decomposer: Decomposer) -> str:
    """Content hash of the decomposition's inputs and parameters."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(plan.values).tobytes())
    h.update(np.ascontiguousarray(plan.decompose_at).tobytes())
    h.update(json.dumps({"protocol": cfg.protocol, "L": cfg.decomp_window, "W": cfg.window,
                         "params": decomposer.params(), "version": __version__}, sort_keys=True).encode())
    return "decompose-" + h.hexdigest()


def preflight(cfg: EvaluateConfig) -> None:
    """Check everything a run can check up front (options, file, columns, timestamps, values,
    series length, folds) so that bad input fails fast with :class:`InputError` and writes nothing."""
    if cfg.out.exists() and not cfg.out.is_dir():
        raise InputError(f"--out {cfg.out}: exists and is not a folder")
    make_decomposer(cfg.method, cfg.modes, cfg.seed, **cfg.decomposer_params())
    station = load_stage(cfg)
    if cfg.challenge and pd.Timedelta(station.freq) != pd.Timedelta(days=1):
        raise InputError(f"{station.path.name}: --challenge scores daily forecasts the Forecasting Challenge's way; "
                         f"'{cfg.target}' is on a {station.freq} grid (pass --freq 1D)")
    plan_folds(station, cfg)


def _fold_decompositions(plans: list[Plan], cfg: EvaluateConfig, decomposers: list[Decomposer],
                         timed: Callable[..., Any]) -> list[ComponentSamples]:
    """Each fold's decomposition. A trailing-window decomposition does not depend on the split,
    so one pass over every fold's positions serves all folds; only a decomposer fitted per fold
    (CEEMDAN-SE-VMD's groups) decomposes each fold on its own."""
    if hasattr(decomposers[0], "fit") or len(plans) == 1:
        return [timed("decompose", decompose_stage, p, cfg, d, cache_key=decomposition_cache_key(p, cfg, d))
                for p, d in zip(plans, decomposers)]
    union = replace(plans[-1], decompose_at=np.unique(np.concatenate([p.decompose_at for p in plans])))
    shared = timed("decompose", decompose_stage, union, cfg, decomposers[-1],
                   cache_key=decomposition_cache_key(union, cfg, decomposers[-1]))
    return [shared] * len(plans)


def _fold_jobs(plans: list[Plan], cfg: EvaluateConfig, samples: list[ComponentSamples], bases: list[dict[str, Any]],
               names: list[str]) -> tuple[list[list[TrainJob]], list[dict]]:
    """Every fold's networks but the plain LSTM (the hybrid, then the components), and its
    first-stage forecasts."""
    jobs, first_stages = [], []
    for plan, smp, base in zip(plans, samples, bases):
        hybrid, f1 = hybrid_job(plan, cfg, smp, base["info"].get("harmonic_ar_params"))
        jobs.append([hybrid, *component_jobs(smp, plan, cfg, names)])
        first_stages.append(f1)
    return jobs, first_stages


def _train_folds(plans: list[Plan], cfg: EvaluateConfig, samples: list[ComponentSamples],
                 bases: list[dict[str, Any]], names: list[str], runner: StageRunner, workers: int,
                 early: list[Any] | None, firsts: list[TrainJob],
                 trainer: Any = None, series_index: int = 0) -> tuple[list[list[TrainedForecast]], list[dict]]:
    """Train every fold's networks (all folds' jobs share one pool); returns each fold's trained
    networks (plain LSTM first) and first-stage forecasts. With a ``trainer``
    (:class:`~wq_pipeline.evaluation.global_networks.GlobalTrainer`) the jobs go to it instead, to be trained
    once with every other series' jobs."""
    per_fold, first_stages = _fold_jobs(plans, cfg, samples, bases, names)
    if trainer is not None:
        return trainer.train(series_index, [[f, *fold] for f, fold in zip(firsts, per_fold)]), first_stages
    jobs = [job for fold in per_fold for job in fold]
    labels = [job.name if len(plans) == 1 else f"{job.name}-fold{k}"
              for k, fold in enumerate(per_fold, start=1) for job in fold]
    counts = [len(fold) for fold in per_fold]
    total = len(jobs) + len(firsts)
    bar = _progress_bar(total, f"Training {total} networks")
    try:
        rest = runner.map("train", train_stage, [(job, cfg, workers) for job in jobs], labels, workers=workers,
                          progress=bar.update)
        lstms = [e.result() for e in early] if early is not None else [train_stage(f, cfg, workers) for f in firsts]
        bar.update(len(firsts))
    finally:
        bar.close()
    out, i = [], 0
    for lstm, n in zip(lstms, counts):
        out.append([lstm, *rest[i:i + n]])
        i += n
    return out, first_stages


def fit_folds(plans: list[Plan], cfg: EvaluateConfig, runner: StageRunner, timed: Callable[..., Any],
              timings: dict[str, float], stationarity: bool = True, trainer: Any = None, series_index: int = 0
              ) -> tuple[list[FoldResult], list[Decomposer], Stationarity | None, int]:
    """Fit every model of every fold on its own past and forecast its validation and test
    origins (a fold without test origins is what ``wq train`` fits). Returns the folds, their
    decomposers, the stationarity tests of the last fold (when asked) and the training workers.
    ``trainer``: train the networks with every other series of the run (global networks)."""
    decomposers = [timed("fit_decomposer", fit_decomposer,
                         make_decomposer(cfg.method, cfg.modes, cfg.seed, **cfg.decomposer_params()), p, cfg)
                   for p in plans]
    names = decomposers[-1].names
    firsts = [lstm_job(p, cfg) for p in plans]
    per_fold = 2 + 2 * len(names)
    workers = workers_for(cfg, sum(f.X_train.shape[0] for f in firsts) * per_fold)
    t0 = time.perf_counter()
    # With a training pool the plain LSTMs need no decomposition: they train on one core while
    # this process runs the single-threaded stages below, instead of leaving that core idle.
    early = ([runner.submit("train", f.name if len(plans) == 1 else f"{f.name}-fold{k}", train_stage, f, cfg, workers)
              for k, f in enumerate(firsts, start=1)] if workers > 1 and trainer is None else None)
    tests = timed("stationarity", stationarity_stage, plans[-1], decomposers[-1]) if stationarity else None
    samples = _fold_decompositions(plans, cfg, decomposers, timed)
    bases = [timed("baselines", baselines_stage, p, cfg) for p in plans]
    trained, first_stages = _train_folds(plans, cfg, samples, bases, names, runner, workers, early, firsts,
                                         trainer, series_index)
    timings["train"] = round(time.perf_counter() - t0, 3)

    folds: list[FoldResult] = []
    history = None  # the ensemble's record carries over from fold to fold, as across retrainings
    for plan, base, nets, f1, dec, smp in zip(plans, bases, trained, first_stages, decomposers, samples):
        members, hybrid = fold_forecasts(plan, cfg, base, {t.name: t for t in nets}, names, f1)
        ens = timed("ensemble", ensemble_stage, plan, cfg, members, history)
        history = ens["history"]
        folds.append(FoldResult(plan=plan, forecasts={**members, MAIN_MODEL: ens["forecast"]}, weights=ens["weights"],
                                correction=hybrid.correction, trained=nets, baselines=base["info"], hybrid=hybrid.info,
                                ensemble=ens["info"], decomposer_fitted=learnt_parameters(dec), samples=smp,
                                record=history, hybrid_weights=hybrid.weights))
    return folds, decomposers, tests, workers


def run_evaluation(cfg: EvaluateConfig, runner: StageRunner | None = None, trainer: Any = None,
                   series_index: int = 0) -> EvaluationResult:
    """Run the whole evaluation (every fold) and write its outputs to ``cfg.out``.

    Nothing is written unless every stage succeeds. ``trainer``, ``series_index``: this series'
    networks are trained with every other series of a global run
    (:mod:`wq_pipeline.evaluation.global_networks`).
    """
    runner = runner or StageRunner()
    timings: dict[str, float] = {}

    def timed(name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = runner.run(name, fn, *args, **kwargs)
        timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - t0, 3)
        return out

    t_start = time.perf_counter()
    station = timed("load_qc", load_stage, cfg)
    plans = timed("plan", plan_folds, station, cfg)
    folds, decomposers, stationarity, workers = fit_folds(plans, cfg, runner, timed, timings, trainer=trainer,
                                                          series_index=series_index)
    names = decomposers[-1].names
    timed("quantiles", quantile_stage, folds, cfg)
    t1 = time.perf_counter()
    H = cfg.horizon
    tests = [f.test_forecasts() for f in folds]
    observed = [common_observed(f.plan, H, t) for f, t in zip(folds, tests)]
    fold_scores = [score_models(o, t) for o, t in zip(observed, tests)]
    pooled = {name: np.concatenate([t[name] for t in tests]) for name in MODEL_NAMES}
    scores = score_models(np.concatenate(observed), pooled)
    levels = tuple(cfg.quantiles)
    table = pd.concat([forecast_table(f.plan, H, t, {n: q[f.plan.split.val.size:] for n, q in f.quantiles.items()},
                                      levels) for f, t in zip(folds, tests)], ignore_index=True)
    probabilistic = probabilistic_scores(folds, observed, cfg)
    challenge = challenge_stage(folds, observed, cfg) if cfg.challenge else None
    thresholds = target_thresholds(station, cfg)
    exceedance = exceedance_stage(folds, observed, cfg, thresholds)
    table = add_crossing_columns(table, cfg, thresholds)
    timings["evaluate"] = round(time.perf_counter() - t1, 3)
    timings["total"] = round(time.perf_counter() - t_start, 3)

    last = folds[-1]
    s = last.plan.split
    test_w = np.concatenate([f.weights[f.plan.split.val.size:] for f in folds])
    members = list(MEMBER_NAMES)
    metrics = {
        "dataset": str(cfg.data),
        "dataset_sha256": file_sha256(cfg.data),
        "target": cfg.target,
        "unit": station.unit,
        "site": station.site,
        "freq": station.freq,
        "protocol": cfg.protocol,
        "protocol_label": LEAKY_LABEL if cfg.protocol == "global" else "stepwise (honest: each forecast uses data up to its origin only)",
        "leaky": cfg.protocol == "global",
        "method": cfg.method,
        "modes": cfg.modes,
        "components": names,
        "decomposer_params": decomposers[-1].params(),
        "decomposer_fitted": last.decomposer_fitted,
        "covariates": last.plan.covariates.names,
        "covariate_fill": last.plan.covariates.info,
        "level_free": cfg.level_free,
        "hybrid": last.hybrid,
        "ensemble": {**{k: last.ensemble[k] for k in ("rule", "half_life_steps", "eta", "min_records", "members")},
                     "seconds": round(sum(f.ensemble["seconds"] for f in folds), 3),
                     **weight_summary(test_w, members, np.zeros(test_w.shape[0], dtype=np.int64), 0)},
        "window": cfg.window,
        "decomp_window": cfg.decomp_window,
        "horizon": H,
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "n_folds": len(folds),
        "n_train": int(s.train.size),
        "n_val": int(s.val.size),
        "n_test": int(sum(f.plan.split.test.size for f in folds)),
        "periods": {
            "train_start": station.values.index[0].isoformat(),
            "val_start": station.values.index[folds[0].plan.split.val_start].isoformat(),
            "test_start": station.values.index[folds[0].plan.split.test_start].isoformat(),
            "end": station.values.index[-1].isoformat(),
        },
        "folds": [fold_metrics(f, sc) for f, sc in zip(folds, fold_scores)],
        "qc": station.summary,
        "baselines": last.baselines,
        "models": scores,
        "validation_rmse": validation_rmse(last, H),
        "probabilistic": probabilistic,
        "exceedance": exceedance,
        **({"challenge": challenge} if challenge is not None else {}),
        **({"global_networks": trainer.info} if trainer is not None else {}),
        "main_model": MAIN_MODEL,
        "training": {t.name: t.training for t in last.trained},
        "training_workers": workers,
        "timings_s": timings,
        "command": cfg.command,
        "versions": library_versions(),
    }
    write_outputs(cfg.out, metrics, {
        "forecasts.csv": table, "weights.csv": pd.concat([weights_table(f) for f in folds], ignore_index=True),
        "stationarity.csv": stationarity.table, "series.csv": series_frame(station),
        "components.csv": stationarity.components,
    })
    return EvaluationResult(metrics=metrics, forecasts=table, stationarity=stationarity, station=station,
                            plan=last.plan, trained=last.trained, samples=last.samples, folds=folds)


def fold_metrics(fold: FoldResult, scores: dict[str, Any]) -> dict[str, Any]:
    """One fold's entry in ``metrics.json['folds']``: its periods, sizes, scores and every choice
    made on its training and validation data."""
    s, t = fold.plan.split, fold.plan.times
    return {
        "fold": s.fold,
        "periods": {"train_start": t[0].isoformat(), "val_start": t[s.val_start].isoformat(),
                    "test_start": t[s.test_start].isoformat(), "test_end": t[min(s.test_end or t.size, t.size) - 1].isoformat()},
        "n_train": int(s.train.size), "n_val": int(s.val.size), "n_test": int(s.test.size),
        "validation_rmse": validation_rmse(fold, fold.forecasts[MAIN_MODEL].shape[1]),
        "models": {name: {k: sc.get(k) for k in ("rmse", "mae", "nse", "kge", "skill", "mse_skill_best_baseline",
                                                 "best_baseline", "n_points")} | {"per_step_rmse": sc["per_step"]["rmse"]}
                   for name, sc in scores.items()},
        "baselines": fold.baselines,
        "hybrid": fold.hybrid,
        "ensemble": fold.ensemble,
        "decomposer_fitted": fold.decomposer_fitted,
        "covariate_fill": fold.plan.covariates.info,
        "training": {tr.name: {k: tr.training.get(k) for k in ("epochs_run", "best_epoch", "n_train", "n_val", "scaler")}
                     for tr in fold.trained},
    }


def compare_protocols(stepwise: dict[str, Any], leaky: dict[str, Any]) -> dict[str, Any]:
    """Per model, NSE and RMSE at step H under the honest and the leaky protocol, and how much
    apparent skill the leak adds (``nse_leak = NSE_global - NSE_stepwise``)."""
    models = {}
    for name in MODEL_NAMES:
        a, b = stepwise["models"][name], leaky["models"][name]
        models[name] = {
            "nse_stepwise": a["nse"], "nse_global": b["nse"], "nse_leak": _diff(b["nse"], a["nse"]),
            "rmse_stepwise": a["rmse"], "rmse_global": b["rmse"], "rmse_leak": _diff(a["rmse"], b["rmse"]),
        }
    return {"dataset": stepwise["dataset"], "target": stepwise["target"], "site": stepwise["site"],
            "horizon": stepwise["horizon"], "method": stepwise["method"], "n_test": stepwise["n_test"],
            "models": models}


def _diff(a: Any, b: Any) -> float | None:
    return None if a is None or b is None else float(a) - float(b)


def metrics_table(metrics: dict[str, Any]) -> str:
    """Plain-text table of every model at step H, for the terminal."""
    rows = []
    head = f"{'model':<30}{'RMSE':>9}{'MAE':>9}{'MAPE%':>9}{'R2':>8}{'NSE':>8}{'KGE':>8}{'skill':>8}"
    rows.append(head)
    rows.append("-" * len(head))

    def f(v: Any, w: int, p: int) -> str:
        return f"{v:>{w}.{p}f}" if isinstance(v, (int, float)) and np.isfinite(v) else f"{'n/a':>{w}}"

    for name in MODEL_NAMES:
        m = metrics["models"][name]
        rows.append(f"{name:<30}{f(m['rmse'], 9, 4)}{f(m['mae'], 9, 4)}{f(m['mape'], 9, 2)}{f(m['r2'], 8, 3)}"
                    f"{f(m['nse'], 8, 3)}{f(m['kge'], 8, 3)}{f(m['skill'], 8, 3)}")
    unit = f" {metrics['unit']}" if metrics.get("unit") else ""
    title = (f"{metrics['target']}{unit} at step H={metrics['horizon']} ({metrics['freq']}), "
             f"{metrics['models']['persistence']['n_points']} test points, protocol: {metrics['protocol_label']}")
    return title + "\n" + "\n".join(rows)
