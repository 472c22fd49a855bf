"""ARIMA baseline: order by AIC on training data, parameters fixed from training, and causal
multi-origin forecasts from one Kalman filter pass over the whole series."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np

from wq_pipeline.baselines._common import check_series_origins


def _trend(d: int) -> str:
    """Constant for stationary models; none once differenced (a drift is rarely wanted)."""
    return "c" if d == 0 else "n"


def _train_array(y_train: np.ndarray) -> np.ndarray:
    y = np.asarray(y_train, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"training series must be 1-D (N,), got shape {y.shape}")
    if np.isfinite(y).sum() < 10:
        raise ValueError("training series needs at least 10 finite values for ARIMA")
    return y


def _fit(y: np.ndarray, order: tuple[int, int, int]) -> Any:
    from statsmodels.tsa.arima.model import ARIMA

    p, d, q = order
    # Concentrating the scale out of the likelihood halves the fitting time and gives the same
    # MLE and AIC; it needs at least one other parameter.
    concentrate = p + q + (d == 0) > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence / start-parameter chatter
        return ARIMA(y, order=order, trend=_trend(d), concentrate_scale=concentrate).fit()


def select_order(
    y_train: np.ndarray,
    *,
    p_max: int = 3,
    d_values: Iterable[int] = (0, 1),
    q_max: int = 2,
    max_points: int | None = 2000,
) -> tuple[int, int, int]:
    """``(p, d, q)`` with the lowest AIC over ``p <= p_max``, ``d in d_values``, ``q <= q_max``.

    Training data only. For speed the grid is fitted on the last ``max_points`` training values
    (``None``: all of them); the default grid (24 fits on 2000 hourly points) takes ~6-10 s on
    one idle core (several times more if OpenBLAS threads compete with other processes).
    ``d = 0`` models carry a constant, ``d >= 1`` models none; AICs of different ``d`` are compared
    directly (state-space likelihood of the levels, diffuse start), a common heuristic.
    Fits that fail are skipped.
    """
    y = _train_array(y_train)
    if max_points is not None and y.size > int(max_points):
        y = y[-int(max_points) :]
    best: tuple[float, tuple[int, int, int]] | None = None
    for d, p, q in itertools.product(tuple(d_values), range(int(p_max) + 1), range(int(q_max) + 1)):
        order = (int(p), int(d), int(q))
        try:
            aic = float(_fit(y, order).aic)
        except (ValueError, np.linalg.LinAlgError):
            continue
        if np.isfinite(aic) and (best is None or aic < best[0]):
            best = (aic, order)
    if best is None:
        raise ValueError("no ARIMA order in the grid could be fitted to the training series")
    return best[1]


def fit_arima(y_train: np.ndarray, order: tuple[int, int, int]) -> Any:
    """Fit ARIMA ``order`` to the training series ``(N,)`` (NaNs allowed; the Kalman filter skips
    them). Returns statsmodels ``ARIMAResults`` whose parameters :func:`arima_forecast` reuses."""
    p, d, q = (int(v) for v in order)
    return _fit(_train_array(y_train), (p, d, q))


def _constant(mat: np.ndarray, name: str) -> np.ndarray:
    """A system matrix without its time axis; it must not actually vary over time."""
    mat = np.asarray(mat, dtype=np.float64)
    expected = {"transition": 2, "design": 2, "state_intercept": 1, "obs_intercept": 1}[name]
    if mat.ndim == expected + 1:
        if mat.shape[-1] and not np.allclose(mat, mat[..., :1]):
            raise NotImplementedError(f"time-varying {name} is not supported (ARIMA with a trend beyond a constant?)")
        mat = mat[..., 0]
    return mat


def arima_forecast(results: Any, y: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """Forecasts ``(n_origins, horizon)`` in the units of ``y`` from fixed training parameters.

    The fitted parameters are applied to the whole series ``y (N,)`` in one Kalman filter pass;
    the one-step predicted state for ``origins[i] + 1`` uses only ``y[:origins[i] + 1]`` (the filter
    is causal, NaNs are skipped), and is pushed ``h - 1`` steps through the transition for the
    h-step forecast. Equals ``results.apply(y[:t + 1]).forecast(horizon)`` for each origin ``t``.
    """
    y, o = check_series_origins(y, origins, horizon)
    horizon = int(horizon)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = results.apply(y, refit=False)
    model = res.model
    T = _constant(model["transition"], "transition")  # (k, k)
    Z = _constant(model["design"], "design")  # (1, k)
    c = _constant(model["state_intercept"], "state_intercept")  # (k,)
    d = _constant(model["obs_intercept"], "obs_intercept")  # (1,)
    a = np.asarray(res.filter_results.predicted_state, dtype=np.float64)[:, o + 1]  # (k, n): a_{t+1|t}
    out = np.empty((o.size, horizon), dtype=np.float64)
    for h in range(horizon):
        out[:, h] = Z[0] @ a + d[0]
        a = T @ a + c[:, None]
    return out
