"""Seasonal-naive baseline and a simple autocorrelation period detector."""

from __future__ import annotations

import numpy as np

from wq_pipeline.models.baselines._common import check_series_origins, check_training_series


def autocorrelation(y: np.ndarray, max_lag: int) -> np.ndarray:
    """NaN-safe sample autocorrelation ``(max_lag + 1,)`` for lags ``0..max_lag``.

    The series is centred on its NaN-ignoring mean; lag ``k`` averages ``z[t] * z[t+k]`` over
    the pairs where both are finite and divides by the variance of the finite values.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"series must be 1-D (N,), got shape {y.shape}")
    ok = np.isfinite(y)
    if ok.sum() < 2:
        raise ValueError("need at least two finite values to compute an autocorrelation")
    z = np.where(ok, y - y[ok].mean(), 0.0)
    var = float(np.mean(z[ok] ** 2))
    acf = np.full(int(max_lag) + 1, np.nan)
    if var == 0.0:
        return acf
    okf = ok.astype(np.float64)
    for k in range(min(int(max_lag), y.size - 1) + 1):
        n_pairs = float(np.dot(okf[: y.size - k], okf[k:]))
        if n_pairs > 0:
            acf[k] = float(np.dot(z[: y.size - k], z[k:])) / n_pairs / var
    return acf


def detect_period(y_train: np.ndarray, max_lag: int) -> int:
    """Dominant period (in steps) of the training series: a lag in ``[2, max_lag]``.

    Picks the highest *local peak* of the autocorrelation in ``[2, max_lag]`` (a lag whose ACF is
    >= both neighbours). A smooth series has its raw ACF maximum at the shortest lag, so a plain
    argmax would always answer 2; if there is no interior peak, the argmax is returned.
    """
    if int(max_lag) < 2:
        raise ValueError(f"max_lag must be >= 2, got {max_lag}")
    max_lag = int(max_lag)
    acf = autocorrelation(y_train, max_lag + 1)
    lags = np.arange(2, max_lag + 1)
    vals = acf[lags]
    if not np.isfinite(vals).any():
        raise ValueError("autocorrelation undefined (constant or too short training series)")
    left, right = acf[lags - 1], acf[lags + 1]
    right = np.where(np.isfinite(right), right, -np.inf)  # last lag: no right neighbour needed
    peak = np.isfinite(vals) & (vals >= left) & (vals >= right)
    if peak.any():
        cand = np.where(peak, vals, -np.inf)
        return int(lags[int(np.argmax(cand))])
    return int(lags[int(np.nanargmax(vals))])


def seasonal_naive_forecast(y: np.ndarray, origins: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """Forecast ``(n_origins, horizon)``: ``y[t + h - period * ceil(h / period)]`` for ``h = 1..H``.

    The value one period before each target, stepping back whole periods until it is ``<= t``;
    positions before the start of the series give NaN.
    """
    y, o = check_series_origins(y, origins, horizon)
    period = int(period)
    if period < 1:
        raise ValueError(f"period must be >= 1, got {period}")
    h = np.arange(1, int(horizon) + 1)
    back = h - period * np.ceil(h / period).astype(np.int64)  # in [-(period-1), 0]
    idx = o[:, None] + back[None, :]
    out = np.full(idx.shape, np.nan)
    ok = idx >= 0
    out[ok] = y[idx[ok]]
    return out


def level_adjusted_seasonal_naive_forecast(
    y: np.ndarray, origins: np.ndarray, horizon: int, period: int
) -> np.ndarray:
    """Forecast ``(n_origins, horizon)``: seasonal naive shifted by the level change over the last period.

    ``y[t + h - period * ceil(h / period)] + (y[t] - y[t - period])`` for ``h = 1..H`` (units of
    ``y (N,)``); same whole-period stepping back as :func:`seasonal_naive_forecast`. NaN where any
    of the three values is missing or lies before the start of the series (``t < period``).
    """
    y, o = check_series_origins(y, origins, horizon)
    period = int(period)
    base = seasonal_naive_forecast(y, o, horizon, period)
    shift = np.full(o.size, np.nan)
    ok = o >= period
    shift[ok] = y[o[ok]] - y[o[ok] - period]
    return base + shift[:, None]


# Candidate periods in hours: solar day; two semidiurnal lunar tides (2 x 12.42 h = 24.84 h, the
# "25 h" lunar-day cycle of estuarine series); 12 h (S2); 12.42 h (M2); K1; O1; one week.
PERIOD_CANDIDATE_HOURS: tuple[float, ...] = (24.0, 24.8412024, 12.0, 12.4206012, 23.9344697, 25.8193417, 168.0)
# Added on grids of a day or coarser (where the sub-daily ones collapse): one year (365.25 d).
COARSE_PERIOD_CANDIDATE_HOURS: tuple[float, ...] = (8766.0,)
# A candidate is kept only if a whole number of steps matches it to within this relative error.
PERIOD_MATCH_TOLERANCE = 0.05


def period_candidates(step_hours: float, detected: int | None) -> list[int]:
    """Candidate seasonal periods in steps for a grid of ``step_hours`` hours per step.

    ``detected`` (e.g. from :func:`detect_period`) comes first when given and ``>= 2``; then each of
    :data:`PERIOD_CANDIDATE_HOURS` (24 h, 24.84 h = two M2 tides, 12 h, 12.42 h M2, 23.93 h K1,
    25.82 h O1, 168 h), plus one year (:data:`COARSE_PERIOD_CANDIDATE_HOURS`) on grids of a day or
    coarser, rounded to whole steps, kept only when ``round(P / step) * step`` is within 5 % of
    ``P`` (the grid resolves it reasonably) and is at least 2 steps. Order is kept, duplicates are
    dropped (on an hourly grid: ``[detected, 24, 25, 12, 26, 168]``; daily: ``[detected, 7, 365]``).
    """
    step = float(step_hours)
    if not np.isfinite(step) or step <= 0:
        raise ValueError(f"step_hours must be > 0, got {step_hours}")
    out: list[int] = []
    if detected is not None and int(detected) >= 2:
        out.append(int(detected))
    hours_list = PERIOD_CANDIDATE_HOURS + (COARSE_PERIOD_CANDIDATE_HOURS if step >= 24.0 - 1e-9 else ())
    for hours in hours_list:
        k = int(round(hours / step))
        if k < 2 or abs(k * step - hours) > PERIOD_MATCH_TOLERANCE * hours:
            continue
        if k not in out:
            out.append(k)
    return out


def select_period(
    y_train: np.ndarray, horizon: int, candidates: list[int], *, observed: np.ndarray | None = None
) -> tuple[int, dict[int, float]]:
    """Candidate period (steps) whose seasonal-naive forecast has the lowest RMSE at step ``horizon``.

    Scored over every origin ``t`` of the training series ``(N,)`` with ``t + horizon < N``, on the
    points where forecast and target are both finite (units of ``y``). ``observed (N,)``, when
    given, supplies the targets instead of ``y_train``: the series with NaN wherever the value is
    not a real observation (interpolated points then do not score). Returns ``(best, rmse)``
    where ``rmse`` maps each candidate to its RMSE, NaN for a candidate with fewer than 50 scored
    points (skipped); ties go to the earlier candidate. ValueError when no candidate scores.
    Training data only.
    """
    y = check_training_series(y_train)
    obs = y if observed is None else check_training_series(observed)
    if obs.shape != y.shape:
        raise ValueError(f"observed {obs.shape} and training series {y.shape} differ in shape")
    horizon = int(horizon)
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    origins = np.arange(max(y.size - horizon, 0))
    target = obs[origins + horizon]
    rmse: dict[int, float] = {}
    best: int | None = None
    for cand in candidates:
        period = int(cand)
        if period in rmse:
            continue
        fc = seasonal_naive_forecast(y, origins, horizon, period)[:, horizon - 1]
        ok = np.isfinite(fc) & np.isfinite(target)
        if ok.sum() < 50:
            rmse[period] = float("nan")
            continue
        rmse[period] = float(np.sqrt(np.mean((fc[ok] - target[ok]) ** 2)))
        if best is None or rmse[period] < rmse[best]:
            best = period
    if best is None:
        raise ValueError("no candidate period has 50 scored training points")
    return best, rmse
