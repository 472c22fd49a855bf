"""Forecaster builder and training on real Sapelo dissolved-oxygen windows."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from wq_pipeline.models import FECA, TrainResult, build_forecaster, fit_forecaster, predict

W, H = 24, 6


def _windows(z: np.ndarray, origins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.stack([z[t - W + 1 : t + 1] for t in origins])[:, :, None]
    y = np.stack([z[t + 1 : t + H + 1] for t in origins])
    return x.astype("float32"), y.astype("float32")


@pytest.fixture(scope="module")
def do_windows(sapelo_do_hourly: np.ndarray) -> dict[str, np.ndarray]:
    """Scaled (train statistics) windows: every 4th origin, train < 4000 <= val < 5500."""
    y = sapelo_do_hourly
    mu, sd = y[:4000].mean(), y[:4000].std()
    z = (y - mu) / sd
    tr = np.arange(W - 1, 4000 - H, 4)
    va = np.arange(4000, 5500, 4)
    xtr, ytr = _windows(z, tr)
    xva, yva = _windows(z, va)
    return {"xtr": xtr, "ytr": ytr, "xva": xva, "yva": yva}


def _tiny(seed: int = 0, **kw: object) -> keras.Model:
    return build_forecaster(W, 1, H, units=8, learning_rate=1e-2, seed=seed, **kw)


def test_build_shapes_and_layers() -> None:
    m = build_forecaster(W, 3, H, units=8)
    assert m.input_shape == (None, W, 3)
    assert m.output_shape == (None, H)
    assert any(isinstance(lyr, FECA) for lyr in m.layers)
    plain = build_forecaster(W, 3, H, units=8, feca=False)
    assert not any(isinstance(lyr, FECA) for lyr in plain.layers)
    assert plain.count_params() < m.count_params()
    assert m.optimizer is not None and m.loss == "mse"


def test_same_seed_identical_weights_different_seed_not() -> None:
    a, b, c = _tiny(1), _tiny(1), _tiny(2)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(a.get_weights(), c.get_weights()))


def test_learns_and_is_reproducible(do_windows: dict[str, np.ndarray], tmp_path: Path) -> None:
    d = do_windows
    seen: list[tuple[int, dict[str, float]]] = []
    runs = []
    for i in range(2):
        model = _tiny(0)
        res = fit_forecaster(
            model, d["xtr"], d["ytr"], d["xva"], d["yva"], epochs=3, batch_size=64, patience=5, seed=0,
            progress=(lambda e, logs: seen.append((e, logs))) if i == 0 else None,
        )
        runs.append((model, res, predict(model, d["xva"])))
    (m1, r1, p1), (_, r2, p2) = runs
    assert isinstance(r1, TrainResult)
    assert r1.epochs_run == 3 == len(r1.history["loss"]) == len(r1.history["val_loss"])
    assert r1.history["val_loss"][-1] < r1.history["val_loss"][0]
    assert r1.best_epoch == int(np.argmin(r1.history["val_loss"])) + 1
    assert r1.seconds > 0
    assert [e for e, _ in seen] == [1, 2, 3]
    assert seen[0][1]["val_loss"] == r1.history["val_loss"][0]
    # same seed -> same history and identical predictions
    assert r1.history == r2.history
    np.testing.assert_array_equal(p1, p2)
    assert p1.shape == (len(d["xva"]), H) and p1.dtype == np.float64
    # predictions are deterministic (bitwise for a fixed batch size; float32 rounding otherwise)
    np.testing.assert_array_equal(predict(m1, d["xva"]), p1)
    np.testing.assert_allclose(predict(m1, d["xva"], batch_size=100), p1, rtol=0, atol=1e-5)
    m1.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(predict(loaded, d["xva"]), p1, rtol=0, atol=1e-6)


def test_early_stopping_restores_best(do_windows: dict[str, np.ndarray]) -> None:
    d = do_windows
    model = build_forecaster(W, 1, H, units=4, feca=False, learning_rate=0.3, seed=0)  # unstable on purpose
    res = fit_forecaster(model, d["xtr"][:200], d["ytr"][:200], d["xva"][:100], d["yva"][:100],
                         epochs=6, batch_size=32, patience=1, seed=0)
    assert res.best_epoch < res.epochs_run < 6  # stopped early, after a worse epoch
    best = res.history["val_loss"][res.best_epoch - 1]
    assert best == min(res.history["val_loss"])
    val = float(model.evaluate(d["xva"][:100], d["yva"][:100], verbose=0))
    assert val == pytest.approx(best, rel=1e-4)


def test_rejects_bad_shapes_and_nan(do_windows: dict[str, np.ndarray]) -> None:
    d = do_windows
    model = _tiny()
    with pytest.raises(ValueError, match="training data"):
        fit_forecaster(model, d["xtr"][:, :, 0], d["ytr"], d["xva"], d["yva"], epochs=1)
    bad = d["yva"].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        fit_forecaster(model, d["xtr"], d["ytr"], d["xva"], bad, epochs=1)
