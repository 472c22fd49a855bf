"""Shared helpers of the benchmark scripts (plain scripts: ``make bench`` runs them, the tests do not).

Every benchmark prints its figures and writes ``bench/results/<name>.json``:
``{"name", "date", "command", "machine", "figures": {...}, "targets": [{"what", "measured",
"target", "met"}], "notes": [...]}``. ``bench/report.py`` turns them into ``BENCHMARKS.md``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("WQ_NO_PROGRESS", "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
SHARED = Path(os.environ.get("WQ_SHARED_DATA", REPO.parent / "shared" / "data"))
SAPELO = SHARED / "nerr_sapelo_deancreek_2012.csv"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def machine() -> dict[str, Any]:
    """CPU count, CPU model, load average and library versions of this run."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = []
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    from importlib.metadata import PackageNotFoundError, version

    for pkg in ("numba", "vmdpy", "vmdrs-py", "EMD-signal", "pyemd-rs", "tensorflow-cpu", "keras"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return {"nproc": os.cpu_count(), "cpu": model, "loadavg_at_start": load, "versions": versions}


def target(what: str, measured: float, goal: float, *, higher_is_better: bool, unit: str = "") -> dict[str, Any]:
    """One row of the target table; ``met`` compares ``measured`` with ``goal``."""
    met = measured >= goal if higher_is_better else measured <= goal
    sign = ">=" if higher_is_better else "<="
    return {"what": what, "measured": _round(measured), "target": f"{sign} {goal:g}{unit}", "unit": unit,
            "met": bool(met)}


def _round(v: float) -> float:
    if not np.isfinite(v):
        return float(v)
    return float(f"{v:.4g}")


def write_result(name: str, figures: dict[str, Any], targets: list[dict[str, Any]], notes: list[str],
                 started: float, machine_info: dict[str, Any], shortfall: str = "") -> Path:
    """Write ``bench/results/<name>.json`` atomically and print a short summary. ``shortfall``:
    why a missed target is missed (printed under the target table); only kept when one is missed."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "name": name,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine_info,
        "figures": figures,
        "targets": targets,
        "notes": notes,
        "shortfall": shortfall if any(not t["met"] for t in targets) else "",
    }
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2, default=_json_default))
    os.replace(tmp, path)
    print(f"\n== {name}: wrote {path.relative_to(REPO)}")
    for t in targets:
        print(f"   {'MET ' if t['met'] else 'MISS'} {t['what']}: {t['measured']}{t['unit']} (target {t['target']})")
    return path


def write_table(name: str, lines: list[str], data: dict[str, Any]) -> None:
    """Write ``results/<name>.md`` (the lines) and ``results/<name>.json`` (``data``); print the table."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    md = "\n".join(lines) + "\n"
    (RESULTS / f"{name}.md").write_text(md)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=1, default=_json_default))
    print(md)


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


# --------------------------------------------------------------------------- data


def sapelo_hourly() -> np.ndarray:
    """Sapelo Dean Creek 2012 DO (mg/L) on the hourly grid after the pipeline's QC, NaN in long gaps."""
    from wq_pipeline.data.station import load_station

    return load_station(SAPELO, "DO_obs", freq="1h").values.to_numpy(dtype=float)


def stepwise_windows(L: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Every stepwise window of the hourly series: positions t whose trailing L points are all
    finite, and the windows ``x[t-L+1 .. t]`` (B, L)."""
    from wq_pipeline.models.protocol import window_ok

    v = sapelo_hourly()
    pos = np.flatnonzero(window_ok(np.isfinite(v), L))
    return pos, v[pos[:, None] + np.arange(-L + 1, 1)[None, :]]


def even_sample(n_total: int, n: int) -> np.ndarray:
    """``n`` indices spread evenly over ``range(n_total)``."""
    return np.unique(np.linspace(0, n_total - 1, min(n, n_total)).round().astype(int))


# --------------------------------------------------------------------------- memory


def rss_bytes(field: str = "VmRSS") -> int:
    """This process's resident set (``VmRSS``) or its peak (``VmHWM``) in bytes, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (``VmHWM``) to its current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def tree_rss_bytes(root: int, per_pid: dict[int, tuple[int, str]] | None = None) -> int:
    """Sum of VmRSS over ``root`` and all its descendants (from /proc). ``per_pid``, if given, is
    updated with each process's largest RSS seen so far and its command line."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                    total += rss
                    if per_pid is not None and rss > per_pid.get(pid, (0, ""))[0]:
                        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                        per_pid[pid] = (rss, cmd[:120])
                    break
        except OSError:
            pass
        stack.extend(children.get(pid, []))
    return total


def mib(b: float) -> float:
    return round(b / 2**20, 1)
