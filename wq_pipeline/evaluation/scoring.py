"""Scoring a run: every model at every step on the same points, the quantiles and their scores, the Forecasting Challenge's, threshold crossings, per fold and pooled."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from wq_pipeline.config import MAIN_MODEL, EvaluateConfig
from wq_pipeline.evaluation.folds import (
    MODEL_NAMES,
    SKILL_REFERENCES,
    FoldResult,
    Plan,
    step_hours_of,
)
from wq_pipeline.evaluation.metrics import add_best_baseline_skill, add_skill, score
from wq_pipeline.evaluation.outputs import forecast_table
from wq_pipeline.models.ensemble import (
    History,
    with_history,
)
from wq_pipeline.models.protocol import (
    target_matrix,
)


def quantile_stage(folds: list[FoldResult], cfg: EvaluateConfig) -> None:
    """Every model's quantiles at every fold's validation and test origins (``fold.quantiles``),
    calibrated on that model's errors already observed at each origin
    (:func:`~wq_pipeline.models.intervals.conformal_quantiles`). A model's record carries over from
    fold to fold, as the ensemble's does."""
    from wq_pipeline.models.intervals import conformal_quantiles

    records: dict[str, History] = {}
    for fold in folds:
        s = fold.plan.split
        opts = cfg.interval_options(step_hours_of(fold.plan))
        o = s.fit_origins
        for name in MODEL_NAMES:
            seq_o, seq_f, n_hist = with_history(records.get(name), o, fold.forecasts[name][None])
            records[name] = (seq_o, seq_f)
            Q = conformal_quantiles(seq_f[0], seq_o, fold.plan.obs_values, opts, first_test=s.test_start)
            fold.quantiles[name] = Q[n_hist:]


def probabilistic_scores(folds: list[FoldResult], observed: list[np.ndarray], cfg: EvaluateConfig) -> dict[str, Any]:
    """Quantile scores of every model on the same test points as the point scores (``observed``:
    each fold's ``(n_test, H)`` common observations): pooled, per fold, with CRPS skill against
    climatology's and persistence's distributions (their forecasts with their own conformal
    quantiles)."""
    from wq_pipeline.models.intervals import INTERVALS
    from wq_pipeline.models.scoring_rules import quantile_scores

    levels = tuple(cfg.quantiles)

    def scores(obs: np.ndarray, qs: dict[str, np.ndarray]) -> dict[str, Any]:
        out = {name: quantile_scores(obs, qs[name], levels, INTERVALS) for name in MODEL_NAMES}
        for name, sc in out.items():
            for ref in ("climatology", "persistence"):
                base = out[ref]["crps"]
                sc[f"crps_skill_{ref}"] = (1.0 - sc["crps"] / base) if base and np.isfinite(base) and base > 0 else None
        return out

    tests = [{n: f.quantiles[n][f.plan.split.val.size:] for n in MODEL_NAMES} for f in folds]
    pooled = scores(np.concatenate(observed), {n: np.concatenate([t[n] for t in tests]) for n in MODEL_NAMES})
    return {"method": cfg.interval_method, "levels": list(levels),
            "crps": "from the quantiles: the distribution whose quantile function interpolates them linearly "
                    "(flat beyond the outermost levels), integrated exactly on a fine grid",
            "models": pooled, "folds": [scores(o, t) for o, t in zip(observed, tests)]}


def challenge_stage(folds: list[FoldResult], observed: list[np.ndarray], cfg: EvaluateConfig) -> dict[str, Any]:
    """The Forecasting Challenge's scores (:mod:`wq_pipeline.evaluation.challenge`) over every fold's test
    origins: the main model against the challenge's climatology and random-walk persistence,
    each computed from the data before that fold's test period."""
    from wq_pipeline.evaluation.challenge import (
        challenge_scores,
        climatology_quantiles,
        doy_climatology,
        random_walk_offsets,
        window_origins,
    )

    levels = tuple(cfg.quantiles)
    parts: dict[str, list[np.ndarray]] = {MAIN_MODEL: [], "challenge_climatology": [], "challenge_persistence": []}
    windows = []
    for f, obs in zip(folds, observed):
        p, s = f.plan, f.plan.split
        H = obs.shape[1]
        origins = s.test
        targets = p.times[np.minimum(origins[:, None] + np.arange(1, H + 1)[None, :], p.times.size - 1).ravel()]
        mean, sd = doy_climatology(p.obs_values, p.times, s.test_start)
        parts[MAIN_MODEL].append(f.quantiles[MAIN_MODEL][s.val.size:])
        parts["challenge_climatology"].append(climatology_quantiles(mean, sd, targets, obs.shape, levels))
        offsets = random_walk_offsets(p.values, p.observed, s.test_start, H, levels)
        parts["challenge_persistence"].append(p.values[origins][:, None, None] + offsets[None])
        windows.append(window_origins(p.times[origins], p.times[s.test_start]))
    return challenge_scores(np.concatenate(observed), {k: np.concatenate(v) for k, v in parts.items()}, levels,
                            np.concatenate(windows), MAIN_MODEL)


def exceedance_stage(folds: list[FoldResult], observed: list[np.ndarray], cfg: EvaluateConfig,
                     thresholds: list[Any]) -> list[dict[str, Any]]:
    """Per threshold on the target: every model's Brier score over the test points of every fold
    (pooled), its skill against climatology, the base rate and the main model's reliability table
    (:func:`~wq_pipeline.models.exceedance.exceedance_scores`)."""
    from wq_pipeline.models.exceedance import exceedance_scores

    if not thresholds:
        return []
    qs = {n: np.concatenate([f.quantiles[n][f.plan.split.val.size:] for f in folds]) for n in MODEL_NAMES}
    obs = np.concatenate(observed)
    return [exceedance_scores(obs, qs, tuple(cfg.quantiles), th, MAIN_MODEL, cfg.alert_level) for th in thresholds]


