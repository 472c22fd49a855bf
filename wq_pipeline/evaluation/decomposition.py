"""The decomposition stages of a run: the decomposer fitted on training windows only, the stationarity tests, the stepwise decomposition of every origin and its cache key."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd

from wq_pipeline._version import __version__
from wq_pipeline.config import EvaluateConfig
from wq_pipeline.decompose import Decomposer
from wq_pipeline.evaluation.folds import Plan, Stationarity
from wq_pipeline.evaluation.progress import _progress_bar
from wq_pipeline.evaluation.stationarity import stationarity_table
from wq_pipeline.models.protocol import (
    ComponentSamples,
    global_decompose,
    stepwise_decompose,
)

FIT_WINDOWS = 64


def fit_decomposer(decomposer: Decomposer, plan: Plan, cfg: EvaluateConfig) -> Decomposer:
    """Fit what a decomposer learns from data (CEEMDAN-SE-VMD's entropy groups) on trailing
    windows ending at training origins only, so nothing of the validation or test period shapes
    it. Returns the decomposer, fitted (unchanged when it has nothing to fit)."""
    if hasattr(decomposer, "fit"):
        fit_on_origins(decomposer, plan.values, plan.split.train, cfg.decomp_window)
    return decomposer


def fit_on_origins(decomposer: Decomposer, values: np.ndarray, origins: np.ndarray, decomp_window: int) -> None:
    """``decomposer.fit`` on up to :data:`FIT_WINDOWS` trailing windows ``(n, L)`` ending at
    ``origins`` (evenly spaced)."""
    pick = origins[np.unique(np.linspace(0, origins.size - 1, min(FIT_WINDOWS, origins.size)).astype(int))]
    decomposer.fit(values[pick[:, None] + np.arange(-decomp_window + 1, 1)[None, :]])


def learnt_parameters(decomposer: Decomposer) -> dict[str, Any]:
    """What a fitted decomposer learnt from the training data (empty when nothing)."""
    return {k: v for k, v in decomposer.params().items() if k in ("groups", "entropies")}


def stationarity_stage(plan: Plan, decomposer: Decomposer) -> Stationarity:
    """ADF and KPSS on the raw training series and on every component of its decomposition.

    Uses the training period only (the longest finite stretch before validation starts), so the
    table carries no information from the test period.
    """
    train = plan.values[: plan.split.val_start]
    finite = np.isfinite(train)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], finite.astype(np.int8), [0]])))
    a, b = max(zip(edges[::2], edges[1::2]), key=lambda ab: ab[1] - ab[0])
    seg = train[a:b]
    series = {"raw": seg}
    comps = decomposer.decompose(seg)
    for name, comp in zip(decomposer.names, comps):
        series[name] = comp
    frame = pd.DataFrame({"time": [t.isoformat() for t in plan.times[a:b]], **series})
    return Stationarity(table=stationarity_table(series), components=frame)


def decompose_stage(plan: Plan, cfg: EvaluateConfig, decomposer: Decomposer) -> ComponentSamples:
    """Decompose under the configured protocol (stepwise: one trailing window per position)."""
    if cfg.protocol == "global":
        return global_decompose(plan.values, plan.decompose_at, decomposer, cfg.window, cfg.decomp_window)
    bar = _progress_bar(plan.decompose_at.size, f"Decomposing {plan.decompose_at.size} windows ({cfg.method})")
    try:
        return stepwise_decompose(
            plan.values, plan.decompose_at, decomposer, cfg.decomp_window, cfg.window, progress=bar.update
        )
    finally:
        bar.close()


#: the cached results are pickles that name their classes' modules: bumped when those move (2: the
#: subpackages by stage), so a cache written before is recomputed, never unpickled
CACHE_LAYOUT = 2


def decomposition_cache_key(plan: Plan, cfg: EvaluateConfig, decomposer: Decomposer) -> str:
    """Content hash of the decomposition's inputs and parameters, and of :data:`CACHE_LAYOUT`."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(plan.values).tobytes())
    h.update(np.ascontiguousarray(plan.decompose_at).tobytes())
    h.update(json.dumps({"protocol": cfg.protocol, "L": cfg.decomp_window, "W": cfg.window,
                         "params": decomposer.params(), "version": __version__, "layout": CACHE_LAYOUT},
                        sort_keys=True).encode())
    return "decompose-" + h.hexdigest()

