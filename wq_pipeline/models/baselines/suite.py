"""Every statistical baseline of an evaluation, each tuned on training and validation data only.

NOTE FOR CALLERS (signature changed; pipeline.py / hybrid.py still to be updated)::

    statistical_baselines(y, val_start, val_origins, forecast_origins, horizon, step_hours,
                          seasonal_period=None, max_lag=None, *, times=None, y_obs=None)
        -> BaselineForecasts   # forecasts[name]: (len(forecast_origins), H)

* ``forecast_origins`` replaces ``test_origins``: pass every origin you need forecasts for, e.g.
  ``np.concatenate([split.val, split.test])`` for an ensemble weighted on validation errors, then
  slice the rows. Choices never depend on ``forecast_origins``.
* ``times=plan.times`` (the grid times, ``(N,)``) is needed for the day-of-year climatology on
  daily grids (without it a position-based 365.25-day phase is used and ``info`` says so).
* ``y_obs``: ``(N,)`` series with NaN wherever the value is not a real observation, e.g.
  ``np.where(plan.observed, plan.values, np.nan)``; validation scores use it (default ``y``).
* ``info["harmonic_ar_params"]`` still goes unchanged to
  ``harmonic_ar_forecast(y, origins, H, step_hours, **params)`` (it now also holds the
  robustness settings and ``fallback_period``; all JSON values).
* Daily grids work (no more ``n_fit=16 too short``). ARIMA (:mod:`.arima`) too: forecast it at
  the same origins, ``arima_forecast(fit_arima(y[:val_start], order), y, forecast_origins, H)``.

The baselines:

* ``persistence``: the last observation.
* ``seasonal_naive``: the value one period earlier; the period is ``--seasonal-period`` or the
  candidate (the autocorrelation peak, 24 h, 24.84 h = two M2 tides, 12 h, ...; on daily grids
  7 d and 365 d) with the lowest seasonal-naive RMSE at step H on the training series
  (:func:`~.seasonal_naive.select_period`, targets from ``y_obs``). When no candidate has 50
  scored points the period is 1 (persistence) and ``info["seasonal_period_source"]`` says why.
* ``level_adjusted_seasonal_naive``: the same, shifted by the level change over the last period.
* ``climatology``: sub-daily grids: the training mean at the same time of day (the same phase of
  the period when the grid step does not divide a day); daily or coarser grids: the day-of-year
  climatology of the training data smoothed over +-7 days
  (:func:`~.climatology.fit_doy_climatology`).
* ``harmonic_ar``: harmonics plus AR residuals, refitted on each origin's trailing window
  (:mod:`.harmonic`: robust fit, envelope, seasonal-naive fallback); window length, AR order
  and terms (:func:`harmonic_grid`: diel / tidal on sub-daily grids, annual / weekly on daily
  ones) are chosen by RMSE at step H on the validation origins (observed targets only).

ARIMA lives in :mod:`.arima` (fitted once on the training series) and is run by the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from wq_pipeline.models.baselines.climatology import (
    DOY_HALF_WIDTH,
    climatology_forecast,
    doy_climatology_forecast,
    fit_climatology,
    fit_doy_climatology,
)
from wq_pipeline.models.baselines.harmonic import (
    FIT_CLIPPED,
    FIT_FALLBACK,
    FIT_NAN,
    FIT_SHRUNK,
    FIT_TERMS_DROPPED,
    ROBUST,
    effective_ar_order,
    harmonic_ar_diagnose,
    harmonic_periods,
    resolvable_periods,
)
from wq_pipeline.models.baselines.persistence import persistence_forecast
from wq_pipeline.models.baselines.seasonal_naive import (
    detect_period,
    level_adjusted_seasonal_naive_forecast,
    period_candidates,
    seasonal_naive_forecast,
    select_period,
)

STATISTICAL = ("persistence", "seasonal_naive", "level_adjusted_seasonal_naive", "climatology", "harmonic_ar")
# Sub-daily grids: (trailing window in hours, AR order, tidal constituents) tried on validation.
HARMONIC_GRID = tuple((hours, p_ar, tides) for hours in (336.0, 672.0) for p_ar in (2, 24) for tides in (False, True))
# Daily or coarser grids: (trailing window in days, AR order, annual terms, weekly term).
HARMONIC_GRID_DAILY = tuple((days, p_ar, annual, weekly) for days in (56.0, 112.0, 224.0, 365.0)
                            for p_ar in (1, 3, 7) for annual in (False, True) for weekly in (False, True))
MIN_SCORED = 20


@dataclass
class BaselineForecasts:
    """``forecasts[name]``: ``(n_origins, H)`` in target units at the origins asked for;
    ``info``: the choices made (JSON)."""

    forecasts: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)


def step_rmse(forecast: np.ndarray, observed: np.ndarray, min_scored: int = MIN_SCORED) -> float:
    """RMSE over the finite pairs of two ``(n,)`` arrays; NaN with fewer than ``min_scored``."""
    ok = np.isfinite(forecast) & np.isfinite(observed)
    return float(np.sqrt(np.mean((forecast[ok] - observed[ok]) ** 2))) if ok.sum() >= min_scored else float("nan")


# Cross-fitting: each half of the validation origins is forecast with the setting chosen on the
# other half, which needs this many scored points per half.
MIN_SCORED_HALF = 10


def cross_fitted(candidates: dict[str, np.ndarray], obs_val: np.ndarray, chosen: str,
                 min_scored: int = MIN_SCORED_HALF) -> tuple[np.ndarray, dict[str, str]]:
    """Validation forecasts ``(n_val, H)`` in which no row's setting was chosen on its own target:
    ``candidates[key]`` are every setting's validation forecasts ``(n_val, H)``, ``obs_val (n_val,)``
    the targets at step H. The first half of the rows takes the setting with the lowest RMSE at
    step H on the second half and vice versa (``chosen``, the setting of the whole period, where
    a half has too few scored points). A downstream ensemble warms its weights up on these, so a
    setting picked among many on a short validation period does not look better than it is."""
    n = obs_val.size
    half = n // 2
    parts = {"first_half": (slice(0, half), slice(half, n)), "second_half": (slice(half, n), slice(0, half))}
    out = np.array(candidates[chosen], dtype=np.float64, copy=True)
    used: dict[str, str] = {}
    for name, (rows, other) in parts.items():
        scores = {k: step_rmse(f[other, -1], obs_val[other], min_scored) for k, f in candidates.items()}
        finite = {k: v for k, v in scores.items() if np.isfinite(v)}
        key = min(finite, key=finite.get) if finite else chosen
        out[rows] = candidates[key][rows]
        used[name] = key
    return out, used


def is_subdaily(step_hours: float) -> bool:
    """True for grid steps under a day (diel terms, time-of-day climatology)."""
    return float(step_hours) < 24.0 - 1e-9


def harmonic_grid(step_hours: float) -> list[tuple[str, dict[str, Any]]]:
    """``(label, params)`` of the harmonic + AR settings tried on validation for this grid step.

    Sub-daily: :data:`HARMONIC_GRID` (336 / 672 h windows, AR(2) / AR(24), with or without tides),
    ``n_fit = max(hours / step, 4 (p + 1), 16)`` steps. Daily or coarser: :data:`HARMONIC_GRID_DAILY`
    (56 / 112 / 224 / 365-day windows, AR(1) / AR(3) / AR(7), annual terms on/off, weekly on/off),
    ``n_fit = max(round(days * 24 / step), 1)``; settings that resolve to the same model (annual
    terms in a window shorter than half a year, an AR order above what the window allows) are
    listed once. ``params`` hold ``n_fit, p_ar, tides, annual, weekly`` only.
    """
    step = float(step_hours)
    out: list[tuple[str, dict[str, Any]]] = []
    if is_subdaily(step):
        for hours, p_ar, tides in HARMONIC_GRID:
            n_fit = max(int(round(hours / step)), 4 * (p_ar + 1), 16)
            out.append((f"window {hours:g} h, AR({p_ar}), {'diel + tidal' if tides else 'diel'}",
                        dict(n_fit=n_fit, p_ar=p_ar, tides=tides, annual=False, weekly=False)))
        return out
    seen: set[tuple[Any, ...]] = set()
    for days, p_ar, annual, weekly in HARMONIC_GRID_DAILY:
        n_fit = max(int(round(days * 24.0 / step)), 1)
        periods = resolvable_periods(harmonic_periods(False, step_hours=step, annual=annual, weekly=weekly),
                                     n_fit * step, n_fit)
        key = (n_fit, effective_ar_order(n_fit, p_ar), periods)
        if key in seen:
            continue
        seen.add(key)
        terms = " + ".join(t for t, on in (("annual", annual), ("weekly", weekly)) if on) or "level"
        out.append((f"window {days:g} d, AR({effective_ar_order(n_fit, p_ar)}), {terms}",
                    dict(n_fit=n_fit, p_ar=p_ar, tides=False, annual=annual, weekly=weekly)))
    return out


def _status_counts(status: np.ndarray) -> dict[str, int]:
    """How many origins had each harmonic + AR event (JSON)."""
    return {name: int(np.count_nonzero(status & bit)) for name, bit in
            (("ar_shrunk", FIT_SHRUNK), ("clipped_to_envelope", FIT_CLIPPED), ("seasonal_naive_fallback", FIT_FALLBACK),
             ("no_forecast", FIT_NAN), ("terms_dropped", FIT_TERMS_DROPPED))} | {"origins": int(status.size)}


def choose_period(train: np.ndarray, train_obs: np.ndarray, H: int, step_hours: float, seasonal_period: int | None,
                   max_lag: int | None, info: dict[str, Any]) -> int:
    """The seasonal-naive period (steps), recorded in ``info``."""
    if seasonal_period:
        info["seasonal_period_source"] = "--seasonal-period"
        return int(seasonal_period)
    lag = max_lag or max(2, min(int(round(200 / step_hours)), train.size // 4))
    try:
        detected: int | None = detect_period(train, max_lag=max(2, lag))
    except ValueError:
        detected = None
    cands = period_candidates(step_hours, detected)
    info["acf_period"] = detected
    try:
        period, by_period = select_period(train, H, cands, observed=train_obs)
    except ValueError as err:
        info.update(seasonal_period_source=f"fallback to 1 step (persistence): {err}",
                    seasonal_period_candidates_rmse={str(k): float("nan") for k in cands})
        return 1
    info.update(seasonal_period_source="lowest training RMSE at step H among candidates",
                seasonal_period_candidates_rmse={str(k): v for k, v in by_period.items()})
    return period


def fit_climatology_profile(y: np.ndarray, val_start: int, step_hours: float, period: int,
                            times: pd.DatetimeIndex | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The climatology of the training data ``y[:val_start]``: ``(state, info)``. ``state`` is
    ``{"kind": "period" | "day_of_year", "profile": [...]}`` (JSON; see
    :func:`climatology_from_profile`): the time of day on sub-daily grids (the phase of the seasonal
    period when the step does not divide a day), the day of year otherwise."""
    train = y[:val_start]
    if is_subdaily(step_hours):
        per_day = 24.0 / step_hours
        by_hour = per_day >= 2 and abs(per_day - round(per_day)) < 1e-9
        clim_period = int(round(per_day)) if by_hour else period
        info = dict(climatology="time of day" if by_hour else "phase of the seasonal period",
                    climatology_period=clim_period)
        return {"kind": "period", "profile": fit_climatology(train, clim_period).tolist()}, info
    if times is not None:
        info = dict(climatology=f"day of year, smoothed over +-{DOY_HALF_WIDTH} days", climatology_period=None,
                    climatology_half_width_days=DOY_HALF_WIDTH)
        return {"kind": "day_of_year",
                "profile": fit_doy_climatology(train, times[:val_start], DOY_HALF_WIDTH).tolist()}, info
    clim_period = max(1, int(round(8766.0 / step_hours)))
    info = dict(climatology=f"phase of a {clim_period}-step year from position 0 (no grid times given)",
                climatology_period=clim_period)
    return {"kind": "period", "profile": fit_climatology(train, clim_period).tolist()}, info


