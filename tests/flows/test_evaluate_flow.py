"""`wq evaluate` as a user runs it: the console script, the real Prefect flow on the ephemeral API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wq_pipeline.evaluation.pipeline import MODEL_NAMES

WQ = Path(sys.executable).with_name("wq")


def _wq(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PREFECT_HOME=str(home), WQ_NO_PROGRESS="1")
    env.pop("PREFECT_API_URL", None)
    return subprocess.run([str(WQ), *args], capture_output=True, text=True, env=env, timeout=600)


def test_cli_runs_the_prefect_flow_caches_decompositions_and_compares_protocols(sapelo_tiny_csv, tmp_path):
    home = tmp_path / "prefect-home"
    common = ["evaluate", "--data", str(sapelo_tiny_csv), "--target", "DO_obs", "--freq", "1h", "--modes", "1",
              "--window", "24", "--decomp-window", "96", "--horizon", "3", "--epochs", "1", "--units", "4"]
    first = _wq(*common, "--out", str(tmp_path / "a"), "-v", home=home)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "wq-evaluate" in first.stdout + first.stderr  # the flow ran, on Prefect
    for name in MODEL_NAMES:
        assert name in first.stdout  # the printed metrics table lists all six models
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert set(metrics["models"]) == set(MODEL_NAMES)
    assert (tmp_path / "a" / "forecasts.csv").stat().st_size > 0
    assert (tmp_path / "a" / "stationarity.csv").stat().st_size > 0
    report = (tmp_path / "a" / "report.html").read_text()  # built by the flow's report task
    assert 'data-section="8"' in report and 'data-section="9"' not in report  # no protocol comparison
    assert f"Report: {(tmp_path / 'a' / 'report.html').resolve()}" in first.stdout

    # both protocols; the stepwise run reuses the cached decomposition (same data and windows,
    # another training budget), the global run is labelled leaky, and the leak is quantified
    second = _wq(*common[:-4], "--epochs", "2", "--units", "4", "--protocol", "both",
                 "--out", str(tmp_path / "b"), "-v", home=home)
    assert second.returncode == 0, second.stderr[-3000:]
    log = second.stdout + second.stderr
    assert "decompose" in log and "Cached" in log, log[-3000:]
    step = json.loads((tmp_path / "b" / "stepwise" / "metrics.json").read_text())
    glob = json.loads((tmp_path / "b" / "global" / "metrics.json").read_text())
    assert step["n_test"] == metrics["n_test"] == glob["n_test"]
    assert not step["leaky"] and glob["leaky"] and "LEAKY" in glob["protocol_label"]
    comparison = json.loads((tmp_path / "b" / "comparison.json").read_text())
    row = comparison["models"]["decomp_feca_lstm"]
    assert row["nse_leak"] == pytest.approx(glob["models"]["decomp_feca_lstm"]["nse"] - step["models"]["decomp_feca_lstm"]["nse"])
    assert comparison["models"]["persistence"]["nse_leak"] == pytest.approx(0.0)  # no decomposition, no leak
    assert 'data-section="9"' in (tmp_path / "b" / "report.html").read_text()  # both protocols side by side
