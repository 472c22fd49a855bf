"""What is known at a time ``t``: the data cut-off for training and the origin of a forecast.

Both rest on the same rule as evaluation: a position may be used at ``t`` only if it is at or
before the last real observation at or before ``t``. Resampling bins are right-closed (a value
never holds readings after its own timestamp) and gaps are interpolated between two real
observations, so cutting at a real observation makes the series exactly what a user would have
had at ``t``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from wq_pipeline.errors import InputError
from wq_pipeline.models.protocol import window_ok
from wq_pipeline.data.qc import StationSeries


def as_timestamp(value: str | pd.Timestamp, tz: object, option: str) -> pd.Timestamp:
    """Parse a user time; a time without an offset is read in the series' zone ``tz``."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise InputError(f"{option} {value!r}: not a timestamp (use ISO 8601, e.g. 2012-10-01T06:00-05:00)") from None
    if ts is pd.NaT:
        raise InputError(f"{option} {value!r}: not a timestamp")
    return ts.tz_localize(tz) if ts.tzinfo is None else ts.tz_convert(tz)


def check_within(station: StationSeries, when: pd.Timestamp, option: str) -> None:
    """InputError unless ``when`` lies between the first time of the series and one step past
    its last time."""
    times = station.values.index
    step = pd.Timedelta(station.freq)
    if when < times[0]:
        raise InputError(f"{station.path}: {option} {when.isoformat()} is before the data of '{station.target}' "
                         f"start ({times[0].isoformat()})")
    if when > times[-1] + step:
        raise InputError(f"{station.path}: {option} {when.isoformat()} is past the end of the data of "
                         f"'{station.target}' (last time {times[-1].isoformat()})")


def cutoff_position(station: StationSeries, as_of: pd.Timestamp | None) -> int:
    """Position of the last real observation at or before ``as_of`` (the newest data when None)."""
    times = station.values.index
    observed = station.observed.to_numpy(dtype=bool)
    n = times.size if as_of is None else int(times.searchsorted(as_of, side="right"))
    obs = np.flatnonzero(observed[:n])
    if obs.size == 0:
        raise InputError(f"{station.path}: no observation of '{station.target}' at or before "
                         f"{as_of.isoformat() if as_of is not None else 'the end'}")
    return int(obs[-1])


def known_series(station: StationSeries, as_of: pd.Timestamp | None) -> tuple[np.ndarray, np.ndarray, pd.DatetimeIndex]:
    """``(values, observed, times)`` cut after the last observation at or before ``as_of``."""
    cut = cutoff_position(station, as_of)
    values = station.values.to_numpy(dtype=float)[: cut + 1].copy()
    observed = station.observed.to_numpy(dtype=bool)[: cut + 1].copy()
    return values, observed, station.values.index[: cut + 1]


def origin_ok(values: np.ndarray, observed: np.ndarray, lookback: int) -> np.ndarray:
    """Bool ``(N,)``: positions a forecast can be issued from (a real observation with a finite
    trailing window of ``lookback`` points). Unlike evaluation, the last positions qualify."""
    return window_ok(np.isfinite(values), lookback) & observed.astype(bool)


def origin_positions(times: pd.DatetimeIndex, ok: np.ndarray, issue_times: pd.DatetimeIndex,
                     max_staleness: int) -> np.ndarray:
    """For each issue time, the newest usable origin at or before it, or -1 when the newest is
    more than ``max_staleness`` grid steps older (or there is none). ``(n_issue,)`` int64."""
    usable = np.flatnonzero(ok)
    upto = times.searchsorted(issue_times, side="right")  # positions < upto are at or before
    k = np.searchsorted(usable, upto, side="left") - 1
    out = np.full(issue_times.size, -1, dtype=np.int64)
    has = k >= 0
    pos = usable[np.where(has, k, 0)]
    fresh = has & ((upto - 1) - pos <= max_staleness)
    out[fresh] = pos[fresh]
    return out


def data_hash(values: np.ndarray, observed: np.ndarray, times: pd.DatetimeIndex) -> str:
    """sha256 of a series' times (ns since epoch, UTC), values and observation marks."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(times.asi8).tobytes())
    h.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(observed, dtype=np.bool_).tobytes())
    return h.hexdigest()


def site_key(station: StationSeries, site: str | None, data: Path) -> str:
    """The site name stored with forecasts and models: the file's site code, else ``--site``,
    else the file name without extensions."""
    return station.site or site or Path(data).name.split(".")[0]
