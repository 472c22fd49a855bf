"""Covariates: other measured variables of the station as extra, causal input channels.

A forecast issued at origin ``t`` may see covariate values at positions ``<= t`` only. QC fills
short gaps by linear interpolation, which uses the reading *after* the gap; for covariates that
would put a later reading into an earlier input. So covariate inputs are rebuilt from real
readings only:

1. keep the grid values that are real readings after QC (``StationSeries.frame_observed``);
2. carry the last reading forward for at most ``max_fill`` steps (known at the time it is used);
3. fill what is still missing with the covariate's mean over the training period (a constant
   known before any test origin), and count those points.

Each network then sees, beside its own channel, the covariates' last ``W`` values
``cov[t-W+1 .. t]`` (:func:`covariate_windows`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wq_pipeline.errors import InputError
from wq_pipeline.data.load import find_column
from wq_pipeline.data.qc import StationSeries


@dataclass(frozen=True)
class Covariates:
    """Causal covariate series on the target's grid.

    ``values``: ``(N, K)`` in each covariate's own unit, no NaN; ``names``: the K column names as
    in the file; ``info``: per covariate, counts of real readings, forward-filled and mean-filled
    points (JSON-serialisable).
    """

    values: np.ndarray
    names: list[str]
    info: dict = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.names)


def no_covariates(n: int) -> Covariates:
    """``(n, 0)``: a run without covariates."""
    return Covariates(values=np.empty((n, 0)), names=[], info={})


def resolve_covariates(station: StationSeries, wanted: list[str]) -> list[str]:
    """Column names of ``wanted`` in the station's QC frame (case-insensitive match).

    Raises :class:`InputError` naming the file and the available columns when a name is missing,
    empty after QC, repeated, or the target itself."""
    columns = list(station.frame.columns)
    out: list[str] = []
    for name in wanted:
        col = find_column(columns, name)
        if col is None:
            raise InputError(
                f"{station.path.name}: covariate column {name!r} not found or empty after QC; "
                f"available numeric columns: {', '.join(c for c in columns if c != station.target)}"
            )
        if col == station.target:
            raise InputError(f"{station.path.name}: covariate {name!r} is the target column {station.target!r}; "
                             f"the target's own history is always an input")
        if col in out:
            raise InputError(f"{station.path.name}: covariate {name!r} given twice")
        out.append(col)
    return out


def causal_fill(values: np.ndarray, observed: np.ndarray, max_fill: int) -> np.ndarray:
    """``(N,)``: the real readings, each carried forward over at most ``max_fill`` missing steps
    (NaN beyond, and before the first reading). Position ``p`` depends on positions ``<= p`` only."""
    v = np.where(observed, values, np.nan).astype(float)
    idx = np.where(observed, np.arange(v.size), -1)
    last = np.maximum.accumulate(idx)  # position of the last reading at or before p
    out = np.full(v.size, np.nan)
    ok = (last >= 0) & (np.arange(v.size) - last <= max_fill)
    out[ok] = v[last[ok]]
    return out


def build_covariates(station: StationSeries, wanted: list[str], train_end: int, max_fill: int,
                     means: dict[str, float] | None = None) -> Covariates:
    """Causal covariates (module docstring) for ``wanted`` columns; ``train_end`` is the first
    position after the training period (the fill means use positions ``< train_end`` only).
    ``means``: the fill means a registered model was trained with (then ``train_end`` is unused),
    so a live file is filled exactly as the training data was. ``info[name]["fill_mean"]`` records
    the mean used."""
    names = resolve_covariates(station, wanted)
    n = len(station.values)
    if not names:
        return no_covariates(n)
    cols, info = [], {}
    for name, asked in zip(names, wanted):
        seen = station.frame_observed[name].to_numpy(dtype=bool)
        filled = causal_fill(station.frame[name].to_numpy(dtype=float), seen, max_fill)
        if means is not None:
            mean = float(means.get(name, means.get(asked, np.nan)))
            if not np.isfinite(mean):
                raise ValueError(f"no fill mean for covariate {name!r} in {sorted(means)}")
        else:
            train = filled[:train_end]
            if not np.isfinite(train).any():
                raise InputError(f"{station.path.name}: covariate {name!r} has no reading in the training period "
                                 f"(before {station.values.index[min(train_end, n - 1)].isoformat()}); expected "
                                 f"readings there")
            mean = float(np.nanmean(train))
        missing = ~np.isfinite(filled)
        cols.append(np.where(missing, mean, filled))
        info[name] = {"observed": int(seen.sum()), "carried_forward": int((np.isfinite(filled) & ~seen).sum()),
                      "filled_with_training_mean": int(missing.sum()), "fill_mean": mean}
    return Covariates(values=np.column_stack(cols), names=names, info=info)


def covariate_windows(cov: Covariates, origins: np.ndarray, window: int) -> np.ndarray:
    """``(n, W, K)``: ``cov[t-W+1 .. t]`` for every origin ``t`` (nothing after the origin)."""
    pos = np.asarray(origins, dtype=np.int64)[:, None] + np.arange(-window + 1, 1)[None, :]
    return cov.values[pos]


def with_covariates(X: np.ndarray, cov: Covariates, origins: np.ndarray) -> np.ndarray:
    """Append the covariate channels to model inputs ``(n, W, C)`` -> ``(n, W, C + K)``."""
    if cov.count == 0:
        return X
    return np.concatenate([X, covariate_windows(cov, origins, X.shape[1])], axis=2)
