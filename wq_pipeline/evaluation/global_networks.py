"""Global networks: each network kind trained once on the pooled samples of every series of a run
(``wq evaluate --global``), instead of once per series.

Every series runs its own evaluation (QC, decomposition, baselines, the ensemble's weights,
scores and outputs stay per series). Where a series would train its networks, it hands its
training jobs to a :class:`GlobalTrainer` and waits; once every series has handed its jobs in (or
dropped out with an error), the trainer pools them by fold and network and trains each pooled job
once, then hands every series its own forecasts back.

Pooling, the level-free way: each series' inputs and targets of a job are divided by that
series' own training spread (per input channel; the target by the target channel's, or by its
own where the targets are a first stage's errors), so no series dominates by its units; the
network's scaler then works on the pooled, unit-free samples as it does on one series. Each
sample gets one static input channel per series (one-hot, a series identifier), appended to the
channels without a level, so the network can tell the series apart. A series' forecasts are the
pooled network's forecasts of its own inputs, multiplied back by its spread.

A pooled network trains with batches as many times larger as there are series (at most
:data:`MAX_BATCH` samples), so an epoch takes as many steps as one series' own network would,
with the same epochs and early stopping.

Nothing here looks ahead: every spread comes from a series' own training samples, and each
pooled job trains on every series' training samples and stops early on their validation
samples, exactly the periods each series' own networks would use.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, NamedTuple

import numpy as np

from wq_pipeline.config import EvaluateConfig
from wq_pipeline.errors import InputError
from wq_pipeline.models.network_jobs import TrainedForecast, TrainJob
from wq_pipeline.models.scaling import Scaler, SeriesScaler

#: the largest batch of a pooled network (samples)
MAX_BATCH = 2048


def _spread(X: np.ndarray, fixed: int) -> np.ndarray:
    """``(C,)`` per-channel standard deviation of training inputs ``(n, W, C)``; 1 for the
    ``fixed`` trailing channels and where it is not positive."""
    C = X.shape[2]
    sd = np.ones(C)
    if X.size:
        with np.errstate(all="ignore"):
            s = np.nanstd(X[:, :, :C - fixed].reshape(-1, C - fixed), axis=0) if C > fixed else np.zeros(0)
        sd[:C - fixed] = np.where(np.isfinite(s) & (s > 0), s, 1.0)
    return sd


def _target_spread(job: TrainJob, sd_in: np.ndarray) -> float:
    """What a series' targets are divided by: the target channel's spread, or the targets' own
    where they are a first stage's errors."""
    if not job.own_target_scale:
        return float(sd_in[0])
    with np.errstate(all="ignore"):
        s = float(np.nanstd(job.Y_train)) if job.Y_train.size else float("nan")
    return s if np.isfinite(s) and s > 0 else 1.0


class SeriesSplit(NamedTuple):
    """Where one series' rows lie in a pooled job's forecasts, and its spreads."""

    n_val: int
    n_test: int
    target_spread: float
    spread: tuple[float, ...]  # per input channel


def pool_jobs(jobs: list[TrainJob]) -> tuple[TrainJob, list[SeriesSplit]]:
    """One job of the same network from every series' ``jobs`` (same name, window and channels):
    the pooled, unit-free samples with one-hot series channels. Its test inputs are every series'
    validation then test inputs, so the trained network forecasts them all; returns the job and,
    per series, its :class:`SeriesSplit` to split and rescale those forecasts."""
    S = len(jobs)
    names = {j.name for j in jobs}
    shapes = {(j.X_train.shape[1], j.X_train.shape[2], j.fixed_channels) for j in jobs}
    if len(names) != 1 or len(shapes) != 1:
        raise ValueError(f"pooled jobs must be the same network on the same inputs, got {names} {shapes}")
    parts: dict[str, list[np.ndarray]] = {"Xtr": [], "Ytr": [], "Xva": [], "Yva": [], "Xte": []}
    splits = []
    for s, job in enumerate(jobs):
        sd_in = _spread(job.X_train, job.fixed_channels)
        sd_y = _target_spread(job, sd_in)

        def prep(X: np.ndarray) -> np.ndarray:
            onehot = np.zeros((X.shape[0], X.shape[1], S))
            onehot[:, :, s] = 1.0
            return np.concatenate([X / sd_in, onehot], axis=2)

        parts["Xtr"].append(prep(job.X_train))
        parts["Ytr"].append(job.Y_train / sd_y)
        parts["Xva"].append(prep(job.X_val))
        parts["Yva"].append(job.Y_val / sd_y)
        parts["Xte"].append(np.concatenate([prep(job.X_val), prep(job.X_test)]))
        splits.append(SeriesSplit(job.X_val.shape[0], job.X_test.shape[0], sd_y, tuple(float(v) for v in sd_in)))
    first = jobs[0]
    pooled = replace(first, X_train=np.concatenate(parts["Xtr"]), Y_train=np.concatenate(parts["Ytr"]),
                     X_val=np.concatenate(parts["Xva"]), Y_val=np.concatenate(parts["Yva"]),
                     X_test=np.concatenate(parts["Xte"]), predict_val=False,
                     fixed_channels=first.fixed_channels + S)
    return pooled, splits


