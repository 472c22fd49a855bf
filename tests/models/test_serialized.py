"""Networks sent back from training workers as ``.keras`` bytes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from wq_pipeline.models import build_forecaster, predict
from wq_pipeline.models.serialized import SerializedNetwork


def test_round_trip_predicts_the_same(sapelo_do_hourly: np.ndarray, tmp_path) -> None:
    z = (sapelo_do_hourly[:600] - sapelo_do_hourly[:600].mean()) / sapelo_do_hourly[:600].std()
    X = np.stack([z[t - 24 : t] for t in range(24, 600, 7)])[:, :, None].astype("float32")
    model = build_forecaster(24, 1, 6, units=8, feca=True, seed=5, name="feca_imf1")
    net = SerializedNetwork.from_model(model)
    assert net.name == "feca_imf1" and net.horizon == 6 and net.data[:2] == b"PK"  # a .keras zip
    np.testing.assert_array_equal(predict(net.load(), X), predict(model, X))
    net.save(tmp_path / "n.keras")  # what the registry writes
    assert (tmp_path / "n.keras").read_bytes() == net.data


def test_receiving_process_does_not_start_tensorflow() -> None:
    code = ("import sys, pickle; from wq_pipeline.models.serialized import SerializedNetwork; "
            "pickle.loads(pickle.dumps(SerializedNetwork(b'x', 'n', 6))); import wq_pipeline.evaluation.pipeline; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
