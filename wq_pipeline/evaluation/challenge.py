"""The NEON Ecological Forecasting Challenge's way of scoring daily forecasts (``--challenge``).

The challenge issues a forecast at the start of each 30-day window, for horizons 1..H days, and
scores it by CRPS against two baselines, computed here the way the challenge computes them, from
the data before each fold's test period only:

- **climatology**: a normal distribution per day of year, with the mean and standard deviation
  (ddof 1) of the observations on that day of year in the training years
  (:func:`doy_climatology`). A day of year seen in one year only has no standard deviation; it
  takes the median standard deviation of the days that have one. A day never seen has no
  forecast, and that point is scored for no model.
- **persistence**: a random walk from the observation at the origin, its steps drawn with
  replacement from the day-to-day changes of the training period (:func:`random_walk_offsets`,
  2,000 paths, fixed seed): the h-day quantiles are the origin's value plus the quantiles of
  the sum of h drawn changes.

:func:`challenge_scores` gives every model's (the main model's and the two baselines') mean CRPS
per horizon over the 30-day-window origins and over every test origin, on the points all three
can score, and the main model's CRPS skill against each baseline per horizon.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from wq_pipeline.models.scoring_rules import crps_values

WINDOW_DAYS = 30
RW_PATHS = 2000
RW_SEED = 20220101


def doy_climatology(values: np.ndarray, times: pd.DatetimeIndex, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation ``(367,)`` (index = day of year 1..366; 0 unused) of the
    observed ``values (N,)`` (NaN where not observed) at positions ``< end``; NaN where no year
    has the day; the median standard deviation where only one year has it."""
    v = pd.Series(np.asarray(values, dtype=np.float64)[:end], index=times[:end])
    v = v[v.notna()]
    g = v.groupby(v.index.dayofyear)
    mean = np.full(367, np.nan)
    sd = np.full(367, np.nan)
    mean[g.mean().index] = g.mean().to_numpy()
    s = g.std(ddof=1)
    sd[s.index] = s.to_numpy()
    known = np.isfinite(sd)
    fill = np.nanmedian(sd[known]) if known.any() else np.nan
    sd[np.isfinite(mean) & ~known] = fill
    return mean, sd


def climatology_quantiles(mean: np.ndarray, sd: np.ndarray, target_times: pd.DatetimeIndex, shape: tuple[int, int],
                          levels: tuple[float, ...]) -> np.ndarray:
    """``(n, H, Q)`` quantiles of the day-of-year normal at ``target_times (n * H,)``, origin by
    origin."""
    doy = np.asarray(target_times.dayofyear)
    mu, s = mean[doy].reshape(shape), sd[doy].reshape(shape)
    z = norm.ppf(np.asarray(levels, dtype=np.float64))
    return mu[..., None] + np.maximum(s, 0.0)[..., None] * z


def random_walk_offsets(values: np.ndarray, observed: np.ndarray, end: int, H: int,
                        levels: tuple[float, ...]) -> np.ndarray:
    """``(H, Q)``: quantiles of the sum of h day-to-day changes drawn with replacement from the
    training period (pairs of consecutive real observations before ``end``), h = 1..H."""
    v = np.where(np.asarray(observed, dtype=bool), np.asarray(values, dtype=np.float64), np.nan)[:end]
    steps = np.diff(v)
    steps = steps[np.isfinite(steps)]
    if steps.size == 0:
        return np.full((H, len(levels)), np.nan)
    rng = np.random.default_rng(RW_SEED)
    paths = np.cumsum(rng.choice(steps, size=(RW_PATHS, H), replace=True), axis=1)  # (paths, H)
    return np.quantile(paths, np.asarray(levels), axis=0).T


def window_origins(origin_times: pd.DatetimeIndex, start: pd.Timestamp, days: int = WINDOW_DAYS) -> np.ndarray:
    """``(n,)`` mask of the first origin at or after the start of each ``days``-day window from
    ``start`` (an origin is a real observation, so a window whose first day has none starts at
    its first observed day)."""
    k = np.floor((origin_times - start) / pd.Timedelta(days=days)).astype(int)
    mask = np.zeros(len(origin_times), dtype=bool)
    seen: set[int] = set()
    for i, w in enumerate(k):
        if w >= 0 and w not in seen:
            seen.add(w)
            mask[i] = True
    return mask


def challenge_scores(obs: np.ndarray, quantiles: dict[str, np.ndarray], levels: tuple[float, ...],
                     windows: np.ndarray, main: str) -> dict[str, Any]:
    """Per model of ``quantiles`` (``{name: (n, H, Q)}``, the main model and the two baselines):
    mean CRPS per horizon and overall, over the window origins (``windows (n,)`` mask) and over
    every origin, on the points every model can score; the main model's CRPS skill per horizon
    against each other model."""
    lv = np.asarray(levels, dtype=np.float64)
    ok = np.isfinite(obs)
    for q in quantiles.values():
        ok &= np.isfinite(q).all(axis=2)
    crps = {}
    for name, q in quantiles.items():
        c = np.full(obs.shape, np.nan)
        if ok.any():  # none where the training years share no day of year with the test period
            c[ok] = crps_values(obs[ok], q[ok], lv)
        crps[name] = c
    out: dict[str, Any] = {"levels": list(levels), "window_days": WINDOW_DAYS, "n_origins": int(obs.shape[0]),
                           "n_window_origins": int(windows.sum())}
    for label, rows in (("windows", windows), ("all_origins", np.ones(obs.shape[0], dtype=bool))):
        part: dict[str, Any] = {"n_points": int(ok[rows].sum()), "models": {}}
        for name, c in crps.items():
            sub = c[rows]
            per = [float(np.nanmean(sub[:, h])) if np.isfinite(sub[:, h]).any() else None for h in range(obs.shape[1])]
            part["models"][name] = {"crps": float(np.nanmean(sub)) if np.isfinite(sub).any() else None,
                                    "crps_per_horizon": per}
        m = part["models"][main]["crps_per_horizon"]
        part["skill_per_horizon"] = {
            ref: [1.0 - a / b if a is not None and b else None for a, b in zip(m, sc["crps_per_horizon"])]
            for ref, sc in part["models"].items() if ref != main}
        out[label] = part
    return out
