"""One table across the targets (and protocols) of a multi-target ``wq evaluate`` run.

Rows are ``(target, protocol, model)``; the scores are those of each run's ``metrics.json`` at
step H on that run's test points, so models compare within a row group, not across targets.
``mse_skill_vs_best_baseline`` is ``1 - MSE / MSE(best baseline by RMSE)``: positive only where a
model beats every baseline (persistence, seasonal naive, level-adjusted seasonal naive, climatology, ARIMA, harmonic + AR) on that target.

A run with several folds (``--folds``) adds rows per fold: ``fold`` is ``"pooled"`` for the
scores pooled over every fold's test points (the run's ``models``, the only rows of a one-fold
run), then ``1 .. K`` for each fold's own scores (``metrics['folds']``), with that fold's best
baseline. Readers of the pooled numbers keep ``fold == "pooled"``. ``main`` marks the run's main
model. The quantile scores at step H follow (``crps``, coverage of the 50 % and 90 % intervals,
the 90 % width, CRPS skill against climatology and persistence; empty for runs without quantiles).
The Markdown and HTML add, per target and protocol, the main model's RMSE against the
best baseline's in every fold.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any

import pandas as pd

COLUMNS = ("target", "unit", "protocol", "model", "n_points", "rmse", "mae", "nse", "kge", "skill",
           "mse_skill_vs_best_baseline", "best_baseline", "seconds", "fold", "main",
           "crps", "coverage_50", "coverage_90", "width_90", "crps_skill_climatology", "crps_skill_persistence")
POOLED = "pooled"


def folder_name(target: str) -> str:
    """A target's output sub-folder: the column name with anything but letters, digits, ``._-``
    replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", target) or "_"


def summary_table(results: dict[str, dict[str, dict[str, Any]]]) -> pd.DataFrame:
    """``results[target][protocol]`` = that run's metrics -> the long table (module docstring);
    the best baseline and the MSE skill against it are the run's own
    (:func:`wq_pipeline.metrics.add_best_baseline_skill`), per fold for the fold rows."""
    rows = []
    for target, runs in results.items():
        for protocol, m in runs.items():
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
                                 "seconds": seconds, "fold": fold, "main": name == main})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _pooled(table: pd.DataFrame) -> pd.DataFrame:
    """The pooled rows (all rows of a table from before folds existed)."""
    if "fold" not in table:
        return table
    return table[table["fold"].astype(str) == POOLED]


def fold_ratios(table: pd.DataFrame) -> pd.DataFrame:
    """Per target, protocol and fold (pooled first): the main model, its RMSE, the best
    baseline, its RMSE, ``ratio`` = RMSE main / RMSE best baseline and the main model's MSE
    skill against it. Empty when the table marks no main model."""
    cols = ["target", "protocol", "fold", "model", "rmse", "best_baseline", "rmse_best", "ratio",
            "mse_skill_vs_best_baseline"]
    if "main" not in table or "fold" not in table:
        return pd.DataFrame(columns=cols)
    out = []
    for (target, protocol, fold), g in table.groupby(["target", "protocol", table["fold"].astype(str)], sort=False):
        main = g[g["main"].astype(str).str.lower() == "true"]
        if main.empty:
            continue
        r = main.iloc[0]
        best = r["best_baseline"]
        hit = g[g["model"] == best]["rmse"]
        rmse_best = float(hit.iloc[0]) if len(hit) and _finite(hit.iloc[0]) else None
        ratio = float(r["rmse"]) / rmse_best if rmse_best and _finite(r["rmse"]) else None
        out.append({"target": target, "protocol": protocol, "fold": fold, "model": r["model"], "rmse": r["rmse"],
                    "best_baseline": best, "rmse_best": rmse_best, "ratio": ratio,
                    "mse_skill_vs_best_baseline": r["mse_skill_vs_best_baseline"]})
    return pd.DataFrame(out, columns=cols)


