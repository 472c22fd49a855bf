"""Shared argument checks for the baselines."""

from __future__ import annotations

import numpy as np


def check_series_origins(y: np.ndarray, origins: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``y`` as float64 ``(N,)`` and ``origins`` as int64 ``(n,)`` in ``[0, N-1]``."""
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"series must be 1-D (N,), got shape {y.shape}")
    o = np.asarray(origins)
    if o.ndim != 1:
        raise ValueError(f"origins must be 1-D (n,), got shape {o.shape}")
    if o.size and not np.issubdtype(o.dtype, np.integer):
        if not np.all(np.equal(np.mod(o, 1), 0)):
            raise ValueError("origins must be integer positions")
    o = o.astype(np.int64)
    if o.size and (o.min() < 0 or o.max() >= y.shape[0]):
        raise ValueError(f"origins must lie in [0, {y.shape[0] - 1}], got [{o.min()}, {o.max()}]")
    if int(horizon) < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    return y, o


def check_training_series(y_train: np.ndarray) -> np.ndarray:
    """Return a training series as float64 ``(N,)``; ValueError if it is not 1-D."""
    y = np.asarray(y_train, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"training series must be 1-D (N,), got shape {y.shape}")
    return y
