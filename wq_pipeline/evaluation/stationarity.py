"""Stationarity tests: augmented Dickey-Fuller and KPSS (statsmodels), and a joint table.

* ADF: ``adfuller(x, autolag="AIC", regression="c")``; H0 = unit root. Rejecting H0 at
  ``alpha`` -> "stationary".
* KPSS: ``kpss(x, regression="c", nlags="auto")``; H0 = level stationarity. Rejecting H0 ->
  "non-stationary". KPSS p-values come from a table covering [0.01, 0.1]; outside it
  statsmodels returns the bound and warns. The warning is suppressed and recorded in
  ``pvalue_note`` ("p-value >= 0.1" or "p-value <= 0.01"); at the upper bound H0 is never
  rejected, at the lower bound it is always rejected.

NaNs are dropped before testing (their count is reported as ``n_nan_dropped``); the tests then
run on the remaining values as if contiguous. A constant series (after dropping NaNs) is not
tested: verdict "constant", statistic/p-value NaN, ``stationary`` True.

Joint verdict (standard four-case reading of ADF + KPSS):

=================  ==================  ====================================
ADF rejects H0     KPSS rejects H0     ``joint_verdict``
=================  ==================  ====================================
yes                no                  "stationary"
no                 yes                 "non-stationary"
yes                yes                 "inconclusive" (e.g. difference-stationary
                                        or heteroscedastic: the tests disagree)
no                 no                  "inconclusive (too little evidence)"
=================  ==================  ====================================
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["adf_test", "kpss_test", "stationarity_table", "joint_verdict", "MIN_OBS"]

MIN_OBS = 10

_COLUMNS = [
    "test",
    "statistic",
    "pvalue",
    "pvalue_note",
    "lags",
    "nobs",
    "n_nan_dropped",
    "crit_1pct",
    "crit_5pct",
    "crit_10pct",
    "stationary",
    "verdict",
]


def _prepare(x: np.ndarray, alpha: float) -> tuple[np.ndarray, int]:
    if not 0 < float(alpha) < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    a = np.asarray(x, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"series must be 1-D (N,), got shape {a.shape}")
    if np.isinf(a).any():
        raise ValueError("series contains infinite values")
    nan = np.isnan(a)
    a = a[~nan]
    if a.size < MIN_OBS:
        raise ValueError(f"need at least {MIN_OBS} non-NaN values for a stationarity test, got {a.size}")
    return a, int(nan.sum())


def _constant_result(test: str, n: int, n_nan: int) -> dict[str, Any]:
    return {
        "test": test,
        "statistic": float("nan"),
        "pvalue": float("nan"),
        "pvalue_note": "",
        "lags": 0,
        "nobs": n,
        "n_nan_dropped": n_nan,
        "crit_1pct": float("nan"),
        "crit_5pct": float("nan"),
        "crit_10pct": float("nan"),
        "stationary": True,
        "verdict": "constant",
    }


def adf_test(x: np.ndarray, *, alpha: float = 0.05) -> dict[str, Any]:
    """Augmented Dickey-Fuller test of a series (N,) (NaNs dropped; constant level, AIC lags).

    Returns a dict: test="ADF", statistic, pvalue, pvalue_note (""), lags (used lag order),
    nobs (observations in the regression), n_nan_dropped, crit_1pct/5pct/10pct,
    stationary (unit root rejected at ``alpha``), verdict ("stationary" / "non-stationary" /
    "constant").
    """
    from statsmodels.tsa.stattools import adfuller

    a, n_nan = _prepare(x, alpha)
    if np.ptp(a) == 0:
        return _constant_result("ADF", a.size, n_nan)
    stat, pvalue, lags, nobs, crit, _ = adfuller(a, autolag="AIC", regression="c")
    stationary = bool(pvalue < alpha)
    return {
        "test": "ADF",
        "statistic": float(stat),
        "pvalue": float(pvalue),
        "pvalue_note": "",
        "lags": int(lags),
        "nobs": int(nobs),
        "n_nan_dropped": n_nan,
        "crit_1pct": float(crit["1%"]),
        "crit_5pct": float(crit["5%"]),
        "crit_10pct": float(crit["10%"]),
        "stationary": stationary,
        "verdict": "stationary" if stationary else "non-stationary",
    }


def kpss_test(x: np.ndarray, *, alpha: float = 0.05) -> dict[str, Any]:
    """KPSS level-stationarity test of a series (N,) (NaNs dropped; ``nlags="auto"``).

    Returns the same keys as :func:`adf_test` with test="KPSS"; ``pvalue_note`` is
    "p-value >= 0.1" / "p-value <= 0.01" when the p-value is at the edge of statsmodels'
    table (the true p-value lies beyond it), else "". ``stationary`` is True when H0
    (stationarity) is not rejected at ``alpha``.
    """
    from statsmodels.tools.sm_exceptions import InterpolationWarning
    from statsmodels.tsa.stattools import kpss

    a, n_nan = _prepare(x, alpha)
    if np.ptp(a) == 0:
        return _constant_result("KPSS", a.size, n_nan)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InterpolationWarning)
        stat, pvalue, lags, crit = kpss(a, regression="c", nlags="auto")
    note = ""
    for w in caught:
        if issubclass(w.category, InterpolationWarning):
            msg = str(w.message)
            if "greater than" in msg:
                note = f"p-value >= {pvalue:g}"
            elif "smaller than" in msg:
                note = f"p-value <= {pvalue:g}"
        else:  # pass other warnings on unchanged
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if note.startswith("p-value >="):
        rejected = False
    elif note.startswith("p-value <="):
        rejected = True
    else:
        rejected = bool(pvalue < alpha)
    return {
        "test": "KPSS",
        "statistic": float(stat),
        "pvalue": float(pvalue),
        "pvalue_note": note,
        "lags": int(lags),
        "nobs": int(a.size),
        "n_nan_dropped": n_nan,
        "crit_1pct": float(crit["1%"]),
        "crit_5pct": float(crit["5%"]),
        "crit_10pct": float(crit["10%"]),
        "stationary": not rejected,
        "verdict": "non-stationary" if rejected else "stationary",
    }


def joint_verdict(adf: dict[str, Any], kpss_res: dict[str, Any]) -> str:
    """Combine an ADF and a KPSS result with the four-case table in the module docstring."""
    if adf["verdict"] == "constant" or kpss_res["verdict"] == "constant":
        return "constant"
    adf_rejects = bool(adf["stationary"])  # ADF H0: unit root
    kpss_rejects = not bool(kpss_res["stationary"])  # KPSS H0: stationary
    if adf_rejects and not kpss_rejects:
        return "stationary"
    if kpss_rejects and not adf_rejects:
        return "non-stationary"
    if adf_rejects and kpss_rejects:
        return "inconclusive"
    return "inconclusive (too little evidence)"


def stationarity_table(series: dict[str, np.ndarray], *, alpha: float = 0.05) -> pd.DataFrame:
    """ADF and KPSS for each named series (N,): one row per (series, test), in input order.

    Columns: series, test, statistic, pvalue, pvalue_note, lags, nobs, n_nan_dropped,
    crit_1pct, crit_5pct, crit_10pct, stationary, verdict, joint_verdict (same on both rows of
    a series).
    """
    rows: list[dict[str, Any]] = []
    for name, x in series.items():
        adf = adf_test(x, alpha=alpha)
        kp = kpss_test(x, alpha=alpha)
        joint = joint_verdict(adf, kp)
        for res in (adf, kp):
            rows.append({"series": str(name), **res, "joint_verdict": joint})
    return pd.DataFrame(rows, columns=["series", *_COLUMNS, "joint_verdict"])
