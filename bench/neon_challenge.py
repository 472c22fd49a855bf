"""NEON daily dissolved oxygen in the Forecasting Challenge's setting: 2022 as test, horizons 1-30 days.

Every site of the shipped ``neon_aquatics_daily_2020_2022.csv.gz`` with oxygen is evaluated alone
(``wq evaluate``'s own code: QC, decomposition, every model, the main model's honest conformal
quantiles) with one fold whose test period is 2022 and everything before it for training and
validation. The skill bench's daily settings are kept (28-day input windows, 64-day decomposition
windows into 4 modes); only the horizon is 30 days. A site whose validation period has too few
origins is run once more with it doubled; a site still too short is listed with the reason.

Scores, from each model's quantiles (CRPS of the distribution whose quantile function interpolates
them, :mod:`wq_pipeline.models.scoring_rules`), on the points where every score below is defined:

* ``main``: the main model (the ensemble);
* ``climatology`` and ``persistence``: the product's baselines with their own conformal quantiles
  (their empirical errors);
* ``doy_normal``: the challenge's climatology, a normal distribution with the day-of-year mean
  and standard deviation of the training years (2020-2021; closed-form CRPS). With two training
  years at most, a day of year seen in one year only has no standard deviation: such points are
  left out of every model's score. (``wq evaluate --challenge`` and ``bench/fleet.py`` give such a
  day the median standard deviation instead, :mod:`wq_pipeline.evaluation.challenge`.)

Two sets of origins: every day of 2022 (``daily``), and the challenge's 30-day windows (origins on
2022-01-01 + 30 k days, ``windows``). Sites are labelled ``dev`` (the four daily sites the
skill bench tuned on) or ``untouched``. The published darts ensemble (neon4cast-darts-ml, 2023)
scored 0.47 mg/L against climatology's 0.62 on other years with a longer climatology: context,
not the same points.

Writes ``bench/results/neon_challenge.json`` and ``.md``. About 30-40 min on 2 cores.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import norm  # noqa: E402

from wq_pipeline.config import EvaluateConfig  # noqa: E402
from wq_pipeline.errors import InputError  # noqa: E402
from wq_pipeline.evaluation.pipeline import MAIN_MODEL, StageRunner, common_observed, run_evaluation  # noqa: E402
from wq_pipeline.models.scoring_rules import crps_values  # noqa: E402

DATA = C.SHARED / "neon_aquatics_daily_2020_2022.csv.gz"
TEST_START = "2022-01-01"
H = 30
DEV_SITES = ("POSE", "HOPB", "BARC", "SUGG")  # the skill bench's dev sites
SETTINGS = dict(target="oxygen", freq="1D", time_col="datetime", horizon=H, window=28, decomp_window=64, modes=4,
                folds=1, test_start=TEST_START)
MODELS = (MAIN_MODEL, "climatology", "persistence")
PARTIAL = C.RESULTS / "neon_challenge_runs.json"
REFERENCE = {"darts_ensemble": 0.47, "climatology": 0.62}


def doy_normal(values: pd.Series, before: pd.Timestamp) -> tuple[pd.Series, pd.Series]:
    """The challenge's climatology from the daily observations before ``before``: per day of year
    (1-366), the mean and standard deviation (ddof 1) over the years that have it."""
    past = values[(values.index < before) & values.notna()]
    doy = past.index.dayofyear
    g = past.groupby(doy)
    return g.mean(), g.std(ddof=1)


def normal_crps(obs: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Closed-form CRPS of N(mu, sigma^2) at ``obs`` (Gneiting & Raftery 2007); sigma 0 -> |obs - mu|."""
    o, m, s = (np.asarray(a, dtype=np.float64) for a in (obs, mu, sigma))
    out = np.abs(o - m)
    pos = s > 0
    z = (o[pos] - m[pos]) / s[pos]
    out[pos] = s[pos] * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / math.sqrt(math.pi))
    return out


