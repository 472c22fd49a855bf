"""Sample entropy (Richman & Moorman 2000) with the Chebyshev distance, compiled with numba.

The definition is antropy 0.2's ``antropy.sample_entropy(x, order)`` (its numba path, used for
series shorter than 5000 points), which the tests check value for value:

* tolerance ``r = tolerance * std(x, ddof=0)`` (antropy's default is ``0.2 * std``);
* templates are the ``N - m`` vectors ``x[i : i + m]``, ``i = 0 .. N - m - 1`` (``m = order``);
* ``B`` counts the pairs ``i < j`` whose templates match (every ``|x[i+k] - x[j+k]| < r``,
  strict), ``A`` the pairs that still match with the next sample ``k = m`` added;
* ``SampEn = -log(A / B)``.

Edge cases:

* a constant series (``max == min``): NaN. antropy returns NaN when ``np.std`` is exactly 0 (then
  ``r = 0`` and nothing matches strictly) but ``-0.0`` when rounding leaves a tiny std (e.g.
  ``np.std(np.full(256, 0.1)) = 1.4e-17``: every pair matches);
* no matching template pair (``B = 0``): NaN, as antropy;
* pairs match at length ``m`` but none at ``m + 1`` (``A = 0``): ``+inf``, as antropy. This is
  the most irregular case there is, so grouping by complexity must treat it as the highest.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["sample_entropy", "sample_entropy_rows"]


@njit(cache=True, nogil=True)
def _counts(x, m, r):  # pragma: no cover - compiled
    """(A, B): template pairs matching at length m + 1 and at length m (strict ``< r``)."""
    n_templates = x.size - m
    a = 0
    b = 0
    for i in range(n_templates - 1):
        for j in range(i + 1, n_templates):
            match = True
            for k in range(m):
                if abs(x[i + k] - x[j + k]) >= r:
                    match = False
                    break
            if match:
                b += 1
                if abs(x[i + m] - x[j + m]) < r:
                    a += 1
    return a, b


@njit(cache=True, nogil=True)
def _rows(X, m, r, out):  # pragma: no cover - compiled
    for i in range(X.shape[0]):
        a, b = _counts(X[i], m, r[i])
        if r[i] <= 0.0 or b == 0:  # r = 0 marks a constant row
            out[i] = np.nan
        elif a == 0:
            out[i] = np.inf
        else:
            out[i] = -math.log(a / b)


def _check_params(order: object, tolerance: object) -> tuple[int, float]:
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"order must be an integer >= 1, got {order!r}")
    try:
        tol = float(tolerance)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"tolerance must be a positive number, got {tolerance!r}") from None
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tolerance must be a positive number, got {tolerance!r}")
    return int(order), tol


def sample_entropy_rows(X: np.ndarray, order: int = 2, tolerance: float = 0.2) -> np.ndarray:
    """Sample entropy of every row of ``X`` (n, L) -> (n,) float64 (dimensionless, nats).

    ``order`` is the embedding dimension m >= 1, ``tolerance`` the match radius relative to
    each row's standard deviation (``r = tolerance * std(row, ddof=0)``). Rows must be finite
    with ``L > order + 1``. Constant rows and rows without matching pairs give NaN, rows
    without matching pairs of length ``order + 1`` give +inf (module docstring). Raises ValueError for bad parameters or input.
    """
    m, tol = _check_params(order, tolerance)
    A = np.asarray(X, dtype=np.float64)
    if A.ndim != 2:
        raise ValueError(f"X must be 2-D (n, L), got shape {A.shape}")
    if A.shape[1] <= m + 1:
        raise ValueError(f"rows need more than order + 1 = {m + 1} samples, got L={A.shape[1]}")
    if not np.all(np.isfinite(A)):
        raise ValueError("X contains NaN or infinite values")
    A = np.ascontiguousarray(A)
    # r per row exactly as antropy computes it: tolerance * np.std(row) on the 1-D row
    r = np.array([tol * np.std(row, ddof=0) for row in A], dtype=np.float64)
    r[np.ptp(A, axis=1) == 0] = 0.0  # constant rows: NaN (np.std may round to a tiny r > 0)
    out = np.empty(A.shape[0], dtype=np.float64)
    if A.shape[0]:
        _rows(A, m, r, out)
    return out


def sample_entropy(x: np.ndarray, order: int = 2, tolerance: float = 0.2) -> float:
    """Sample entropy of one series ``x`` (L,), L > order + 1, finite; dimensionless (nats).

    Chebyshev distance, ``r = tolerance * std(x, ddof=0)``; equals
    ``antropy.sample_entropy(x, order)`` for ``tolerance=0.2``. Returns NaN for a constant
    series (antropy: NaN or -0.0, depending on how ``np.std`` rounds) and when no template pair
    matches (antropy: NaN), +inf when pairs match at length ``order`` but none at ``order + 1``
    (as antropy). Raises ValueError for a
    non 1-D, non-finite or too short ``x``, ``order < 1`` or ``tolerance <= 0``.
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"x must be 1-D (L,), got shape {a.shape}")
    return float(sample_entropy_rows(a[None, :], order, tolerance)[0])
