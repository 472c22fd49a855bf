"""The online-weighted ensemble: causal weights from observed errors, against a direct computation."""

from __future__ import annotations

import numpy as np
import pytest

from wq_pipeline.models.baselines.harmonic import harmonic_ar_forecast
from wq_pipeline.models.baselines.persistence import persistence_forecast
from wq_pipeline.models.baselines.seasonal_naive import seasonal_naive_forecast
from wq_pipeline.models.ensemble import EnsembleOptions, combine, error_matrix, online_weights

H = 6


@pytest.fixture(scope="module")
def members(sapelo_do_hourly):
    """Three real members' forecasts ``(3, n, H)`` at 600 hourly Sapelo origins, and the series."""
    y = sapelo_do_hourly[:4000].copy()
    origins = np.arange(3000, 3600)
    F = np.stack([persistence_forecast(y, origins, H), seasonal_naive_forecast(y, origins, H, 25),
                  harmonic_ar_forecast(y, origins, H, 1.0, n_fit=336, p_ar=2, tides=True)])
    return y, origins, F


def _direct_mse(F, origins, y_obs, i, h, half_life):
    """Per-member EW MSE at origin i, step h (0-based), from scratch: records with o_j + h + 1 <= o_i."""
    E = error_matrix(F, origins, y_obs)[:, :, h]
    lam = 0.5 ** (1 / half_life)
    avail = origins + h + 1
    use = avail <= origins[i]
    w = lam ** (origins[i] - avail[use])
    e = E[:, use]
    fin = np.isfinite(e)
    return (np.where(fin, e * e, 0) * w).sum(axis=1) / (fin * w).sum(axis=1)


@pytest.mark.parametrize("rule", ["inverse_mse", "softmax", "best"])
def test_weights_match_a_direct_computation_from_observed_errors(members, rule):
    y, origins, F = members
    y_obs = y.copy()
    y_obs[3100:3110] = np.nan  # not real observations: never scored
    opts = EnsembleOptions(rule=rule, half_life=48.0, min_records=5)
    W = online_weights(F, origins, y_obs, opts)
    assert W.shape == (origins.size, H, 3)
    assert np.allclose(W.sum(axis=2), 1.0)
    for i in (30, 150, 420, 599):
        for h in (0, 5):
            mse = _direct_mse(F, origins, y_obs, i, h, 48.0)
            if rule == "inverse_mse":
                want = (1 / mse) / (1 / mse).sum()
            elif rule == "softmax":
                e = np.exp(-opts.eta * (np.sqrt(mse / mse.min()) - 1))
                want = e / e.sum()
            else:
                want = np.eye(3)[np.argmin(mse)]
            assert np.allclose(W[i, h], want, rtol=1e-9, atol=1e-12), (i, h)
    # harmonic + AR beats persistence at 6 h on this estuary: it earns more weight there
    assert W[300:, 5, 2].mean() > W[300:, 5, 0].mean()


def test_weights_at_t_use_only_errors_observed_by_t(members):
    y, origins, F = members
    opts = EnsembleOptions(rule="stack", half_life=72.0, min_records=5)
    base = online_weights(F, origins, y, opts)
    i = 400
    t = origins[i]
    y2, F2 = y.copy(), F.copy()
    y2[t + 1:] += np.linspace(0.5, 3.0, y2.size - t - 1)  # every value after t changes
    F2[:, i + 1:] *= 1.3  # and every later forecast
    after = online_weights(F2, origins, y2, opts)
    assert np.array_equal(base[: i + 1], after[: i + 1])  # bit-identical up to t
    assert not np.allclose(base[i + 1 + H:], after[i + 1 + H:])
    # the record of origin s for step h enters exactly when s + h is reached: the 4-step forecast
    # issued 3 steps before t targets t + 1, so it may not move the weights at t, only after
    F4 = F.copy()
    F4[:, i - 3, 3] += 1.0
    w4 = online_weights(F4, origins, y, opts)
    assert np.array_equal(w4[: i + 1], base[: i + 1])
    assert not np.array_equal(w4[i + 1, 3], base[i + 1, 3]) and np.array_equal(w4[i + 1, :3], base[i + 1, :3])


def test_members_without_a_forecast_are_left_out_and_early_weights_are_equal(members):
    y, origins, F = members
    F = F.copy()
    F[1, 200:260] = np.nan
    W = online_weights(F, origins, y, EnsembleOptions(min_records=12))
    assert np.allclose(W[:7, 0], 1 / 3)  # no member has 12 records yet
    assert (W[200:260, :, 1] == 0).all() and np.allclose(W[200:260].sum(axis=2), 1)
    out = combine(F, W)
    assert np.isfinite(out).all()
    i = 230
    assert out[i, 3] == pytest.approx((W[i, 3] * np.nan_to_num(F[:, i, 3])).sum())


def test_options_are_checked():
    with pytest.raises(ValueError, match="rule"):
        EnsembleOptions(rule="median")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        EnsembleOptions(half_life=0)


def test_the_record_carries_over_to_the_next_models_forecasts(members):
    """A retrained set of members takes over at its first origin; the previous members'
    forecasts issued before it stay in the record (as in a deployed ensemble)."""
    from wq_pipeline.models.ensemble import distinct_members, with_history

    y, origins, F = members
    first, second = origins[:400], origins[300:]  # the new models also forecast the last 100 old origins
    hist = (first, F[:, :400])
    o, f, n_hist = with_history(hist, second, F[:, 300:] + 0.01)
    assert n_hist == 300 and np.array_equal(o, origins) and np.all(np.diff(o) > 0)
    assert np.array_equal(f[:, :300], F[:, :300]) and np.array_equal(f[:, 300:], F[:, 300:] + 0.01)
    opts = EnsembleOptions(half_life=72.0, min_records=5)
    carried = online_weights(f, o, y, opts)[n_hist:]
    fresh = online_weights(F[:, 300:] + 0.01, second, y, opts)
    assert not np.allclose(fresh[:5], carried[:5])  # the fresh start has equal weights, the carried one not
    assert np.allclose(fresh[:5, 0], 1 / 3)
    same, dropped = distinct_members(np.stack([F[0], F[1], F[0]]), ["a", "b", "c"])
    assert dropped == {"c": "a"} and np.isnan(same[2]).all() and np.array_equal(same[0], F[0])
