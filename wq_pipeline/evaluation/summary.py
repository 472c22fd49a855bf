"""One table across the series (targets, sites, files) and protocols of a ``wq evaluate`` run
of several series.

Rows are ``(series, protocol, model)``; the scores are those of each run's ``metrics.json`` at
step H on that run's test points, so models compare within a row group, not across series.
``series`` is the run's output sub-folder (``<site>``, ``<target>``, ``<site>/<target>``, ...),
``site`` and ``target`` say what it holds.
``mse_skill_vs_best_baseline`` is ``1 - MSE / MSE(best baseline by RMSE)``: positive only where a
model beats every baseline (persistence, seasonal naive, level-adjusted seasonal naive, climatology, ARIMA, harmonic + AR) on that target.

A run with several folds (``--folds``) adds rows per fold: ``fold`` is ``"pooled"`` for the
scores pooled over every fold's test points (the run's ``models``, the only rows of a one-fold
run), then ``1 .. K`` for each fold's own scores (``metrics['folds']``), with that fold's best
baseline. Readers of the pooled numbers keep ``fold == "pooled"``. ``main`` marks the run's main
model. The quantile scores at step H follow (``crps``, coverage of the 50 % and 90 % intervals,
the 90 % width, CRPS skill against climatology and persistence; empty for runs without quantiles).
The Markdown and HTML add, per series and protocol, the main model's RMSE against the
best baseline's in every fold.

With several sites of one target, :func:`pooled_over_series` adds rows with ``series`` ``all``:
every model's scores over all sites' test points (RMSE as the root of the point-weighted mean
square, MAE, CRPS and coverage as point-weighted means) and ``share_main_wins``, the share of
sites where that model beats the site's best baseline. Series that could not be evaluated are
listed with the reason.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any

import numpy as np
import pandas as pd

COLUMNS = ("target", "unit", "protocol", "model", "n_points", "rmse", "mae", "nse", "kge", "skill",
           "mse_skill_vs_best_baseline", "best_baseline", "seconds", "fold", "main",
           "crps", "coverage_50", "coverage_90", "width_90", "crps_skill_climatology", "crps_skill_persistence",
           "site", "series", "share_sites_beating_best_baseline")
POOLED = "pooled"
ALL_SERIES = "all"


def folder_name(target: str) -> str:
    """A target's output sub-folder: the column name with anything but letters, digits, ``._-``
    replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", target) or "_"


def summary_table(results: dict[str, dict[str, dict[str, Any]]]) -> pd.DataFrame:
    """``results[series][protocol]`` = that run's metrics -> the long table (module docstring);
    the best baseline and the MSE skill against it are the run's own
    (:func:`wq_pipeline.evaluation.metrics.add_best_baseline_skill`), per fold for the fold rows; then the
    rows pooled over the sites (:func:`pooled_over_series`)."""
    rows = []
    for series, runs in results.items():
        for protocol, m in runs.items():
            target = m.get("target", series)
            main = m.get("main_model")
            folds = [f for f in m.get("folds") or [] if isinstance(f, dict)]
            prob = m.get("probabilistic") or {}
            parts = [(POOLED, m["models"], (m.get("timings_s") or {}).get("total"), prob.get("models") or {})]
            if len(folds) > 1:
                pf = prob.get("folds") or [{}] * len(folds)
                parts += [(f.get("fold"), f.get("models") or {}, None, q or {}) for f, q in zip(folds, pf)]
            for fold, models, seconds, qs in parts:
                for name, s in models.items():
                    q = qs.get(name) or {}
                    iv = q.get("intervals") or {}
                    rows.append({"target": target, "unit": m.get("unit"), "protocol": protocol, "model": name,
                                 "n_points": s.get("n_points"), "rmse": s.get("rmse"), "mae": s.get("mae"),
                                 "nse": s.get("nse"), "kge": s.get("kge"), "skill": s.get("skill"),
                                 "mse_skill_vs_best_baseline": s.get("mse_skill_best_baseline"),
                                 "best_baseline": s.get("best_baseline"), "crps": q.get("crps"),
                                 "coverage_50": (iv.get("50") or {}).get("coverage"),
                                 "coverage_90": (iv.get("90") or {}).get("coverage"),
                                 "width_90": (iv.get("90") or {}).get("width"),
                                 "crps_skill_climatology": q.get("crps_skill_climatology"),
                                 "crps_skill_persistence": q.get("crps_skill_persistence"),
                                 "seconds": seconds, "fold": fold, "main": name == main,
                                 "site": m.get("site"), "series": series})
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return pd.concat([table, pooled_over_series(table)], ignore_index=True) if len(results) > 1 else table


