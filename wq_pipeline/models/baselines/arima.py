"""ARIMA baseline: order by AICc on training data, parameters fixed from training, and causal
multi-origin forecasts from one Kalman filter pass over the whole series.

Works on any grid step: hourly series are long, daily ones short (a few hundred values, with
gaps of weeks). The order search therefore uses the small-sample AICc and only considers orders
with at most one parameter per :data:`POINTS_PER_PARAMETER` finite training values: on 15 daily
values the plain AIC picked ARIMA(2,0,2), whose forecasts on the POSE series ranged from -13 to
31 mg/L."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np

from wq_pipeline.models.baselines._common import check_series_origins


def _trend(d: int) -> str:
    """Constant for stationary models; none once differenced (a drift is rarely wanted)."""
    return "c" if d == 0 else "n"


#: an order is searched only when the training series has this many finite values per parameter
POINTS_PER_PARAMETER = 10
MIN_FINITE = 3


def n_parameters(order: tuple[int, int, int]) -> int:
    """Estimated parameters of ARIMA ``order``: AR + MA coefficients, the constant when
    ``d = 0``, and the innovation variance."""
    p, d, q = (int(v) for v in order)
    return p + q + (d == 0) + 1


def _train_array(y_train: np.ndarray) -> np.ndarray:
    y = np.asarray(y_train, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"training series must be 1-D (N,), got shape {y.shape}")
    if np.isfinite(y).sum() < MIN_FINITE:
        raise ValueError(f"training series needs at least {MIN_FINITE} finite values for ARIMA")
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
    """``(p, d, q)`` with the lowest AICc over ``p <= p_max``, ``d in d_values``, ``q <= q_max``.

    Training data only. For speed the grid is fitted on the last ``max_points`` training values
    (``None``: all of them); the default grid (24 fits on 2000 hourly points) takes ~6-10 s on
    one idle core (several times more if OpenBLAS threads compete with other processes); on a
    daily series of 580 values 8-30 s (gaps make the Kalman filter slower).
    Orders with more than one parameter (:func:`n_parameters`) per :data:`POINTS_PER_PARAMETER`
    finite values are skipped; with none left (fewer than 10-20 finite values) the answer is the
    random walk ``(0, 1, 0)`` (or ``(0, 0, 0)`` when ``1`` is not in ``d_values``).
    ``d = 0`` models carry a constant, ``d >= 1`` models none; AICcs of different ``d`` are
    compared directly (state-space likelihood of the levels, diffuse start), a common heuristic.
    Fits that fail are skipped; ValueError when none succeeds.
    """
    y = _train_array(y_train)
    if max_points is not None and y.size > int(max_points):
        y = y[-int(max_points) :]
    n_ok = int(np.isfinite(y).sum())
    grid = [(int(p), int(d), int(q)) for d, p, q in
            itertools.product(tuple(d_values), range(int(p_max) + 1), range(int(q_max) + 1))]
    allowed = [o for o in grid if n_parameters(o) * POINTS_PER_PARAMETER <= n_ok]
    if not allowed:
        return (0, 1, 0) if 1 in tuple(d_values) else (0, 0, 0)
    best: tuple[float, tuple[int, int, int]] | None = None
    for order in allowed:
        try:
            aicc = float(_fit(y, order).aicc)
        except (ValueError, np.linalg.LinAlgError):
            continue
        if np.isfinite(aicc) and (best is None or aicc < best[0]):
            best = (aicc, order)
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
