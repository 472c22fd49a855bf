"""What the report's charts and tables show, computed from the files of a run.

Every function here is pure: it takes the parsed run files (``metrics.json`` as a dict, the CSVs
as DataFrames) and returns plain numbers, lists and dicts. Nothing here knows about HTML; the
template (``templates/report.html.j2``) lays the results out and ``static/report.js`` draws the
chart specs with uPlot.

A *chart spec* is a dict::

    {"id": str, "kind": "time" | "num" | "cat", "x": [...], "ys": [[...], ...],
     "series": [{"label", "color", "width", "dash", "points", "line", "bars", "show"}],
     "ylabel": str, "xlabel": str, "height": int, "group": str | None,
     "bands": [{"from", "to", "label", "color"}], "logx": bool, "logy": bool, "cats": [str]}

Time axes carry *wall-clock* seconds: the station's own clock (its fixed UTC offset, as written
in the run files) shifted so that the browser can show it as UTC whatever its own time zone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

MODEL_ORDER = ("persistence", "seasonal_naive", "level_adjusted_seasonal_naive", "climatology", "arima", "harmonic_ar",
               "lstm", "decomp_lstm", "decomp_feca_lstm", "hybrid_feca_lstm", "ensemble")
BASELINES = ("persistence", "seasonal_naive", "level_adjusted_seasonal_naive", "climatology", "arima", "harmonic_ar",
             "lstm")
MODEL_LABELS = {
    "persistence": "persistence",
    "seasonal_naive": "seasonal naive",
    "level_adjusted_seasonal_naive": "level-adjusted seasonal naive",
    "climatology": "time-of-day climatology",
    "arima": "ARIMA",
    "harmonic_ar": "harmonic + AR",
    "lstm": "LSTM (raw series)",
    "decomp_lstm": "decomposition + LSTM (no FECA)",
    "decomp_feca_lstm": "decomposition + FECA-LSTM",
    "hybrid_feca_lstm": "hybrid: harmonic + AR, corrected by a FECA-LSTM",
    "ensemble": "ensemble: every model weighted by its recent errors",
}
MODEL_SHORT = {"persistence": "persistence", "seasonal_naive": "seasonal naive",
               "level_adjusted_seasonal_naive": "level-adj. seas. naive", "climatology": "climatology", "arima": "ARIMA",
               "harmonic_ar": "harmonic + AR", "lstm": "LSTM", "decomp_lstm": "decomp. LSTM",
               "decomp_feca_lstm": "decomp. FECA-LSTM", "hybrid_feca_lstm": "hybrid FECA-LSTM",
               "ensemble": "ensemble"}
# Okabe-Ito: distinguishable with the common colour-vision deficiencies, and in grey print
MODEL_COLORS = {
    "observed": "#000000",
    "persistence": "#8c8c8c",
    "seasonal_naive": "#E69F00",
    "level_adjusted_seasonal_naive": "#b8860b",
    "climatology": "#8c6d31",
    "arima": "#56B4E9",
    "harmonic_ar": "#0072B2",
    "lstm": "#009E73",
    "decomp_lstm": "#CC79A7",
    "decomp_feca_lstm": "#D55E00",
    "hybrid_feca_lstm": "#882255",  # Tol wine: saturated enough to read as colour on a white canvas
    "ensemble": "#5E2CA5",  # saturated violet: apart from the wine, the reddish purple and the blues
}
OTHERS_COLOR = "#9a9a9a"  # members grouped as "others" in the ensemble's weight charts
SERIES_COLOR = "#1f3b73"  # the undecomposed series in decomposition charts
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8c6d31", "#7b4173", "#393b79",
           "#637939")
QC_COLORS = {"value": "#0072B2", "raw": "#9a9a9a", "out_of_range": "#D55E00", "flag_rejected": "#CC0000",
             "flag_suspect": "#CC79A7", "flagged": "#E69F00", "interpolated": "#009E73",
             "spike": "#000000"}  # Okabe-Ito black: apart from every other mark and from the blue series
# metric -> True when larger is better
METRICS = {"rmse": False, "mae": False, "mape": False, "r2": True, "nse": True, "kge": True, "skill": True}
METRIC_LABELS = {"rmse": "RMSE", "mae": "MAE", "mape": "MAPE %", "r2": "R²", "nse": "NSE", "kge": "KGE",
                 "skill": "skill vs persistence"}

FULL_PERIOD_POINTS = 2000  # per series, for plots that span the whole record (min/max decimated)
FORECAST_FULL_RES = 12000  # test-period forecast plot kept at full resolution up to this many points


# --------------------------------------------------------------------------- small helpers


def finite(v: Any) -> bool:
    return isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) and math.isfinite(v)


def num(v: Any) -> float | None:
    """A JSON-safe number: None for missing, NaN or infinite values."""
    return float(v) if finite(v) else None


def sig(values: Iterable[Any], digits: int = 6) -> list[float | None]:
    """Values rounded to ``digits`` significant digits (NaN -> None), to keep embedded data small."""
    out: list[float | None] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        f = float(v)
        out.append(float(f"{f:.{digits}g}") if math.isfinite(f) else None)
    return out


def step_seconds(freq: str | None) -> float | None:
    """Seconds in one grid step (``"1h"`` -> 3600), or None when the alias is unknown."""
    if not freq:
        return None
    try:
        return float(pd.Timedelta(pd.tseries.frequencies.to_offset(freq)).total_seconds())
    except (ValueError, TypeError):
        try:
            return float(pd.Timedelta(freq).total_seconds())
        except (ValueError, TypeError):
            return None


def duration_text(seconds: float | None) -> str:
    """``10800`` -> ``"3 h"``; ``1800`` -> ``"30 min"``; ``172800`` -> ``"2 d"``."""
    if seconds is None or not math.isfinite(seconds):
        return "n/a"
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0)):
        if abs(seconds) >= size:
            v = seconds / size
            return f"{v:.3g} {unit}"
    return f"{seconds:.3g} s"


def time_text(iso: Any) -> str:
    """``"2012-01-01T00:00:00-05:00"`` -> ``"2012-01-01 00:00 UTC−05:00"`` (unparseable: as given)."""
    if not iso:
        return "n/a"
    try:
        t = pd.Timestamp(str(iso))
    except (ValueError, TypeError):
        return str(iso)
    text = t.strftime("%Y-%m-%d %H:%M") + (t.strftime(":%S") if t.second else "")
    if t.tzinfo is not None:
        mins = int((t.utcoffset() or pd.Timedelta(0)).total_seconds() // 60)
        sign = "+" if mins >= 0 else "\u2212"
        text += " UTC" if mins == 0 else f" UTC{sign}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}"
    return text


@dataclass
class TimeAxis:
    """Parsed timestamps as wall-clock epoch seconds plus a label for the clock they are on."""

    seconds: np.ndarray  # int64
    label: str


def parse_times(values: Sequence[str] | pd.Series) -> TimeAxis:
    """ISO 8601 strings -> wall-clock seconds (the station's clock, shown as-is by the charts)."""
    s = pd.Series([str(v) for v in values], dtype=object)
    if s.empty:
        return TimeAxis(np.zeros(0, dtype=np.int64), "time")
    try:
        t = pd.to_datetime(s, format="ISO8601")
    except (ValueError, TypeError):
        t = pd.to_datetime(s, format="ISO8601", utc=True)
    if not isinstance(t.dtype, pd.DatetimeTZDtype) and t.dtype == object:  # mixed offsets
        t = pd.to_datetime(s, format="ISO8601", utc=True)
    if isinstance(t.dtype, pd.DatetimeTZDtype):
        off = t.iloc[0].utcoffset() or pd.Timedelta(0)
        mins = int(off.total_seconds() // 60)
        sign = "+" if mins >= 0 else "\u2212"
        label = "time (UTC)" if mins == 0 else f"time (UTC{sign}{abs(mins) // 60:02d}:{abs(mins) % 60:02d})"
        t = t.dt.tz_localize(None)
    else:
        label = "time (as in the data, no UTC offset)"
    secs = ((t - pd.Timestamp(0)) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)
    return TimeAxis(secs, label)


# --------------------------------------------------------------------------- decimation


def minmax_indices(y: np.ndarray, max_points: int = FULL_PERIOD_POINTS, keep_gaps: bool = True) -> np.ndarray:
    """Indices of ``y`` to keep so that a line through them looks like the full series.

    Splits ``y`` into ``max_points // 2`` equal buckets and keeps each bucket's minimum and maximum
    (so spikes survive), the first and last point, and (``keep_gaps``) the first missing value of
    every bucket that has one, so gaps still break the line. Returns sorted unique indices; all
    indices when ``y`` is short enough.
    """
    y = np.asarray(y, dtype=float)
    n = y.size
    if n <= max_points:
        return np.arange(n)
    nb = max(1, max_points // 2)
    edges = np.linspace(0, n, nb + 1).astype(int)
    ok = np.isfinite(y)
    keep = [0, n - 1]
    for a, b in zip(edges[:-1], edges[1:]):
        if b <= a:
            continue
        f = ok[a:b]
        if f.any():
            idx = np.flatnonzero(f)
            seg = y[a:b][idx]
            keep.append(a + idx[int(np.argmin(seg))])
            keep.append(a + idx[int(np.argmax(seg))])
        if keep_gaps and not f.all():
            keep.append(a + int(np.flatnonzero(~f)[0]))
    return np.unique(np.asarray(keep, dtype=np.int64))


def decimate_aligned(lines: Sequence[np.ndarray], markers: Sequence[np.ndarray] = (),
                     max_points: int = FULL_PERIOD_POINTS) -> np.ndarray:
    """Common indices for series drawn on one x axis: the union of every line's min/max indices and
    every marker series' (NaN where no marker) min/max indices among its markers."""
    keep = [minmax_indices(y, max_points) for y in lines]
    for m in markers:
        m = np.asarray(m, dtype=float)
        at = np.flatnonzero(np.isfinite(m))
        if at.size:
            keep.append(at[minmax_indices(m[at], max_points, keep_gaps=False)])
    if not keep:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(keep))


def gap_broken(seconds: np.ndarray, idx: np.ndarray, arrs: Sequence[np.ndarray]) -> tuple[list[int], list[np.ndarray]]:
    """The chart's x (``seconds`` at ``idx``) and ``arrs`` at ``idx``, with a NaN point inserted in
    every gap of the full series wider than three median steps (no forecasts there), so lines
    break instead of bridging it. Both sides of every gap are kept."""
    seconds = np.asarray(seconds, dtype=np.int64)
    d = np.diff(seconds)
    if d.size < 2:
        return seconds[idx].tolist(), [np.asarray(a, float)[idx] for a in arrs]
    gaps = np.flatnonzero(d > 3 * max(float(np.median(d)), 1.0))
    idx = np.union1d(np.union1d(idx, gaps), gaps + 1).astype(np.int64)
    x = seconds[idx].astype(float)
    ys = [np.asarray(a, float)[idx] for a in arrs]
    at = np.flatnonzero(np.isin(idx[:-1], gaps) & (idx[1:] == idx[:-1] + 1)) + 1  # insert before these
    if at.size:
        x = np.insert(x, at, (x[at - 1] + x[at]) / 2)
        ys = [np.insert(y, at, np.nan) for y in ys]
    return [int(v) for v in x], ys


# --------------------------------------------------------------------------- chart spec


def chart(id: str, kind: str, x: Sequence[Any], series: list[dict[str, Any]], ys: list[Sequence[Any]],
          **opts: Any) -> dict[str, Any]:
    """A chart spec (see the module docstring)."""
    base = {"id": id, "kind": kind, "x": list(x), "series": series, "ys": [sig(y) for y in ys],
            "ylabel": "", "xlabel": "", "height": 260, "group": None, "bands": [], "logx": False,
            "logy": False, "cats": [], "xint": False, "hidex": False, "legend": True}
    base.update(opts)
    return base


def line(label: str, color: str, width: float = 1.25, dash: list[int] | None = None,
         show: bool = True) -> dict[str, Any]:
    return {"label": label, "color": color, "width": width, "dash": dash, "points": False, "line": True,
            "bars": None, "show": show}


def marker(label: str, color: str, size: float = 6) -> dict[str, Any]:
    return {"label": label, "color": color, "width": size, "dash": None, "points": True, "line": False,
            "bars": None, "show": True}


def bars(label: str, color: str, size: float = 0.8, align: int = 0) -> dict[str, Any]:
    return {"label": label, "color": color, "width": 1, "dash": None, "points": False, "line": False,
            "bars": {"size": size, "align": align}, "show": True}


def main_model(metrics: dict[str, Any]) -> str:
    """The run's main model (runs from before ``main_model`` was recorded: the per-component model)."""
    return str(metrics.get("main_model") or "decomp_feca_lstm")


def model_names(metrics: dict[str, Any]) -> list[str]:
    """The run's models (``metrics['models']``) in display order: known models first, in
    :data:`MODEL_ORDER`, then any other in the order of the file."""
    models = metrics.get("models") or {}
    return [m for m in MODEL_ORDER if m in models] + [m for m in models if m not in MODEL_ORDER]


def model_label(name: str, main: str | None = None) -> str:
    """A model's label; the main model's says so."""
    label = MODEL_LABELS.get(name, name)
    return f"{label} (main model)" if name == main else label


def model_color(name: str) -> str:
    return MODEL_COLORS.get(name, "#444444")


VAL_BAND = "rgba(230,159,0,0.10)"
TEST_BANDS = ("rgba(0,114,178,0.08)", "rgba(0,114,178,0.16)")  # alternating, so adjacent folds read apart


def fold_periods(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Every fold's ``{"fold", "val_start", "test_start", "test_end"}`` (ISO strings); runs from
    before folds existed give one fold from ``metrics['periods']``."""
    out = []
    for f in metrics.get("folds") or []:
        p = f.get("periods") or {}
        if all(p.get(k) for k in ("val_start", "test_start", "test_end")):
            out.append({"fold": f.get("fold"), "val_start": p["val_start"], "test_start": p["test_start"],
                        "test_end": p["test_end"]})
    if out:
        return out
    p = metrics.get("periods") or {}
    if all(p.get(k) for k in ("val_start", "test_start", "end")):
        return [{"fold": 1, "val_start": p["val_start"], "test_start": p["test_start"], "test_end": p["end"]}]
    return []


def period_bands(metrics: dict[str, Any], validation: bool = True) -> list[dict[str, Any]]:
    """Shaded validation and test periods of every fold for time charts (``validation=False``:
    test periods only). A test band reaches one grid step past its last time, so the test
    periods of consecutive folds meet. With several folds the labels carry the fold number;
    a fold's validation period lies inside the previous fold's test period, where the two
    shadings overlap."""
    periods = fold_periods(metrics)
    step = step_seconds(metrics.get("freq")) or 0.0
    several = len(periods) > 1
    bands = []
    for k, p in enumerate(periods):
        t = parse_times([p["val_start"], p["test_start"], p["test_end"]]).seconds
        sfx = f" {p['fold']}" if several else ""
        if validation:
            bands.append({"from": int(t[0]), "to": int(t[1]), "label": "validation" + sfx, "color": VAL_BAND,
                          "fold": p["fold"], "kind": "validation"})
        bands.append({"from": int(t[1]), "to": int(t[2] + step), "label": "test" + sfx,
                      "color": TEST_BANDS[k % 2], "fold": p["fold"], "kind": "test"})
    return bands


# --------------------------------------------------------------------------- 1. summary


def dm_test(e1: np.ndarray, e2: np.ndarray, h: int) -> dict[str, Any]:
    """Diebold-Mariano test of equal squared error for two forecasts ``h`` steps ahead.

    ``d = e1**2 - e2**2``; the variance of its mean uses autocovariances up to lag ``h - 1``
    (errors of overlapping forecasts are correlated), with the Harvey, Leybourne and Newbold (1997)
    small-sample correction and a Student t reference with ``n - 1`` degrees of freedom.
    Negative statistic: the first forecast has the smaller squared error. Returns
    ``{"stat", "pvalue", "n"}`` (None when undefined).
    """
    from scipy import stats

    d = np.asarray(e1, float) ** 2 - np.asarray(e2, float) ** 2
    d = d[np.isfinite(d)]
    n = d.size
    if n < 10:
        return {"stat": None, "pvalue": None, "n": int(n)}
    dc = d - d.mean()
    h = max(1, int(h))
    gamma = [float(dc @ dc) / n] + [float(dc[k:] @ dc[:-k]) / n for k in range(1, min(h, n))]
    var = gamma[0] + 2 * sum(gamma[1:])
    if var <= 0:  # rectangular kernel can go negative: fall back to Bartlett weights
        var = gamma[0] + 2 * sum((1 - k / h) * g for k, g in enumerate(gamma[1:], start=1))
    if var <= 0:
        return {"stat": None, "pvalue": None, "n": int(n)}
    stat = d.mean() / math.sqrt(var / n)
    stat *= math.sqrt(max(n + 1 - 2 * h + h * (h - 1) / n, 1e-12) / n)
    p = 2 * stats.t.sf(abs(stat), df=n - 1)
    return {"stat": float(stat), "pvalue": float(p), "n": int(n)}


def step_h_frame(forecasts: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Forecasts at step H in wide form: one row per target time, ``observed`` plus one column per model."""
    f = forecasts[forecasts["step"] == horizon]
    wide = f.pivot_table(index="target_time", columns="model", values="forecast", aggfunc="first", dropna=False)
    obs = f.groupby("target_time", sort=False)["observed"].first()
    wide.insert(0, "observed", obs.reindex(wide.index))
    order = parse_times(wide.index.to_list()).seconds.argsort(kind="stable")
    return wide.iloc[order]


NOT_BASELINE_NOTES = {
    "decomp_feca_lstm": "the published per-component model, not a baseline",
    "decomp_lstm": "the per-component model without FECA, not a baseline",
    "hybrid_feca_lstm": "harmonic + AR corrected by a network, not a baseline",
}


def headline(metrics: dict[str, Any], forecasts: pd.DataFrame | None) -> dict[str, Any]:
    """Does the main model beat each baseline (and each other model) at step H, by how much, on how many points."""
    models = metrics.get("models") or {}
    main = main_model(metrics)
    H = int(metrics.get("horizon") or 1)
    m = models.get(main, {})
    wide = step_h_frame(forecasts, H) if forecasts is not None and len(forecasts) else None
    common = None
    if wide is not None:  # every model on the same points; a model without any forecast (skipped) left out
        common = np.isfinite(wide["observed"].to_numpy(float))
        for c in model_names(metrics):
            if c in wide and np.isfinite(wide[c].to_numpy(float)).any():
                common &= np.isfinite(wide[c].to_numpy(float))
    rows = []
    for b in model_names(metrics):
        if b == main:
            continue
        mb = models[b]
        r_main, r_b = num(m.get("rmse")), num(mb.get("rmse"))
        diff = r_main - r_b if r_main is not None and r_b is not None else None
        rel = 1 - r_main / r_b if diff is not None and r_b else None
        dm = {"stat": None, "pvalue": None, "n": 0}
        if wide is not None and common is not None and main in wide and b in wide:
            obs = wide["observed"].to_numpy(float)
            dm = dm_test((obs - wide[main].to_numpy(float))[common], (obs - wide[b].to_numpy(float))[common], H)
        beats = diff is not None and diff < 0
        p = dm["pvalue"]
        if diff is None:
            verdict = "n/a"
        elif beats:
            verdict = "beats" if p is not None and p < 0.05 else "lower RMSE, not significant"
        else:
            verdict = "worse" if p is not None and p < 0.05 else "does not beat"
        if b in BASELINES:
            note = ""
        elif b == "decomp_lstm" and main == "decomp_feca_lstm":
            note = "ablation: same model without FECA"
        else:
            note = NOT_BASELINE_NOTES.get(b, "not a baseline")
        rows.append({"model": b, "label": MODEL_LABELS.get(b, b), "rmse": r_b, "rmse_main": r_main,
                     "diff": diff, "rel": rel, "nse": num(mb.get("nse")), "nse_main": num(m.get("nse")),
                     "dm": dm, "beats": beats, "verdict": verdict, "ablation": b not in BASELINES, "note": note})
    core = [r for r in rows if not r["ablation"]]
    n_beaten = sum(1 for r in core if r["beats"])
    n_sig = sum(1 for r in core if r["verdict"] == "beats")
    return {"main": main, "main_label": MODEL_LABELS.get(main, main), "horizon": H,
            "lead": duration_text((step_seconds(metrics.get("freq")) or float("nan")) * H),
            "n_points": m.get("n_points"), "skill": num(m.get("skill")), "rmse": num(m.get("rmse")),
            "nse": num(m.get("nse")), "rows": rows, "n_baselines": len(core), "n_beaten": n_beaten,
            "n_significant": n_sig, "best_baseline": m.get("best_baseline"),
            "mse_skill_best_baseline": num(m.get("mse_skill_best_baseline"))}


def fold_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per fold, then (with several folds) a ``pooled`` row from ``metrics['models']``:
    the fold's test period and origins, the main model's RMSE at step H, that fold's best baseline
    and its RMSE, their ratio and the main model's MSE skill against the best baseline. Empty for
    runs from before folds existed."""
    folds = [f for f in metrics.get("folds") or [] if isinstance(f, dict)]
    if not folds:
        return []
    main = main_model(metrics)

    def row(fold: Any, start: Any, end: Any, n_test: Any, models: dict[str, Any], pooled: bool) -> dict[str, Any]:
        m = models.get(main) or {}
        best = m.get("best_baseline")
        r_main, r_best = num(m.get("rmse")), num((models.get(best) or {}).get("rmse")) if best else None
        ratio = r_main / r_best if r_main is not None and r_best else None
        return {"fold": fold, "pooled": pooled, "test_start": start, "test_end": end, "n_test": n_test,
                "n_points": m.get("n_points"), "rmse_main": r_main, "best_baseline": best,
                "best_label": MODEL_LABELS.get(best, best) if best else None, "rmse_best": r_best, "ratio": ratio,
                "mse_skill": num(m.get("mse_skill_best_baseline")), "beats": ratio is not None and ratio < 1}

    rows = [row(f.get("fold"), (f.get("periods") or {}).get("test_start"), (f.get("periods") or {}).get("test_end"),
                f.get("n_test"), f.get("models") or {}, False) for f in folds]
    if len(folds) > 1:
        rows.append(row("pooled", (folds[0].get("periods") or {}).get("test_start"),
                        (folds[-1].get("periods") or {}).get("test_end"), metrics.get("n_test"),
                        metrics.get("models") or {}, True))
    return rows


# --------------------------------------------------------------------------- 2. data and QC


QC_MARKS = (("out_of_range", "removed: out of physical range"), ("flag_rejected", "removed: QC flag rejected"),
            ("flag_suspect", "removed: QC flag suspect"), ("spike", "removed: spike (causal guard)"))


def qc_chart(series: pd.DataFrame, metrics: dict[str, Any], max_points: int = FULL_PERIOD_POINTS) -> dict[str, Any]:
    """The QC'd series with removed (at their raw value), flagged and interpolated points marked."""
    ax = parse_times(series["time"])
    value = pd.to_numeric(series["value"], errors="coerce").to_numpy(float)
    raw = pd.to_numeric(series["raw"], errors="coerce").to_numpy(float)
    removed = series["removed"].fillna("").astype(str).to_numpy() if "removed" in series else np.full(value.size, "")
    interp = _as_bool(series.get("interpolated"), value.size)
    marks: list[tuple[str, str, np.ndarray]] = []
    for code, label in QC_MARKS:
        marks.append((code, label, np.where(removed == code, raw, np.nan)))
    other = (removed != "") & ~np.isin(removed, [c for c, _ in QC_MARKS])
    if other.any():
        marks.append(("flag_rejected", "removed: other reason", np.where(other, raw, np.nan)))
    if "flagged" in series:  # optional: readings flagged suspect but kept
        fl = _as_flag(series["flagged"], value.size)
        marks.append(("flagged", "flagged, kept", np.where(fl, value, np.nan)))
    marks.append(("interpolated", "interpolated (never scored)", np.where(interp, value, np.nan)))
    marks = [mk for mk in marks if np.isfinite(mk[2]).any()]
    # removed readings can be wild (sentinels such as -99999): draw those outside the range of the
    # QC'd series at its edge so that the series stays readable, and say so in the caption
    clamped, clamp_range = 0, None
    if np.isfinite(value).any():
        lo, hi = float(np.nanmin(value)), float(np.nanmax(value))
        pad = 0.1 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.1
        lo, hi = lo - pad, hi + pad
        clamp_range = (lo, hi)
        for k, (code, label, arr) in enumerate(marks):
            out = np.isfinite(arr) & ((arr < lo) | (arr > hi))
            if out.any():
                clamped += int(out.sum())
                marks[k] = (code, label, np.clip(arr, lo, hi))
        raw = np.where(np.isfinite(raw), np.clip(raw, lo, hi), raw)
    idx = decimate_aligned([value, raw], [mk[2] for mk in marks], max_points)
    unit = metrics.get("unit") or ""
    target = str(metrics.get("target") or "value")
    ser = [line(f"{target} after QC", QC_COLORS["value"]), line("before QC (grid mean)", QC_COLORS["raw"], 1, show=False)]
    ys: list[Any] = [value[idx], raw[idx]]
    for code, label, arr in marks:
        ser.append(marker(label, QC_COLORS[code]))
        ys.append(arr[idx])
    return chart("qc", "time", ax.seconds[idx].tolist(), ser, ys, ylabel=_ylabel(target, unit), xlabel=ax.label,
                 height=300, bands=period_bands(metrics), n_source=int(value.size), n_clamped=clamped,
                 clamp_range=sig(clamp_range, 4) if clamp_range else None)


def _as_bool(col: pd.Series | None, n: int) -> np.ndarray:
    if col is None:
        return np.zeros(n, dtype=bool)
    if col.dtype == bool:
        return col.to_numpy()
    return col.astype(str).str.lower().isin(["true", "1", "yes"]).to_numpy()


def _as_flag(col: pd.Series, n: int) -> np.ndarray:
    if col.dtype == bool:
        return col.to_numpy()
    s = col.fillna("").astype(str).str.strip().str.lower()
    return ~s.isin(["", "false", "0", "nan", "none"]).to_numpy()


def _ylabel(target: str, unit: str) -> str:
    return f"{target} ({unit})" if unit else target


def qc_table(qc: dict[str, Any]) -> list[tuple[str, Any]]:
    """QC counts as (label, value) rows, in pipeline order; unknown keys are kept at the end."""
    labels = [
        ("read_as", "file read as"), ("timestamps", "timestamps"),
        ("rows_read", "rows read"), ("rows_site", "rows of this site"),
        ("time_dropped", "rows dropped: local time skipped or unplaceable at a daylight-saving change"),
        ("duplicates_exact", "exact duplicate rows dropped"),
        ("duplicates_conflicting", "rows sharing a timestamp with different values (last kept)"),
        ("flagged_rejected", "readings removed by QC flag (rejected)"),
        ("flagged_missing", "readings flagged missing / not collected"),
        ("flagged_suspect", "readings flagged suspect"), ("out_of_range", "readings outside the physical range"),
        ("spike_guarded", "readings removed by the causal spike guard"),
        ("rows_beyond_grid", "rows beyond the grid"), ("native_step", "native time step"), ("freq", "grid step"),
        ("grid_points", "grid points"), ("observed", "observed grid points"),
        ("interpolated", "interpolated grid points (short gaps)"), ("missing", "missing grid points (long gaps)"),
        ("longest_gap_steps", "longest gap (grid steps)"),
    ]
    seen = set()
    rows = []
    for key, label in labels:
        if key in qc:
            rows.append((label, qc[key]))
            seen.add(key)
    for key, v in qc.items():
        if key not in seen and key != "rules" and not isinstance(v, (list, dict)):
            rows.append((key.replace("_", " "), v))
    return rows


# --------------------------------------------------------------------------- 3. stationarity


def stationarity_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per series with its ADF and KPSS results side by side."""
    rows = []
    if table is None or table.empty:
        return rows
    t = table.copy()
    t["test_l"] = t["test"].astype(str).str.lower()
    for name in dict.fromkeys(t["series"].astype(str)):
        sub = t[t["series"].astype(str) == name]
        row: dict[str, Any] = {"series": name, "joint": ""}
        for test in ("adf", "kpss"):
            r = sub[sub["test_l"] == test]
            if r.empty:
                row[test] = None
                continue
            r = r.iloc[0]
            row[test] = {"stat": num(_f(r.get("statistic"))), "p": num(_f(r.get("pvalue"))),
                         "note": _s(r.get("pvalue_note")), "lags": _s(r.get("lags")),
                         "crit5": num(_f(r.get("crit_5pct"))), "verdict": _s(r.get("verdict"))}
            row["joint"] = row["joint"] or _s(r.get("joint_verdict"))
        rows.append(row)
    return rows


def _f(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _s(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


# --------------------------------------------------------------------------- 4. decomposition


def component_columns(components: pd.DataFrame) -> list[str]:
    return [c for c in components.columns if c not in ("time", "raw")]


def decomposition_charts(components: pd.DataFrame, metrics: dict[str, Any],
                         max_points: int = FULL_PERIOD_POINTS) -> list[dict[str, Any]]:
    """The series and each component, one chart each, on one shared (synchronised) time axis."""
    ax = parse_times(components["time"])
    unit = metrics.get("unit") or ""
    out = []
    for i, col in enumerate(["raw", *component_columns(components)]):
        y = pd.to_numeric(components[col], errors="coerce").to_numpy(float)
        idx = minmax_indices(y, max_points)
        color = SERIES_COLOR if col == "raw" else PALETTE[(i - 1) % len(PALETTE)]
        label = "series (training period)" if col == "raw" else col
        out.append(chart(f"decomp-{i}", "time", ax.seconds[idx].tolist(), [line(label, color)], [y[idx]],
                         ylabel=unit, xlabel=ax.label if i == len(components.columns) - 2 else "",
                         hidex=i != len(components.columns) - 2,
                         height=(150 if col != "raw" else 180) - (0 if i == len(components.columns) - 2 else 30),
                         group="decomp", title=label,
                         n_source=int(y.size)))
    return out


def spectra(components: pd.DataFrame, freq: str | None, n_bins: int = 240) -> dict[str, Any]:
    """Power spectra (periodogram, log-binned) of the series and each component, their centre and
    peak frequencies, variance shares and how exactly the components add back to the series."""
    dt = step_seconds(freq) or 1.0
    per_day = 86400.0 / dt  # grid steps per day
    cols = component_columns(components)
    raw = pd.to_numeric(components["raw"], errors="coerce").to_numpy(float)
    comp = {c: pd.to_numeric(components[c], errors="coerce").to_numpy(float) for c in cols}
    n = raw.size
    f = np.fft.rfftfreq(n, d=1.0 / per_day) if n > 1 else np.zeros(0)  # cycles per day
    pos = f > 0
    total_var = float(np.nansum([np.nanvar(v) for v in comp.values()])) or float("nan")
    raw_var = float(np.nanvar(raw)) if n else float("nan")
    rows, powers = [], {}
    for name, y in [("raw", raw), *comp.items()]:
        yy = np.nan_to_num(y - np.nanmean(y)) if n else y
        p = np.abs(np.fft.rfft(yy)) ** 2 / max(n, 1)
        powers[name] = p
        pp, fp = p[pos], f[pos]
        centre = float((fp * pp).sum() / pp.sum()) if pp.size and pp.sum() > 0 else None
        peak = float(fp[int(np.argmax(pp))]) if pp.size and pp.max() > 0 else None
        var = float(np.nanvar(y)) if n else float("nan")
        rows.append({"name": name, "centre_cpd": centre, "peak_cpd": peak,
                     "centre_period": duration_text(86400.0 / centre) if centre else "n/a",
                     "peak_period": duration_text(86400.0 / peak) if peak else "n/a",
                     "variance": num(var),
                     "share": num(var / total_var) if name != "raw" else None,
                     "ratio_raw": num(var / raw_var) if raw_var > 0 else None})
    # log-binned spectra, shared x for every series
    spec = None
    if pos.sum() >= 4:
        fp = f[pos]
        edges = np.geomspace(fp[0], fp[-1] * (1 + 1e-9), n_bins + 1)
        which = np.clip(np.searchsorted(edges, fp, side="right") - 1, 0, n_bins - 1)
        counts = np.bincount(which, minlength=n_bins)
        used = counts > 0
        centres = np.sqrt(edges[:-1] * edges[1:])[used]
        ser, ys = [], []
        for i, (name, p) in enumerate(powers.items()):
            mean = np.bincount(which, weights=p[pos], minlength=n_bins)[used] / counts[used]
            mean = np.where(mean > 0, mean, np.nan)
            color = SERIES_COLOR if name == "raw" else PALETTE[(i - 1) % len(PALETTE)]
            ser.append(line(name if name != "raw" else "series", color, 1.75 if name != "raw" else 1,
                            dash=[4, 3] if name == "raw" else None))
            ys.append(mean)
        spec = chart("spectrum", "num", sig(centres, 5), ser, ys, logx=True, logy=True, height=300,
                     xlabel="frequency (cycles per day)", ylabel="power")
    total = np.sum(list(comp.values()), axis=0) if comp else np.zeros_like(raw)
    err = np.abs(raw - total)
    max_err = float(np.nanmax(err)) if err.size and np.isfinite(err).any() else None
    scale = float(np.nanmax(np.abs(raw))) if n else None
    return {"rows": rows, "chart": spec, "max_abs_error": max_err,
            "rel_error": (max_err / scale) if max_err is not None and scale else None,
            "n": int(n), "start": str(components["time"].iloc[0]) if n else "",
            "end": str(components["time"].iloc[-1]) if n else ""}


# --------------------------------------------------------------------------- 5. forecasts


def forecast_chart(forecasts: pd.DataFrame, metrics: dict[str, Any],
                   full_res: int = FORECAST_FULL_RES) -> dict[str, Any]:
    """Observed against every model's forecast at step H over the test period (every fold's;
    with several folds each fold's test period is shaded)."""
    H = int(metrics.get("horizon") or 1)
    wide = step_h_frame(forecasts, H)
    ax = parse_times(wide.index.to_list())
    known = [m for m in model_names(metrics) if m in wide]
    cols = ["observed", *known, *[m for m in wide if m not in known and m != "observed"]]
    arrs = [wide[c].to_numpy(float) for c in cols]
    idx = np.arange(len(wide)) if len(wide) <= full_res else decimate_aligned(arrs, max_points=full_res // len(cols))
    main = main_model(metrics)
    ser = []
    for c in cols:
        if c == "observed":
            ser.append(line("observed", MODEL_COLORS["observed"], 1.5))
        else:
            ser.append(line(model_label(c, main), model_color(c), 2.25 if c == main else 1.1,
                            dash=[5, 3] if c in ("persistence", "seasonal_naive") else None))
    target = str(metrics.get("target") or "value")
    bands = period_bands(metrics, validation=False) if len(fold_periods(metrics)) > 1 else []
    xs, ys = gap_broken(ax.seconds, idx, arrs)
    return chart("forecast", "time", xs, ser, ys,
                 ylabel=_ylabel(target, metrics.get("unit") or ""), xlabel=f"target {ax.label}", height=360,
                 n_source=int(len(wide)), decimated=bool(len(idx) < len(wide)), bands=bands)


def skill_chart(metrics: dict[str, Any]) -> dict[str, Any]:
    """Skill against persistence (1 - RMSE / RMSE_persistence) at every step 1..H."""
    H = int(metrics.get("horizon") or 1)
    main = main_model(metrics)
    ser, ys = [], []
    for name in model_names(metrics):
        m = (metrics.get("models") or {}).get(name)
        if not m:
            continue
        vals = (m.get("per_step") or {}).get("skill") or [None] * H
        ser.append({**line(model_label(name, main), model_color(name), 2.25 if name == main else 1.25,
                           dash=[5, 3] if name == "persistence" else None), "points": True,
                    "psize": 10 if H == 1 else 5})
        ys.append(vals)
    return chart("skill", "num", list(range(1, H + 1)), ser, ys, xlabel="forecast step (grid steps ahead)",
                 ylabel="skill vs persistence", height=280, xint=True)


def residual_charts(forecasts: pd.DataFrame, metrics: dict[str, Any]) -> dict[str, Any]:
    """Histogram and autocorrelation of the main model's step-H errors (observed - forecast)."""
    H = int(metrics.get("horizon") or 1)
    main = main_model(metrics)
    wide = step_h_frame(forecasts, H)
    r = (wide["observed"] - wide[main]).to_numpy(float) if main in wide else np.zeros(0)
    r = r[np.isfinite(r)]
    unit = metrics.get("unit") or ""
    out: dict[str, Any] = {"n": int(r.size), "mean": num(r.mean()) if r.size else None,
                           "std": num(r.std(ddof=1)) if r.size > 1 else None, "hist": None, "acf": None}
    if r.size < 3:
        return out
    edges = np.histogram_bin_edges(r, bins="fd")
    if edges.size - 1 > 60 or edges.size - 1 < 10:
        edges = np.histogram_bin_edges(r, bins=int(np.clip(np.sqrt(r.size), 10, 60)))
    counts, edges = np.histogram(r, bins=edges)
    centres = (edges[:-1] + edges[1:]) / 2
    out["hist"] = chart("resid-hist", "num", sig(centres, 5), [bars("count", model_color(main), 0.95)],
                        [counts.tolist()], xlabel=f"error, observed \u2212 forecast ({unit})" if unit else
                        "error, observed \u2212 forecast", ylabel="count", height=240)
    period = int((metrics.get("baselines") or {}).get("seasonal_period") or 0)
    max_lag = int(min(r.size // 4, max(24, 2 * H, 2 * period)))
    if max_lag >= 2:
        rc = r - r.mean()
        denom = float(rc @ rc)
        acf = [1.0] + [float(rc[k:] @ rc[:-k]) / denom for k in range(1, max_lag + 1)] if denom > 0 else []
        if acf:
            band = 1.96 / math.sqrt(r.size)
            lags = list(range(0, max_lag + 1))
            out["acf"] = chart("resid-acf", "num", lags,
                               [bars("autocorrelation", model_color(main), 0.5),
                                line("+95% band (white noise)", "#0072B2", 1, dash=[4, 4]),
                                line("\u221295% band", "#0072B2", 1, dash=[4, 4])],
                               [acf, [band] * len(lags), [-band] * len(lags)],
                               xlabel="lag (grid steps, in the order of the test target times)",
                               ylabel="autocorrelation", height=240, band=band, xint=True)
    return out


def quantile_columns(forecasts: pd.DataFrame) -> list[tuple[float, str]]:
    """``[(level, column)]`` of the quantile columns of forecasts.csv (``q0.05``, ...), sorted."""
    out = []
    for c in forecasts.columns:
        if isinstance(c, str) and c.startswith("q"):
            try:
                out.append((float(c[1:]), c))
            except ValueError:
                pass
    return sorted(out)


def uncertainty_section(metrics: dict[str, Any], forecasts: pd.DataFrame | None,
                        full_res: int = FORECAST_FULL_RES) -> dict[str, Any] | None:
    """The quantile forecasts: every model's CRPS, pinball loss, interval coverage and width
    (``metrics['probabilistic']``), a fan chart of the main model's quantiles at step H over the
    test period, and its PIT histogram on the quantile grid (the share of observations between
    consecutive quantiles against the share it should be). None for runs without quantiles."""
    prob = metrics.get("probabilistic")
    if not isinstance(prob, dict) or not prob.get("models"):
        return None
    main = main_model(metrics)
    rows = []
    for name in model_names(metrics):
        sc = (prob["models"] or {}).get(name)
        if not sc:
            continue
        iv = sc.get("intervals") or {}
        rows.append({"model": name, "label": model_label(name, main), "main": name == main,
                     "crps": num(sc.get("crps")), "pinball": num(sc.get("pinball")),
                     "coverage": {k: num((iv.get(k) or {}).get("coverage")) for k in ("50", "80", "90", "95")},
                     "width90": num((iv.get("90") or {}).get("width")), "winkler90": num((iv.get("90") or {}).get("winkler")),
                     "skill_clim": num(sc.get("crps_skill_climatology")),
                     "skill_pers": num(sc.get("crps_skill_persistence"))})
    out: dict[str, Any] = {"rows": rows, "method": prob.get("method"), "levels": prob.get("levels") or [],
                           "crps_text": prob.get("crps"), "fan": None, "pit": None, "charts": [],
                           "thresholds": []}
    for k, ex in enumerate(metrics.get("exceedance") or []):
        rel = ex.get("reliability") or []
        th = {"label": ex.get("threshold"), "base_rate": num(ex.get("base_rate")), "events": ex.get("events"),
              "n_points": ex.get("n_points"),
              "rows": [{"label": model_label(n, main), "main": n == main, "brier": num(sc.get("brier")),
                        "skill": num(sc.get("brier_skill_climatology"))}
                       for n in model_names(metrics) if (sc := (ex.get("models") or {}).get(n))],
              "chart": None, "prob_chart": None, "alerts": ex.get("alerts")}
        if rel:
            xs = [r["mean_probability"] for r in rel]
            th["chart"] = chart(f"reliability-{k}", "num", xs,
                                [marker("observed frequency", model_color(main), 8),
                                 line("perfectly reliable", "#888888", 1, dash=[4, 4])],
                                [[r["observed_frequency"] for r in rel], xs], xlabel="forecast probability (bin mean)",
                                ylabel="observed frequency", height=260)
            out["charts"].append(th["chart"])
        out["thresholds"].append(th)
    out["challenge"] = _challenge_part(metrics.get("challenge"), main)
    if out["challenge"]:
        out["charts"].append(out["challenge"]["chart"])
    if forecasts is None or not len(forecasts):
        return out
    qcols = quantile_columns(forecasts)
    H = int(metrics.get("horizon") or 1)
    f = forecasts[(forecasts["model"] == main) & (forecasts["step"] == H)]
    if not qcols or not len(f):
        return out
    order = parse_times(f["target_time"].to_list()).seconds.argsort(kind="stable")
    f = f.iloc[order]
    ax = parse_times(f["target_time"].to_list())
    show = [(lv, c) for lv, c in qcols if any(abs(lv - x) < 1e-9 for x in (0.05, 0.25, 0.5, 0.75, 0.95))] or qcols
    arrs = [f["observed"].to_numpy(float), *[f[c].to_numpy(float) for _, c in show]]
    idx = np.arange(len(f)) if len(f) <= full_res else decimate_aligned(arrs, max_points=full_res // len(arrs))
    color = model_color(main)
    ser = [line("observed", MODEL_COLORS["observed"], 1.5)]
    for lv, _ in show:
        ser.append(line(f"{lv:.0%} quantile" if abs(lv - 0.5) > 1e-9 else "median", color,
                        2.0 if abs(lv - 0.5) < 1e-9 else 1.0, dash=None if abs(lv - 0.5) < 1e-9 else
                        ([2, 3] if min(lv, 1 - lv) < 0.2 else [6, 3])))
    target = str(metrics.get("target") or "value")
    for th in out["thresholds"]:  # the thresholds on the target, as lines across the fan
        level = _threshold_value(th["label"])
        if level is not None:
            ser.append(line(f"threshold {th['label']}", "#D55E00", 1.25, dash=[8, 4]))
            arrs.append(np.full(len(f), level))
    xs, ys = gap_broken(ax.seconds, idx, arrs)
    out["fan"] = chart("fan", "time", xs, ser, ys,
                       ylabel=_ylabel(target, metrics.get("unit") or ""), xlabel=f"target {ax.label}", height=340,
                       n_source=int(len(f)), decimated=bool(len(idx) < len(f)))
    out["charts"].append(out["fan"])
    for k, th in enumerate(out["thresholds"]):
        th["prob_chart"] = _crossing_chart(k, th, f, ax, full_res)
        if th["prob_chart"]:
            out["charts"].append(th["prob_chart"])
    obs = f["observed"].to_numpy(float)
    Q = f[[c for _, c in qcols]].to_numpy(float)
    ok = np.isfinite(obs) & np.isfinite(Q).all(axis=1)
    if ok.sum() >= 10:
        levels = np.array([lv for lv, _ in qcols])
        bins = (obs[ok][:, None] > Q[ok]).sum(axis=1)  # 0 .. Q: how many quantiles lie below
        counts = np.bincount(bins, minlength=levels.size + 1) / ok.sum()
        expected = np.diff(np.concatenate([[0.0], levels, [1.0]]))
        labels = ["< " + f"{levels[0]:g}"] + [f"{a:g}-{b:g}" for a, b in zip(levels[:-1], levels[1:])] + \
                 ["> " + f"{levels[-1]:g}"]
        out["pit"] = chart("pit", "cat", list(range(levels.size + 1)),
                           [bars("observed share", color, 0.7), marker("expected share", "#000000", 7)],
                           [counts.tolist(), expected.tolist()], cats=labels, xlabel="between quantiles",
                           ylabel="share of test points", height=260, n=int(ok.sum()))
        out["charts"].append(out["pit"])
    return out


CHALLENGE_LABELS = {"challenge_climatology": "challenge climatology (day-of-year normal)",
                    "challenge_persistence": "challenge persistence (random walk, bootstrapped steps)"}


def _challenge_part(ch: Any, main: str) -> dict[str, Any] | None:
    """The Forecasting Challenge's scores (``metrics['challenge']``): a table of mean CRPS at the
    30-day-window origins and at every origin, and the CRPS per horizon at every origin."""
    if not isinstance(ch, dict) or "all_origins" not in ch:
        return None
    rows = []
    for name in ch["all_origins"]["models"]:
        label = model_label(name, main) if name == main else CHALLENGE_LABELS.get(name, name)
        rows.append({"label": label, "main": name == main,
                     "windows": num((ch.get("windows", {}).get("models", {}).get(name) or {}).get("crps")),
                     "all": num(ch["all_origins"]["models"][name].get("crps"))})
    models = ch["all_origins"]["models"]
    names = list(models)
    H = len(models[main]["crps_per_horizon"])
    colors = [model_color(main), MODEL_COLORS.get("climatology", "#888888"), MODEL_COLORS.get("persistence", "#444444")]
    series = [line(r["label"], colors[i % len(colors)], 2.0 if r["main"] else 1.25, dash=None if r["main"] else [6, 3])
              for i, r in enumerate(rows)]
    chart_spec = chart("challenge", "num", list(range(1, H + 1)), series,
                       [[v if v is not None else float("nan") for v in models[n]["crps_per_horizon"]] for n in names],
                       xlabel="horizon (days)", ylabel="mean CRPS", height=260, xint=True)
    return {"rows": rows, "chart": chart_spec, "n_window_origins": ch.get("n_window_origins"),
            "n_origins": ch.get("n_origins"), "window_days": ch.get("window_days")}


def _threshold_value(label: Any) -> float | None:
    """The level of a threshold label (``DO_obs<2`` -> 2.0); None when it cannot be read."""
    from wq_pipeline.models.exceedance import parse_threshold

    try:
        return parse_threshold(str(label)).value
    except ValueError:
        return None


def _crossing_chart(k: int, th: dict[str, Any], f: pd.DataFrame, ax: Any, full_res: int) -> dict[str, Any] | None:
    """The main model's probability of crossing at step H over the test period (``f``: its step-H
    rows of forecasts.csv in target-time order), the observed crossings marked at their target
    times, and the alert level. None without the probability column."""
    from wq_pipeline.models.exceedance import crossed, parse_threshold

    col = f"P({th['label']})"
    if col not in f.columns:
        return None
    p = f[col].to_numpy(float)
    hit = crossed(f["observed"].to_numpy(float), parse_threshold(th["label"]))
    marks = np.where(hit > 0, 1.0, np.nan)
    level = (th.get("alerts") or {}).get("alert_level")
    arrs = [p, marks] + ([np.full(len(f), float(level))] if level is not None else [])
    idx = np.arange(len(f)) if len(f) <= full_res else decimate_aligned(arrs[:1], max_points=full_res // 2)
    idx = np.union1d(idx, np.flatnonzero(np.isfinite(marks)))  # every observed crossing stays marked
    ser = [line(f"P({th['label']}), issued H steps before", MODEL_COLORS.get("ensemble", "#000000"), 1.25),
           marker("crossing observed", "#D55E00", 6)]
    if level is not None:
        ser.append(line(f"alert level {level:g}", "#888888", 1, dash=[4, 4]))
    xs, ys = gap_broken(ax.seconds, idx, arrs)
    return chart(f"crossing-{k}", "time", xs, ser, ys,
                 ylabel="probability", xlabel=f"target {ax.label}", height=240, n_source=int(len(f)),
                 decimated=bool(len(idx) < len(f)))


# --------------------------------------------------------------------------- 6. ensemble


WEIGHT_KEYS = ("fold", "issued_at", "period")
RULE_TEXT = {
    "softmax": "softmax (Hedge): each member's weight is proportional to exp(\u2212\u03b7 (RMSE / RMSE of the best "
               "member \u2212 1)) of its recent errors, \u03b7 = {eta}",
    "inverse_mse": "inverse recent MSE (Bates\u2013Granger): each member's weight is proportional to 1 / its recent MSE",
    "best": "all weight on the member with the lowest recent MSE",
    "stack": "the convex combination of the members with the lowest recent squared error (non-negative least "
             "squares, shrunk towards inverse-MSE weights)",
}


def weight_members(weights: pd.DataFrame) -> list[str]:
    """The member columns of ``weights.csv``."""
    return [c for c in weights.columns if c not in WEIGHT_KEYS]


def weight_groups(weights: pd.DataFrame, members: list[str]) -> tuple[list[str], list[str]]:
    """``(members drawn on their own, members grouped as "others")``: a member whose weight never
    exceeds an equal share (``1 / M``, at most 0.1) at any origin is grouped."""
    limit = min(1.0 / max(len(members), 1), 0.1) + 1e-6
    peak = weights[members].apply(pd.to_numeric, errors="coerce").max(skipna=True)
    shown = [c for c in members if finite(peak[c]) and peak[c] > limit]
    return shown, [c for c in members if c not in shown]


def _fold_key(v: Any) -> str:
    try:
        return str(int(v))
    except (TypeError, ValueError):
        return str(v)


def ensemble_section(metrics: dict[str, Any], weights: pd.DataFrame | None,
                     max_points: int = FULL_PERIOD_POINTS) -> dict[str, Any] | None:
    """How the ensemble weighs its members: the rule, every member's mean test weight and share
    of test origins dominated (``metrics['ensemble']``), and from ``weights.csv`` one chart per
    fold of every member's weight at step H at each validation and test origin and the table of
    which member dominated when. None when the run has no ensemble (older runs)."""
    ens = metrics.get("ensemble")
    if not isinstance(ens, dict):
        return None
    members = [str(x) for x in ens.get("members") or []]
    if weights is not None and len(weights):
        members += [c for c in weight_members(weights) if c not in members]
    if not members:
        return None
    models = metrics.get("models") or {}
    mean_w, share = ens.get("mean_weight") or {}, ens.get("dominant_share") or {}
    folds = [f for f in metrics.get("folds") or [] if isinstance(f, dict)]
    per_fold = [(f.get("fold"), (f.get("ensemble") or {}).get("mean_weight") or {}) for f in folds] \
        if len(folds) > 1 else []
    rows = [{"member": m, "label": MODEL_LABELS.get(m, m), "color": model_color(m), "mean_weight": num(mean_w.get(m)),
             "dominant_share": num(share.get(m)), "rmse": num((models.get(m) or {}).get("rmse")),
             "per_fold": [num(w.get(m)) for _, w in per_fold]} for m in members]
    rows.sort(key=lambda r: -(r["mean_weight"] or 0.0))
    step = step_seconds(metrics.get("freq"))
    hl, eta = num(ens.get("half_life_steps")), num(ens.get("eta"))
    rule = str(ens.get("rule") or "")
    eta_text = f"{eta:g}" if eta is not None else "n/a"
    out: dict[str, Any] = {
        "rows": rows, "fold_ids": [k for k, _ in per_fold], "rule": rule,
        "rule_text": RULE_TEXT.get(rule, rule or "n/a").replace("{eta}", eta_text),
        "half_life_steps": hl, "half_life": duration_text(hl * step) if hl is not None and step else "n/a",
        "min_records": num(ens.get("min_records")), "n_members": len(members), "charts": [], "dominance": [],
        "shown": [], "others": [], "others_labels": [], "identical": [], "has_weights": False,
        "bucket": "calendar week" if step is None or step < 86400 else "calendar month",
    }
    if weights is None or not len(weights) or "issued_at" not in weights:
        return out
    cols = [m for m in members if m in weights.columns]
    if not cols:
        return out
    out["has_weights"] = True
    shown, others = weight_groups(weights, cols)
    out["shown"], out["others"] = shown, others
    out["others_labels"] = [MODEL_LABELS.get(c, c) for c in others]
    # members drawn on their own whose weights are the same at every origin: their lines overlap
    Wn = weights[shown].apply(pd.to_numeric, errors="coerce")
    out["identical"] = [f"\u201c{MODEL_LABELS.get(a, a)}\u201d and \u201c{MODEL_LABELS.get(b, b)}\u201d"
                        for i, a in enumerate(shown) for b in shown[i + 1:]
                        if np.allclose(Wn[a].to_numpy(float), Wn[b].to_numpy(float), rtol=0, atol=1e-9, equal_nan=True)]
    periods = {_fold_key(p["fold"]): p for p in fold_periods(metrics)}
    fold_col = weights["fold"] if "fold" in weights else pd.Series(1, index=weights.index)
    groups = list(weights.groupby(fold_col, sort=True))
    for fold, g in groups:
        ax = parse_times(g["issued_at"])
        order = np.argsort(ax.seconds, kind="stable")
        g, secs = g.iloc[order], ax.seconds[order]
        W = g[cols].apply(pd.to_numeric, errors="coerce").to_numpy(float)
        lines_, ser = [], []
        for c in shown:
            lines_.append(W[:, cols.index(c)])
            ser.append({**line(MODEL_LABELS.get(c, c), model_color(c), 1.5), "members": [c]})
        if others:
            sub = W[:, [cols.index(c) for c in others]]
            total = np.where(np.isfinite(sub).any(axis=1), np.nansum(sub, axis=1), np.nan)
            lines_.append(total)
            ser.append({**line(f"others ({len(others)} member{'s' if len(others) != 1 else ''}, summed)", OTHERS_COLOR,
                               1.25, dash=[4, 3]), "members": others})
        idx = np.arange(len(g)) if len(g) <= max_points else \
            decimate_aligned(lines_, max_points=max(200, 2 * max_points // max(len(lines_), 1)))
        p = periods.get(_fold_key(fold))
        if p is not None:
            t = parse_times([p["val_start"], p["test_start"], p["test_end"]]).seconds
            bands = [{"from": int(t[0]), "to": int(t[1]), "label": "validation (warm-up)", "color": VAL_BAND},
                     {"from": int(t[1]), "to": int(t[2] + (step or 0)), "label": "test", "color": TEST_BANDS[0]}]
        else:
            bands = []
        several = len(groups) > 1
        out["charts"].append(chart(
            f"weights-{_fold_key(fold)}", "time", secs[idx].tolist(), ser, [a[idx] for a in lines_],
            ylabel="weight at step H", xlabel=f"forecast origin, {ax.label}", height=260, bands=bands, yrange=[0, 1],
            title=(f"Fold {_fold_key(fold)}: weight" if several else "Weight") + " of each member at step H",
            fold=_fold_key(fold), n_source=int(len(g)), decimated=bool(len(idx) < len(g))))
        out["dominance"] += dominance_rows(g, secs, cols, step, _fold_key(fold))
    return out


def dominance_rows(g: pd.DataFrame, secs: np.ndarray, cols: list[str], step: float | None,
                   fold: str) -> list[dict[str, Any]]:
    """Which member had the largest mean weight at step H in each calendar week (sub-daily grids)
    or month (daily and coarser grids) of one fold's origins ``g`` (sorted by time, wall-clock
    ``secs``), validation and test apart; consecutive periods with the same dominant member are
    merged into one row, whose weight is that member's mean over the merged origins."""
    if not len(g):
        return []
    W = g[cols].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    wall = pd.to_datetime(np.asarray(secs, dtype=np.int64), unit="s")
    bucket = np.asarray(wall.to_period("W" if step is None or step < 86400 else "M").astype(str))
    part = g["period"].astype(str).to_numpy() if "period" in g else np.full(len(g), "test")
    iso = g["issued_at"].astype(str).to_numpy()
    key = np.char.add(np.char.add(part.astype(str), "|"), bucket.astype(str))
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    ends = np.concatenate([starts[1:], [len(g)]])
    runs: list[dict[str, Any]] = []
    for a, b in zip(starts, ends):
        block = W[a:b]
        if not np.isfinite(block).any():
            continue
        with np.errstate(all="ignore"):
            mean = np.nanmean(np.where(np.isfinite(block), block, np.nan), axis=0)
        ok = np.isfinite(mean)
        mean = np.where(ok, mean, -np.inf)
        dom = int(np.argmax(mean))
        # members with the same mean weight (the warm-up's equal weights; a member that equals
        # another) share the row: the first one named, the others listed
        tied = tuple(cols[j] for j in np.flatnonzero(ok & (mean >= mean[dom] - 1e-9)))
        last = runs[-1] if runs else None
        if last is not None and last["tied"] == tied and last["period"] == part[a] and last["_b"] == a:
            last["_b"], last["n_periods"] = b, last["n_periods"] + 1
            continue
        runs.append({"fold": fold, "period": str(part[a]), "member": cols[dom], "tied": tied, "_a": int(a),
                     "_b": int(b), "n_periods": 1, "n_members": int(ok.sum())})
    out = []
    for r in runs:
        a, b, j = r.pop("_a"), r.pop("_b"), cols.index(r["member"])
        col = W[a:b, j]
        tied, n_members = r.pop("tied"), r.pop("n_members")
        if len(tied) > 1 and len(tied) == n_members:
            label = f"none: all {len(tied)} members weigh the same"
        elif len(tied) > 1:
            label = " = ".join(MODEL_LABELS.get(t, t) for t in tied) + " (equal weights)"
        else:
            label = MODEL_LABELS.get(r["member"], r["member"])
        r.update({"label": label, "members": list(tied), "color": model_color(r["member"]) if len(tied) == 1
                  else OTHERS_COLOR, "start": iso[a], "end": iso[b - 1], "n_origins": int(b - a),
                  "weight": num(np.nanmean(col)) if np.isfinite(col).any() else None})
        out.append(r)
    return out


# --------------------------------------------------------------------------- 6. metrics


def metrics_rows(metrics: dict[str, Any]) -> dict[str, Any]:
    """Every model's step-H metrics, with the best value of each column marked."""
    models = metrics.get("models") or {}
    names = model_names(metrics)
    best: dict[str, set[str]] = {}
    for k, higher in METRICS.items():
        vals = {n: num(models[n].get(k)) for n in names}
        if k == "skill":
            vals.pop("persistence", None)  # 0 by definition, not a result
        good = {n: v for n, v in vals.items() if v is not None}
        if good:
            target = max(good.values()) if higher else min(good.values())
            best[k] = {n for n, v in good.items() if math.isclose(v, target, rel_tol=1e-12, abs_tol=1e-15)}
    rows = [{"model": n, "label": MODEL_LABELS.get(n, n), "main": n == main_model(metrics),
             "values": {k: num(models[n].get(k)) for k in METRICS}, "best": {k: n in best.get(k, set()) for k in METRICS},
             "n_points": models[n].get("n_points")} for n in names]
    return {"columns": [(k, METRIC_LABELS[k], METRICS[k]) for k in METRICS], "rows": rows}


# --------------------------------------------------------------------------- 7. training


def training_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """Loss curves per trained network plus a table of epochs, best epoch and time."""
    training = metrics.get("training") or {}
    budget = metrics.get("epochs")
    rows, charts = [], []
    for i, (name, t) in enumerate(training.items()):
        loss = [num(v) for v in t.get("loss") or []]
        val = [num(v) for v in t.get("val_loss") or []]
        if name == "lstm":
            role = "plain LSTM baseline (raw series)"
        elif name.startswith("feca_"):
            role = f"component {name[5:]} of {MODEL_LABELS['decomp_feca_lstm']}"
        elif name.startswith("plain_"):
            role = f"component {name[6:]} of {MODEL_LABELS['decomp_lstm']}"
        elif name == "hybrid":
            role = f"the correction network of the {MODEL_LABELS['hybrid_feca_lstm']}"
        else:
            role = ""
        good_val = [v for v in val if v is not None]
        rows.append({"name": name, "role": role, "skipped": t.get("skipped"),
                     "epochs_run": t.get("epochs_run"), "budget": budget,
                     "best_epoch": t.get("best_epoch"), "seconds": num(t.get("seconds")),
                     "n_train": t.get("n_train"), "n_val": t.get("n_val"),
                     "final_loss": loss[-1] if loss else None, "best_val": min(good_val) if good_val else None})
        n = max(len(loss), len(val))
        if n:
            best = t.get("best_epoch")
            bands_ = [{"from": best - 0.5, "to": best + 0.5, "label": "best", "color": "rgba(0,158,115,0.15)"}] \
                if isinstance(best, int) else []
            charts.append(chart(f"loss-{i}", "num", list(range(1, n + 1)),
                                [{**line("training loss", "#0072B2", 1.5), "points": n <= 30},
                                 {**line("validation loss", "#D55E00", 1.5), "points": n <= 30}],
                                [loss + [None] * (n - len(loss)), val + [None] * (n - len(val))],
                                xlabel="epoch", ylabel="loss (scaled MSE)", height=190, title=name,
                                bands=bands_, xint=True))
    total = sum(r["seconds"] or 0 for r in rows)
    n_folds = len(metrics.get("folds") or []) or 1
    return {"rows": rows, "charts": charts, "total_seconds": total, "n_folds": n_folds,
            "n_skipped": sum(1 for r in rows if r["skipped"])}


def equivalent_command(metrics: dict[str, Any]) -> str:
    """A ``wq evaluate`` line rebuilt from what metrics.json records (for runs started from Python,
    which record no command line). Options metrics.json does not record are left out."""
    import shlex

    parts = ["wq", "evaluate", "--data", str(metrics.get("dataset") or "FILE"),
             "--target", str(metrics.get("target") or "COL")]
    if metrics.get("site"):
        parts += ["--site", str(metrics["site"])]
    for opt, key in (("--freq", "freq"), ("--method", "method"), ("--modes", "modes"), ("--window", "window"),
                     ("--decomp-window", "decomp_window"), ("--horizon", "horizon"), ("--protocol", "protocol"),
                     ("--epochs", "epochs"), ("--seed", "seed")):
        if metrics.get(key) is not None:
            parts += [opt, str(metrics[key])]
    return shlex.join(parts)


def timing_rows(metrics: dict[str, Any]) -> list[tuple[str, float | None]]:
    return [(k, num(v)) for k, v in (metrics.get("timings_s") or {}).items()]


# --------------------------------------------------------------------------- 8. protocols


def protocol_comparison(honest: dict[str, Any], leaky: dict[str, Any]) -> dict[str, Any]:
    """Stepwise (honest) against global (leaky) metrics of the same models on the same data."""
    hm, lm = honest.get("models") or {}, leaky.get("models") or {}
    rows = []
    for name in [m for m in model_names(honest) if m in lm]:
        r: dict[str, Any] = {"model": name, "label": MODEL_LABELS.get(name, name),
                             "main": name == main_model(honest)}
        for k in ("nse", "rmse", "skill"):
            a, b = num(hm[name].get(k)), num(lm[name].get(k))
            r[k] = {"honest": a, "leaky": b, "diff": (b - a) if a is not None and b is not None else None}
        rows.append(r)
    mismatches = []
    for key in ("dataset_sha256", "target", "site", "freq", "method", "modes", "window", "decomp_window", "horizon",
                "n_test", "seed"):
        if honest.get(key) != leaky.get(key):
            mismatches.append(f"{key}: {honest.get(key)!r} (stepwise) vs {leaky.get(key)!r} (global)")
    main = main_model(honest)
    mrow = next((r for r in rows if r["model"] == main), None)
    share = None
    if mrow and mrow["skill"]["leaky"] is not None and mrow["skill"]["honest"] is not None \
            and mrow["skill"]["leaky"] > 0:
        share = (mrow["skill"]["leaky"] - max(mrow["skill"]["honest"], 0.0)) / mrow["skill"]["leaky"]
    names = [MODEL_SHORT.get(r["model"], r["model"]) for r in rows]
    spec = chart("protocols", "cat", list(range(len(rows))),
                 [bars("NSE, stepwise (honest)", "#0072B2", 0.38, -1), bars("NSE, global (LEAKY)", "#D55E00", 0.38, 1)],
                 [[r["nse"]["honest"] for r in rows], [r["nse"]["leaky"] for r in rows]],
                 cats=names, ylabel="NSE at step H", xlabel="model", height=280) if rows else None
    return {"rows": rows, "mismatches": mismatches, "main": mrow, "leak_share": share, "chart": spec,
            "main_label": MODEL_LABELS.get(main, main)}
