"""A reused compiled network trains exactly like a newly built one (real Sapelo DO windows)."""

from __future__ import annotations

import numpy as np
import pytest

from wq_pipeline.models import build_forecaster, fit_forecaster, predict
from wq_pipeline.models import reuse
from wq_pipeline.models.reuse import reusable_forecaster

W, H = 24, 6
OPTS = dict(units=8, learning_rate=1e-2, seed=3, feca=True)


def _windows(z: np.ndarray, origins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.stack([z[t - W + 1 : t + 1] for t in origins])[:, :, None]
    y = np.stack([z[t + 1 : t + H + 1] for t in origins])
    return x.astype("float32"), y.astype("float32")


@pytest.fixture(scope="module")
def two_series(sapelo_do_hourly: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """Two different training problems: the scaled series, and its first difference."""
    out = []
    for y in (sapelo_do_hourly[:2400], np.diff(sapelo_do_hourly[:2401])):
        z = (y - y[:1800].mean()) / y[:1800].std()
        out.append((*_windows(z, np.arange(W - 1, 1800 - H, 3)), *_windows(z, np.arange(1800, 2400 - H, 3))))
    return out


def _train(model, data, epochs: int = 3):
    xtr, ytr, xva, yva = data
    res = fit_forecaster(model, xtr, ytr, xva, yva, epochs=epochs, batch_size=64, patience=5, seed=1)
    return res.history["val_loss"], predict(model, xva)


def test_reused_network_trains_like_a_new_one(two_series) -> None:
    reuse.clear()
    fresh = [_train(build_forecaster(W, 1, H, name=f"fresh{i}", **OPTS), d) for i, d in enumerate(two_series)]
    first = reusable_forecaster(W, 1, H, name="a", **OPTS)
    got_a = _train(first, two_series[0])
    second = reusable_forecaster(W, 1, H, name="b", **OPTS)
    assert second is first and second.name == "b"  # the same compiled model, renamed
    got_b = _train(second, two_series[1])
    # the second training starts from the built weights and a fresh optimizer, not from the first's result
    for (val_f, pred_f), (val_r, pred_r) in zip(fresh, [got_a, got_b]):
        assert val_r == val_f
        np.testing.assert_array_equal(pred_r, pred_f)
    assert got_a[0] != got_b[0]  # two problems, two trainings (the check above is not vacuous)
    reuse.clear()


def test_other_architecture_gets_its_own_network() -> None:
    reuse.clear()
    a = reusable_forecaster(W, 1, H, **OPTS)
    b = reusable_forecaster(W, 1, H, **dict(OPTS, feca=False))
    c = reusable_forecaster(W, 2, H, **OPTS)
    assert a is not b and a is not c and b is not c
    assert b.get_layer("lstm") is not None and "feca" not in [layer.name for layer in b.layers]
    reuse.clear()