def unpool(trained: TrainedForecast, splits: list[SeriesSplit], series: int) -> TrainedForecast:
    """Series ``series``' forecasts from a pooled network's (validation then test, per series),
    with a :class:`~wq_pipeline.models.scaling.SeriesScaler` that takes the series' own inputs through
    the pooled network, as a served version does."""
    start = sum(sp.n_val + sp.n_test for sp in splits[:series])
    n_val, n_test, sd_y, sd_in = splits[series]
    rows = trained.forecast[start:start + n_val + n_test] * sd_y
    info = {**trained.training, "global": {"series": len(splits), "series_index": series, "target_spread": sd_y}}
    if "channels" in info:  # the series' own input channels (the pooled network adds its identifiers)
        info["channels"] = len(sd_in)
    scaler = (SeriesScaler(trained.scaler, sd_in, sd_y, series, len(splits))
              if isinstance(trained.scaler, Scaler) else None)
    return TrainedForecast(name=trained.name, forecast=rows[n_val:], training=info, model=trained.model,
                           scaler=scaler, val_forecast=rows[:n_val])


class GlobalTrainer:
    """The meeting point of the series of one ``--global`` run (each runs in its own thread).

    ``train(index, fold_jobs)`` is called by series ``index`` with its jobs per fold (``[[job,
    ...], ...]``, the same networks in the same order for every series) and returns its trained
    networks per fold in that order; it blocks until every series still in the run has called.
    A series that fails before it calls must call ``withdraw(index)``.
    """

    def __init__(self, n_series: int, cfg: EvaluateConfig,
                 train_all: Callable[[list[TrainJob], int], list[TrainedForecast]], labels: list[str] | None = None):
        self.n = n_series
        self.labels = list(labels) if labels is not None else [str(i) for i in range(n_series)]
        self.cfg = cfg
        self.train_all = train_all
        self._jobs: dict[int, list[list[TrainJob]]] = {}
        self._out: dict[int, list[list[TrainedForecast]]] = {}
        self._withdrawn: set[int] = set()
        self._periods: dict[int, list[tuple[Any, Any]] | None] = {}
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._done = False
        self.info: dict[str, Any] = {}
        self.pooled: list[list[TrainedForecast]] = []  # per fold: the pooled networks, with their pooled scalers

    def withdraw(self, index: int) -> None:
        with self._cond:
            self._withdrawn.add(index)
            self._release_if_complete()

    def train(self, index: int, fold_jobs: list[list[TrainJob]],
              periods: list[tuple[Any, Any]] | None = None) -> list[list[TrainedForecast]]:
        """``periods``: per fold, the time of the series' last training or validation value and
        the start of its test period (None: no test period); the pooled fold must not train on
        one series' data from after another's test period starts."""
        with self._cond:
            self._jobs[index] = fold_jobs
            self._periods[index] = periods
            self._release_if_complete()
            while not self._done:
                self._cond.wait()
            if isinstance(self._error, InputError):
                raise InputError(str(self._error))
            if self._error is not None:
                raise RuntimeError(f"global training failed: {type(self._error).__name__}: {self._error}")
            return self._out[index]

    def _release_if_complete(self) -> None:
        """Train once every series has handed its jobs in or dropped out (called holding the lock;
        the last series to arrive trains, the others wait)."""
        if self._done or len(self._jobs) + len(self._withdrawn) < self.n or not self._jobs:
            return
        try:
            self._train_pooled()
        except BaseException as exc:  # every waiting series fails with it
            self._error = exc
        self._done = True
        self._cond.notify_all()

    def _train_pooled(self) -> None:
        order = sorted(self._jobs)
        n_folds = {len(self._jobs[i]) for i in order}
        if len(n_folds) != 1:
            raise ValueError(f"every series needs the same number of folds for global networks, got {sorted(n_folds)}")
        pooled, splits, where = [], [], []
        self._check_periods(order)
        for k in range(n_folds.pop()):
            per_series = [self._jobs[i][k] for i in order]
            for j in range(len(per_series[0])):
                job, sp = pool_jobs([jobs[j] for jobs in per_series])
                pooled.append(job)
                splits.append(sp)
                where.append((k, j))
        t0 = time.perf_counter()
        trained = self.train_all(pooled, len(order))
        seconds = round(time.perf_counter() - t0, 3)
        self.pooled = [[t for t, (k2, _) in zip(trained, where) if k2 == k] for k in range(len(self._jobs[order[0]]))]
        for i in order:
            self._out[i] = [[None] * len(self._jobs[i][k]) for k in range(len(self._jobs[i]))]
        for t, sp, (k, j) in zip(trained, splits, where):
            for s, i in enumerate(order):
                self._out[i][k][j] = unpool(t, sp, s)
        self.info = {"series": len(order), "networks": len(pooled), "training_seconds": seconds,
                     "n_train": {job.name: int(job.X_train.shape[0]) for job in pooled}}


    def _check_periods(self, order: list[int]) -> None:
        """Refuse a pooled fold whose training and validation data of one series run past the
        start of another series' test period: that series' test forecasts would come from a
        network that learnt from data after their issue times."""
        known = {i: self._periods.get(i) for i in order if self._periods.get(i)}
        for k in range(min((len(p) for p in known.values()), default=0)):
            last = max(known, key=lambda i: known[i][k][0])
            tests = {i: known[i][k][1] for i in known if known[i][k][1] is not None}
            if not tests:
                continue
            first = min(tests, key=lambda i: tests[i])
            if known[last][k][0] >= tests[first]:
                raise InputError(
                    f"--global: in fold {k + 1}, series {self.labels[last]}'s training and validation data run to "
                    f"{known[last][k][0].isoformat()}, after series {self.labels[first]}'s test period starts at "
                    f"{tests[first].isoformat()}; a network pooled across them would forecast {self.labels[first]} "
                    f"from data after its issue times. Give --test-start (one date for every series) so that the "
                    f"folds line up in time")


