"""Honest conformal quantiles: calibrated on errors already observed, never crossing, unchanged by
what happens after the origin, and covering what they claim on a series whose errors we know."""

from __future__ import annotations

import numpy as np
import pytest

from wq_pipeline.models.intervals import IntervalOptions, check_quantiles, conformal_quantiles

LEVELS = (0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975)


def _ar1(n: int, phi: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.standard_t(df=5, size=n)  # heavy tails: a Gaussian assumption would under-cover
    y = np.zeros(n)
    for t in range(1, n):
        y[t] = phi * y[t - 1] + e[t]
    return y


@pytest.mark.parametrize("method", ["split", "rolling", "aci"])
def test_coverage_on_a_long_stationary_series_is_nominal_within_sampling_error(method):
    """AR(1) with t(5) innovations, forecast by its true conditional mean: the errors' law is
    known and fixed, so every method must cover at its nominal rate (binomial 4-sigma bounds)."""
    phi, H, n = 0.8, 3, 6000
    y = _ar1(n + H + 1, phi, seed=11)
    origins = np.arange(200, n)
    F = np.stack([phi ** (h + 1) * y[origins] for h in range(H)], axis=1)
    first_test = 2200
    Q = conformal_quantiles(F, origins, y, IntervalOptions(levels=LEVELS, method=method, half_life=2000.0),
                            first_test=first_test)
    test = origins >= first_test
    for h in range(H):
        obs = y[origins[test] + h + 1]
        q = Q[test, h]
        m = obs.size
        for k, level in enumerate(LEVELS):
            below = np.mean(obs <= q[:, k])
            # the hit rate varies with the test sample (m points) and with the calibration sample
            # (~2,000 records: split's validation, the rolling half-life); at step 1 the errors
            # are the iid innovations, later steps' errors overlap (MA(h-1)) and spread more
            sd = np.sqrt(level * (1 - level) * (1 / m + 1 / 2000)) * (1.0 if h == 0 else 2.0)
            assert abs(below - level) < 4 * sd, (method, h, level, below)
        assert (np.diff(q, axis=1) >= 0).all()  # never crossing


def test_quantiles_at_t_do_not_move_when_the_future_changes(sapelo_do_hourly):
    y = sapelo_do_hourly[:3000].copy()
    origins = np.arange(100, 2990)
    F = np.repeat(y[origins][:, None], 6, axis=1)  # persistence on real DO
    t = 2000
    before = conformal_quantiles(F, origins, y)
    y2 = y.copy()
    y2[t + 1:] += 3.0
    F2 = np.repeat(y2[origins][:, None], 6, axis=1)
    after = conformal_quantiles(F2, origins, y2)
    past = origins <= t
    np.testing.assert_array_equal(before[past], after[past])
    assert not np.allclose(before[~past][-10:], after[~past][-10:], equal_nan=True)
    # nothing before min_records targets are known
    assert np.isnan(before[:20]).all() and np.isfinite(before[200:]).all()


def test_quantile_levels_are_checked():
    assert check_quantiles([0.1, 0.5, 0.9]) == (0.1, 0.5, 0.9)
    for bad in ([0.0, 0.5], [0.5, 1.0], [0.9, 0.1], [0.5, 0.5], []):
        with pytest.raises(ValueError):
            check_quantiles(bad)
