"""The Forecasting Challenge's baselines, checked by hand on the shipped NEON daily file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wq_pipeline.evaluation.challenge import climatology_quantiles, doy_climatology, random_walk_offsets, window_origins
from wq_pipeline.config import EvaluateConfig
from wq_pipeline.evaluation.pipeline import load_stage

LEVELS = (0.025, 0.1, 0.5, 0.9, 0.975)


def test_climatology_on_a_hand_checked_day_is_that_day_of_years_mean_and_sd(shared_data):
    """BARC oxygen on day of year 323 (18 November 2020, 19 November 2021): the two readings of
    the file, their mean and standard deviation; the normal's quantiles follow from them."""
    cfg = EvaluateConfig(data=shared_data / "neon_aquatics_daily_2020_2022.csv.gz", site="BARC", target="oxygen",
                         freq="1D", time_col="datetime")
    st = load_stage(cfg)
    times = st.values.index
    end = int(times.searchsorted(pd.Timestamp("2022-01-01", tz=times.tz)))
    obs = np.where(st.observed.to_numpy(), st.values.to_numpy(), np.nan)
    mean, sd = doy_climatology(obs, times, end)
    by_hand = np.array([7.861899, 8.146979])  # the file's rows 2020-11-18 and 2021-11-19
    assert mean[323] == pytest.approx(by_hand.mean(), abs=1e-6)
    assert sd[323] == pytest.approx(by_hand.std(ddof=1), abs=1e-6)
    # nothing of 2022 (the test year) enters: a changed 2022 leaves it as it is
    changed = obs.copy()
    changed[end:] += 5.0
    m2, s2 = doy_climatology(changed, times, end)
    np.testing.assert_array_equal(np.nan_to_num(m2, nan=-1), np.nan_to_num(mean, nan=-1))
    # a day of year seen in one training year only takes the median standard deviation
    one_year = [d for d in range(1, 366) if np.isfinite(mean[d]) and
                ((times[:end].dayofyear == d) & np.isfinite(obs[:end])).sum() == 1]
    assert one_year and sd[one_year[0]] == pytest.approx(np.nanmedian(
        [sd[d] for d in range(1, 367) if ((times[:end].dayofyear == d) & np.isfinite(obs[:end])).sum() >= 2]))
    when = pd.DatetimeIndex([pd.Timestamp("2022-11-19", tz=times.tz)])  # day of year 323 in 2022
    q = climatology_quantiles(mean, sd, when, (1, 1), LEVELS)
    assert q[0, 0, 2] == pytest.approx(by_hand.mean(), abs=1e-6)
    assert q[0, 0, 4] - q[0, 0, 2] == pytest.approx(1.959964 * by_hand.std(ddof=1), abs=1e-5)


def test_random_walk_steps_are_drawn_from_the_training_changes():
    values = np.array([1.0, 1.5, 2.0, 2.5, 3.0, 10.0, 20.0])  # +0.5 a day until position 5
    observed = np.ones(values.size, dtype=bool)
    off = random_walk_offsets(values, observed, end=5, H=4, levels=LEVELS)  # changes before position 5 only
    np.testing.assert_allclose(off, np.arange(1, 5)[:, None] * 0.5 * np.ones(len(LEVELS)))
    rng = np.random.default_rng(3)
    walk = np.cumsum(rng.normal(0, 0.2, 3000))
    off = random_walk_offsets(walk, np.ones(walk.size, bool), end=walk.size, H=16, levels=LEVELS)
    spread = off[:, 4] - off[:, 0]  # 95 % width grows like the square root of the horizon
    assert spread[15] / spread[3] == pytest.approx(2.0, rel=0.1)
    assert spread[0] == pytest.approx(2 * 1.96 * 0.2, rel=0.1) and abs(off[:, 2]).max() < 0.1


def test_window_origins_are_the_first_observed_day_of_each_30_day_window():
    start = pd.Timestamp("2022-01-01", tz="UTC")
    days = pd.DatetimeIndex([start + pd.Timedelta(days=d) for d in (0, 1, 2, 31, 32, 60, 95)])
    # windows start on days 0, 30, 60, 90: day 30 has no origin, so day 31 starts that window
    assert window_origins(days, start).tolist() == [True, False, False, True, False, True, True]
