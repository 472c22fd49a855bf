"""End-effect profile (wq_pipeline.decompose.reliability) on the real Sapelo hourly DO series."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wq_pipeline.decompose import make_decomposer
from wq_pipeline.decompose.base import Decomposer
from wq_pipeline.decompose.reliability import EndEffects, end_effect_profile


class CausalMean3(Decomposer):
    """Test-only decomposer, causal by construction: one mode = trailing 3-point mean with the
    first sample replicated to the left; the residual is ``x - mode``."""

    method = "causal-mean3"

    def __init__(self) -> None:
        super().__init__(modes=1, seed=0)

    def _modes_batch(self, X, progress):
        p = np.concatenate([X[:, :1], X[:, :1], X], axis=1)
        return ((p[:, 2:] + p[:, 1:-1] + p[:, :-2]) / 3.0)[:, None, :]


def _origins(v: np.ndarray, n: int, margin: int) -> np.ndarray:
    return np.linspace(margin, v.size - 1 - margin, n).round().astype(int)


@pytest.fixture(scope="module")
def vmd_profile(sapelo_do_hourly) -> EndEffects:
    v = sapelo_do_hourly
    return end_effect_profile(v, _origins(v, 20, 256), make_decomposer("vmd", 4), 256, 256, max_lag=24)


def test_vmd_profile_shape_and_decay(vmd_profile: EndEffects):
    p = vmd_profile
    assert p.names == ["imf1", "imf2", "imf3", "imf4", "residual"]
    assert p.lags.tolist() == list(range(25))
    assert p.rel_error.shape == (5, 25) and p.rmse.shape == (5, 25) and p.scale.shape == (5,)
    assert p.n_origins == 20
    assert np.all(np.isfinite(p.rel_error)) and np.all(p.rel_error >= 0)
    # end effects decay with the distance from the window's end
    assert p.rel_error[:, 0].mean() > p.rel_error[:, 24].mean()
    rl = p.reliable_lag(0.2)
    assert len(rl) == 5 and all(0 <= r <= 25 for r in rl)
    d = json.loads(json.dumps(p.to_dict()))
    assert d["reliable_lag"] == rl and len(d["rel_error"]) == 5 and len(d["rel_error"][0]) == 25


def test_causal_decomposer_has_no_end_effect(sapelo_do_hourly):
    v = sapelo_do_hourly
    L, h = 32, 64
    p = end_effect_profile(v, _origins(v, 20, 64), CausalMean3(), L, h, max_lag=L - 1)
    assert p.n_origins == 20 and p.rel_error.shape == (2, L)
    # identical at every lag that is not affected by the trailing window's LEFT edge ...
    assert np.all(p.rel_error[:, : L - 2] == 0.0)
    # ... and the two samples using the replicated edge do differ
    assert np.all(p.rel_error[:, L - 2 :] > 0.0)
    # the boundary lags are the last ones, so a tiny threshold is never met from there on
    assert p.reliable_lag(1e-300) == [L, L]


def test_skips_origins_with_gaps_or_outside():
    rng = np.random.default_rng(0)
    v = np.cumsum(rng.normal(size=400))
    v[200] = np.nan
    # 10: trailing window leaves the series; 390: centred window does; 180/230: gap inside
    origins = np.array([10, 100, 180, 230, 300, 390])
    p = end_effect_profile(v, origins, CausalMean3(), 40, 50, max_lag=10)
    assert p.origins.tolist() == [100, 300]
    assert np.all(p.rel_error[:, :11] == 0.0)
    with pytest.raises(ValueError):
        end_effect_profile(v, origins, CausalMean3(), 8, 50, max_lag=10)
    empty = end_effect_profile(v, np.array([10]), CausalMean3(), 40, 50, max_lag=5)
    assert empty.n_origins == 0 and np.all(np.isnan(empty.rel_error))
    assert empty.reliable_lag() == [6, 6]


def test_reliable_lag_rule():
    rel = np.array([[0.9, 0.1, 0.3, 0.1, 0.05], [0.1, 0.1, 0.1, 0.1, 0.1], [0.5, 0.4, 0.3, 0.2, 0.25]])
    p = EndEffects(["a", "b", "c"], np.arange(5), rel, rel, np.ones(3), 1, np.array([0]), 8, 8)
    assert p.reliable_lag(0.2) == [3, 0, 5]
