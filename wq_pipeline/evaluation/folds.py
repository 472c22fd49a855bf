"""What a run is made of: the models' names, the folds' plans (splits, origins, covariates), what one fold produced, and the run's result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from wq_pipeline.config import MAIN_MODEL, STATISTICAL_MODELS, EvaluateConfig
from wq_pipeline.data.covariates import (
    Covariates,
    build_covariates,
    resolve_covariates,
)
from wq_pipeline.data.qc import StationSeries
from wq_pipeline.errors import InputError
from wq_pipeline.models.ensemble import (
    History,
)
from wq_pipeline.models.network_jobs import (
    TrainedForecast,
)
from wq_pipeline.models.protocol import (
    ComponentSamples,
    Split,
    eligible_origins,
    fold_bounds,
    fold_split,
    window_ok,
)

BASELINE_NAMES = STATISTICAL_MODELS


NETWORK_MODELS = ("lstm", "decomp_lstm", "decomp_feca_lstm", "hybrid_feca_lstm")


# What the ensemble combines: every baseline and every network model.
MEMBER_NAMES = (*BASELINE_NAMES, *NETWORK_MODELS)


MODEL_NAMES = (*MEMBER_NAMES, MAIN_MODEL)


HYBRID_JOB = "hybrid"


# What "the best baseline" is chosen from: every statistical baseline and the plain LSTM.
SKILL_REFERENCES = (*BASELINE_NAMES, "lstm")


# Fewest origins a fold's training, validation and test periods may have.
MIN_ORIGINS = {"training": 50, "validation": 10, "test": 5}


@dataclass
class Plan:
    """One fold: where forecasts are issued and which windows must be decomposed."""

    values: np.ndarray  # (N,) target after QC, NaN in long gaps
    observed: np.ndarray  # (N,) bool, real observations
    times: pd.DatetimeIndex
    split: Split
    decompose_at: np.ndarray  # sorted positions whose trailing window is decomposed
    covariates: Covariates  # (N, K) causal extra input channels, K = 0 without --covariates

    @property
    def obs_values(self) -> np.ndarray:
        """``(N,)``: the target where it is a real observation, NaN elsewhere (interpolated and
        QC-removed points). Every training target and every score uses these only."""
        return np.where(self.observed, self.values, np.nan)


def resolve_test_start(station: StationSeries, cfg: EvaluateConfig) -> int | None:
    """Grid position of ``--test-start`` (the first grid time at or after it), None when unset.
    Raises :class:`InputError` when it lies outside the data."""
    if cfg.test_start is None:
        return None
    from wq_pipeline.evaluation.asof import as_timestamp

    times = station.values.index
    when = as_timestamp(cfg.test_start, times.tz, "--test-start")
    if when <= times[0] or when > times[-1]:
        raise InputError(f"{cfg.data}: --test-start {cfg.test_start} lies outside the data of '{cfg.target}' "
                         f"({times[0].isoformat()} .. {times[-1].isoformat()}); expected a time after the first "
                         f"and at or before the last grid time")
    return int(np.searchsorted(times.asi8, when.value, side="left"))


def _minimum_origins(cfg: EvaluateConfig) -> int | None:
    """Fewest forecast origins ``--folds`` needs (None: no number is enough with this
    ``--val-fraction``)."""
    per_fold = 1.0 / (cfg.folds + 1) - cfg.val_fraction
    if per_fold <= 0:
        return None
    return int(np.ceil((MIN_ORIGINS["training"] + cfg.horizon + 1) / per_fold))


def plan_folds(station: StationSeries, cfg: EvaluateConfig) -> list[Plan]:
    """Choose eligible origins, split them into the folds' chronological periods and list the
    windows each fold decomposes. Each fold's covariate fill statistics come from its own
    training period.

    Raises :class:`InputError` when the series is too short for the folds, the window,
    decomposition window and horizon, or ``--test-start`` lies outside the data.
    """
    resolve_covariates(station, cfg.covariates)  # names checked before lengths: the likelier mistake
    target_thresholds(station, cfg)
    values = station.values.to_numpy(dtype=float)
    observed = station.observed.to_numpy(dtype=bool)
    lookback = max(cfg.window, cfg.decomp_window)
    ok = eligible_origins(values, observed, lookback, cfg.horizon)
    start = resolve_test_start(station, cfg)
    need = f"window {cfg.window}, decomposition window {cfg.decomp_window} and horizon {cfg.horizon}"
    origins = np.flatnonzero(ok)
    if cfg.folds > 1:
        minimum = _minimum_origins(cfg)
        before = origins.size if start is None else int(np.searchsorted(origins, start))
        after = origins.size - before
        if minimum is None or origins.size < minimum or (start is not None and (
                before - round(origins.size * cfg.val_fraction) < MIN_ORIGINS["training"] + cfg.horizon
                or after < cfg.folds * MIN_ORIGINS["test"])):
            raise InputError(
                f"{cfg.data}: --folds {cfg.folds} needs "
                + (f"at least {minimum} forecast origins (real observations with a complete "
                   f"{lookback}-step window)" if minimum else f"--val-fraction below 1/{cfg.folds + 1}")
                + f" with {need} and --val-fraction {cfg.val_fraction:g}"
                + ("" if start is None else f", {MIN_ORIGINS['training'] + cfg.horizon} of them before the "
                   f"validation period and {cfg.folds * MIN_ORIGINS['test']} from --test-start on")
                + f"; column '{cfg.target}' has {origins.size} on its {values.size}-step {station.freq} grid"
                + ("" if start is None else f" ({before} before --test-start)")
                + ". Use fewer --folds or a longer file."
            )
    bounds = fold_bounds(values.size, cfg.folds, cfg.test_fraction, cfg.val_fraction, start, origins)
    plans = []
    for k, b in enumerate(bounds, start=1):
        split = fold_split(ok, cfg.horizon, b, fold=k)
        where = f"fold {k} of {cfg.folds}: the " if cfg.folds > 1 else "the "
        for name, part in (("training", split.train), ("validation", split.val), ("test", split.test)):
            if part.size < MIN_ORIGINS[name]:
                raise InputError(
                    f"{cfg.data}: column '{cfg.target}' has {int(np.isfinite(values).sum())} usable points on a "
                    f"{values.size}-step {station.freq} grid (longest gap {station.summary.get('longest_gap_steps')} "
                    f"steps); {where}{name} period ({_period(station, b, name)}) yields only {part.size} forecast "
                    f"origins with {need} (at least {MIN_ORIGINS[name]} needed). Use a longer file, fewer --folds, "
                    f"another --test-start or smaller --window/--decomp-window/--horizon."
                )
        at = positions_to_decompose(values, np.concatenate([split.train, split.val]), split.test, cfg.horizon,
                                    cfg.decomp_window)
        cov = build_covariates(station, cfg.covariates, split.val_start, cfg.qc.max_gap)
        plans.append(Plan(values=values, observed=observed, times=station.values.index, split=split,
                          decompose_at=at, covariates=cov))
    return plans


def target_thresholds(station: StationSeries, cfg: EvaluateConfig) -> list[Any]:
    """The thresholds of ``cfg`` on this run's target (:class:`~wq_pipeline.models.exceedance.Threshold`);
    :class:`InputError` for one naming a column the file does not have."""
    from wq_pipeline.data.load import find_column
    from wq_pipeline.models.exceedance import parse_threshold

    out = []
    columns = list(station.frame.columns)
    for text in cfg.thresholds:
        th = parse_threshold(text)
        col = find_column(columns, th.column)
        if col is None:
            raise InputError(f"{station.path.name}: --threshold {text!r} names column {th.column!r}, which the file "
                             f"does not have; available numeric columns: {', '.join(columns)}")
        if col == station.target:
            out.append(th)
    return out


def _period(station: StationSeries, b: Any, name: str) -> str:
    t = station.values.index
    lo, hi = {"training": (0, b.val_start), "validation": (b.val_start, b.test_start),
              "test": (b.test_start, b.test_end)}[name]
    lo, hi = max(lo, 0), min(max(hi, 1), t.size)
    return f"{t[lo].isoformat()} .. {t[hi - 1].isoformat()}" if hi > lo else "empty"


def plan_stage(station: StationSeries, cfg: EvaluateConfig) -> Plan:
    """The last fold's :class:`Plan` (the only one without ``--folds``)."""
    return plan_folds(station, cfg)[-1]


