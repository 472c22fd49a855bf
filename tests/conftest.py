"""Shared fixtures: real station data from ../shared/data (CI has it beside the clone)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # tiny BLAS calls (ARIMA, OLS) thrash with threads
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("WQ_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the shared real series; the suite fails loudly if it is missing."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data folder not found: {SHARED_DATA} (clone the project beside ../shared)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sapelo_do_hourly(shared_data: Path) -> np.ndarray:
    """Sapelo Dean Creek 2012 dissolved oxygen (mg/L), hourly means, short gaps interpolated: (8784,)."""
    df = pd.read_csv(shared_data / "nerr_sapelo_deancreek_2012.csv")
    ts = pd.to_datetime(df["DateTimeStamp"], utc=True)
    s = pd.Series(df["DO_obs"].to_numpy(float), index=ts).resample("1h").mean()
    return s.interpolate(limit_direction="both").to_numpy()
