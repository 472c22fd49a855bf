"""Robust harmonic + AR, daily grids and the suite's new signature, on real series.

Covers: every baseline on the daily NEON POSE oxygen series through ``statistical_baselines``;
short windows dropping terms instead of raising; a glitch in a real series (the robust fit stays
in its envelope, the plain one explodes); causality; forecasts at the origins asked for; the
day-of-year climatology against a pandas groupby; the robust pieces against references
(numpy lstsq, statsmodels AutoReg / RLM, numpy roots).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.ar_model import AutoReg

from wq_pipeline.models.baselines import (
    ANNUAL,
    PLAIN,
    ROBUST,
    WEEKLY,
    ar_spectral_radius,
    arima_forecast,
    doy_climatology_forecast,
    effective_ar_order,
    fit_arima,
    fit_doy_climatology,
    harmonic_ar_diagnose,
    harmonic_ar_forecast,
    harmonic_design,
    harmonic_periods,
    resolvable_periods,
    seasonal_naive_forecast,
    select_order,
    select_period,
    shrink_ar,
)
from wq_pipeline.models.baselines.harmonic import FIT_CLIPPED, FIT_FALLBACK
from wq_pipeline.models.baselines.suite import STATISTICAL, harmonic_grid, statistical_baselines
from wq_pipeline.models.protocol import chronological_split, eligible_origins


def _split(series, H: int, lookback: int):
    """Pipeline-like chronological split (70 / 10 / 20 %) of eligible origins."""
    ok = eligible_origins(series.values, series.observed, lookback, H)
    return chronological_split(series.values.size, ok, H, 0.2, 0.1)


# ------------------------------------------------------------------ terms by grid step


def test_terms_follow_the_grid_step() -> None:
    assert harmonic_periods(False) == (24.0, 12.0)  # hourly, as before
    assert harmonic_periods(True, step_hours=0.25)[:2] == (24.0, 12.0)
    assert harmonic_periods(True, step_hours=6.0) == (24.0, 12.4206012, 23.9344697, 25.8193417)  # 12 h = 2 steps
    assert harmonic_periods(False, step_hours=12.0) == ()  # 24 h = 2 steps: aliased, dropped
    daily = harmonic_periods(True, step_hours=24.0)  # tides ignored on a daily grid
    assert daily == tuple(ANNUAL.values()) == (8766.0, 4383.0)
    assert harmonic_periods(False, step_hours=24.0, annual=False, weekly=True) == tuple(WEEKLY.values())
    assert harmonic_periods(False, step_hours=24.0 * 7, weekly=True) == (8766.0, 4383.0)  # 7 d = 1 step
    # one full cycle of finite data (5 % tolerance), then two values per column, longest dropped first
    assert resolvable_periods((8766.0, 4383.0, 168.0), 365 * 24.0, 365) == (168.0, 4383.0, 8766.0)
    assert resolvable_periods((8766.0, 4383.0, 168.0), 224 * 24.0, 224) == (168.0, 4383.0)
    assert resolvable_periods((8766.0, 4383.0, 168.0), 365 * 24.0, 11) == (168.0, 4383.0)  # 2 x 5 <= 11
    assert resolvable_periods((8766.0, 4383.0, 168.0), 365 * 24.0, 9) == (168.0,)  # 2 x 5 > 9 >= 2 x 3
    assert resolvable_periods((24.0, 12.0), 20.0, 20) == (12.0,)
    assert effective_ar_order(16, 7) == 3 and effective_ar_order(3, 2) == 0 and effective_ar_order(672, 24) == 24


def test_daily_grid_is_built_in_days() -> None:
    grid = harmonic_grid(24.0)
    labels = [k for k, _ in grid]
    assert len(labels) == len(set(labels)) == 36  # 48 settings, 12 duplicates (no annual cycle in 56 / 112 d)
    assert {p["n_fit"] for _, p in grid} == {56, 112, 224, 365}
    assert "window 365 d, AR(7), annual + weekly" in labels and "window 56 d, AR(1), level" in labels
    assert [k for k, _ in harmonic_grid(1.0)][0] == "window 336 h, AR(2), diel" and len(harmonic_grid(1.0)) == 8
    assert harmonic_grid(0.5)[0][1]["n_fit"] == 672  # hours / step


# ------------------------------------------------------------------ short windows


def _plain_reference(y: np.ndarray, t: int, n_fit: int, p_ar: int, periods: tuple[float, ...], step: float,
                     H: int) -> np.ndarray:
    """Harmonic lstsq + AutoReg(trend='n') + recursion on a gap-free window, by hand."""
    pos = np.arange(t - n_fit + 1, t + 1)
    X = harmonic_design(pos * step, periods)
    beta = np.linalg.lstsq(X, y[pos], rcond=None)[0]
    resid = y[pos] - X @ beta
    future = harmonic_design(np.arange(t + 1, t + H + 1) * step, periods) @ beta
    if p_ar == 0:
        return future
    phi = np.asarray(AutoReg(resid, lags=p_ar, trend="n").fit().params)
    e = list(resid[-p_ar:])
    for _ in range(H):
        e.append(float(np.dot(phi, e[::-1][:p_ar])))
    return future + np.array(e[p_ar:])


def test_short_window_drops_terms_instead_of_raising(sapelo_do_hourly: np.ndarray, pose_daily) -> None:
    y = sapelo_do_hourly
    t, H = 5000, 4
    # 14 hourly values for 11 tidal columns (used to raise): 24 h, K1, O1 need a day of data and
    # are dropped; 12 h and M2 remain (5 columns, 2 values each)
    kept = resolvable_periods(harmonic_periods(True), 14.0, 14)
    assert kept == (12.0, 12.4206012)
    got = harmonic_ar_forecast(y, np.array([t]), H, 1.0, n_fit=14, p_ar=2, tides=True, **PLAIN)[0]
    np.testing.assert_allclose(got, _plain_reference(y, t, 14, 2, kept, 1.0, H), atol=1e-9)
    # 8 values: no period left, level + AR, and AR(2) -> AR(1) (4 values per coefficient)
    assert resolvable_periods(harmonic_periods(True), 8.0, 8) == () and effective_ar_order(8, 2) == 1
    got8 = harmonic_ar_forecast(y, np.array([t]), H, 1.0, n_fit=8, p_ar=2, tides=True, **PLAIN)[0]
    np.testing.assert_allclose(got8, _plain_reference(y, t, 8, 1, (), 1.0, H), atol=1e-9)
    assert np.isfinite(harmonic_ar_forecast(y, np.array([t]), H, 1.0, n_fit=8, p_ar=24, tides=True)).all()
    # the daily case that crashed `wq evaluate --freq 1D` (n_fit=16, 11 columns, AR(2)) now fits
    d = pose_daily.values
    for n_fit in (16, 7, 3, 2, 1):
        f, status = harmonic_ar_diagnose(d, np.arange(400, 700, 10), 7, 24.0, n_fit=n_fit, p_ar=7, annual=True,
                                         weekly=True)
        assert np.isfinite(f).all(), n_fit
    # 16 days: the weekly cycle (2.3 cycles) stays, the annual ones go, AR(7) -> AR(3)
    kept_d = resolvable_periods(harmonic_periods(False, step_hours=24.0, weekly=True), 16 * 24.0, 16)
    assert kept_d == (168.0,)
    got_d = harmonic_ar_forecast(d, np.array([600]), 7, 24.0, n_fit=16, p_ar=7, weekly=True, **PLAIN)[0]
    np.testing.assert_allclose(got_d, _plain_reference(d, 600, 16, 3, kept_d, 24.0, 7), atol=1e-9)
    # a single value: intercept only, the forecast is that value
    one = harmonic_ar_forecast(d, np.array([600]), 3, 24.0, n_fit=1, p_ar=3, **PLAIN)[0]
    np.testing.assert_allclose(one, d[600], atol=1e-12)


def test_daily_plain_fit_equals_lstsq_and_autoreg(pose_daily) -> None:
    d = pose_daily.values
    t, n_fit, p_ar, H = 700, 365, 3, 14
    assert np.isfinite(d[t - n_fit + 1 : t + 1]).all()
    periods = harmonic_periods(False, step_hours=24.0, annual=True, weekly=True)
    got = harmonic_ar_forecast(d, np.array([t]), H, 24.0, n_fit=n_fit, p_ar=p_ar, weekly=True, **PLAIN)[0]
    np.testing.assert_allclose(got, _plain_reference(d, t, n_fit, p_ar, periods, 24.0, H), atol=1e-8)


# ------------------------------------------------------------------ robust pieces vs references


def test_ridge_and_huber_fit_match_references(sapelo_do_hourly: np.ndarray) -> None:
    import statsmodels.api as sm

    y = sapelo_do_hourly.copy()
    t, n_fit, H = 6000, 336, 3
    pos = np.arange(t - n_fit + 1, t + 1)
    y[pos[100]] -= 5.0  # a glitch for the Huber fit to down-weight
    periods = harmonic_periods(True)
    X = harmonic_design(pos.astype(float), sorted(periods))
    Xf = harmonic_design(np.arange(t + 1, t + H + 1, dtype=float), sorted(periods))
    # ridge: lstsq on the augmented system [X; sqrt(lam n) D]
    lam = 0.01
    D = np.sqrt(lam * n_fit) * np.eye(X.shape[1])[1:]
    beta_ridge = np.linalg.lstsq(np.vstack([X, D]), np.r_[y[pos], np.zeros(D.shape[0])], rcond=None)[0]
    got = harmonic_ar_forecast(y, np.array([t]), H, 1.0, n_fit=n_fit, p_ar=0, tides=True,
                               **dict(PLAIN, ridge=lam))[0]
    np.testing.assert_allclose(got, Xf @ beta_ridge, atol=1e-9)
    # Huber IRLS iterated to convergence = statsmodels RLM(HuberT(c)) with the MAD scale
    rlm = sm.RLM(y[pos], X, M=sm.robust.norms.HuberT(t=3.0)).fit(scale_est="mad", maxiter=500, tol=1e-12)
    got_h = harmonic_ar_forecast(y, np.array([t]), H, 1.0, n_fit=n_fit, p_ar=0, tides=True,
                                 **dict(PLAIN, huber_c=3.0, huber_iter=200))[0]
    np.testing.assert_allclose(got_h, Xf @ rlm.params, atol=1e-6)
    ols = np.linalg.lstsq(X, y[pos], rcond=None)[0]
    assert np.abs(Xf @ ols - Xf @ rlm.params).max() > 1e-3  # the glitch does move the plain fit


def test_ar_stability_helpers_match_numpy_roots(sapelo_do_hourly: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    for p in (1, 2, 5, 24):
        phi = rng.normal(scale=0.6, size=p)
        roots = np.roots(np.r_[1.0, -phi])
        assert ar_spectral_radius(phi) == pytest.approx(np.abs(roots).max(), rel=1e-9)
        shrunk, did = shrink_ar(phi, 0.9)
        if np.abs(roots).max() > 0.9:
            assert did and ar_spectral_radius(shrunk) == pytest.approx(0.9, rel=1e-9)
            # every root scaled by the same factor
            new_roots = np.sort_complex(np.roots(np.r_[1.0, -shrunk]))
            np.testing.assert_allclose(new_roots, np.sort_complex(roots * 0.9 / np.abs(roots).max()), atol=1e-8)
        else:
            assert not did and np.array_equal(shrunk, phi)
    # a random walk residual has a unit root; the robust fit keeps every used recursion below 1
    assert ar_spectral_radius(np.array([1.0])) == 1.0 and shrink_ar(np.array([1.0]), ROBUST["max_root"])[1] is (
        ROBUST["max_root"] < 1.0)


# ------------------------------------------------------------------ glitch: robust vs plain

# test origins of the LEWI hourly series (mg/L around 9) where the plain AR(24) fit exploded
LEWI_ORIGINS = np.array([11996, 12196, 12646])


def test_glitch_keeps_robust_forecasts_in_the_envelope_while_plain_explodes(lewi_hourly) -> None:
    y = lewi_hourly.values
    kw = dict(n_fit=336, p_ar=24, tides=True)
    m = ROBUST["envelope"]
    rows = []
    for t in LEWI_ORIGINS:
        assert np.isfinite(y[t - 335 : t + 1]).all()
        z = y.copy()
        z[t - 4], z[t - 3] = 3.3, 6.5  # the users' two-reading glitch, 3-4 h before the origin
        w = z[t - 335 : t + 1]
        lo, hi = w.min() - m * (w.max() - w.min()), w.max() + m * (w.max() - w.min())
        plain = harmonic_ar_forecast(z, np.array([t]), 6, 1.0, **kw, **PLAIN)[0]
        robust, status = harmonic_ar_diagnose(z, np.array([t]), 6, 1.0, **kw, fallback_period=24)
        clean = harmonic_ar_forecast(y, np.array([t]), 6, 1.0, **kw, fallback_period=24)[0]
        rows.append((t, y[t], plain.min(), plain.max(), robust[0].min(), robust[0].max(), lo, hi,
                     np.abs(robust[0] - clean).max(), np.abs(plain - clean).max()))
        assert lo <= robust[0].min() and robust[0].max() <= hi
        assert not status[0] & FIT_FALLBACK
        assert np.abs(robust[0] - clean).max() < 1.0  # moved by well under a mg/L
        assert plain.max() > hi or plain.min() < lo  # the plain fit leaves the envelope
    print("\norigin  y[t]  plain [min, max]   robust [min, max]   envelope   |robust - clean|  |plain - clean|")
    for r in rows:
        print("%6d %5.2f  [%6.2f, %6.2f]  [%5.2f, %5.2f]  [%5.2f, %5.2f]  %5.2f  %6.2f" % r)
    assert max(r[3] for r in rows) > 16.0  # 16-24 mg/L, as users saw


def test_robust_rows_always_stay_within_the_envelope_on_real_data(lewi_hourly) -> None:
    y = lewi_hourly.values
    origins = np.flatnonzero(np.isfinite(y))[::40]
    origins = origins[origins > 400]
    f, status = harmonic_ar_diagnose(y, origins, 6, 1.0, n_fit=336, p_ar=24, tides=True, fallback_period=24)
    fitted = (status & FIT_FALLBACK) == 0
    for i in np.flatnonzero(fitted & np.isfinite(f).all(axis=1)):
        w = y[max(0, origins[i] - 335) : origins[i] + 1]
        w = w[np.isfinite(w)]
        margin = ROBUST["envelope"] * (w.max() - w.min())
        assert w.min() - margin - 1e-12 <= f[i].min() and f[i].max() <= w.max() + margin + 1e-12
    assert np.isfinite(f).all(axis=1).mean() > 0.9
    assert ((status & FIT_CLIPPED) > 0).mean() < 0.01  # on clean data the envelope (almost) never binds


# ------------------------------------------------------------------ the suite on daily data


def test_every_baseline_runs_on_daily_pose(pose_daily) -> None:
    H = 7
    s = _split(pose_daily, H, 28)
    origins = np.concatenate([s.val, s.test])
    out = statistical_baselines(pose_daily.values, s.val_start, s.val, origins, H, pose_daily.step_hours,
                                max_lag=56, times=pose_daily.times, y_obs=pose_daily.y_obs)
    assert set(out.forecasts) == set(STATISTICAL)
    for name, f in out.forecasts.items():
        assert f.shape == (origins.size, H), name
        assert np.isfinite(f).all(axis=1).mean() > 0.95, name
    info = out.info
    json.dumps(info)  # JSON-serialisable
    assert info["climatology"].startswith("day of year")
    assert info["seasonal_period"] in (7, 365) or info["seasonal_period"] == info["acf_period"]
    assert info["harmonic_ar"] in info["harmonic_ar_validation_rmse"]
    # the hybrid's first stage passes the params straight back
    again = harmonic_ar_forecast(pose_daily.values, origins, H, pose_daily.step_hours, **info["harmonic_ar_params"])
    np.testing.assert_array_equal(again, out.forecasts["harmonic_ar"])
    # the daily fit beats persistence at 7 days on the test origins (real observations only)
    obs = pose_daily.y_obs[s.test + H]
    n_val = s.val.size

    def rmse(name: str) -> float:
        col = out.forecasts[name][n_val:, -1]
        ok = np.isfinite(col) & np.isfinite(obs)
        return float(np.sqrt(np.mean((col[ok] - obs[ok]) ** 2)))

    scores = {name: round(rmse(name), 4) for name in STATISTICAL}
    print(f"\nPOSE daily oxygen, test RMSE at {H} d: {scores}; harmonic + AR: {info['harmonic_ar']}")
    assert scores["harmonic_ar"] < scores["persistence"]


def test_arima_runs_on_daily_pose(pose_daily) -> None:
    H = 7
    s = _split(pose_daily, H, 28)
    train = pose_daily.values[: s.val_start]
    order = select_order(train)
    f = arima_forecast(fit_arima(train, order), pose_daily.values, np.concatenate([s.val, s.test]), H)
    assert np.isfinite(f).all()
    lo, hi = np.nanmin(pose_daily.values), np.nanmax(pose_daily.values)
    assert lo - 5 < f.min() and f.max() < hi + 5
    # a short training series: few parameters, no wild forecasts (AIC picked (2, 0, 2) on 15 values
    # and forecast -13..31 mg/L)
    short = pose_daily.values[:15]
    o15 = select_order(short)
    assert o15 == (0, 1, 0)
    g = arima_forecast(fit_arima(short, o15), pose_daily.values, np.arange(20, 200, 10), H)
    assert np.isfinite(g).all() and lo - 1 < g.min() and g.max() < hi + 1
    gappy = train.copy()
    gappy[100:260] = np.nan  # a long inner gap
    assert np.isfinite(arima_forecast(fit_arima(gappy, select_order(gappy, p_max=1, q_max=1)),
                                      pose_daily.values, s.test, H)).all()


def test_new_signature_returns_forecasts_for_the_origins_asked(pose_daily) -> None:
    y, H = pose_daily.values, 7
    s = _split(pose_daily, H, 28)
    kw = dict(max_lag=56, times=pose_daily.times, y_obs=pose_daily.y_obs)
    asked = np.array([s.test[5], s.val[0], s.test[-1], s.val[3], s.test[5]])  # any order, repeats allowed
    a = statistical_baselines(y, s.val_start, s.val, asked, H, 24.0, **kw)
    b = statistical_baselines(y, s.val_start, s.val, s.test, H, 24.0, **kw)
    c = statistical_baselines(y, s.val_start, s.val, s.val, H, 24.0, **kw)
    drop = "harmonic_ar_events"  # counts at the origins asked for, not a choice
    assert {k: v for k, v in a.info.items() if k != drop} == {k: v for k, v in b.info.items() if k != drop}
    test_pos = {int(t): i for i, t in enumerate(s.test)}
    val_pos = {int(t): i for i, t in enumerate(s.val)}
    for name in STATISTICAL:
        assert a.forecasts[name].shape == (asked.size, H)
        for i, t in enumerate(asked):
            ref = b.forecasts[name][test_pos[int(t)]] if int(t) in test_pos else c.forecasts[name][val_pos[int(t)]]
            np.testing.assert_array_equal(a.forecasts[name][i], ref, err_msg=name)
    assert statistical_baselines(y, s.val_start, s.val, np.array([], dtype=int), H, 24.0, **kw).forecasts[
        "harmonic_ar"].shape == (0, H)


@pytest.mark.parametrize("daily", [True, False])
def test_suite_rows_are_causal(pose_daily, sapelo_do_hourly: np.ndarray, daily: bool) -> None:
    if daily:
        y, H, step, times = pose_daily.values, 7, 24.0, pose_daily.times
        s = _split(pose_daily, H, 28)
        val_start, val, test = s.val_start, s.val, s.test
    else:
        y, H, step, times = sapelo_do_hourly[:5000], 6, 1.0, None
        val_start, val, test = 3500, np.arange(3600, 4000 - H, 2), np.arange(4000, 5000 - H, 7)
    base = statistical_baselines(y, val_start, val, test, H, step, times=times)
    for t in (test[0], test[test.size // 2], test[-1]):
        z = y.copy()
        z[t + 1 :] = 99.0 + np.sin(np.arange(z.size - t - 1))
        i = int(np.flatnonzero(test == t)[0])
        other = statistical_baselines(z, val_start, val, np.array([t]), H, step, times=times)
        for name in STATISTICAL:
            np.testing.assert_array_equal(other.forecasts[name][0], base.forecasts[name][i], err_msg=name)


def test_validation_scores_use_observed_values_only(pose_daily) -> None:
    y, H = pose_daily.values, 7
    s = _split(pose_daily, H, 28)
    targets = s.val + H
    fake_obs = pose_daily.y_obs.copy()
    fake_obs[targets[::2]] = np.nan  # pretend every other validation target was interpolated
    out = statistical_baselines(y, s.val_start, s.val, s.test, H, 24.0, max_lag=56, times=pose_daily.times,
                                y_obs=fake_obs)
    scores = out.info["harmonic_ar_validation_rmse"]
    for label, grid_params in harmonic_grid(24.0)[::7]:
        params = dict(grid_params, **ROBUST, fallback_period=out.info["seasonal_period"])
        col = harmonic_ar_forecast(y, s.val, H, 24.0, **params)[:, -1]
        ok = np.isfinite(col) & np.isfinite(fake_obs[targets])
        assert ok.sum() < np.isfinite(col).sum()  # the "interpolated" targets were left out
        assert scores[label] == pytest.approx(np.sqrt(np.mean((col[ok] - fake_obs[targets][ok]) ** 2)), rel=1e-12)
    # select_period: interpolated training targets do not score either
    train, tr_obs = y[: s.val_start], pose_daily.y_obs[: s.val_start].copy()
    tr_obs[::3] = np.nan
    _, rmse = select_period(train, H, [7, 365], observed=tr_obs)
    t = np.arange(train.size - H)
    src = seasonal_naive_forecast(train, t, H, 7)[:, -1]
    ok = np.isfinite(src) & np.isfinite(tr_obs[t + H])
    assert rmse[7] == pytest.approx(np.sqrt(np.mean((src[ok] - tr_obs[t + H][ok]) ** 2)), rel=1e-12)


def test_period_falls_back_when_nothing_scores(pose_daily) -> None:
    y, H = pose_daily.values, 7
    val_start = 40  # 40 training days: no candidate has 50 scored points
    val = np.arange(45, 120)
    out = statistical_baselines(y, val_start, val, np.arange(130, 200), H, 24.0, times=pose_daily.times)
    assert out.info["seasonal_period"] == 1
    assert out.info["seasonal_period_source"].startswith("fallback to 1 step")
    np.testing.assert_array_equal(out.forecasts["seasonal_naive"], out.forecasts["persistence"])
    assert all(np.isfinite(f).all(axis=1).mean() > 0.95 for f in out.forecasts.values())


# ------------------------------------------------------------------ day-of-year climatology


def test_doy_climatology_equals_pandas_groupby(pose_daily) -> None:
    n_train = 580
    y = pose_daily.values[:n_train].copy()
    times = pose_daily.times[:n_train]
    y[200:260] = np.nan  # a gap: those days of year have fewer values
    k = 7
    prof = fit_doy_climatology(y, times, k)
    daily = pd.Series(y, index=times).groupby(times.dayofyear).mean()  # pandas skips NaN
    full = daily.reindex(np.arange(1, 367))  # NaN for days of year never seen
    padded = pd.concat([full.iloc[-k:], full, full.iloc[:k]])  # circular
    ref = padded.rolling(2 * k + 1, center=True, min_periods=1).mean().iloc[k:-k]
    ref = ref.fillna(np.nanmean(y)).to_numpy()
    np.testing.assert_allclose(prof, ref, rtol=0, atol=1e-12)
    # a day of year never seen within +-k days gets the training mean
    short = fit_doy_climatology(y[:30], times[:30], 2)
    unseen = (np.arange(366) + 1 < times[0].dayofyear - 2) | (np.arange(366) + 1 > times[29].dayofyear + 2)
    np.testing.assert_allclose(short[unseen], np.nanmean(y[:30]))
    # forecasts index the targets' day of year, past the end of the grid too
    f = doy_climatology_forecast(pose_daily.times, np.array([100, pose_daily.times.size - 1]), 3, prof)
    doy = pose_daily.times[[101, 102, 103]].dayofyear - 1
    np.testing.assert_array_equal(f[0], prof[doy])
    last = pose_daily.times[-1]
    np.testing.assert_array_equal(f[1], prof[[(last + pd.Timedelta(days=h)).dayofyear - 1 for h in (1, 2, 3)]])
