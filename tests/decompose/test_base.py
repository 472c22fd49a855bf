"""The Decomposer contract on real Sapelo windows: fixed channels, exact reconstruction."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wq_pipeline.decompose import (
    METHODS,
    CEEMDANDecomposer,
    Decomposer,
    EEMDDecomposer,
    VMDDecomposer,
    eemd,
    fix_mode_count,
    make_decomposer,
    vmd,
)
from wq_pipeline.errors import InputError

L = 256
SMALL = {"vmd": {}, "eemd": {"trials": 10}, "ceemdan": {"trials": 10}}


@pytest.fixture(scope="module")
def windows(sapelo_do_hourly: np.ndarray) -> np.ndarray:
    starts = [0, 1500, 3100, 4700, 8000]
    return np.stack([sapelo_do_hourly[s : s + L] for s in starts])


@pytest.mark.parametrize("method", ["vmd", "eemd", "ceemdan"])
def test_contract_on_real_windows(method: str, windows: np.ndarray) -> None:
    modes = 4 if method == "vmd" else 3
    dec = make_decomposer(method, modes=modes, seed=1, **SMALL[method])
    assert isinstance(dec, Decomposer) and dec.method == method
    assert dec.n_components == modes + 1
    assert dec.names == [f"imf{i}" for i in range(1, modes + 1)] + ["residual"]
    json.dumps(dec.params())  # serialisable
    assert dec.params()["method"] == method and dec.params()["modes"] == modes

    done: list[int] = []
    out = dec.decompose_batch(windows[:3], progress=done.append)
    assert out.shape == (3, modes + 1, L) and out.dtype == np.float64
    assert sum(done) == 3  # increments
    for b in range(3):
        x = windows[b]
        err = np.max(np.abs(out[b].sum(axis=0) - x)) / np.max(np.abs(x))
        assert err < 1e-9
    # a single window gives the same as its row in the batch
    np.testing.assert_array_equal(dec.decompose(windows[1]), out[1])


def test_fixed_channel_count_across_windows(windows: np.ndarray) -> None:
    """Real windows give different raw IMF counts; the channel count is fixed anyway."""
    raw = [eemd(x, trials=4, seed=0).shape[0] for x in windows]
    assert len(set(raw)) > 1
    modes = int(np.median(raw))  # some windows need merging, some need zero padding
    assert min(raw) < modes or max(raw) > modes
    dec = make_decomposer("eemd", modes=modes, seed=0, trials=4)
    for x, n_raw in zip(windows, raw, strict=True):
        out = dec.decompose(x)
        assert out.shape == (modes + 1, L)
        if n_raw < modes:
            assert not out[n_raw:modes].any()  # zero padding
        assert np.max(np.abs(out.sum(axis=0) - x)) / np.max(np.abs(x)) < 1e-9
    vmd_dec = make_decomposer("vmd", modes=6)
    assert vmd_dec.decompose_batch(windows).shape == (len(windows), 7, L)


def test_vmd_channels_are_vmd_modes(windows: np.ndarray) -> None:
    dec = make_decomposer("vmd", modes=5, tol=1e-6)
    out = dec.decompose(windows[2])
    u, _, omega = vmd(windows[2], K=5, tol=1e-6)
    np.testing.assert_array_equal(out[:5], u)
    assert dec.last_iters is not None and dec.last_iters.tolist() == [omega.shape[0]]
    np.testing.assert_allclose(out[5], windows[2] - u.sum(axis=0), rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["eemd", "ceemdan"])
def test_emd_seed_repeatable_and_sensitive(method: str, windows: np.ndarray) -> None:
    x = windows[3]
    a = make_decomposer(method, modes=4, seed=11, trials=10).decompose(x)
    b = make_decomposer(method, modes=4, seed=11, trials=10).decompose(x)
    c = make_decomposer(method, modes=4, seed=12, trials=10).decompose(x)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_fix_mode_count_merges_and_pads() -> None:
    imfs = np.arange(15.0).reshape(5, 3)
    merged = fix_mode_count(imfs, 3)
    np.testing.assert_array_equal(merged[:2], imfs[:2])
    np.testing.assert_array_equal(merged[2], imfs[2:].sum(axis=0))
    padded = fix_mode_count(imfs, 7)
    np.testing.assert_array_equal(padded[:5], imfs)
    assert not padded[5:].any()
    np.testing.assert_array_equal(fix_mode_count(np.zeros((0, 3)), 2), np.zeros((2, 3)))


def test_more_imfs_than_modes_are_merged(windows: np.ndarray) -> None:
    x = windows[0]
    dec1 = make_decomposer("ceemdan", modes=1, seed=0, trials=10)
    out = dec1.decompose(x)
    assert out.shape == (2, L)
    assert np.max(np.abs(out.sum(axis=0) - x)) / np.max(np.abs(x)) < 1e-9


def test_errors() -> None:
    with pytest.raises(InputError, match="ceemdan, ceemdan-se-vmd, eemd, vmd"):
        make_decomposer("wavelet")
    for bad in (0, 33, -1, 2.5, True):
        with pytest.raises(InputError, match="modes"):
            make_decomposer("vmd", modes=bad)
    with pytest.raises(InputError, match="valid parameters"):
        make_decomposer("vmd", trials=5)
    with pytest.raises(InputError):
        make_decomposer("eemd", trials=0)
    with pytest.raises(InputError):
        make_decomposer("vmd", init=7)
    dec = make_decomposer("VMD", modes=2)
    assert isinstance(dec, VMDDecomposer)
    x = np.linspace(0, 1, 32)
    x[5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        dec.decompose(x)
    with pytest.raises(ValueError):
        dec.decompose(np.ones((2, 32)))
    assert set(METHODS) == {"vmd", "eemd", "ceemdan", "ceemdan-se-vmd", "atrous"}
    assert METHODS["eemd"] is EEMDDecomposer and METHODS["ceemdan"] is CEEMDANDecomposer


def test_constant_window() -> None:
    x = np.full(64, 7.5)
    for method in ("eemd", "ceemdan"):
        out = make_decomposer(method, modes=3, trials=3).decompose(x)
        assert out.shape == (4, 64)
        np.testing.assert_array_equal(out[-1], x)


def test_uniform_emd_params_and_ceemdan_noise_width(windows: np.ndarray) -> None:
    """Both EMD methods take trials / noise_width; for CEEMDAN noise_width is PyEMD's epsilon."""
    from wq_pipeline.decompose import ceemdan

    x = windows[4][:128]
    for method in ("eemd", "ceemdan"):
        dec = make_decomposer(method, modes=3, seed=2, trials=4, noise_width=0.02, max_imf=-1, n_jobs=1)
        assert dec.params()["noise_width"] == 0.02
    out = make_decomposer("ceemdan", modes=9, seed=2, trials=4, noise_width=0.02).decompose(x)
    imfs = ceemdan(x, trials=4, epsilon=0.02, seed=2)
    np.testing.assert_array_equal(out[: imfs.shape[0]], imfs)
