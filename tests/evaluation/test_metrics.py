"""Metrics against hand-written numpy formulas and known cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from wq_pipeline.common import to_jsonable
from wq_pipeline.evaluation.metrics import add_skill, kge, mae, mape, nse, r2, rmse, score


@pytest.fixture()
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    obs = 6 + rng.normal(size=200)
    pred = obs + rng.normal(scale=0.5, size=200) + 0.2
    obs[3] = np.nan
    pred[10] = np.nan
    return obs, pred


def test_against_numpy_formulas(pair: tuple[np.ndarray, np.ndarray]) -> None:
    obs, pred = pair
    ok = ~np.isnan(obs) & ~np.isnan(pred)
    o, p = obs[ok], pred[ok]
    assert o.size == 198
    assert rmse(obs, pred) == pytest.approx(np.sqrt(np.mean((o - p) ** 2)))
    assert mae(obs, pred) == pytest.approx(np.mean(np.abs(o - p)))
    assert mape(obs, pred) == pytest.approx(100 * np.mean(np.abs((o - p) / o)))
    r = np.corrcoef(o, p)[0, 1]
    assert r2(obs, pred) == pytest.approx(r**2)
    assert nse(obs, pred) == pytest.approx(1 - np.sum((o - p) ** 2) / np.sum((o - o.mean()) ** 2))
    alpha, beta = p.std() / o.std(), p.mean() / o.mean()
    assert kge(obs, pred) == pytest.approx(1 - np.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2))
    for fn in (rmse, mae, mape, r2, nse, kge):
        assert type(fn(obs, pred)) is float


def test_known_cases() -> None:
    obs = np.array([1.0, 3.0, 2.0, 5.0, 4.0])
    assert rmse(obs, obs) == 0.0 and mae(obs, obs) == 0.0 and mape(obs, obs) == 0.0
    assert nse(obs, obs) == 1.0 and kge(obs, obs) == 1.0 and r2(obs, obs) == pytest.approx(1.0)
    mean = np.full_like(obs, obs.mean())
    assert nse(obs, mean) == pytest.approx(0.0)
    assert math.isnan(r2(obs, mean)) and math.isnan(kge(obs, mean))  # correlation undefined
    # R2 (squared correlation) ignores bias and scale; NSE does not
    assert r2(obs, 2 * obs + 1) == pytest.approx(1.0)
    assert nse(obs, 2 * obs + 1) < 0


def test_mape_excludes_near_zero_and_empty() -> None:
    obs = np.array([0.0, 1e-9, 10.0, 20.0])
    pred = np.array([5.0, 5.0, 11.0, 18.0])
    assert mape(obs, pred) == pytest.approx(100 * np.mean([0.1, 0.1]))
    nan = np.array([np.nan, 1.0])
    assert math.isnan(rmse(nan[:1], nan[1:]))
    with pytest.raises(ValueError):
        rmse(np.ones(3), np.ones(4))


def test_score_per_step_and_skill() -> None:
    rng = np.random.default_rng(1)
    obs = 5 + rng.normal(size=(50, 3))
    good = obs + rng.normal(scale=0.1, size=obs.shape)
    naive = obs + rng.normal(scale=1.0, size=obs.shape)
    good[0, 2] = np.nan
    s = score(obs, good)
    assert set(s) == {"rmse", "mae", "mape", "r2", "nse", "kge", "n_points", "per_step"}
    assert s["n_points"] == 49 and s["per_step"]["n_points"] == [50, 50, 49]
    for name in ("rmse", "mae", "mape", "r2", "nse", "kge"):
        assert len(s["per_step"][name]) == 3
        assert s[name] == s["per_step"][name][-1]
    assert s["per_step"]["rmse"][0] == pytest.approx(rmse(obs[:, 0], good[:, 0]))
    scores = {"model": s, "persistence": score(obs, naive)}
    out = add_skill(scores)
    assert out is scores  # added in place
    assert out["persistence"]["skill"] == 0.0
    ref = scores["persistence"]
    assert out["model"]["skill"] == pytest.approx(1 - s["rmse"] / ref["rmse"])
    np.testing.assert_allclose(
        out["model"]["per_step"]["skill"], 1 - np.array(s["per_step"]["rmse"]) / np.array(ref["per_step"]["rmse"])
    )
    with pytest.raises(KeyError):
        add_skill(scores, reference="arima")
    with pytest.raises(ValueError):
        score(obs, good[:, :2])


def test_to_jsonable() -> None:
    obs = np.array([[1.0, 2.0], [1.0, 2.0]])  # constant columns: NaN correlation metrics
    s = add_skill({"persistence": score(obs, obs)})
    j = to_jsonable({"a": s, "arr": np.array([1.5, np.inf]), "n": np.int64(3), "t": (np.float32(0.5),)})
    text = json.dumps(j, allow_nan=False)
    back = json.loads(text)
    assert back["a"]["persistence"]["r2"] is None and back["a"]["persistence"]["skill"] is None
    assert back["arr"] == [1.5, None] and back["n"] == 3 and back["t"] == [0.5]
