"""Causal spike guard: flags sensor glitches using only the readings up to each reading.

The decision at reading ``t`` depends on readings ``<= t`` only, so it never changes when later
readings change (a forecast issued at ``t`` uses only data up to ``t``, quality control included).

Algorithm (one variable, readings sorted by time; NaN = no reading, never guarded). A Hampel
identifier on increment rates, against the last ACCEPTED reading ``(t_a, x_a)``:

- ``rate = (x_t - x_a) / dt_t`` in units per hour, ``dt_t`` being the hours since the previous
  reading (guarded or not). Using the previous reading's time, not ``t_a``, judges every reading of
  a guarded run at the pace of one sampling step, so a glitch lasting several readings does not look
  slower, hence more plausible, the longer it lasts; dividing by the actual ``dt_t`` (not a nominal
  step) lets a reading after a hole of hours differ by as much as that time allows.
- the reference is the rates between consecutive accepted readings of the last ``window`` accepted
  readings: median ``m`` and robust scale ``s = 1.4826 * MAD``;
- the reading is guarded when ``|x_t - x_a| > floor`` (absolute, in the column's units; quantised
  or very smooth series are not over-flagged when ``s`` is tiny) AND either
  ``|rate - m| > threshold * s`` or, where a rate limit is set, ``|x_t - x_a| / (t - t_a) > max_rate``
  (hours since the last accepted reading);
- a reading that would be guarded is accepted when it is NOT such an outlier against the accepted
  reading before ``x_a`` (the same test and durations, that reading's value as the anchor): then the
  last accepted reading was a glitch the guard missed and this one is the series going on, so one
  missed glitch does not get the real readings after it guarded;
- guarded readings do not enter the reference and do not move ``(t_a, x_a)``;
- no decision (accept) until the history holds ``min_history`` accepted readings;
- a gap between two readings longer than ``reset_after_hours`` restarts the history;
- after ``max_run`` consecutive guarded readings the level really moved: the next reading that
  would be guarded is accepted instead and becomes the new level (its jump does not enter the
  reference); the earlier guarded readings stay guarded (decisions are never revised).

Defaults (threshold 6, window 32, min_history 8, max_run 4, reset after 36 h; per-variable floors
and rate limits in :data:`DEFAULT_LIMITS`) were chosen by measurement on development series only:
Sapelo 2012, Apalachicola 2013, NEON LEWI 15 min, NEON daily POSE/HOPB/BARC/SUGG.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from wq_pipeline.config import SpikeGuardConfig

_NS_PER_HOUR = 3_600_000_000_000
_MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class ColumnLimits:
    """Per-variable part of the guard: ``floor`` (column units; a jump must exceed it to be
    guarded) and ``max_rate`` (column units per hour; None = no rate limit)."""

    floor: float
    max_rate: float | None = None


#: default limits by lower-case column name (dissolved oxygen mg/L, water temperature degC, pH, salinity ppt).
#: Measured on the development series with threshold 6: DO floor 1.5 mg/L guards nothing on the clean Sapelo
#: file (whose tidal rises reach 1.7 mg/L in 30 min; floor 1.0 guards 0.3 %) and no daily mean, while 3 mg/L
#: glitches are caught 79-100 % of the time at 15-30 min sampling; 12 mg/L/h (3 mg/L in 15 min) is 3.6 times
#: the fastest clean Sapelo change. Temperature 2.5 degC (2.0 guards 0.18 % of Sapelo, all tidal fronts); pH 0.4
#: (pH is quantised to 0.1: floor 0 guards a third of the readings); salinity 8 ppt (estuarine salt fronts move
#: 10-20 ppt within an hour: 5 ppt guards 0.6 % of Sapelo).
DEFAULT_LIMITS: dict[str, ColumnLimits] = {
    **{k: ColumnLimits(floor=1.5, max_rate=12.0) for k in ("do_mgl", "do_obs", "dissolved_oxygen", "do", "oxygen")},
    **{k: ColumnLimits(floor=2.5) for k in ("temp", "temperature", "watertemp")},
    "ph": ColumnLimits(floor=0.4),
    **{k: ColumnLimits(floor=8.0) for k in ("sal", "salinity")},
}


@dataclass(frozen=True)
class SpikeParams:
    """Everything :func:`spike_guard` needs for one variable.

    ``threshold``: robust standard deviations (> 0); ``window``: accepted readings whose consecutive
    rates form the reference (>= 3); ``min_history``: accepted readings needed before any decision
    (2 .. window); ``max_run``: consecutive guarded readings after which the level is taken to have
    moved (>= 1); ``reset_after_hours``: a gap between readings longer than this restarts the
    history; ``floor`` (column units) and ``max_rate`` (column units per hour, None = off).
    """

    floor: float
    max_rate: float | None = None
    threshold: float = 6.0
    window: int = 32
    min_history: int = 8
    max_run: int = 4
    reset_after_hours: float = 36.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.threshold) and self.threshold > 0):
            raise ValueError(f"threshold must be a positive number, got {self.threshold}")
        if not (math.isfinite(self.floor) and self.floor >= 0):
            raise ValueError(f"floor must be >= 0, got {self.floor}")
        if self.max_rate is not None and not self.max_rate > 0:
            raise ValueError(f"max_rate must be > 0 or None, got {self.max_rate}")
        if self.window < 3:
            raise ValueError(f"window must be >= 3, got {self.window}")
        if not 2 <= self.min_history <= self.window:
            raise ValueError(f"min_history must be in [2, window={self.window}], got {self.min_history}")
        if self.max_run < 1:
            raise ValueError(f"max_run must be >= 1, got {self.max_run}")
        if not self.reset_after_hours > 0:
            raise ValueError(f"reset_after_hours must be > 0, got {self.reset_after_hours}")


def column_params(column: str, cfg: SpikeGuardConfig) -> SpikeParams | None:
    """The guard's parameters for ``column`` under ``cfg``, or None when it is not guarded (guard
    disabled, column switched off, or neither a built-in default nor an override for it).

    Built-in limits come from :data:`DEFAULT_LIMITS`; an override in ``cfg.columns`` (matched
    case-insensitively) replaces the fields it sets (``max_rate`` 0 = no rate limit).
    """
    if not cfg.enabled:
        return None
    key = column.strip().lower()
    base = DEFAULT_LIMITS.get(key)
    override = next((v for k, v in cfg.columns.items() if k.strip().lower() == key), None)
    if override is not None and not override.enabled:
        return None
    if base is None and override is None:
        return None
    floor = base.floor if base is not None else 0.0
    max_rate = base.max_rate if base is not None else None
    if override is not None:
        if override.floor is not None:
            floor = override.floor
        if override.max_rate is not None:
            max_rate = override.max_rate or None
    return SpikeParams(floor=floor, max_rate=max_rate, threshold=cfg.threshold, window=cfg.window,
                       min_history=cfg.min_history, max_run=cfg.max_run, reset_after_hours=cfg.reset_after_hours)


def describe(column: str, params: SpikeParams) -> str:
    """One line naming a column's guard parameters (for the QC rules)."""
    rate = f", rate limit {params.max_rate:g}/h" if params.max_rate else ""
    return f"{column!r} (floor {params.floor:g}{rate})"


