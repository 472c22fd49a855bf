"""Variational mode decomposition (VMD) with exactly vmdpy's semantics, batched over windows.

Reference: Dragomiretskiy & Zosso (2014), *Variational Mode Decomposition*, IEEE TSP 62(3);
reference implementation ``vmdpy.VMD`` 0.2 (a port of Zosso's MATLAB code). This module
reproduces vmdpy step for step:

* mirror extension of the signal to length ``T = 2N``, fftshifted spectrum, and only the
  positive half (the negative half of every mode spectrum starts at zero and provably stays
  zero, so it is never stored or computed);
* Gauss-Seidel Wiener-filter mode updates with vmdpy's running accumulator, centre-frequency
  update as the power-weighted mean frequency, dual ascent with step ``tau``;
* the stopping rule ``uDiff = eps + sum_k |u_k^{n+1} - u_k^n|^2 / T <= tol`` or
  ``n == max_iter - 1``;
* vmdpy's quirk of returning the iterate *before* the last one (``u_hat_plus[Niter-1]``) and
  the omega history ``omega_plus[:Niter]``.

Differences from vmdpy (none change the result for even lengths):

* only the current and previous iterate are kept (two buffers instead of ``max_iter``);
* odd lengths are handled: vmdpy silently drops the last sample, here the signal is mirrored
  ``N//2`` samples to the left and ``N - N//2`` to the right (extension length ``2N``) and the
  modes are cut back to ``[N//2 : N//2 + N]``, so ``N`` samples always come back;
* ``init=2`` draws the random initial centre frequencies from ``numpy.random.default_rng(seed)``
  (vmdpy uses the global ``np.random.rand``).

Engines (``engine=``; all give the same iterations and agree with vmdpy to rounding):

* ``"numba"`` (the default when numba is installed, ``"auto"``): a compiled per-window loop
  (:mod:`wq_pipeline.decompose._vmd_numba`) that does one fused, SIMD-vectorised pass over the
  spectrum per mode and iteration with the window's state in cache; windows can be spread over
  ``n_jobs`` threads (the kernel releases the GIL). About 10x the numpy engine per core.
* ``"numpy"``: the original vectorised-over-windows numpy iteration (no compiler needed).

Mode order: the order vmdpy returns, i.e. the order of the initial centre frequencies. With
``init=1`` (the default) these start uniformly spread from 0 to 0.5 and in practice stay
ordered, so mode 0 is the lowest-frequency mode. Modes are not re-sorted.

Frequencies (``omega``) are in cycles per sample of the mirrored signal, i.e. in ``[0, 0.5)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from wq_pipeline.decompose.base import Decomposer
from wq_pipeline.errors import InputError

__all__ = ["vmd", "vmd_batch", "VMDDecomposer", "ENGINES", "resolve_engine"]

_EPS = np.spacing(1.0)
# Largest (K, chunk, N) state array in float64 elements (16 MiB); long windows get smaller chunks.
_MAX_STATE_ELEMS = 1 << 21


def _check_params(K: int, init: int, max_iter: int, tol: float, alpha: float) -> None:
    if int(K) != K or K < 1:
        raise ValueError(f"K must be a positive integer, got {K!r}")
    if init not in (0, 1, 2):
        raise ValueError(f"init must be 0 (zeros), 1 (uniform) or 2 (random), got {init!r}")
    if int(max_iter) != max_iter or max_iter < 2:
        raise ValueError(f"max_iter must be an integer >= 2, got {max_iter!r}")
    if not np.isfinite(tol) or tol < 0:
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    if not np.isfinite(alpha):
        raise ValueError(f"alpha must be finite, got {alpha!r}")


def _initial_omega(N: int, K: int, DC: bool, init: int, seed: int | None) -> np.ndarray:
    """Initial centre frequencies (K,) exactly as vmdpy builds them (fs = 1/N)."""
    if init == 1:
        omega0 = np.array([(0.5 / K) * i for i in range(K)], dtype=float)
    elif init == 2:
        fs = 1.0 / N
        r = np.random.default_rng(seed).random(K)
        omega0 = np.sort(np.exp(np.log(fs) + (np.log(0.5) - np.log(fs)) * r))
    else:
        omega0 = np.zeros(K)
    if DC:
        omega0[0] = 0.0
    return omega0


def _mirror(X: np.ndarray) -> np.ndarray:
    """Mirror-extend rows of X (B, N) to (B, 2N): N//2 flipped left, N - N//2 flipped right."""
    N = X.shape[1]
    left = N // 2
    right = N - left
    return np.concatenate([X[:, :left][:, ::-1], X, X[:, N - right :][:, ::-1]], axis=1)


