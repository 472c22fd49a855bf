"""Causal Haar à trous wavelet decomposition (a causal, MODWT-style redundant transform).

References: Renaud, Starck & Murtagh (2005), *Wavelet-based combined signal filtering and
prediction*, IEEE TSMC-B 35(6); Quilty & Adamowski (2018), *Addressing the incorrect usage of
wavelet-based hydrological and water resources forecasting models*, J. Hydrol. 563.

For a window ``x`` (L,)::

    c_0 = x
    c_j[t] = (c_{j-1}[t] + c_{j-1}[t - 2**(j-1)]) / 2      j = 1 .. J
    d_j = c_{j-1} - c_j

so ``x = d_1 + ... + d_J + c_J`` and ``c_j[t]`` is the mean of ``x[t - 2**j + 1 .. t]``.
Indices before the window start take the first value of ``c_{j-1}`` (edge replication; since
``c_j[0] = x[0]`` this is the same as padding ``x`` on the left with ``x[0]``).

Causality: every coefficient at ``t`` depends only on ``x`` at or before ``t``. The first
:func:`boundary_samples` ``(J) = 2**J - 1`` samples of each window are boundary-affected (they
use the replicated edge); from there on a coefficient equals, bit for bit, the one computed on
any longer stretch ending at the same time, so windows can be decomposed without leakage.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wq_pipeline.decompose.base import Decomposer, ProgressFn
from wq_pipeline.errors import InputError

__all__ = ["atrous", "boundary_samples", "AtrousDecomposer", "MAX_LEVELS"]

#: Most levels allowed: the coarsest filter spans 2**12 = 4096 samples.
MAX_LEVELS = 12
# float64 elements per (rows, L) block (512 KiB)
_CHUNK_ELEMS = 1 << 16


def _check_levels(levels: Any) -> int:
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or not (
        1 <= int(levels) <= MAX_LEVELS
    ):
        raise InputError(f"à trous levels must be an integer in 1..{MAX_LEVELS}, got {levels!r}")
    return int(levels)


def boundary_samples(levels: int) -> int:
    """Number of leading samples of a window affected by the left edge: ``2**levels - 1``."""
    return 2 ** _check_levels(levels) - 1


def atrous(x: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Causal Haar à trous transform of windows ``x`` (B, L) or (L,), any unit.

    Returns ``(details, smooth)``: details (B, levels, L) ordered fine -> coarse
    (``d_1 .. d_J``) and the smooth ``c_J`` (B, L), both float64 in the unit of ``x``
    ((levels, L) and (L,) for a 1-D input). ``details.sum(axis=-2) + smooth == x`` to rounding.
    The first ``2**levels - 1`` samples are boundary-affected (see the module docstring).
    Raises InputError for ``levels`` outside 1..12, ValueError for a bad shape.
    """
    J = _check_levels(levels)
    a = np.asarray(x, dtype=np.float64)
    one_d = a.ndim == 1
    if one_d:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] < 1:
        raise ValueError(f"atrous expects windows (B, L) or (L,) with L >= 1, got shape {np.shape(x)}")
    B, L = a.shape
    details = np.empty((B, J, L), dtype=np.float64)
    smooth = np.empty((B, L), dtype=np.float64)
    step = max(1, _CHUNK_ELEMS // L)  # rows per block: the working arrays stay in cache
    bufs = (np.empty((min(step, B), L)), np.empty((min(step, B), L)))
    for lo in range(0, B, step):
        hi = min(B, lo + step)
        _atrous_block(a[lo:hi], J, details[lo:hi], smooth[lo:hi], bufs)
    if one_d:
        return details[0], smooth[0]
    return details, smooth


def _atrous_block(
    a: np.ndarray, J: int, details: np.ndarray, smooth: np.ndarray, bufs: tuple[np.ndarray, np.ndarray]
) -> None:
    """Fill details (b, J, L) and smooth (b, L) for rows a (b, L), using the scratch rows bufs."""
    b, L = a.shape
    c = a
    for j in range(1, J + 1):
        s = 2 ** (j - 1)
        nxt = smooth if j == J else bufs[j % 2][:b]
        k = min(s, L)
        # t < s: the lagged value is before the window start -> first value of c_{j-1}
        np.add(c[:, :k], c[:, :1], out=nxt[:, :k])
        if s < L:
            np.add(c[:, s:], c[:, :-s], out=nxt[:, s:])
        nxt *= 0.5
        np.subtract(c, nxt, out=details[:, j - 1])
        c = nxt


class AtrousDecomposer(Decomposer):
    """Causal Haar à trous decomposition with ``modes`` = J levels (1..12).

    Channels: ``d1 .. dJ`` (fine -> coarse detail), then ``residual`` = the smooth ``c_J``
    (``x - sum(details)``), all in the unit of the window. Deterministic: ``seed`` is unused.
    The first ``2**modes - 1`` samples of every window are boundary-affected; the rest depend
    only on data at or before each time, so use windows longer than that.
    """

    method = "atrous"

    def __init__(self, modes: int = 8, seed: int = 0) -> None:
        super().__init__(modes, seed)
        if self.modes > MAX_LEVELS:
            raise InputError(f"atrous supports at most {MAX_LEVELS} levels (modes), got {self.modes}")

    @property
    def names(self) -> list[str]:
        """Channel names ``["d1", ..., f"d{modes}", "residual"]``."""
        return [f"d{j}" for j in range(1, self.modes + 1)] + ["residual"]

    def _own_params(self) -> dict[str, Any]:
        return {"wavelet": "haar"}

    def _modes_batch(self, X: np.ndarray, progress: ProgressFn) -> np.ndarray:
        details, _ = atrous(X, self.modes)
        if progress is not None:
            progress(X.shape[0])
        return details
