"""Pydantic models for user-facing options, validated at the edge (CLI / flow parameters).

Each model lives in its own section below; keep sections independent.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from wq_pipeline.options import (
    EnsembleOptions,
    HybridOptions,
    IntervalOptions,
    check_quantiles,
    default_half_life,
    default_interval_half_life,
    parse_threshold,
)

# ---------------------------------------------------------------------------
# QC configuration (used by wq_pipeline.data.qc.run_qc / wq_pipeline.data.station.load_station)
# ---------------------------------------------------------------------------


class SpikeLimits(BaseModel):
    """Per-column override of the causal spike guard (:mod:`wq_pipeline.data.spikes`).

    - ``enabled``: False turns the guard off for this column.
    - ``floor``: a jump from the last accepted reading must exceed it to be guarded (column
      units, >= 0); None keeps the built-in default (0 for a column without one).
    - ``max_rate``: guard a jump faster than this (column units per hour, >= 0; 0 turns the rate
      limit off); None keeps the built-in default (none for a column without one).
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    floor: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_rate: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class SpikeGuardConfig(BaseModel):
    """The causal spike guard of QC (:func:`wq_pipeline.data.spikes.spike_guard`): a Hampel identifier
    on increment rates against the last accepted reading, using only readings up to each reading.

    - ``enabled``: apply it (to the target and every variable column with a built-in default or
      an entry in ``columns``).
    - ``threshold``: robust standard deviations (1.4826 x MAD) of the recent rates (> 0).
    - ``window``: accepted readings whose consecutive rates form the reference (>= 3).
    - ``min_history``: accepted readings needed before any decision (2 .. ``window``).
    - ``max_run``: after this many consecutive guarded readings the level is taken to have moved
      and the next reading is accepted (>= 1).
    - ``reset_after_hours``: a gap between two readings longer than this restarts the history (> 0).
    - ``columns``: per-column overrides ``{column: SpikeLimits}``, matched case-insensitively.
    The CLI's ``spike_threshold`` is accepted as another name of ``threshold``.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    threshold: float = Field(default=6.0, gt=0, allow_inf_nan=False,
                             validation_alias=AliasChoices("threshold", "spike_threshold"))
    window: int = Field(default=32, ge=3, le=100_000)
    min_history: int = Field(default=8, ge=2)
    max_run: int = Field(default=4, ge=1)
    reset_after_hours: float = Field(default=36.0, gt=0, allow_inf_nan=False)
    columns: dict[str, SpikeLimits] = Field(default_factory=dict)

    @field_validator("columns")
    @classmethod
    def _check_columns(cls, v: dict[str, SpikeLimits]) -> dict[str, SpikeLimits]:
        names = [k.strip().lower() for k in v]
        if any(not k for k in names):
            raise ValueError("spike guard override with an empty column name")
        if len(set(names)) != len(names):
            raise ValueError(f"spike guard override given twice for a column (case-insensitive): {list(v)}")
        return v

    @model_validator(mode="after")
    def _check_history(self) -> "SpikeGuardConfig":
        if self.min_history > self.window:
            raise ValueError(f"min_history ({self.min_history}) must be <= window ({self.window})")
        return self


class QCConfig(BaseModel):
    """Options of the quality-control stage (:func:`wq_pipeline.data.qc.run_qc`).

    - ``drop_suspect``: NERRS ``<1>`` (suspect) readings are removed only when True.
    - ``max_gap``: runs of at most this many missing grid steps, with data on both
      sides, are linearly interpolated; longer runs stay NaN entirely (>= 0; 0 = never).
    - ``ranges``: physical range overrides ``{column: (low, high)}`` (inclusive, column
      units), matched case-insensitively; they replace the built-in range for that column.
    - ``duplicate_rule``: rows sharing a timestamp but differing in some value are
      resolved by keeping the ``"last"`` row in file order (the newest export) or by the
      ``"mean"`` of their QC-passed values.
    - ``spike_guard``: the causal spike guard (:class:`SpikeGuardConfig`), on by default.
    """

    model_config = ConfigDict(extra="forbid")

    drop_suspect: bool = False
    max_gap: int = Field(default=3, ge=0)
    ranges: dict[str, tuple[float, float]] | None = None
    duplicate_rule: Literal["last", "mean"] = "last"
    spike_guard: SpikeGuardConfig = Field(default_factory=SpikeGuardConfig)

    @field_validator("ranges")
    @classmethod
    def _check_ranges(
        cls, v: dict[str, tuple[float, float]] | None
    ) -> dict[str, tuple[float, float]] | None:
        if v is None:
            return v
        for name, (lo, hi) in v.items():
            if not name.strip():
                raise ValueError("range override with an empty column name")
            if math.isnan(lo) or math.isnan(hi) or lo > hi:
                raise ValueError(f"range for {name!r} must be (low, high) with low <= high, got ({lo}, {hi})")
        return v


# ---------------------------------------------------------------------------
# Reading a station file (used by wq_pipeline.data.reading / wq_pipeline.data.timestamps)
# ---------------------------------------------------------------------------

_SEP_NAMES = {",": ",", "comma": ",", ";": ";", "semicolon": ";", "\t": "\t", "\\t": "\t", "tab": "\t",
              "|": "|", "pipe": "|"}


def _sep(v: str | None) -> str | None:
    if v is None:
        return None
    sep = _SEP_NAMES.get(v if v in _SEP_NAMES else v.strip().lower())
    if sep is None:
        raise ValueError("expected one of ',', ';', tab, '|' (or comma, semicolon, tab, pipe)")
    return sep


def _decimal(v: str | None) -> str | None:
    if v is None or v in (".", ","):
        return v
    raise ValueError("expected '.' or ','")


def _zone(v: str | None) -> str | None:
    if v is None:
        return None
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {v!r} (an IANA name such as 'Asia/Kolkata' or 'America/New_York')") from None
    return v


def _time_format(v: str | None) -> str | None:
    if v is not None and "%" not in v:
        raise ValueError("expected a strptime format such as '%d/%m/%Y %H:%M'")
    return v


Sep = Annotated[str | None, AfterValidator(_sep)]
Decimal = Annotated[str | None, AfterValidator(_decimal)]
Zone = Annotated[str | None, AfterValidator(_zone)]
TimeFormat = Annotated[str | None, AfterValidator(_time_format)]


class ReadOptions(BaseModel):
    """How to read a station file; None means detect (:mod:`wq_pipeline.data.reading`,
    :mod:`wq_pipeline.data.timestamps`).

    - ``sep``: the delimiter of a text file (``,``, ``;``, tab or ``|``).
    - ``decimal``: the decimal mark (``.`` or ``,``).
    - ``sheet``: the sheet of an ``.xlsx`` workbook, a name or a 1-based number (default: the first).
    - ``time_format``: a strptime format for the time column.
    - ``tz``: the IANA zone of timestamps without a UTC offset (default: read as UTC).
    """

    model_config = ConfigDict(extra="forbid")

    sep: Sep = None
    decimal: Decimal = None
    sheet: str | None = None
    time_format: TimeFormat = None
    tz: Zone = None


#: the fields of :class:`ReadOptions`, also fields of :class:`EvaluateConfig`
READ_FIELDS = tuple(ReadOptions.model_fields)


# ---------------------------------------------------------------------------
# Evaluation configuration (wq evaluate / flows.evaluate.evaluate_flow)
# ---------------------------------------------------------------------------

METHODS = ("vmd", "eemd", "ceemdan", "ceemdan-se-vmd", "atrous")
PROTOCOLS = ("stepwise", "global")
#: the statistical models a version can hold (:mod:`wq_pipeline.models.statistical`)
STATISTICAL_MODELS = ("persistence", "seasonal_naive", "level_adjusted_seasonal_naive", "climatology", "arima",
                      "harmonic_ar")
#: the network models a version can hold: component networks (with FECA or without), the plain LSTM, the hybrid
NETWORK_SERVED = ("decomp_feca_lstm", "decomp_lstm", "lstm", "hybrid_feca_lstm")
#: the main model: the online-weighted ensemble of every statistical and network model
MAIN_MODEL = "ensemble"
#: what ``wq train``, ``wq forecast``, ``wq backfill`` and ``wq evaluate --register`` can serve
SERVED_MODELS = (MAIN_MODEL, *NETWORK_SERVED, *STATISTICAL_MODELS)
ServedModel = Literal[SERVED_MODELS]  # type: ignore[valid-type]


class EvaluateConfig(BaseModel):
    """Everything one evaluation run needs. Lengths are in grid steps of ``freq``.

    - ``sep``, ``decimal``, ``sheet``, ``time_format``, ``tz``: how the file is read
      (:class:`ReadOptions`; None: detected, naive times read as UTC).
    - ``window`` (W): input steps each network sees; ``decomp_window`` (L >= W): length of the
      trailing window decomposed at every forecast origin (stepwise protocol).
    - ``horizon`` (H): steps ahead; metrics are reported per step and at step H.
    - ``protocol``: ``stepwise`` (honest, default) or ``global`` (leaky, reproduction only).
    - ``method="ceemdan-se-vmd"``: CEEMDAN with ``modes`` IMFs, grouped by sample entropy
      (``se_order``, ``se_tolerance`` x std; ``se_grouping`` k-means or ``se_thresholds``) on
      training windows only, the high-complexity group decomposed again by VMD into
      ``secondary_modes`` modes.
    - ``covariates``: other columns of the station given to every network as extra input
      channels (their last W values up to the origin; see :mod:`wq_pipeline.data.covariates`).
    - ``first_stage``, ``raw_channel``, ``hybrid_components``, ``calendar``, ``shrink``: what the
      hybrid model (:mod:`wq_pipeline.models.hybrid`) is built from.
    - ``level_free``: every network sees its inputs and predicts its targets relative to each
      window's last value (:mod:`wq_pipeline.models.scaling`).
    - ``folds``, ``test_start``: K test periods spread over the series, or the test period's start
      (ISO time; :func:`wq_pipeline.models.protocol.fold_bounds`); ``test_fraction`` sets one fold's length.
    - ``model``: the model ``wq train`` fits and ``wq forecast`` / ``wq backfill`` serve (and
      ``wq evaluate --register`` registers): the main model (the ensemble) by default, or any
      one of its members.
    - ``ensemble_rule``, ``ensemble_half_life`` (grid steps; None: 60 days on sub-daily grids, 280
      steps on daily ones): how the
      main model, the online-weighted ensemble (:mod:`wq_pipeline.models.ensemble`), weighs its members.
    - ``quantiles``, ``interval_method``: the quantile levels every model forecasts, and how they
      are calibrated on the errors already observed (:mod:`wq_pipeline.models.intervals`).
    - ``thresholds``: ``COLUMN<VALUE`` or ``COLUMN>VALUE``; those on the target get crossing
      probabilities and Brier scores (:mod:`wq_pipeline.models.exceedance`).
    - ``alert_level``: in (0, 1]; an issued forecast whose crossing probability reaches it at any
      step raises an alert (:mod:`wq_pipeline.serve.alerts`).
    - ``challenge``: also score a daily run the NEON Forecasting Challenge's way
      (:mod:`wq_pipeline.evaluation.challenge`).
    """

    model_config = ConfigDict(extra="forbid")

    data: Path
    target: str
    time_col: str | None = None
    sep: Sep = None
    decimal: Decimal = None
    sheet: str | None = None
    time_format: TimeFormat = None
    tz: Zone = None
    site: str | None = None
    site_col: str | None = None
    freq: str | None = None
    method: Literal["vmd", "eemd", "ceemdan", "ceemdan-se-vmd", "atrous"] = "vmd"
    modes: int = Field(default=8, ge=1, le=32)
    window: int = Field(default=48, ge=2, le=2000)
    decomp_window: int = Field(default=512, ge=8, le=20000)
    horizon: int = Field(default=6, ge=1, le=500)
    protocol: Literal["stepwise", "global"] = "stepwise"
    test_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)
    val_fraction: float = Field(default=0.1, gt=0.0, lt=0.5)
    epochs: int = Field(default=20, ge=1, le=1000)
    batch_size: int = Field(default=128, ge=1, le=65536)
    units: int = Field(default=32, ge=1, le=1024)
    patience: int = Field(default=4, ge=1, le=1000)
    seed: int = Field(default=0, ge=0)
    jobs: int = Field(default=0, ge=0, le=256)  # parallel training processes; 0 = one per CPU core
    seasonal_period: int | None = Field(default=None, ge=1)
    vmd_alpha: float = Field(default=2000.0, gt=0)
    vmd_tau: float = Field(default=0.0, ge=0)
    vmd_tol: float = Field(default=1e-7, gt=0)
    emd_trials: int = Field(default=20, ge=1, le=1000)
    emd_noise_width: float | None = Field(default=None, gt=0)  # None: PyEMD's default per method
    secondary_modes: int = Field(default=4, ge=1, le=32)
    se_order: int = Field(default=2, ge=1, le=10)
    se_tolerance: float = Field(default=0.2, gt=0, le=10)
    se_grouping: Literal["kmeans", "thresholds"] = "kmeans"
    se_thresholds: tuple[float, float] | None = None
    covariates: list[str] = Field(default_factory=list)
    first_stage: Literal["harmonic_ar", "none"] = "harmonic_ar"
    raw_channel: bool = True
    hybrid_components: bool = True
    calendar: bool = True
    shrink: bool = True
    level_free: bool = True
    folds: int = Field(default=1, ge=1, le=24)
    test_start: str | None = None
    ensemble_rule: Literal["softmax", "inverse_mse", "best", "stack"] = "stack"
    ensemble_half_life: float | None = Field(default=None, gt=0)
    quantiles: tuple[float, ...] = (0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975)
    interval_method: Literal["split", "rolling", "aci"] = "aci"
    thresholds: list[str] = Field(default_factory=list)
    alert_level: float = Field(default=0.5, gt=0, le=1)
    challenge: bool = False
    model: ServedModel = MAIN_MODEL
    out: Path = Path("reports/latest")
    qc: QCConfig = Field(default_factory=QCConfig)
    command: str = ""

    @model_validator(mode="after")
    def _check_lengths(self) -> "EvaluateConfig":
        if self.decomp_window < self.window:
            raise ValueError(f"decomp_window ({self.decomp_window}) must be >= window ({self.window})")
        if self.se_grouping == "thresholds" and self.se_thresholds is None:
            raise ValueError("se_grouping 'thresholds' needs se_thresholds (low, high)")
        if not (self.raw_channel or self.hybrid_components):
            raise ValueError("the hybrid model needs the raw channel, the components, or both "
                             "(--no-raw-channel and --no-hybrid-components together leave it no input)")
        if self.se_thresholds is not None and not self.se_thresholds[0] <= self.se_thresholds[1]:
            raise ValueError(f"se_thresholds must be (low, high) with low <= high, got {self.se_thresholds}")
        return self

    @field_validator("quantiles")
    @classmethod
    def _check_quantiles(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        return check_quantiles(v)

    @field_validator("thresholds")
    @classmethod
    def _check_thresholds(cls, v: list[str]) -> list[str]:
        return [parse_threshold(t).label for t in v]

    @field_validator("covariates")
    @classmethod
    def _check_covariates(cls, v: list[str]) -> list[str]:
        names = [c.strip() for c in v]
        if any(not c for c in names):
            raise ValueError("empty covariate name")
        if len({c.lower() for c in names}) != len(names):
            raise ValueError(f"covariate given twice in {names}")
        return names

    def read_options(self) -> ReadOptions:
        """How the station file is read (:class:`ReadOptions`)."""
        return ReadOptions(**{k: getattr(self, k) for k in READ_FIELDS})

    def hybrid_options(self) -> "HybridOptions":
        """The hybrid model's switches (:class:`wq_pipeline.models.hybrid.HybridOptions`)."""
        return HybridOptions(first_stage=self.first_stage, raw_channel=self.raw_channel,
                             components=self.hybrid_components, calendar=self.calendar, shrink=self.shrink)

    def ensemble_options(self, step_hours: float) -> "EnsembleOptions":
        """The ensemble's options on a grid of ``step_hours`` (:class:`wq_pipeline.models.ensemble.EnsembleOptions`)."""
        half_life = self.ensemble_half_life or default_half_life(step_hours)
        return EnsembleOptions(rule=self.ensemble_rule, half_life=half_life)

    def interval_options(self, step_hours: float) -> "IntervalOptions":
        """How quantiles are calibrated on a grid of ``step_hours`` (:class:`wq_pipeline.models.intervals.IntervalOptions`)."""
        return IntervalOptions(levels=self.quantiles, method=self.interval_method,
                               half_life=default_interval_half_life(step_hours))

    def decomposer_params(self) -> dict[str, Any]:
        """Method-specific parameters passed to :func:`wq_pipeline.decompose.make_decomposer`."""
        vmd = {"alpha": self.vmd_alpha, "tau": self.vmd_tau, "tol": self.vmd_tol}
        if self.method == "vmd":
            return vmd
        if self.method == "atrous":
            return {}
        params: dict = {"trials": self.emd_trials}
        if self.emd_noise_width is not None:
            params["noise_width"] = self.emd_noise_width
        if self.method == "ceemdan-se-vmd":
            params.update(vmd, secondary_modes=self.secondary_modes, se_order=self.se_order,
                          se_tolerance=self.se_tolerance, grouping=self.se_grouping, thresholds=self.se_thresholds)
        return params
