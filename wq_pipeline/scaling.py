"""Standard scaling fitted on training samples only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scaler:
    """``z = (x - mean) / std`` with statistics from training data (a constant input gets std 1).

    ``mean``/``std`` scale the network's own channel (input channel 0) and its targets;
    ``extra`` holds ``(mean, std)`` of each further input channel (covariates), in channel order.
    ``target``, when set, scales the targets instead of ``mean``/``std`` (a network predicting
    something other than its channel 0, such as a first stage's error).
    """

    mean: float
    std: float
    extra: tuple[tuple[float, float], ...] = ()
    target: tuple[float, float] | None = None

    @classmethod
    def fit(cls, x: np.ndarray, extra: np.ndarray | None = None, target: np.ndarray | None = None) -> "Scaler":
        """Fit on any-shaped training array, ignoring NaN; ``extra`` ``(..., K)``: one further
        input channel per last-axis entry, each scaled on its own; ``target``: training targets
        with their own statistics (else they share channel 0's)."""
        extras = () if extra is None else tuple(_stats(extra[..., k]) for k in range(extra.shape[-1]))
        mean, std = _stats(x)
        return cls(mean=mean, std=std, extra=extras, target=None if target is None else _stats(target))

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Scale channel-0 values."""
        return (x - self.mean) / self.std

    def transform_target(self, y: np.ndarray) -> np.ndarray:
        """Scale targets (``target`` statistics when set, else channel 0's)."""
        m, s = self.target or (self.mean, self.std)
        return (y - m) / s

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Network outputs back to target units."""
        m, s = self.target or (self.mean, self.std)
        return z * s + m

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