def positions_to_decompose(values: np.ndarray, fit_origins: np.ndarray, other_origins: np.ndarray,
                           horizon: int, decomp_window: int) -> np.ndarray:
    """Sorted positions whose trailing window must be decomposed: every origin, and for the
    training/validation origins also ``t+1 .. t+H`` (their component targets are the end points
    of those windows) where the window is finite."""
    later = (fit_origins[:, None] + np.arange(1, horizon + 1)[None, :]).ravel()
    later = later[later < values.size]
    later = later[window_ok(np.isfinite(values), decomp_window)[later]]
    return np.unique(np.concatenate([fit_origins, other_origins, later]).astype(np.int64))


def step_hours_of(plan: Plan) -> float:
    """The grid step in hours."""
    return (plan.times[1] - plan.times[0]).total_seconds() / 3600.0


@dataclass
class Stationarity:
    """ADF/KPSS table and the decomposition it was computed on (training period only)."""

    table: pd.DataFrame
    components: pd.DataFrame  # time, raw, one column per component


@dataclass
class FoldResult:
    """Everything one fold produced. ``forecasts[name]``: ``(n_val + n_test, H)`` at
    ``plan.split.fit_origins`` for every model of :data:`MODEL_NAMES`; ``weights (n, H, M)``: the
    ensemble's weights of :data:`MEMBER_NAMES` at those origins; ``correction``: the hybrid
    network's own forecast before shrinking."""

    plan: Plan
    forecasts: dict[str, np.ndarray]
    weights: np.ndarray
    correction: np.ndarray
    trained: list[TrainedForecast]
    baselines: dict[str, Any]
    hybrid: dict[str, Any]
    ensemble: dict[str, Any]
    decomposer_fitted: dict[str, Any]
    samples: ComponentSamples | None = None
    record: History | None = None  # the ensemble's record up to this fold's last origin (positions, (M, r, H))
    hybrid_weights: np.ndarray | None = None  # (H,) the hybrid's shrink weights
    quantiles: dict[str, np.ndarray] = field(default_factory=dict)  # {name: (n_val + n_test, H, Q)}

    def test_forecasts(self) -> dict[str, np.ndarray]:
        """``{name: (n_test, H)}``: the test rows of :attr:`forecasts`."""
        n_val = self.plan.split.val.size
        return {k: v[n_val:] for k, v in self.forecasts.items()}


@dataclass
class EvaluationResult:
    metrics: dict[str, Any]
    forecasts: pd.DataFrame
    stationarity: Stationarity
    station: StationSeries | None = None
    plan: Plan | None = None  # the last fold's
    trained: list[TrainedForecast] = field(default_factory=list)  # the last fold's networks
    samples: ComponentSamples | None = None  # the last fold's stepwise decomposition (for ablations)
    folds: list[FoldResult] = field(default_factory=list)


@dataclass
class HybridForecast:
    """The hybrid model at a fold's validation and test origins (``Split.fit_origins``):
    ``forecast (n_val + n_test, H)`` = first stage + weight x ``correction``, the network's own
    forecast before shrinking; ``info``: options, weights, validation RMSE."""

    forecast: np.ndarray
    correction: np.ndarray
    info: dict[str, Any]
    weights: np.ndarray | None = None  # (H,) the shrink weights the test forecasts use (unrounded)