def pooled_over_series(table: pd.DataFrame) -> pd.DataFrame:
    """Per target, protocol and model, over the pooled rows of every series of two or more
    sites: point-weighted scores and the share of sites where the model beats the site's best
    baseline (empty when no target has two sites)."""
    pooled = table[(table["fold"].astype(str) == POOLED) & (table["series"] != ALL_SERIES)]
    out = []
    for (target, protocol, model), g in pooled.groupby(["target", "protocol", "model"], sort=False):
        if g["site"].nunique() < 2:
            continue
        n = pd.to_numeric(g["n_points"], errors="coerce").fillna(0).to_numpy(float)

        def wmean(col: str) -> float | None:
            v = pd.to_numeric(g[col], errors="coerce").to_numpy(float)
            ok = np.isfinite(v) & (n > 0)
            return float(np.sum(v[ok] * n[ok]) / np.sum(n[ok])) if ok.any() else None

        rmse = pd.to_numeric(g["rmse"], errors="coerce").to_numpy(float)
        ok = np.isfinite(rmse) & (n > 0)
        wins = pd.to_numeric(g["mse_skill_vs_best_baseline"], errors="coerce").to_numpy(float)
        out.append({"target": target, "unit": g["unit"].iloc[0], "protocol": protocol, "model": model,
                    "n_points": int(n.sum()), "rmse": float(np.sqrt(np.sum(rmse[ok] ** 2 * n[ok]) / np.sum(n[ok])))
                    if ok.any() else None, "mae": wmean("mae"), "crps": wmean("crps"),
                    "coverage_50": wmean("coverage_50"), "coverage_90": wmean("coverage_90"),
                    "width_90": wmean("width_90"), "fold": POOLED, "main": bool(g["main"].astype(bool).any()),
                    "site": f"{g['site'].nunique()} sites", "series": ALL_SERIES,
                    "share_sites_beating_best_baseline": float(np.mean(wins[np.isfinite(wins)] > 0))
                    if np.isfinite(wins).any() else None})
    return pd.DataFrame(out, columns=list(COLUMNS))


GLOBAL_NETWORKS, LOCAL_NETWORKS = "global networks", "local networks"


def global_vs_local(table: pd.DataFrame) -> pd.DataFrame:
    """The main model with global networks against local ones (``wq evaluate --global
    --against-local``: the rows of protocols :data:`GLOBAL_NETWORKS` and :data:`LOCAL_NETWORKS`),
    per series on its pooled test points, then one row ``series == "all"``: point-weighted
    means and the share of series where the global CRPS (RMSE where there is none) is at most
    the local one. ``same_points`` says whether both scored the same number of points."""
    pooled = _pooled(table)
    main = pooled[pooled["main"].astype(bool)]
    rows = []
    for series, g in main.groupby(_key(main), sort=False):
        by = g.set_index("protocol")
        if not {GLOBAL_NETWORKS, LOCAL_NETWORKS} <= set(by.index):
            continue
        gl, lo = by.loc[GLOBAL_NETWORKS], by.loc[LOCAL_NETWORKS]
        use = "crps" if _finite(gl["crps"]) and _finite(lo["crps"]) else "rmse"
        rows.append({"series": series, "site": gl["site"], "target": gl["target"], "model": gl["model"],
                     "n_points": gl["n_points"], "same_points": gl["n_points"] == lo["n_points"],
                     "crps_global": gl["crps"], "crps_local": lo["crps"], "rmse_global": gl["rmse"],
                     "rmse_local": lo["rmse"], "seconds_global": gl["seconds"], "seconds_local": lo["seconds"],
                     "global_at_most_local": bool(gl[use] <= lo[use]) if _finite(gl[use]) and _finite(lo[use]) else None})
    out = pd.DataFrame(rows)
    if len(out) > 1:
        n = pd.to_numeric(out["n_points"], errors="coerce").fillna(0).to_numpy(float)

        def wmean(col: str) -> float | None:
            v = pd.to_numeric(out[col], errors="coerce").to_numpy(float)
            ok = np.isfinite(v) & (n > 0)
            return float(np.sum(v[ok] * n[ok]) / np.sum(n[ok])) if ok.any() else None

        wins = [w for w in out["global_at_most_local"] if w is not None]
        out = pd.concat([out, pd.DataFrame([{
            "series": ALL_SERIES, "site": f"{len(out)} series", "target": "", "model": out["model"].iloc[0],
            "n_points": int(n.sum()), "same_points": bool(out["same_points"].all()),
            "crps_global": wmean("crps_global"), "crps_local": wmean("crps_local"),
            "rmse_global": wmean("rmse_global"), "rmse_local": wmean("rmse_local"),
            "seconds_global": None, "seconds_local": float(pd.to_numeric(out["seconds_local"]).sum()),
            "global_at_most_local": float(np.mean(wins)) if wins else None}])], ignore_index=True)
    return out


