"""EEMD and CEEMDAN with PyEMD's results (package ``EMD-signal``), seeded and repeatable.

Two engines (``engine=``), chosen by measurement (``bench/ceemdan_stepwise.py``):

* ``"pyemd-rs"`` (``"auto"`` when installed): the Rust port ``pyemd-rs``. Its EMD and CEEMDAN
  reproduce PyEMD's (same sifting, same Mersenne-Twister noise for the same seed) except for
  one end-condition edge case that is re-checked here with PyEMD's own test (see
  :func:`_ceemdan_rs`): on real Sapelo windows the IMFs agree with PyEMD's to ~1e-14 in
  number, values and so in mean period (``tests/decompose/test_emd.py``), about 25x faster. pyemd-rs has no EEMD, so EEMD runs
  PyEMD's ensemble here (the same noise draws from ``RandomState(seed)``, the same trend
  separation and ensemble mean) around ``pyemd_rs.emd``. Its in-library parallelism is off;
  windows are spread over threads (the Rust code releases the GIL).
* ``"pyemd"``: PyEMD itself, the reference.

PyEMD's own multiprocessing is always switched off (``parallel=False``): a fresh PyEMD object
is built for every window and seeded with ``noise_seed(seed)``, so a window's result depends
only on the window and the parameters, never on worker count or on which windows were
decomposed before it. The batch functions may spread windows over ``n_jobs`` workers (threads for
pyemd-rs, a ``concurrent.futures.ProcessPoolExecutor`` for PyEMD); the result is identical to
the serial one.

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
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from importlib import metadata
from typing import Any

import numpy as np

from wq_pipeline.decompose.base import Decomposer, fix_mode_count
from wq_pipeline.errors import InputError

__all__ = [
    "eemd", "ceemdan", "eemd_batch", "ceemdan_batch", "EEMDDecomposer", "CEEMDANDecomposer",
    "ENGINES", "resolve_engine",
]

DEFAULT_TRIALS_EEMD = 50
DEFAULT_TRIALS_CEEMDAN = 50
ENGINES = ("auto", "pyemd-rs", "pyemd")


def _have_rs() -> bool:
    try:
        import pyemd_rs  # noqa: F401
    except ImportError:  # pragma: no cover - pyemd-rs is a dependency
        return False
    return True


def resolve_engine(engine: str) -> str:
    """``"auto"`` -> ``"pyemd-rs"`` when installed, else ``"pyemd"``."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "auto":
        return "pyemd-rs" if _have_rs() else "pyemd"
    if engine == "pyemd-rs" and not _have_rs():
        raise ValueError("engine 'pyemd-rs' needs the pyemd-rs package (pip install pyemd-rs)")
    return engine


def _eemd_rs(s: np.ndarray, trials: int, noise_width: float, max_imf: int, seed: int) -> np.ndarray:
    """PyEMD's ``EEMD(separate_trends=True).eemd`` step for step, with pyemd-rs's EMD per trial.

    Noise: ``RandomState(seed).normal(0, noise_width * ptp(s), len(s))`` once per trial, in trial
    order (PyEMD's serial map). Each trial's trend is its EMD residue, or its last IMF when the
    residue is all-close to zero (``EMD.get_imfs_and_trend``); IMF ``k`` of the ensemble is the
    mean over the trials that produced an IMF ``k``. Returns the ensemble IMFs without the trend.
    """
    import pyemd_rs

    rng = np.random.RandomState(seed)
    scale = noise_width * np.abs(np.max(s) - np.min(s))
    groups: dict[int, list[np.ndarray]] = defaultdict(list)
    for _ in range(trials):
        noise = rng.normal(loc=0, scale=scale, size=s.size)
        imfs, residue = pyemd_rs.emd(s + noise, max_imf=None if max_imf < 0 else max_imf)
        if np.allclose(residue, 0):
            imfs = imfs[:-1]  # the last IMF is this trial's trend
        for k, imf in enumerate(imfs):
            groups[k].append(imf)
    n = len(groups)
    if n == 0:
        return np.zeros((0, s.size))
    return np.array([np.array(groups[k]).mean(axis=0) for k in range(n)], dtype=float)


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
    engine: str = "auto",
) -> np.ndarray:
    """Ensemble EMD of one signal.

    Args:
        x: signal (L,), any unit.
        trials: ensemble size.
        noise_width: noise standard deviation relative to ``max(x) - min(x)``.
        max_imf: most IMFs per trial (-1 = all).
        seed: noise seed; same seed -> identical output.
        engine: ``"auto"``, ``"pyemd-rs"`` or ``"pyemd"`` (module docstring).
    Returns:
        IMFs (n_imf, L), same unit as ``x``, high -> low frequency; the trend is not included.
        A constant signal gives (0, L).
    """
    s = _check_signal(x)
    if np.ptp(s) == 0:
        return np.zeros((0, s.size))
    if resolve_engine(engine) == "pyemd-rs":
        return _eemd_rs(s, int(trials), float(noise_width), int(max_imf), int(seed))
    from PyEMD import EEMD

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
    engine: str = "auto",
) -> np.ndarray:
    """CEEMDAN (Colominas et al. 2014 variant, as in PyEMD) of one signal.

    Args:
        x: signal (L,), any unit.
        trials: ensemble size.
        epsilon: PyEMD's noise scale (``beta = epsilon * std(residue)``).
        max_imf: most IMFs (-1 = all).
        seed: noise seed; same seed -> identical output.
        engine: ``"auto"``, ``"pyemd-rs"`` or ``"pyemd"`` (module docstring).
    Returns:
        IMFs (n_imf, L), same unit as ``x``, high -> low frequency; the residue is not included.
        A constant signal gives (0, L).
    """
    s = _check_signal(x)
    if np.ptp(s) == 0:
        return np.zeros((0, s.size))
    if resolve_engine(engine) == "pyemd-rs":
        imfs = _ceemdan_rs(s, int(trials), float(epsilon), int(max_imf), int(seed))
        if imfs is not None:
            return imfs
    from PyEMD import CEEMDAN

    dec = CEEMDAN(trials=int(trials), epsilon=float(epsilon), parallel=False)
    dec.noise_seed(int(seed))
    out = dec.ceemdan(s, max_imf=int(max_imf))
    return np.asarray(out[:-1], dtype=float)