def summary_markdown(table: pd.DataFrame) -> str:
    """The table as Markdown: one row per target and protocol, NSE / RMSE of every model (pooled
    over the folds), then the main model against the best baseline in every fold."""
    pooled = _pooled(table)
    models = list(dict.fromkeys(pooled["model"]))
    head = "| target | protocol | " + " | ".join(f"{m} NSE / RMSE" for m in models) + " | best baseline | run s |"
    lines = [head, "|" + "---|" * (len(models) + 4)]
    for (target, protocol), g in pooled.groupby(["target", "protocol"], sort=False):
        by = g.set_index("model")
        cells = [f"{_fmt(by.at[m, 'nse'], 3)} / {_fmt(by.at[m, 'rmse'], 3)}" if m in by.index else "" for m in models]
        lines.append(f"| {target} | {protocol} | " + " | ".join(cells)
                     + f" | {g['best_baseline'].iloc[0]} | {_fmt(g['seconds'].iloc[0], 0)} |")
    ratios = fold_ratios(table)
    if len(ratios):
        lines += ["", "Main model against the best baseline, RMSE at step H (ratio below 1: the main model wins):", "",
                  "| target | protocol | fold | main model | its RMSE | best baseline | its RMSE | ratio main / best |"
                  " MSE skill vs best |", "|---|---|---|---|---|---|---|---|---|"]
        for r in ratios.itertuples(index=False):
            lines.append(f"| {r.target} | {r.protocol} | {r.fold} | {r.model} | {_fmt(r.rmse, 3)} | {r.best_baseline} | "
                         f"{_fmt(r.rmse_best, 3)} | {_fmt(r.ratio, 3)} | {_fmt(r.mse_skill_vs_best_baseline, 3)} |")
    return "\n".join(lines) + "\n"


def summary_html(table: pd.DataFrame) -> str:
    """A self-contained HTML page of :func:`summary_markdown`'s tables, each target linking to its
    own report (``<target>/report.html``)."""
    pooled = _pooled(table)
    models = list(dict.fromkeys(pooled["model"]))
    head = "".join(f"<th>{html.escape(m)}<br>NSE / RMSE</th>" for m in models)
    rows = []
    for (target, protocol), g in pooled.groupby(["target", "protocol"], sort=False):
        by = g.set_index("model")
        best = g["best_baseline"].iloc[0]
        cells = []
        for m in models:
            beats = _finite(by.at[m, "mse_skill_vs_best_baseline"]) and by.at[m, "mse_skill_vs_best_baseline"] > 0
            text = f"{_fmt(by.at[m, 'nse'], 3)} / {_fmt(by.at[m, 'rmse'], 3)}"
            cells.append(f"<td{' class=beats' if beats else ''}>{text}</td>")
        link = html.escape(f"{folder_name(target)}/report.html")
        leaky = " <b>LEAKY</b>" if protocol == "global" else ""
        rows.append(f"<tr><td><a href=\"{link}\">{html.escape(target)}</a></td><td>{html.escape(protocol)}{leaky}</td>"
                    + "".join(cells) + f"<td>{html.escape(str(best))}</td><td>{_fmt(g['seconds'].iloc[0], 0)}</td></tr>")
    folds = []
    for r in fold_ratios(table).itertuples(index=False):
        beats = _finite(r.ratio) and r.ratio < 1
        folds.append(f"<tr><td>{html.escape(str(r.target))}</td><td>{html.escape(str(r.protocol))}</td>"
                     f"<td>{html.escape(str(r.fold))}</td><td>{html.escape(str(r.model))}</td><td>{_fmt(r.rmse, 3)}</td>"
                     f"<td>{html.escape(str(r.best_baseline))}</td><td>{_fmt(r.rmse_best, 3)}</td>"
                     f"<td{' class=beats' if beats else ''}>{_fmt(r.ratio, 3)}</td>"
                     f"<td>{_fmt(r.mse_skill_vs_best_baseline, 3)}</td></tr>")
    fold_table = ("<h2>Main model against the best baseline</h2><p>RMSE at step H, pooled over the folds and in "
                  "each fold (each fold with its own best baseline). Green: ratio below 1, the main model wins.</p>"
                  "<table><tr><th>target</th><th>protocol</th><th>fold</th><th>main model</th><th>its RMSE</th>"
                  "<th>best baseline</th><th>its RMSE</th><th>ratio main / best</th><th>MSE skill vs best</th></tr>"
                  + "".join(folds) + "</table>\n") if folds else ""
    return ("<!doctype html><meta charset=utf-8><title>wq-pipeline: summary across targets</title>"
            "<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}"
            ".beats{background:#e3f4e3}</style>"
            "<h1>Summary across targets</h1><p>Step H on each target's own test points. Green: lower RMSE than every "
            "baseline of that target. Click a target for its full report.</p>"
            f"<table><tr><th>target</th><th>protocol</th>{head}<th>best baseline</th><th>run s</th></tr>"
            + "".join(rows) + "</table>\n" + fold_table)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v: Any, digits: int) -> str:
    return f"{v:.{digits}f}" if _finite(v) else "n/a"
