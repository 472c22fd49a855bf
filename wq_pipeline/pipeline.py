"""The evaluation pipeline as plain stage functions.

:func:`run_evaluation` chains the stages. It takes a :class:`StageRunner` so that the Prefect
flow in ``flows/evaluate.py`` can run every stage as a task (with caching of decompositions)
while the library itself never imports Prefect.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from . import __version__
from .config import EvaluateConfig
from .covariates import Covariates, build_covariates, covariate_windows, resolve_covariates, with_covariates
from .decompose import Decomposer, make_decomposer
from .errors import InputError
from .hybrid import calendar_channels, first_stage_forecast, hybrid_inputs, shrink_weights
from .load import load_station
from .metrics import add_best_baseline_skill, add_skill, score, to_jsonable
from .protocol import (
    LEAKY_LABEL,
    ComponentSamples,
    Split,
    chronological_split,
    component_targets,
    eligible_origins,
    global_decompose,
    raw_windows,
    select_rows,
    stepwise_decompose,
    target_matrix,
    window_ok,
)
from .qc import StationSeries
from .scaling import Scaler
from .stationarity import stationarity_table
from .workers import resolve_jobs, training_pool

BASELINE_NAMES = ("persistence", "seasonal_naive", "level_adjusted_seasonal_naive", "climatology", "arima",
                  "harmonic_ar")
MODEL_NAMES = (*BASELINE_NAMES, "lstm", "decomp_lstm", "decomp_feca_lstm", "hybrid_feca_lstm")
# The honest default (:mod:`wq_pipeline.hybrid`): at 6 h it beats the best baseline on Sapelo and
# Apalachicola DO and the per-component decomposition model everywhere (BENCHMARKS.md, "Skill").
MAIN_MODEL = "hybrid_feca_lstm"
HYBRID_JOB = "hybrid"
# What "the best baseline" is chosen from: every statistical baseline and the plain LSTM.
SKILL_REFERENCES = (*BASELINE_NAMES, "lstm")
# XLA (jit_compile) for training: measured on the demo's networks on 2 CPU cores it made no LSTM
# faster, FECA networks 40% slower (55 s vs 39 s), and cost each worker 300 MB: off unless set.
USE_XLA = False
POOL_MIN_SAMPLE_EPOCHS = 200_000

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
        cfg.data, cfg.target, time_col=cfg.time_col, site=cfg.site, site_col=cfg.site_col, freq=cfg.freq, qc=cfg.qc
    )


@dataclass
class Plan:
    """Where forecasts are issued and which windows must be decomposed."""

    values: np.ndarray  # (N,) target after QC, NaN in long gaps
    observed: np.ndarray  # (N,) bool, real observations
    times: pd.DatetimeIndex
    split: Split
    decompose_at: np.ndarray  # sorted positions whose trailing window is decomposed
    covariates: Covariates  # (N, K) causal extra input channels, K = 0 without --covariates


def plan_stage(station: StationSeries, cfg: EvaluateConfig) -> Plan:
    """Choose eligible origins, split them chronologically and list the windows to decompose.

    Raises :class:`InputError` when the series is too short for the window, decomposition
    window and horizon.
    """
    resolve_covariates(station, cfg.covariates)  # names checked before lengths: the likelier mistake
    values = station.values.to_numpy(dtype=float)
    observed = station.observed.to_numpy(dtype=bool)
    lookback = max(cfg.window, cfg.decomp_window)
    ok = eligible_origins(values, observed, lookback, cfg.horizon)
    split = chronological_split(values.size, ok, cfg.horizon, cfg.test_fraction, cfg.val_fraction)
    need = f"window {cfg.window}, decomposition window {cfg.decomp_window} and horizon {cfg.horizon}"
    for name, part, minimum in (("training", split.train, 50), ("validation", split.val, 10), ("test", split.test, 5)):
        if part.size < minimum:
            raise InputError(
                f"{cfg.data}: column '{cfg.target}' has {int(np.isfinite(values).sum())} usable points on a "
                f"{values.size}-step {station.freq} grid (longest gap {station.summary.get('longest_gap_steps')} steps); "
                f"the {name} period yields only {part.size} forecast origins with {need} "
                f"(at least {minimum} needed). Use a longer file or smaller --window/--decomp-window/--horizon."
            )
    at = positions_to_decompose(values, np.concatenate([split.train, split.val]), split.test, cfg.horizon,
                                cfg.decomp_window)
    cov = build_covariates(station, cfg.covariates, split.val_start, cfg.qc.max_gap)
    return Plan(values=values, observed=observed, times=station.values.index, split=split, decompose_at=at,
                covariates=cov)


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


@dataclass
class TrainedForecast:
    """Test-period forecasts of one trained network, ``(n_test, H)`` in target units, with the
    network itself (Keras models pickle, so they come back from training workers too)."""

    name: str
    forecast: np.ndarray
    training: dict[str, Any] = field(default_factory=dict)
    model: Any = None
    scaler: Scaler | None = None
    val_forecast: np.ndarray | None = None  # (n_val, H) when the job asked for it


@dataclass
class TrainJob:
    """One network to train: inputs ``(n, W, C)`` and targets ``(n, H)`` in target units."""

    name: str
    feca: bool
    X_train: np.ndarray
    Y_train: np.ndarray
    X_val: np.ndarray
    Y_val: np.ndarray
    X_test: np.ndarray
    own_target_scale: bool = False  # targets are not channel 0's quantity (a first stage's error)
    predict_val: bool = False  # also forecast X_val (for fitting a recombination on validation)


def usable_rows(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Bool ``(n,)``: samples whose inputs ``(n, W, C)`` and targets ``(n, H)`` are all finite."""
    return np.isfinite(X).all(axis=(1, 2)) & np.isfinite(Y).all(axis=1)


