"""CEEMDAN -> sample-entropy grouping -> secondary VMD, on hand-made entropies and real Sapelo DO."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from wq_pipeline.decompose import (
    METHODS,
    CEEMDANSEVMDDecomposer,
    entropy_groups,
    make_decomposer,
    sample_entropy_rows,
    vmd_batch,
)
from wq_pipeline.errors import InputError

L = 256
MODES = 6
K2 = 3
SMALL = dict(trials=10, secondary_modes=K2)
TRAIN_END = 5000  # hours: windows ending before this are the "training period" here
FIT_STARTS = np.arange(0, TRAIN_END - L, 400)  # 12 training windows
TEST_STARTS = [6000, 7000, 8200]


def sse(values: np.ndarray, labels: np.ndarray) -> float:
    return float(sum(((values[labels == k] - values[labels == k].mean()) ** 2).sum()
                     for k in np.unique(labels)))


# ---------------------------------------------------------------- entropy_groups, hand-made numbers


def test_kmeans_obvious_clusters() -> None:
    e = np.array([2.1, 0.05, 1.0, 2.0, 0.1, 1.1, np.nan])
    np.testing.assert_array_equal(entropy_groups(e), [0, 2, 1, 0, 2, 1, 2])
    assert entropy_groups(e).dtype == np.int64


def test_kmeans_is_optimal_against_brute_force() -> None:
    rng = np.random.default_rng(3)
    for n in (3, 5, 8, 9):
        for _ in range(3):
            e = rng.gamma(2.0, 0.3, n)
            labels = entropy_groups(e)
            # brute force: every assignment of the n values to 3 non-empty clusters
            labs = np.array(list(itertools.product(range(3), repeat=n)))  # (3**n, n)
            onehot = labs[:, None, :] == np.arange(3)[None, :, None]  # (3**n, 3, n)
            count = onehot.sum(axis=2)
            total = (onehot * e).sum(axis=2)
            ss = (onehot * e**2).sum(axis=2).sum(axis=1) - (total**2 / np.maximum(count, 1)).sum(axis=1)
            best = ss[(count > 0).all(axis=1)].min()
            assert sse(e, labels) == pytest.approx(best, rel=1e-9, abs=1e-12)
            assert sse(e, labels) <= best + 1e-12
            assert set(labels.tolist()) == {0, 1, 2}
            means = [e[labels == k].mean() for k in range(3)]
            assert means[0] > means[1] > means[2]  # 0 = high, 2 = low
            # contiguous in sorted order
            assert np.all(np.diff(labels[np.argsort(e)]) <= 0)


def test_kmeans_few_values_and_nan() -> None:
    np.testing.assert_array_equal(entropy_groups(np.array([np.nan, np.nan])), [2, 2])
    np.testing.assert_array_equal(entropy_groups(np.array([0.5, np.nan])), [0, 2])
    np.testing.assert_array_equal(entropy_groups(np.array([0.2, 0.5, np.nan])), [2, 0, 2])
    np.testing.assert_array_equal(entropy_groups(np.array([0.3, 0.3, 0.3])), [0, 0, 0])
    # equal values stay together
    np.testing.assert_array_equal(entropy_groups(np.array([1.0, 1.0, 0.5, 0.0, 0.0])), [0, 0, 1, 2, 2])
    assert entropy_groups(np.array([])).shape == (0,)


def test_thresholds() -> None:
    e = np.array([1.5, 0.4, 0.8, np.nan, 1.0, 0.5])
    np.testing.assert_array_equal(entropy_groups(e, "thresholds", (0.5, 1.0)), [0, 2, 1, 2, 0, 1])
    np.testing.assert_array_equal(entropy_groups(e, "thresholds", [0.0, 9.0]), [1, 1, 1, 2, 1, 1])


def test_grouping_errors() -> None:
    e = np.array([0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match="grouping"):
        entropy_groups(e, "dbscan")
    with pytest.raises(ValueError, match="needs thresholds"):
        entropy_groups(e, "thresholds")
    for bad in ((1.0, 0.5), (0.1, np.nan), (0.1,), "ab"):
        with pytest.raises(ValueError, match="thresholds"):
            entropy_groups(e, "thresholds", bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="only apply"):
        entropy_groups(e, "kmeans", (0.1, 0.5))
    with pytest.raises(ValueError, match="-inf"):
        entropy_groups(np.array([0.1, -np.inf, 0.3]))
    # +inf (no match one sample further: the most irregular) is high; the rest are grouped as usual
    np.testing.assert_array_equal(entropy_groups(np.array([np.inf, 1.0, 0.9, 0.5, 0.45, 0.01, 0.02])),
                                  [0, 0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError, match="1-D"):
        entropy_groups(np.ones((2, 3)))


# ---------------------------------------------------------------- the decomposer on real windows


@pytest.fixture(scope="module")
def train_windows(sapelo_do_hourly: np.ndarray) -> np.ndarray:
    return np.stack([sapelo_do_hourly[s : s + L] for s in FIT_STARTS])


@pytest.fixture(scope="module")
def test_windows(sapelo_do_hourly: np.ndarray) -> np.ndarray:
    return np.stack([sapelo_do_hourly[s : s + L] for s in TEST_STARTS])


@pytest.fixture(scope="module")
def fitted(train_windows: np.ndarray) -> CEEMDANSEVMDDecomposer:
    dec = make_decomposer("ceemdan-se-vmd", MODES, 0, **SMALL)
    assert isinstance(dec, CEEMDANSEVMDDecomposer)
    return dec.fit(train_windows)


@pytest.fixture(scope="module")
def fitted_out(fitted: CEEMDANSEVMDDecomposer, test_windows: np.ndarray) -> np.ndarray:
    return fitted.decompose_batch(test_windows)


def test_registered() -> None:
    assert METHODS["ceemdan-se-vmd"] is CEEMDANSEVMDDecomposer
    dec = make_decomposer("CEEMDAN-SE-VMD", 4, 1, secondary_modes=2)
    assert dec.n_components == 5 and dec.names == ["high_vmd1", "high_vmd2", "medium", "low", "residual"]


def test_fit_groups_on_real_windows(fitted: CEEMDANSEVMDDecomposer, train_windows: np.ndarray) -> None:
    g, e = fitted.groups, fitted.entropies
    assert g is not None and e is not None and len(g) == len(e) == MODES + 1
    assert g[0] == 0  # imf1, the highest-frequency IMF, is the most complex
    assert g[-1] == 2  # the trend is regular
    assert e[0] == np.nanmax(e) and e[0] > 0.6 and e[-1] < 0.1
    # the stored entropies are the per-channel medians of the first stage's sample entropies
    first = fitted.first_stage(train_windows)
    per_window = sample_entropy_rows(first.reshape(-1, L)).reshape(len(train_windows), MODES + 1)
    np.testing.assert_array_equal(e[0], np.median(per_window[:, 0]))
    np.testing.assert_array_equal(g, entropy_groups(e))
    p = fitted.params()
    json.dumps(p)
    assert p["groups"] == g and len(p["entropies"]) == MODES + 1
    assert p["entropies"][0] == round(float(e[0]), 6)
    for key in ("secondary_modes", "trials", "noise_width", "engine", "se_order", "se_tolerance",
                "grouping", "thresholds", "alpha", "tau", "tol"):
        assert key in p
    assert p["method"] == "ceemdan-se-vmd" and p["modes"] == MODES and p["trials"] == 10


def test_first_stage_is_ceemdan(fitted: CEEMDANSEVMDDecomposer, test_windows: np.ndarray) -> None:
    ref = make_decomposer("ceemdan", MODES, 0, trials=10).decompose_batch(test_windows)
    np.testing.assert_array_equal(fitted.first_stage(test_windows), ref)


def test_channels_and_exact_recombination(
    fitted: CEEMDANSEVMDDecomposer, fitted_out: np.ndarray, test_windows: np.ndarray
) -> None:
    out = fitted_out
    assert fitted.n_components == K2 + 3
    assert fitted.names == ["high_vmd1", "high_vmd2", "high_vmd3", "medium", "low", "residual"]
    assert out.shape == (len(TEST_STARTS), K2 + 3, L) and out.dtype == np.float64
    for b, x in enumerate(test_windows):
        assert np.max(np.abs(out[b].sum(axis=0) - x)) < 1e-9 * np.ptp(x)
    # the channels are what the docstring says
    g = np.asarray(fitted.groups)
    first = fitted.first_stage(test_windows)
    high = first[:, g == 0].sum(axis=1)
    np.testing.assert_array_equal(out[:, :K2], vmd_batch(high, K=K2))
    np.testing.assert_array_equal(out[:, K2], first[:, g == 1].sum(axis=1))
    np.testing.assert_array_equal(out[:, K2 + 1], first[:, g == 2].sum(axis=1))
    np.testing.assert_allclose(out[:, -1], high - out[:, :K2].sum(axis=1), rtol=0, atol=1e-12)
    # the low channel holds the trend: smooth and carrying the window's level
    assert np.all(np.abs(out[:, K2 + 1].mean(axis=1) - test_windows.mean(axis=1)) < 1.0)
    # single window == its row of the batch; progress increments add up to B
    np.testing.assert_array_equal(fitted.decompose(test_windows[1]), out[1])
    done: list[int] = []
    fitted.decompose_batch(test_windows[:2], progress=done.append)
    assert sum(done) == 2


def test_refit_is_deterministic(fitted: CEEMDANSEVMDDecomposer, train_windows: np.ndarray) -> None:
    again = make_decomposer("ceemdan-se-vmd", MODES, 0, **SMALL).fit(train_windows)
    assert again.groups == fitted.groups
    np.testing.assert_array_equal(again.entropies, fitted.entropies)


def test_rebuilt_from_groups_is_bit_identical(
    fitted: CEEMDANSEVMDDecomposer, fitted_out: np.ndarray, test_windows: np.ndarray
) -> None:
    learnt = {k: v for k, v in fitted.params().items() if k == "groups"}
    rebuilt = make_decomposer("ceemdan-se-vmd", MODES, 0, **SMALL, **learnt)
    assert rebuilt.groups == fitted.groups and rebuilt.entropies is None
    np.testing.assert_array_equal(rebuilt.decompose_batch(test_windows), fitted_out)
    assert rebuilt.params()["groups"] == fitted.groups and "entropies" not in rebuilt.params()


def test_fit_uses_only_the_given_windows(
    fitted: CEEMDANSEVMDDecomposer, sapelo_do_hourly: np.ndarray
) -> None:
    altered = sapelo_do_hourly.copy()
    rng = np.random.default_rng(0)
    altered[TRAIN_END:] = altered[TRAIN_END:][::-1] * 1.7 + rng.normal(0, 2.0, altered.size - TRAIN_END)
    windows = np.stack([altered[s : s + L] for s in FIT_STARTS])
    other = make_decomposer("ceemdan-se-vmd", MODES, 0, **SMALL).fit(windows)
    assert other.groups == fitted.groups
    np.testing.assert_array_equal(other.entropies, fitted.entropies)


def test_fit_windows_subsamples_evenly(train_windows: np.ndarray) -> None:
    few = make_decomposer("ceemdan-se-vmd", MODES, 0, fit_windows=4, **SMALL).fit(train_windows)
    picked = make_decomposer("ceemdan-se-vmd", MODES, 0, **SMALL).fit(train_windows[[0, 3, 7, 11]])
    np.testing.assert_array_equal(few.entropies, picked.entropies)
    assert few.groups == picked.groups
    # threshold grouping on the same entropies
    thr = make_decomposer("ceemdan-se-vmd", MODES, 0, fit_windows=4, grouping="thresholds",
                          thresholds=[0.3, 0.6], **SMALL).fit(train_windows)
    np.testing.assert_array_equal(thr.entropies, few.entropies)
    assert thr.groups == entropy_groups(few.entropies, "thresholds", (0.3, 0.6)).tolist()
    assert thr.params()["thresholds"] == [0.3, 0.6]


def test_errors(test_windows: np.ndarray) -> None:
    dec = make_decomposer("ceemdan-se-vmd", MODES, 0, **SMALL)
    with pytest.raises(RuntimeError, match="fit"):
        dec.decompose(test_windows[0])
    with pytest.raises(RuntimeError, match="training"):
        dec.decompose_batch(test_windows)
    for groups in ([0, 1, 2], [0, 1, 2, 2, 2, 2, 3], [0, 1, 2, 2, 2, 2, True], "0122222"):
        with pytest.raises(InputError, match="groups"):
            make_decomposer("ceemdan-se-vmd", MODES, 0, groups=groups)
    bad_params = [dict(secondary_modes=0), dict(grouping="dbscan"), dict(grouping="thresholds"),
                  dict(thresholds=(0.2, 0.5)), dict(grouping="thresholds", thresholds=(0.5, 0.2)),
                  dict(se_order=0), dict(se_tolerance=0.0), dict(fit_windows=0), dict(trials=0),
                  dict(tau=-1.0), dict(alpha=np.inf), dict(engine="matlab"), dict(max_imf=3)]
    for kw in bad_params:
        with pytest.raises(InputError):
            make_decomposer("ceemdan-se-vmd", MODES, 0, **kw)
    with pytest.raises(ValueError, match="fit expects"):
        dec.fit(test_windows[0])
