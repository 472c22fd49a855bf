"""Honest quantiles of the main model: coverage and CRPS on every skill-bench series and fold.

Reads every member's validation and test forecasts that ``bench/skill.py`` cached
(``bench/results/cache/<case>.npz``), recombines the main model (the ensemble) exactly as the
pipeline does (:func:`wq_pipeline.models.ensemble.online_weights`, record carried across folds), and
gives it, climatology and persistence quantiles with :func:`wq_pipeline.models.intervals.conformal_quantiles`
(the same code ``wq evaluate`` runs), for each calibration method. Scores at the skill bench's
steps (hourly 6 h; NEON daily 1, 7, 14 days) on each fold's test origins:

* coverage of the main model's 50 % and 90 % intervals (goal 0.45-0.55 and 0.87-0.93), and
  whether it lies within the band a calibrated interval reaches by chance on that many
  autocorrelated points (:func:`sampling_halfwidth`);
* its CRPS against climatology's and persistence's (each with its own conformal quantiles, i.e.
  its empirical error distribution) per (series, fold): goal below both on >= 80 % of pairs.

The method is chosen on the ``dev`` cases; ``untouched`` cases are reported with it, unchanged.
Writes ``bench/results/probabilistic.json`` and ``.md``. A few minutes: forecasts are cached.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import numpy as np  # noqa: E402

from ensemble_design import load  # noqa: E402
from skill import CACHE, CASES  # noqa: E402
from wq_pipeline.models.ensemble import EnsembleOptions, combine, default_half_life, distinct_members, online_weights, with_history  # noqa: E402,E501
from wq_pipeline.models.intervals import DEFAULT_QUANTILES, METHODS, IntervalOptions, conformal_quantiles, default_interval_half_life  # noqa: E402,E501
from wq_pipeline.evaluation.pipeline import MEMBER_NAMES  # noqa: E402
from wq_pipeline.models.scoring_rules import crps, interval_scores  # noqa: E402

LEVELS = np.asarray(DEFAULT_QUANTILES)
GAMMAS = (0.002, 0.005, 0.01, 0.02)  # ACI step sizes tried on dev


def _series(data: dict[str, Any], step_h: float) -> list[dict[str, Any]]:
    """Per fold: origins, test mask, and the main model's, climatology's and persistence's
    forecasts over the record so far (history + this fold)."""
    members = [data["names"].index(n) for n in MEMBER_NAMES]
    opts = EnsembleOptions(half_life=default_half_life(step_h))
    out, history = [], None
    record: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for fold in data["folds"]:
        F, o = fold["F"], fold["origins"]
        M, _ = distinct_members(F[members], list(MEMBER_NAMES))
        seq_o, seq_f, n_hist = with_history(history, o, M)
        history = (seq_o, seq_f)
        main = combine(M, online_weights(seq_f, seq_o, data["y_obs"], opts)[n_hist:])
        fold_models = {"ensemble": main, "climatology": F[data["names"].index("climatology")],
                       "persistence": F[data["names"].index("persistence")]}
        seqs = {}
        for name, f in fold_models.items():
            so, sf, nh = with_history(record.get(name), o, f[None])
            record[name] = (so, sf)
            seqs[name] = (so, sf[0], nh)
        out.append({"origins": o, "test_start": fold["test_start"], "models": seqs})
    return out


def score(case: Any, data: dict[str, Any], method: str, gamma: float) -> list[dict[str, Any]]:
    step_h = 24.0 if case.options.get("freq") == "1D" else 1.0
    iopts = IntervalOptions(levels=tuple(LEVELS), method=method, half_life=default_interval_half_life(step_h),
                            gamma=gamma)
    rows = []
    for k, fold in enumerate(_series(data, step_h), start=1):
        q = {}
        for name, (so, sf, nh) in fold["models"].items():
            q[name] = conformal_quantiles(sf, so, data["y_obs"], iopts, first_test=fold["test_start"])[nh:]
        o = fold["origins"]
        test = o >= fold["test_start"]
        for step in case.steps:
            pos = o[test] + step
            obs = np.where(pos < data["y_obs"].size, data["y_obs"][np.minimum(pos, data["y_obs"].size - 1)], np.nan)
            ok = np.isfinite(obs)
            for name in q:
                ok &= np.isfinite(q[name][test, step - 1]).all(axis=1)
            obs = np.where(ok, obs, np.nan)
            qe = q["ensemble"][test, step - 1]
            row = {"case": case.key, "set": case.set, "fold": k, "step": step, "n": int(ok.sum())}
            for name in q:
                row[f"crps_{name}"] = crps(obs, q[name][test, step - 1], LEVELS)
            for nominal, lo, hi in ((0.5, 3, 5), (0.9, 1, 7)):
                key = f"cov{round(nominal * 100)}"
                row[key] = interval_scores(obs, qe[:, lo], qe[:, hi], nominal)["coverage"]
                inside = ((obs >= qe[:, lo]) & (obs <= qe[:, hi]))[ok].astype(float)
                row[f"{key}_halfwidth"] = sampling_halfwidth(inside, nominal, step)
            rows.append(row)
    return rows


def sampling_halfwidth(inside: np.ndarray, nominal: float, step: int) -> float:
    """Half-width of the 95 % band a calibrated interval's coverage falls in by chance over these
    points: ``1.96 sqrt(p (1 - p) / n_eff)`` with ``p`` nominal and ``n_eff`` the number of points
    shrunk by the autocorrelation of the hit series ``inside (n,)`` (Bartlett weights up to lag
    ``K = max(step, 4 (n / 100)^(2/9))``; forecasts ``step`` ahead from consecutive origins share
    targets, so their misses come in runs)."""
    n = inside.size
    if n < 10:
        return float("nan")
    x = inside - inside.mean()
    denom = float(x @ x)
    K = int(max(step, np.floor(4 * (n / 100) ** (2 / 9))))
    rho = [float(x[k:] @ x[:-k]) / denom for k in range(1, min(K, n - 1) + 1)] if denom > 0 else []
    inflation = 1 + 2 * sum((1 - k / (K + 1)) * r for k, r in enumerate(rho, start=1))
    n_eff = n / max(inflation, 1.0)
    return float(1.96 * np.sqrt(nominal * (1 - nominal) / n_eff))


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    cov90 = np.array([r["cov90"] for r in rows])
    cov50 = np.array([r["cov50"] for r in rows])
    beats = np.array([(r["crps_ensemble"] < r["crps_climatology"]) and (r["crps_ensemble"] < r["crps_persistence"])
                      for r in rows])
    chance90 = np.array([abs(r["cov90"] - 0.9) <= r["cov90_halfwidth"] for r in rows])
    chance50 = np.array([abs(r["cov50"] - 0.5) <= r["cov50_halfwidth"] for r in rows])
    return {"pairs": len(rows), "cov90_mean": float(cov90.mean()), "cov90_in_band": float(np.mean((cov90 >= 0.87) & (cov90 <= 0.93))),
            "cov90_within_chance": float(chance90.mean()), "cov50_within_chance": float(chance50.mean()),
            "cov90_halfwidth_median": float(np.nanmedian([r["cov90_halfwidth"] for r in rows])),
            "cov50_mean": float(cov50.mean()), "cov50_in_band": float(np.mean((cov50 >= 0.45) & (cov50 <= 0.55))),
            "share_crps_below_both": float(beats.mean()),
            "crps_ensemble_mean": float(np.mean([r["crps_ensemble"] for r in rows])),
            "crps_climatology_mean": float(np.mean([r["crps_climatology"] for r in rows])),
            "crps_persistence_mean": float(np.mean([r["crps_persistence"] for r in rows]))}


def main() -> None:
    t0 = time.perf_counter()
    cases = [c for c in CASES if (CACHE / f"{c.key}.npz").exists()]
    data = {c.key: load(c.key) for c in cases}
    results: dict[str, Any] = {"methods": {}}
    candidates = [(m, g) for m in METHODS for g in (GAMMAS if m == "aci" else (GAMMAS[1],))]
    labels = []
    for method, gamma in candidates:
        label = f"aci (gamma {gamma:g})" if method == "aci" else method
        labels.append(label)
        rows = [r for c in cases for r in score(c, data[c.key], method, gamma)]
        results["methods"][label] = {"method": method, "gamma": gamma, "rows": rows,
                                     **{w: summary([r for r in rows if r["set"] == w]) for w in ("dev", "untouched")}}
        d = results["methods"][label]["dev"]
        print(f"{label:<18} dev: cov90 {d['cov90_mean']:.3f} ({d['cov90_in_band']:.2f} in band) cov50 "
              f"{d['cov50_mean']:.3f} ({d['cov50_in_band']:.2f}) CRPS {d['crps_ensemble_mean']:.4f} below both "
              f"{d['share_crps_below_both']:.2f}", flush=True)
    # choice on dev: the goal is per (series, fold, step), so the share of pairs whose 90 % and 50 %
    # coverage lie in their bands (a mean coverage near nominal can hide misses both ways), then CRPS
    def dev_key(label: str) -> tuple[float, float]:
        d = results["methods"][label]["dev"]
        return (-(d["cov90_in_band"] + d["cov50_in_band"]), d["crps_ensemble_mean"])
    chosen = min(labels, key=dev_key)
    results["chosen"] = chosen
    lines = ["Conformal quantiles of the main model (`bench/probabilistic.py`, forecasts cached by `bench/skill.py`), "
             "at the skill bench's steps on every fold's test origins. Goals: 90 % interval coverage 0.87-0.93, 50 % "
             "0.45-0.55; CRPS below climatology's and persistence's (each with its own conformal quantiles) on >= 80 % "
             f"of (series, fold, step). Method chosen on dev: **{chosen}** (share of pairs with both coverages in "
             "their bands, then CRPS).", "",
             "| method | set | pairs | 90 % coverage (mean) | in 0.87-0.93 | within chance | 50 % coverage (mean) | "
             "in 0.45-0.55 | within chance | CRPS < climatology and persistence | CRPS main / clim. / pers. (mean) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for label in labels:
        for which in ("dev", "untouched"):
            d = results["methods"][label][which]
            lines.append(f"| {label} | {which} | {d['pairs']} | {d['cov90_mean']:.3f} | {d['cov90_in_band']:.2f} | "
                         f"{d['cov90_within_chance']:.2f} | {d['cov50_mean']:.3f} | {d['cov50_in_band']:.2f} | "
                         f"{d['cov50_within_chance']:.2f} | {d['share_crps_below_both']:.2f} | "
                         f"{d['crps_ensemble_mean']:.3f} / {d['crps_climatology_mean']:.3f} / "
                         f"{d['crps_persistence_mean']:.3f} |")
    lines += ["", f"NEON daily sites, mean CRPS (mg/L) per step with **{chosen}** (main / climatology / persistence):",
              "", "| set | step (days) | pairs | main | climatology | persistence |", "|---|---|---|---|---|---|"]
    chosen_rows = results["methods"][chosen]["rows"]
    for which in ("dev", "untouched"):
        for step in sorted({r["step"] for r in chosen_rows if r["case"].startswith("neon_daily")}):
            sel = [r for r in chosen_rows if r["case"].startswith("neon_daily") and r["set"] == which and r["step"] == step]
            if sel:
                m = [float(np.mean([r[f"crps_{n}"] for r in sel])) for n in ("ensemble", "climatology", "persistence")]
                lines.append(f"| {which} | {step} | {len(sel)} | {m[0]:.3f} | {m[1]:.3f} | {m[2]:.3f} |")
    lines += ["", f"Per (series, fold, step) with **{chosen}**:", "",
              "| series | set | fold | step | points | 90 % cov. (chance band) | 50 % cov. (chance band) | CRPS main | "
              "CRPS climatology | CRPS persistence |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["methods"][chosen]["rows"]:
        lines.append(f"| {r['case']} | {r['set']} | {r['fold']} | {r['step']} | {r['n']} | {r['cov90']:.3f} "
                     f"(±{r['cov90_halfwidth']:.3f}) | {r['cov50']:.3f} (±{r['cov50_halfwidth']:.3f}) | "
                     f"{r['crps_ensemble']:.3f} | {r['crps_climatology']:.3f} | {r['crps_persistence']:.3f} |")
    results["seconds"] = round(time.perf_counter() - t0, 1)
    C.write_table("probabilistic", lines, results)


if __name__ == "__main__":
    main()