def climatology_from_profile(state: dict[str, Any], y: np.ndarray, origins: np.ndarray, H: int,
                             times: pd.DatetimeIndex | None) -> np.ndarray:
    """Forecasts ``(n, H)`` of a climatology state from :func:`fit_climatology_profile`."""
    profile = np.asarray(state["profile"], dtype=np.float64)
    if state["kind"] == "day_of_year":
        if times is None:
            raise ValueError("a day-of-year climatology needs the grid times")
        return doy_climatology_forecast(times, origins, H, profile)
    return climatology_forecast(y, origins, H, profile)


def choose_harmonic(y: np.ndarray, obs_val: np.ndarray, val_origins: np.ndarray, H: int, step: float,
                    period: int) -> tuple[dict[str, Any], str | None, dict[str, float], dict[str, np.ndarray]]:
    """Harmonic + AR's setting with the lowest RMSE at step H on the validation origins
    (``obs_val (n_val,)``: their observed targets): ``(params, label or None when no setting had
    enough scored points, validation RMSE per label, validation forecasts per label)``."""
    robust = dict(ROBUST, fallback_period=period)
    best, scores, on_val = None, {}, {}
    for key, grid_params in harmonic_grid(step):
        params = dict(grid_params, **robust)
        on_val[key] = harmonic_ar_diagnose(y, val_origins, H, step, **params)[0]
        r = step_rmse(on_val[key][:, -1], obs_val)
        scores[key] = r
        if np.isfinite(r) and (best is None or r < best[0]):
            best = (r, key, params)
    if best is None:
        return dict(harmonic_grid(step)[0][1], **robust), None, scores, on_val
    return best[2], best[1], scores, on_val