def add_crossing_columns(table: pd.DataFrame, cfg: EvaluateConfig, thresholds: list[Any]) -> pd.DataFrame:
    """forecasts.csv with one column ``P(<threshold>)`` per threshold: each row's crossing
    probability from its quantiles."""
    from wq_pipeline.models.exceedance import crossing_probability

    if not thresholds:
        return table
    levels = tuple(cfg.quantiles)
    q = table[[f"q{lv:g}" for lv in levels]].to_numpy(dtype=np.float64)
    out = table.copy()
    for th in thresholds:
        out[f"P({th.label})"] = crossing_probability(q, levels, th)
    return out


def common_observed(plan: Plan, H: int, forecasts: dict[str, np.ndarray]) -> np.ndarray:
    """``(n_test, H)`` observations at the test targets, NaN where any model has no forecast or
    the target is not a real observation: every model is scored on the same points. A model
    without any forecast (a network skipped for want of samples) is left out of the mask."""
    obs = target_matrix(plan.obs_values, plan.split.test, H)
    common = np.ones(obs.shape, dtype=bool)
    for f in forecasts.values():
        if np.isfinite(f).any():
            common &= np.isfinite(f)
    return np.where(common, obs, np.nan)


def score_models(obs: np.ndarray, forecasts: dict[str, np.ndarray]) -> dict[str, Any]:
    """Every model's scores on ``obs (n, H)`` with skill against persistence and MSE skill
    against the best baseline."""
    scores = {name: score(obs, forecasts[name]) for name in MODEL_NAMES}
    add_skill(scores, reference="persistence")
    add_best_baseline_skill(scores, SKILL_REFERENCES)
    return scores


def evaluate_stage(
    plan: Plan, cfg: EvaluateConfig, forecasts: dict[str, np.ndarray]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Score every model's test forecasts ``{name: (n_test, H)}`` on the same test points (real
    observations only) and build the long forecast table."""
    return score_models(common_observed(plan, cfg.horizon, forecasts), forecasts), \
        forecast_table(plan, cfg.horizon, forecasts)


def validation_rmse(fold: FoldResult, H: int) -> dict[str, float | None]:
    """Every model's RMSE at step H over the fold's validation origins (real observations only):
    what a choice between models may be based on (the test period never is). The ensemble's is
    its warm-up period."""
    s = fold.plan.split
    obs = target_matrix(fold.plan.obs_values, s.val, H)[:, -1]
    out = {}
    for name, f in fold.forecasts.items():
        err = f[: s.val.size, -1] - obs
        err = err[np.isfinite(err)]
        out[name] = float(np.sqrt(np.mean(err ** 2))) if err.size else None
    return out


def fold_metrics(fold: FoldResult, scores: dict[str, Any]) -> dict[str, Any]:
    """One fold's entry in ``metrics.json['folds']``: its periods, sizes, scores and every choice
    made on its training and validation data."""
    s, t = fold.plan.split, fold.plan.times
    return {
        "fold": s.fold,
        "periods": {"train_start": t[0].isoformat(), "val_start": t[s.val_start].isoformat(),
                    "test_start": t[s.test_start].isoformat(), "test_end": t[min(s.test_end or t.size, t.size) - 1].isoformat()},
        "n_train": int(s.train.size), "n_val": int(s.val.size), "n_test": int(s.test.size),
        "validation_rmse": validation_rmse(fold, fold.forecasts[MAIN_MODEL].shape[1]),
        "models": {name: {k: sc.get(k) for k in ("rmse", "mae", "nse", "kge", "skill", "mse_skill_best_baseline",
                                                 "best_baseline", "n_points")} | {"per_step_rmse": sc["per_step"]["rmse"]}
                   for name, sc in scores.items()},
        "baselines": fold.baselines,
        "hybrid": fold.hybrid,
        "ensemble": fold.ensemble,
        "decomposer_fitted": fold.decomposer_fitted,
        "covariate_fill": fold.plan.covariates.info,
        "training": {tr.name: {k: tr.training.get(k) for k in ("epochs_run", "best_epoch", "n_train", "n_val", "scaler")}
                     for tr in fold.trained},
    }


def compare_protocols(stepwise: dict[str, Any], leaky: dict[str, Any]) -> dict[str, Any]:
    """Per model, NSE and RMSE at step H under the honest and the leaky protocol, and how much
    apparent skill the leak adds (``nse_leak = NSE_global - NSE_stepwise``)."""
    models = {}
    for name in MODEL_NAMES:
        a, b = stepwise["models"][name], leaky["models"][name]
        models[name] = {
            "nse_stepwise": a["nse"], "nse_global": b["nse"], "nse_leak": _diff(b["nse"], a["nse"]),
            "rmse_stepwise": a["rmse"], "rmse_global": b["rmse"], "rmse_leak": _diff(a["rmse"], b["rmse"]),
        }
    return {"dataset": stepwise["dataset"], "target": stepwise["target"], "site": stepwise["site"],
            "horizon": stepwise["horizon"], "method": stepwise["method"], "n_test": stepwise["n_test"],
            "models": models}


def _diff(a: Any, b: Any) -> float | None:
    return None if a is None or b is None else float(a) - float(b)

