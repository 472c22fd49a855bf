"""The published method's grid on real data, honest and leaky: every decomposition method, with
and without FECA, with and without covariates, beside the baselines.

For Sapelo ``DO_obs`` and ``Temp`` (2012) and Apalachicola Cat Point ``do_mgl`` (2013, after
QC), runs ``wq evaluate``'s pipeline (in-process, no Prefect) for each method in
``vmd, eemd, ceemdan, ceemdan-se-vmd`` x protocol ``stepwise, global`` x covariates
``none, station covariates``. Every run trains the decomposition model with FECA
(``decomp_feca_lstm``) and without (``decomp_lstm``), the plain LSTM, and scores the baselines on
the same test points. The decomposition does not depend on the covariates, so the second run of
a (method, protocol) pair reuses the first one's decomposition (its wall time is then training
only; ``decompose_s`` says what the decomposition cost).

Settings are smaller than the demo's so the grid (48 runs) fits in about an hour on 2 cores:
hourly grid, H = 6 h, W = 24 h, L = 256 h, 6 modes (ceemdan-se-vmd: 6 CEEMDAN IMFs, 3 VMD modes
of the high-complexity group), 10 EMD trials, LSTMs of 16 units, at most 10 epochs.

Each finished run is appended to ``bench/results/published_runs.json`` at once, so an
interrupted grid resumes where it stopped (``--fresh`` starts over). ``bench/results/
published.json`` and ``published.md`` (the tables) are rewritten after every run.

    python bench/published.py [--series sapelo_DO_obs ...] [--fresh]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from wq_pipeline.config import EvaluateConfig  # noqa: E402
from wq_pipeline.evaluation.pipeline import StageRunner, run_evaluation  # noqa: E402

METHODS = ("vmd", "eemd", "ceemdan", "ceemdan-se-vmd")
PROTOCOLS = ("stepwise", "global")
SETTINGS = dict(freq="1h", horizon=6, window=24, decomp_window=256, modes=6, secondary_modes=3, emd_trials=10,
                epochs=10, units=16, patience=3, seed=0)
RUNS = C.RESULTS / "published_runs.json"


def apalachicola_2013() -> Path:
    """The 2013 rows of the Apalachicola Cat Point file, as a CSV in the temp folder (the shared
    file stays where it is)."""
    import pandas as pd

    out = Path(tempfile.gettempdir()) / "wq-bench-apalachicola-catpoint-2013.csv"
    if not out.exists():
        df = pd.read_csv(C.SHARED / "nerr_apalachicola_catpoint_2012_2013.csv.gz", dtype=str)
        df[df["datetimestamp"].str.startswith("2013")].to_csv(out, index=False)
    return out


SERIES: dict[str, dict[str, Any]] = {
    "sapelo_DO_obs": dict(data=lambda: C.SAPELO, target="DO_obs", covariates=["Temp", "Sal"]),
    "apalachicola_do_mgl": dict(data=apalachicola_2013, target="do_mgl", covariates=["temp", "sal"]),
    "sapelo_Temp": dict(data=lambda: C.SAPELO, target="Temp", covariates=["Sal", "ATemp"]),
}


class CachingRunner(StageRunner):
    """Runs stages in-process and keeps results that have a cache key (the decomposition) in
    memory, like the Prefect flow's task cache."""

    def __init__(self) -> None:
        self.cache: dict[str, Any] = {}
        self.hits = 0

    def run(self, name, fn, *args, cache_key=None, **kwargs):
        if cache_key is not None and cache_key in self.cache:
            self.hits += 1
            return self.cache[cache_key]
        out = fn(*args, **kwargs)
        if cache_key is not None:
            self.cache[cache_key] = out
        return out


def one_run(series: str, method: str, protocol: str, with_cov: bool, runner: CachingRunner, out: Path) -> dict:
    spec = SERIES[series]
    cfg = EvaluateConfig(data=spec["data"](), target=spec["target"], method=method, protocol=protocol,
                         covariates=spec["covariates"] if with_cov else [], out=out, **SETTINGS)
    hits = runner.hits
    t0 = time.perf_counter()
    res = run_evaluation(cfg, runner)
    m = res.metrics
    return {
        "key": f"{series}/{method}/{protocol}/{'cov' if with_cov else 'nocov'}",
        "series": series, "target": spec["target"], "method": method, "protocol": protocol,
        "covariates": m["covariates"], "seconds": round(time.perf_counter() - t0, 1),
        "decomposition_reused": runner.hits > hits, "decompose_s": m["timings_s"].get("decompose"),
        "n_points": m["models"]["persistence"]["n_points"], "test_start": m["periods"]["test_start"],
        "decomposer_fitted": m.get("decomposer_fitted", {}),
        "models": {name: {k: s[k] for k in ("nse", "rmse", "mae", "kge", "skill")} for name, s in m["models"].items()},
        "validation_rmse": m["validation_rmse"],
        "epochs_run": {name: t["epochs_run"] for name, t in m["training"].items()},
    }