def validation_targets(obs: np.ndarray, val_origins: np.ndarray, H: int) -> np.ndarray:
    """``(n_val,)`` observed targets at step H of the validation origins (NaN beyond the series)."""
    target_pos = val_origins + H
    return np.where(target_pos < obs.size, obs[np.minimum(target_pos, obs.size - 1)], np.nan)


def statistical_baselines(y: np.ndarray, val_start: int, val_origins: np.ndarray, forecast_origins: np.ndarray,
                          horizon: int, step_hours: float, seasonal_period: int | None = None,
                          max_lag: int | None = None, *, times: pd.DatetimeIndex | None = None,
                          y_obs: np.ndarray | None = None) -> BaselineForecasts:
    """Forecasts ``(len(forecast_origins), H)`` of every baseline in :data:`STATISTICAL`.

    ``y (N,)`` is the series on its grid (NaN in gaps, short gaps interpolated); positions
    ``< val_start`` are training data; ``val_origins (n_val,)`` are validation origins (their
    targets lie before the test period) on which harmonic + AR's settings are scored by RMSE at
    step H; ``forecast_origins (n,)`` are the origins to forecast (validation and test ones,
    say). ``step_hours`` is the grid step in hours; ``times (N,)`` the grid times (day-of-year
    climatology on daily grids); ``y_obs (N,)`` is ``y`` with NaN wherever the value is not a
    real observation (only those score; default ``y``). Nothing after the validation targets
    is used to choose a parameter, and row ``i`` uses ``y[<= forecast_origins[i]]`` only.
    """
    y = np.asarray(y, dtype=np.float64)
    obs = y if y_obs is None else np.asarray(y_obs, dtype=np.float64)
    if obs.shape != y.shape:
        raise ValueError(f"y_obs {obs.shape} and y {y.shape} differ in shape")
    if times is not None:
        times = pd.DatetimeIndex(times)
        if times.size != y.size:
            raise ValueError(f"times ({times.size},) and y {y.shape} differ in length")
    val_origins = np.asarray(val_origins, dtype=np.int64)
    o = np.asarray(forecast_origins, dtype=np.int64)
    H = int(horizon)
    step = float(step_hours)
    train = y[:val_start]
    info: dict[str, Any] = {"grid_step_hours": step}
    period = choose_period(train, obs[:val_start], H, step, seasonal_period, max_lag, info)
    info["seasonal_period"] = period

    obs_val = validation_targets(obs, val_origins, H)
    chosen, label, scores, on_val = choose_harmonic(y, obs_val, val_origins, H, step, period)
    info["harmonic_ar"] = label or f"{harmonic_grid(step)[0][0]} (default: no setting had {MIN_SCORED} scored validation points)"
    info.update(harmonic_ar_validation_rmse=scores, harmonic_ar_params=chosen)
    harm, status = harmonic_ar_diagnose(y, o, H, step, **chosen)
    info["harmonic_ar_events"] = _status_counts(status)
    if val_origins.size:  # validation rows: cross-fitted (see cross_fitted)
        crossed, used = cross_fitted(on_val, obs_val, label or harmonic_grid(step)[0][0])
        rows = np.searchsorted(val_origins, o)
        is_val = (rows < val_origins.size) & (val_origins[np.minimum(rows, val_origins.size - 1)] == o)
        harm = harm.copy()
        harm[is_val] = crossed[rows[is_val]]
        info["harmonic_ar_cross_fitted"] = used

    clim_state, clim_info = fit_climatology_profile(y, val_start, step, period, times)
    info.update(clim_info)
    clim = climatology_from_profile(clim_state, y, o, H, times)
    return BaselineForecasts(forecasts={
        "persistence": persistence_forecast(y, o, H),
        "seasonal_naive": seasonal_naive_forecast(y, o, H, period),
        "level_adjusted_seasonal_naive": level_adjusted_seasonal_naive_forecast(y, o, H, period),
        "climatology": clim,
        "harmonic_ar": harm,
    }, info=info)
