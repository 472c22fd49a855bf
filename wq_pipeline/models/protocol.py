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

from wq_pipeline.decompose import Decomposer

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
    test_end: int | None = None  # first position after the test origins (None: the series end)
    fold: int = 1  # 1-based fold number (``wq evaluate --folds``)

    @property
    def fit_origins(self) -> np.ndarray:
        """Validation then test origins ``(n_val + n_test,)``: where every model forecasts."""
        return np.concatenate([self.val, self.test])


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
    period, the ``val_fraction`` before it validation, the rest training (one fold of
    :func:`fold_bounds`)."""
    return fold_split(origins_ok, horizon, fold_bounds(n, 1, test_fraction, val_fraction)[0])


@dataclass(frozen=True)
class FoldBounds:
    """Grid positions of one fold: training ``[0, val_start)``, validation ``[val_start,
    test_start)``, test origins ``[test_start, test_end)``."""

    val_start: int
    test_start: int
    test_end: int


def fold_bounds(n: int, folds: int, test_fraction: float, val_fraction: float,
                test_start: int | None = None, origins: np.ndarray | None = None) -> list[FoldBounds]:
    """Where the test periods of ``folds`` folds lie on an ``n``-step grid.

    * one fold: the last ``test_fraction`` of the grid is the test period (or everything from
      ``test_start``), the ``val_fraction`` of the grid before it validation, the rest training;
    * ``folds = K > 1``: K consecutive test periods spread over the series, like scikit-learn's
      ``TimeSeriesSplit`` but counted in forecast ``origins`` (sorted eligible positions; all
      positions when None), so that gaps of months do not leave a period empty: the origins
      split into K + 1 blocks of equal count, the last K being the test periods (or, with
      ``test_start``, the origins from ``test_start`` on split into K). Each fold validates on
      the ``val_fraction`` of all origins just before its test period and trains on everything
      before that, so later folds train on more data.
    """
    if folds < 1:
        raise ValueError(f"folds must be >= 1, got {folds}")
    if folds == 1:
        ts = int(round(n * (1.0 - test_fraction))) if test_start is None else int(test_start)
        vs = int(round(n * (1.0 - test_fraction - val_fraction))) if test_start is None else ts - int(round(n * val_fraction))
        return [FoldBounds(vs, ts, n)]
    o = np.arange(n) if origins is None else np.asarray(origins, dtype=np.int64)
    m = o.size
    first = 0 if test_start is None else int(np.searchsorted(o, test_start))
    if test_start is None:
        block = m // (folds + 1)
        idx = [m - (folds - k) * block for k in range(folds)]
    else:
        idx = [first + int(round(k * (m - first) / folds)) for k in range(folds)]
    n_val = int(round(m * val_fraction))
    out = []
    for k, i in enumerate(idx):
        if i >= m or i - n_val < 0:
            raise ValueError(f"{folds} folds need more forecast origins than {m}")
        start = int(o[i]) if k or test_start is None else int(test_start)
        end = int(o[idx[k + 1]]) if k + 1 < folds else n
        out.append(FoldBounds(int(o[i - n_val]), start, end))
    return out


def fold_split(origins_ok: np.ndarray, horizon: int, bounds: FoldBounds, fold: int = 1) -> Split:
    """The origins of one fold: training origins have every target before ``val_start``,
    validation origins every target before ``test_start``; test origins lie in
    ``[test_start, test_end)``."""
    idx = np.flatnonzero(origins_ok)
    vs, ts, te = bounds.val_start, bounds.test_start, bounds.test_end
    return Split(train=idx[idx + horizon < vs], val=idx[(idx >= vs) & (idx + horizon < ts)],
                 test=idx[(idx >= ts) & (idx < te)], val_start=vs, test_start=ts, test_end=te, fold=fold)


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
