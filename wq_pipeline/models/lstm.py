"""Forecaster builder: ``Input(W, C) -> [FECA] -> LSTM(units) -> Dropout -> Dense(H)``."""

from __future__ import annotations

import keras

from wq_pipeline.models.feca import FECA


def build_forecaster(
    window: int,
    n_channels: int,
    horizon: int,
    *,
    units: int = 32,
    feca: bool = True,
    dropout: float = 0.1,
    feca_dropout: float = 0.1,
    learning_rate: float = 1e-3,
    seed: int = 0,
    name: str = "forecaster",
    jit_compile: bool = False,
) -> keras.Model:
    """Build and compile (Adam, MSE) a direct multi-step forecaster.

    Input ``(batch, window, n_channels)`` of scaled values; output ``(batch, horizon)`` in the
    scaled target units. Every initialiser and dropout is seeded from ``seed``, so two builds
    with the same arguments have identical weights.
    """
    for label, value in (("window", window), ("n_channels", n_channels), ("horizon", horizon), ("units", units)):
        if int(value) < 1:
            raise ValueError(f"{label} must be >= 1, got {value}")
    for label, rate in (("dropout", dropout), ("feca_dropout", feca_dropout)):
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"{label} must be in [0, 1), got {rate}")
    seed = int(seed)
    inputs = keras.Input(shape=(int(window), int(n_channels)), name="window")
    x = inputs
    if feca:
        x = FECA(feca_dropout, seed=seed + 10, name="feca")(x)
    x = keras.layers.LSTM(
        int(units),
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1),
        recurrent_initializer=keras.initializers.Orthogonal(seed=seed + 2),
        seed=seed + 3,
        name="lstm",
    )(x)
    x = keras.layers.Dropout(float(dropout), seed=seed + 4, name="dropout")(x)
    outputs = keras.layers.Dense(
        int(horizon),
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 5),
        name="head",
    )(x)
    model = keras.Model(inputs, outputs, name=name)
    # XLA fuses the recurrent loop on CPU (about 2x faster per epoch) but costs seconds to
    # compile, so it pays only for long trainings: the caller decides.
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=float(learning_rate)), loss="mse",
                  jit_compile=bool(jit_compile))
    return model
