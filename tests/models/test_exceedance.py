"""Crossing probabilities from quantiles, Brier scores and thresholds as users write them."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from wq_pipeline.cli import main
from wq_pipeline.models.exceedance import alert_table, brier, crossed, crossing_probability, parse_threshold, reliability


def test_thresholds_parse_and_bad_ones_say_what_was_expected():
    t = parse_threshold(" DO_obs < 2 ")
    assert (t.column, t.op, t.value, t.label) == ("DO_obs", "<", 2.0, "DO_obs<2")
    assert parse_threshold("Turb>5e1").value == 50.0
    for bad in ("DO_obs=2", "DO_obs<", "<2", "DO_obs<two", "DO_obs<2<3"):
        with pytest.raises(ValueError, match="expected COLUMN<VALUE"):
            parse_threshold(bad)


def test_crossing_probability_of_gaussian_quantiles_matches_its_cdf():
    levels = np.linspace(0.01, 0.99, 99)
    mu = np.array([2.0, 5.0, 8.0])
    q = mu[:, None] + 1.5 * norm.ppf(levels)[None, :]
    below = crossing_probability(q, levels, parse_threshold("DO<4"))
    np.testing.assert_allclose(below, norm.cdf((4 - mu) / 1.5), atol=0.005)
    above = crossing_probability(q, levels, parse_threshold("DO>4"))
    np.testing.assert_allclose(above, 1 - below, atol=1e-12)
    # beyond the outermost quantile: half the tail's mass, never certainty
    far = crossing_probability(q, levels, parse_threshold("DO<-100"))
    np.testing.assert_allclose(far, 0.005)
    assert np.isnan(crossing_probability(np.full((1, 99), np.nan), levels, parse_threshold("DO<4"))).all()


def test_brier_and_reliability_by_hand():
    p = np.array([0.9, 0.1, 0.8, np.nan, 0.15])
    e = crossed(np.array([1.0, 5.0, 3.0, 1.0, 1.0]), parse_threshold("x<2"))
    assert list(e) == [1.0, 0.0, 0.0, 1.0, 1.0]
    assert brier(p, e) == pytest.approx((0.01 + 0.01 + 0.64 + 0.7225) / 4)
    bins = reliability(p, e)
    assert [(b["from"], b["count"]) for b in bins] == [(0.1, 2), (0.8, 1), (0.9, 1)]
    assert bins[0]["observed_frequency"] == 0.5 and bins[0]["mean_probability"] == pytest.approx(0.125)


def test_alerts_counted_per_origin_by_hand():
    # four origins x two steps: probabilities and whether the crossing was observed
    p = np.array([[0.2, 0.6], [0.1, 0.2], [0.7, 0.4], [0.3, 0.1], [0.9, 0.9]])
    e = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [np.nan, np.nan]])  # the last: unobserved
    t = alert_table(p, e, 0.5)
    # origin 0 alerted and crossed (hit), 1 crossed unalerted (miss), 2 alerted without (false alarm), 3 quiet
    assert (t["origins"], t["alerts"], t["events"]) == (4, 2, 2)
    assert (t["hits"], t["misses"], t["false_alarms"]) == (1, 1, 1) and t["pod"] == 0.5 and t["far"] == 0.5
    quiet = alert_table(p, e, 0.95)
    assert quiet["alerts"] == 0 and quiet["far"] is None and quiet["pod"] == 0.0


@pytest.mark.parametrize("threshold, says", [("DO_obs=2", "expected COLUMN<VALUE"),
                                             ("Nitrate<2", "names column 'Nitrate'")])
def test_bad_thresholds_exit_2(threshold, says, sapelo_tiny_csv, tmp_path, capsys):
    rc = main(["evaluate", "--data", str(sapelo_tiny_csv), "--target", "DO_obs", "--freq", "1h", "--no-flow",
               "--out", str(tmp_path / "out"), "--threshold", threshold])
    err = capsys.readouterr().err
    assert rc == 2 and says in err, err
    assert not (tmp_path / "out").exists()
