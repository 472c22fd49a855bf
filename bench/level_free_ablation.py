"""Ablation of level-free networks (``--no-level-free``) on the development cases.

Runs every ``dev`` case of ``bench/skill.py`` again with ``level_free=False`` (every network
scaled with its training statistics, the published method's way) and compares, per (series,
fold, step), the RMSE ratio to the best baseline of the main model, the plain LSTM, the
per-component model and the hybrid with the default run's (``bench/results/skill_runs.json``,
which must hold the dev cases). Writes ``bench/results/level_free_ablation.json`` and ``.md``.
About 10 minutes on 2 cores.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import numpy as np  # noqa: E402

import skill  # noqa: E402

MODELS = ("ensemble", "lstm", "decomp_feca_lstm", "hybrid_feca_lstm")


def ratios(run: dict[str, Any]) -> dict[tuple[int, int], dict[str, float]]:
    """``{(fold, step): {model: RMSE / best baseline RMSE}}`` of one case's run."""
    out = {}
    for row in run["folds"]:
        best = row["rmse"][row["best_baseline"]]
        out[(row["fold"], row["step"])] = {m: row["rmse"][m] / best for m in MODELS}
    return out


def main() -> None:
    t0 = time.perf_counter()
    default = {r["key"]: r for r in json.loads(skill.RUNS.read_text()) if r.get("set") == "dev"}
    skill.CACHE = C.RESULTS / "cache" / "no_level_free"
    rows = []
    for case in skill.CASES:
        if case.set != "dev" or case.key not in default:
            continue
        print(f"{case.key} without level-free networks ...", flush=True)
        off = skill.one_case(skill.Case(case.key, case.set, case.label, case.data, case.target, case.steps,
                                        dict(case.options, level_free=False), case.rows_before))
        on_r, off_r = ratios(default[case.key]), ratios(off)
        for key in sorted(on_r):
            if key in off_r:
                rows.append({"case": case.key, "fold": key[0], "step": key[1],
                             **{f"{m}_on": on_r[key][m] for m in MODELS}, **{f"{m}_off": off_r[key][m] for m in MODELS}})
    lines = ["Dev cases of `bench/skill.py`, default settings with level-free networks (on) and with `--no-level-free` "
             "(off). Each cell: RMSE / RMSE of the best baseline on the same test points, median over the (series, "
             "fold, step) pairs, and the worst pair in brackets.", "",
             "| model | level-free (default) | not level-free |", "|---|---|---|"]
    summary = {}
    for m in MODELS:
        on = np.array([r[f"{m}_on"] for r in rows])
        off = np.array([r[f"{m}_off"] for r in rows])
        summary[m] = {"median_on": float(np.median(on)), "max_on": float(on.max()),
                      "median_off": float(np.median(off)), "max_off": float(off.max())}
        lines.append(f"| {m} | {np.median(on):.3f} ({on.max():.3f}) | {np.median(off):.3f} ({off.max():.3f}) |")
    lines += ["", "| case | fold | step | " + " | ".join(f"{m} on / off" for m in MODELS) + " |",
              "|---|---|---|" + "---|" * len(MODELS)]
    for r in rows:
        lines.append(f"| {r['case']} | {r['fold']} | {r['step']} | "
                     + " | ".join(f"{r[f'{m}_on']:.3f} / {r[f'{m}_off']:.3f}" for m in MODELS) + " |")
    md = "\n".join(lines) + "\n"
    (C.RESULTS / "level_free_ablation.md").write_text(md)
    (C.RESULTS / "level_free_ablation.json").write_text(json.dumps(
        {"seconds": round(time.perf_counter() - t0, 1), "summary": summary, "pairs": rows}, indent=1))
    print(md)


if __name__ == "__main__":
    main()
