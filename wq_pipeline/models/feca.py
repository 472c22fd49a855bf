"""Frequency-enhanced channel attention (FECA) as a Keras 3 layer.

After FECAM (Jiang et al. 2023, "FECAM: Frequency enhanced channel attention mechanism for
time series forecasting"). For every channel the window is taken to the frequency domain with
an orthonormal DCT-II (a fixed ``(W, W)`` matrix, so the layer works for any window length and
is deterministic), the ``W`` coefficients are layer-normalised, and an MLP shared across channels
(``W -> 2W -> W``; ReLU, dropout, sigmoid) turns them into a gate in ``(0, 1)`` for every
channel and time step. The output is the input times the gate, so shapes are unchanged.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops


def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix ``D`` of shape ``(n, n)``: ``coeffs = D @ x`` for ``x (n,)``.

    ``D[k, t] = sqrt(2/n) * s_k * cos(pi * (t + 1/2) * k / n)`` with ``s_0 = 1/sqrt(2)``, else 1,
    so ``D @ D.T == I`` (equals ``scipy.fft.dct(x, type=2, norm="ortho")``).
    """
    if n < 1:
        raise ValueError(f"DCT size must be >= 1, got {n}")
    k = np.arange(n, dtype=np.float64)[:, None]
    t = np.arange(n, dtype=np.float64)[None, :]
    d = np.sqrt(2.0 / n) * np.cos(np.pi * (t + 0.5) * k / n)
    d[0, :] /= np.sqrt(2.0)
    return d


@keras.saving.register_keras_serializable(package="wq_pipeline")
class FECA(keras.layers.Layer):
    """Frequency-enhanced channel attention gate.

    Input ``(batch, W, C)``; output ``(batch, W, C)`` = ``x * gate`` with ``gate`` in ``(0, 1)``.

    Args:
        rate: dropout rate inside the MLP (active only when ``training=True``).
        use_bias: whether the two MLP ``Dense`` layers have biases (the FECAM reference has none).
        epsilon: LayerNormalization epsilon over the ``W`` frequency coefficients.
        seed: seed for the MLP initialisers and the dropout; ``None`` leaves them unseeded.
    """

    def __init__(
        self,
        rate: float = 0.1,
        *,
        use_bias: bool = False,
        epsilon: float = 1e-6,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"FECA dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.use_bias = bool(use_bias)
        self.epsilon = float(epsilon)
        self.seed = None if seed is None else int(seed)
        self.supports_masking = False
        self._dct: Any = None

    def _init(self, offset: int) -> keras.initializers.Initializer:
        seed = None if self.seed is None else self.seed + offset
        return keras.initializers.GlorotUniform(seed=seed)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        if len(input_shape) != 3 or input_shape[1] is None or input_shape[2] is None:
            raise ValueError(f"FECA expects a known input shape (batch, W, C), got {input_shape}")
        w = int(input_shape[1])
        self.window = w
        # Fixed transform: a constant, not a weight (nothing to save, nothing to train).
        self._dct = ops.convert_to_tensor(dct_matrix(w), dtype=self.compute_dtype)
        freq_shape = (input_shape[0], int(input_shape[2]), w)  # (batch, C, W)
        self.norm = keras.layers.LayerNormalization(
            axis=-1, epsilon=self.epsilon, dtype=self.dtype_policy, name="dct_norm"
        )
        self.norm.build(freq_shape)
        self.fc1 = keras.layers.Dense(
            2 * w,
            activation="relu",
            use_bias=self.use_bias,
            kernel_initializer=self._init(0),
            dtype=self.dtype_policy,
            name="fc1",
        )
        self.fc1.build(freq_shape)
        self.dropout = keras.layers.Dropout(self.rate, seed=self.seed, dtype=self.dtype_policy, name="dropout")
        self.fc2 = keras.layers.Dense(
            w,
            activation="sigmoid",
            use_bias=self.use_bias,
            kernel_initializer=self._init(1),
            dtype=self.dtype_policy,
            name="fc2",
        )
        self.fc2.build((input_shape[0], int(input_shape[2]), 2 * w))
        super().build(input_shape)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        # (batch, W, C) -> per-channel DCT coefficients (batch, C, W)
        freq = ops.einsum("kt,btc->bck", ops.cast(self._dct, inputs.dtype), inputs)
        z = self.norm(freq)
        z = self.fc1(z)
        z = self.dropout(z, training=training)
        gate = self.fc2(z)  # (batch, C, W)
        return inputs * ops.transpose(gate, (0, 2, 1))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {"rate": self.rate, "use_bias": self.use_bias, "epsilon": self.epsilon, "seed": self.seed}
        )
        return config
