"""FECA layer: shapes, gradients (autodiff vs finite differences), determinism, .keras round trip."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import scipy.fft
import tensorflow as tf

from wq_pipeline.models.feca import FECA, dct_matrix


def _model(w: int, c: int, **kw: object) -> keras.Model:
    inp = keras.Input((w, c))
    return keras.Model(inp, FECA(**kw)(inp))


@pytest.mark.parametrize("n", [1, 8, 37])
def test_dct_matrix_is_orthonormal_dct2(n: int) -> None:
    d = dct_matrix(n)
    x = np.random.default_rng(0).normal(size=(3, n))
    np.testing.assert_allclose(x @ d.T, scipy.fft.dct(x, type=2, norm="ortho", axis=-1), atol=1e-12)
    np.testing.assert_allclose(d @ d.T, np.eye(n), atol=1e-12)


@pytest.mark.parametrize("w", [24, 48, 37])
@pytest.mark.parametrize("c", [1, 3])
def test_output_shape_equals_input_shape(w: int, c: int) -> None:
    x = np.random.default_rng(1).normal(size=(5, w, c)).astype("float32")
    layer = FECA(0.1, seed=0)
    y = np.asarray(layer(x))
    assert y.shape == x.shape
    assert layer.compute_output_shape((None, w, c)) == (None, w, c)
    gate = y / x
    assert np.all((gate > 0) & (gate < 1))  # sigmoid gate


def test_gradients_finite_and_nonzero() -> None:
    x = tf.constant(np.random.default_rng(2).normal(size=(4, 24, 3)), dtype=tf.float32)
    layer = FECA(0.1, seed=0)
    layer(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.square(layer(x, training=True)))
    grads = tape.gradient(loss, [x, *layer.trainable_variables])
    assert len(layer.trainable_variables) == 4  # LayerNorm gamma, beta; two Dense kernels
    for g in grads:
        g = np.asarray(g)
        assert np.all(np.isfinite(g))
        assert np.any(g != 0)


def test_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(3)
    x0 = rng.normal(size=(2, 8, 2))
    proj = tf.constant(rng.normal(size=(2, 8, 2)))
    layer = FECA(0.0, seed=1, use_bias=True, dtype="float64")
    layer(x0)
    # non-trivial LayerNorm parameters so their gradients are exercised too
    layer.norm.gamma.assign(rng.uniform(0.5, 1.5, size=8))
    layer.norm.beta.assign(rng.normal(scale=0.1, size=8))

    def loss_fn(x: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(layer(x, training=False) * proj)

    x = tf.constant(x0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = loss_fn(x)
    variables = layer.trainable_variables
    g_x, *g_vars = tape.gradient(loss, [x, *variables])

    eps = 1e-6
    num_x = np.zeros_like(x0)
    for idx in np.ndindex(x0.shape):
        xp, xm = x0.copy(), x0.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num_x[idx] = (float(loss_fn(tf.constant(xp))) - float(loss_fn(tf.constant(xm)))) / (2 * eps)
    np.testing.assert_allclose(np.asarray(g_x), num_x, rtol=1e-5, atol=1e-7)

    for var, g in zip(variables, g_vars):
        base = var.numpy().copy()
        flat = base.ravel()
        picks = rng.choice(flat.size, size=min(6, flat.size), replace=False)
        for i in picks:
            vals = []
            for sign in (1, -1):
                pert = flat.copy()
                pert[i] += sign * eps
                var.assign(pert.reshape(base.shape))
                vals.append(float(loss_fn(x)))
            var.assign(base)
            num = (vals[0] - vals[1]) / (2 * eps)
            assert np.asarray(g).ravel()[i] == pytest.approx(num, rel=1e-5, abs=1e-7), var.path


def test_inference_is_deterministic_training_is_not() -> None:
    x = np.random.default_rng(4).normal(size=(6, 24, 2)).astype("float32")
    layer = FECA(0.5, seed=0)
    a, b = np.asarray(layer(x, training=False)), np.asarray(layer(x, training=False))
    np.testing.assert_array_equal(a, b)
    model = _model(24, 2, rate=0.5, seed=0)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))
    assert not np.array_equal(np.asarray(layer(x, training=True)), a)  # dropout active when training


def test_same_seed_same_weights() -> None:
    a, b = _model(24, 3, seed=7), _model(24, 3, seed=7)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_save_load_keras_safe_mode(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    model = _model(37, 3, rate=0.2, seed=3, epsilon=1e-5)
    model.set_weights([rng.normal(scale=0.3, size=w.shape).astype(w.dtype) for w in model.get_weights()])
    x = rng.normal(size=(4, 37, 3)).astype("float32")
    path = tmp_path / "feca.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    layer = next(lyr for lyr in loaded.layers if isinstance(lyr, FECA))
    assert layer.get_config()["rate"] == 0.2
    assert layer.get_config()["epsilon"] == 1e-5
    assert layer.get_config()["seed"] == 3
    assert FECA.from_config(layer.get_config()).get_config() == layer.get_config()
