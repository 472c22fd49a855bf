"""The networks of a fold: their training jobs (plain LSTM, one per component with and without FECA, the hybrid), the training pool's size, and the hybrid's forecast."""

from __future__ import annotations

from typing import Any

import numpy as np

from wq_pipeline.config import EvaluateConfig
from wq_pipeline.data.covariates import (
    covariate_windows,
    with_covariates,
)
from wq_pipeline.evaluation.folds import HYBRID_JOB, HybridForecast, Plan, step_hours_of
from wq_pipeline.models.hybrid import (
    calendar_channels,
    first_stage_forecast,
    hybrid_inputs,
    shrink_weights,
)
from wq_pipeline.models.network_jobs import (
    TrainedForecast,
    TrainJob,
    fit_predict,
    fit_predict_portable,
)
from wq_pipeline.models.protocol import (
    ComponentSamples,
    component_targets,
    raw_windows,
    select_rows,
    target_matrix,
)
from wq_pipeline.models.workers import resolve_jobs, training_pool

POOL_MIN_SAMPLE_EPOCHS = 200_000


def workers_for(cfg: EvaluateConfig, samples: int) -> int:
    """Worker processes for training on ``samples`` training samples in all (over every network):
    ``cfg.jobs`` when set; with ``jobs=0`` (auto) one per core, unless the whole training is too
    small to pay for starting TensorFlow in each worker."""
    if cfg.jobs > 0:
        return cfg.jobs
    return resolve_jobs(0) if samples * cfg.epochs >= POOL_MIN_SAMPLE_EPOCHS else 1


def train_stage(job: TrainJob, cfg: EvaluateConfig, workers: int) -> TrainedForecast:
    """Train one network: in-process when ``workers == 1``, else in the training pool."""
    if workers == 1:
        return fit_predict(job, cfg)
    return training_pool(workers).submit(fit_predict_portable, job, cfg).result()


def training_jobs(samples: ComponentSamples, plan: Plan, cfg: EvaluateConfig, names: list[str]) -> list[TrainJob]:
    """Every network of a run: :func:`lstm_job`, then :func:`component_jobs`."""
    return [lstm_job(plan, cfg), *component_jobs(samples, plan, cfg, names)]


def lstm_job(plan: Plan, cfg: EvaluateConfig) -> TrainJob:
    """The plain LSTM on the raw series' last W values, plus the covariates (needs no
    decomposition). Its targets are real observations only."""
    s, y, H, W, cov = plan.split, plan.values, cfg.horizon, cfg.window, plan.covariates
    X = {part: with_covariates(raw_windows(y, o, W), cov, o) for part, o in (("tr", s.train), ("va", s.val), ("te", s.test))}
    y_obs = plan.obs_values
    return TrainJob("lstm", False, X["tr"], target_matrix(y_obs, s.train, H), X["va"], target_matrix(y_obs, s.val, H),
                    X["te"])


def observed_component_targets(samples: ComponentSamples, observed: np.ndarray, origins: np.ndarray,
                               horizon: int) -> np.ndarray:
    """``(n, C, H)`` component targets (:func:`~wq_pipeline.models.protocol.component_targets`), NaN where
    ``t + h`` is not a real observation (``observed (N,)``): an interpolated end point would carry
    a later reading."""
    Y = component_targets(samples, origins, horizon)
    pos = origins[:, None] + np.arange(1, horizon + 1)[None, :]
    seen = np.zeros(pos.shape, dtype=bool)
    inside = pos < observed.size
    seen[inside] = observed[pos[inside]]
    return np.where(seen[:, None, :], Y, np.nan)


def component_jobs(samples: ComponentSamples, plan: Plan, cfg: EvaluateConfig, names: list[str]) -> list[TrainJob]:
    """One network per component with FECA, then one without (the ablation). Component ``k``'s
    inputs are its last W points, then the covariates' last W values; its targets are its next H
    end points (see :mod:`wq_pipeline.models.protocol`), at real observations only."""
    s, H, cov = plan.split, cfg.horizon, plan.covariates
    jobs: list[TrainJob] = []
    X = {part: select_rows(samples, o) for part, o in (("tr", s.train), ("va", s.val), ("te", s.test))}
    C = {part: covariate_windows(cov, o, cfg.window) for part, o in (("tr", s.train), ("va", s.val), ("te", s.test))}
    Ytr = observed_component_targets(samples, plan.observed, s.train, H)
    Yva = observed_component_targets(samples, plan.observed, s.val, H)

    def inputs(part: str, k: int) -> np.ndarray:
        return np.concatenate([X[part][:, :, k:k + 1], C[part]], axis=2)

    for feca in (True, False):
        prefix = "feca_" if feca else "plain_"
        for k, name in enumerate(names):
            jobs.append(TrainJob(prefix + name, feca, inputs("tr", k), Ytr[:, k, :], inputs("va", k),
                                 Yva[:, k, :], inputs("te", k)))
    return jobs


