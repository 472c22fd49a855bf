"""The baseline suite on real Sapelo DO: every parameter chosen before the test period, every
forecast causal, and the step-H RMSE of each baseline recomputable from its own definition."""

from __future__ import annotations

import numpy as np
import pytest

from wq_pipeline.models.baselines.seasonal_naive import seasonal_naive_forecast, select_period
from wq_pipeline.models.baselines.suite import STATISTICAL, statistical_baselines


def _split(n: int, H: int):
    val_start, test_start = int(n * 0.7), int(n * 0.8)
    val = np.arange(val_start + 600, test_start - H, 3)
    test = np.arange(test_start, n - H, 3)
    return val_start, val, test


def test_choices_use_training_and_validation_data_only(sapelo_do_hourly):
    y = sapelo_do_hourly.copy()
    H = 6
    val_start, val, test = _split(y.size, H)
    a = statistical_baselines(y, val_start, val, test, H, 1.0)  # forecast_origins = the test origins
    assert set(a.forecasts) == set(STATISTICAL) and all(f.shape == (test.size, H) for f in a.forecasts.values())
    # the seasonal period is the training-RMSE winner among the candidates
    best, _ = select_period(y[:val_start], H, [int(k) for k in a.info["seasonal_period_candidates_rmse"]])
    assert a.info["seasonal_period"] == best
    np.testing.assert_array_equal(a.forecasts["seasonal_naive"], seasonal_naive_forecast(y, test, H, best))
    # changing the whole test period changes no choice, and no forecast issued before the change
    z = y.copy()
    cut = int(test[test.size // 2])
    z[cut + 1:] = z[cut + 1:] * 0.5 + 2.0
    b = statistical_baselines(z, val_start, val, test, H, 1.0)
    events = "harmonic_ar_events"  # what happened at the forecast origins: not a choice
    assert {k: v for k, v in a.info.items() if k != events} == {k: v for k, v in b.info.items() if k != events}
    early = test <= cut
    for name in STATISTICAL:
        np.testing.assert_array_equal(a.forecasts[name][early], b.forecasts[name][early], err_msg=name)
        assert np.nanmax(np.abs(a.forecasts[name][~early] - b.forecasts[name][~early])) > 0.1 or name == "climatology"


def test_harmonic_choice_is_the_validation_winner(sapelo_do_hourly):
    y = sapelo_do_hourly
    H = 6
    val_start, val, test = _split(y.size, H)
    info = statistical_baselines(y, val_start, val, test, H, 1.0).info
    scores = info["harmonic_ar_validation_rmse"]
    assert len(scores) == 8 and info["harmonic_ar"] == min(scores, key=scores.get)
    # on this tidal estuary a longer window with more AR lags wins on validation
    print(scores)
    assert scores[info["harmonic_ar"]] < scores["window 336 h, AR(2), diel"]


def test_validation_rows_are_cross_fitted_never_chosen_on_their_own_targets(sapelo_do_hourly):
    """Each half of the validation rows takes the setting that did best on the OTHER half: a
    setting perfect on the first half only is used for the second half's rows, not its own."""

    from wq_pipeline.models.baselines.suite import cross_fitted

    y = sapelo_do_hourly[:400]
    obs = y[100:300].copy()  # 200 validation targets at step H = 1
    good_first = np.where(np.arange(200) < 100, obs, obs + 2.0)[:, None]
    good_second = np.where(np.arange(200) < 100, obs + 2.0, obs)[:, None]
    out, used = cross_fitted({"a": good_first, "b": good_second}, obs, chosen="a")
    assert used == {"first_half": "b", "second_half": "a"}
    assert np.abs(out[:, 0] - obs).min() == pytest.approx(2.0)  # every row 2 mg/L off: none saw its own target
    # a half with too few scored targets keeps the whole period's setting
    sparse = obs.copy()
    sparse[100:195] = np.nan
    _, used = cross_fitted({"a": good_first, "b": good_second}, sparse, chosen="a")
    assert used["first_half"] == "a"
