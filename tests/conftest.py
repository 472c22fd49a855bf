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


@pytest.fixture(autouse=True)
def _restore_environment():
    """In-process ``wq`` calls set environment defaults (e.g. Prefect's log level); undo them after
    each test so no test depends on which ran before it in the same process."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
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


# Tiny but real evaluation settings: 2 VMD modes, 24 h windows, 3 h horizon, 2 epochs of 4-unit LSTMs.
TINY = dict(target="DO_obs", freq="1h", modes=2, window=24, decomp_window=96, horizon=3,
            epochs=2, units=4, batch_size=64, seed=1)


@pytest.fixture(scope="session")
def sapelo_tiny_csv(tmp_path_factory, shared_data: Path) -> Path:
    """First 62 days of the real Sapelo file (2,976 half-hourly rows -> 1,488 hourly points) with
    QC events added: both readings of one hour out of the physical range, and a two-hour hole
    that gets interpolated."""
    df = pd.read_csv(shared_data / "nerr_sapelo_deancreek_2012.csv", nrows=2976)
    df.loc[[301, 302], "DO_obs"] = 99.0
    df = df.drop(index=range(1000, 1004)).reset_index(drop=True)
    p = tmp_path_factory.mktemp("data") / "sapelo_62d.csv"
    df.to_csv(p, index=False)
    return p


@pytest.fixture(scope="session")
def tiny_stepwise_run(sapelo_tiny_csv: Path, tmp_path_factory):
    """One tiny honest evaluation run shared by the pipeline and report tests: (out dir, result)."""
    from wq_pipeline.config import EvaluateConfig
    from wq_pipeline.evaluation.pipeline import run_evaluation

    out = tmp_path_factory.mktemp("stepwise")
    return out, run_evaluation(EvaluateConfig(data=sapelo_tiny_csv, out=out, thresholds=[TINY_THRESHOLD], **TINY))


# The crossing the tiny run forecasts probabilities of: low DO (Sapelo in January-February ranges 2-10 mg/L).
TINY_THRESHOLD = "DO_obs<4"


# A model version trained once per session on the tiny file, as of 1 February 2012 (31 days of data).
TINY_TRAIN_AS_OF = "2012-02-01T00:00:00-05:00"


@pytest.fixture(scope="session")
def tiny_model(sapelo_tiny_csv: Path, tmp_path_factory):
    """``(cfg, registry folder, version)`` of a tiny model version trained as of TINY_TRAIN_AS_OF.
    Copy the folder (``shutil.copytree``) before writing to it."""
    import pandas as pd

    from wq_pipeline.config import EvaluateConfig
    from wq_pipeline.store.registry import Registry
    from wq_pipeline.serve.training import train_version

    root = tmp_path_factory.mktemp("registry")
    cfg = EvaluateConfig(data=sapelo_tiny_csv, **TINY)
    version, trained = train_version(cfg, Registry(root), as_of=pd.Timestamp(TINY_TRAIN_AS_OF))
    assert trained
    return cfg, root, version
