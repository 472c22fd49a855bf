"""Choosing the ensemble's weighting rule and half-life on the development set only.

Reads every member's validation and test forecasts that ``bench/skill.py`` cached for the ``dev``
cases (``bench/results/cache/<case>.npz``), recombines them with each candidate rule and
half-life (:func:`wq_pipeline.models.ensemble.online_weights`, causal: the same code the pipeline runs),
and scores the result at the cases' steps against the best baseline on the same test points, as
``bench/skill.py`` does. Untouched cases are never read here.

Writes ``bench/results/ensemble_design.json`` and ``ensemble_design.md``; prints the table.
Seconds: the forecasts are cached, so a full grid takes a minute or two.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import numpy as np  # noqa: E402

from skill import CACHE, CASES  # noqa: E402
from wq_pipeline.models.ensemble import (  # noqa: E402
    EnsembleOptions,
    combine,
    default_half_life,
    distinct_members,
    online_weights,
    with_history,
)
from wq_pipeline.evaluation.pipeline import MEMBER_NAMES, SKILL_REFERENCES  # noqa: E402

RULES = ("softmax", "inverse_mse", "best", "stack")
HALF_LIFE_FACTORS = (0.05, 0.2, 1.0, 5.0)  # x the default half-life of the grid step (72 h .. 300 days hourly)
ETAS = (3.0, 10.0, 30.0)


def _rmse(f: np.ndarray, o: np.ndarray) -> float:
    ok = np.isfinite(f) & np.isfinite(o)
    return float(np.sqrt(np.mean((f[ok] - o[ok]) ** 2))) if ok.any() else float("nan")


def load(case_key: str, cache: Path = CACHE) -> dict[str, Any]:
    z = np.load(cache / f"{case_key}.npz", allow_pickle=False)
    folds = sorted({int(k[4:k.index("_")]) for k in z.files if k.startswith("fold")})
    names = [str(n) for n in z["names"]]
    return {"y_obs": z["y_obs"], "names": names,
            "folds": [{"origins": z[f"fold{k}_origins"], "test_start": int(z[f"fold{k}_test_start"]),
                       "F": z[f"fold{k}_forecasts"]} for k in folds]}


def fold_weights(data: dict[str, Any], opts: EnsembleOptions,
                 drop: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None):
    """Per fold, as the pipeline recombines the main model (record carried across folds,
    duplicates left out): ``(fold, members' forecasts (M, n, H), weights (n, H, M), test mask (n,),
    dropped member names)``.

    ``drop(weights, test mask) -> bool (M,)``: members to leave out of the fold's test period,
    decided from the fold's weights (the pruning bench)."""
    members = [data["names"].index(n) for n in MEMBER_NAMES]
    history = None
    for fold in data["folds"]:
        o = fold["origins"]
        test = o >= fold["test_start"]
        M, _ = distinct_members(fold["F"][members], list(MEMBER_NAMES))
        seq_o, seq_f, n_hist = with_history(history, o, M)
        W = online_weights(seq_f, seq_o, data["y_obs"], opts)[n_hist:]
        dropped: list[str] = []
        if drop is not None:
            gone = drop(W, test)
            dropped = [MEMBER_NAMES[i] for i in np.flatnonzero(gone)]
            M = M.copy()
            M[np.ix_(gone, np.flatnonzero(test))] = np.nan  # a dropped member issues nothing in the test period
            seq_o, seq_f, n_hist = with_history(history, o, M)
            W = online_weights(seq_f, seq_o, data["y_obs"], opts)[n_hist:]
        history = (seq_o, seq_f)
        yield fold, M, W, test, dropped