def _ceemdan_rs(s: np.ndarray, trials: int, epsilon: float, max_imf: int, seed: int) -> np.ndarray | None:
    """pyemd-rs's CEEMDAN, stopped where PyEMD stops; None when PyEMD would go on (then the caller
    runs PyEMD).

    pyemd-rs computes the same IMFs as PyEMD but tests the end condition differently in one edge
    case: PyEMD's test, ``EMD(residue, max_imf=1)`` returning a single row, counts an IMF whose
    sifting ended with <= 2 extrema as a trend and drops it; pyemd-rs keeps it, and so may
    extract one more IMF from a smooth residue (1 of 16 sampled Sapelo windows). Each IMF count
    ``k`` is therefore re-tested with PyEMD's rule (:func:`_pyemd_ceemdan_stops`) and the IMFs
    are cut at the first ``k`` where PyEMD stops.
    """
    import pyemd_rs

    imfs, _residue = pyemd_rs.ceemdan(
        s, trials=trials, max_imf=None if max_imf < 0 else max_imf, seed=seed, epsilon=epsilon, parallel=False
    )
    imfs = np.asarray(imfs, dtype=float).reshape(-1, s.size)
    scale = np.std(s)
    s_n, imfs_n = s / scale, imfs / scale  # PyEMD tests on the signal divided by its std
    for k in range(1, imfs.shape[0] + 1):
        if _pyemd_ceemdan_stops(s_n, imfs_n[:k], max_imf):
            return imfs[:k]
    return None


def _pyemd_ceemdan_stops(s_n: np.ndarray, cimfs: np.ndarray, max_imf: int) -> bool:
    """PyEMD's ``CEEMDAN.end_condition`` (defaults ``range_thr=0.01``, ``total_power_thr=0.05``)
    with the residue's test EMD done by pyemd-rs: PyEMD's ``EMD.emd(R, max_imf=1)`` has a single
    row when the sifted IMF ends with <= 2 extrema (PyEMD drops it: only the residue row is
    left) or when the residue after it is all-close to zero (only the IMF row is left)."""
    import pyemd_rs
    from PyEMD import EMD

    if 0 < max_imf <= cimfs.shape[0]:
        return True
    R = s_n - np.sum(cimfs, axis=0)
    imfs, residue = pyemd_rs.emd(R, max_imf=1)
    imfs = np.asarray(imfs).reshape(-1, R.size)
    if imfs.shape[0] == 0:
        single_row = not np.allclose(R, 0)
    else:
        max_pos, _, min_pos, _, _ = EMD().find_extrema(np.arange(R.size, dtype=R.dtype), imfs[-1])
        dropped = len(max_pos) + len(min_pos) <= 2
        single_row = (not np.allclose(R, 0)) if dropped else bool(np.allclose(residue, 0))
    if single_row:
        return True
    if np.max(R) - np.min(R) < 0.01:
        return True
    return bool(np.sum(np.abs(R)) < 0.05)


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
    threads = resolve_engine(kwargs.get("engine", "auto")) == "pyemd-rs"  # Rust releases the GIL
    pool = ThreadPoolExecutor if threads else ProcessPoolExecutor
    with pool(max_workers=min(n_jobs, A.shape[0])) as ex:
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
    engine: str = "auto",
) -> list[np.ndarray]:
    """:func:`eemd` of every row of X (B, L); returns B arrays (n_imf_b, L) (counts may differ).

    ``n_jobs > 1`` uses that many workers (-1 = all CPUs; threads for pyemd-rs, processes for
    PyEMD); every window uses ``seed``. ``progress`` is called with 1 after each finished
    window (an increment).
    """
    kw = dict(trials=trials, noise_width=noise_width, max_imf=max_imf, seed=seed, engine=engine)
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
    engine: str = "auto",
) -> list[np.ndarray]:
    """:func:`ceemdan` of every row of X (B, L); returns B arrays (n_imf_b, L).

    ``n_jobs > 1`` uses that many workers (-1 = all CPUs; threads for pyemd-rs, processes for
    PyEMD); every window uses ``seed``. ``progress`` is called with 1 after each finished
    window (an increment).
    """
    kw = dict(trials=trials, epsilon=epsilon, max_imf=max_imf, seed=seed, engine=engine)
    return _run_batch(ceemdan, X, kw, n_jobs, progress)


