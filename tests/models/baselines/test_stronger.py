"""Stronger baselines: climatology, level-adjusted seasonal naive, period selection, harmonic + AR."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.ar_model import AutoReg

from wq_pipeline.models.baselines import (
    DIEL,
    PLAIN,
    TIDAL,
    ar_fit,
    climatology_forecast,
    detect_period,
    fit_climatology,
    harmonic_ar_forecast,
    harmonic_design,
    harmonic_fit,
    harmonic_periods,
    level_adjusted_seasonal_naive_forecast,
    period_candidates,
    persistence_forecast,
    seasonal_naive_forecast,
    select_period,
)

M2, K1, O1 = 12.4206012, 23.9344697, 25.8193417


# ---------------------------------------------------------------- climatology


def test_climatology_profile_equals_pandas_groupby_on_real_do(sapelo_do_hourly: np.ndarray) -> None:
    y = sapelo_do_hourly[:5000].copy()
    y[100:400] = np.nan  # a long gap: ignored, not propagated
    prof = fit_climatology(y, 24)
    ref = pd.Series(y).groupby(np.arange(y.size) % 24).mean()  # pandas skips NaN
    assert prof.shape == (24,)
    np.testing.assert_allclose(prof, ref.to_numpy(), rtol=0, atol=1e-12)
    # a phase without any finite value is NaN
    short = np.array([1.0, np.nan, 3.0, 5.0, np.nan, 7.0])
    np.testing.assert_array_equal(fit_climatology(short, 3), [3.0, np.nan, 5.0])


def test_climatology_forecast_indexes_absolute_phase(sapelo_do_hourly: np.ndarray) -> None:
    prof = 10.0 * np.arange(24)
    y = np.zeros(100)
    f = climatology_forecast(y, np.array([47, 22, 99]), 3, prof)
    # positions 48..50 -> phases 0,1,2 ; 23..25 -> 23,0,1 ; 100..102 -> 4,5,6
    np.testing.assert_array_equal(f, [[0.0, 10.0, 20.0], [230.0, 0.0, 10.0], [40.0, 50.0, 60.0]])
    real = fit_climatology(sapelo_do_hourly[:6000], 24)
    g = climatology_forecast(sapelo_do_hourly, np.array([100]), 3, real)
    np.testing.assert_array_equal(g[0], real[[5, 6, 7]])  # 101 % 24 = 5


# ------------------------------------------------- level-adjusted seasonal naive


def test_level_adjusted_seasonal_naive_by_hand() -> None:
    y = np.arange(10.0) ** 2  # 0 1 4 9 16 25 36 49 64 81
    f = level_adjusted_seasonal_naive_forecast(y, np.array([6, 2]), 4, 3)
    # t = 6, P = 3: level change y[6] - y[3] = 36 - 9 = 27 ; sources y[4], y[5], y[6], y[4]
    np.testing.assert_array_equal(f[0], [16 + 27, 25 + 27, 36 + 27, 16 + 27])
    assert np.isnan(f[1]).all()  # t < P: no y[t - P]
    gappy = y.copy()
    gappy[5] = np.nan
    g = level_adjusted_seasonal_naive_forecast(gappy, np.array([7, 8]), 4, 3)
    # t = 7: shift y[7] - y[4] = 33, sources y[5], y[6], y[7], y[5]
    np.testing.assert_array_equal(g[0], [np.nan, 36 + 33, 49 + 33, np.nan])
    assert np.isnan(g[1]).all()  # t = 8 needs y[5] for the shift


def test_level_adjusted_equals_seasonal_naive_plus_shift_on_real_do(sapelo_do_hourly: np.ndarray) -> None:
    y = sapelo_do_hourly
    origins = np.arange(30, y.size, 97)
    for period in (24, 25):
        base = seasonal_naive_forecast(y, origins, 12, period)
        adj = level_adjusted_seasonal_naive_forecast(y, origins, 12, period)
        shift = y[origins] - y[origins - period]
        np.testing.assert_allclose(adj, base + shift[:, None], rtol=0, atol=1e-12)
        assert np.isfinite(adj).all()


# ---------------------------------------------------------- period selection


def test_period_candidates() -> None:
    assert period_candidates(1.0, None) == [24, 25, 12, 26, 168]
    assert period_candidates(1.0, 25) == [25, 24, 12, 26, 168]
    assert period_candidates(1.0, 30) == [30, 24, 25, 12, 26, 168]
    assert period_candidates(0.25, None) == [96, 99, 48, 50, 103, 672]
    # 6 h grid: 25.82 h has no whole-step match within 5 % (4 steps = 24 h), tides collapse
    assert period_candidates(6.0, None) == [4, 2, 28]
    assert period_candidates(12.0, None) == [2, 14]  # 12 h would be 1 step: dropped
    # daily grid: every sub-daily candidate collapses; one week and one year remain
    assert period_candidates(24.0, None) == [7, 365]
    assert period_candidates(24.0, 9) == [9, 7, 365]
    with pytest.raises(ValueError):
        period_candidates(0.0, None)


def test_select_period_synthetic_25() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(3000)
    y = 5 + np.sin(2 * np.pi * t / 25) + 0.2 * rng.normal(size=t.size)
    y[700:760] = np.nan
    best, rmse = select_period(y, 6, [24, 25, 12])
    assert best == 25
    assert set(rmse) == {24, 25, 12}
    assert rmse[25] < rmse[24] and rmse[25] < rmse[12]
    assert rmse[25] == pytest.approx(0.2 * np.sqrt(2), rel=0.1)  # difference of two independent noises


def test_select_period_real_do(sapelo_do_hourly: np.ndarray) -> None:
    y = sapelo_do_hourly[:7000]
    cands = period_candidates(1.0, detect_period(y, 48))
    best, rmse = select_period(y, 6, cands)
    assert best in cands and set(rmse) == set(cands)
    assert rmse[best] == min(rmse.values())
    # direct computation for P = 24, h = 6: forecast of y[t + 6] is y[t - 18]
    t = np.arange(18, y.size - 6)
    direct = np.sqrt(np.mean((y[t - 18] - y[t + 6]) ** 2))
    assert rmse[24] == pytest.approx(direct, rel=1e-12)
    print(f"\nselect_period Sapelo DO hourly, step 6: best={best}, rmse={ {k: round(v, 4) for k, v in rmse.items()} }")


def test_select_period_skips_thin_candidates() -> None:
    y = np.sin(np.arange(80.0))
    best, rmse = select_period(y, 1, [40, 24])
    assert best == 24 and np.isnan(rmse[40])  # P = 40 scores only 40 origins
    with pytest.raises(ValueError, match="50 scored"):
        select_period(y, 1, [40, 60])


# ------------------------------------------------------------- harmonic + AR


def _manual_design(hours: np.ndarray, periods: list[float]) -> np.ndarray:
    cols = [np.ones_like(hours)]
    for p in periods:
        cols += [np.cos(2 * np.pi * hours / p), np.sin(2 * np.pi * hours / p)]
    return np.column_stack(cols)


def test_harmonic_periods_and_design() -> None:
    assert harmonic_periods(False) == (24.0, 12.0)
    assert harmonic_periods(True) == (24.0, 12.0, M2, K1, O1)  # S2 = 12 h kept once
    assert set(DIEL.values()) | set(TIDAL.values()) == set(harmonic_periods(True))
    h = np.array([0.0, 6.0, 12.0, 1000.5])
    X = harmonic_design(h, [24.0, 12.0, 24.0])
    assert X.shape == (4, 5)
    np.testing.assert_allclose(X[:2], [[1, 1, 0, 1, 0], [1, 0, 1, -1, 0]], atol=1e-15)


def test_harmonic_ar_matches_lstsq_autoreg_and_hand_recursion(sapelo_do_hourly: np.ndarray) -> None:
    y = sapelo_do_hourly
    t, n_fit, p_ar, H = 5000, 336, 2, 8
    periods = [24.0, 12.0, M2, K1, O1]
    pos = np.arange(t - n_fit + 1, t + 1)
    X = _manual_design(pos.astype(float), periods)
    beta_ref = np.linalg.lstsq(X, y[pos], rcond=None)[0]
    beta = harmonic_fit(y[pos], pos.astype(float), harmonic_periods(True))
    np.testing.assert_allclose(beta, beta_ref, rtol=1e-10, atol=1e-10)

    resid = y[pos] - X @ beta_ref
    phi_ref = np.asarray(AutoReg(resid, lags=p_ar, trend="n").fit().params)
    phi = ar_fit(resid, p_ar)
    np.testing.assert_allclose(phi, phi_ref, rtol=1e-10, atol=1e-12)

    e = [resid[-2], resid[-1]]
    for _ in range(H):
        e.append(phi_ref[0] * e[-1] + phi_ref[1] * e[-2])
    future = _manual_design(np.arange(t + 1, t + H + 1, dtype=float), periods)
    hand = future @ beta_ref + np.array(e[2:])
    f = harmonic_ar_forecast(y, np.array([t]), H, 1.0, n_fit=n_fit, p_ar=p_ar, tides=True, **PLAIN)
    assert f.shape == (1, H)
    np.testing.assert_allclose(f[0], hand, rtol=0, atol=1e-9)

    # p_ar = 0: the pure harmonic extrapolation
    g = harmonic_ar_forecast(y, np.array([t]), H, 1.0, n_fit=n_fit, p_ar=0, tides=True, **PLAIN)
    np.testing.assert_allclose(g[0], future @ beta_ref, rtol=0, atol=1e-9)
    # tides=False uses only the 24 h and 12 h columns
    X2 = _manual_design(pos.astype(float), [24.0, 12.0])
    b2 = np.linalg.lstsq(X2, y[pos], rcond=None)[0]
    g2 = harmonic_ar_forecast(y, np.array([t]), H, 1.0, n_fit=n_fit, p_ar=0, **PLAIN)
    np.testing.assert_allclose(g2[0], _manual_design(np.arange(t + 1, t + H + 1, dtype=float), [24.0, 12.0]) @ b2,
                               rtol=0, atol=1e-9)


def test_harmonic_ar_exact_on_noiseless_tide_plus_diel() -> None:
    step = 0.5  # half-hourly grid: absolute time = position * 0.5 h
    hours = np.arange(4000) * step
    y = 6.0 + 1.5 * np.cos(2 * np.pi * hours / 24.0 + 0.3) + 0.8 * np.cos(2 * np.pi * hours / M2 - 1.1)
    origins = np.array([700, 1999, 3000, 3990])
    truth = np.array([y[t + 1 : t + 25] if t + 25 <= y.size else np.full(24, np.nan) for t in origins])
    ok = np.isfinite(truth)
    for p_ar in (0, 2):
        f = harmonic_ar_forecast(y, origins, 24, step, n_fit=672, p_ar=p_ar, tides=True, **PLAIN)
        assert np.abs(f[ok] - truth[ok]).max() < 1e-8
    # the default (robust) fit shrinks amplitudes by about ridge / (1/2 + ridge) and splits the 24 h
    # amplitude between S1 and K1 (not separable in 14 days): close (amplitudes 1.5 + 0.8), not exact
    r = harmonic_ar_forecast(y, origins, 24, step, n_fit=672, p_ar=0, tides=True)
    assert 1e-8 < np.abs(r[ok] - truth[ok]).max() < 0.15
    # the diel-only model cannot represent M2: clearly worse
    g = harmonic_ar_forecast(y, origins[:3], 24, step, n_fit=672, p_ar=0, tides=False, **PLAIN)
    assert np.abs(g - np.array([y[t + 1 : t + 25] for t in origins[:3]])).max() > 0.1


@pytest.mark.parametrize("robust", [True, False])
def test_harmonic_ar_is_causal(sapelo_do_hourly: np.ndarray, robust: bool) -> None:
    y = sapelo_do_hourly[:6000]
    origins = np.array([1000, 3000, 5900])
    kw = dict(tides=True, p_ar=24, fallback_period=25) if robust else dict(tides=True, **PLAIN)
    base = harmonic_ar_forecast(y, origins, 12, 1.0, **kw)
    assert np.isfinite(base).all()
    for i, t in enumerate(origins):
        altered = y.copy()
        altered[t + 1 :] = 50.0 + np.arange(altered.size - t - 1)
        np.testing.assert_array_equal(harmonic_ar_forecast(altered, [t], 12, 1.0, **kw)[0], base[i])
    altered = y.copy()
    altered[origins[0]] += 1.0
    assert not np.allclose(harmonic_ar_forecast(altered, origins[:1], 12, 1.0, **kw), base[:1])


def test_harmonic_ar_nan_cases(sapelo_do_hourly: np.ndarray) -> None:
    y = sapelo_do_hourly[:3000].copy()
    n_fit = 336
    y[1000:1200] = np.nan  # 200 of the 336 values before origin 1250 are missing
    f = harmonic_ar_forecast(y, np.array([100, 1250, 1199, 2000]), 4, 1.0, n_fit=n_fit, **PLAIN)
    assert np.isnan(f[0]).all()  # window clipped at the start: 101 < 168 finite values
    assert np.isnan(f[1]).all()  # 136 < n_fit / 2 finite values
    assert np.isnan(f[2]).all()  # NaN at the origin
    assert np.isfinite(f[3]).all()
    # a short gap: the last p_ar values must be finite, the rest of the window may have holes
    w = sapelo_do_hourly[:3000].copy()
    w[1500:1510] = np.nan
    origins = np.array([1509, 1510, 1511, 1512])
    f2 = harmonic_ar_forecast(w, origins, 4, 1.0, p_ar=2, **PLAIN)
    np.testing.assert_array_equal(np.isfinite(f2).all(axis=1), [False, False, True, True])
    f3 = harmonic_ar_forecast(w, origins, 4, 1.0, p_ar=3, **PLAIN)
    np.testing.assert_array_equal(np.isfinite(f3).all(axis=1), [False, False, False, True])
    f0 = harmonic_ar_forecast(w, origins, 4, 1.0, p_ar=0, **PLAIN)
    assert np.isfinite(f0).all()  # p_ar = 0 needs no particular value, only enough in the window

    # a short gap inside the window: AR rows touching it are dropped, matching a direct fit
    z = sapelo_do_hourly[:3000].copy()
    z[1900:1905] = np.nan
    t = 2000
    pos = np.arange(t - n_fit + 1, t + 1)
    ok = np.isfinite(z[pos])
    X = _manual_design(pos.astype(float), [24.0, 12.0])
    beta = np.linalg.lstsq(X[ok], z[pos][ok], rcond=None)[0]
    r = z[pos] - X @ beta
    rows = [(r[k], r[k - 1], r[k - 2]) for k in range(2, r.size) if np.isfinite([r[k], r[k - 1], r[k - 2]]).all()]
    rows_a = np.array(rows)
    assert rows_a.shape[0] == n_fit - 2 - 7  # 5 NaN targets + 2 rows with a NaN lag after the gap
    phi = np.linalg.lstsq(rows_a[:, 1:], rows_a[:, 0], rcond=None)[0]
    np.testing.assert_allclose(ar_fit(r, 2), phi, rtol=1e-10)
    e1 = phi[0] * r[-1] + phi[1] * r[-2]
    e2 = phi[0] * e1 + phi[1] * r[-1]
    future = _manual_design(np.array([t + 1.0, t + 2.0]), [24.0, 12.0]) @ beta
    got = harmonic_ar_forecast(z, np.array([t]), 2, 1.0, n_fit=n_fit, **PLAIN)[0]
    np.testing.assert_allclose(got, future + [e1, e2], rtol=0, atol=1e-9)

    # with a fallback period, rows without a fit are seasonal naive (steps it lacks: last value)
    o4 = np.array([100, 1250, 1199, 2000])
    fb = harmonic_ar_forecast(y, o4, 4, 1.0, n_fit=n_fit, fallback_period=24, min_fraction=0.5)
    np.testing.assert_array_equal(fb[:2], seasonal_naive_forecast(y, np.array([100, 1250]), 4, 24))
    assert np.isnan(fb[2]).all()  # origin 1199 is NaN and so are its seasonal-naive sources
    assert np.isfinite(fb[3]).all()
    # the default asks for a quarter of the window only (84 values): 101 and 136 are enough
    d = harmonic_ar_forecast(y, o4, 4, 1.0, n_fit=n_fit, fallback_period=24)
    assert np.isfinite(d[[0, 1, 3]]).all() and not np.array_equal(d[:2], fb[:2])

    # a window too short for its columns drops terms instead of raising (test_robust_daily.py)
    assert np.isfinite(harmonic_ar_forecast(y, np.array([10]), 2, 1.0, n_fit=8)).all()
    with pytest.raises(ValueError):
        harmonic_ar_forecast(y, np.array([10]), 2, 0.0)


def test_harmonic_ar_speed(sapelo_do_hourly: np.ndarray) -> None:
    origins = np.arange(400, 3400)
    start = time.perf_counter()
    f = harmonic_ar_forecast(sapelo_do_hourly, origins, 12, 1.0, n_fit=336, p_ar=2, **PLAIN)
    elapsed = time.perf_counter() - start
    print(f"\nharmonic_ar_forecast: 3000 origins, n_fit=336, 4 sin/cos columns, p_ar=2, plain: {elapsed:.2f} s")
    assert np.isfinite(f).all()
    assert elapsed < 15.0  # ~0.2 s on an idle core; generous for a loaded CI machine
    start = time.perf_counter()
    g = harmonic_ar_forecast(sapelo_do_hourly, origins, 12, 1.0, n_fit=672, p_ar=24, tides=True, fallback_period=25)
    elapsed = time.perf_counter() - start
    print(f"harmonic_ar_forecast: 3000 origins, n_fit=672, 10 sin/cos columns, p_ar=24, robust: {elapsed:.2f} s "
          f"({1e3 * elapsed / origins.size:.2f} ms per origin)")
    assert np.isfinite(g).all()
    assert elapsed < 30.0  # ~1.2 s on an idle core


# --------------------------------------------------- real comparison (recorded)


def test_step6_rmse_on_last_fifth_of_sapelo_do(sapelo_do_hourly: np.ndarray) -> None:
    y = sapelo_do_hourly
    H = 6
    val_start = int(0.8 * y.size)
    origins = np.arange(val_start, y.size - H)
    target = y[origins + H]
    train = y[:val_start]

    def rmse(f: np.ndarray) -> float:
        col = f[:, H - 1]
        assert np.isfinite(col).all()
        return float(np.sqrt(np.mean((col - target) ** 2)))

    best_p, _ = select_period(train, H, period_candidates(1.0, detect_period(train, 48)))
    scores = {
        "persistence": rmse(persistence_forecast(y, origins, H)),
        "seasonal naive (24)": rmse(seasonal_naive_forecast(y, origins, H, 24)),
        f"seasonal naive (selected {best_p})": rmse(seasonal_naive_forecast(y, origins, H, best_p)),
        "level-adjusted seasonal naive (24)": rmse(level_adjusted_seasonal_naive_forecast(y, origins, H, 24)),
        "climatology (hour of day)": rmse(climatology_forecast(y, origins, H, fit_climatology(train, 24))),
        "harmonic + AR(2), tides": rmse(harmonic_ar_forecast(y, origins, H, 1.0, tides=True)),
    }
    print(f"\nstep-{H} RMSE (mg/L), Sapelo DO hourly, {origins.size} origins from {val_start}:")
    for name, v in scores.items():
        print(f"  {name:40s} {v:.4f}")
    assert scores["harmonic + AR(2), tides"] < scores["persistence"]