def load_runs(fresh: bool) -> list[dict]:
    if fresh or not RUNS.exists():
        return []
    return json.loads(RUNS.read_text())


def save_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=C._json_default))
    os.replace(tmp, path)


def _f(v: Any, d: int = 3) -> str:
    return f"{v:.{d}f}" if isinstance(v, (int, float)) else "n/a"


REFERENCES = ("persistence", "seasonal_naive", "level_adjusted_seasonal_naive", "climatology", "arima", "harmonic_ar",
              "lstm")


def chosen_on_validation(runs: list[dict]) -> list[dict[str, Any]]:
    """Per series: the honest decomposition variant (method x FECA x covariates) with the lowest
    validation RMSE at step H, its test RMSE, the best of every baseline on its run's test points
    (harmonic + AR and the plain LSTM included), and the same variant under the leaky protocol."""
    by = {r["key"]: r for r in runs}
    out = []
    for series in SERIES:
        cands = []
        for r in runs:
            if r["series"] != series or r["protocol"] != "stepwise" or "validation_rmse" not in r:
                continue
            for model in ("decomp_feca_lstm", "decomp_lstm"):
                v = r["validation_rmse"].get(model)
                if v is not None:
                    cands.append((v, r, model))
        if not cands:
            continue
        v, r, model = min(cands, key=lambda c: c[0])
        best = min((b for b in REFERENCES if r["models"][b]["rmse"] is not None), key=lambda b: r["models"][b]["rmse"])
        leaky = by.get(r["key"].replace("/stepwise/", "/global/"), {}).get("models", {}).get(model, {})
        label = f"{r['method'].upper()}-{'FECA-' if model == 'decomp_feca_lstm' else ''}LSTM" + (
            f" + {', '.join(r['covariates'])}" if r["covariates"] else "")
        out.append({"series": series, "target": r["target"], "variant": label, "validation_rmse": v,
                    "test_rmse": r["models"][model]["rmse"], "best_baseline": best,
                    "best_baseline_rmse": r["models"][best]["rmse"], "leaky_rmse": leaky.get("rmse"),
                    "main_rmse": r["models"].get("ensemble", {}).get("rmse"), "test_start": r["test_start"]})
    return out