def _pos_freqs(T: int) -> np.ndarray:
    """Positive half of vmdpy's frequency grid, computed with vmdpy's formula: (T//2,)."""
    t = np.arange(1, T + 1) / T
    freqs = t - 0.5 - (1 / T)
    return np.ascontiguousarray(freqs[T // 2 :])


def _iterate_numpy(
    fr: np.ndarray,
    fi: np.ndarray,
    freqs: np.ndarray,
    omega0: np.ndarray,
    alpha: float,
    tau: float,
    DC: bool,
    tol: float,
    max_iter: int,
    keep_history: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """numpy engine: iterate every row of the positive half spectra ``fr + i fi`` (b, M) until
    each row's own convergence, vectorised over rows.

    ``omega0`` (b, K): initial centre frequencies per row. Returns (res_r, res_i (b, K, M): the
    returned spectrum, n_iter (b,), omega_final (b, K), history (b, max_iter, K) or None).
    Every operation is either elementwise or a reduction along the last axis of a row, so a
    row's result does not depend on which other rows share the chunk.
    """
    b, M = fr.shape
    K = omega0.shape[1]
    T = 2 * M
    inv_T = 1 / T
    # state of the active rows
    ids = np.arange(b)
    Uo_r = np.zeros((K, b, M))  # previous iterate u_hat_plus[n]
    Uo_i = np.zeros((K, b, M))
    Un_r = np.zeros((K, b, M))  # new iterate u_hat_plus[n+1]
    Un_i = np.zeros((K, b, M))
    s_r = np.zeros((b, M))  # Gauss-Seidel accumulator sum_uk
    s_i = np.zeros((b, M))
    use_dual = tau != 0
    if use_dual:
        l_r = np.zeros((b, M))  # dual variable lambda_hat
        l_i = np.zeros((b, M))
    om_old = np.array(omega0, dtype=float)  # omega_plus[n]  (b, K)
    om_new = om_old.copy()  # omega_plus[n+1]; with DC its column 0 stays 0

    # outputs (indexed by original row)
    res_r = np.zeros((b, K, M))
    res_i = np.zeros((b, K, M))
    n_iter = np.zeros(b, dtype=np.int64)
    om_final = np.zeros((b, K))
    hist = None
    if keep_history:
        hist = np.zeros((b, max_iter, K))
        hist[:, 0, :] = om_old

    # work buffers
    num_r = np.empty((b, M))
    num_i = np.empty((b, M))
    den = np.empty((b, M))
    pw = np.empty((b, M))
    tmp = np.empty((b, M))
    n = 0

    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        while True:
            nb = ids.size
            if use_dual:
                lh_r = l_r / 2
                lh_i = l_i / 2
            for k in range(K):
                # accumulator: sum of all other modes (latest available iterate of each)
                prev_r = Uo_r[K - 1] if k == 0 else Un_r[k - 1]
                prev_i = Uo_i[K - 1] if k == 0 else Un_i[k - 1]
                np.add(prev_r, s_r, out=s_r)
                np.subtract(s_r, Uo_r[k], out=s_r)
                np.add(prev_i, s_i, out=s_i)
                np.subtract(s_i, Uo_i[k], out=s_i)
                # Wiener filter of the residual
                np.subtract(fr, s_r, out=num_r[:nb])
                np.subtract(fi, s_i, out=num_i[:nb])
                if use_dual:
                    np.subtract(num_r[:nb], lh_r, out=num_r[:nb])
                    np.subtract(num_i[:nb], lh_i, out=num_i[:nb])
                d = den[:nb]
                np.subtract(freqs, om_old[:, k, None], out=d)
                np.multiply(d, d, out=d)
                np.multiply(alpha, d, out=d)
                np.add(1.0, d, out=d)
                np.divide(num_r[:nb], d, out=Un_r[k])
                np.divide(num_i[:nb], d, out=Un_i[k])
                # centre frequency: power-weighted mean of the positive frequencies
                if k > 0 or not DC:
                    p = pw[:nb]
                    np.multiply(Un_r[k], Un_r[k], out=p)
                    np.multiply(Un_i[k], Un_i[k], out=tmp[:nb])
                    np.add(p, tmp[:nb], out=p)
                    om_new[:, k] = np.einsum("ij,j->i", p, freqs) / np.einsum("ij->i", p)
            if use_dual:
                tot_r = Un_r.sum(axis=0)
                tot_i = Un_i.sum(axis=0)
                l_r += tau * (tot_r - fr)
                l_i += tau * (tot_i - fi)
            n += 1
            if hist is not None:
                hist[ids, n, :] = om_new
            # convergence: uDiff = eps + sum_k |u_k^{n} - u_k^{n-1}|^2 / T
            udiff = np.full(nb, _EPS)
            for k in range(K):
                dr = np.subtract(Un_r[k], Uo_r[k], out=num_r[:nb])
                di = np.subtract(Un_i[k], Uo_i[k], out=num_i[:nb])
                udiff = udiff + inv_T * (np.einsum("ij,ij->i", dr, dr) + np.einsum("ij,ij->i", di, di))
            udiff = np.abs(udiff)
            go_on = udiff > tol
            if n >= max_iter - 1:
                go_on[:] = False
            stop = ~go_on
            if stop.any():
                # vmdpy returns u_hat_plus[Niter-1] with Niter = n: the previous iterate
                sid = ids[stop]
                res_r[sid] = Uo_r[:, stop, :].transpose(1, 0, 2)
                res_i[sid] = Uo_i[:, stop, :].transpose(1, 0, 2)
                n_iter[sid] = n
                om_final[sid] = om_old[stop]
                if not go_on.any():
                    break
                # drop the finished rows from the active set
                ids = ids[go_on]
                Uo_r, Uo_i = Uo_r[:, go_on], Uo_i[:, go_on]
                Un_r, Un_i = Un_r[:, go_on], Un_i[:, go_on]
                s_r, s_i = s_r[go_on], s_i[go_on]
                fr, fi = fr[go_on], fi[go_on]
                if use_dual:
                    l_r, l_i = l_r[go_on], l_i[go_on]
                om_old, om_new = om_old[go_on], om_new[go_on]
            # new iterate becomes the previous one; the old buffer is overwritten next round
            Uo_r, Un_r = Un_r, Uo_r
            Uo_i, Un_i = Un_i, Uo_i
            om_old, om_new = om_new, om_old
            if DC:
                om_new[:, 0] = 0.0

    return res_r, res_i, n_iter, om_final, hist


def _numba_kernel():
    """The compiled kernel, or None when numba is not installed."""
    global _KERNEL
    if _KERNEL is None:
        try:
            from wq_pipeline.decompose._vmd_numba import vmd_windows
        except ImportError:  # pragma: no cover - numba is a dependency
            _KERNEL = False
        else:
            _KERNEL = vmd_windows
    return _KERNEL or None


_KERNEL = None
ENGINES = ("auto", "numba", "numpy")


def resolve_engine(engine: str) -> str:
    """``"auto"`` -> ``"numba"`` when numba is installed, else ``"numpy"``."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "auto":
        return "numba" if _numba_kernel() is not None else "numpy"
    if engine == "numba" and _numba_kernel() is None:
        raise ValueError("engine 'numba' needs the numba package (pip install numba)")
    return engine


def _iterate_numba(
    fr: np.ndarray,
    fi: np.ndarray,
    freqs: np.ndarray,
    omega0: np.ndarray,
    alpha: float,
    tau: float,
    DC: bool,
    tol: float,
    max_iter: int,
    keep_history: bool,
    n_jobs: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """numba engine, same contract as :func:`_iterate_numpy`; rows spread over ``n_jobs`` threads."""
    kernel = _numba_kernel()
    b, M = fr.shape
    K = omega0.shape[1]
    res_r = np.empty((b, K, M))
    res_i = np.empty((b, K, M))
    n_iter = np.zeros(b, dtype=np.int64)
    om_final = np.empty((b, K))
    hist = np.zeros((b, max_iter, K)) if keep_history else np.zeros((1, 1, K))
    args = (freqs, np.ascontiguousarray(omega0, dtype=float), float(alpha), float(tau), bool(DC),
            float(tol), int(max_iter), res_r, res_i, n_iter, om_final, hist)
    rows = np.arange(b, dtype=np.int64)
    if n_jobs <= 1 or b <= 1:
        kernel(fr, fi, rows, *args)
    else:
        from concurrent.futures import ThreadPoolExecutor

        # small interleaved parts keep the threads balanced (windows stop at different iterations)
        parts = [np.ascontiguousarray(rows[i :: 4 * n_jobs]) for i in range(min(b, 4 * n_jobs))]
        with ThreadPoolExecutor(max_workers=n_jobs) as ex:
            list(ex.map(lambda r: kernel(fr, fi, r, *args), parts))
    return res_r, res_i, n_iter, om_final, hist if keep_history else None


def _vmd_chunk(
    X: np.ndarray,
    alpha: float,
    tau: float,
    K: int,
    DC: bool,
    omega0: np.ndarray,
    tol: float,
    max_iter: int,
    keep_history: bool,
    engine: str = "numpy",
    n_jobs: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Run VMD on every row of X (b, N) until each row's own convergence.

    ``omega0``: initial centre frequencies, (K,) for all rows or (b, K) per row.
    Returns (u (b,K,N) float64, n_iter (b,) int, omega_final (b,K), history (b,max_iter,K) or None).
    """
    b, N = X.shape
    T = 2 * N
    M = N  # length of the positive half of the spectrum (T//2)
    freqs = _pos_freqs(T)
    om0 = np.broadcast_to(np.asarray(omega0, dtype=float), (b, K))

    # Positive half of fftshift(fft(fMirr)) == fft bins 0 .. T/2-1 == rfft(fMirr)[:, :T/2].
    f_hat = np.fft.rfft(_mirror(X), axis=1)[:, :M]
    fr = np.ascontiguousarray(f_hat.real)
    fi = np.ascontiguousarray(f_hat.imag)
    del f_hat
    if engine == "numba":
        res_r, res_i, n_iter, om_final, hist = _iterate_numba(
            fr, fi, freqs, om0, alpha, tau, DC, tol, max_iter, keep_history, n_jobs
        )
    else:
        res_r, res_i, n_iter, om_final, hist = _iterate_numpy(
            fr, fi, freqs, om0, alpha, tau, DC, tol, max_iter, keep_history
        )

    # Hermitian completion as vmdpy does it (its Nyquist bin is conj(bin T/2-1); irfft only
    # uses the real parts of the DC and Nyquist bins, exactly like real(ifft(.)) does).
    spec = np.empty((b, K, M + 1), dtype=complex)
    spec.real[..., :M] = res_r
    spec.imag[..., :M] = res_i
    del res_r, res_i
    spec[..., M] = np.conj(spec[..., M - 1])
    u_ext = np.fft.irfft(spec, n=T, axis=-1)
    del spec
    start = N // 2
    u = np.ascontiguousarray(u_ext[..., start : start + N])
    return u, n_iter, om_final, hist


def _resolve_jobs(n_jobs: int) -> int:
    if isinstance(n_jobs, bool) or int(n_jobs) != n_jobs or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be -1 (all CPUs) or a positive integer, got {n_jobs!r}")
    return (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs)


def _as_signal_matrix(X: np.ndarray, name: str) -> np.ndarray:
    A = np.asarray(X, dtype=float)
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D (B, N), got shape {A.shape}")
    if A.shape[1] < 2:
        raise ValueError(f"{name} needs at least 2 samples per window, got {A.shape[1]}")
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return A


def vmd(
    f: np.ndarray,
    alpha: float = 2000.0,
    tau: float = 0.0,
    K: int = 8,
    DC: bool = False,
    init: int = 1,
    tol: float = 1e-7,
    max_iter: int = 500,
    seed: int | None = None,
    engine: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """VMD of one signal, vmdpy-compatible.

    Parameters are vmdpy's: ``alpha`` bandwidth penalty, ``tau`` dual-ascent step (0 = noise
    slack), ``K`` modes, ``DC`` keep mode 0 at zero frequency, ``init`` 0 zeros / 1 uniform /
    2 random (drawn with ``default_rng(seed)``), ``tol`` convergence tolerance, ``max_iter``
    vmdpy's ``Niter`` (500). ``engine``: ``"auto"`` (numba if installed), ``"numba"`` or
    ``"numpy"`` (see the module docstring). Working memory is about ``(4K + 10) N`` floats
    (vmdpy keeps ``max_iter`` iterates: ``16 max_iter K N`` bytes).

    Args:
        f: signal (N,), N >= 2, in any unit; odd N is supported.
    Returns:
        u: modes (K, N), same unit as ``f``.
        u_hat: fftshifted spectra of the modes (N, K) complex.
        omega: centre-frequency history (n_iter, K) in cycles/sample of the mirrored signal;
            ``n_iter`` equals vmdpy's iteration count.
    """
    x = np.asarray(f, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"f must be 1-D (N,), got shape {x.shape}")
    X = _as_signal_matrix(x[None, :], "f")
    _check_params(K, init, max_iter, tol, alpha)
    N = X.shape[1]
    omega0 = _initial_omega(N, int(K), bool(DC), int(init), seed)
    u, n_iter, _, hist = _vmd_chunk(
        X, float(alpha), float(tau), int(K), bool(DC), omega0, float(tol), int(max_iter), True,
        engine=resolve_engine(engine),
    )
    u = u[0]
    u_hat = np.fft.fftshift(np.fft.fft(u, axis=1), axes=1).T
    omega = hist[0, : int(n_iter[0]), :]
    return u, u_hat, omega


def vmd_batch(
    X: np.ndarray,
    alpha: float = 2000.0,
    tau: float = 0.0,
    K: int = 8,
    DC: bool = False,
    init: int = 1,
    tol: float = 1e-7,
    max_iter: int = 500,
    seed: int | None = None,
    chunk: int = 256,
    progress: Callable[[int], object] | None = None,
    return_iters: bool = False,
    return_omega: bool = False,
    engine: str = "auto",
    n_jobs: int = 1,
) -> np.ndarray | tuple[np.ndarray, ...]:
    """VMD of many windows at once, in chunks of ``chunk`` windows (reduced automatically for
    long windows so that each (K, chunk, N) state array stays under 16 MiB; the numpy engine's
    peak working memory is about 15 such arrays, i.e. < 250 MiB, the numba engine's about 4).

    Each window stops at its own convergence and its result is frozen exactly as
    :func:`vmd` would return it, so ``vmd_batch(X)[i] == vmd(X[i])[0]`` (same parameters and
    engine; with ``init=2`` every window uses the same ``default_rng(seed)`` initial frequencies).

    Args:
        X: windows (B, N), N >= 2.
        engine: ``"auto"`` (numba if installed), ``"numba"`` or ``"numpy"``.
        n_jobs: threads over windows (numba engine only; -1 = all CPUs). Does not change results.
        progress: optional callable, called after each chunk with the number of windows just
            finished (an increment, e.g. ``tqdm(...).update``).
        return_iters: also return the iteration count per window (B,) int (vmdpy's
            ``len(omega)``).
        return_omega: also return the final centre frequencies per window (B, K), i.e. the
            last row of :func:`vmd`'s omega history.
    Returns:
        u (B, K, N) float64, followed by ``iters`` and/or ``omega`` when requested.
    """
    A = _as_signal_matrix(X, "X")
    _check_params(K, init, max_iter, tol, alpha)
    if int(chunk) != chunk or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    eng = resolve_engine(engine)
    n_jobs = _resolve_jobs(n_jobs)
    B, N = A.shape
    K = int(K)
    # bound memory: each (K, chunk, N) state array stays under _MAX_STATE_ELEMS float64s
    step = max(1, min(int(chunk), _MAX_STATE_ELEMS // (K * N)))
    omega0 = _initial_omega(N, K, bool(DC), int(init), seed)
    u = np.empty((B, K, N))
    iters = np.zeros(B, dtype=np.int64)
    om = np.zeros((B, K))
    for lo in range(0, B, step):
        hi = min(B, lo + step)
        u[lo:hi], iters[lo:hi], om[lo:hi], _ = _vmd_chunk(
            A[lo:hi], float(alpha), float(tau), K, bool(DC), omega0, float(tol), int(max_iter), False,
            engine=eng, n_jobs=n_jobs,
        )
        if progress is not None:
            progress(hi - lo)
    out: tuple[np.ndarray, ...] = (u,)
    if return_iters:
        out += (iters,)
    if return_omega:
        out += (om,)
    return out[0] if len(out) == 1 else out


class VMDDecomposer(Decomposer):
    """VMD with a fixed K = ``modes``; channels are vmdpy's modes then the residual.

    Defaults: alpha=2000, tau=0, DC=False, init=1, tol=1e-7, max_iter=500. ``seed`` only
    matters for ``init=2``. ``chunk`` is the number of windows per call of the engine and
    ``n_jobs`` the threads over windows (-1 = all CPUs); neither changes results. ``engine``:
    ``"auto"`` (numba if installed), ``"numba"`` or ``"numpy"``; the engines agree to rounding
    and the resolved engine is part of :meth:`params`.
    After each call, ``last_iters`` holds the iteration count per window (vmdpy's count).
    """

    method = "vmd"

    def __init__(
        self,
        modes: int = 8,
        seed: int = 0,
        *,
        alpha: float = 2000.0,
        tau: float = 0.0,
        DC: bool = False,
        init: int = 1,
        tol: float = 1e-7,
        max_iter: int = 500,
        chunk: int = 256,
        engine: str = "auto",
        n_jobs: int = 1,
    ) -> None:
        super().__init__(modes, seed)
        try:
            _check_params(self.modes, init, max_iter, float(tol), float(alpha))
            self.engine = resolve_engine(engine)
            self.n_jobs = _resolve_jobs(n_jobs)
            if not np.isfinite(tau) or tau < 0:
                raise ValueError(f"tau must be a finite number >= 0, got {tau!r}")
            if int(chunk) != chunk or chunk < 1:
                raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
        except (TypeError, ValueError) as e:
            raise InputError(f"invalid VMD parameter: {e}") from None
        self.alpha = float(alpha)
        self.tau = float(tau)
        self.DC = bool(DC)
        self.init = int(init)
        self.tol = float(tol)
        self.max_iter = int(max_iter)
        self.chunk = int(chunk)
        #: iteration count per window (B,) of the last decompose / decompose_batch call
        self.last_iters: np.ndarray | None = None

    def _own_params(self) -> dict:
        return {
            "alpha": self.alpha,
            "tau": self.tau,
            "DC": self.DC,
            "init": self.init,
            "tol": self.tol,
            "max_iter": self.max_iter,
            "impl": f"wq_pipeline.vmd/2 (vmdpy 0.2 semantics, {self.engine} engine)",
        }

    def _modes_batch(self, X: np.ndarray, progress) -> np.ndarray:
        u, self.last_iters = vmd_batch(
            X,
            alpha=self.alpha,
            tau=self.tau,
            K=self.modes,
            DC=self.DC,
            init=self.init,
            tol=self.tol,
            max_iter=self.max_iter,
            seed=self.seed,
            chunk=self.chunk,
            progress=progress,
            return_iters=True,
            engine=self.engine,
            n_jobs=self.n_jobs,
        )
        return u