def one_site(site: str) -> dict[str, Any]:
    """Evaluate one site and score every (origin, step) of 2022: per model, the CRPS per step over
    all daily origins and over the 30-day-window origins."""
    cfg = EvaluateConfig(data=DATA, site=site, out=Path("/tmp") / f"wq-neon-challenge-{site}",
                         command=f"bench/neon_challenge.py ({site})", **SETTINGS)
    t0 = time.perf_counter()
    try:
        result = run_evaluation(cfg, StageRunner())
    except InputError:  # gaps (ice, outages) leave the validation period too few origins: double it, once
        cfg = cfg.model_copy(update={"val_fraction": 2 * cfg.val_fraction})
        result = run_evaluation(cfg, StageRunner())
    (fold,) = result.folds
    tests = fold.test_forecasts()
    obs = common_observed(fold.plan, H, tests)  # (n_test, H), NaN where any model has no forecast
    n_val = fold.plan.split.val.size
    levels = np.asarray(cfg.quantiles)
    origins = fold.plan.times[fold.plan.split.test]
    target_times = origins.values[:, None] + np.arange(1, H + 1)[None, :] * pd.Timedelta("1D").to_timedelta64()
    mean, sd = doy_normal(pd.Series(fold.plan.obs_values, index=fold.plan.times),
                          pd.Timestamp(TEST_START, tz=fold.plan.times.tz))
    doy = pd.DatetimeIndex(target_times.ravel()).tz_localize("UTC").tz_convert(fold.plan.times.tz).dayofyear
    mu = mean.reindex(doy).to_numpy().reshape(obs.shape)
    sigma = sd.reindex(doy).to_numpy().reshape(obs.shape)
    ok = np.isfinite(obs)
    for name in MODELS:
        ok &= np.isfinite(fold.quantiles[name][n_val:]).all(axis=2)  # (n_test, H, Q)
    scores: dict[str, np.ndarray] = {}
    for name in MODELS:
        c = np.full(obs.shape, np.nan)
        c[ok] = crps_values(obs[ok], fold.quantiles[name][n_val:][ok], levels)
        scores[name] = c
    # the challenge's climatology only where its standard deviation exists, beside the main model there
    doy_ok = ok & np.isfinite(mu) & np.isfinite(sigma)
    c = np.full(obs.shape, np.nan)
    c[doy_ok] = normal_crps(obs[doy_ok], mu[doy_ok], sigma[doy_ok])
    scores["doy_normal"] = c
    scores["main_where_doy_normal"] = np.where(doy_ok, scores[MAIN_MODEL], np.nan)
    start = pd.Timestamp(TEST_START, tz=fold.plan.times.tz)
    window = np.asarray(((origins - start) / pd.Timedelta("1D")) % 30 == 0)
    out: dict[str, Any] = {"site": site, "set": "dev" if site in DEV_SITES else "untouched",
                           "seconds": round(time.perf_counter() - t0, 1), "n_origins": int(origins.size),
                           "n_window_origins": int(window.sum()), "n_points": int(ok.sum()),
                           "n_points_doy_normal": int(doy_ok.sum())}
    for label, rows in (("daily", np.ones(origins.size, dtype=bool)), ("windows", window)):
        out[label] = {name: {"per_step": [float(np.nanmean(s[rows, h])) if np.isfinite(s[rows, h]).any() else None
                                          for h in range(H)],
                             "mean": float(np.nanmean(s[rows])) if np.isfinite(s[rows]).any() else None}
                      for name, s in scores.items()}
    return out


def sites() -> list[str]:
    df = pd.read_csv(DATA, usecols=["site_id", "oxygen"])
    return sorted(df.loc[df["oxygen"].notna(), "site_id"].unique())


def pooled(runs: list[dict[str, Any]], label: str, which: str | None) -> dict[str, Any]:
    """Mean over sites (each site's mean over its points) per model, per step and overall, and the
    share of sites where the main model beats each reference."""
    rs = [r for r in runs if "error" not in r and (which is None or r["set"] == which)
          and r[label][MAIN_MODEL]["mean"] is not None]
    if not rs:
        return {"sites": 0}
    names = list(rs[0][label])
    out: dict[str, Any] = {"sites": len(rs)}
    for n in names:
        per = np.array([[v if v is not None else np.nan for v in r[label][n]["per_step"]] for r in rs])
        means = [np.nan if r[label][n]["mean"] is None else r[label][n]["mean"] for r in rs]
        out[n] = {"mean": float(np.nanmean(means)) if np.isfinite(means).any() else None,
                  "per_step": [float(v) if np.isfinite(v) else None for v in np.nanmean(per, axis=0)]}
    for ref in ("climatology", "persistence", "doy_normal"):
        mine = "main_where_doy_normal" if ref == "doy_normal" else MAIN_MODEL
        both = [r for r in rs if r[label][ref]["mean"] is not None and r[label][mine]["mean"] is not None]
        out[f"share_main_below_{ref}"] = float(np.mean([r[label][mine]["mean"] < r[label][ref]["mean"]
                                                       for r in both])) if both else float("nan")
    return out


