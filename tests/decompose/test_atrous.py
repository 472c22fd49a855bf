"""Causal Haar à trous decomposition on real Sapelo DO (mg/L): exactness, causality, reference."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wq_pipeline.decompose import (
    METHODS,
    AtrousDecomposer,
    atrous,
    boundary_samples,
    make_decomposer,
)
from wq_pipeline.errors import InputError

L = 256


@pytest.fixture(scope="module")
def stretch(sapelo_do_hourly: np.ndarray) -> np.ndarray:
    """A real 2,000-hour stretch of dissolved oxygen (mg/L)."""
    return sapelo_do_hourly[1000:3000].copy()


@pytest.fixture(scope="module")
def windows(sapelo_do_hourly: np.ndarray) -> np.ndarray:
    starts = [0, 1500, 3100, 4700, 8000]
    return np.stack([sapelo_do_hourly[s : s + L] for s in starts])


def _fir_details(x: np.ndarray, levels: int, pad: bool) -> tuple[np.ndarray, np.ndarray]:
    """Independent reference: d_j = x * g_j with the closed-form causal FIR
    g_j = box(2**(j-1)) - box(2**j) (box(n) = n taps of 1/n), smooth = x * box(2**J).
    ``pad``: prepend x[0] (the edge replication), which makes the reference exact everywhere."""
    n = len(x)
    p = 2**levels if pad else 0
    xp = np.concatenate([np.full(p, x[0]), x])
    d = np.empty((levels, n))
    for j in range(1, levels + 1):
        g = np.full(2**j, -1.0 / 2**j)
        g[: 2 ** (j - 1)] += 1.0 / 2 ** (j - 1)
        d[j - 1] = np.convolve(xp, g)[p : p + n]
    smooth = np.convolve(xp, np.full(2**levels, 1.0 / 2**levels))[p : p + n]
    return d, smooth


def test_channels_sum_back_exactly(windows: np.ndarray) -> None:
    dec = make_decomposer("atrous", modes=5)
    out = dec.decompose_batch(windows)
    assert out.shape == (len(windows), 6, L) and out.dtype == np.float64
    np.testing.assert_allclose(out.sum(axis=1), windows, rtol=0, atol=1e-12)
    details, smooth = atrous(windows, 5)
    np.testing.assert_array_equal(out[:, :5], details)
    np.testing.assert_allclose(out[:, 5], smooth, rtol=0, atol=1e-12)  # residual is c_J
    np.testing.assert_allclose(details.sum(axis=1) + smooth, windows, rtol=0, atol=1e-12)


@pytest.mark.parametrize("levels", [1, 3, 6])
def test_trailing_window_matches_whole_stretch(stretch: np.ndarray, levels: int) -> None:
    """Past the boundary, a window ending at t gives exactly the whole stretch's coefficients."""
    full_d, full_c = atrous(stretch, levels)
    b = boundary_samples(levels)
    assert b == 2**levels - 1
    for t in (L - 1, 777, 1500, len(stretch) - 1):
        lo = t - L + 1
        d, c = atrous(stretch[lo : t + 1], levels)
        np.testing.assert_array_equal(d[:, b:], full_d[:, lo + b : t + 1])
        np.testing.assert_array_equal(c[b:], full_c[lo + b : t + 1])
        if lo > 0:  # the bound is tight: the last boundary sample still sees the edge
            assert c[b - 1] != full_c[lo + b - 1]
    # the same through the decomposer (residual = x - sum(details))
    dec = AtrousDecomposer(levels)
    t = 1500
    w = dec.decompose(stretch[t - L + 1 : t + 1])
    ref = dec.decompose(stretch)
    np.testing.assert_array_equal(w[:, b:], ref[:, t - L + 1 + b : t + 1])


def test_future_values_do_not_change_the_past(stretch: np.ndarray) -> None:
    levels = 6
    d0, c0 = atrous(stretch, levels)
    rng = np.random.default_rng(0)
    for t in (0, 63, 1000, 1998):
        changed = stretch.copy()
        changed[t + 1 :] = changed[t + 1 :][::-1] + rng.normal(0, 3, len(stretch) - t - 1)
        d1, c1 = atrous(changed, levels)
        np.testing.assert_array_equal(d1[:, : t + 1], d0[:, : t + 1])
        np.testing.assert_array_equal(c1[: t + 1], c0[: t + 1])
        assert not np.array_equal(c1[t + 1 :], c0[t + 1 :])


