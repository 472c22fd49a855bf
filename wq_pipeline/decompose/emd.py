"""EEMD and CEEMDAN through PyEMD (package ``EMD-signal``), seeded and repeatable.

PyEMD's own multiprocessing is always switched off (``parallel=False``): a fresh PyEMD object
is built for every window and seeded with ``noise_seed(seed)``, so a window's result depends
only on the window and the parameters, never on worker count or on which windows were
decomposed before it. The batch functions may spread windows over a
``concurrent.futures.ProcessPoolExecutor`` (``n_jobs > 1``); the result is identical to the
serial one.

What is returned (IMFs only, high -> low frequency, PyEMD's order):

* EEMD runs with ``separate_trends=True``: each trial's trend is averaged separately and PyEMD
  stacks it as the last row; that trend row is dropped here, so the returned rows are the
  ensemble-mean IMFs.
* CEEMDAN always stacks its residue as the last row; it is dropped here. The decomposer's
  ``noise_width`` is PyEMD's CEEMDAN ``epsilon`` (default 0.005).

The caller (``decompose.base``) turns these into a fixed channel count and adds the residual
channel ``signal - sum(modes)``, which then holds the trend.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from importlib import metadata
from typing import Any

import numpy as np

from wq_pipeline.decompose.base import Decomposer, fix_mode_count
from wq_pipeline.errors import InputError

__all__ = ["eemd", "ceemdan", "eemd_batch", "ceemdan_batch", "EEMDDecomposer", "CEEMDANDecomposer"]

DEFAULT_TRIALS_EEMD = 50
DEFAULT_TRIALS_CEEMDAN = 50


def _check_signal(x: np.ndarray) -> np.ndarray:
    s = np.asarray(x, dtype=float)
    if s.ndim != 1:
        raise ValueError(f"signal must be 1-D (L,), got shape {s.shape}")
    if s.size < 4:
        raise ValueError(f"signal needs at least 4 samples, got {s.size}")
    if not np.all(np.isfinite(s)):
        raise ValueError("signal contains NaN or infinite values")
    return s


def eemd(
    x: np.ndarray,
    *,
    trials: int = DEFAULT_TRIALS_EEMD,
    noise_width: float = 0.05,
    max_imf: int = -1,
    seed: int = 0,
) -> np.ndarray:
    """Ensemble EMD of one signal.

    Args:
        x: signal (L,), any unit.
        trials: ensemble size.
        noise_width: noise standard deviation relative to ``max(x) - min(x)``.
        max_imf: most IMFs per trial (-1 = all).
        seed: noise seed; same seed -> identical output.
    Returns:
        IMFs (n_imf, L), same unit as ``x``, high -> low frequency; the trend is not included.
        A constant signal gives (0, L).
    """
    from PyEMD import EEMD

    s = _check_signal(x)
    if np.ptp(s) == 0:
        return np.zeros((0, s.size))
    dec = EEMD(trials=int(trials), noise_width=float(noise_width), parallel=False, separate_trends=True)
    dec.noise_seed(int(seed))
    out = dec.eemd(s, max_imf=int(max_imf))
    return np.asarray(out[:-1], dtype=float)


def ceemdan(
    x: np.ndarray,
    *,
    trials: int = DEFAULT_TRIALS_CEEMDAN,
    epsilon: float = 0.005,
    max_imf: int = -1,
    seed: int = 0,
) -> np.ndarray:
    """CEEMDAN (Colominas et al. 2014 variant, as in PyEMD) of one signal.

    Args:
        x: signal (L,), any unit.
        trials: ensemble size.
        epsilon: PyEMD's noise scale (``beta = epsilon * std(residue)``).
        max_imf: most IMFs (-1 = all).
        seed: noise seed; same seed -> identical output.
    Returns:
        IMFs (n_imf, L), same unit as ``x``, high -> low frequency; the residue is not included.
        A constant signal gives (0, L).
    """
    from PyEMD import CEEMDAN

    s = _check_signal(x)
    if np.ptp(s) == 0:
        return np.zeros((0, s.size))
    dec = CEEMDAN(trials=int(trials), epsilon=float(epsilon), parallel=False)
    dec.noise_seed(int(seed))
    out = dec.ceemdan(s, max_imf=int(max_imf))
    return np.asarray(out[:-1], dtype=float)


def _run_batch(
    fn: Callable[..., np.ndarray],
    X: np.ndarray,
    kwargs: dict,
    n_jobs: int,
    progress: Callable[[int], object] | None,
) -> list[np.ndarray]:
    A = np.asarray(X, dtype=float)
    if A.ndim != 2:
        raise ValueError(f"X must be 2-D (B, L), got shape {A.shape}")
    n_jobs = int(n_jobs)
    if n_jobs < 0:
        n_jobs = os.cpu_count() or 1
    out: list[np.ndarray] = []
    if n_jobs <= 1 or A.shape[0] <= 1:
        for row in A:
            out.append(fn(row, **kwargs))
            if progress is not None:
                progress(1)
        return out
    with ProcessPoolExecutor(max_workers=min(n_jobs, A.shape[0])) as ex:
        futures = [ex.submit(fn, row, **kwargs) for row in A]
        for fut in futures:
            out.append(fut.result())
            if progress is not None:
                progress(1)
    return out


def eemd_batch(
    X: np.ndarray,
    *,
    trials: int = DEFAULT_TRIALS_EEMD,
    noise_width: float = 0.05,
    max_imf: int = -1,
    seed: int = 0,
    n_jobs: int = 1,
    progress: Callable[[int], object] | None = None,
) -> list[np.ndarray]:
    """:func:`eemd` of every row of X (B, L); returns B arrays (n_imf_b, L) (counts may differ).

    ``n_jobs > 1`` uses that many processes (-1 = all CPUs); every window uses ``seed``.
    ``progress`` is called with 1 after each finished window (an increment).
    """
    kw = dict(trials=trials, noise_width=noise_width, max_imf=max_imf, seed=seed)
    return _run_batch(eemd, X, kw, n_jobs, progress)


def ceemdan_batch(
    X: np.ndarray,
    *,
    trials: int = DEFAULT_TRIALS_CEEMDAN,
    epsilon: float = 0.005,
    max_imf: int = -1,
    seed: int = 0,
    n_jobs: int = 1,
    progress: Callable[[int], object] | None = None,
) -> list[np.ndarray]:
    """:func:`ceemdan` of every row of X (B, L); returns B arrays (n_imf_b, L).

    ``n_jobs > 1`` uses that many processes (-1 = all CPUs); every window uses ``seed``.
    ``progress`` is called with 1 after each finished window (an increment).
    """
    kw = dict(trials=trials, epsilon=epsilon, max_imf=max_imf, seed=seed)
    return _run_batch(ceemdan, X, kw, n_jobs, progress)


def _pyemd_version() -> str:
    try:
        return metadata.version("EMD-signal")
    except metadata.PackageNotFoundError:  # pragma: no cover - installed with the project
        return "unknown"


def _check_common(trials: Any, max_imf: Any, n_jobs: Any) -> None:
    if isinstance(trials, bool) or int(trials) != trials or trials < 1:
        raise InputError(f"trials must be a positive integer, got {trials!r}")
    if isinstance(max_imf, bool) or int(max_imf) != max_imf or (max_imf < 1 and max_imf != -1):
        raise InputError(f"max_imf must be -1 (all) or a positive integer, got {max_imf!r}")
    if isinstance(n_jobs, bool) or int(n_jobs) != n_jobs or n_jobs == 0 or n_jobs < -1:
        raise InputError(f"n_jobs must be -1 (all CPUs) or a positive integer, got {n_jobs!r}")


class _EMDFamily(Decomposer):
    _fn: Callable[..., np.ndarray]

    def _kwargs(self) -> dict[str, Any]:
        raise NotImplementedError

    def _modes_batch(self, X: np.ndarray, progress) -> np.ndarray:
        imfs = _run_batch(type(self)._fn, X, self._kwargs(), self.n_jobs, progress)
        return np.stack([fix_mode_count(m, self.modes) for m in imfs])


class EEMDDecomposer(_EMDFamily):
    """EEMD (PyEMD) with ``modes`` channels (IMFs high -> low, tail merged / zero padded).

    Defaults: trials=50, noise_width=0.05, max_imf=-1; ``n_jobs`` processes over windows
    (does not change results).
    """

    method = "eemd"
    _fn = staticmethod(eemd)

    def __init__(
        self,
        modes: int = 8,
        seed: int = 0,
        *,
        trials: int = DEFAULT_TRIALS_EEMD,
        noise_width: float = 0.05,
        max_imf: int = -1,
        n_jobs: int = 1,
    ) -> None:
        super().__init__(modes, seed)
        try:
            _check_common(trials, max_imf, n_jobs)
            ok = float(noise_width) > 0 and np.isfinite(float(noise_width))
        except (TypeError, ValueError) as e:
            raise InputError(f"invalid {self.method} parameter: {e}") from None
        if not ok:
            raise InputError(f"noise_width must be a positive number, got {noise_width!r}")
        self.trials = int(trials)
        self.noise_width = float(noise_width)
        self.max_imf = int(max_imf)
        self.n_jobs = int(n_jobs)

    def _kwargs(self) -> dict[str, Any]:
        return dict(trials=self.trials, noise_width=self.noise_width, max_imf=self.max_imf, seed=self.seed)

    def _own_params(self) -> dict[str, Any]:
        return {
            "trials": self.trials,
            "noise_width": self.noise_width,
            "max_imf": self.max_imf,
            "separate_trends": True,
            "pyemd": _pyemd_version(),
        }


class CEEMDANDecomposer(_EMDFamily):
    """CEEMDAN (PyEMD) with ``modes`` channels (IMFs high -> low, tail merged / zero padded).

    ``noise_width`` is PyEMD's CEEMDAN ``epsilon`` (noise scale relative to the residue's
    standard deviation; PyEMD default 0.005), named like EEMD's for a uniform interface; note
    the two scales are defined differently. Defaults: trials=50, noise_width=0.005,
    max_imf=-1; ``n_jobs`` processes over windows (does not change results).
    """

    method = "ceemdan"
    _fn = staticmethod(ceemdan)

    def __init__(
        self,
        modes: int = 8,
        seed: int = 0,
        *,
        trials: int = DEFAULT_TRIALS_CEEMDAN,
        noise_width: float = 0.005,
        max_imf: int = -1,
        n_jobs: int = 1,
    ) -> None:
        super().__init__(modes, seed)
        try:
            _check_common(trials, max_imf, n_jobs)
            ok = float(noise_width) > 0 and np.isfinite(float(noise_width))
        except (TypeError, ValueError) as e:
            raise InputError(f"invalid {self.method} parameter: {e}") from None
        if not ok:
            raise InputError(f"noise_width must be a positive number, got {noise_width!r}")
        self.trials = int(trials)
        self.noise_width = float(noise_width)
        self.max_imf = int(max_imf)
        self.n_jobs = int(n_jobs)

    def _kwargs(self) -> dict[str, Any]:
        return dict(trials=self.trials, epsilon=self.noise_width, max_imf=self.max_imf, seed=self.seed)

    def _own_params(self) -> dict[str, Any]:
        return {
            "trials": self.trials,
            "noise_width": self.noise_width,
            "noise_width_meaning": "PyEMD CEEMDAN epsilon",
            "max_imf": self.max_imf,
            "pyemd": _pyemd_version(),
        }
