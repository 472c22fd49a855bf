"""One table across the targets (and protocols) of a multi-target ``wq evaluate`` run.

Rows are ``(target, protocol, model)``; the scores are those of each run's ``metrics.json`` at
step H on that run's test points, so models compare within a row group, not across targets.
``mse_skill_vs_best_baseline`` is ``1 - MSE / MSE(best baseline by RMSE)``: positive only where a
model beats every baseline (persistence, seasonal naive, level-adjusted seasonal naive, climatology, ARIMA, harmonic + AR) on that target.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any

import pandas as pd

COLUMNS = ("target", "unit", "protocol", "model", "n_points", "rmse", "mae", "nse", "kge", "skill",
           "mse_skill_vs_best_baseline", "best_baseline", "seconds")


def folder_name(target: str) -> str:
    """A target's output sub-folder: the column name with anything but letters, digits, ``._-``
    replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", target) or "_"


def summary_table(results: dict[str, dict[str, dict[str, Any]]]) -> pd.DataFrame:
    """``results[target][protocol]`` = that run's metrics -> the long table (module docstring);
    the best baseline and the MSE skill against it are the run's own
    (:func:`wq_pipeline.metrics.add_best_baseline_skill`)."""
    rows = []
    for target, runs in results.items():
        for protocol, m in runs.items():
            for name, s in m["models"].items():
                rows.append({"target": target, "unit": m.get("unit"), "protocol": protocol, "model": name,
                             "n_points": s.get("n_points"), "rmse": s.get("rmse"), "mae": s.get("mae"),
                             "nse": s.get("nse"), "kge": s.get("kge"), "skill": s.get("skill"),
                             "mse_skill_vs_best_baseline": s.get("mse_skill_best_baseline"),
                             "best_baseline": s.get("best_baseline"), "seconds": m.get("timings_s", {}).get("total")})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def summary_markdown(table: pd.DataFrame) -> str:
    """The table as Markdown: one row per target and protocol, NSE / RMSE of every model."""
    models = list(dict.fromkeys(table["model"]))
    head = "| target | protocol | " + " | ".join(f"{m} NSE / RMSE" for m in models) + " | best baseline | run s |"
    lines = [head, "|" + "---|" * (len(models) + 4)]
    for (target, protocol), g in table.groupby(["target", "protocol"], sort=False):
        by = g.set_index("model")
        cells = [f"{_fmt(by.at[m, 'nse'], 3)} / {_fmt(by.at[m, 'rmse'], 3)}" if m in by.index else "" for m in models]
        lines.append(f"| {target} | {protocol} | " + " | ".join(cells)
                     + f" | {g['best_baseline'].iloc[0]} | {_fmt(g['seconds'].iloc[0], 0)} |")
    return "\n".join(lines) + "\n"


def summary_html(table: pd.DataFrame) -> str:
    """A self-contained HTML page of :func:`summary_markdown`'s table, each target linking to its
    own report (``<target>/report.html``)."""
    models = list(dict.fromkeys(table["model"]))
    head = "".join(f"<th>{html.escape(m)}<br>NSE / RMSE</th>" for m in models)
    rows = []
    for (target, protocol), g in table.groupby(["target", "protocol"], sort=False):
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
    return ("<!doctype html><meta charset=utf-8><title>wq-pipeline: summary across targets</title>"
            "<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}"
            ".beats{background:#e3f4e3}</style>"
            "<h1>Summary across targets</h1><p>Step H on each target's own test points. Green: lower RMSE than every "
            "baseline of that target. Click a target for its full report.</p>"
            f"<table><tr><th>target</th><th>protocol</th>{head}<th>best baseline</th><th>run s</th></tr>"
            + "".join(rows) + "</table>\n")


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _fmt(v: Any, digits: int) -> str:
    return f"{v:.{digits}f}" if _finite(v) else "n/a"