def tables(runs: list[dict]) -> str:
    """Markdown: per series, one row per model variant, NSE / RMSE / skill under each protocol."""
    lines = [f"Settings: {', '.join(f'{k}={v}' for k, v in SETTINGS.items())}. NSE, RMSE (target units) and skill "
             "(1 - RMSE/RMSE persistence) at step H = 6 h on the test period (last 20%), the same points for every "
             "model of a run. Wall time: the run's seconds, stepwise / global; a run marked * reused the "
             "decomposition of the run without covariates (decomposition seconds in brackets).", ""]
    chosen = chosen_on_validation(runs)
    if chosen:
        lines += ["### The best honest decomposition model, chosen on validation", "",
                  "Among the 16 stepwise variants of a series (4 methods x FECA or not x covariates or not), the one "
                  "with the lowest validation RMSE at 6 h; its test RMSE beside the best of every baseline on the same "
                  "test points (picked on the test points, the plain LSTM included) and the same variant under the "
                  "leaky protocol.", "",
                  "| series | chosen on validation | validation RMSE | test RMSE | best baseline (test) | its RMSE | "
                  "main model (ensemble) | same variant, LEAKY |", "|---|---|---|---|---|---|---|---|"]
        for c in chosen:
            lines.append(f"| {c['series']} ({c['target']}) | {c['variant']} | {_f(c['validation_rmse'])} | "
                         f"{_f(c['test_rmse'])} | {c['best_baseline']} | {_f(c['best_baseline_rmse'])} | "
                         f"{_f(c['main_rmse'])} | {_f(c['leaky_rmse'])} |")
        lines.append("")
    by = {r["key"]: r for r in runs}
    for series in SERIES:
        rs = [r for r in runs if r["series"] == series]
        if not rs:
            continue
        lines += [f"### {series} ({rs[0]['target']}, test from {rs[0]['test_start'][:10]}, "
                  f"{rs[0]['n_points']} test points)", "",
                  "| model | covariates | NSE stepwise | RMSE stepwise | skill stepwise | NSE global (LEAKY) | "
                  "RMSE global | skill global | wall s stepwise / global |",
                  "|---|---|---|---|---|---|---|---|---|"]
        base = by.get(f"{series}/vmd/stepwise/nocov") or rs[0]
        gbase = by.get(f"{series}/vmd/global/nocov") or base
        for name in (n for n in REFERENCES if n != "lstm" and n in base["models"]):
            a, b = base["models"][name], gbase["models"][name]
            lines.append(f"| {name} | - | {_f(a['nse'])} | {_f(a['rmse'])} | {_f(a['skill'])} | {_f(b['nse'])} | "
                         f"{_f(b['rmse'])} | {_f(b['skill'])} | |")
        for cov in ("nocov", "cov"):
            a, b = by.get(f"{series}/vmd/stepwise/{cov}"), by.get(f"{series}/vmd/global/{cov}")
            if a:
                lines.append(f"| plain LSTM | {'+'.join(a['covariates']) or 'none'} | {_f(a['models']['lstm']['nse'])} | "
                             f"{_f(a['models']['lstm']['rmse'])} | {_f(a['models']['lstm']['skill'])} | | | | |")
        for method in METHODS:
            for feca in (True, False):
                for cov in ("nocov", "cov"):
                    a, b = by.get(f"{series}/{method}/stepwise/{cov}"), by.get(f"{series}/{method}/global/{cov}")
                    if not a and not b:
                        continue
                    model = "decomp_feca_lstm" if feca else "decomp_lstm"
                    label = f"{method.upper()}-{'FECA-' if feca else ''}LSTM"
                    covs = "+".join((a or b)["covariates"]) or "none"

                    def cells(r: dict | None) -> str:
                        if not r:
                            return "n/a | n/a | n/a"
                        s = r["models"][model]
                        return f"{_f(s['nse'])} | {_f(s['rmse'])} | {_f(s['skill'])}"

                    def wall(r: dict | None) -> str:
                        if not r:
                            return "n/a"
                        if not r["decomposition_reused"]:
                            return f"{r['seconds']:.0f}"
                        first = by.get(r["key"].replace("/cov", "/nocov"), {})
                        return f"{r['seconds']:.0f}*({first.get('decompose_s', float('nan')):.0f})"

                    lines.append(f"| {label} | {covs} | {cells(a)} | {cells(b)} | {wall(a)} / {wall(b)} |")
        fitted = by.get(f"{series}/ceemdan-se-vmd/stepwise/nocov", {}).get("decomposer_fitted")
        if fitted:
            lines += ["", f"CEEMDAN-SE-VMD groups learnt on training windows (imf1..imf6, trend; 0 high, 1 medium, "
                          f"2 low): {fitted.get('groups')}, median sample entropies {fitted.get('entropies')}."]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", nargs="*", choices=list(SERIES), default=list(SERIES))
    ap.add_argument("--methods", nargs="*", choices=METHODS, default=list(METHODS))
    ap.add_argument("--fresh", action="store_true", help="forget finished runs and start over")
    ap.add_argument("--tables", action="store_true", help="only rewrite published.md from the stored runs")
    a = ap.parse_args()
    if a.tables:
        rewrite_tables()
        return
    started = time.perf_counter()
    machine = C.machine()
    runs = load_runs(a.fresh)
    done = {r["key"] for r in runs}
    with tempfile.TemporaryDirectory() as tmp:
        for series in a.series:
            for method in a.methods:
                runner = CachingRunner()  # one decomposition cache per (series, method)
                for protocol in PROTOCOLS:
                    for with_cov in (False, True):
                        key = f"{series}/{method}/{protocol}/{'cov' if with_cov else 'nocov'}"
                        if key in done:
                            continue
                        print(f"[{time.perf_counter() - started:7.0f} s] {key}", flush=True)
                        r = one_run(series, method, protocol, with_cov, runner, Path(tmp) / key.replace("/", "_"))
                        m = r["models"]
                        print(f"    {r['seconds']:.0f} s; NSE feca {m['decomp_feca_lstm']['nse']:.3f} "
                              f"plain-decomp {m['decomp_lstm']['nse']:.3f} lstm {m['lstm']['nse']:.3f} "
                              f"seasonal {m['seasonal_naive']['nse']:.3f}", flush=True)
                        runs.append(r)
                        save_json(RUNS, runs)
                        md = tables(runs)
                        (C.RESULTS / "published.md").write_text(md)
                        save_json(C.RESULTS / "published.json", {"settings": SETTINGS, "machine": machine,
                                                                 "series": {k: {kk: vv for kk, vv in v.items() if kk != "data"}
                                                                            for k, v in SERIES.items()},
                                                                 "runs": runs})
    print(tables(runs))


def rewrite_tables() -> None:
    """Rewrite ``published.md`` from the stored runs (no run)."""
    (C.RESULTS / "published.md").write_text(tables(load_runs(False)))


if __name__ == "__main__":
    main()
