"""One network's training job, run in-process or in a training worker process.

Kept apart from :mod:`wq_pipeline.evaluation.pipeline` so that a worker, which unpickles jobs and runs
:func:`fit_predict_portable`, imports only this, the scaler, the configuration and Keras: not the
decomposition, baselines, statsmodels or QC (about 60 MB less per worker).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wq_pipeline.config import EvaluateConfig
from wq_pipeline.models.scaling import Scaler

# XLA (jit_compile) for training: measured on the demo's networks on 2 CPU cores it made no LSTM
# faster, FECA networks 40% slower (55 s vs 39 s), and cost each worker 300 MB: off unless set.
USE_XLA = False

# Level-free networks see each window relative to its last value and predict changes from it
# (wq_pipeline.models.scaling). For the component networks the last values sum to the last observation,
# so a network that learnt nothing leaves the per-component model at persistence. Measured on the
# dev folds (per-component model RMSE / best statistical baseline, 1 step | H; Sapelo 6 h, folds
# 1-2; daily BARC and POSE, folds 1-2): last value 1.21|1.51, 1.35|1.65; 1.14|1.16, 1.04|1.76;
# 1.11|1.39, 1.23|1.33. The window mean instead: 1.54|1.44, 1.70|1.60; 6.42|1.65, 2.98|1.95;
# 1.54|1.35, 1.89|1.30 (a smooth lake loses its persistence at one day). The plain LSTM: last value
# 1.60|2.30, 1.50|1.96; 1.12|1.08, 1.06|1.56; 1.18|1.50, 1.08|1.31; the mean 2.03|1.75, 1.48|1.46;
# 6.67|1.54, 2.73|1.65; 1.58|1.40, 2.05|1.37.
LEVEL_REFERENCE = "last"
# Fewest usable (finite) samples a network is trained on; with fewer it is skipped.
MIN_SAMPLES = {"training": 20, "validation": 5}


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

    def fit_forecast(self) -> np.ndarray:
        """Validation then test forecasts ``(n_val + n_test, H)`` (at ``Split.fit_origins``)."""
        if self.val_forecast is None:
            raise ValueError(f"network {self.name!r} was not asked for validation forecasts")
        return np.concatenate([self.val_forecast, self.forecast])


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
    predict_val: bool = True  # also forecast X_val (the ensemble weighs members by validation errors)
    fixed_channels: int = 0  # trailing input channels without a level (calendar terms)
    level_reference: str = LEVEL_REFERENCE  # level-free: a window's level: "last" or "mean"


def usable_rows(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Bool ``(n,)``: samples whose inputs ``(n, W, C)`` and targets ``(n, H)`` are all finite."""
    return np.isfinite(X).all(axis=(1, 2)) & np.isfinite(Y).all(axis=1)


def fit_network(job: TrainJob, cfg: EvaluateConfig, reuse: bool = False) -> tuple[Any, Scaler, dict[str, Any]]:
    """Scale (statistics from the training samples only; level-free unless ``--no-level-free``)
    and train one network with early stopping on the validation samples. Samples with missing
    values are dropped.

    Returns ``(keras model, scaler, training info)``; the model maps scaled ``(n, W, C)`` windows
    to scaled ``(n, H)`` forecasts. ``reuse``: train this process's cached compiled network of the
    same architecture (:mod:`wq_pipeline.models.reuse`); the returned model is then overwritten
    by the next ``reuse`` training, so take it out first."""
    from wq_pipeline.models.lstm import build_forecaster
    from wq_pipeline.models.reuse import reusable_forecaster
    from wq_pipeline.models.train import fit_forecaster

    keep_tr, keep_va = usable_rows(job.X_train, job.Y_train), usable_rows(job.X_val, job.Y_val)
    X_tr, Y_tr = job.X_train[keep_tr], job.Y_train[keep_tr]
    X_va, Y_va = job.X_val[keep_va], job.Y_val[keep_va]
    scaler = Scaler.for_samples(X_tr, Y_tr, level_free=cfg.level_free, fixed_channels=job.fixed_channels,
                                own_target=job.own_target_scale, level_reference=job.level_reference)
    model = (reusable_forecaster if reuse else build_forecaster)(
        X_tr.shape[1], X_tr.shape[2], Y_tr.shape[1], units=cfg.units, feca=job.feca, seed=cfg.seed,
        name=job.name, jit_compile=USE_XLA,
    )
    result = fit_forecaster(
        model,
        scaler.transform_inputs(X_tr).astype("float32"), scaler.transform_target(Y_tr, X_tr).astype("float32"),
        scaler.transform_inputs(X_va).astype("float32"), scaler.transform_target(Y_va, X_va).astype("float32"),
        epochs=cfg.epochs, batch_size=cfg.batch_size, patience=cfg.patience, seed=cfg.seed,
    )
    info = {
        "feca": job.feca, "channels": int(X_tr.shape[2]), "n_train": int(X_tr.shape[0]), "n_val": int(X_va.shape[0]),
        "epochs_run": result.epochs_run, "best_epoch": result.best_epoch, "seconds": round(result.seconds, 3),
        "loss": result.history.get("loss", []), "val_loss": result.history.get("val_loss", []),
        "scaler": scaler.to_json(),
    }
    return model, scaler, info


def network_forecast(model: Any, scaler: Scaler, X: np.ndarray) -> np.ndarray:
    """Forecast ``(n, H)`` in target units from inputs ``(n, W, C)`` in target units."""
    from wq_pipeline.models.train import predict

    return scaler.inverse(predict(model, scaler.transform_inputs(X).astype("float32")), X)


def fit_predict(job: TrainJob, cfg: EvaluateConfig, reuse: bool = False) -> TrainedForecast:
    """:func:`fit_network`, then forecast the test inputs. A job with fewer than
    :data:`MIN_SAMPLES` usable training or validation samples (a short first fold, a first stage
    without forecasts early in the series) is skipped: its forecasts are NaN and its ``training``
    says why, so the ensemble and the scores leave it out instead of the run failing."""
    counts = {part: int(usable_rows(X, Y).sum()) for part, X, Y in (("training", job.X_train, job.Y_train),
                                                                     ("validation", job.X_val, job.Y_val))}
    short = [f"{n} {part} samples (at least {MIN_SAMPLES[part]} needed)" for part, n in counts.items()
             if n < MIN_SAMPLES[part]]
    if short:
        H = job.Y_train.shape[1]
        return TrainedForecast(name=job.name, forecast=np.full((job.X_test.shape[0], H), np.nan),
                               training={"skipped": "; ".join(short), "feca": job.feca},
                               val_forecast=np.full((job.X_val.shape[0], H), np.nan) if job.predict_val else None)
    model, scaler, info = fit_network(job, cfg, reuse)
    pred = network_forecast(model, scaler, job.X_test)
    val = network_forecast(model, scaler, job.X_val) if job.predict_val else None
    return TrainedForecast(name=job.name, forecast=pred, training=info, model=model, scaler=scaler, val_forecast=val)


def fit_predict_portable(job: TrainJob, cfg: EvaluateConfig) -> TrainedForecast:
    """:func:`fit_predict` for a training worker: the worker's compiled network of the job's
    architecture is reset and trained (no graph rebuilt per job), and the network comes back as
    its ``.keras`` bytes (:class:`~wq_pipeline.models.serialized.SerializedNetwork`), so the
    receiving process needs no TensorFlow."""
    from wq_pipeline.models.serialized import SerializedNetwork

    out = fit_predict(job, cfg, reuse=True)
    if out.model is not None:  # a skipped network (too few samples) has none
        out.model = SerializedNetwork.from_model(out.model)
    return out
