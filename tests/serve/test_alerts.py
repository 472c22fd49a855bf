"""Crossing probabilities as archive rows and the alerts they raise (hand-checked cases)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wq_pipeline.serve.alerts import alert_markdown, alert_sentence, crossing_frame, find_alerts
from wq_pipeline.models.exceedance import parse_threshold

LEVELS = (0.1, 0.5, 0.9)
T0 = pd.Timestamp("2024-07-01T06:00", tz="UTC")


def _frame(q: np.ndarray, thresholds: list[str]) -> pd.DataFrame:
    n, H, _ = q.shape
    issued = pd.DatetimeIndex([T0 + pd.Timedelta(hours=i) for i in range(n)])
    targets = issued.repeat(H) + pd.to_timedelta(np.tile(np.arange(1, H + 1), n), unit="h")
    return crossing_frame("s1", "DO", "v1", issued, targets, q, LEVELS, [parse_threshold(t) for t in thresholds])


def test_probabilities_interpolate_the_quantiles_and_fallback_rows_get_none():
    # DO falling over three steps: quantiles (0.1, 0.5, 0.9) per step
    q = np.array([[[4.0, 5.0, 6.0], [2.5, 3.0, 3.5], [1.0, 2.0, 3.0]],
                  [[np.nan] * 3] * 3])  # the second origin was issued by a fallback: no quantiles
    c = _frame(q, ["DO<2", "DO>5.5"])
    assert len(c) == 2 * 3 and set(c["issued_at"]) == {T0}
    below = c[c["threshold"] == "DO<2"].set_index("step")["probability"]
    # step 1: 2 is under the 10 % quantile -> half the tail, 0.05; step 2: under 2.5 too; step 3: the median
    assert below.tolist() == pytest.approx([0.05, 0.05, 0.5])
    above = c[c["threshold"] == "DO>5.5"].set_index("step")["probability"]
    # step 1: 5.5 halfway between the median and the 90 % quantile -> P(>5.5) = 1 - 0.7
    assert above.tolist() == pytest.approx([0.3, 0.05, 0.05])
    assert list(c.loc[c["step"] == 3, "target_time"]) == [T0 + pd.Timedelta(hours=3)] * 2


def test_an_alert_is_raised_at_the_first_step_reaching_the_level_with_the_highest_probability():
    q = np.array([[[4.0, 5.0, 6.0], [2.5, 3.0, 3.5], [1.0, 2.0, 3.0]],
                  [[1.0, 1.5, 2.5], [0.5, 1.0, 1.5], [4.0, 5.0, 6.0]]])
    c = _frame(q, ["DO<2", "DO>5.5"])
    alerts = find_alerts(c, 0.5)
    # origin 0: P(DO<2) reaches 0.5 at step 3 only; origin 1: at step 1 (P 0.7), highest 0.95 at step 2
    got = {(r.issued_at, r.threshold): (r.step, round(r.probability, 6)) for r in alerts.itertuples()}
    assert got == {(T0, "DO<2"): (3, 0.5), (T0 + pd.Timedelta(hours=1), "DO<2"): (1, 0.95)}
    second = alerts[alerts["issued_at"] == T0 + pd.Timedelta(hours=1)].iloc[0]
    assert second["target_time"] == T0 + pd.Timedelta(hours=2) and second["alert_level"] == 0.5
    assert find_alerts(c, 0.96).empty  # nothing reaches 0.96
    # at 0.3, P(DO>5.5) = 0.3 raises one too at each origin (origin 0 step 1, origin 1 step 3)
    assert sorted(find_alerts(c, 0.3).groupby("threshold")["step"].apply(list).items()) == [
        ("DO<2", [3, 1]), ("DO>5.5", [1, 3])]
    md = alert_markdown(alerts, "2024-07-01T08:00:00+00:00")
    assert md.count("\n| s1 | DO | `DO<2` |") == 2 and "as of 2024-07-01T08:00:00+00:00" in md
    assert "P(DO<2) = 0.95 >= 0.5 at s1 (DO): first at step 1" in alert_sentence(second)
