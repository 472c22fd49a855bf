"""The hybrid model: a strong statistical first stage plus one FECA-LSTM that learns what it misses.

At origin ``t`` the first stage forecasts ``t+1 .. t+H``: harmonic regression (diel, plus tidal
constituents at estuaries) with AR residuals, refitted on the trailing window, in the
configuration the baselines chose on validation origins (:mod:`wq_pipeline.models.baselines.suite`).
One network then sees, over the last ``W`` steps up to ``t`` only,

* the raw series (``raw_channel``), so it can never know less than the plain LSTM;
* every component of the stepwise (trailing-window) decomposition (``components``);
* the covariates, and calendar terms (``calendar``: hour of day and day of year as sine and
  cosine),

and predicts the first stage's error at every step ``1 .. H`` at once (FECA weighs the channels).
The forecast is ``first stage + a_h * network`` with one weight ``a_h`` in ``[0, 1]`` per step,
fitted by least squares on the validation origins (``shrink``): a network that learnt nothing
useful is shrunk towards the first stage, which is itself a baseline. With ``first_stage="none"``
the network predicts the series directly (no shrinking: there is nothing to shrink towards).

Nothing after an origin enters its inputs or its first-stage forecast; no test-period value
chooses any setting.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from wq_pipeline.models.baselines.harmonic import harmonic_ar_forecast
from wq_pipeline.data.covariates import Covariates, covariate_windows
from wq_pipeline.options import FirstStage, HybridOptions  # noqa: F401  (re-exported: the hybrid's options)
from wq_pipeline.models.protocol import ComponentSamples, raw_windows, select_rows

def calendar_channels(times: pd.DatetimeIndex) -> np.ndarray:
    """Calendar terms ``(N, K)`` at every grid time: sine and cosine of the hour of day (only
    when the grid step is under a day) and of the day of year (K = 4 or 2, unitless in [-1, 1])."""
    if len(times) < 2:
        raise ValueError("calendar terms need at least two grid times")
    step_h = (times[1] - times[0]).total_seconds() / 3600.0
    cols = []
    if step_h < 24.0:
        hour = (times.hour + times.minute / 60.0).to_numpy(dtype=float)
        cols += [np.sin(2 * np.pi * hour / 24.0), np.cos(2 * np.pi * hour / 24.0)]
    doy = (times.dayofyear.to_numpy(dtype=float) - 1.0) + (times.hour.to_numpy(dtype=float) / 24.0)
    cols += [np.sin(2 * np.pi * doy / 365.25), np.cos(2 * np.pi * doy / 365.25)]
    return np.column_stack(cols)


def first_stage_forecast(values: np.ndarray, origins: np.ndarray, horizon: int, step_hours: float,
                         first_stage: FirstStage, params: dict[str, Any] | None) -> np.ndarray:
    """First-stage forecasts ``(n, H)`` in target units (zeros for ``"none"``); ``params`` are
    harmonic + AR's ``n_fit``, ``p_ar``, ``tides`` as chosen on validation."""
    if first_stage == "none":
        return np.zeros((np.asarray(origins).size, int(horizon)))
    if first_stage != "harmonic_ar":
        raise ValueError(f"unknown first stage {first_stage!r}; expected 'harmonic_ar' or 'none'")
    return harmonic_ar_forecast(values, origins, horizon, step_hours, **(params or {}))


def hybrid_inputs(values: np.ndarray, origins: np.ndarray, window: int, opts: HybridOptions,
                  samples: ComponentSamples | None, cov: Covariates, calendar: np.ndarray | None) -> np.ndarray:
    """Network inputs ``(n, W, C)`` for ``origins``: raw, components, covariates, calendar (in that
    order, each only when enabled), all from positions ``<= t``."""
    parts = []
    if opts.raw_channel:
        parts.append(raw_windows(values, origins, window))
    if opts.components:
        if samples is None:
            raise ValueError("components requested but no decomposition given")
        parts.append(select_rows(samples, origins))
    if not parts:
        raise ValueError("the hybrid network needs the raw channel, the components, or both")
    if cov.count:
        parts.append(covariate_windows(cov, origins, window))
    if calendar is not None:
        pos = np.asarray(origins, dtype=np.int64)[:, None] + np.arange(-window + 1, 1)[None, :]
        parts.append(calendar[pos])
    return np.concatenate(parts, axis=2)


def shrink_weights(residual: np.ndarray, correction: np.ndarray) -> np.ndarray:
    """Per-step weights ``(H,)`` in ``[0, 1]`` minimising ``sum (residual - a_h * correction)^2``
    over the finite rows of the validation arrays ``(n, H)`` (0 where the correction is all 0)."""
    ok = np.isfinite(residual) & np.isfinite(correction)
    r, c = np.where(ok, residual, 0.0), np.where(ok, correction, 0.0)
    num, den = (r * c).sum(axis=0), (c * c).sum(axis=0)
    a = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return np.clip(a, 0.0, 1.0)
