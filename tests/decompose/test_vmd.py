"""VMD against vmdpy on real Sapelo dissolved-oxygen windows; batch == loop; engines agree."""

from __future__ import annotations

import numpy as np
import pytest
from vmdpy import VMD

from wq_pipeline.decompose import make_decomposer
from wq_pipeline.decompose.vmd import resolve_engine, vmd, vmd_batch

ENGINES = ["numba", "numpy"]

CASES = [
    # (N, K, DC, tau, start)
    (512, 4, False, 0.0, 0),
    (512, 8, True, 0.0, 2000),
    (512, 8, False, 0.1, 6100),
    (1024, 4, True, 0.1, 3000),
    (1024, 8, False, 0.0, 5000),
    (1024, 8, True, 0.0, 7500),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("N", "K", "DC", "tau", "start"), CASES)
def test_matches_vmdpy(
    sapelo_do_hourly: np.ndarray, N: int, K: int, DC: bool, tau: float, start: int, engine: str
) -> None:
    x = sapelo_do_hourly[start : start + N]
    u_ref, uhat_ref, om_ref = VMD(x, 2000.0, tau, K, DC, 1, 1e-7)
    u, u_hat, om = vmd(x, alpha=2000.0, tau=tau, K=K, DC=DC, init=1, tol=1e-7, engine=engine)
    assert u.shape == (K, N) and u_hat.shape == (N, K)
    assert om.shape == om_ref.shape  # same iteration count
    scale = np.ptp(x)
    assert np.max(np.abs(u - u_ref)) <= 1e-6 * scale
    np.testing.assert_allclose(om, om_ref, rtol=0, atol=1e-9)
    assert np.max(np.abs(u_hat - uhat_ref)) <= 1e-6 * scale * N


def test_init2_seeded_and_init0(sapelo_do_hourly: np.ndarray) -> None:
    x = sapelo_do_hourly[100:356]
    a = vmd(x, K=4, init=2, seed=3)
    b = vmd(x, K=4, init=2, seed=3)
    c = vmd(x, K=4, init=2, seed=4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[2], b[2])
    assert not np.array_equal(a[2][0], c[2][0])
    # initial frequencies: sorted, within [fs, 0.5) like vmdpy's
    assert np.all(np.diff(a[2][0]) >= 0) and a[2][0].min() >= 1 / x.size and a[2][0].max() < 0.5
    # init=0 agrees with vmdpy too
    u_ref, _, om_ref = VMD(x, 2000.0, 0.0, 3, False, 0, 1e-7)
    u0, _, om0 = vmd(x, K=3, init=0)
    assert om0.shape == om_ref.shape
    assert np.max(np.abs(u0 - u_ref)) <= 1e-6 * np.ptp(x)


def _rel_recon_error(x: np.ndarray, u: np.ndarray) -> float:
    return float(np.linalg.norm(x - u.sum(axis=0)) / np.linalg.norm(x))


@pytest.mark.parametrize("start", [0, 4321])
def test_odd_length(sapelo_do_hourly: np.ndarray, start: int) -> None:
    x_odd = sapelo_do_hourly[start : start + 513]
    x_even = x_odd[:512]
    u_odd, uh_odd, om_odd = vmd(x_odd, K=6)
    u_even, _, _ = vmd(x_even, K=6)
    assert u_odd.shape == (6, 513) and uh_odd.shape == (513, 6) and om_odd.shape[1] == 6
    assert np.all(np.isfinite(u_odd))
    e_odd, e_even = _rel_recon_error(x_odd, u_odd), _rel_recon_error(x_even, u_even)
    assert e_odd < 0.25
    assert e_odd <= 1.25 * e_even + 0.01
    # one extra sample barely changes the modes away from the ends
    assert np.max(np.abs(u_odd[:, 32:480] - u_even[:, 32:480])) < 0.1 * np.ptp(x_even)


def test_odd_length_alignment_pure_tone() -> None:
    """The odd-length cut is aligned: modes agree with the even-length ones sample by sample."""
    n = np.arange(257)
    x = np.sin(2 * np.pi * n / 16) + 0.5 * np.sin(2 * np.pi * n / 64)
    u_odd, _, _ = vmd(x, K=2)
    u_even, _, _ = vmd(x[:256], K=2)
    assert u_odd.shape == (2, 257)
    inner = slice(20, 236)
    assert np.max(np.abs(u_odd[:, inner] - u_even[:, inner])) < 0.05
    # a one-sample misalignment of the period-16 tone would differ by ~0.4
    assert np.max(np.abs(u_odd[:, 21:237] - u_even[:, inner])) > 0.2
    # init=1 order: the low-frequency tone is mode 0
    assert np.std(np.diff(u_odd[0])) < np.std(np.diff(u_odd[1]))
    assert _rel_recon_error(x, u_odd) <= 1.25 * _rel_recon_error(x[:256], u_even) + 0.01