@pytest.mark.parametrize("levels", [1, 4, 6])
def test_details_equal_closed_form_fir(stretch: np.ndarray, levels: int) -> None:
    d, c = atrous(stretch, levels)
    b = boundary_samples(levels)
    # c_j[t] = mean(x[t-2**j+1 .. t]): plain causal convolution, checked away from the boundary
    ref_d, ref_c = _fir_details(stretch, levels, pad=False)
    np.testing.assert_allclose(d[:, b:], ref_d[:, b:], rtol=0, atol=1e-12)
    np.testing.assert_allclose(c[b:], ref_c[b:], rtol=0, atol=1e-12)
    # with the edge replication made explicit (x[0] prepended) the identity holds everywhere
    ref_d, ref_c = _fir_details(stretch, levels, pad=True)
    np.testing.assert_allclose(d, ref_d, rtol=0, atol=1e-12)
    np.testing.assert_allclose(c, ref_c, rtol=0, atol=1e-12)
    # and each d_j is a band: c_{j-1} - c_j with c_j the 2**j-sample running mean
    j = levels
    m = lambda n: np.array([stretch[t - n + 1 : t + 1].mean() for t in range(b, len(stretch))])  # noqa: E731
    np.testing.assert_allclose(d[j - 1, b:], m(2 ** (j - 1)) - m(2**j), rtol=0, atol=1e-12)


def test_short_windows_and_1d_input(windows: np.ndarray) -> None:
    """Windows shorter than the coarsest lag are all boundary but still exact and consistent."""
    x = windows[2, :6]
    d, c = atrous(x, 5)
    assert d.shape == (5, 6) and c.shape == (6,)
    ref_d, ref_c = _fir_details(x, 5, pad=True)
    np.testing.assert_allclose(d, ref_d, rtol=0, atol=1e-12)
    np.testing.assert_allclose(c, ref_c, rtol=0, atol=1e-12)
    db, cb = atrous(windows, 4)
    d1, c1 = atrous(windows[3], 4)
    np.testing.assert_array_equal(db[3], d1)
    np.testing.assert_array_equal(cb[3], c1)
    with pytest.raises(ValueError, match="shape"):
        atrous(np.zeros((2, 3, 4)), 2)


def test_large_batch_rows_equal_single_windows(stretch: np.ndarray) -> None:
    """A batch processed in several blocks (with a partial last one) equals window-by-window."""
    Lw = 512
    X = np.stack([stretch[s : s + Lw] for s in range(0, 1450, 5)])  # 290 windows
    d, c = atrous(X, 6)
    for i in (0, 127, 128, 200, 255, 256, 289):
        di, ci = atrous(X[i], 6)
        np.testing.assert_array_equal(d[i], di)
        np.testing.assert_array_equal(c[i], ci)


def test_make_decomposer_contract(windows: np.ndarray) -> None:
    assert METHODS["atrous"] is AtrousDecomposer
    dec = make_decomposer("ATROUS", modes=5, seed=3)
    assert isinstance(dec, AtrousDecomposer) and dec.method == "atrous"
    assert dec.n_components == 6
    assert dec.names == ["d1", "d2", "d3", "d4", "d5", "residual"]
    params = dec.params()
    json.dumps(params)
    assert params["method"] == "atrous" and params["modes"] == 5 and params["wavelet"] == "haar"
    done: list[int] = []
    out = dec.decompose_batch(windows, progress=done.append)
    assert sum(done) == len(windows)
    np.testing.assert_array_equal(dec.decompose(windows[1]), out[1])
    assert make_decomposer("atrous", modes=12).n_components == 13


@pytest.mark.parametrize("modes", [0, 13, 32, 40, -1, 2.0, True])
def test_bad_level_count_raises(modes: object) -> None:
    with pytest.raises(InputError):
        make_decomposer("atrous", modes=modes)  # type: ignore[arg-type]


def test_level_limit_is_named() -> None:
    with pytest.raises(InputError, match="12"):
        make_decomposer("atrous", modes=13)
    with pytest.raises(InputError, match="12"):
        atrous(np.zeros(16), 13)
    with pytest.raises(InputError):
        boundary_samples(0)
    with pytest.raises(InputError):
        make_decomposer("atrous", modes=3, wavelet="db4")  # no method parameters
