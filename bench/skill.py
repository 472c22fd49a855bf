"""Does the honest default beat the best baseline? Skill on three real series, with ablations.

For every series and horizon (1 h and 6 h on an hourly grid) this runs ``wq evaluate`` with the
default settings (stepwise decomposition, every model and baseline on the same test points),
then retrains the main model's network with one switch changed at a time, reusing that run's
plan, decomposition and first stage:

* ``no_first_stage``: the network forecasts the series itself (``--first-stage none``);
* ``no_components``: raw window + calendar only (``--no-hybrid-components``);
* ``no_raw``: components only (``--no-raw-channel``);
* ``no_calendar`` (``--no-calendar``), ``no_shrink`` (``--no-shrink``), ``no_feca``;
* ``atrous``: the causal à trous wavelet decomposition instead of VMD (``--method atrous``).

The per-component published model (``decomp_feca_lstm``, components forecast separately and
summed) is in every default run. Scores at step H over the test period (last 20 %), on the points
every model forecast: NSE, RMSE (target units), skill against persistence ``1 - RMSE/RMSE_p`` and
MSE skill against the best baseline ``1 - MSE/MSE_best`` (best of persistence, seasonal naive with
the period chosen on training data, level-adjusted seasonal naive, climatology, ARIMA, harmonic +
AR and the plain LSTM, chosen on these test points, so the bar is as high as it can be).

Writes ``bench/results/skill.json`` and ``bench/results/skill.md`` (``bench/report.py`` puts the
table in BENCHMARKS.md). Finished cases are kept in ``bench/results/skill_runs.json`` so an
interrupted run resumes; ``--fresh`` starts over. About 40 min on 2 cores (2,353 s measured).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import numpy as np  # noqa: E402

from wq_pipeline.config import EvaluateConfig, QCConfig  # noqa: E402
from wq_pipeline.decompose import make_decomposer  # noqa: E402
from wq_pipeline.metrics import add_best_baseline_skill, add_skill, score  # noqa: E402
from wq_pipeline.pipeline import (  # noqa: E402
    MAIN_MODEL,
    MODEL_NAMES,
    SKILL_REFERENCES,
    EvaluationResult,
    StageRunner,
    decompose_stage,
    fit_decomposer,
    hybrid_forecast,
    hybrid_job,
    run_evaluation,
    train_stage,
    workers_for,
)
from wq_pipeline.protocol import target_matrix  # noqa: E402

RUNS = C.RESULTS / "skill_runs.json"
SERIES: dict[str, dict[str, Any]] = {
    "sapelo_DO_obs": dict(data=C.SAPELO, target="DO_obs", label="Sapelo Dean Creek DO_obs (mg/L)"),
    "apalachicola_do_mgl": dict(data=C.SHARED / "nerr_apalachicola_catpoint_2012_2013.csv.gz", target="do_mgl",
                                label="Apalachicola Cat Point do_mgl (mg/L), after QC"),
    "neon_lewi_dissolved_oxygen": dict(data=C.SHARED / "neon_streams_15min_2018_2019.csv.gz",
                                       target="dissolved_oxygen", site="LEWI",
                                       label="NEON LEWI dissolved_oxygen (mg/L)",
                                       # Its readings come in stretches of 5-55 days between long gaps
                                       # (ice, sensor outages): a 128 h decomposition window, gaps up to
                                       # 6 h interpolated, and 25 % test / 15 % validation leave every
                                       # period enough origins.
                                       overrides=dict(decomp_window=128, test_fraction=0.25, val_fraction=0.15,
                                                      qc=QCConfig(max_gap=6))),
}
HORIZONS = (1, 6)  # hours, on the hourly grid
ABLATIONS: dict[str, dict[str, Any]] = {
    "no_first_stage": {"first_stage": "none"},
    "no_components": {"hybrid_components": False},
    "no_raw": {"raw_channel": False},
    "no_calendar": {"calendar": False},
    "no_shrink": {"shrink": False},
    "no_feca": {},
    "atrous": {"method": "atrous", "modes": 6},
}


def config(series: str, horizon: int, out: Path) -> EvaluateConfig:
    spec = SERIES[series]
    return EvaluateConfig(data=spec["data"], target=spec["target"], site=spec.get("site"), freq="1h",
                          horizon=horizon, out=out, command=f"bench/skill.py ({series}, H={horizon})",
                          **spec.get("overrides", {}))


def test_matrix(result: EvaluationResult, model: str, n: int, H: int) -> np.ndarray:
    """A model's test forecasts ``(n_test, H)`` from the run's long forecast table."""
    f = result.forecasts
    return f.loc[f["model"] == model, "forecast"].to_numpy(float).reshape(n, H)


def ablation_forecast(result: EvaluationResult, cfg: EvaluateConfig, name: str, change: dict[str, Any]) -> tuple[np.ndarray, dict]:
    """Retrain the hybrid network with one switch changed; returns its test forecasts ``(n, H)``."""
    plan = result.plan
    acfg = cfg.model_copy(update=change)
    samples = result.samples
    t0 = time.perf_counter()
    if "method" in change:
        dec = fit_decomposer(make_decomposer(acfg.method, acfg.modes, acfg.seed, **acfg.decomposer_params()), plan, acfg)
        samples = decompose_stage(plan, acfg, dec)
    params = result.metrics["baselines"].get("harmonic_ar_params")
    job, f1 = hybrid_job(plan, acfg, samples, params)
    if name == "no_feca":
        job.feca = False
    trained = train_stage(job, acfg, workers_for(acfg, job.X_train.shape[0]))
    fc, info = hybrid_forecast(trained, f1, plan, acfg)
    info.update(seconds=round(time.perf_counter() - t0, 1), epochs_run=trained.training["epochs_run"])
    return fc, info


def one_case(series: str, horizon: int) -> dict[str, Any]:
    cfg = config(series, horizon, Path(os.environ.get("TMPDIR", "/tmp")) / f"wq-skill-{series}-{horizon}")
    t0 = time.perf_counter()
    result = run_evaluation(cfg, StageRunner())
    m = result.metrics
    n, H = m["n_test"], horizon
    forecasts = {name: test_matrix(result, name, n, H) for name in MODEL_NAMES}
    infos = {}
    for name, change in ABLATIONS.items():
        forecasts[f"{MAIN_MODEL}:{name}"], infos[name] = ablation_forecast(result, cfg, name, change)
        print(f"    {name}: {infos[name]['seconds']} s", flush=True)
    plan = result.plan
    obs = target_matrix(np.where(plan.observed, plan.values, np.nan), plan.split.test, H)
    common = np.isfinite(obs)
    for f in forecasts.values():
        common &= np.isfinite(f)
    scored = np.where(common, obs, np.nan)
    scores = {name: score(scored, f) for name, f in forecasts.items()}
    add_skill(scores, "persistence")
    best = add_best_baseline_skill(scores, SKILL_REFERENCES)
    keep = ("nse", "rmse", "mae", "skill", "mse_skill_best_baseline", "n_points")
    return {
        "key": f"{series}/{horizon}", "series": series, "label": SERIES[series]["label"], "horizon_h": horizon,
        "best_baseline": best, "seconds": round(time.perf_counter() - t0, 1),
        "n_train": m["n_train"], "n_val": m["n_val"], "n_test": n, "test_start": m["periods"]["test_start"],
        "settings": {**{k: m[k] for k in ("method", "modes", "window", "decomp_window", "epochs")},
                     "test_fraction": cfg.test_fraction, "val_fraction": cfg.val_fraction, "max_gap": cfg.qc.max_gap},
        "baseline_choices": {k: m["baselines"].get(k) for k in ("seasonal_period", "harmonic_ar", "arima_order")},
        "hybrid": m["hybrid"], "ablations": infos,
        "models": {name: {k: s[k] for k in keep} for name, s in scores.items()},
    }


def _f(v: Any, d: int = 3) -> str:
    return f"{v:.{d}f}" if isinstance(v, (int, float)) and np.isfinite(v) else "n/a"


def table(runs: list[dict]) -> str:
    """Markdown: per series and horizon, every model's NSE, RMSE, skill and MSE skill vs best."""
    lines = ["Honest (stepwise) protocol, `wq evaluate` defaults (VMD K=8, W=48, L=512, 32 units, 20 epochs), "
             "hourly grid, test period = last 20 % (NEON LEWI: L=128, last 25 %, see `bench/skill.py`). Scores at step H on the points every model forecast. "
             "skill = 1 - RMSE/RMSE persistence; vs best = 1 - MSE/MSE of the best baseline on these points "
             "(positive only when the model beats every baseline, the plain LSTM included). "
             f"`{MAIN_MODEL}` is the default main model; `{MAIN_MODEL}:x` is it with one switch changed.", ""]
    for r in runs:
        lines += [f"### {r['label']}, {r['horizon_h']} h ahead ({r['n_test']} test origins from "
                  f"{r['test_start'][:10]}; best baseline: {r['best_baseline']})", "",
                  "| model | NSE | RMSE | skill vs persistence | MSE skill vs best baseline | validation RMSE |",
                  "|---|---|---|---|---|---|"]
        val = {MAIN_MODEL: r["hybrid"].get("validation_rmse"),
               **{f"{MAIN_MODEL}:{k}": v.get("validation_rmse") for k, v in r["ablations"].items()}}
        for name, s in r["models"].items():
            bold = "**" if name == MAIN_MODEL else ""
            lines.append(f"| {bold}{name}{bold} | {_f(s['nse'])} | {_f(s['rmse'])} | {_f(s['skill'])} | "
                         f"{_f(s['mse_skill_best_baseline'])} | {_f(val.get(name))} |")
        lines += ["", f"Choices made on training/validation data: {json.dumps(r['baseline_choices'])}; "
                  f"hybrid: {json.dumps(r['hybrid'])}; run {r['seconds']:.0f} s.", ""]
    goal = [r for r in runs if r["horizon_h"] == max(HORIZONS)]
    if goal:
        lines += [f"Goal (at {max(HORIZONS)} h the default beats the best baseline by RMSE):", "",
                  "| series | default RMSE | best baseline | its RMSE | met |", "|---|---|---|---|---|"]
        for r in goal:
            a, b = r["models"][MAIN_MODEL]["rmse"], r["models"][r["best_baseline"]]["rmse"]
            lines.append(f"| {r['label']} | {_f(a)} | {r['best_baseline']} | {_f(b)} | {'yes' if a < b else 'no'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fresh", action="store_true", help="ignore finished cases in skill_runs.json")
    ap.add_argument("--tables", action="store_true", help="only rewrite the tables from skill_runs.json")
    ap.add_argument("--only", help="series key to run (default: all)")
    a = ap.parse_args()
    runs = [] if a.fresh or not RUNS.exists() else json.loads(RUNS.read_text())
    done = {r["key"] for r in runs}
    t0 = time.perf_counter()
    if not a.tables:
        for series in SERIES:
            if a.only and series != a.only:
                continue
            for horizon in HORIZONS:
                if f"{series}/{horizon}" in done:
                    continue
                print(f"{series}, {horizon} h ...", flush=True)
                r = one_case(series, horizon)
                runs = [x for x in runs if x["key"] != r["key"]] + [r]
                _save(RUNS, runs)
                m = r["models"]
                print(f"  {r['seconds']:.0f} s; RMSE {MAIN_MODEL} {m[MAIN_MODEL]['rmse']:.3f}, best baseline "
                      f"{r['best_baseline']} {m[r['best_baseline']]['rmse']:.3f}", flush=True)
    order = {k: i for i, k in enumerate(SERIES)}
    runs.sort(key=lambda r: (order.get(r["series"], 99), r["horizon_h"]))
    md = table(runs)
    (C.RESULTS / "skill.md").write_text(md)
    goal = [r for r in runs if r["horizon_h"] == max(HORIZONS)]
    figures = {r["key"]: {"rmse_default": r["models"][MAIN_MODEL]["rmse"], "best_baseline": r["best_baseline"],
                          "rmse_best_baseline": r["models"][r["best_baseline"]]["rmse"]} for r in runs}
    targets = [C.target(f"{r['series']} {max(HORIZONS)} h: default RMSE below best baseline "
                        f"({r['best_baseline']})", r["models"][MAIN_MODEL]["rmse"],
                        r["models"][r["best_baseline"]]["rmse"], higher_is_better=False) for r in goal]
    figures["runs"] = runs
    C.write_result("skill", figures, targets=targets, notes=["per-case seconds in runs[].seconds"], started=t0,
                   machine_info=C.machine(),
                   shortfall="see bench/results/skill.md: the ablation rows show which switches were tried")
    print(md)


def _save(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=C._json_default))
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
