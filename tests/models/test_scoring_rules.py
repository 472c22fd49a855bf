"""Quantile scores against their references: CRPS against properscoring, interval scores by hand."""

from __future__ import annotations

import numpy as np
import properscoring
import pytest
from scipy.stats import norm

from wq_pipeline.models.scoring_rules import crps, interval_scores, pinball, quantile_scores


def test_crps_from_dense_gaussian_quantiles_matches_properscoring(sapelo_do_hourly):
    """Real DO as observations, Gaussian forecasts around a persistence forecast: CRPS from 99
    quantiles equals properscoring's closed form within 1 %."""
    y = sapelo_do_hourly[1000:3000]
    mu, sigma = sapelo_do_hourly[994:2994], np.full(2000, 0.6)
    levels = np.linspace(0.01, 0.99, 99)
    q = mu[:, None] + sigma[:, None] * norm.ppf(levels)[None, :]
    want = properscoring.crps_gaussian(y, mu, sigma).mean()
    assert crps(y, q, levels) == pytest.approx(want, rel=0.01)
    # the default nine levels: the tails beyond 2.5 % and 97.5 % are cut, a known small bias
    nine = np.array([0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975])
    q9 = mu[:, None] + sigma[:, None] * norm.ppf(nine)[None, :]
    assert crps(y, q9, nine) == pytest.approx(want, rel=0.05)


def test_pinball_and_interval_scores_by_hand():
    obs = np.array([1.0, 2.0, 10.0, np.nan])
    lo, hi = np.array([0.0, 2.5, 4.0, 0.0]), np.array([2.0, 3.0, 6.0, 1.0])
    got = interval_scores(obs, lo, hi, 0.8)
    assert got["coverage"] == pytest.approx(1 / 3) and got["width"] == pytest.approx((2 + 0.5 + 2) / 3)
    # misses: 0.5 below, 4 above; alpha 0.2 -> penalty 2 / 0.2 = 10 per unit
    assert got["winkler"] == pytest.approx((2 + 0.5 + 2 + 10 * 0.5 + 10 * 4) / 3) and got["n_points"] == 3
    q = np.array([[0.0, 1.0], [0.0, 1.0]])
    # obs 2: tau 0.1 -> 0.1*2, tau 0.9 -> 0.9*1; obs -1: 0.9*1, 0.1*2
    assert pinball(np.array([2.0, -1.0]), q, np.array([0.1, 0.9])) == pytest.approx((0.2 + 0.9 + 0.9 + 0.2) / 4)


def test_quantile_scores_per_step_and_intervals():
    rng = np.random.default_rng(3)
    obs = rng.normal(size=(500, 2))
    levels = (0.05, 0.25, 0.5, 0.75, 0.95)
    q = np.broadcast_to(norm.ppf(levels), (500, 2, 5)).copy()
    s = quantile_scores(obs, q, levels, (0.5, 0.9, 0.8))
    assert set(s["intervals"]) == {"50", "90"}  # 80 % has no levels here
    assert abs(s["intervals"]["90"]["coverage"] - 0.9) < 0.04 and abs(s["intervals"]["50"]["coverage"] - 0.5) < 0.06
    assert len(s["crps_per_step"]) == 2 and s["crps"] == s["crps_per_step"][-1]
    # a wrong (shifted) forecast scores worse
    assert quantile_scores(obs, q + 1.0, levels, (0.9,))["crps"] > s["crps"] + 0.2  # 0.84 vs 0.56 exactly
