"""Standard scaling fitted on training samples only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scaler:
    """``z = (x - mean) / std`` with statistics from training data (a constant input gets std 1).

    ``mean``/``std`` scale the network's own channel (input channel 0) and its targets;
    ``extra`` holds ``(mean, std)`` of each further input channel (covariates), in channel order.
    """

    mean: float
    std: float
    extra: tuple[tuple[float, float], ...] = ()

    @classmethod
    def fit(cls, x: np.ndarray, extra: np.ndarray | None = None) -> "Scaler":
        """Fit on any-shaped training array, ignoring NaN; ``extra`` ``(..., K)``: one further
        input channel per last-axis entry, each scaled on its own."""
        extras = () if extra is None else tuple(_stats(extra[..., k]) for k in range(extra.shape[-1]))
        mean, std = _stats(x)
        return cls(mean=mean, std=std, extra=extras)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return z * self.std + self.mean

    def transform_inputs(self, X: np.ndarray) -> np.ndarray:
        """Scale model inputs ``(n, W, 1 + len(extra))``: channel 0 like the targets, channel
        ``k >= 1`` with ``extra[k-1]``."""
        if X.shape[-1] != 1 + len(self.extra):
            raise ValueError(f"inputs have {X.shape[-1]} channels, the scaler was fitted on {1 + len(self.extra)}")
        if not self.extra:
            return self.transform(X)
        mean = np.array([self.mean, *(m for m, _ in self.extra)])
        std = np.array([self.std, *(s for _, s in self.extra)])
        return (X - mean) / std


def _stats(x: np.ndarray) -> tuple[float, float]:
    mean, std = float(np.nanmean(x)), float(np.nanstd(x))
    return mean, std if std > 1e-12 else 1.0