def comparison_markdown(comparison: pd.DataFrame, global_seconds: float | None) -> str:
    """:func:`global_vs_local` as Markdown, with the two runs' wall times."""
    lines = ["Main model, global networks against local ones, on each series' own test points (CRPS at step H; "
             "last row: point-weighted means and the share of series where global is at most local):", "",
             "| series | points | same points | CRPS global | CRPS local | RMSE global | RMSE local | "
             "global <= local |", "|---|---|---|---|---|---|---|---|"]
    for r in comparison.itertuples(index=False):
        w = r.global_at_most_local
        share = f"{w:.0%}" if r.series == ALL_SERIES and w is not None else ("yes" if w else "no" if w is not None else "n/a")
        lines.append(f"| {r.series} | {r.n_points} | {'yes' if r.same_points else 'NO'} | {_fmt(r.crps_global, 3)} | "
                     f"{_fmt(r.crps_local, 3)} | {_fmt(r.rmse_global, 3)} | {_fmt(r.rmse_local, 3)} | {share} |")
    local = pd.to_numeric(comparison[comparison["series"] != ALL_SERIES]["seconds_local"], errors="coerce").sum()
    if global_seconds is not None:
        lines += ["", f"Wall time: the global run {global_seconds:.0f} s; the local runs {local:.0f} s together "
                  f"(ratio {global_seconds / local:.2f})." if local else ""]
    return "\n".join(lines) + "\n"


def comparison_html(comparison: pd.DataFrame, global_seconds: float | None) -> str:
    """:func:`global_vs_local` as an HTML section (green: global at most local)."""
    rows = []
    for r in comparison.itertuples(index=False):
        w = r.global_at_most_local
        if r.series == ALL_SERIES:
            cell = f"<td>{w:.0%} of series</td>" if w is not None else "<td>n/a</td>"
        else:
            cell = f"<td{' class=beats' if w else ''}>{'yes' if w else 'no' if w is not None else 'n/a'}</td>"
        rows.append(f"<tr><td>{html.escape(str(r.series))}</td><td>{r.n_points}</td>"
                    f"<td>{'yes' if r.same_points else '<b>NO</b>'}</td><td>{_fmt(r.crps_global, 3)}</td>"
                    f"<td>{_fmt(r.crps_local, 3)}</td><td>{_fmt(r.rmse_global, 3)}</td><td>{_fmt(r.rmse_local, 3)}</td>"
                    + cell + "</tr>")
    local = pd.to_numeric(comparison[comparison["series"] != ALL_SERIES]["seconds_local"], errors="coerce").sum()
    times = (f"<p>Wall time: the global run {global_seconds:.0f} s; the local runs {local:.0f} s together "
             f"(ratio {global_seconds / local:.2f}).</p>") if global_seconds is not None and local else ""
    return ("<h2 id=global-vs-local>Global networks against local ones</h2><p>The main model on each series' own test "
            "points, CRPS and RMSE at step H; the last row: point-weighted means and the share of series where the "
            "global CRPS is at most the local one.</p><table><tr><th>series</th><th>points</th><th>same points</th>"
            "<th>CRPS global</th><th>CRPS local</th><th>RMSE global</th><th>RMSE local</th><th>global &le; local</th>"
            "</tr>" + "".join(rows) + "</table>" + times + "\n")


def _pooled(table: pd.DataFrame) -> pd.DataFrame:
    """The pooled rows of each series (all rows of a table from before folds existed)."""
    table = _series_rows(table)
    if "fold" not in table:
        return table
    return table[table["fold"].astype(str) == POOLED]


