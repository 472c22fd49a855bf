"""Fixtures of the report tests: a tiny real run with two folds."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def two_fold_run(sapelo_tiny_csv: Path, tmp_path_factory) -> Path:
    """A tiny honest evaluation with two folds (two test periods, each fold trained on the data
    before its own validation period) on the 62-day Sapelo file: its run folder (about 30 s)."""
    from tests.conftest import TINY
    from wq_pipeline.config import EvaluateConfig
    from wq_pipeline.evaluation.pipeline import run_evaluation

    out = tmp_path_factory.mktemp("two_folds")
    run_evaluation(EvaluateConfig(data=sapelo_tiny_csv, out=out, folds=2, **TINY))
    return out