def hybrid_job(plan: Plan, cfg: EvaluateConfig, samples: ComponentSamples | None,
               first_stage_params: dict[str, Any] | None) -> tuple[TrainJob, dict[str, np.ndarray]]:
    """The hybrid network's job (:mod:`wq_pipeline.models.hybrid`): inputs ``(n, W, C)`` from positions
    ``<= t`` and targets ``(n, H)`` = observed series minus the first stage's forecast. Also
    returns the first-stage forecasts ``{"train"|"val"|"test": (n, H)}``."""
    opts = cfg.hybrid_options()
    s, y, H, W = plan.split, plan.values, cfg.horizon, cfg.window
    cal = calendar_channels(plan.times) if opts.calendar else None
    parts = {"train": s.train, "val": s.val, "test": s.test}
    f1 = {k: first_stage_forecast(y, o, H, step_hours_of(plan), opts.first_stage, first_stage_params)
          for k, o in parts.items()}
    X = {k: hybrid_inputs(y, o, W, opts, samples, plan.covariates, cal) for k, o in parts.items()}
    residual = opts.first_stage != "none"
    y_obs = plan.obs_values
    job = TrainJob(HYBRID_JOB, opts.feca, X["train"], target_matrix(y_obs, s.train, H) - f1["train"], X["val"],
                   target_matrix(y_obs, s.val, H) - f1["val"], X["test"], own_target_scale=residual,
                   fixed_channels=0 if cal is None else cal.shape[1])
    return job, f1


def hybrid_forecast(trained: TrainedForecast, first_stage: dict[str, np.ndarray], plan: Plan,
                    cfg: EvaluateConfig, val_first_stage: np.ndarray | None = None) -> HybridForecast:
    """First stage + per-step weight x network correction, the weights fitted on the validation
    origins' real observations (all 1 without ``shrink`` or a first stage).

    The validation rows, which only warm the ensemble's weights up, are cross-fitted: each half
    uses the weights fitted on the other half, and ``val_first_stage`` (the harmonic + AR member's
    own cross-fitted validation forecasts, when given) as its first stage, so that the hybrid does
    not look better on validation than it is."""
    opts = cfg.hybrid_options()
    H = cfg.horizon
    val_obs = target_matrix(plan.obs_values, plan.split.val, H)
    weights = np.ones(H)
    correction = trained.fit_forecast()
    n_val = first_stage["val"].shape[0]
    skipped = bool(trained.training.get("skipped"))
    if skipped:  # no network: the hybrid is its first stage
        correction, weights = np.zeros_like(correction), np.zeros(H)
    shrinking = opts.shrink and opts.first_stage != "none" and not skipped
    if shrinking:
        weights = shrink_weights(val_obs - first_stage["val"], correction[:n_val])
    info: dict[str, Any] = {"options": opts.label(), "shrink_weights": [round(float(w), 4) for w in weights],
                            "channels": trained.training.get("channels")}
    info["validation_rmse"] = _rmse_last(first_stage["val"] + weights[None, :] * correction[:n_val], val_obs)
    info["validation_rmse_first_stage"] = _rmse_last(first_stage["val"], val_obs)
    f1_val = first_stage["val"] if val_first_stage is None else val_first_stage
    val = f1_val + weights[None, :] * correction[:n_val]
    if shrinking and n_val >= 2:
        half = n_val // 2
        for rows, other in ((slice(0, half), slice(half, n_val)), (slice(half, n_val), slice(0, half))):
            w = shrink_weights(val_obs[other] - first_stage["val"][other], correction[:n_val][other])
            val[rows] = f1_val[rows] + w[None, :] * correction[:n_val][rows]
    test = first_stage["test"] + weights[None, :] * correction[n_val:]
    return HybridForecast(forecast=np.concatenate([val, test]), correction=correction, info=info, weights=weights)


def _rmse_last(forecast: np.ndarray, observed: np.ndarray) -> float | None:
    """RMSE at the last step of ``(n, H)`` arrays over finite pairs (None when there are none)."""
    err = (forecast - observed)[:, -1]
    err = err[np.isfinite(err)]
    return float(np.sqrt(np.mean(err ** 2))) if err.size else None