def spike_guard(times_ns: np.ndarray, values: np.ndarray, params: SpikeParams) -> np.ndarray:
    """Bool mask, shape (n,), of the readings the causal spike guard removes.

    ``times_ns``: int64 nanoseconds (e.g. ``DatetimeIndex.asi8``), shape (n,), strictly increasing;
    ``values``: float readings in the column's units, shape (n,), NaN where there is no reading
    (never guarded, ignored). Pure: the inputs are not modified. The decision at position ``i``
    uses positions ``<= i`` only (see the module docstring for the rule).
    """
    t = np.ascontiguousarray(times_ns, dtype=np.int64)
    x = np.ascontiguousarray(values, dtype=np.float64)
    if t.ndim != 1 or x.shape != t.shape:
        raise ValueError(f"times_ns and values must be 1-D of the same length, got {t.shape} and {x.shape}")
    if t.size > 1 and not (np.diff(t) > 0).all():
        raise ValueError("times_ns must be strictly increasing (sort and resolve duplicate timestamps first)")
    max_rate = -1.0 if params.max_rate is None or math.isinf(params.max_rate) else float(params.max_rate)
    reset_ns = params.reset_after_hours * _NS_PER_HOUR
    reset = np.iinfo(np.int64).max if reset_ns >= np.iinfo(np.int64).max else int(reset_ns)
    # values within 1e-9 (relative) of the floor count as equal to it, so a quantised jump that
    # equals the floor is treated the same whatever its float rounding (8.1 - 7.7 vs 0.4)
    floor = float(params.floor) * (1.0 + 1e-9) + 1e-12
    return _guard(t, x, float(params.threshold), int(params.window), int(params.min_history), int(params.max_run),
                  reset, floor, max_rate)