def _pyemd_version(engine: str = "pyemd") -> str:
    dist = "pyemd-rs" if engine == "pyemd-rs" else "EMD-signal"
    try:
        return metadata.version(dist)
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
    """Shared constructor and batching of the EMD-family decomposers; subclasses set the
    method, the per-window function and the default number of trials and noise width."""

    _fn: Callable[..., np.ndarray]
    _default_trials: int
    _default_noise: float

    def __init__(
        self,
        modes: int = 8,
        seed: int = 0,
        *,
        trials: int | None = None,
        noise_width: float | None = None,
        max_imf: int = -1,
        n_jobs: int = 1,
        engine: str = "auto",
    ) -> None:
        super().__init__(modes, seed)
        trials = self._default_trials if trials is None else trials
        noise_width = self._default_noise if noise_width is None else noise_width
        try:
            _check_common(trials, max_imf, n_jobs)
            self.engine = resolve_engine(engine)
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
        raise NotImplementedError

    def _modes_batch(self, X: np.ndarray, progress) -> np.ndarray:
        imfs = _run_batch(type(self)._fn, X, self._kwargs(), self.n_jobs, progress)
        return np.stack([fix_mode_count(m, self.modes) for m in imfs])


class EEMDDecomposer(_EMDFamily):
    """EEMD (PyEMD's) with ``modes`` channels (IMFs high -> low, tail merged / zero padded).

    Defaults: trials=50, noise_width=0.05, max_imf=-1; ``n_jobs`` workers over windows
    (does not change results); ``engine`` ``"auto"`` / ``"pyemd-rs"`` / ``"pyemd"`` (the
    resolved engine is part of :meth:`params`).
    """

    method = "eemd"
    _fn = staticmethod(eemd)
    _default_trials = DEFAULT_TRIALS_EEMD
    _default_noise = 0.05

    def _kwargs(self) -> dict[str, Any]:
        return dict(trials=self.trials, noise_width=self.noise_width, max_imf=self.max_imf, seed=self.seed,
                    engine=self.engine)

    def _own_params(self) -> dict[str, Any]:
        return {
            "trials": self.trials,
            "noise_width": self.noise_width,
            "max_imf": self.max_imf,
            "separate_trends": True,
            "engine": self.engine,
            "pyemd": _pyemd_version(self.engine),
        }


class CEEMDANDecomposer(_EMDFamily):
    """CEEMDAN (PyEMD's) with ``modes`` channels (IMFs high -> low, tail merged / zero padded).

    ``noise_width`` is PyEMD's CEEMDAN ``epsilon`` (noise scale relative to the residue's
    standard deviation; PyEMD default 0.005), named like EEMD's for a uniform interface; note
    the two scales are defined differently. Defaults: trials=50, noise_width=0.005,
    max_imf=-1; ``n_jobs`` workers over windows (does not change results); ``engine`` ``"auto"`` /
    ``"pyemd-rs"`` / ``"pyemd"``.
    """

    method = "ceemdan"
    _fn = staticmethod(ceemdan)
    _default_trials = DEFAULT_TRIALS_CEEMDAN
    _default_noise = 0.005

    def _kwargs(self) -> dict[str, Any]:
        return dict(trials=self.trials, epsilon=self.noise_width, max_imf=self.max_imf, seed=self.seed,
                    engine=self.engine)

    def _own_params(self) -> dict[str, Any]:
        return {
            "trials": self.trials,
            "noise_width": self.noise_width,
            "noise_width_meaning": "PyEMD CEEMDAN epsilon",
            "max_imf": self.max_imf,
            "engine": self.engine,
            "pyemd": _pyemd_version(self.engine),
        }
