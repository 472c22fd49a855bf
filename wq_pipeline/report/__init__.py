"""HTML evaluation report of a ``wq evaluate`` run: one self-contained file, readable offline.

``build_report(run_dir)`` reads the run files (``metrics.json``, ``forecasts.csv``,
``weights.csv``, ``stationarity.csv``, ``series.csv``, ``components.csv``; all but the first
optional, so folders of older runs still give a report), computes what the charts and tables
show (:mod:`.figures`, pure functions), renders ``templates/report.html.j2`` (Jinja2, autoescape
on) and writes ``run_dir/report.html`` atomically. A folder holding ``stepwise/`` and ``global/``
runs (``wq evaluate --protocol both``) gives a report on the stepwise run plus a side-by-side
comparison with the leaky global run, written to the parent folder.

Why uPlot for the charts: the report must open from disk with no network and stay under 5 MB
for a year of hourly data. Plotly's bundle alone is about 4.6 MB; uPlot (MIT, v1.6.32, vendored
from the npm package into ``static/``) is about 50 KB, draws tens of thousands of points on a
canvas quickly, zooms by dragging (double-click resets), syncs cursors between charts and needs
no other dependency. Long full-record series are min/max decimated to about 2,000 points per
series (spikes and gaps survive); the test-period forecasts stay at full resolution up to 12,000
points.

Escaping: every string from the run (site, target, column and file names, the command line)
reaches the page either through Jinja2 autoescaping or inside the embedded JSON, where ``<``,
``>``, ``&`` and the JavaScript line separators are written as ``\\uXXXX`` escapes so that no
value can close the ``<script>`` element. A Content-Security-Policy forbids every network fetch.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wq_pipeline.errors import InputError
from wq_pipeline.report import figures as fg

__all__ = ["build_report", "read_run", "build_context", "render_html", "json_for_script", "RunFiles", "find_runs"]

UPLOT_VERSION = "1.6.32"
REPORT_NAME = "report.html"


@dataclass
class RunFiles:
    """The parsed files of one run folder (optional CSVs are None when absent)."""

    path: Path
    metrics: dict[str, Any]
    forecasts: pd.DataFrame | None
    stationarity: pd.DataFrame | None
    series: pd.DataFrame | None
    components: pd.DataFrame | None
    weights: pd.DataFrame | None = None  # the ensemble's member weights (runs before the ensemble: None)


def read_run(run_dir: Path) -> RunFiles:
    """Read one run folder. Raises :class:`InputError` when ``metrics.json`` is missing or unreadable."""
    run_dir = Path(run_dir)
    mpath = run_dir / "metrics.json"
    if not mpath.is_file():
        raise InputError(f"{run_dir}: no metrics.json (not a folder written by 'wq evaluate')")
    try:
        metrics = json.loads(mpath.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{mpath}: not readable as JSON ({exc})") from exc
    if not isinstance(metrics, dict) or "models" not in metrics:
        raise InputError(f"{mpath}: no 'models' entry (not a metrics file written by 'wq evaluate')")

    def csv(name: str, **kw: Any) -> pd.DataFrame | None:
        p = run_dir / name
        if not p.is_file():
            return None
        try:
            return pd.read_csv(p, **kw)
        except (OSError, ValueError) as exc:
            raise InputError(f"{p}: not readable as CSV ({exc})") from exc

    return RunFiles(
        path=run_dir, metrics=metrics, forecasts=csv("forecasts.csv"), stationarity=csv("stationarity.csv"),
        series=csv("series.csv", keep_default_na=True, dtype={"removed": str}),
        components=csv("components.csv"), weights=csv("weights.csv"),
    )


def find_runs(run_dir: Path) -> tuple[Path, Path | None]:
    """``(main run folder, leaky global run folder or None)`` for a run folder or a
    ``stepwise/`` + ``global/`` folder."""
    run_dir = Path(run_dir)
    sw, gl = run_dir / "stepwise", run_dir / "global"
    if (sw / "metrics.json").is_file() and (gl / "metrics.json").is_file():
        return sw, gl
    if (run_dir / "metrics.json").is_file():
        return run_dir, None
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such folder")
    raise InputError(f"{run_dir}: no metrics.json, and no stepwise/ and global/ run folders holding one")


# --------------------------------------------------------------------------- context


def build_context(run: RunFiles, leaky: RunFiles | None = None, rel_main: str | None = None) -> dict[str, Any]:
    """Everything the template shows, computed from the run files (no HTML here)."""
    m = run.metrics
    charts: list[dict[str, Any]] = []

    def add(spec: dict[str, Any] | None) -> dict[str, Any] | None:
        if spec is not None:
            charts.append(spec)
        return spec

    ctx: dict[str, Any] = {"m": m, "rel_main": rel_main, "leaky_run": None}
    ctx["head"] = fg.headline(m, run.forecasts)
    ctx["step_seconds"] = fg.step_seconds(m.get("freq"))
    ctx["qc_rows"] = fg.qc_table(m.get("qc") or {})
    ctx["qc_rules"] = (m.get("qc") or {}).get("rules") or []
    ctx["qc_chart"] = add(fg.qc_chart(run.series, m)) if run.series is not None and len(run.series) else None
    ctx["stationarity"] = fg.stationarity_rows(run.stationarity) if run.stationarity is not None else []
    if run.components is not None and len(run.components):
        ctx["decomp_charts"] = [add(c) for c in fg.decomposition_charts(run.components, m)]
        spec = fg.spectra(run.components, m.get("freq"))
        add(spec["chart"])
        ctx["spectra"] = spec
    else:
        ctx["decomp_charts"], ctx["spectra"] = [], None
    if run.forecasts is not None and len(run.forecasts):
        ctx["forecast_chart"] = add(fg.forecast_chart(run.forecasts, m))
        res = fg.residual_charts(run.forecasts, m)
        add(res["hist"])
        add(res["acf"])
        ctx["residuals"] = res
    else:
        ctx["forecast_chart"], ctx["residuals"] = None, None
    unc = fg.uncertainty_section(m, run.forecasts)
    if unc is not None:
        for c in unc["charts"]:
            add(c)
    ctx["uncertainty"] = unc
    ens = fg.ensemble_section(m, run.weights)
    if ens is not None:
        for c in ens["charts"]:
            add(c)
    ctx["ensemble"] = ens
    ctx["fold_rows"] = fg.fold_rows(m)
    ctx["folds"] = fg.fold_periods(m)
    ctx["skill_chart"] = add(fg.skill_chart(m))
    ctx["metrics_table"] = fg.metrics_rows(m)
    train = fg.training_summary(m)
    for c in train["charts"]:
        add(c)
    ctx["training"] = train
    ctx["timings"] = fg.timing_rows(m)
    ctx["equivalent_command"] = fg.equivalent_command(m)
    if leaky is not None:
        comp = fg.protocol_comparison(m, leaky.metrics)
        add(comp["chart"])
        ctx["protocols"] = comp
        ctx["leaky_run"] = leaky.metrics
        ctx["leaky_command"] = leaky.metrics.get("command") or fg.equivalent_command(leaky.metrics)
    else:
        ctx["protocols"] = None
    ctx["charts"] = charts
    ctx["chart_ids"] = [c["id"] for c in charts]
    ctx["generated"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    ctx["model_labels"] = fg.MODEL_LABELS
    return ctx


# --------------------------------------------------------------------------- rendering


_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def json_for_script(obj: Any) -> str:
    """JSON safe to place inside ``<script type="application/json">``: no ``<``, ``>`` or ``&``
    survive (``</script>`` and ``<!--`` cannot occur), NaN and infinities become null."""
    text = json.dumps(_clean(obj), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for ch, esc in _SCRIPT_ESCAPES.items():
        text = text.replace(ch, esc)
    return text


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_clean(v) for v in obj.tolist()]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _static(name: str) -> str:
    text = (resources.files(__package__) / "static" / name).read_text(encoding="utf-8")
    if "</script" in text.lower() or "</style" in text.lower():
        raise RuntimeError(f"static/{name} cannot be inlined: it contains a closing script/style tag")
    return text


def _fmt(v: Any, digits: int = 4, signed: bool = False) -> str:
    """Number for display: ``n/a`` for missing values, otherwise ``digits`` significant digits."""
    if v is None or isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        return "n/a" if v is None else str(v)
    f = float(v)
    if not math.isfinite(f):
        return "n/a"
    if f == 0:
        return "0"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):+,d}" if signed else f"{int(v):,d}"
    if f != 0 and (abs(f) >= 10 ** (digits + 2) or abs(f) < 1e-3):
        s = f"{f:+.{max(digits - 1, 1)}e}" if signed else f"{f:.{max(digits - 1, 1)}e}"
    else:
        s = f"{f:+.{digits}g}" if signed else f"{f:.{digits}g}"
        if "e" in s:
            s = f"{f:+.{digits - 1}f}" if signed else f"{f:.{digits - 1}f}"
    return s.replace("-", "\u2212")


def _pct(v: Any, digits: int = 1, signed: bool = False) -> str:
    if v is None or not isinstance(v, (int, float)) or not math.isfinite(v):
        return "n/a"
    s = f"{100 * v:+.{digits}f}%" if signed else f"{100 * v:.{digits}f}%"
    return s.replace("-", "\u2212")


def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader(__package__, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = _fmt
    env.filters["pct"] = _pct
    env.filters["when"] = fg.time_text
    env.filters["fmtjson"] = lambda v: json.dumps(v, ensure_ascii=False, default=str)
    return env


def render_html(ctx: dict[str, Any]) -> str:
    """Render the report page from a context made by :func:`build_context`."""
    env = _environment()
    payload = {
        "charts": ctx["charts"],
        "meta": {"site": ctx["m"].get("site"), "target": ctx["m"].get("target"), "unit": ctx["m"].get("unit")},
    }
    return env.get_template("report.html.j2").render(
        **ctx,
        data_json=json_for_script(payload),
        uplot_js=_static("uPlot.iife.min.js"),
        uplot_css=_static("uPlot.min.css"),
        report_js=_static("report.js"),
        report_css=_static("report.css"),
        uplot_version=UPLOT_VERSION,
    )


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def build_report(run_dir: Path) -> Path:
    """Write ``run_dir/report.html`` (atomically) for a run folder and return its path.

    ``run_dir`` is either a folder written by ``wq evaluate`` or a folder with ``stepwise/`` and
    ``global/`` run folders; the latter gives a report on the stepwise run with a side-by-side
    comparison of the two protocols (section 9). Raises :class:`InputError` when no run is found.
    """
    run_dir = Path(run_dir)
    main_dir, leaky_dir = find_runs(run_dir)
    main = read_run(main_dir)
    leaky = read_run(leaky_dir) if leaky_dir is not None else None
    ctx = build_context(main, leaky, rel_main=main_dir.name if leaky_dir is not None else None)
    out = run_dir / REPORT_NAME
    _write_atomic(out, render_html(ctx))
    return out
