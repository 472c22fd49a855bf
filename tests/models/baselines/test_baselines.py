"""Persistence, seasonal-naive (with period detection) and ARIMA baselines."""

from __future__ import annotations


import numpy as np
import pytest
from statsmodels.tsa.stattools import acf as sm_acf

from wq_pipeline.models.baselines import (
    arima_forecast,
    autocorrelation,
    detect_period,
    fit_arima,
    persistence_forecast,
    seasonal_naive_forecast,
    select_order,
)


def test_persistence_repeats_last_value() -> None:
    y = np.arange(10.0) * 2
    f = persistence_forecast(y, np.array([0, 3, 9]), 4)
    assert f.shape == (3, 4)
    np.testing.assert_array_equal(f, [[0.0] * 4, [6.0] * 4, [18.0] * 4])


def test_origin_checks() -> None:
    y = np.arange(5.0)
    with pytest.raises(ValueError, match="origins"):
        persistence_forecast(y, np.array([5]), 2)
    with pytest.raises(ValueError, match="origins"):
        persistence_forecast(y, np.array([-1]), 2)
    with pytest.raises(ValueError, match="horizon"):
        persistence_forecast(y, np.array([1]), 0)
    assert persistence_forecast(y, np.array([], dtype=int), 3).shape == (0, 3)


def test_seasonal_naive_formula() -> None:
    y = np.arange(100.0)
    origins = np.array([10, 50, 99])
    period, horizon = 4, 9
    f = seasonal_naive_forecast(y, origins, horizon, period)
    expected = np.array(
        [[t + h - period * int(np.ceil(h / period)) for h in range(1, horizon + 1)] for t in origins], dtype=float
    )
    np.testing.assert_array_equal(f, expected)
    assert (expected <= origins[:, None]).all()  # never uses the future
    # h = 1..4 -> t-3..t ; h = 5 -> t-3 again
    np.testing.assert_array_equal(f[0, :5], [7, 8, 9, 10, 7])
    # positions before the start of the series are NaN
    g = seasonal_naive_forecast(y, np.array([1]), 4, 4)
    np.testing.assert_array_equal(np.isnan(g[0]), [True, True, False, False])


def test_autocorrelation_matches_statsmodels_and_handles_nan(sapelo_do_hourly: np.ndarray) -> None:
    y = sapelo_do_hourly[:3000]
    np.testing.assert_allclose(autocorrelation(y, 30), sm_acf(y, nlags=30, fft=False), atol=2e-2)
    gappy = y.copy()
    gappy[100:130] = np.nan
    gappy[2000:2003] = np.nan
    acf = autocorrelation(gappy, 30)
    assert np.isfinite(acf).all() and acf[0] == pytest.approx(1.0)


def test_detect_period_synthetic_and_real(sapelo_do_hourly: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(2000)
    y = np.sin(2 * np.pi * t / 24) + 0.3 * rng.normal(size=t.size)
    y[500:520] = np.nan
    assert detect_period(y, 48) == 24
    assert detect_period(np.sin(2 * np.pi * t / 7), 10) == 7
    # Dean Creek DO is tide-dominated: lunar day ~24.84 h -> lag 25 (diurnal light gives 24)
    assert detect_period(sapelo_do_hourly[:6000], 48) in (24, 25)
    with pytest.raises(ValueError):
        detect_period(y, 1)


@pytest.fixture(scope="module")
def arima_fits(sapelo_do_hourly: np.ndarray) -> dict[tuple[int, int, int], object]:
    train = sapelo_do_hourly[2000:4000]
    return {order: fit_arima(train, order) for order in [(2, 0, 1), (1, 1, 1)]}


# statsmodels warns (0/0 scale) when re-applying a concentrated-scale model to one observation
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("order", [(2, 0, 1), (1, 1, 1)])
def test_arima_forecast_equals_statsmodels_per_origin(
    order: tuple[int, int, int], arima_fits: dict, sapelo_do_hourly: np.ndarray
) -> None:
    res = arima_fits[order]
    y = sapelo_do_hourly[:6000].copy()
    y[4500:4510] = np.nan  # gaps are handled by the filter
    horizon = 6
    origins = np.array([0, 3, 1999, 4000, 4505, 4515, 5999])
    f = arima_forecast(res, y, origins, horizon)
    assert f.shape == (origins.size, horizon)
    for row, t in zip(f, origins):
        ref = np.asarray(res.apply(y[: t + 1]).forecast(horizon))
        np.testing.assert_allclose(row, ref, rtol=0, atol=1e-8)
    assert np.isfinite(f).all()


def test_arima_forecast_does_not_peek(arima_fits: dict, sapelo_do_hourly: np.ndarray) -> None:
    res = arima_fits[(2, 0, 1)]
    y = sapelo_do_hourly[:6000]
    origins = np.arange(4000, 5000, 37)
    base = arima_forecast(res, y, origins, 12)
    for t in origins[[0, 5, -1]]:
        altered = y.copy()
        altered[t + 1 :] = 100.0 + np.arange(altered.size - t - 1)
        i = int(np.flatnonzero(origins == t)[0])
        np.testing.assert_array_equal(arima_forecast(res, altered, [t], 12)[0], base[i])
    # and changing data at or before the origin does change it
    altered = y.copy()
    altered[origins[0]] += 1.0
    assert not np.allclose(arima_forecast(res, altered, origins[:1], 12), base[:1])


def test_select_order_small_grid(sapelo_do_hourly: np.ndarray) -> None:
    order = select_order(sapelo_do_hourly[:3000], p_max=1, d_values=(0, 1), q_max=1, max_points=800)
    assert isinstance(order, tuple) and len(order) == 3
    assert all(isinstance(v, int) for v in order)
    assert order[0] <= 1 and order[1] in (0, 1) and order[2] <= 1


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("n_tail", [800, 35])
def test_select_order_picks_the_lowest_aicc_of_a_direct_statsmodels_search(
    sapelo_do_hourly: np.ndarray, n_tail: int
) -> None:
    from statsmodels.tsa.arima.model import ARIMA

    y = sapelo_do_hourly[:3000]
    tail = y[-n_tail:]
    aicc = {}
    for p_ in (0, 1):
        for d in (0, 1):
            for q in (0, 1):
                trend = "c" if d == 0 else "n"
                k = p_ + q + (d == 0) + 1
                if 10 * k <= n_tail:  # at most one parameter per 10 values (all of them at 800)
                    aicc[(p_, d, q)] = ARIMA(tail, order=(p_, d, q), trend=trend).fit().aicc
    assert len(aicc) == (8 if n_tail == 800 else 7)  # 35 values: (1, 0, 1) has 4 parameters
    best = min(aicc, key=aicc.get)
    assert select_order(y, p_max=1, d_values=(0, 1), q_max=1, max_points=n_tail) == best
