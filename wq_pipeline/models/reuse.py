"""One compiled network per architecture, reset between trainings.

Every network of a run with the same architecture (window, channels, horizon, units, FECA or
not, seed) starts from the same seeded weights. Building and tracing a new Keras model for each
costs 2-4 s of graph construction on one core (the first epoch's extra time), which for the
demo's 19 small networks is a tenth of the training. A training worker instead keeps one model
per architecture and, before each training, puts back its initial weights, dropout seed states
and a fresh Adam state, so the traced training and prediction functions are reused and the
result is the same as training a newly built model.

Only for callers that take the trained network out (serialise it) before the next training:
the returned model object is reused.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from wq_pipeline.models.lstm import build_forecaster

_CACHE: dict[tuple, tuple[keras.Model, list[np.ndarray], list[np.ndarray]]] = {}


def reusable_forecaster(window: int, n_channels: int, horizon: int, *, name: str = "forecaster",
                        **options: Any) -> keras.Model:
    """:func:`~wq_pipeline.models.lstm.build_forecaster` with the same arguments, reused.

    Returns the cached, compiled model of this architecture with every variable (weights, seed
    generator states) and the optimizer's variables reset to their values when it was built, and
    ``name`` as its name. Input ``(batch, window, n_channels)``, output ``(batch, horizon)``.
    """
    key = (int(window), int(n_channels), int(horizon), tuple(sorted(options.items())))
    entry = _CACHE.get(key)
    if entry is None:
        model = build_forecaster(window, n_channels, horizon, name=name, **options)
        model.optimizer.build(model.trainable_variables)
        entry = (model, [np.array(v.numpy()) for v in model.variables],
                 [np.array(v.numpy()) for v in model.optimizer.variables])
        _CACHE[key] = entry
        return model
    model, weights, opt_state = entry
    for var, value in zip(model.variables, weights):
        var.assign(value)
    for var, value in zip(model.optimizer.variables, opt_state):
        var.assign(value)
    model.name = name
    return model


def clear() -> None:
    """Forget the cached models."""
    _CACHE.clear()