def fit_network(job: TrainJob, cfg: EvaluateConfig, reuse: bool = False) -> tuple[Any, Scaler, dict[str, Any]]:
    """Scale (statistics from the training samples only) and train one network with early
    stopping on the validation samples. Samples with missing values are dropped.

    Returns ``(keras model, scaler, training info)``; the model maps scaled ``(n, W, C)`` windows
    to scaled ``(n, H)`` forecasts. ``reuse``: train this process's cached compiled network of the
    same architecture (:mod:`wq_pipeline.models.reuse`); the returned model is then overwritten
    by the next ``reuse`` training, so take it out first."""
    from .models.lstm import build_forecaster
    from .models.reuse import reusable_forecaster
    from .models.train import fit_forecaster

    keep_tr, keep_va = usable_rows(job.X_train, job.Y_train), usable_rows(job.X_val, job.Y_val)
    X_tr, Y_tr = job.X_train[keep_tr], job.Y_train[keep_tr]
    X_va, Y_va = job.X_val[keep_va], job.Y_val[keep_va]
    scaler = Scaler.fit(X_tr[..., :1], extra=X_tr[..., 1:] if X_tr.shape[2] > 1 else None,
                        target=Y_tr if job.own_target_scale else None)
    model = (reusable_forecaster if reuse else build_forecaster)(
        X_tr.shape[1], X_tr.shape[2], Y_tr.shape[1], units=cfg.units, feca=job.feca, seed=cfg.seed,
        name=job.name, jit_compile=USE_XLA,
    )
    result = fit_forecaster(
        model,
        scaler.transform_inputs(X_tr).astype("float32"), scaler.transform_target(Y_tr).astype("float32"),
        scaler.transform_inputs(X_va).astype("float32"), scaler.transform_target(Y_va).astype("float32"),
        epochs=cfg.epochs, batch_size=cfg.batch_size, patience=cfg.patience, seed=cfg.seed,
    )
    info = {
        "feca": job.feca, "channels": int(X_tr.shape[2]), "n_train": int(X_tr.shape[0]), "n_val": int(X_va.shape[0]),
        "epochs_run": result.epochs_run, "best_epoch": result.best_epoch, "seconds": round(result.seconds, 3),
        "loss": result.history.get("loss", []), "val_loss": result.history.get("val_loss", []),
        "scaler": {"mean": scaler.mean, "std": scaler.std, "extra": [list(e) for e in scaler.extra],
                   "target": list(scaler.target) if scaler.target else None},
    }
    return model, scaler, info


def network_forecast(model: Any, scaler: Scaler, X: np.ndarray) -> np.ndarray:
    """Forecast ``(n, H)`` in target units from inputs ``(n, W, C)`` in target units."""
    from .models.train import predict

    return scaler.inverse(predict(model, scaler.transform_inputs(X).astype("float32")))


