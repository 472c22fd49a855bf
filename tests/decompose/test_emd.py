"""EEMD / CEEMDAN wrappers on real Sapelo windows: seeded, repeatable, parallel == serial."""

from __future__ import annotations

import numpy as np
import pytest
from PyEMD import CEEMDAN, EEMD

from wq_pipeline.decompose.emd import ceemdan, ceemdan_batch, eemd, eemd_batch

L = 256
TRIALS = 10


@pytest.fixture(scope="module")
def window(sapelo_do_hourly: np.ndarray) -> np.ndarray:
    return sapelo_do_hourly[1000 : 1000 + L].copy()


def test_eemd_matches_pyemd_and_is_repeatable(window: np.ndarray) -> None:
    a = eemd(window, trials=TRIALS, seed=5)
    b = eemd(window, trials=TRIALS, seed=5)
    c = eemd(window, trials=TRIALS, seed=6)
    assert a.ndim == 2 and a.shape[1] == L and a.shape[0] >= 2
    assert np.array_equal(a, b)
    assert not np.array_equal(a[0], c[0])
    ref = EEMD(trials=TRIALS, noise_width=0.05, parallel=False, separate_trends=True)
    ref.noise_seed(5)
    full = ref.eemd(window)
    assert np.array_equal(a, full[:-1])  # PyEMD's IMFs without the stacked trend row


def test_ceemdan_matches_pyemd_and_is_repeatable(window: np.ndarray) -> None:
    a = ceemdan(window, trials=TRIALS, seed=5)
    b = ceemdan(window, trials=TRIALS, seed=5)
    c = ceemdan(window, trials=TRIALS, seed=6)
    assert a.ndim == 2 and a.shape[1] == L and a.shape[0] >= 2
    assert np.array_equal(a, b)
    assert not np.array_equal(a[0], c[0])
    ref = CEEMDAN(trials=TRIALS, parallel=False)
    ref.noise_seed(5)
    full = ref.ceemdan(window)
    assert np.array_equal(a, full[:-1])  # PyEMD's cIMFs without the stacked residue row


def test_imfs_go_high_to_low_frequency(window: np.ndarray) -> None:
    imfs = eemd(window, trials=TRIALS, seed=1)

    def zero_crossings(v: np.ndarray) -> int:
        return int(np.sum(np.diff(np.sign(v - v.mean())) != 0))

    zc = [zero_crossings(m) for m in imfs]
    assert zc[0] > zc[-1]


def test_max_imf_limits_count(window: np.ndarray) -> None:
    assert ceemdan(window, trials=TRIALS, max_imf=2, seed=0).shape[0] <= 2


def test_constant_and_bad_input() -> None:
    assert eemd(np.full(64, 3.0), trials=2).shape == (0, 64)
    assert ceemdan(np.full(64, 3.0), trials=2).shape == (0, 64)
    with pytest.raises(ValueError):
        eemd(np.array([1.0, np.nan, 2.0, 3.0, 4.0]))


def test_batch_parallel_equals_serial(sapelo_do_hourly: np.ndarray) -> None:
    X = np.stack([sapelo_do_hourly[i * 900 : i * 900 + 128] for i in range(3)])
    done: list[int] = []
    serial = eemd_batch(X, trials=4, seed=2, progress=done.append)
    parallel = eemd_batch(X, trials=4, seed=2, n_jobs=2)
    assert done == [1, 1, 1]  # one increment per window
    assert all(np.array_equal(p, q) for p, q in zip(serial, parallel, strict=True))
    assert np.array_equal(serial[1], eemd(X[1], trials=4, seed=2))
    cs = ceemdan_batch(X[:2], trials=4, seed=2, n_jobs=2)
    assert np.array_equal(cs[0], ceemdan(X[0], trials=4, seed=2))