def _why(error: str) -> str:
    """The gist of a skipped site's error: which period yields how few origins."""
    m = re.search(r"has (\d+) usable points.*?longest gap (\d+) steps\); the (\w+) period .*? yields only (\d+) "
                  r"forecast origins.*?\(at least (\d+) needed\)", error)
    if not m:
        return error
    return (f"{m[1]} observed days, longest gap {m[2]} days: the {m[3]} period yields {m[4]} origins "
            f"(at least {m[5]} needed)")


def _f(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) and np.isfinite(v) else "n/a"


def markdown(runs: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    lines = [
        "NEON daily dissolved oxygen, the Forecasting Challenge's setting (`bench/neon_challenge.py`): 2022 as "
        f"test, horizons 1-{H} days, mean CRPS (mg/L) over sites (each site's mean over its points). "
        "`doy_normal` is the challenge's climatology (day-of-year normal of 2020-2021). "
        "For context only (other years, a longer climatology): the published darts ensemble scored "
        f"{REFERENCE['darts_ensemble']} against climatology's {REFERENCE['climatology']}.", "",
        "| origins | set | sites | main | climatology | persistence | main < clim. | main < pers. "
        "| main / doy_normal (its points) | main < doy_normal |", "|---|---|---|---|---|---|---|---|---|---|"]
    for label in ("daily", "windows"):
        for which in ("dev", "untouched", "all"):
            p = summary[label][which]
            if not p.get("sites"):
                continue
            lines.append(f"| {label} | {which} | {p['sites']} | " + " | ".join(
                _f(p[n]["mean"]) for n in (MAIN_MODEL, "climatology", "persistence")) + " | " + " | ".join(
                f"{p[f'share_main_below_{r}']:.0%}" for r in ("climatology", "persistence"))
                + f" | {_f(p['main_where_doy_normal']['mean'])} / {_f(p['doy_normal']['mean'])}"
                + f" | {p['share_main_below_doy_normal']:.0%} |")
    lines += ["", "Per horizon, all sites, daily origins (mean CRPS, mg/L):", "",
              "| day | main | climatology | persistence | doy_normal |", "|---|---|---|---|---|"]
    p = summary["daily"]["all"]
    for h in (1, 2, 3, 5, 7, 10, 14, 21, 30):
        lines.append(f"| {h} | " + " | ".join(_f(p[n]["per_step"][h - 1])
                                           for n in (MAIN_MODEL, "climatology", "persistence", "doy_normal")) + " |")
    lines += ["", "Per site (daily origins):", "",
              "| site | set | origins | points | main | climatology | persistence | doy_normal | seconds |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        if "error" in r:
            lines.append(f"| {r['site']} | skipped | | | {_why(r['error'])} | | | | |")
            continue
        d = r["daily"]
        lines.append(f"| {r['site']} | {r['set']} | {r['n_origins']} | {r['n_points']} | " + " | ".join(
            _f(d[n]["mean"]) for n in (MAIN_MODEL, "climatology", "persistence", "doy_normal"))
            + f" | {r['seconds']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    t0 = time.perf_counter()
    done = {r["site"]: r for r in json.loads(PARTIAL.read_text())} if PARTIAL.exists() and "--resume" in sys.argv else {}
    runs = []
    for site in sites():
        if site in done:
            runs.append(done[site])
            continue
        print(f"{site} ...", flush=True)
        try:
            r = one_site(site)
        except InputError as exc:
            r = {"site": site, "set": "dev" if site in DEV_SITES else "untouched", "error": str(exc).split("\n")[0]}
        runs.append(r)
        print(f"  {r.get('error') or {n: round(v['mean'], 3) for n, v in r['daily'].items() if v['mean']}}", flush=True)
        PARTIAL.write_text(json.dumps(runs, indent=1))
    summary = {label: {which: pooled(runs, label, None if which == "all" else which)
                       for which in ("dev", "untouched", "all")} for label in ("daily", "windows")}
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    C.write_table("neon_challenge", markdown(runs, summary).splitlines(),
                  {"summary": summary, "runs": runs, "reference": REFERENCE, "machine": C.machine()})


if __name__ == "__main__":
    main()
