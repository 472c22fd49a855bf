"""Sample construction for the two evaluation protocols, and chronological splits.

Positions are integer indices on the regular time grid. A forecast issued at origin ``t``
predicts positions ``t+1 .. t+H`` and may use positions ``<= t`` only.

*stepwise* (honest, default): every origin ``t`` gets its own decomposition of the trailing
window ``x[t-L+1 .. t]``. The model input is the last ``W`` points of each component of that
window. The training target of component ``k`` at step ``h`` is the *end point* of component
``k`` in the decomposition of the window ending at ``t+h`` -- a value known at time ``t+h``,
never earlier data re-estimated with later data. Because the components of every window sum to
the signal exactly, the component targets sum to the raw target ``x[t+h]``.

*global* (leaky, for reproducing published numbers only): the whole series is decomposed once,
so every component value at ``t`` depends on data after ``t``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .decompose import Decomposer

LEAKY_LABEL = "global (LEAKY: decomposes the whole series first; for reproducing published numbers only)"


@dataclass(frozen=True)
class Split:
    """Chronological split of origin positions into train / validation / test.

    ``val_start`` and ``test_start`` are grid positions. Training samples have all their targets
    before ``val_start``; validation samples have all their targets before ``test_start``; test
    origins are at or after ``test_start``.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    val_start: int
    test_start: int


def window_ok(finite: np.ndarray, length: int) -> np.ndarray:
    """Bool ``(N,)``: True at ``t`` when ``finite[t-length+1 .. t]`` are all True (so no long gap
    lies inside the trailing window)."""
    n = finite.size
    ok = np.zeros(n, dtype=bool)
    if length > n:
        return ok
    c = np.concatenate([[0], np.cumsum(~finite)])
    bad = c[length:] - c[:-length]  # bad count in window ending at t = length-1 .. n-1
    ok[length - 1 :] = bad == 0
    return ok


def eligible_origins(values: np.ndarray, observed: np.ndarray, lookback: int, horizon: int) -> np.ndarray:
    """Bool ``(N,)``: origins whose trailing ``lookback`` points are finite and whose own value is a
    real observation.

    Requiring a real observation at the origin keeps gap interpolation causal: any interpolated
    point inside the window is then bracketed by observations at or before ``t``. The last
    ``horizon`` positions are excluded because nothing after them can be scored.
    """
    ok = window_ok(np.isfinite(values), lookback) & observed.astype(bool)
    if horizon > 0:
        ok[values.size - horizon :] = False
    return ok


def chronological_split(
    n: int, origins_ok: np.ndarray, horizon: int, test_fraction: float, val_fraction: float
) -> Split:
    """Split eligible origins chronologically: the last ``test_fraction`` of the grid is the test
    period, the ``val_fraction`` before it validation, the rest training."""
    test_start = int(round(n * (1.0 - test_fraction)))
    val_start = int(round(n * (1.0 - test_fraction - val_fraction)))
    idx = np.flatnonzero(origins_ok)
    train = idx[idx + horizon < val_start]
    val = idx[(idx >= val_start) & (idx + horizon < test_start)]
    test = idx[idx >= test_start]
    return Split(train=train, val=val, test=test, val_start=val_start, test_start=test_start)


def target_matrix(y: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """``(n, H)`` of ``y[t+1 .. t+H]`` for each origin ``t`` (NaN beyond the series end)."""
    pos = origins[:, None] + np.arange(1, horizon + 1)[None, :]
    out = np.full(pos.shape, np.nan)
    inside = pos < y.size
    out[inside] = y[pos[inside]]
    return out


def raw_windows(y: np.ndarray, origins: np.ndarray, window: int) -> np.ndarray:
    """``(n, W, 1)`` trailing windows ``y[t-W+1 .. t]``."""
    pos = origins[:, None] + np.arange(-window + 1, 1)[None, :]
    return y[pos][..., None]


@dataclass
class ComponentSamples:
    """Decomposed inputs for a set of origins.

    ``tails``: ``(n_origins, C, W)`` last W points of each component of each origin's window.
    ``ends``: ``(N,)``-indexed lookup of component end points, ``(N, C)`` with NaN where the
    window ending at that position could not be decomposed.
    """

    origins: np.ndarray
    tails: np.ndarray
    ends: np.ndarray
    iterations: np.ndarray | None = None


def stepwise_decompose(
    values: np.ndarray,
    positions: np.ndarray,
    decomposer: Decomposer,
    decomp_window: int,
    window: int,
    *,
    batch: int = 512,
    progress: Callable[[int], None] | None = None,
) -> ComponentSamples:
    """Decompose the trailing window ``values[t-L+1 .. t]`` for every position ``t`` in
    ``positions`` (each window independently: no information after ``t``).

    Returns the last ``window`` points of every component, ``(n, C, W)``, and the end points
    ``(N, C)``. Windows are processed in batches of ``batch`` to bound memory.
    """
    L = decomp_window
    n_comp = decomposer.n_components
    positions = np.asarray(positions, dtype=np.int64)
    tails = np.empty((positions.size, n_comp, window))
    ends = np.full((values.size, n_comp), np.nan)
    offs = np.arange(-L + 1, 1)
    for start in range(0, positions.size, batch):
        pos = positions[start : start + batch]
        X = values[pos[:, None] + offs[None, :]]
        D = decomposer.decompose_batch(X)  # (b, C, L)
        tails[start : start + pos.size] = D[:, :, -window:]
        ends[pos] = D[:, :, -1]
        if progress is not None:
            progress(pos.size)
    return ComponentSamples(origins=positions, tails=tails, ends=ends)


def global_decompose(
    values: np.ndarray, positions: np.ndarray, decomposer: Decomposer, window: int, min_segment: int
) -> ComponentSamples:
    """LEAKY: decompose each contiguous finite segment of the whole series once and cut the
    inputs for ``positions`` from it. Component values near ``t`` depend on data after ``t``."""
    n_comp = decomposer.n_components
    full = np.full((values.size, n_comp), np.nan)
    finite = np.isfinite(values)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], finite.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):
        if b - a >= min_segment:
            full[a:b] = decomposer.decompose(values[a:b]).T
    pos = np.asarray(positions, dtype=np.int64)
    idx = pos[:, None] + np.arange(-window + 1, 1)[None, :]
    tails = np.transpose(full[idx], (0, 2, 1))  # (n, C, W)
    return ComponentSamples(origins=pos, tails=tails, ends=full)


def component_targets(samples: ComponentSamples, origins: np.ndarray, horizon: int) -> np.ndarray:
    """``(n, C, H)``: end point of each component at ``t+1 .. t+H`` (NaN where unknown)."""
    pos = origins[:, None] + np.arange(1, horizon + 1)[None, :]
    n = samples.ends.shape[0]
    out = np.full((origins.size, samples.ends.shape[1], horizon), np.nan)
    inside = pos < n
    vals = np.full(pos.shape + (samples.ends.shape[1],), np.nan)
    vals[inside] = samples.ends[pos[inside]]
    out[:] = np.transpose(vals, (0, 2, 1))
    return out


def select_rows(samples: ComponentSamples, origins: np.ndarray) -> np.ndarray:
    """``(n, W, C)`` model inputs for ``origins`` (each must be in ``samples.origins``)."""
    lookup = np.searchsorted(samples.origins, origins)
    if np.any(lookup >= samples.origins.size) or np.any(samples.origins[lookup] != origins):
        raise ValueError("origin without a decomposition requested")
    return np.transpose(samples.tails[lookup], (0, 2, 1))
