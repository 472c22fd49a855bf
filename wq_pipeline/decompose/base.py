"""The decomposition contract: a fixed number of channels per window, plus a residual.

Every decomposer turns a window ``(L,)`` into ``(C, L)`` with ``C = modes + 1``:

* channels ``0 .. modes-1`` are the modes;
    - VMD: the K modes in vmdpy's order (order of the initial centre frequencies; with the
      default ``init=1`` that is low -> high frequency);
    - EEMD / CEEMDAN: the IMFs in PyEMD's order (high -> low frequency). If a window yields
      more than ``modes`` IMFs the surplus low-frequency IMFs are summed into the last kept
      channel; if it yields fewer, the missing channels are zeros;
* the last channel is the residual ``x - sum(modes)``, so the channels sum back to the
  window exactly (up to one rounding). For EMD methods it holds the trend.

So every window yields the same channels, whatever the data.

A subclass may have a channel count other than ``modes + 1`` by overriding ``n_components``
and ``names`` (CEEMDAN-SE-VMD, :mod:`wq_pipeline.decompose.two_stage`: ``secondary_modes + 3``
channels); the last channel is still the residual.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from wq_pipeline.errors import InputError

MIN_MODES = 1
MAX_MODES = 32
MIN_LENGTH = 4

ProgressFn = Callable[[int], object] | None


class Decomposer(ABC):
    """Window decomposer with a fixed channel count ``modes + 1`` (last = residual)."""

    method: str = ""

    def __init__(self, modes: int = 8, seed: int = 0) -> None:
        self.modes = _check_modes(modes)
        self.seed = int(seed)

    @property
    def n_components(self) -> int:
        """Number of output channels: ``modes + 1``."""
        return self.modes + 1

    @property
    def names(self) -> list[str]:
        """Channel names ``["imf1", ..., f"imf{modes}", "residual"]``."""
        return [f"imf{i + 1}" for i in range(self.modes)] + ["residual"]

    def decompose(self, x: np.ndarray) -> np.ndarray:
        """Decompose one window (L,) -> (C, L) float64, same unit as ``x``.

        Raises ValueError for NaN/inf, a non 1-D input or fewer than 4 samples.
        """
        a = np.asarray(x, dtype=np.float64)
        if a.ndim != 1:
            raise ValueError(f"decompose expects a 1-D window (L,), got shape {a.shape}")
        return self.decompose_batch(a[None, :])[0]

    def decompose_batch(self, X: np.ndarray, progress: ProgressFn = None) -> np.ndarray:
        """Decompose windows (B, L) -> (B, C, L) float64; row ``b`` equals ``decompose(X[b])``.

        ``progress`` (optional) is called with the number of windows just finished (an
        increment, e.g. ``tqdm(...).update``); the calls add up to B.
        """
        A = np.asarray(X, dtype=np.float64)
        if A.ndim != 2:
            raise ValueError(f"decompose_batch expects windows (B, L), got shape {A.shape}")
        if A.shape[1] < MIN_LENGTH:
            raise ValueError(f"windows need at least {MIN_LENGTH} samples, got L={A.shape[1]}")
        bad = ~np.isfinite(A)
        if bad.any():
            b, t = np.argwhere(bad)[0]
            raise ValueError(
                f"window {b} contains NaN/inf (first at position {t}); "
                f"{int(bad.any(axis=1).sum())} of {A.shape[0]} windows affected"
            )
        B, L = A.shape
        out = np.empty((B, self.n_components, L), dtype=np.float64)
        if B == 0:
            return out
        modes = self._modes_batch(A, progress)
        out[:, : self.n_components - 1, :] = modes
        out[:, -1, :] = A - modes.sum(axis=1)
        return out

    @abstractmethod
    def _modes_batch(self, X: np.ndarray, progress: ProgressFn) -> np.ndarray:
        """Non-residual channels of clean windows X (B, L) -> (B, n_components - 1, L)."""

    def _own_params(self) -> dict[str, Any]:
        return {}

    def params(self) -> dict[str, Any]:
        """JSON-serialisable description of everything that affects the output."""
        return {"method": self.method, "modes": self.modes, "seed": self.seed, **self._own_params()}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.params().items() if k != "method")
        return f"{type(self).__name__}({inner})"


def fix_mode_count(imfs: np.ndarray, modes: int) -> np.ndarray:
    """Map IMFs (n, L) to exactly ``modes`` rows: sum the tail into the last kept row, or pad
    with zero rows at the end. Returns (modes, L) float64."""
    imfs = np.asarray(imfs, dtype=np.float64)
    n, L = imfs.shape
    out = np.zeros((modes, L))
    if n <= modes:
        out[:n] = imfs
    else:
        out[: modes - 1] = imfs[: modes - 1]
        out[modes - 1] = imfs[modes - 1 :].sum(axis=0)
    return out


def _check_modes(modes: Any) -> int:
    if isinstance(modes, bool) or not isinstance(modes, (int, np.integer)) or not (
        MIN_MODES <= int(modes) <= MAX_MODES
    ):
        raise InputError(f"modes must be an integer in {MIN_MODES}..{MAX_MODES}, got {modes!r}")
    return int(modes)
