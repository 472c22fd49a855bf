"""EEMD / CEEMDAN wrappers on real Sapelo windows: seeded, repeatable, parallel == serial, and the
fast engine (pyemd-rs) matches the reference (PyEMD) in IMF count, values, reconstruction and
mean period."""

from __future__ import annotations

import numpy as np
import pytest
from PyEMD import CEEMDAN, EEMD

from wq_pipeline.decompose import make_decomposer
from wq_pipeline.decompose.emd import ceemdan, ceemdan_batch, eemd, eemd_batch, resolve_engine

L = 256
TRIALS = 10


@pytest.fixture(scope="module")
def window(sapelo_do_hourly: np.ndarray) -> np.ndarray:
    return sapelo_do_hourly[1000 : 1000 + L].copy()


def test_eemd_matches_pyemd_and_is_repeatable(window: np.ndarray) -> None:
    a = eemd(window, trials=TRIALS, seed=5, engine="pyemd")
    b = eemd(window, trials=TRIALS, seed=5, engine="pyemd")
    c = eemd(window, trials=TRIALS, seed=6, engine="pyemd")
    assert a.ndim == 2 and a.shape[1] == L and a.shape[0] >= 2
    assert np.array_equal(a, b)
    assert not np.array_equal(a[0], c[0])
    ref = EEMD(trials=TRIALS, noise_width=0.05, parallel=False, separate_trends=True)
    ref.noise_seed(5)
    full = ref.eemd(window)
    assert np.array_equal(a, full[:-1])  # PyEMD's IMFs without the stacked trend row


def test_ceemdan_matches_pyemd_and_is_repeatable(window: np.ndarray) -> None:
    a = ceemdan(window, trials=TRIALS, seed=5, engine="pyemd")
    b = ceemdan(window, trials=TRIALS, seed=5, engine="pyemd")
    c = ceemdan(window, trials=TRIALS, seed=6, engine="pyemd")
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


@pytest.mark.parametrize("engine", ["pyemd-rs", "pyemd"])
def test_batch_parallel_equals_serial(sapelo_do_hourly: np.ndarray, engine: str) -> None:
    X = np.stack([sapelo_do_hourly[i * 900 : i * 900 + 128] for i in range(3)])
    done: list[int] = []
    serial = eemd_batch(X, trials=4, seed=2, progress=done.append, engine=engine)
    parallel = eemd_batch(X, trials=4, seed=2, n_jobs=2, engine=engine)
    assert done == [1, 1, 1]  # one increment per window
    assert all(np.array_equal(p, q) for p, q in zip(serial, parallel, strict=True))
    assert np.array_equal(serial[1], eemd(X[1], trials=4, seed=2, engine=engine))
    cs = ceemdan_batch(X[:2], trials=4, seed=2, n_jobs=2, engine=engine)
    assert np.array_equal(cs[0], ceemdan(X[0], trials=4, seed=2, engine=engine))


def _mean_period(imf: np.ndarray) -> float:
    """Samples per cycle from the zero crossings about the mean (inf without crossings)."""
    zc = int(np.sum(np.diff(np.sign(imf - imf.mean())) != 0))
    return 2 * imf.size / zc if zc else float("inf")


@pytest.fixture(scope="module")
def real_windows(sapelo_do_hourly: np.ndarray) -> np.ndarray:
    """Six stepwise windows (L=512) spread over the year."""
    ends = np.linspace(511, sapelo_do_hourly.size - 1, 6).astype(int)
    return np.stack([sapelo_do_hourly[t - 511 : t + 1] for t in ends])