@njit(cache=True, nogil=True)
def _outlier(jump: float, pace_h: float, since_h: float, med: float, scale: float, threshold: float, floor: float,
             max_rate: float) -> bool:  # pragma: no cover - compiled
    """Is a jump (units) from an anchor an outlier: beyond the floor, and its rate at the pace of one
    sampling step (``pace_h``) a Hampel outlier or its rate since the anchor (``since_h``) over the limit."""
    if not abs(jump) > floor:
        return False
    if max_rate > 0.0 and abs(jump) / since_h > max_rate:
        return True
    return abs(jump / pace_h - med) > threshold * scale


@njit(cache=True, nogil=True)
def _guard(t: np.ndarray, x: np.ndarray, threshold: float, window: int, min_history: int, max_run: int,
           reset_ns: int, floor: float, max_rate: float) -> np.ndarray:  # pragma: no cover - compiled
    n = x.size
    out = np.zeros(n, dtype=np.bool_)
    size = window - 1  # rates between `window` accepted readings
    ring = np.empty(size)
    work = np.empty(size)
    count = 0  # rates in the ring
    head = 0
    started = False
    last_x = 0.0  # last accepted reading and its time
    last_t = 0
    before_x = np.nan  # the accepted reading before it (NaN: none since the history started)
    prev_t = 0  # previous reading (accepted or guarded)
    run = 0  # consecutive guarded readings
    for i in range(n):
        xi = x[i]
        if not np.isfinite(xi):
            continue
        ti = t[i]
        if not started or ti - prev_t > reset_ns:
            count = 0
            head = 0
            run = 0
            last_x = xi
            last_t = ti
            before_x = np.nan
            prev_t = ti
            started = True
            continue
        pace_h = (ti - prev_t) / 3.6e12
        prev_t = ti
        jump = xi - last_x
        guard = False
        if count + 1 >= min_history and abs(jump) > floor:
            for k in range(count):
                work[k] = ring[k]
            med = np.median(work[:count])
            for k in range(count):
                work[k] = abs(ring[k] - med)
            scale = _MAD_TO_SD * np.median(work[:count])
            guard = _outlier(jump, pace_h, (ti - last_t) / 3.6e12, med, scale, threshold, floor, max_rate)
            if guard and np.isfinite(before_x):  # consistent with the level before the last accepted reading:
                guard = _outlier(xi - before_x, pace_h, (ti - last_t) / 3.6e12, med, scale, threshold, floor,
                                 max_rate)  # that reading was a missed glitch, this one is the series going on
        if guard and run < max_run:
            out[i] = True
            run += 1
            continue
        if not guard:  # an ordinary accepted reading: its rate joins the reference
            ring[head] = jump / pace_h
            head = (head + 1) % size
            if count < size:
                count += 1
        before_x = last_x
        last_x = xi  # accepted (after max_run guarded readings: the new level)
        last_t = ti
        run = 0
    return out
