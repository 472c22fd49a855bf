"""Sample entropy: antropy's values on real Sapelo DO windows and their CEEMDAN IMFs."""

from __future__ import annotations

import antropy
import numpy as np
import pytest

from wq_pipeline.decompose import ceemdan, sample_entropy, sample_entropy_rows

WINDOWS = [(0, 256), (1500, 256), (3100, 384), (4700, 512), (8000, 300)]  # (start, length)


def reference_sampen(x: np.ndarray, order: int, tolerance: float) -> float:
    """Slow textbook sample entropy: templates x[i:i+m], i < N-m; pairs i < j; Chebyshev < r."""
    x = np.asarray(x, dtype=float)
    n, m = x.size, order
    r = tolerance * np.std(x)
    tm = np.array([x[i : i + m] for i in range(n - m)])
    tm1 = np.array([x[i : i + m + 1] for i in range(n - m)])
    d_m = np.max(np.abs(tm[:, None, :] - tm[None, :, :]), axis=2)
    d_m1 = np.max(np.abs(tm1[:, None, :] - tm1[None, :, :]), axis=2)
    upper = np.triu(np.ones((n - m, n - m), dtype=bool), k=1)
    b = np.sum((d_m < r) & upper)
    a = np.sum((d_m1 < r) & upper)
    return float(-np.log(a / b))


@pytest.fixture(scope="module")
def windows(sapelo_do_hourly: np.ndarray) -> list[np.ndarray]:
    return [sapelo_do_hourly[s : s + n] for s, n in WINDOWS]


@pytest.mark.parametrize("order", [1, 2, 3])
def test_equals_antropy_on_real_windows(windows: list[np.ndarray], order: int) -> None:
    ours = [sample_entropy(x, order) for x in windows]
    ref = [antropy.sample_entropy(x, order) for x in windows]
    assert ours == ref  # same counts, same log: bit-identical
    assert all(0.2 < v < 1.5 for v in ours)  # real DO: finite, moderately regular


def test_known_values(windows: list[np.ndarray]) -> None:
    """Pinned numbers (antropy 0.2.3 gives the same) for two hourly Sapelo DO windows."""
    assert sample_entropy(windows[0]) == pytest.approx(0.7699020573823859, rel=1e-12)
    assert sample_entropy(windows[1], 3) == pytest.approx(0.8665000673711395, rel=1e-12)


def test_equals_antropy_on_ceemdan_imfs(windows: list[np.ndarray]) -> None:
    x = windows[2]
    imfs = ceemdan(x, trials=10, seed=0)
    rows = np.vstack([imfs, x - imfs.sum(axis=0)])  # IMFs high -> low frequency, then the trend
    assert rows.shape[0] >= 4
    ours = sample_entropy_rows(rows)
    ref = np.array([antropy.sample_entropy(r) for r in rows])
    np.testing.assert_array_equal(ours, ref)
    assert ours[0] > 0.5 and ours[-1] < 0.1  # the noisiest IMF is complex, the trend regular
    assert ours[0] == max(ours)


@pytest.mark.parametrize("tolerance", [0.1, 0.35])
def test_other_tolerance_against_reference(windows: list[np.ndarray], tolerance: float) -> None:
    for x in windows[:3]:
        want = reference_sampen(x, 2, tolerance)
        got = sample_entropy(x, 2, tolerance)
        assert got == pytest.approx(want, rel=1e-12)
        # antropy takes the absolute radius
        assert got == antropy.sample_entropy(x, 2, tolerance=float(tolerance * np.std(x)))
    assert sample_entropy(windows[0], 2, 0.1) > sample_entropy(windows[0], 2, 0.35)


def test_rows_equal_single_calls(windows: list[np.ndarray]) -> None:
    X = np.stack([w[:256] for w in windows])
    got = sample_entropy_rows(X, order=3, tolerance=0.25)
    assert got.shape == (len(windows),)
    np.testing.assert_array_equal(got, [sample_entropy(w[:256], 3, 0.25) for w in windows])
    assert sample_entropy_rows(np.zeros((0, 10))).shape == (0,)


def test_edge_cases() -> None:
    for v in (7.5, 0.0, 0.1):  # antropy: NaN for 7.5 and 0.0, -0.0 for 0.1 (std rounds to 1.4e-17)
        assert np.isnan(sample_entropy(np.full(64, v)))
    assert antropy.sample_entropy(np.full(64, 0.1)) == 0.0
    # pairs match at length 2 but none at length 3: inf (maximally irregular), as antropy
    x = np.array([1.0, 2.0, 1.0, 2.0, 5.0])
    assert antropy.sample_entropy(x) == np.inf
    assert sample_entropy(x) == np.inf
    # a perfectly regular ramp: every template pair within r also matches one step further
    assert sample_entropy(np.arange(50.0)) == 0.0


def test_errors() -> None:
    x = np.linspace(0.0, 1.0, 20) ** 2
    for order in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="order"):
            sample_entropy(x, order)  # type: ignore[arg-type]
    for tol in (0.0, -0.2, np.nan, np.inf, "a"):
        with pytest.raises(ValueError, match="tolerance"):
            sample_entropy(x, 2, tol)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1-D"):
        sample_entropy(np.ones((2, 20)))
    bad = x.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sample_entropy(bad)
    with pytest.raises(ValueError, match="order \\+ 1"):
        sample_entropy(x[:3], 2)
    with pytest.raises(ValueError, match="2-D"):
        sample_entropy_rows(x)