@pytest.mark.parametrize("method", ["ceemdan", "eemd"])
def test_fast_engine_matches_pyemd_on_real_windows(real_windows: np.ndarray, method: str) -> None:
    fn = ceemdan if method == "ceemdan" else eemd
    for seed, x in enumerate(real_windows):
        ref = fn(x, trials=TRIALS, seed=seed, engine="pyemd")
        fast = fn(x, trials=TRIALS, seed=seed, engine="pyemd-rs")
        assert fast.shape == ref.shape  # same number of IMFs
        scale = np.ptp(x)
        assert np.max(np.abs(fast - ref)) <= 1e-9 * scale
        # reconstruction: IMFs + residual give the window back in both; residuals agree too
        assert np.max(np.abs((x - fast.sum(axis=0)) - (x - ref.sum(axis=0)))) <= 1e-9 * scale
        assert [_mean_period(m) for m in fast] == pytest.approx([_mean_period(m) for m in ref], rel=1e-12)
        assert np.array_equal(fast, fn(x, trials=TRIALS, seed=seed, engine="pyemd-rs"))  # repeatable


def test_fast_engine_max_imf_and_decomposer(window: np.ndarray) -> None:
    for m in (1, 3):
        a = ceemdan(window, trials=4, max_imf=m, seed=1, engine="pyemd-rs")
        b = ceemdan(window, trials=4, max_imf=m, seed=1, engine="pyemd")
        assert a.shape == b.shape and np.allclose(a, b, rtol=0, atol=1e-12)
    assert resolve_engine("auto") == "pyemd-rs"  # pyemd-rs is a dependency
    d = make_decomposer("ceemdan", 4, seed=3, trials=4)
    assert d.params()["engine"] == "pyemd-rs"
    ref = make_decomposer("ceemdan", 4, seed=3, trials=4, engine="pyemd").decompose(window)
    assert np.allclose(d.decompose(window), ref, rtol=0, atol=1e-12)
    from wq_pipeline.errors import InputError

    with pytest.raises(InputError):
        make_decomposer("eemd", 4, engine="matlab")


def test_ceemdan_end_condition_edge_case(shared_data) -> None:
    """A real window where pyemd-rs alone extracts one IMF more than PyEMD: PyEMD's end test
    (EMD of the residue with max_imf=1) drops a sifted IMF left with <= 2 extrema, pyemd-rs keeps
    it. The pyemd-rs engine re-tests with PyEMD's end condition and matches PyEMD."""
    import pyemd_rs

    from wq_pipeline.data.station import load_station

    v = load_station(shared_data / "nerr_sapelo_deancreek_2012.csv", "DO_obs", freq="1h").values.to_numpy(float)
    x = v[4647 - 511 : 4647 + 1]
    assert np.isfinite(x).all()
    raw, _ = pyemd_rs.ceemdan(x, trials=20, seed=0, parallel=False)
    ref = ceemdan(x, trials=20, seed=0, engine="pyemd")
    fast = ceemdan(x, trials=20, seed=0, engine="pyemd-rs")
    assert raw.shape[0] == ref.shape[0] + 1  # the edge case is really there
    assert fast.shape == ref.shape
    assert np.max(np.abs(fast - ref)) <= 1e-9 * np.ptp(x)


def test_end_condition_equals_pyemds(real_windows: np.ndarray) -> None:
    """The pyemd-rs engine's end test gives PyEMD's CEEMDAN.end_condition decision at every
    IMF count of real decompositions."""
    from PyEMD import CEEMDAN

    from wq_pipeline.decompose.emd import _pyemd_ceemdan_stops

    check = CEEMDAN(trials=TRIALS, parallel=False)
    decisions = []
    for seed, x in enumerate(real_windows[:4]):
        imfs = ceemdan(x, trials=TRIALS, seed=seed, engine="pyemd")
        s_n, imfs_n = x / np.std(x), imfs / np.std(x)
        for k in range(1, imfs.shape[0] + 1):
            for max_imf in (-1, 3):
                ours = _pyemd_ceemdan_stops(s_n, imfs_n[:k], max_imf)
                assert ours == check.end_condition(s_n, imfs_n[:k], max_imf)
                decisions.append(ours)
    assert any(decisions) and not all(decisions)