def _series_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the single series (without the rows pooled over the sites)."""
    return table[table["series"] != ALL_SERIES] if "series" in table else table


def _key(table: pd.DataFrame) -> pd.Series:
    """What a row group is named by: its series (tables from before series existed: the target)."""
    return table["series"].fillna(table["target"]) if "series" in table else table["target"]


def fold_ratios(table: pd.DataFrame) -> pd.DataFrame:
    """Per series, protocol and fold (pooled first): the main model, its RMSE, the best
    baseline, its RMSE, ``ratio`` = RMSE main / RMSE best baseline and the main model's MSE
    skill against it. Empty when the table marks no main model."""
    cols = ["series", "protocol", "fold", "model", "rmse", "best_baseline", "rmse_best", "ratio",
            "mse_skill_vs_best_baseline"]
    if "main" not in table or "fold" not in table:
        return pd.DataFrame(columns=cols)
    table = _series_rows(table)
    out = []
    for (series, protocol, fold), g in table.groupby([_key(table), "protocol", table["fold"].astype(str)], sort=False):
        main = g[g["main"].astype(str).str.lower() == "true"]
        if main.empty:
            continue
        r = main.iloc[0]
        best = r["best_baseline"]
        hit = g[g["model"] == best]["rmse"]
        rmse_best = float(hit.iloc[0]) if len(hit) and _finite(hit.iloc[0]) else None
        ratio = float(r["rmse"]) / rmse_best if rmse_best and _finite(r["rmse"]) else None
        out.append({"series": series, "protocol": protocol, "fold": fold, "model": r["model"], "rmse": r["rmse"],
                    "best_baseline": best, "rmse_best": rmse_best, "ratio": ratio,
                    "mse_skill_vs_best_baseline": r["mse_skill_vs_best_baseline"]})
    return pd.DataFrame(out, columns=cols)


def summary_markdown(table: pd.DataFrame, skipped: dict[str, str] | None = None, extra: str = "") -> str:
    """The table as Markdown: one row per series and protocol, NSE / RMSE of every model (pooled
    over the folds), the rows pooled over the sites, the main model against the best baseline in
    every fold, and the series skipped with the reason (``extra``, Markdown, goes before them)."""
    pooled = _pooled(table)
    models = list(dict.fromkeys(pooled["model"]))
    head = "| series | protocol | " + " | ".join(f"{m} NSE / RMSE" for m in models) + " | best baseline | run s |"
    lines = [head, "|" + "---|" * (len(models) + 4)]
    for (series, protocol), g in pooled.groupby([_key(pooled), "protocol"], sort=False):
        by = g.set_index("model")
        cells = [f"{_fmt(by.at[m, 'nse'], 3)} / {_fmt(by.at[m, 'rmse'], 3)}" if m in by.index else "" for m in models]
        lines.append(f"| {series} | {protocol} | " + " | ".join(cells)
                     + f" | {g['best_baseline'].iloc[0]} | {_fmt(g['seconds'].iloc[0], 0)} |")
    over = _over_sites(table)
    if len(over):
        lines += ["", "Over all sites (RMSE: root of the point-weighted mean square; CRPS and coverage: point-weighted "
                  "means; wins: share of sites where the model beats that site's best baseline):", "",
                  "| target | protocol | model | sites | points | RMSE | CRPS | 90 % coverage | wins |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in over.itertuples(index=False):
            lines.append(f"| {r.target} | {r.protocol} | {r.model}{' (main)' if r.main else ''} | {r.site} | "
                         f"{r.n_points} | {_fmt(r.rmse, 3)} | {_fmt(r.crps, 3)} | {_fmt(r.coverage_90, 3)} | "
                         f"{_fmt(r.share_sites_beating_best_baseline, 2)} |")
    ratios = fold_ratios(table)
    if len(ratios):
        lines += ["", "Main model against the best baseline, RMSE at step H (ratio below 1: the main model wins):", "",
                  "| series | protocol | fold | main model | its RMSE | best baseline | its RMSE | ratio main / best |"
                  " MSE skill vs best |", "|---|---|---|---|---|---|---|---|---|"]
        for r in ratios.itertuples(index=False):
            lines.append(f"| {r.series} | {r.protocol} | {r.fold} | {r.model} | {_fmt(r.rmse, 3)} | {r.best_baseline} | "
                         f"{_fmt(r.rmse_best, 3)} | {_fmt(r.ratio, 3)} | {_fmt(r.mse_skill_vs_best_baseline, 3)} |")
    if extra:
        lines += ["", extra.rstrip("\n")]
    if skipped:
        lines += ["", f"Skipped ({len(skipped)}):", ""] + [f"- {k}: {v}" for k, v in skipped.items()]
    return "\n".join(lines) + "\n"


def _over_sites(table: pd.DataFrame) -> pd.DataFrame:
    """The rows pooled over the sites (none in tables without them)."""
    return table[table["series"] == ALL_SERIES] if "series" in table else table.iloc[:0]


def summary_html(table: pd.DataFrame, skipped: dict[str, str] | None = None, extra: str = "") -> str:
    """A self-contained HTML page of :func:`summary_markdown`'s tables, each series linking to its
    own report (``<series>/report.html``); ``extra``: HTML placed before the skipped series."""
    pooled = _pooled(table)
    models = list(dict.fromkeys(pooled["model"]))
    head = "".join(f"<th>{html.escape(m)}<br>NSE / RMSE</th>" for m in models)
    rows = []
    for (series, protocol), g in pooled.groupby([_key(pooled), "protocol"], sort=False):
        by = g.set_index("model")
        best = g["best_baseline"].iloc[0]
        cells = []
        for m in models:
            if m not in by.index:
                cells.append("<td></td>")
                continue
            beats = _finite(by.at[m, "mse_skill_vs_best_baseline"]) and by.at[m, "mse_skill_vs_best_baseline"] > 0
            text = f"{_fmt(by.at[m, 'nse'], 3)} / {_fmt(by.at[m, 'rmse'], 3)}"
            cells.append(f"<td{' class=beats' if beats else ''}>{text}</td>")
        link = html.escape("/".join(folder_name(p) for p in str(series).split("/")) + "/report.html")
        leaky = " <b>LEAKY</b>" if protocol == "global" else ""
        rows.append(f"<tr><td><a href=\"{link}\">{html.escape(str(series))}</a></td><td>{html.escape(protocol)}{leaky}</td>"
                    + "".join(cells) + f"<td>{html.escape(str(best))}</td><td>{_fmt(g['seconds'].iloc[0], 0)}</td></tr>")
    over = [f"<tr><td>{html.escape(str(r.target))}</td><td>{html.escape(str(r.protocol))}</td>"
            f"<td>{html.escape(str(r.model))}{' <b>(main)</b>' if r.main else ''}</td><td>{html.escape(str(r.site))}</td>"
            f"<td>{r.n_points}</td><td>{_fmt(r.rmse, 3)}</td><td>{_fmt(r.crps, 3)}</td><td>{_fmt(r.coverage_90, 3)}</td>"
            f"<td>{_fmt(r.share_sites_beating_best_baseline, 2)}</td></tr>" for r in _over_sites(table).itertuples(index=False)]
    over_table = ("<h2>Over all sites</h2><p>RMSE: root of the point-weighted mean square; CRPS and coverage: "
                  "point-weighted means; wins: share of sites where the model beats that site's best baseline.</p>"
                  "<table id=over-sites><tr><th>target</th><th>protocol</th><th>model</th><th>sites</th><th>points</th>"
                  "<th>RMSE</th><th>CRPS</th><th>90 % coverage</th><th>wins</th></tr>" + "".join(over) + "</table>\n"
                  ) if over else ""
    folds = []
    for r in fold_ratios(table).itertuples(index=False):
        beats = _finite(r.ratio) and r.ratio < 1
        folds.append(f"<tr><td>{html.escape(str(r.series))}</td><td>{html.escape(str(r.protocol))}</td>"
                     f"<td>{html.escape(str(r.fold))}</td><td>{html.escape(str(r.model))}</td><td>{_fmt(r.rmse, 3)}</td>"
                     f"<td>{html.escape(str(r.best_baseline))}</td><td>{_fmt(r.rmse_best, 3)}</td>"
                     f"<td{' class=beats' if beats else ''}>{_fmt(r.ratio, 3)}</td>"
                     f"<td>{_fmt(r.mse_skill_vs_best_baseline, 3)}</td></tr>")
    fold_table = ("<h2>Main model against the best baseline</h2><p>RMSE at step H, pooled over the folds and in "
                  "each fold (each fold with its own best baseline). Green: ratio below 1, the main model wins.</p>"
                  "<table><tr><th>series</th><th>protocol</th><th>fold</th><th>main model</th><th>its RMSE</th>"
                  "<th>best baseline</th><th>its RMSE</th><th>ratio main / best</th><th>MSE skill vs best</th></tr>"
                  + "".join(folds) + "</table>\n") if folds else ""
    skip = ("<h2>Skipped</h2><ul id=skipped>" + "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>"
                                                       for k, v in skipped.items()) + "</ul>\n") if skipped else ""
    return ("<!doctype html><meta charset=utf-8><title>wq-pipeline: summary across series</title>"
            "<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}"
            ".beats{background:#e3f4e3}</style>"
            "<h1>Summary across series</h1><p>Step H on each series' own test points. Green: lower RMSE than every "
            "baseline of that series. Click a series for its full report.</p>"
            f"<table><tr><th>series</th><th>protocol</th>{head}<th>best baseline</th><th>run s</th></tr>"
            + "".join(rows) + "</table>\n" + over_table + fold_table + extra + skip)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v: Any, digits: int) -> str:
    return f"{v:.{digits}f}" if _finite(v) else "n/a"