def score_case(data: dict[str, Any], steps: tuple[int, ...], opts: EnsembleOptions,
               drop: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> list[dict[str, Any]]:
    """Ratio of the recombined main model's RMSE to the best baseline's, per fold and step (with
    ``drop``, see :func:`fold_weights`, each row also says which members were dropped)."""
    refs = [data["names"].index(n) for n in SKILL_REFERENCES]
    out = []
    for fold, M, W, test, dropped in fold_weights(data, opts, drop):
        F, o = fold["F"], fold["origins"]
        main = combine(M, W)
        H = F.shape[2]
        pos = o[test][:, None] + np.arange(1, H + 1)[None, :]
        obs = np.where(pos < data["y_obs"].size, data["y_obs"][np.minimum(pos, data["y_obs"].size - 1)], np.nan)
        common = np.isfinite(obs) & np.isfinite(main[test])
        for f in F[:, test]:
            if np.isfinite(f).any():
                common &= np.isfinite(f)
        obs = np.where(common, obs, np.nan)
        for step in steps:
            best = min(_rmse(F[r, test, step - 1], obs[:, step - 1]) for r in refs)
            out.append({"ratio": _rmse(main[test, step - 1], obs[:, step - 1]) / best, "dropped": dropped})
    return out


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, default=CACHE, help="folder of cached forecasts (default: bench/results/cache)")
    a = ap.parse_args()
    t0 = time.perf_counter()
    dev = [c for c in CASES if c.set == "dev" and (a.cache / f"{c.key}.npz").exists()]
    data = {c.key: load(c.key, a.cache) for c in dev}
    step_h = {c.key: (24.0 if c.options.get("freq") == "1D" else 1.0) for c in dev}
    grid: list[tuple[str, float, float]] = []
    for rule in RULES:
        for factor in HALF_LIFE_FACTORS:
            for eta in (ETAS if rule == "softmax" else (10.0,)):
                grid.append((rule, factor, eta))
    results = []
    for rule, factor, eta in grid:
        ratios = []
        per_case = {}
        for c in dev:
            opts = EnsembleOptions(rule=rule, half_life=factor * default_half_life(step_h[c.key]), eta=eta)
            r = [x["ratio"] for x in score_case(data[c.key], c.steps, opts)]
            per_case[c.key] = [round(v, 4) for v in r]
            ratios += r
        ratios_a = np.array(ratios)
        results.append({"rule": rule, "half_life_factor": factor, "eta": eta, "pairs": len(ratios),
                        "share_le_1": float(np.mean(ratios_a <= 1)), "max_ratio": float(ratios_a.max()),
                        "median_mse_skill": float(np.median(1 - ratios_a ** 2)),
                        "mean_log_ratio": float(np.mean(np.log(ratios_a))), "per_case": per_case})
        print(f"{rule:<12} x{factor:<5} eta {eta:<5} share<=1 {results[-1]['share_le_1']:.2f}  "
              f"max {results[-1]['max_ratio']:.3f}  median MSE skill {results[-1]['median_mse_skill']:+.3f}", flush=True)
    lines = ["Ensemble rule and half-life chosen on the dev cases only (`bench/ensemble_design.py`, forecasts cached "
             "by `bench/skill.py`). Half-life = factor x the default (60 days on hourly grids, 280 days on daily). "
             "ratio = main RMSE / best baseline RMSE per (series, fold, step) on the same test points.", "",
             f"Dev cases: {', '.join(c.key for c in dev)}.", "",
             "| rule | half-life factor | eta | pairs | share ratio <= 1 | worst ratio | median MSE skill | mean log ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for r in sorted(results, key=lambda r: r["mean_log_ratio"]):
        lines.append(f"| {r['rule']} | {r['half_life_factor']:g} | {r['eta']:g} | {r['pairs']} | {r['share_le_1']:.2f} | "
                     f"{r['max_ratio']:.3f} | {r['median_mse_skill']:+.3f} | {r['mean_log_ratio']:+.4f} |")
    C.write_table("ensemble_design", lines, {"seconds": round(time.perf_counter() - t0, 1), "results": results})


if __name__ == "__main__":
    main()