def fit_predict(job: TrainJob, cfg: EvaluateConfig, reuse: bool = False) -> TrainedForecast:
    """:func:`fit_network`, then forecast the test inputs."""
    model, scaler, info = fit_network(job, cfg, reuse)
    pred = network_forecast(model, scaler, job.X_test)
    val = network_forecast(model, scaler, job.X_val) if job.predict_val else None
    return TrainedForecast(name=job.name, forecast=pred, training=info, model=model, scaler=scaler, val_forecast=val)


def fit_predict_portable(job: TrainJob, cfg: EvaluateConfig) -> TrainedForecast:
    """:func:`fit_predict` for a training worker: the worker's compiled network of the job's
    architecture is reset and trained (no graph rebuilt per job), and the network comes back as
    its ``.keras`` bytes (:class:`~wq_pipeline.models.serialized.SerializedNetwork`), so the
    receiving process needs no TensorFlow."""
    from .models.serialized import SerializedNetwork

    out = fit_predict(job, cfg, reuse=True)
    out.model = SerializedNetwork.from_model(out.model)
    return out


def training_workers(cfg: EvaluateConfig, jobs: list[TrainJob]) -> int:
    """Worker processes for training ``jobs``: see :func:`workers_for`."""
    return workers_for(cfg, sum(job.X_train.shape[0] for job in jobs))


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
    decomposition)."""
    s, y, H, W, cov = plan.split, plan.values, cfg.horizon, cfg.window, plan.covariates
    X = {part: with_covariates(raw_windows(y, o, W), cov, o) for part, o in (("tr", s.train), ("va", s.val), ("te", s.test))}
    return TrainJob("lstm", False, X["tr"], target_matrix(y, s.train, H), X["va"], target_matrix(y, s.val, H), X["te"])


def component_jobs(samples: ComponentSamples, plan: Plan, cfg: EvaluateConfig, names: list[str]) -> list[TrainJob]:
    """One network per component with FECA, then one without (the ablation). Component ``k``'s
    inputs are its last W points, then the covariates' last W values; its targets are its next H
    end points (see :mod:`wq_pipeline.protocol`)."""
    s, H, cov = plan.split, cfg.horizon, plan.covariates
    jobs: list[TrainJob] = []
    X = {part: select_rows(samples, o) for part, o in (("tr", s.train), ("va", s.val), ("te", s.test))}
    C = {part: covariate_windows(cov, o, cfg.window) for part, o in (("tr", s.train), ("va", s.val), ("te", s.test))}
    Ytr, Yva = component_targets(samples, s.train, H), component_targets(samples, s.val, H)

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
    """The hybrid network's job (:mod:`wq_pipeline.hybrid`): inputs ``(n, W, C)`` from positions
    ``<= t`` and targets ``(n, H)`` = series minus the first stage's forecast. Also returns the
    first-stage forecasts ``{"train"|"val"|"test": (n, H)}``."""
    opts = cfg.hybrid_options()
    s, y, H, W = plan.split, plan.values, cfg.horizon, cfg.window
    cal = calendar_channels(plan.times) if opts.calendar else None
    parts = {"train": s.train, "val": s.val, "test": s.test}
    f1 = {k: first_stage_forecast(y, o, H, step_hours_of(plan), opts.first_stage, first_stage_params)
          for k, o in parts.items()}
    X = {k: hybrid_inputs(y, o, W, opts, samples, plan.covariates, cal) for k, o in parts.items()}
    residual = opts.first_stage != "none"
    job = TrainJob(HYBRID_JOB, opts.feca, X["train"], target_matrix(y, s.train, H) - f1["train"], X["val"],
                   target_matrix(y, s.val, H) - f1["val"], X["test"], own_target_scale=residual, predict_val=True)
    return job, f1


def hybrid_forecast(trained: TrainedForecast, first_stage: dict[str, np.ndarray], plan: Plan,
                    cfg: EvaluateConfig) -> tuple[np.ndarray, dict[str, Any]]:
    """Test forecasts ``(n_test, H)``: first stage + per-step weight x network correction, the
    weights fitted on the validation origins (all 1 without ``shrink`` or a first stage). The info
    holds the weights and the validation RMSE at step H (what the switches' defaults were chosen on)."""
    opts = cfg.hybrid_options()
    H = cfg.horizon
    val_obs = target_matrix(plan.values, plan.split.val, H)
    weights = np.ones(H)
    if trained.val_forecast is not None and opts.shrink and opts.first_stage != "none":
        weights = shrink_weights(val_obs - first_stage["val"], trained.val_forecast)
    info: dict[str, Any] = {"options": opts.label(), "shrink_weights": [round(float(w), 4) for w in weights],
                            "channels": trained.training.get("channels")}
    if trained.val_forecast is not None:
        info["validation_rmse"] = _rmse_last(first_stage["val"] + weights[None, :] * trained.val_forecast, val_obs)
        info["validation_rmse_first_stage"] = _rmse_last(first_stage["val"], val_obs)
    return first_stage["test"] + weights[None, :] * trained.forecast, info


def _rmse_last(forecast: np.ndarray, observed: np.ndarray) -> float | None:
    """RMSE at the last step of ``(n, H)`` arrays over finite pairs (None when there are none)."""
    err = (forecast - observed)[:, -1]
    err = err[np.isfinite(err)]
    return float(np.sqrt(np.mean(err ** 2))) if err.size else None


def baselines_stage(plan: Plan, cfg: EvaluateConfig) -> dict[str, Any]:
    """Every baseline of :data:`BASELINE_NAMES` at the test origins, each tuned on training and
    validation data only (:mod:`wq_pipeline.baselines.suite`; ARIMA fitted on the training series)."""
    from .baselines.arima import arima_forecast, fit_arima, select_order
    from .baselines.suite import statistical_baselines

    y, s, H = plan.values, plan.split, cfg.horizon
    stats = statistical_baselines(y, s.val_start, s.val, s.test, H, step_hours_of(plan), cfg.seasonal_period,
                                  max_lag=max(2, min(cfg.window * 2, s.val_start // 4)))
    t0 = time.perf_counter()
    order = select_order(y[: s.val_start])
    arima = arima_forecast(fit_arima(y[: s.val_start], order), y, s.test, H)
    return {**stats.forecasts, "arima": arima,
            "info": {**stats.info, "arima_order": list(map(int, order)),
                     "arima_seconds": round(time.perf_counter() - t0, 3)}}


def recombine(parts: list[TrainedForecast]) -> np.ndarray:
    """Sum component forecasts ``(n, H)`` into the forecast of the series."""
    return np.sum([p.forecast for p in parts], axis=0)


# --------------------------------------------------------------------------- scoring and outputs


def evaluate_stage(
    plan: Plan, cfg: EvaluateConfig, forecasts: dict[str, np.ndarray]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Score every model on the same test points (real observations only) and build the
    long forecast table ``model, issued_at, target_time, step, forecast, observed``."""
    s, H = plan.split, cfg.horizon
    obs_values = np.where(plan.observed, plan.values, np.nan)
    obs = target_matrix(obs_values, s.test, H)
    # score only where every model produced a forecast
    common = np.ones(obs.shape, dtype=bool)
    for f in forecasts.values():
        common &= np.isfinite(f)
    obs_scored = np.where(common, obs, np.nan)
    scores = {name: score(obs_scored, forecasts[name]) for name in MODEL_NAMES}
    add_skill(scores, reference="persistence")
    add_best_baseline_skill(scores, SKILL_REFERENCES)

    times = plan.times
    iso = np.asarray([t.isoformat() for t in times])
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
        }))
    return scores, pd.concat(frames, ignore_index=True)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
    plan: Plan | None = None
    trained: list[TrainedForecast] = field(default_factory=list)
    samples: ComponentSamples | None = None  # the stepwise decomposition (for ablations that reuse it)


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
    series length) so that bad input fails fast with :class:`InputError` and writes nothing."""
    if cfg.out.exists() and not cfg.out.is_dir():
        raise InputError(f"--out {cfg.out}: exists and is not a folder")
    make_decomposer(cfg.method, cfg.modes, cfg.seed, **cfg.decomposer_params())
    plan_stage(load_stage(cfg), cfg)


def run_evaluation(cfg: EvaluateConfig, runner: StageRunner | None = None) -> EvaluationResult:
    """Run the whole evaluation and write its outputs to ``cfg.out``.

    Nothing is written unless every stage succeeds.
    """
    runner = runner or StageRunner()
    timings: dict[str, float] = {}

    def timed(name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = runner.run(name, fn, *args, **kwargs)
        timings[name] = round(time.perf_counter() - t0, 3)
        return out

    t_start = time.perf_counter()
    station = timed("load_qc", load_stage, cfg)
    plan = timed("plan", plan_stage, station, cfg)
    decomposer = make_decomposer(cfg.method, cfg.modes, cfg.seed, **cfg.decomposer_params())
    first = lstm_job(plan, cfg)
    decomposer = timed("fit_decomposer", fit_decomposer, decomposer, plan, cfg)
    n_networks = 2 + 2 * len(decomposer.names)
    workers = workers_for(cfg, first.X_train.shape[0] * n_networks)
    t0 = time.perf_counter()
    # With a training pool the plain LSTM needs no decomposition: it trains on one core while
    # this process runs the single-threaded stages below, instead of leaving that core idle.
    early = runner.submit("train", first.name, train_stage, first, cfg, workers) if workers > 1 else None
    stationarity = timed("stationarity", stationarity_stage, plan, decomposer)
    samples = timed("decompose", decompose_stage, plan, cfg, decomposer,
                    cache_key=decomposition_cache_key(plan, cfg, decomposer))
    base = timed("baselines", baselines_stage, plan, cfg)
    hybrid, first_stage = hybrid_job(plan, cfg, samples, base["info"].get("harmonic_ar_params"))
    jobs = [hybrid, *component_jobs(samples, plan, cfg, decomposer.names)]
    bar = _progress_bar(n_networks, f"Training {n_networks} networks")
    try:
        rest = runner.map("train", train_stage, [(job, cfg, workers) for job in jobs], [job.name for job in jobs],
                          workers=workers, progress=bar.update)
        trained = [early.result() if early is not None else train_stage(first, cfg, workers), *rest]
        bar.update(1)
    finally:
        bar.close()
    timings["train"] = round(time.perf_counter() - t0, 3)
    by_name = {t.name: t for t in trained}
    forecasts = {
        **{name: base[name] for name in BASELINE_NAMES},
        "lstm": by_name["lstm"].forecast,
        "decomp_lstm": recombine([by_name["plain_" + n] for n in decomposer.names]),
        "decomp_feca_lstm": recombine([by_name["feca_" + n] for n in decomposer.names]),
    }
    forecasts["hybrid_feca_lstm"], hybrid_info = hybrid_forecast(by_name[HYBRID_JOB], first_stage, plan, cfg)
    scores, table = timed("evaluate", evaluate_stage, plan, cfg, forecasts)
    timings["total"] = round(time.perf_counter() - t_start, 3)

    s = plan.split
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
        "components": decomposer.names,
        "decomposer_params": decomposer.params(),
        "decomposer_fitted": learnt_parameters(decomposer),
        "covariates": plan.covariates.names,
        "covariate_fill": plan.covariates.info,
        "hybrid": hybrid_info,
        "window": cfg.window,
        "decomp_window": cfg.decomp_window,
        "horizon": cfg.horizon,
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "n_train": int(s.train.size),
        "n_val": int(s.val.size),
        "n_test": int(s.test.size),
        "periods": {
            "train_start": plan.times[0].isoformat(),
            "val_start": plan.times[s.val_start].isoformat(),
            "test_start": plan.times[s.test_start].isoformat(),
            "end": plan.times[-1].isoformat(),
        },
        "qc": station.summary,
        "baselines": base["info"],
        "models": scores,
        "main_model": MAIN_MODEL,
        "training": {t.name: t.training for t in trained},
        "training_workers": workers,
        "timings_s": timings,
        "command": cfg.command,
        "versions": library_versions(),
    }
    write_outputs(cfg.out, metrics, {
        "forecasts.csv": table, "stationarity.csv": stationarity.table,
        "series.csv": series_frame(station), "components.csv": stationarity.components,
    })
    return EvaluationResult(metrics=metrics, forecasts=table, stationarity=stationarity, station=station, plan=plan,
                            trained=trained, samples=samples)


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


def library_versions() -> dict[str, str]:
    """Versions of the packages that shape the numbers."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"wq-pipeline": __version__, "python": sys.version.split()[0]}
    for pkg in ("numpy", "pandas", "statsmodels", "vmdpy", "EMD-signal", "tensorflow-cpu", "tensorflow", "keras", "prefect"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


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
