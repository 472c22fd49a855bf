"""Real daily and stream series for the baseline tests (loaded through the project's QC)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


@dataclass(frozen=True)
class GridSeries:
    """A target on its grid: ``values (N,)`` after QC (short gaps interpolated), ``observed (N,)``
    bool (real readings), ``times (N,)``, ``step_hours``."""

    values: np.ndarray
    observed: np.ndarray
    times: pd.DatetimeIndex
    step_hours: float

    @property
    def y_obs(self) -> np.ndarray:
        """``values`` with NaN wherever the value is not a real observation."""
        return np.where(self.observed, self.values, np.nan)


def _load(path: Path, target: str, site: str, freq: str) -> GridSeries:
    from wq_pipeline.data.station import load_station

    s = load_station(path, target, time_col="datetime", site=site, freq=freq)
    t = s.values.index
    return GridSeries(s.values.to_numpy(float), s.observed.to_numpy(bool), t,
                      (t[1] - t[0]).total_seconds() / 3600.0)


@pytest.fixture(scope="session")
def pose_daily(shared_data: Path) -> GridSeries:
    """NEON POSE daily mean dissolved oxygen (mg/L), 2020-09-24 .. 2022-12-31: (829,)."""
    return _load(shared_data / "neon_aquatics_daily_2020_2022.csv.gz", "oxygen", "POSE", "1D")


@pytest.fixture(scope="session")
def lewi_hourly(shared_data: Path) -> GridSeries:
    """NEON LEWI stream dissolved oxygen (mg/L, about 8-13) on an hourly grid, 2018-2019, with
    the winter gaps of the redistributed file: (14511,)."""
    return _load(shared_data / "neon_streams_15min_2018_2019.csv.gz", "dissolved_oxygen", "LEWI", "1h")
