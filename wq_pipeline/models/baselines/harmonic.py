"""Harmonic regression + AR residual baseline, refitted on the trailing window at every origin.

At origin ``t`` the model ``y[p] = harmonic(p) + e[p]`` is fitted to ``y[t - n_fit + 1 .. t]``:
the harmonic part (intercept plus a cosine and sine per period, at absolute time
``p * step_hours`` hours since the series start) on the finite values, then an AR(``p_ar``)
without intercept on the residuals. The forecast for ``t + h`` is ``harmonic(t + h)`` plus the
residual AR recursion run forward from the last ``p_ar`` residuals, feeding back its own
forecasts. Only ``y[<= t]`` is used.

Terms depend on the grid step (:func:`harmonic_periods`): a grid finer than a day uses the diel
periods (24 h, 12 h) and, with ``tides``, the M2, S2, K1 and O1 constituents; a grid of a day or
coarser uses the annual cycle (365.25 d and its first harmonic, 182.6 d) with ``annual`` and a
weekly cycle (7 d) with ``weekly``. A period of 2 grid steps or less is never used (it is aliased:
at exactly 2 steps its sine column vanishes on the grid).

Short windows never raise; terms are dropped instead (:func:`resolvable_periods`), per origin:

* a period is kept only when the finite data of the window span at least one full cycle of it
  (to within :data:`RESOLVE_TOLERANCE`, so a 365-day window keeps the 365.25-day cycle): with
  less than a cycle its amplitude and phase trade off against the intercept and the fit
  extrapolates a fragment of a sinusoid;
* then the longest periods are dropped until the window has at least 2 finite values per
  column (``n_ok >= 2 (1 + 2K)``, the rule that used to raise);
* ``p_ar`` is lowered to ``n // 4 - 1`` when the window (``n = n_fit``) or its finite values
  (``n = n_ok``) number fewer than ``4 (p_ar + 1)``.

With nothing left the model is intercept (level) + AR. A window with fewer than
``min_fraction * n_fit`` finite values is not fitted at all (then: fallback).

Robustness (defaults :data:`ROBUST`, chosen by measurement on development series):

* ``ridge``: penalty ``ridge * n_ok`` on every harmonic amplitude (not the intercept); the
  cosine and sine columns have mean square 1/2, so ``ridge = 0.01`` shrinks a well-resolved
  amplitude by about 2 % and a poorly resolved one much more;
* ``huber_iter`` iterations of Huber IRLS (tuning constant ``huber_c`` robust standard
  deviations, the scale being 1.4826 x the median absolute residual, as statsmodels' RLM) for the
  harmonic fit; the residuals are then winsorised at ``huber_c`` scales before the AR fit and
  before they start the AR recursion, so a glitch of any size moves the forecast by a bounded
  amount;
* ``ridge_ar``: penalty ``ridge_ar * trace(L'L) / p`` on the AR coefficients (``L`` the lag
  matrix), which keeps the fit scale-free;
* ``max_root``: when the companion matrix of the AR polynomial has spectral radius above
  ``max_root``, the coefficients are shrunk, ``phi_k <- phi_k lam^k`` with
  ``lam = max_root / radius``, which scales every root by ``lam`` exactly;
* ``envelope``: forecasts are clipped to ``[min - m r, max + m r]`` of the finite values of the
  fitting window (``r = max - min``, ``m = envelope``);
* ``fallback_period``: rows without a finite forecast (too few finite values, a NaN among the
  last ``p_ar`` values) are the seasonal naive forecast with that period (steps), the steps
  whose source value is missing filled with the value at the origin.

``PLAIN`` switches all of that off (and keeps the old ``min_fraction = 0.5``): the fit is then
numpy least squares for the harmonics and ``statsmodels`` ``AutoReg(trend="n")`` for the
residuals, as before.

How the defaults were chosen (development series only: Sapelo 2012, Apalachicola 2013, NEON
LEWI hourly at 6 h; NEON POSE, HOPB, BARC, SUGG daily at 1, 7, 14 d; settings chosen on the 10 %
before the last 20 %, RMSE on the last 20 %; two readings moved by -5 mg/L, or set to 3.3 and
6.5 mg/L, at lags 0-100 steps before 100 test origins):

* ``huber_c = 3.5``: 3.0 moved glitched forecasts least but cost up to 5.6 % RMSE on clean data
  (HOPB 1 d), 4.0 let glitches through 20-40 % more; 3.5 is within 1.5 % of the plain fit
  everywhere and better on average. Two IRLS iterations did what five did.
* ``ridge = 0.01``: Sapelo 0.716 -> 0.692 mg/L (K1 and 24 h are collinear in 28 days); 0.1 cost
  3-15 % on POSE / HOPB. ``ridge_ar = 0.001``: 0.01 cost 2-3 % on BARC and 1.6 % on LEWI; 0 gave
  an unstable AR fit at every HOPB test origin (1 d) and cost 3.7 % there.
* ``max_root = 0.999``: 0.99 shrank 93 % of Sapelo's AR(24) fits (their residuals have roots
  near 1) and cost 1.8 % there; without any check, glitched daily AR(7) fits moved by up to
  9 mg/L instead of 6.
* ``envelope = 1.0``: real values 1-14 days ahead left ``[min - m r, max + m r]`` of a 56-day
  window 2-3.3 % of the time at ``m = 0.5`` and at most 0.72 % at ``m = 1`` (hourly, 6 h ahead
  of a 14-day window: 0.05 % at 0.5, never at 1); the robust fits never reached it on clean or
  glitched data, the plain ones left it by up to 890 mg/L.
* ``min_fraction = 0.25``: after a long gap, fitting the finite values there beat the seasonal
  naive fallback (Apalachicola 0.284 vs 0.360 mg/L on 288 such origins, LEWI 0.246 vs 0.270).

Resolution caveat: two periods are separable in a window of ``T`` hours only if
``T >= 1 / |1/P1 - 1/P2|`` (Rayleigh). In a 14-day window M2/S2 (14.8 d) and S1/O1 (14.2 d) are
just about resolved, S1/K1 (~1 yr) is not: those two columns are nearly collinear and their
individual amplitudes are unstable, but the fit still gets their sum, which is what the
short-range forecast uses (the ridge splits it evenly).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from wq_pipeline.models.baselines._common import check_series_origins
from wq_pipeline.models.baselines.seasonal_naive import seasonal_naive_forecast

# Periods in hours.
DIEL: Mapping[str, float] = {"S1 (24 h)": 24.0, "S2/12 h": 12.0}
TIDAL: Mapping[str, float] = {"M2": 12.4206012, "S2": 12.0, "K1": 23.9344697, "O1": 25.8193417}
ANNUAL: Mapping[str, float] = {"annual (365.25 d)": 8766.0, "semi-annual (182.625 d)": 4383.0}
WEEKLY: Mapping[str, float] = {"weekly (7 d)": 168.0}

#: a period is resolvable when the window's finite data span at least (1 - this) of a cycle
RESOLVE_TOLERANCE = 0.05
#: Huber tuning constants are in robust standard deviations (1.4826 x MAD = MAD / 0.6745)
MAD_TO_SD = 1.0 / 0.6744897501960817

#: robust settings used by default (chosen on the development series, see the module docstring)
ROBUST: Mapping[str, Any] = {
    "ridge": 0.01,
    "ridge_ar": 0.001,
    "huber_c": 3.5,
    "huber_iter": 2,
    "max_root": 0.999,
    "envelope": 1.0,
    "min_fraction": 0.25,
}
#: everything off: plain least squares (numpy ``lstsq``) and AR by ``statsmodels`` ``AutoReg``
PLAIN: Mapping[str, Any] = {
    "ridge": 0.0,
    "ridge_ar": 0.0,
    "huber_c": None,
    "huber_iter": 0,
    "max_root": None,
    "envelope": None,
    "fallback_period": None,
    "min_fraction": 0.5,
}

# status bits returned by harmonic_ar_diagnose
FIT_SHRUNK = 1  # AR coefficients shrunk to max_root
FIT_CLIPPED = 2  # some step clipped to the envelope
FIT_FALLBACK = 4  # row replaced by seasonal naive
FIT_NAN = 8  # row left NaN (no fit, no usable fallback)
FIT_TERMS_DROPPED = 16  # some period dropped by the resolvability rules


def harmonic_periods(
    tides: bool = False, *, step_hours: float = 1.0, annual: bool = True, weekly: bool = False
) -> tuple[float, ...]:
    """Distinct periods (hours) usable on a grid of ``step_hours`` hours per step, in order.

    Grid step under 24 h: :data:`DIEL`, plus :data:`TIDAL` when ``tides`` (``annual`` and
    ``weekly`` ignored). Step of 24 h or more: :data:`ANNUAL` when ``annual``, :data:`WEEKLY` when
    ``weekly`` (``tides`` ignored). Periods of 2 steps or less are dropped (aliased).
    """
    step = float(step_hours)
    if not np.isfinite(step) or step <= 0:
        raise ValueError(f"step_hours must be > 0, got {step_hours}")
    if step < 24.0 - 1e-9:
        cands = list(DIEL.values()) + (list(TIDAL.values()) if tides else [])
    else:
        cands = (list(ANNUAL.values()) if annual else []) + (list(WEEKLY.values()) if weekly else [])
    out: list[float] = []
    for p in cands:
        if float(p) > 2.0 * step * (1.0 + 1e-9) and float(p) not in out:
            out.append(float(p))
    return tuple(out)


def resolvable_periods(periods: Iterable[float], span_hours: float, n_points: int) -> tuple[float, ...]:
    """The periods (hours) a window can resolve, longest dropped first, in ascending order.

    A period is kept when ``span_hours >= (1 - RESOLVE_TOLERANCE) * period`` (one full cycle of
    data, ``span_hours`` = time from the first to one step past the last finite value); then the
    longest are dropped until ``n_points >= 2 * (1 + 2K)`` (two finite values per column).
    """
    kept = sorted({float(p) for p in periods if span_hours >= (1.0 - RESOLVE_TOLERANCE) * float(p)})
    while kept and int(n_points) < 2 * (1 + 2 * len(kept)):
        kept.pop()
    return tuple(kept)


def effective_ar_order(n_fit: int, p_ar: int) -> int:
    """``p_ar`` lowered so that the window holds at least 4 values per AR coefficient:
    ``min(p_ar, n_fit // 4 - 1)``, at least 0."""
    return max(0, min(int(p_ar), int(n_fit) // 4 - 1))


def harmonic_design(hours: np.ndarray, periods: Iterable[float]) -> np.ndarray:
    """Design ``(n, 1 + 2K)``: ``[1, cos(2 pi h / P1), sin(2 pi h / P1), cos(.. P2), ...]``.

    ``hours (n,)`` is absolute time in hours; ``periods`` are ``K`` periods in hours (equal
    periods are kept once, first occurrence).
    """
    h = np.asarray(hours, dtype=np.float64)
    if h.ndim != 1:
        raise ValueError(f"hours must be 1-D (n,), got shape {h.shape}")
    uniq: list[float] = []
    for p in periods:
        if float(p) <= 0:
            raise ValueError(f"periods must be > 0 hours, got {p}")
        if float(p) not in uniq:
            uniq.append(float(p))
    cols = [np.ones_like(h)]
    for p in uniq:
        w = 2.0 * np.pi * h / p
        cols += [np.cos(w), np.sin(w)]
    return np.stack(cols, axis=1)


def harmonic_fit(window_values: np.ndarray, window_hours: np.ndarray, periods: Iterable[float]) -> np.ndarray:
    """Least-squares coefficients ``(1 + 2K,)`` of :func:`harmonic_design` on the finite values.

    ``window_values (n,)`` in the units of the series, ``window_hours (n,)`` absolute hours.
    """
    v = np.asarray(window_values, dtype=np.float64)
    X = harmonic_design(window_hours, periods)
    if v.shape != X.shape[:1]:
        raise ValueError(f"values {v.shape} and hours {X.shape[:1]} differ in length")
    ok = np.isfinite(v)
    return np.linalg.lstsq(X[ok], v[ok], rcond=None)[0]


def _ar_rows(resid: np.ndarray, p_ar: int) -> tuple[np.ndarray, np.ndarray]:
    """Lag matrix ``(m, p_ar)`` (column j = lag j + 1) and target ``(m,)`` over complete rows."""
    n = resid.size
    target = resid[p_ar:]
    lags = np.stack([resid[p_ar - j - 1 : n - j - 1] for j in range(p_ar)], axis=1)
    ok = np.isfinite(target) & np.isfinite(lags).all(axis=1)
    return lags[ok], target[ok]


def ar_fit(resid: np.ndarray, p_ar: int) -> np.ndarray:
    """AR(``p_ar``) coefficients ``(p_ar,)`` (lag 1 first), no intercept, by least squares.

    ``resid (n,)`` is a regular series; rows whose target or any lag is NaN are dropped. Equals
    ``statsmodels`` ``AutoReg(resid, lags=p_ar, trend="n").fit().params`` on a gap-free series.
    """
    r = np.asarray(resid, dtype=np.float64)
    p_ar = int(p_ar)
    if p_ar == 0:
        return np.zeros(0)
    if r.ndim != 1 or r.size <= p_ar:
        raise ValueError(f"need a 1-D residual series longer than p_ar={p_ar}")
    X, z = _ar_rows(r, p_ar)
    return np.linalg.lstsq(X, z, rcond=None)[0]


def ar_spectral_radius(phi: np.ndarray) -> float:
    """Largest modulus of the roots of ``z^p - phi_1 z^(p-1) - ... - phi_p`` (the eigenvalues of
    the companion matrix); ``< 1`` means the AR recursion is stable. ``phi (p,)``, lag 1 first;
    0.0 for ``p = 0``."""
    phi = np.asarray(phi, dtype=np.float64)
    p = phi.size
    if p == 0:
        return 0.0
    if p == 1:
        return float(abs(phi[0]))
    comp = np.zeros((p, p))
    comp[0] = phi
    comp[np.arange(1, p), np.arange(p - 1)] = 1.0
    return float(np.max(np.abs(np.linalg.eigvals(comp))))


def shrink_ar(phi: np.ndarray, max_root: float) -> tuple[np.ndarray, bool]:
    """``(phi', shrunk)``: ``phi'_k = phi_k lam^k`` with ``lam = max_root / radius`` when the
    spectral radius exceeds ``max_root`` (every root scaled by ``lam``), else ``phi`` unchanged.
    ``phi (p,)``, lag 1 first."""
    phi = np.asarray(phi, dtype=np.float64)
    if phi.size == 0 or float(np.sum(np.abs(phi))) <= max_root:  # sum |phi| bounds the radius
        return phi, False
    rho = ar_spectral_radius(phi)
    if not np.isfinite(rho) or rho <= max_root:
        return phi, False
    lam = max_root / rho
    return phi * lam ** np.arange(1, phi.size + 1), True


def _ar_recursion(last: np.ndarray, phi: np.ndarray, horizon: int) -> np.ndarray:
    """Residual forecasts ``(horizon,)`` from ``last = [e[t-p+1], ..., e[t]]`` and ``phi`` (lag 1 first)."""
    p = phi.size
    if p == 0:
        return np.zeros(horizon)
    hist = np.concatenate([np.asarray(last, dtype=np.float64)[-p:], np.zeros(horizon)])
    rev = phi[::-1]
    for h in range(horizon):
        hist[p + h] = float(np.dot(rev, hist[h : p + h]))
    return hist[p:]


def _robust_scale(r: np.ndarray) -> float:
    """1.4826 x median absolute residual of ``r (n,)`` (the MAD about zero, as statsmodels' RLM)."""
    return MAD_TO_SD * float(np.median(np.abs(r)))


def _weighted_ridge(X: np.ndarray, v: np.ndarray, w: np.ndarray | None, pen: np.ndarray | None) -> np.ndarray:
    """Solve ``min sum w (v - X b)^2 + b' diag(pen) b``; ``X (n, k)``, ``pen (k,)`` or None."""
    if pen is None and w is None:
        return np.linalg.lstsq(X, v, rcond=None)[0]
    Xw = X if w is None else X * w[:, None]
    A = Xw.T @ X
    if pen is not None:
        A[np.diag_indices_from(A)] += pen
    try:
        return np.linalg.solve(A, Xw.T @ v)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(A, Xw.T @ v, rcond=None)[0]


def _harmonic_robust_fit(
    X: np.ndarray, v: np.ndarray, ridge: float, huber_c: float | None, huber_iter: int
) -> tuple[np.ndarray, float]:
    """Coefficients ``(k,)`` of the ridge / Huber-IRLS harmonic fit and the robust residual scale."""
    k = X.shape[1]
    pen = None
    if ridge > 0 and k > 1:
        pen = np.full(k, ridge * X.shape[0])
        pen[0] = 0.0
    beta = _weighted_ridge(X, v, None, pen)
    scale = float("nan")
    if huber_c is None:
        return beta, scale
    for _ in range(int(huber_iter)):
        r = v - X @ beta
        scale = _robust_scale(r)
        if not scale > 0:
            break
        a = np.abs(r)
        w = np.where(a > huber_c * scale, huber_c * scale / np.maximum(a, 1e-300), 1.0)
        beta = _weighted_ridge(X, v, w, pen)
    scale = _robust_scale(v - X @ beta)
    return beta, scale


def _fit_origin(
    yw: np.ndarray,
    okw: np.ndarray,
    X_w: np.ndarray,
    X_f: np.ndarray,
    n_cols_for: list[int],
    periods_sorted: tuple[float, ...],
    step: float,
    p_ar: int,
    horizon: int,
    min_finite: float,
    opts: dict[str, Any],
) -> tuple[np.ndarray | None, int]:
    """Forecast ``(horizon,)`` for one window (None when it cannot be fitted) and status bits."""
    status = 0
    n_ok = int(okw.sum())
    if n_ok < min_finite or n_ok == 0:
        return None, status
    p_ar = min(p_ar, effective_ar_order(n_ok, p_ar))  # a window with gaps: fewer lags
    if p_ar and not okw[-p_ar:].all():
        return None, status
    idx = np.flatnonzero(okw)
    span = (idx[-1] - idx[0] + 1) * step
    kept = resolvable_periods(periods_sorted, span, n_ok)
    k = len(kept)
    if k < len(periods_sorted):
        status |= FIT_TERMS_DROPPED
    n_cols = n_cols_for[k]
    Xw = X_w[:, :n_cols]
    Xo, vo = Xw[okw], yw[okw]
    huber_c = opts["huber_c"]
    beta, scale = _harmonic_robust_fit(Xo, vo, opts["ridge"], huber_c, opts["huber_iter"])
    harm_future = X_f[:, :n_cols] @ beta
    if p_ar == 0:
        return harm_future, status
    resid = yw - Xw @ beta  # NaN where y is missing
    if huber_c is not None and scale > 0:
        bound = huber_c * scale
        resid = np.clip(resid, -bound, bound)  # NaN stays NaN
    lags, target = _ar_rows(resid, p_ar)
    if target.size < p_ar + 1:
        return None, status
    ridge_ar = opts["ridge_ar"]
    pen = None
    if ridge_ar > 0:
        tr = float(np.einsum("ij,ij->", lags, lags)) / p_ar
        pen = np.full(p_ar, ridge_ar * tr) if tr > 0 else None
    phi = _weighted_ridge(lags, target, None, pen)
    if not np.isfinite(phi).all():
        return None, status
    if opts["max_root"] is not None:
        phi, shrunk = shrink_ar(phi, float(opts["max_root"]))
        if shrunk:
            status |= FIT_SHRUNK
    return harm_future + _ar_recursion(resid[-p_ar:], phi, horizon), status


def harmonic_ar_diagnose(
    y: np.ndarray,
    origins: np.ndarray,
    horizon: int,
    step_hours: float,
    *,
    n_fit: int = 336,
    p_ar: int = 2,
    tides: bool = False,
    annual: bool = True,
    weekly: bool = False,
    ridge: float = ROBUST["ridge"],
    ridge_ar: float = ROBUST["ridge_ar"],
    huber_c: float | None = ROBUST["huber_c"],
    huber_iter: int = ROBUST["huber_iter"],
    max_root: float | None = ROBUST["max_root"],
    envelope: float | None = ROBUST["envelope"],
    fallback_period: int | None = None,
    min_fraction: float = ROBUST["min_fraction"],
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`harmonic_ar_forecast` ``(n_origins, horizon)`` and per-origin status bits
    ``(n_origins,)`` int (:data:`FIT_SHRUNK`, :data:`FIT_CLIPPED`, :data:`FIT_FALLBACK`,
    :data:`FIT_NAN`, :data:`FIT_TERMS_DROPPED`); same arguments."""
    y, o = check_series_origins(y, origins, horizon)
    horizon, n_fit, p_ar = int(horizon), int(n_fit), int(p_ar)
    step = float(step_hours)
    if not np.isfinite(step) or step <= 0:
        raise ValueError(f"step_hours must be > 0, got {step_hours}")
    if p_ar < 0:
        raise ValueError(f"p_ar must be >= 0, got {p_ar}")
    if n_fit < 1:
        raise ValueError(f"n_fit must be >= 1, got {n_fit}")
    if ridge < 0 or ridge_ar < 0:
        raise ValueError("ridge penalties must be >= 0")
    if huber_c is not None and not huber_c > 0:
        raise ValueError(f"huber_c must be > 0 or None, got {huber_c}")
    if max_root is not None and not 0 < max_root <= 1:
        raise ValueError(f"max_root must lie in (0, 1] or be None, got {max_root}")
    if envelope is not None and envelope < 0:
        raise ValueError(f"envelope must be >= 0 or None, got {envelope}")
    p_eff = effective_ar_order(n_fit, p_ar)
    # ascending, so that dropping the longest periods keeps a prefix of the design's columns
    periods = tuple(sorted(harmonic_periods(tides, step_hours=step, annual=annual, weekly=weekly)))
    n_cols_for = [1 + 2 * k for k in range(len(periods) + 1)]
    min_finite = float(min_fraction) * n_fit
    n_total = y.size + horizon
    X_all = harmonic_design(np.arange(n_total) * step, periods)  # (N + H, 1 + 2K), ascending periods
    finite = np.isfinite(y)
    opts = dict(ridge=float(ridge), ridge_ar=float(ridge_ar), huber_c=None if huber_c is None else float(huber_c),
                huber_iter=int(huber_iter), max_root=max_root)
    out = np.full((o.size, horizon), np.nan)
    status = np.zeros(o.size, dtype=np.int64)
    for i, t in enumerate(o):
        t = int(t)
        lo = max(0, t - n_fit + 1)
        yw, okw = y[lo : t + 1], finite[lo : t + 1]
        f, st = _fit_origin(yw, okw, X_all[lo : t + 1], X_all[t + 1 : t + 1 + horizon], n_cols_for, periods, step,
                            p_eff, horizon, min_finite, opts)
        if f is not None and envelope is not None and np.isfinite(f).all():
            vals = yw[okw]
            top, bot = float(vals.max()), float(vals.min())
            margin = float(envelope) * (top - bot)
            clipped = np.clip(f, bot - margin, top + margin)
            if np.any(clipped != f):
                st |= FIT_CLIPPED
            f = clipped
        if f is not None:
            out[i] = f
        status[i] = st
    bad = ~np.isfinite(out).all(axis=1)
    if fallback_period is not None and bad.any():
        sn = seasonal_naive_forecast(y, o[bad], horizon, int(fallback_period))
        out[bad] = np.where(np.isfinite(sn), sn, y[o[bad]][:, None])  # missing sources: the last value
        status[bad] |= FIT_FALLBACK
    status[~np.isfinite(out).all(axis=1)] |= FIT_NAN
    return out, status


def harmonic_ar_forecast(
    y: np.ndarray,
    origins: np.ndarray,
    horizon: int,
    step_hours: float,
    **settings: Any,
) -> np.ndarray:
    """Harmonic + AR forecasts ``(n_origins, horizon)`` in the units of ``y (N,)``.

    For each origin ``t`` the model is refitted on ``y[max(0, t - n_fit + 1) .. t]`` (``n_fit``
    in steps; see the module docstring); time is ``position * step_hours`` hours. Periods:
    :func:`harmonic_periods` (``tides`` on sub-daily grids, ``annual`` / ``weekly`` on daily or
    coarser ones), dropped per origin when the window cannot resolve them; ``p_ar`` is lowered to
    :func:`effective_ar_order`. Never raises for a short window.

    A row has no fit when the window has fewer than ``min_fraction * n_fit`` finite values, any
    of the last ``p_ar`` values is NaN, or fewer than ``p_ar + 1`` complete AR rows remain; it is then the
    seasonal naive forecast with ``fallback_period`` (steps) when given (missing source values:
    the value at the origin), else NaN. Robustness:
    ``ridge``, ``ridge_ar``, ``huber_c`` / ``huber_iter``, ``max_root``, ``envelope`` (module
    docstring; defaults :data:`ROBUST`, all off with :data:`PLAIN`). ``p_ar = 0`` gives the pure
    harmonic forecast. Row ``i`` uses ``y[<= origins[i]]`` only. ``settings`` are the keyword
    arguments of :func:`harmonic_ar_diagnose` (``n_fit``, ``p_ar``, ``tides``, ...), with its defaults.
    """
    return harmonic_ar_diagnose(y, origins, horizon, step_hours, **settings)[0]
