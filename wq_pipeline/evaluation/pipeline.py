"""The evaluation of one series, as the README's "How a run works" tells it: the orchestration.

:func:`run_evaluation` loads and quality-controls the station (:mod:`wq_pipeline.data`), plans
its folds (:mod:`.folds`), and for every fold fits the decomposer on training windows and
decomposes every origin from its own trailing window (:mod:`.decomposition`), fits the
baselines, trains the networks (:mod:`.network_stage`), weighs every member online into the
main model, the ensemble (:mod:`wq_pipeline.models.ensemble`), calibrates quantiles and scores
every model on the same points (:mod:`.scoring`), then writes the outputs (:mod:`.outputs`).

It takes a :class:`StageRunner` so that the Prefect flow in ``flows/evaluate.py`` can run every
stage as a task (with caching of decompositions) while the library itself never imports Prefect.
Each fold trains every model on the data before its own validation period; scores are per fold
and pooled over the folds. The stages' names are re-exported here.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Callable

import numpy as np
import pandas as pd

from wq_pipeline.config import MAIN_MODEL, EvaluateConfig
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
from wq_pipeline.data.station import load_station
from wq_pipeline.common import file_sha256, library_versions
from wq_pipeline.models.network_jobs import TrainedForecast, TrainJob
from wq_pipeline.models.protocol import (
    LEAKY_LABEL,
    ComponentSamples,
)
from wq_pipeline.data.qc import StationSeries
from wq_pipeline.evaluation.progress import (  # noqa: F401  (the stages it orchestrates)
    _progress_bar,
)
from wq_pipeline.evaluation.folds import (  # noqa: F401  (the stages it orchestrates)
    BASELINE_NAMES,
    NETWORK_MODELS,
    MEMBER_NAMES,
    MODEL_NAMES,
    HYBRID_JOB,
    SKILL_REFERENCES,
    MIN_ORIGINS,
    Plan,
    resolve_test_start,
    _minimum_origins,
    plan_folds,
    target_thresholds,
    _period,
    plan_stage,
    positions_to_decompose,
    step_hours_of,
    Stationarity,
    FoldResult,
    EvaluationResult,
    HybridForecast,
)
from wq_pipeline.evaluation.decomposition import (  # noqa: F401  (the stages it orchestrates)
    FIT_WINDOWS,
    fit_decomposer,
    fit_on_origins,
    learnt_parameters,
    stationarity_stage,
    decompose_stage,
    decomposition_cache_key,
)
from wq_pipeline.evaluation.network_stage import (  # noqa: F401  (the stages it orchestrates)
    POOL_MIN_SAMPLE_EPOCHS,
    workers_for,
    train_stage,
    training_jobs,
    lstm_job,
    observed_component_targets,
    component_jobs,
    hybrid_job,
    hybrid_forecast,
    _rmse_last,
)
from wq_pipeline.evaluation.outputs import (  # noqa: F401  (the stages it orchestrates)
    series_frame,
    forecast_table,
    weights_table,
    write_outputs,
    metrics_table,
)
from wq_pipeline.evaluation.scoring import (  # noqa: F401  (the stages it orchestrates)
    quantile_stage,
    probabilistic_scores,
    challenge_stage,
    exceedance_stage,
    add_crossing_columns,
    common_observed,
    score_models,
    evaluate_stage,
    validation_rmse,
    fold_metrics,
    compare_protocols,
    _diff,
)


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


# --------------------------------------------------------------------------- stages


def load_stage(cfg: EvaluateConfig) -> StationSeries:
    """Load, quality-control and regularise the target series."""
    return load_station(
        cfg.data, cfg.target, time_col=cfg.time_col, site=cfg.site, site_col=cfg.site_col, freq=cfg.freq, qc=cfg.qc,
        read=cfg.read_options(),
    )


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


# --------------------------------------------------------------------------- scoring and outputs


# --------------------------------------------------------------------------- orchestration


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
        periods = [(p.times[p.split.test_start - 1], p.times[p.split.test_start] if p.split.test_start < p.times.size
                    else None) for p in plans]
        return trainer.train(series_index, [[f, *fold] for f, fold in zip(firsts, per_fold)], periods), first_stages
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


