"""Prototype: G component forecasters trained as one XLA-compiled TensorFlow step (measured by
``bench/training.py``; not used by the pipeline, because it does not meet the issue's target).

Each group g is the pipeline's network with its own weights, ``Input(W, 1) -> [FECA] -> LSTM(U)
-> Dropout -> Dense(H)`` (FECA: orthonormal DCT-II, LayerNorm over the W coefficients, W -> 2W
ReLU -> dropout -> W sigmoid, no biases; LSTM gates i, f, c, o with unit forget bias, like Keras).
All groups run in one graph: the recurrent matmul is one batched ``(G, b, U) x (G, U, 4U)``
matmul per time step inside one ``tf.while_loop``, the loss is the sum of the G per-group MSEs
(so each group's gradients are its own), one Adam updates all weights (Adam is per-parameter, so
this equals G separate optimisers). The last partial batch is padded with zero-weight samples so
one compiled step serves every batch. Validation MSE per group is computed after each epoch.
"""

from __future__ import annotations

import time

import numpy as np


def train_grouped(X_tr: np.ndarray, Y_tr: np.ndarray, X_va: np.ndarray, Y_va: np.ndarray, *, feca: bool,
                  epochs: int, batch_size: int = 128, units: int = 32, seed: int = 0,
                  learning_rate: float = 1e-3) -> dict:
    """Train G groups: X (n, W, G) scaled inputs (one channel per group), Y (n, G, H) scaled targets.

    Returns ``{"seconds", "first_epoch_s", "epoch_s", "val_loss": (epochs, G) list}``.
    """
    import keras
    import tensorflow as tf

    from wq_pipeline.models.feca import dct_matrix

    n, W, G = X_tr.shape
    H = Y_tr.shape[2]
    U = int(units)
    rng = np.random.default_rng(seed)

    def glorot(shape: tuple[int, ...], fan_in: int, fan_out: int) -> tf.Variable:
        lim = np.sqrt(6.0 / (fan_in + fan_out))
        return tf.Variable(rng.uniform(-lim, lim, shape).astype("float32"))

    def orthogonal(G: int, U: int) -> tf.Variable:
        mats = []
        for _ in range(G):
            q, r = np.linalg.qr(rng.standard_normal((4 * U, U)))
            mats.append((q * np.sign(np.diag(r))).T)
        return tf.Variable(np.stack(mats).astype("float32"))

    dct = tf.constant(dct_matrix(W).astype("float32"))
    v = {
        "k": glorot((G, 1, 4 * U), 1, 4 * U),
        "r": orthogonal(G, U),
        "b": tf.Variable(np.tile(np.concatenate([np.zeros(U), np.ones(U), np.zeros(2 * U)]), (G, 1))
                         .astype("float32")[:, None, :]),
        "hw": glorot((G, U, H), U, H),
        "hb": tf.Variable(np.zeros((G, 1, H), "float32")),
    }
    if feca:
        v.update({"fc1": glorot((G, W, 2 * W), W, 2 * W), "fc2": glorot((G, 2 * W, W), 2 * W, W),
                  "ln_g": tf.Variable(np.ones((G, 1, W), "float32")), "ln_b": tf.Variable(np.zeros((G, 1, W), "float32"))})
    variables = list(v.values())
    opt = keras.optimizers.Adam(learning_rate)
    opt.build(variables)
    seeds = tf.random.Generator.from_seed(seed)

    def forward(x: tf.Tensor, training: bool) -> tf.Tensor:
        xg = tf.transpose(x, (2, 0, 1))  # (G, b, W)
        if feca:
            f = tf.einsum("kt,gbt->gbk", dct, xg)
            mu, var = tf.nn.moments(f, axes=[-1], keepdims=True)
            z = (f - mu) * tf.math.rsqrt(var + 1e-6) * v["ln_g"] + v["ln_b"]
            z = tf.nn.relu(tf.matmul(z, v["fc1"]))
            if training:
                z = tf.nn.experimental.stateless_dropout(z, 0.1, seed=seeds.make_seeds(1)[:, 0])
            xg = xg * tf.sigmoid(tf.matmul(z, v["fc2"]))
        xw = tf.transpose(xg, (2, 0, 1))[..., None] * v["k"][None] + v["b"][None]  # (W, G, b, 4U)
        b = tf.shape(xg)[1]
        h = tf.zeros((G, b, U))
        c = tf.zeros((G, b, U))

        def body(t: tf.Tensor, h: tf.Tensor, c: tf.Tensor):
            z = xw[t] + tf.matmul(h, v["r"])
            i, fg, cc, o = tf.split(z, 4, axis=-1)
            c = tf.sigmoid(fg) * c + tf.sigmoid(i) * tf.tanh(cc)
            return t + 1, tf.sigmoid(o) * tf.tanh(c), c

        _, h, _ = tf.while_loop(lambda t, h, c: t < W, body, (0, h, c), maximum_iterations=W)
        if training:
            h = tf.nn.experimental.stateless_dropout(h, 0.1, seed=seeds.make_seeds(1)[:, 0])
        return tf.transpose(tf.matmul(h, v["hw"]) + v["hb"], (1, 0, 2))  # (b, G, H)

    @tf.function(jit_compile=True)
    def train_step(x: tf.Tensor, y: tf.Tensor, w: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            se = tf.reduce_mean(tf.square(forward(x, True) - y), axis=-1)  # (b, G)
            per_group = tf.reduce_sum(se * w[:, None], axis=0) / tf.reduce_sum(w)
            loss = tf.reduce_sum(per_group)
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return per_group

    @tf.function(jit_compile=True)
    def eval_step(x: tf.Tensor, y: tf.Tensor, w: tf.Tensor) -> tf.Tensor:
        se = tf.reduce_mean(tf.square(forward(x, False) - y), axis=-1)
        return tf.reduce_sum(se * w[:, None], axis=0)

    def batches(X: np.ndarray, Y: np.ndarray, order: np.ndarray):
        for i in range(0, order.size, batch_size):
            idx = order[i : i + batch_size]
            w = np.ones(batch_size, "float32")
            if idx.size < batch_size:
                w[idx.size :] = 0.0
                idx = np.concatenate([idx, np.zeros(batch_size - idx.size, dtype=idx.dtype)])
            yield tf.constant(X[idx]), tf.constant(Y[idx]), tf.constant(w)

    X_tr, Y_tr = X_tr.astype("float32"), Y_tr.astype("float32")
    X_va, Y_va = X_va.astype("float32"), Y_va.astype("float32")
    val_hist, epoch_times = [], []
    start = time.perf_counter()
    for _ in range(int(epochs)):
        t0 = time.perf_counter()
        for xb, yb, wb in batches(X_tr, Y_tr, rng.permutation(n)):
            train_step(xb, yb, wb)
        tot = np.zeros(G)
        for xb, yb, wb in batches(X_va, Y_va, np.arange(X_va.shape[0])):
            tot += eval_step(xb, yb, wb).numpy()
        val_hist.append((tot / X_va.shape[0]).tolist())
        epoch_times.append(time.perf_counter() - t0)
    return {"seconds": time.perf_counter() - start, "first_epoch_s": epoch_times[0],
            "epoch_s": float(np.median(epoch_times[1:])) if len(epoch_times) > 1 else epoch_times[0],
            "val_loss": val_hist}
