"""Issue forecasts with a registered model version, as of a time ``t``.

A forecast as of ``t`` is issued from the newest usable origin at or before ``t`` (a real
observation whose trailing window is complete) with the newest model version trained on data
up to ``t``, through the version's forecaster (:mod:`wq_pipeline.models`; the main model, the
ensemble, by default). It builds that origin's inputs exactly as the stepwise evaluation does, so
it equals the forecast ``wq evaluate`` makes at that origin with the same fitted models (and, for
the ensemble, the same weights).
``issued_at`` in the archive is the origin: the time of the newest observation used.

Fallback, never a hole: where the served version cannot issue (its trailing window is broken by
a gap, so the newest real observation within H steps is used instead, or its forecast is not
finite), the row comes first, for the ensemble, from its own statistical members with their
weights at that origin (``issued_by`` "ensemble:statistical"), then from the best other registered
statistical version of the same site and target trained no later than it (lowest validation
RMSE first), and finally from persistence, which always can. ``issued_by`` records which model
issued each origin's rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from wq_pipeline.serve.alerts import crossing_frame
from wq_pipeline.evaluation.asof import as_timestamp, check_within, origin_ok, origin_positions, site_key
from wq_pipeline.config import MAIN_MODEL, STATISTICAL_MODELS, EvaluateConfig
from wq_pipeline.data.covariates import Covariates, build_covariates
from wq_pipeline.errors import InputError
from wq_pipeline.models.exceedance import Threshold
from wq_pipeline.models.forecaster import Forecaster, SeriesView
from wq_pipeline.evaluation.pipeline import load_stage, target_thresholds
from wq_pipeline.data.qc import StationSeries
from wq_pipeline.store.registry import LoadedModel, ModelVersion, Registry
from wq_pipeline.serve.training import config_for


@dataclass
class Issued:
    """Forecasts of one model version: ``values (n_origins, H)`` in target units."""

    site: str
    target: str
    version: str
    origins: np.ndarray  # (n,) grid positions
    issued_at: pd.DatetimeIndex  # (n,)
    target_times: pd.DatetimeIndex  # (n * H,): issued_at + step * freq, origin by origin
    values: np.ndarray  # (n, H)
    issued_by: np.ndarray | None = None  # (n,) model that issued each origin (None: the version's own)
    model: str = ""  # the version's own model
    quantiles: np.ndarray | None = None  # (n, H, Q) at ``levels``; NaN rows where a fallback issued
    levels: tuple[float, ...] = ()
    thresholds: tuple[Threshold, ...] = ()  # the station's thresholds on the target

    def crossing_frame(self) -> pd.DataFrame:
        """Archive rows of the crossing probabilities of :attr:`thresholds` (none without
        quantiles): ``site, target, model_version, issued_at, target_time, step, threshold,
        probability``."""
        return crossing_frame(self.site, self.target, self.version, self.issued_at, self.target_times,
                              self.quantiles, self.levels, self.thresholds)

    def quantile_frame(self) -> pd.DataFrame | None:
        """Archive rows of the quantiles: ``site, target, model_version, issued_at, step, level,
        value`` (rows issued by a fallback have none); None without quantiles."""
        if self.quantiles is None or not self.levels:
            return None
        n, H, Q = self.quantiles.shape
        return pd.DataFrame({
            "site": self.site, "target": self.target, "model_version": self.version,
            "issued_at": np.repeat(self.issued_at.to_numpy(), H * Q),
            "step": np.tile(np.repeat(np.arange(1, H + 1), Q), n),
            "level": np.tile(np.asarray(self.levels, dtype=float), n * H),
            "value": self.quantiles.ravel(),
        })

    def frame(self) -> pd.DataFrame:
        """Archive rows: ``site, target, model_version, issued_at, target_time, step, value, issued_by``."""
        n, H = self.values.shape
        by = self.issued_by if self.issued_by is not None else np.full(n, None, dtype=object)
        return pd.DataFrame({
            "site": self.site, "target": self.target, "model_version": self.version,
            "issued_at": np.repeat(self.issued_at.to_numpy(), H),
            "target_time": self.target_times,
            "step": np.tile(np.arange(1, H + 1), n), "value": self.values.ravel(),
            "issued_by": np.repeat(np.asarray(by, dtype=object), H),
        })


def select_version(registry: Registry, site: str, target: str, as_of: pd.Timestamp,
                   pinned: str | None = None, model: str | None = None) -> ModelVersion:
    """The pinned version (which must fit site, target and ``as_of``), else the newest one of
    ``model`` (any model when None) for ``site``/``target`` trained on data up to ``as_of``."""
    if pinned:
        version = registry.get(pinned)
        if (version.site, version.target) != (site, target):
            raise InputError(f"model version {pinned} is for site '{version.site}', target '{version.target}', "
                             f"not site '{site}', target '{target}'")
        if version.trained_until > as_of:
            raise InputError(f"model version {pinned} was trained on data up to {version.trained_until.isoformat()}, "
                             f"after {as_of.isoformat()}: using it would look ahead")
        return version
    version = registry.newest(site, target, as_of, model)
    if version is None:
        which = f" of model '{model}'" if model else ""
        hint = f" --model {model}" if model and model != MAIN_MODEL else ""
        raise InputError(f"no model version{which} for site '{site}', target '{target}' trained on data up to "
                         f"{as_of.isoformat()} in {registry.root}; run 'wq train --as-of {as_of.isoformat()}{hint}' first")
    return version


def version_covariates(station: StationSeries, version: ModelVersion) -> Covariates | None:
    """The covariate channels a network version was trained with, rebuilt from the live series
    with the version's own fill means (:class:`InputError` naming a column the file lacks), or
    None for a version without covariates."""
    record = version.manifest.get("covariates") or {}
    names = list(record.get("names") or [])
    if not names:
        return None
    try:
        return build_covariates(station, names, 0, int(record["max_fill"]), means=record["fill_means"])
    except InputError as exc:
        raise InputError(f"{exc} (model version {version.version} was trained with covariates "
                         f"{', '.join(names)})") from None


def served_forecaster(loaded: LoadedModel, cfg: EvaluateConfig) -> Forecaster:
    """The version's forecaster; a version saved before forecasters (component networks or the
    plain LSTM with scalers) is wrapped in the network forecaster it holds."""
    if loaded.forecaster is not None:
        return loaded.forecaster
    from wq_pipeline.models.networks import (
        ComponentNetworks,
        Decomposition,
        PlainComponentNetworks,
        PlainLSTM,
    )

    if loaded.version.model == "lstm":
        return PlainLSTM(list(loaded.networks), cfg.window)
    fitted = loaded.version.manifest.get("decomposer_params", {})
    learnt = {"groups": fitted["groups"]} if "groups" in fitted else {}  # learnt at training time, reused as is
    dec = Decomposition(cfg.method, cfg.modes, cfg.seed, cfg.decomposer_params(), cfg.decomp_window, cfg.window, learnt)
    names = dec.decomposer().names
    if names != [name for name, _, _ in loaded.networks]:
        raise InputError(f"model version {loaded.version.version}: components {[n for n, _, _ in loaded.networks]} "
                         f"do not match the decomposition's {names}")
    cls = ComponentNetworks if loaded.version.model == "decomp_feca_lstm" else PlainComponentNetworks
    return cls(list(loaded.networks), dec)


def station_for(cfg: EvaluateConfig, version: ModelVersion, station: StationSeries) -> StationSeries:
    """The series on the grid the version was trained on (reloaded when ``cfg`` differs)."""
    want = config_for(version, cfg)
    if station.freq == version.manifest.get("freq") and want.qc == cfg.qc:
        return station
    if cfg.freq and cfg.freq != version.manifest.get("freq"):
        raise InputError(f"--freq {cfg.freq} differs from the {version.manifest.get('freq')} grid model version "
                         f"{version.version} was trained on")
    return load_stage(want.model_copy(update={"freq": version.manifest.get("freq")}))


def issue_origins(station: StationSeries, mcfg: EvaluateConfig, issue_times: pd.DatetimeIndex,
                  lookback: int | None = None) -> np.ndarray:
    """``(n_issue,)`` origin position of each issue time under a model's windows and horizon
    (-1: no usable origin within ``horizon`` steps before it). ``lookback``: the complete trailing
    window an origin needs (default the model's ``max(window, decomp_window)``; 1: any real
    observation, what a fallback needs)."""
    values = station.values.to_numpy(dtype=float)
    need = max(mcfg.window, mcfg.decomp_window) if lookback is None else lookback
    ok = origin_ok(values, station.observed.to_numpy(dtype=bool), need)
    return origin_positions(station.values.index, ok, issue_times, max_staleness=mcfg.horizon)


def served_and_fallback(station: StationSeries, mcfg: EvaluateConfig,
                        issue_times: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """``(origin per issue time (n_issue,), -1 where none; served origins (sorted, unique))``.
    An issue time whose served model has no usable origin (its window is broken by a gap) still
    gets the newest real observation within ``horizon`` steps: a fallback issues from it."""
    served = issue_origins(station, mcfg, issue_times)
    any_obs = issue_origins(station, mcfg, issue_times, lookback=1)
    return np.where(served >= 0, served, any_obs), np.unique(served[served >= 0])


def fallback_models(registry: Registry, version: ModelVersion) -> list[LoadedModel]:
    """The statistical versions that may stand in for ``version``: same site and target, trained
    no later than it (so known at any time it serves), another model; the lowest validation
    RMSE first, one per model (its newest)."""
    newest: dict[str, ModelVersion] = {}
    for v in registry.list(version.site, version.target):
        if v.model in STATISTICAL_MODELS and v.model != version.model and v.trained_until <= version.trained_until:
            newest[v.model] = v  # list() is sorted by training end, so the last one wins
    def rmse(v: ModelVersion) -> float:
        r = (v.manifest.get("validation") or {}).get("rmse")
        return float(r) if isinstance(r, (int, float)) and np.isfinite(r) else np.inf
    return [registry.load(v.version) for v in sorted(newest.values(), key=rmse)]


def forecasts_from(station: StationSeries, site: str, loaded: LoadedModel, mcfg: EvaluateConfig,
                   origins: np.ndarray, fallbacks: list[LoadedModel] | None = None,
                   served: np.ndarray | None = None) -> tuple[Issued, float]:
    """Forecasts of a loaded version at distinct ``origins`` (real observations); also the
    decomposition seconds. ``served (n,)`` marks the origins whose window the version can use
    (default: all). Origins it cannot forecast (not served, or non-finite values) are issued by
    the first of ``fallbacks`` that can, else by persistence; ``Issued.issued_by`` says which."""
    from wq_pipeline.models.statistical import Persistence

    times = station.values.index
    values = station.values.to_numpy(dtype=float)
    observed = station.observed.to_numpy(dtype=bool)
    use = np.ones(origins.size, bool) if served is None else np.asarray(served, dtype=bool)
    values_f = np.full((origins.size, mcfg.horizon), np.nan)
    view = SeriesView(values, observed, times, mcfg.horizon, int(values.size), np.empty(0, np.int64),
                      version_covariates(station, loaded.version))
    from wq_pipeline.models.networks import decomposition_seconds

    before = decomposition_seconds()
    own = served_forecaster(loaded, mcfg)
    quantiles, levels = None, ()
    if use.any() and hasattr(own, "forecast_with_quantiles"):  # a record of its own errors (the ensemble)
        levels = tuple(own.intervals.levels)
        quantiles = np.full((origins.size, mcfg.horizon, len(levels)), np.nan)
        values_f[use], quantiles[use] = own.forecast_with_quantiles(view, origins[use])
    elif use.any():
        values_f[use] = own.forecast(view, origins[use])
    seconds = decomposition_seconds() - before
    issued_by = np.full(origins.size, loaded.version.model, dtype=object)
    hole = ~np.isfinite(values_f).all(axis=1)
    if hole.any():
        chain = [(f.version.model, f.forecaster.forecast) for f in (fallbacks or []) if f.forecaster is not None]
        if quantiles is not None:
            quantiles[hole] = np.nan  # a stand-in's rows carry no quantiles of the served model
        stat = own.statistical_members() if hasattr(own, "statistical_members") else []
        if stat:  # the ensemble: its statistical members, weighted as at the origin
            chain.insert(0, (f"{loaded.version.model}:statistical",
                             lambda v, o, f=own, s=stat: f.forecast(v, o, only=s)))
        for name, forecast in [*chain, ("persistence", Persistence().fit(view).forecast)]:
            if not hole.any():
                break
            stand_in = forecast(view, origins[hole])
            ok = np.isfinite(stand_in).all(axis=1)
            rows = np.flatnonzero(hole)[ok]
            values_f[rows], issued_by[rows] = stand_in[ok], name
            hole[rows] = False
    issued = times[origins]
    H = mcfg.horizon
    targets = issued.repeat(H) + pd.to_timedelta(np.tile(np.arange(1, H + 1), origins.size) * pd.Timedelta(station.freq))
    return Issued(site, mcfg.target, loaded.version.version, origins, issued, targets, values_f, issued_by,
                  loaded.version.model, quantiles, levels), seconds


def issue_forecast(cfg: EvaluateConfig, registry: Registry, as_of: str | pd.Timestamp | None = None,
                   model_version: str | None = None) -> Issued:
    """One forecast as of ``as_of`` (default: the newest observation)."""
    station = load_stage(cfg)
    thresholds = tuple(target_thresholds(station, cfg))
    times = station.values.index
    when = times[-1] if as_of is None else as_timestamp(as_of, times.tz, "--as-of")
    check_within(station, when, "--as-of")
    site = site_key(station, cfg.site, cfg.data)
    version = select_version(registry, site, cfg.target, when, model_version, cfg.model)
    station = station_for(cfg, version, station)
    mcfg = config_for(version, cfg)
    pos, served = served_and_fallback(station, mcfg, pd.DatetimeIndex([when]))
    if pos[0] < 0:
        raise InputError(
            f"{cfg.data}: no forecast can be issued as of {when.isoformat()}: '{cfg.target}' has no real observation "
            f"within {mcfg.horizon} steps before it")
    issued = forecasts_from(station, site, registry.load(version.version), mcfg, pos,
                            fallback_models(registry, version), served=np.isin(pos, served))[0]
    return replace(issued, thresholds=thresholds)