def pooled_trainer(first: EvaluateConfig, n_series: int, labels: list[str] | None = None) -> GlobalTrainer:
    """A :class:`GlobalTrainer` for ``n_series`` series that trains the pooled networks in the
    evaluation's training pool, with batches ``n_series`` times larger (an epoch takes as many
    steps as one series' would)."""
    from wq_pipeline.evaluation.pipeline import StageRunner, _progress_bar, train_stage, workers_for

    def train_all(jobs: list[TrainJob], n: int) -> list[TrainedForecast]:
        cfg = first.model_copy(update={"batch_size": min(first.batch_size * n, MAX_BATCH)})
        workers = workers_for(cfg, sum(j.X_train.shape[0] for j in jobs))
        bar = _progress_bar(len(jobs), f"Training {len(jobs)} global networks")
        try:
            return StageRunner().map("train", train_stage, [(j, cfg, workers) for j in jobs],
                                     [j.name for j in jobs], workers=workers, progress=bar.update)
        finally:
            bar.close()

    return GlobalTrainer(n_series, first, train_all, labels)


def in_threads(trainer: GlobalTrainer, labels: list[str],
               work: Callable[[int, str], Any]) -> tuple[dict[str, Any], dict[str, BaseException]]:
    """Run ``work(index, label)`` for every series in its own thread, meeting at ``trainer``.
    Returns ``({label: result}, {label: error})``: a series that fails (too short, bad input)
    drops out of the pooling and the others go on."""
    results: dict[str, Any] = {}
    errors: dict[str, BaseException] = {}

    def one(index: int, label: str) -> None:
        try:
            results[label] = work(index, label)
        except BaseException as exc:  # noqa: BLE001 - reported per series by the caller
            errors[label] = exc
        finally:
            trainer.withdraw(index)  # a series that fails before handing its jobs in must not block the others

    threads = [threading.Thread(target=one, args=(i, label), name=f"wq-global-{label}") for i, label in enumerate(labels)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def run_global(cfgs: dict[str, EvaluateConfig]) -> tuple[dict[str, Any], dict[str, BaseException]]:
    """Evaluate every series of ``cfgs`` ({label: config}) with global networks, each series in its
    own thread (in-process stages). Returns ``({label: EvaluationResult}, {label: error})``."""
    from wq_pipeline.evaluation.pipeline import StageRunner, run_evaluation

    labels = list(cfgs)
    trainer = pooled_trainer(cfgs[labels[0]], len(labels), labels)
    return in_threads(trainer, labels, lambda i, label: run_evaluation(cfgs[label], StageRunner(), trainer=trainer,
                                                                     series_index=i))
