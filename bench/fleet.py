"""Fleets: every NEON site in one run, global networks against local ones, in the Forecasting
Challenge's setting.

For each variable (dissolved oxygen, water temperature) of the shipped NEON daily file, every site
is evaluated with 2022 as the test period, horizons 1-30 days and the skill bench's daily
settings (the same as ``bench/neon_challenge.py``), scored with ``--challenge``:

* **local**: each site alone (``run_evaluation``), one after another, as ``wq evaluate --site S``;
* **global**: all sites at once with ``--global`` (each network kind trained once on every site's
  samples, :mod:`wq_pipeline.evaluation.global_networks`).

A site too short for the settings is skipped (the same rule for both: a site whose validation
period has too few origins gets it doubled once). Figures, per variable:

* the main model's mean CRPS over sites (each site's mean over horizons 1-30 at every test
  origin, and at the 30-day-window origins), against the challenge's climatology and persistence
  (``metrics['challenge']``), and for oxygen against the published darts ensemble's 0.47 mg/L;
* global against local: the share of sites where the global run's main-model CRPS is at most the
  local one's, on the same points;
* cost: the global run's wall time against the sum of the local runs' (both measured here, all
  sites, 2 cores).

Writes ``bench/results/fleet.json`` and ``.md``. About an hour on 2 cores.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from wq_pipeline.config import EvaluateConfig  # noqa: E402
from wq_pipeline.errors import InputError  # noqa: E402
from wq_pipeline.evaluation.global_networks import run_global  # noqa: E402
from wq_pipeline.evaluation.pipeline import MAIN_MODEL, StageRunner, preflight, run_evaluation  # noqa: E402

DATA = C.SHARED / "neon_aquatics_daily_2020_2022.csv.gz"
SETTINGS = dict(freq="1D", time_col="datetime", horizon=30, window=28, decomp_window=64, modes=4, folds=1,
                test_start="2022-01-01", challenge=True)
VARIABLES = {"oxygen": "mg/L", "temperature": "degC"}
PUBLISHED = {"oxygen": {"darts_ensemble": 0.47, "climatology": 0.62},
             "temperature": {"darts_ensemble": 1.18, "climatology": 1.46}}
OUT = Path("/tmp/wq-fleet")


def runnable(variable: str) -> tuple[dict[str, EvaluateConfig], dict[str, str]]:
    """Every site's config that passes the checks (validation doubled once where too short), and
    the skipped sites' reasons."""
    df = pd.read_csv(DATA, usecols=["site_id", variable])
    cfgs, skipped = {}, {}
    for site in sorted(df.loc[df[variable].notna(), "site_id"].unique()):
        cfg = EvaluateConfig(data=DATA, site=site, target=variable, out=OUT / variable / "local" / site,
                             command=f"bench/fleet.py ({variable}, {site})", **SETTINGS)
        for attempt in (cfg, cfg.model_copy(update={"val_fraction": 2 * cfg.val_fraction})):
            try:
                preflight(attempt)
                cfgs[site] = attempt
                break
            except InputError as exc:
                skipped[site] = str(exc).split("; ")[0].split(": ", 1)[-1]
        if site in cfgs:
            skipped.pop(site, None)
    return cfgs, skipped


def site_scores(metrics: dict[str, Any]) -> dict[str, Any]:
    """The main model's and the challenge baselines' mean CRPS (every origin and window origins)."""
    ch = metrics["challenge"]
    return {part: {name: sc["crps"] for name, sc in ch[part]["models"].items()} for part in ("all_origins", "windows")}


