"""Sample construction: windows, eligible origins, splits and stepwise component targets."""

from __future__ import annotations

import numpy as np

from wq_pipeline.decompose import make_decomposer
from wq_pipeline.models.protocol import (
    chronological_split,
    component_targets,
    eligible_origins,
    fold_bounds,
    fold_split,
    global_decompose,
    raw_windows,
    select_rows,
    stepwise_decompose,
    target_matrix,
    window_ok,
)


def test_window_ok_rejects_windows_spanning_a_gap():
    finite = np.ones(20, dtype=bool)
    finite[10] = False
    ok = window_ok(finite, 4)
    assert not ok[:3].any()  # too early for a full window
    assert ok[3:10].all()
    assert not ok[10:14].any()  # windows ending 10..13 contain position 10
    assert ok[14:].all()


def test_eligible_origins_need_a_real_observation_at_the_origin():
    values = np.arange(30, dtype=float)
    observed = np.ones(30, dtype=bool)
    observed[12] = False  # interpolated point: its value depends on position 13
    ok = eligible_origins(values, observed, lookback=5, horizon=3)
    assert not ok[12]
    assert ok[11] and ok[13]
    assert not ok[27:].any()  # nothing after them to score


def test_split_is_chronological_and_targets_do_not_cross_periods():
    n, H = 1000, 6
    ok = np.ones(n, dtype=bool)
    ok[:50] = False
    s = chronological_split(n, ok, H, test_fraction=0.2, val_fraction=0.1)
    assert s.test_start == 800 and s.val_start == 700
    assert (s.train + H < s.val_start).all() and s.train.min() == 50
    assert (s.val >= s.val_start).all() and (s.val + H < s.test_start).all()
    assert (s.test >= s.test_start).all() and s.test.size == 200


def test_folds_spread_test_periods_and_each_trains_on_the_data_before_it():
    n, H = 8784, 6  # one hourly year
    ok = np.ones(n, dtype=bool)
    ok[:511] = False
    bounds = fold_bounds(n, 3, test_fraction=0.2, val_fraction=0.1)
    block = n // 4
    assert [b.test_start for b in bounds] == [n - 3 * block, n - 2 * block, n - block]
    assert [b.test_end for b in bounds] == [n - 2 * block, n - block, n]
    assert all(b.test_start - b.val_start == round(0.1 * n) for b in bounds)
    prev_end = None
    for k, b in enumerate(bounds, start=1):
        s = fold_split(ok, H, b, fold=k)
        assert s.fold == k
        assert (s.train + H < b.val_start).all() and s.train.max() + H == b.val_start - 1
        assert (s.val >= b.val_start).all() and (s.val + H < b.test_start).all()
        assert s.test.min() == b.test_start and s.test.max() == b.test_end - 1
        assert np.array_equal(s.fit_origins, np.concatenate([s.val, s.test]))
        if prev_end is not None:
            assert b.test_start == prev_end  # consecutive, no overlap
        prev_end = b.test_end
    # one fold reproduces the single chronological split exactly
    one = fold_split(ok, H, fold_bounds(n, 1, 0.2, 0.1)[0])
    ref = chronological_split(n, ok, H, 0.2, 0.1)
    assert one.val_start == ref.val_start == 6149 and one.test_start == ref.test_start == 7027
    assert np.array_equal(one.test, ref.test) and np.array_equal(one.train, ref.train)
    # a given test start: K equal periods from it to the end
    given = fold_bounds(n, 2, 0.2, 0.1, test_start=6000)
    assert [(b.test_start, b.test_end) for b in given] == [(6000, 7392), (7392, n)]
    assert fold_bounds(n, 1, 0.2, 0.1, test_start=6000)[0].val_start == 6000 - 878
    # a series with a winter gap of months: the folds are counted in forecast origins, so no test
    # or validation period falls into the gap
    origins = np.concatenate([np.arange(600, 2000), np.arange(6000, 8778)])
    gappy = fold_bounds(n, 2, 0.2, 0.1, origins=origins)
    block = origins.size // 3
    assert [b.test_start for b in gappy] == [origins[origins.size - 2 * block], origins[origins.size - block]]
    for b in gappy:
        assert np.isin(b.val_start, origins) and np.isin(b.test_start, origins)
        val = origins[(origins >= b.val_start) & (origins < b.test_start)]
        assert val.size == round(0.1 * origins.size)


def test_target_matrix_and_raw_windows_are_aligned():
    y = np.arange(100, dtype=float)
    o = np.array([10, 50])
    assert np.array_equal(target_matrix(y, o, 3), [[11, 12, 13], [51, 52, 53]])
    w = raw_windows(y, o, 4)
    assert w.shape == (2, 4, 1) and np.array_equal(w[1, :, 0], [47, 48, 49, 50])


def test_stepwise_component_targets_sum_to_the_raw_target(sapelo_do_hourly):
    y = sapelo_do_hourly[:400]
    dec = make_decomposer("vmd", modes=3)
    positions = np.arange(127, 400)
    samples = stepwise_decompose(y, positions, dec, decomp_window=128, window=24)
    origins = np.arange(150, 300)
    Y = component_targets(samples, origins, horizon=4)  # (n, C, H)
    assert Y.shape == (150, 4, 4)
    # components of every window sum to the window, so end points sum to y[t+h]
    np.testing.assert_allclose(Y.sum(axis=1), target_matrix(y, origins, 4), atol=1e-9)
    X = select_rows(samples, origins)
    assert X.shape == (150, 24, 4)
    np.testing.assert_allclose(X.sum(axis=2), raw_windows(y, origins, 24)[..., 0], atol=1e-9)


def test_stepwise_inputs_ignore_later_data_but_global_inputs_do_not(sapelo_do_hourly):
    y = sapelo_do_hourly[:600].copy()
    dec = make_decomposer("vmd", modes=3)
    t = 400
    altered = y.copy()
    altered[t + 1 :] += 2.0
    pos = np.arange(200, 590)
    a = select_rows(stepwise_decompose(y, pos, dec, 128, 24), np.array([t]))
    b = select_rows(stepwise_decompose(altered, pos, dec, 128, 24), np.array([t]))
    assert np.array_equal(a, b)
    g1 = select_rows(global_decompose(y, pos, dec, 24, 128), np.array([t]))
    g2 = select_rows(global_decompose(altered, pos, dec, 24, 128), np.array([t]))
    assert np.abs(g1 - g2).max() > 1e-3  # the leak: later data changes inputs at t
