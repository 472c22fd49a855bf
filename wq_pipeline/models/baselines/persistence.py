"""Persistence (naive) baseline: the last observed value, repeated over the horizon."""

from __future__ import annotations

import numpy as np

from wq_pipeline.models.baselines._common import check_series_origins


def persistence_forecast(y: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """Forecast ``(n_origins, horizon)``: row i is ``y[origins[i]]`` repeated (units of ``y``).

    ``y`` is the series ``(N,)``; a NaN at the origin gives a NaN row.
    """
    y, o = check_series_origins(y, origins, horizon)
    return np.repeat(y[o][:, None], int(horizon), axis=1)
