"""Rewrite ``BENCHMARKS.md`` from ``bench/results/*.json`` (run last by ``make bench``)."""

from __future__ import annotations

import datetime as _dt
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

ORDER = ["vmd_single", "vmd_stepwise", "ceemdan_stepwise", "training", "evaluate_demo", "backfill", "fleet_retrain"]
TITLES = {
    "vmd_single": "One series, N = 16,000, K = 8 (VMD)",
    "vmd_stepwise": "Stepwise VMD, Sapelo hourly, all origins, L = 512, K = 8",
    "ceemdan_stepwise": "Stepwise CEEMDAN, same windows, fixed component count",
    "training": "Training the component models vs one plain LSTM",
    "evaluate_demo": "`wq evaluate` demo run end to end",
    "backfill": "`wq backfill`: one month of hourly forecasts (720 issue times), Sapelo demo model",
    "fleet_retrain": "Weekly retrain of the NEON fleet: one global version against one version per site",
}


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e-2 and v != 0 else f"{v:,.4g}"
    return str(v)


def _flat(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            rows.extend(_flat(v, key + "."))
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for i, item in enumerate(v):
                label = item.get("name", i)
                rows.append((f"{key}[{label}]", ", ".join(f"{a}={_fmt(b)}" for a, b in item.items() if a != "name")))
        elif isinstance(v, list):
            rows.append((key, ", ".join(_fmt(x) for x in v)))
        else:
            rows.append((key, v))
    return rows


# Tables written by the benches with C.write_table (or skill.py): (name, heading, note after it)
SECTIONS = [
    ("skill", "Skill: the main model against the best baseline on series and seasons nobody tuned for", ""),
    ("level_free_ablation", "Level-free networks on and off", ""),
    ("ensemble_design", "Ensemble design: rule and half-life chosen on the development set", ""),
    ("ensemble_pruning", "Serving a smaller ensemble: dropping members with negligible validation weight",
     "Every threshold costs skill on both sets (worst ratio and median MSE skill), for about one network fewer per "
     "fold; serving meets its speed targets with every member, so the served ensemble keeps them all."),
    ("last_week_weights", "Which member the main model weighted most in its last test week", ""),
    ("probabilistic", "Honest quantiles: coverage and CRPS of the main model", ""),
    ("neon_challenge", "NEON daily oxygen in the Forecasting Challenge's setting: 2022, horizons 1-30 days", ""),
    ("fleet", "Fleets: every NEON site, global networks against local ones", ""),
    ("end_effects", "End effects of trailing-window decomposition", ""),
    ("published", "The published method on real data, honest and leaky", ""),
]


def main() -> None:
    results = {}
    for name in ORDER:
        p = C.RESULTS / f"{name}.json"
        if p.exists():
            results[name] = json.loads(p.read_text())
    lines = ["# Benchmarks", ""]
    lines.append(f"Written by `bench/report.py` on {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC from "
                 "`bench/results/*.json`; rerun everything with `make bench`. Ratios are measured side by side in "
                 "the same run of a script. The machine is shared: the load average at the start of each "
                 "benchmark is listed with it.")
    lines.append("")
    machines = {(r["machine"]["nproc"], r["machine"]["cpu"]) for r in results.values()}
    for nproc, cpu in sorted(machines, key=str):
        lines.append(f"Machine: {nproc} CPUs (`nproc`), {cpu} (/proc/cpuinfo).")
    if results:
        v = next(iter(results.values()))["machine"]["versions"]
        lines.append("Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".")
    lines += ["", "## Targets", "", "| benchmark | what | measured | target | met |", "| --- | --- | --- | --- | --- |"]
    # skill.json's figures are the per-case runs (tabled in skill.md below): only its targets here
    skill_json = C.RESULTS / "skill.json"
    targets_of = dict(results)
    if skill_json.exists():
        targets_of["skill"] = json.loads(skill_json.read_text())
    for name, r in targets_of.items():
        for t in r["targets"]:
            lines.append(f"| {name} | {t['what']} | {_fmt(t['measured'])}{t['unit']} | {t['target']} | "
                         f"{'yes' if t['met'] else '**no**'} |")
    shortfalls = [(n, r["shortfall"]) for n, r in targets_of.items() if r.get("shortfall")]
    if shortfalls:
        lines += ["", "### Shortfalls", ""]
        lines += [f"- **{n}**: {text}" for n, text in shortfalls]
    missing = [n for n in ORDER if n not in results]
    if missing:
        lines += ["", f"Not run yet: {', '.join(missing)}."]
    for name, r in results.items():
        m = r["machine"]
        lines += ["", f"## {TITLES.get(name, name)}", "",
                  f"`{r['command']}` on {r['date']} ({r['seconds']} s; load average at start "
                  f"{', '.join(map(str, m.get('loadavg_at_start', [])))}).", "",
                  "| figure | value |", "| --- | --- |"]
        for k, v in _flat(r["figures"]):
            lines.append(f"| {k} | {_fmt(v)} |")
        if r["notes"]:
            lines.append("")
            lines += [f"- {n}" for n in r["notes"]]
    for name, heading, after in SECTIONS:
        md = C.RESULTS / f"{name}.md"
        if md.exists():
            lines += ["", f"## {heading} (`bench/{name}.py`)", "", md.read_text(), *([after] if after else [])]
    out = C.REPO / "BENCHMARKS.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out.relative_to(C.REPO)} ({len(results)} benchmarks)")


if __name__ == "__main__":
    main()
