"""Training with early stopping and fixed seeds; deterministic prediction."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

ProgressFn = Callable[[int, dict[str, float]], None]


@dataclass
class TrainResult:
    """Outcome of :func:`fit_forecaster`.

    ``history``: ``{"loss": [...], "val_loss": [...]}``, one float per epoch run (scaled MSE);
    ``epochs_run``: epochs actually run (early stopping may end before ``epochs``);
    ``best_epoch``: 1-based epoch with the lowest ``val_loss`` (its weights are the ones kept);
    ``seconds``: wall-clock training time.
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    epochs_run: int = 0
    best_epoch: int = 0
    seconds: float = 0.0


class _ProgressCallback(keras.callbacks.Callback):
    """Forward each finished epoch (1-based) and its logs as plain floats to ``fn``."""

    def __init__(self, fn: ProgressFn) -> None:
        super().__init__()
        self._fn = fn

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._fn(int(epoch) + 1, {k: float(v) for k, v in (logs or {}).items()})


class _ValidationLoss(keras.callbacks.Callback):
    """Put ``val_loss`` (MSE over all validation samples, dropout off) into each epoch's logs.

    The model's predict function (traced once) on the whole validation set per epoch: Keras's own
    ``validation_data`` path measured 0.15-0.35 s more an epoch for a small LSTM on one core
    (10-25% of the epoch). Runs before early stopping."""

    def __init__(self, X: np.ndarray, Y: np.ndarray, batch_size: int = 4096) -> None:
        super().__init__()
        self._X, self._Y, self._batch = X, Y, int(batch_size)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        total = 0.0
        for i in range(0, self._X.shape[0], self._batch):
            pred = self.model.predict_on_batch(self._X[i : i + self._batch])
            err = np.asarray(pred, dtype=np.float64) - self._Y[i : i + self._batch]
            total += float(np.sum(np.mean(err**2, axis=1)))
        if logs is not None:
            logs["val_loss"] = total / self._X.shape[0]


def _check_xy(label: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32)
    if x.ndim != 3 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"{label}: expected X (n, W, C) and Y (n, H) with equal n, got {x.shape} and {y.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{label}: no samples")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f"{label}: X and Y must be finite (drop samples with NaN before training)")
    return x, y


def fit_forecaster(
    model: keras.Model,
    X_train: np.ndarray,
    Y_train: np.ndarray,
    X_val: np.ndarray,
    Y_val: np.ndarray,
    *,
    epochs: int = 20,
    batch_size: int = 64,
    patience: int = 5,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Fit a compiled model: X ``(n, W, C)``, Y ``(n, H)``, both already scaled.

    Early stopping on ``val_loss`` with ``patience`` epochs, restoring the best weights. The
    global Keras seed is set to ``seed`` right before fitting, so batches are shuffled in the
    same order on every run. ``progress(epoch, logs)`` (1-based epoch, logs of plain floats) is
    called after each epoch if given.
    """
    X_train, Y_train = _check_xy("training data", X_train, Y_train)
    X_val, Y_val = _check_xy("validation data", X_val, Y_val)
    if epochs < 1 or batch_size < 1 or patience < 0:
        raise ValueError(f"need epochs >= 1, batch_size >= 1, patience >= 0; got {epochs}, {batch_size}, {patience}")
    callbacks: list[keras.callbacks.Callback] = [
        _ValidationLoss(X_val, Y_val),
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=int(patience), restore_best_weights=True, mode="min"
        )
    ]
    if progress is not None:
        callbacks.append(_ProgressCallback(progress))
    keras.utils.set_random_seed(int(seed))
    start = time.perf_counter()
    hist = model.fit(
        X_train,
        Y_train,
        epochs=int(epochs),
        batch_size=int(batch_size),
        shuffle=True,
        callbacks=callbacks,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    history = {
        "loss": [float(v) for v in hist.history.get("loss", [])],
        "val_loss": [float(v) for v in hist.history.get("val_loss", [])],
    }
    val = np.asarray(history["val_loss"], dtype=float)
    best = int(np.nanargmin(val)) + 1 if val.size and np.isfinite(val).any() else len(val)
    return TrainResult(history=history, epochs_run=len(history["loss"]), best_epoch=best, seconds=seconds)


def predict(model: keras.Model, X: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Deterministic inference (dropout off): X ``(n, W, C)`` -> ``(n, H)`` float64, scaled units."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 3:
        raise ValueError(f"expected X of shape (n, W, C), got {X.shape}")
    if X.shape[0] == 0:
        return np.zeros((0, int(model.output_shape[-1])), dtype=np.float64)
    # the model's own predict function (traced once, reused by training's validation), dropout off
    parts = [np.asarray(model.predict_on_batch(X[i : i + batch_size])) for i in range(0, X.shape[0], int(batch_size))]
    return np.concatenate(parts).astype(np.float64)


_COMPILED: Any = None  # weakref.WeakKeyDictionary: model -> traced predict function


def compiled_predict(model: keras.Model, X: np.ndarray) -> np.ndarray:
    """Like :func:`predict`, through a graph traced once per model for any batch size.

    An eager call of a small LSTM costs about 0.3 s of per-op overhead whatever the batch; the
    traced graph costs that once and then milliseconds per call, which is what serving many
    small batches (a backfill's chunks, hourly forecasts) needs. ``(n, W, C)`` -> ``(n, H)``.
    """
    global _COMPILED
    import weakref

    import tensorflow as tf

    if _COMPILED is None:
        _COMPILED = weakref.WeakKeyDictionary()
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 3:
        raise ValueError(f"expected X of shape (n, W, C), got {X.shape}")
    fn = _COMPILED.get(model)
    if fn is None:
        spec = tf.TensorSpec((None, X.shape[1], X.shape[2]), tf.float32)
        fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        _COMPILED[model] = fn
    if X.shape[0] == 0:
        return np.zeros((0, int(model.output_shape[-1])), dtype=np.float64)
    return np.asarray(fn(X)).astype(np.float64)