@pytest.mark.parametrize("engine", ENGINES)
def test_batch_equals_loop(sapelo_do_hourly: np.ndarray, engine: str) -> None:
    L, B = 256, 11
    X = np.stack([sapelo_do_hourly[i * 613 : i * 613 + L] for i in range(B)])
    calls: list[int] = []
    U, iters, om = vmd_batch(X, K=5, DC=True, chunk=4, progress=calls.append, return_iters=True,
                             return_omega=True, engine=engine)
    assert U.shape == (B, 5, L) and iters.shape == (B,) and om.shape == (B, 5)
    assert calls == [4, 4, 3]  # increments per chunk
    assert len(set(iters.tolist())) > 1  # windows really stop at different iterations
    for i in range(B):
        u, _, omega = vmd(X[i], K=5, DC=True, engine=engine)
        assert iters[i] == omega.shape[0]
        assert np.max(np.abs(U[i] - u)) <= 1e-10 * np.max(np.abs(u))
        np.testing.assert_allclose(om[i], omega[-1], rtol=1e-12, atol=0)


@pytest.mark.parametrize("engine", ENGINES)
def test_batch_tau_and_init2_equal_loop(sapelo_do_hourly: np.ndarray, engine: str) -> None:
    X = np.stack([sapelo_do_hourly[i * 997 : i * 997 + 129] for i in range(3)])  # odd length too
    U, iters = vmd_batch(X, K=3, tau=0.05, init=2, seed=7, max_iter=60, return_iters=True, engine=engine)
    assert U.shape == (3, 3, 129)
    for i in range(3):
        u, _, omega = vmd(X[i], K=3, tau=0.05, init=2, seed=7, max_iter=60, engine=engine)
        assert iters[i] == omega.shape[0] <= 59
        assert np.max(np.abs(U[i] - u)) <= 1e-10 * np.max(np.abs(u))


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        vmd(np.array([1.0, np.nan, 2.0, 3.0]))
    with pytest.raises(ValueError):
        vmd(np.ones((2, 8)))
    with pytest.raises(ValueError):
        vmd_batch(np.ones(8))
    with pytest.raises(ValueError):
        vmd(np.arange(16.0), K=0)


@pytest.mark.parametrize("engine", ENGINES)
def test_long_windows_get_smaller_chunks(
    sapelo_do_hourly: np.ndarray, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    import sys

    vmd_mod = sys.modules["wq_pipeline.decompose.vmd"]  # the package attribute `vmd` is the function

    X = np.stack([sapelo_do_hourly[i * 400 : i * 400 + 200] for i in range(5)])
    ref = vmd_batch(X, K=3, engine=engine)
    monkeypatch.setattr(vmd_mod, "_MAX_STATE_ELEMS", 3 * 200 * 2)  # two windows per chunk
    calls: list[int] = []
    out = vmd_batch(X, K=3, chunk=256, progress=calls.append, engine=engine)
    assert calls == [2, 2, 1]
    np.testing.assert_array_equal(out, ref)


@pytest.fixture(scope="module")
def stepwise_windows(sapelo_do_hourly: np.ndarray) -> np.ndarray:
    """24 stepwise windows (L=512) spread over the year, as the pipeline decomposes them."""
    ends = np.linspace(511, sapelo_do_hourly.size - 1, 24).astype(int)
    return np.stack([sapelo_do_hourly[t - 511 : t + 1] for t in ends])


def test_stepwise_windows_match_vmdpy(stepwise_windows: np.ndarray) -> None:
    """The default engine on real stepwise windows (L=512, K=8): vmdpy's iteration count and
    every element within 1e-6 of the window's range."""
    U, iters, om = vmd_batch(stepwise_windows, K=8, return_iters=True, return_omega=True)
    for i in range(0, stepwise_windows.shape[0], 3):  # vmdpy is slow: every third window
        x = stepwise_windows[i]
        u_ref, _, om_ref = VMD(x, 2000.0, 0.0, 8, False, 1, 1e-7)
        assert iters[i] == om_ref.shape[0]
        assert np.max(np.abs(U[i] - u_ref)) <= 1e-6 * np.ptp(x)
        np.testing.assert_allclose(om[i], om_ref[-1], rtol=0, atol=1e-9)


def test_engines_agree_and_threads_do_not_change_results(stepwise_windows: np.ndarray) -> None:
    a, ia = vmd_batch(stepwise_windows, K=8, engine="numba", return_iters=True)
    b, ib = vmd_batch(stepwise_windows, K=8, engine="numpy", return_iters=True)
    c, ic = vmd_batch(stepwise_windows, K=8, engine="numba", n_jobs=2, chunk=7, return_iters=True)
    np.testing.assert_array_equal(ia, ib)
    scale = np.ptp(stepwise_windows, axis=1)[:, None, None]
    assert np.all(np.abs(a - b) <= 1e-9 * scale)
    np.testing.assert_array_equal(ic, ia)
    np.testing.assert_array_equal(c, a)  # threads and chunking: bit-identical


def test_engine_selection_and_params() -> None:
    assert resolve_engine("auto") == "numba"  # numba is a dependency
    assert resolve_engine("numpy") == "numpy"
    with pytest.raises(ValueError):
        resolve_engine("fortran")
    with pytest.raises(ValueError):
        vmd_batch(np.ones((2, 8)), n_jobs=0)
    d = make_decomposer("vmd", 4, engine="numpy", n_jobs=2)
    assert "numpy engine" in d.params()["impl"] and "n_jobs" not in d.params()
    assert "numba engine" in make_decomposer("vmd", 4).params()["impl"]
    from wq_pipeline.errors import InputError

    with pytest.raises(InputError):
        make_decomposer("vmd", 4, engine="fortran")
    with pytest.raises(InputError):
        make_decomposer("vmd", 4, n_jobs=0)