def main() -> None:
    t_all = time.perf_counter()
    figures: dict[str, Any] = {}
    for variable, unit in VARIABLES.items():
        cfgs, skipped = runnable(variable)
        print(f"{variable}: {len(cfgs)} sites, {len(skipped)} skipped", flush=True)
        local, local_s = {}, {}
        for site, cfg in cfgs.items():
            t0 = time.perf_counter()
            try:
                local[site] = site_scores(run_evaluation(cfg, StageRunner()).metrics)
            except InputError as exc:
                skipped[site] = str(exc)
            local_s[site] = round(time.perf_counter() - t0, 1)
            print(f"  local {site}: {local.get(site, {}).get('all_origins')} ({local_s[site]} s)", flush=True)
        gcfgs = {s: c.model_copy(update={"out": OUT / variable / "global" / s}) for s, c in cfgs.items() if s in local}
        t0 = time.perf_counter()
        results, errors = run_global(gcfgs)
        global_s = round(time.perf_counter() - t0, 1)
        glob = {s: site_scores(r.metrics) for s, r in results.items()}
        print(f"  global: {len(glob)} sites in {global_s} s; errors: {list(errors)}", flush=True)
        scored = {s for s in local if local[s]["all_origins"][MAIN_MODEL] is not None}
        for s in set(local) - scored:  # the training years share no day of year with 2022
            skipped[s] = "no point the challenge's climatology can score"
        both = sorted(scored & set(glob))
        rows = [{"site": s, "local": local[s], "global": glob[s], "local_seconds": local_s[s]} for s in both]

        def mean(which: str, part: str, name: str) -> float:
            return float(np.mean([r[which][part][name] for r in rows]))

        fig = {"sites": len(both), "sites_run": len(gcfgs), "skipped": skipped, "rows": rows,
               "global_seconds": global_s, "local_seconds": round(sum(local_s[s] for s in gcfgs), 1), "unit": unit,
               "published": PUBLISHED[variable]}
        for part in ("all_origins", "windows"):
            fig[part] = {f"{which}_{name}": mean(which, part, name) for which in ("local", "global")
                         for name in (MAIN_MODEL, "challenge_climatology", "challenge_persistence")}
        fig["share_global_le_local"] = float(np.mean([r["global"]["all_origins"][MAIN_MODEL]
                                                      <= r["local"]["all_origins"][MAIN_MODEL] for r in rows]))
        fig["cost_ratio"] = global_s / fig["local_seconds"] if fig["local_seconds"] else float("nan")
        figures[variable] = fig
    C.write_table("fleet", markdown(figures).splitlines(), {"figures": figures, "seconds": round(time.perf_counter() - t_all, 1),
                                                          "machine": C.machine()})


def markdown(figures: dict[str, Any]) -> str:
    """The tables of ``bench/results/fleet.md``."""
    lines = ["Fleets of NEON sites (`bench/fleet.py`): 2022 as test, horizons 1-30 days, `--challenge` scores; mean "
             "CRPS over sites (each site's mean over horizons 1-30). Local: each site alone; global: `--global`, one "
             "network of each kind for all sites.", "",
             "| variable | origins | sites | main, local | main, global | challenge climatology | challenge persistence "
             "| published darts ensemble / climatology |", "|---|---|---|---|---|---|---|---|"]
    for variable, f in figures.items():
        for part in ("all_origins", "windows"):
            p = f[part]
            pub = f["published"]
            lines.append(f"| {variable} ({f['unit']}) | {part.replace('_', ' ')} | {f['sites']} | "
                         f"{p['local_' + MAIN_MODEL]:.3f} | {p['global_' + MAIN_MODEL]:.3f} | "
                         f"{p['local_challenge_climatology']:.3f} | {p['local_challenge_persistence']:.3f} | "
                         f"{pub['darts_ensemble']} / {pub['climatology']} |")
    lines += ["", "| variable | global CRPS <= local, share of sites | sites run | global run, s | local runs, s (sum) | "
              "global / local time |", "|---|---|---|---|---|---|"]
    for variable, f in figures.items():
        lines.append(f"| {variable} | {f['share_global_le_local']:.0%} | {f.get('sites_run', f['sites'])} | "
                     f"{f['global_seconds']} | {f['local_seconds']} | {f['cost_ratio']:.2f} |")
    lines += ["", "Per site, main model's mean CRPS at every origin (local / global):", "",
              "| variable | site | local | global | challenge climatology | challenge persistence | local s |",
              "|---|---|---|---|---|---|---|"]
    for variable, f in figures.items():
        for r in f["rows"]:
            lo, gl = r["local"]["all_origins"], r["global"]["all_origins"]
            lines.append(f"| {variable} | {r['site']} | {lo[MAIN_MODEL]:.3f} | {gl[MAIN_MODEL]:.3f} | "
                         f"{lo['challenge_climatology']:.3f} | {lo['challenge_persistence']:.3f} | {r['local_seconds']} |")
        lines.append(f"| {variable} | skipped: {', '.join(sorted(f['skipped']))} | | | | | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
