"""Two-stage decomposition: CEEMDAN, sample-entropy grouping of its channels, VMD of the complex part.

:func:`entropy_groups` labels channels by sample entropy (0 = high, 1 = medium, 2 = low
complexity); :class:`CEEMDANSEVMDDecomposer` (method ``"ceemdan-se-vmd"``) learns those labels
on training windows and then decomposes every window the same way.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from wq_pipeline.decompose.base import MAX_MODES, MIN_MODES, Decomposer, ProgressFn
from wq_pipeline.decompose.emd import CEEMDANDecomposer
from wq_pipeline.decompose.entropy import _check_params as _check_se_params
from wq_pipeline.decompose.entropy import sample_entropy_rows
from wq_pipeline.decompose.vmd import VMDDecomposer
from wq_pipeline.errors import InputError

__all__ = ["HIGH", "MEDIUM", "LOW", "GROUPINGS", "entropy_groups", "CEEMDANSEVMDDecomposer"]

HIGH, MEDIUM, LOW = 0, 1, 2
GROUPINGS = ("kmeans", "thresholds")


def _check_thresholds(thresholds: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in thresholds)
    except (TypeError, ValueError):
        raise ValueError(f"thresholds must be a pair (low, high) of numbers, got {thresholds!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
        raise ValueError(f"thresholds (low, high) must be finite with low <= high, got {thresholds!r}")
    return lo, hi


def _sse(v: np.ndarray, w: np.ndarray) -> float:
    """Weighted within-cluster sum of squares of values ``v`` with multiplicities ``w``."""
    mean = float(np.sum(w * v) / np.sum(w))
    return float(np.sum(w * (v - mean) ** 2))


def _kmeans3_splits(v: np.ndarray, w: np.ndarray) -> tuple[int, int]:
    """Exact 1-D 3-means of sorted distinct values ``v`` (n >= 3) with multiplicities ``w``:
    the split ``(i, j)`` (clusters ``v[:i]``, ``v[i:j]``, ``v[j:]``) of least total SSE; ties go
    to the first split in ``(i, j)`` order."""
    n = v.size
    best, best_ij = np.inf, (1, 2)
    for i in range(1, n - 1):
        left = _sse(v[:i], w[:i])
        for j in range(i + 1, n):
            total = left + _sse(v[i:j], w[i:j]) + _sse(v[j:], w[j:])
            if total < best:
                best, best_ij = total, (i, j)
    return best_ij


def entropy_groups(
    entropies: np.ndarray, grouping: str = "kmeans", thresholds: tuple[float, float] | None = None
) -> np.ndarray:
    """Complexity group of each channel from its sample entropy: (C,) float -> (C,) int64
    labels, 0 = high, 1 = medium, 2 = low complexity.

    * ``"kmeans"``: exact 1-D k-means with 3 clusters on the finite entropies (every pair of split
      points of the sorted distinct values is tried, equal values stay together; least
      within-cluster sum of squares; deterministic). The cluster with the highest mean is high,
      the lowest is low. With fewer than 3 distinct finite values: one value -> all those
      channels high; two values -> the larger high, the smaller low (medium stays empty).
      ``thresholds`` must be None.
    * ``"thresholds"``: ``thresholds = (low, high)``: entropy >= high -> 0, >= low -> 1, else 2.

    NaN (undefined entropy, e.g. a constant or zero channel) -> 2 (low); +inf (no regularity
    at all, see :mod:`wq_pipeline.decompose.entropy`) -> 0 (high), and k-means then groups the
    finite values. Raises ValueError for an unknown grouping, bad thresholds, -inf or a non 1-D
    input.
    """
    e = np.asarray(entropies, dtype=np.float64)
    if e.ndim != 1:
        raise ValueError(f"entropies must be 1-D (C,), got shape {e.shape}")
    if (e == -np.inf).any():
        raise ValueError("entropies must be >= 0, NaN or +inf, got -inf")
    labels = np.full(e.size, LOW, dtype=np.int64)
    labels[e == np.inf] = HIGH
    finite = np.isfinite(e)
    if grouping == "thresholds":
        if thresholds is None:
            raise ValueError("grouping='thresholds' needs thresholds=(low, high)")
        lo, hi = _check_thresholds(thresholds)
        labels[finite & (e >= lo)] = MEDIUM
        labels[finite & (e >= hi)] = HIGH
        return labels
    if grouping != "kmeans":
        raise ValueError(f"grouping must be one of {', '.join(GROUPINGS)}, got {grouping!r}")
    if thresholds is not None:
        raise ValueError("thresholds only apply to grouping='thresholds'")
    v, w = np.unique(e[finite], return_counts=True)
    if v.size == 0:
        return labels
    if v.size <= 2:
        labels[finite & (e == v[-1])] = HIGH
        return labels
    i, j = _kmeans3_splits(v, w.astype(np.float64))
    labels[finite & (e >= v[i])] = MEDIUM
    labels[finite & (e >= v[j])] = HIGH
    return labels


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not (
        MIN_MODES <= int(value) <= MAX_MODES
    ):
        raise InputError(f"{name} must be an integer in {MIN_MODES}..{MAX_MODES}, got {value!r}")
    return int(value)


def _check_groups(groups: Any, n: int) -> list[int]:
    try:
        items = list(groups)
    except TypeError:
        raise InputError(f"groups must be a list of {n} labels in {{0, 1, 2}}, got {groups!r}") from None
    ok = all(not isinstance(g, bool) and isinstance(g, (int, np.integer)) and int(g) in (HIGH, MEDIUM, LOW)
             for g in items)
    if len(items) != n or not ok:
        raise InputError(
            f"groups must be a list of {n} labels (one per first-stage channel: modes IMFs + trend) "
            f"in {{0 high, 1 medium, 2 low}}, got {groups!r}"
        )
    return [int(g) for g in items]


class CEEMDANSEVMDDecomposer(Decomposer):
    """CEEMDAN -> sample-entropy grouping -> secondary VMD of the high-complexity group.

    The two-stage ("secondary") decomposition of water-quality forecasting studies: CEEMDAN
    splits the window into IMFs; IMFs of similar sample entropy are recombined (CEEMDAN + SE
    recombination as in Yang & Liu 2021, "A prediction model of aquaculture water quality based
    on multiscale decomposition", Math. Biosci. Eng. 18(6), doi:10.3934/mbe.2021374); the most
    complex (high-entropy) part is decomposed once more with VMD.

    First stage: ``CEEMDANDecomposer(modes, seed, trials=, noise_width=, engine=)``, i.e.
    ``modes`` IMF channels (high -> low frequency) and the trend (its residual channel), so
    ``modes + 1`` first-stage channels. Their groups are learnt by :meth:`fit` on windows from
    the **training period only** (median sample entropy per channel over the windows, then
    :func:`entropy_groups`), or given as ``groups=`` (``modes + 1`` labels, 0 high / 1 medium /
    2 low) to rebuild a fitted decomposer. Decomposing before either raises RuntimeError.

    Output channels, ``secondary_modes + 3`` for every window: ``high_vmd1 ..
    high_vmd{secondary_modes}`` (VMD, vmdpy order low -> high frequency, of the sum of the
    high-group channels; alpha, tau, tol as VMD's, DC=False, init=1, max_iter=500), ``medium``
    and ``low`` (sums of those groups' channels; the trend is in whichever group it was put),
    ``residual`` = window - all of them (the part of the high group VMD did not capture). An
    empty group gives zero channels. Channels sum back to the window up to rounding.
    """

    method = "ceemdan-se-vmd"

    def __init__(
        self,
        modes: int = 8,
        seed: int = 0,
        *,
        secondary_modes: int = 4,
        trials: int | None = None,
        noise_width: float | None = None,
        engine: str = "auto",
        se_order: int = 2,
        se_tolerance: float = 0.2,
        grouping: str = "kmeans",
        thresholds: tuple[float, float] | list | None = None,
        groups: list[int] | None = None,
        alpha: float = 2000.0,
        tau: float = 0.0,
        tol: float = 1e-7,
        fit_windows: int = 64,
    ) -> None:
        super().__init__(modes, seed)
        self.secondary_modes = _check_count("secondary_modes", secondary_modes)
        self._first = CEEMDANDecomposer(self.modes, self.seed, trials=trials, noise_width=noise_width, engine=engine)
        self._vmd = VMDDecomposer(self.secondary_modes, self.seed, alpha=alpha, tau=tau, tol=tol)
        try:
            self.se_order, self.se_tolerance = _check_se_params(se_order, se_tolerance)
            if grouping not in GROUPINGS:
                raise ValueError(f"grouping must be one of {', '.join(GROUPINGS)}, got {grouping!r}")
            if grouping == "thresholds" and thresholds is None:
                raise ValueError("grouping='thresholds' needs thresholds=(low, high)")
            if grouping == "kmeans" and thresholds is not None:
                raise ValueError("thresholds only apply to grouping='thresholds'")
            self.thresholds = None if thresholds is None else _check_thresholds(thresholds)
        except ValueError as e:
            raise InputError(f"invalid {self.method} parameter: {e}") from None
        if isinstance(fit_windows, bool) or not isinstance(fit_windows, (int, np.integer)) or fit_windows < 1:
            raise InputError(f"fit_windows must be a positive integer, got {fit_windows!r}")
        self.grouping = str(grouping)
        self.fit_windows = int(fit_windows)
        #: median sample entropy per first-stage channel (modes + 1,), set by :meth:`fit`
        self.entropies: np.ndarray | None = None
        #: group label per first-stage channel (0 high, 1 medium, 2 low), from fit or ``groups=``
        self.groups: list[int] | None = None if groups is None else _check_groups(groups, self.modes + 1)

    @property
    def n_components(self) -> int:
        """Number of output channels: ``secondary_modes + 3``."""
        return self.secondary_modes + 3

    @property
    def names(self) -> list[str]:
        """``["high_vmd1", ..., f"high_vmd{secondary_modes}", "medium", "low", "residual"]``."""
        return [f"high_vmd{i + 1}" for i in range(self.secondary_modes)] + ["medium", "low", "residual"]

    @property
    def first_stage_names(self) -> list[str]:
        """Names of the ``modes + 1`` first-stage channels: ``imf1 .. imf{modes}``, ``trend``."""
        return [f"imf{i + 1}" for i in range(self.modes)] + ["trend"]

    def first_stage(self, X: np.ndarray, progress: ProgressFn = None) -> np.ndarray:
        """CEEMDAN channels of windows X (B, L) -> (B, modes + 1, L): IMFs, then the trend."""
        return self._first.decompose_batch(X, progress)

    def fit(self, windows: np.ndarray) -> CEEMDANSEVMDDecomposer:
        """Learn the channel groups from training-period windows (n, L) (the caller guarantees they
        end inside the training period). Uses at most ``fit_windows`` rows, evenly spaced; sets
        ``entropies`` (modes + 1,) (median over windows, NaN ignored) and ``groups``. Returns self.
        """
        W = np.asarray(windows, dtype=np.float64)
        if W.ndim != 2 or W.shape[0] == 0:
            raise ValueError(f"fit expects training windows (n, L) with n >= 1, got shape {W.shape}")
        n, L = W.shape
        if n > self.fit_windows:
            W = W[np.unique(np.linspace(0, n - 1, self.fit_windows).astype(int))]
        first = self.first_stage(W)
        C = first.shape[1]
        ent = sample_entropy_rows(first.reshape(-1, L), self.se_order, self.se_tolerance).reshape(-1, C)
        with warnings.catch_warnings():  # all-NaN channel (always zero) -> NaN, no warning
            warnings.simplefilter("ignore", RuntimeWarning)
            self.entropies = np.nanmedian(ent, axis=0)
        self.groups = entropy_groups(self.entropies, self.grouping, self.thresholds).tolist()
        return self

    def decompose_batch(self, X: np.ndarray, progress: ProgressFn = None) -> np.ndarray:
        """As :meth:`Decomposer.decompose_batch`; RuntimeError before :meth:`fit` (or ``groups=``)."""
        if self.groups is None:
            raise RuntimeError(
                f"{self.method} decomposer is not fitted: call fit(windows) on windows (n, L) from the "
                "training period first, or build it with groups=[...] from an earlier fit"
            )
        return super().decompose_batch(X, progress)

    def _modes_batch(self, X: np.ndarray, progress: ProgressFn) -> np.ndarray:
        first = self.first_stage(X, progress)
        g = np.asarray(self.groups)
        B, _, L = first.shape
        K2 = self.secondary_modes
        out = np.zeros((B, K2 + 2, L))
        if (g == HIGH).any():
            high = first[:, g == HIGH].sum(axis=1)
            out[:, :K2] = self._vmd.decompose_batch(high)[:, :K2]
        out[:, K2] = first[:, g == MEDIUM].sum(axis=1)
        out[:, K2 + 1] = first[:, g == LOW].sum(axis=1)
        return out

    def _own_params(self) -> dict[str, Any]:
        vmd = self._vmd.params()
        p: dict[str, Any] = {
            "secondary_modes": self.secondary_modes,
            **self._first._own_params(),
            "se_order": self.se_order,
            "se_tolerance": self.se_tolerance,
            "se_metric": "chebyshev, r = se_tolerance * std (antropy 0.2 definition)",
            "grouping": self.grouping,
            "thresholds": None if self.thresholds is None else list(self.thresholds),
            "alpha": vmd["alpha"],
            "tau": vmd["tau"],
            "tol": vmd["tol"],
            "vmd_impl": vmd["impl"],
            "fit_windows": self.fit_windows,
        }
        if self.groups is not None:
            p["groups"] = list(self.groups)
        if self.entropies is not None:
            p["entropies"] = [None if np.isnan(v) else "inf" if np.isinf(v) else round(float(v), 6)
                              for v in self.entropies]  # JSON has no NaN or inf
        return p
