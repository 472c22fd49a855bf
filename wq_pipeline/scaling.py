"""Standard scaling fitted on training samples only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scaler:
    """``z = (x - mean) / std`` with statistics from training data (a constant input gets std 1)."""

    mean: float
    std: float

    @classmethod
    def fit(cls, x: np.ndarray) -> "Scaler":
        """Fit on any-shaped training array, ignoring NaN."""
        mean = float(np.nanmean(x))
        std = float(np.nanstd(x))
        return cls(mean=mean, std=std if std > 1e-12 else 1.0)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return z * self.std + self.mean
