"""The options of the models, as plain frozen dataclasses and checks: the hybrid's switches, the
ensemble's rule and half-life, how quantiles are calibrated, and station thresholds. A leaf, so
that the configuration (:mod:`wq_pipeline.config`) validates and builds them without importing
the models that use them (:mod:`wq_pipeline.models.hybrid`, :mod:`wq_pipeline.models.ensemble`,
:mod:`wq_pipeline.models.intervals`, :mod:`wq_pipeline.models.exceedance`, which re-export them)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np


FirstStage = Literal["harmonic_ar", "none"]


@dataclass(frozen=True)
class HybridOptions:
    """What the hybrid network sees and learns (``wq evaluate --first-stage/--raw-channel/...``)."""

    first_stage: FirstStage = "harmonic_ar"
    raw_channel: bool = True
    components: bool = True
    calendar: bool = True
    shrink: bool = True
    feca: bool = True

    def label(self) -> str:
        """Short human description, e.g. ``harmonic_ar first stage; raw + components + calendar``."""
        seen = [n for n, on in (("raw", self.raw_channel), ("components", self.components),
                                ("calendar", self.calendar)) if on]
        return (f"{self.first_stage} first stage; inputs: {' + '.join(seen)}; "
                f"{'FECA' if self.feca else 'no FECA'}; {'shrunk on validation' if self.shrink else 'plain sum'}")


Rule = Literal["softmax", "inverse_mse", "best", "stack"]
RULES: tuple[str, ...] = ("softmax", "inverse_mse", "best", "stack")


@dataclass(frozen=True)
class EnsembleOptions:
    """How the ensemble weighs its members (``wq evaluate --ensemble-rule/--ensemble-half-life``).

    ``half_life``: age (grid steps) at which an error record counts half; ``eta``: softmax
    sharpness; ``min_records``: effective records a member needs to earn a weight; ``ridge``:
    the stack rule's shrinkage towards inverse-MSE weights (fraction of the Gram diagonal).
    """

    rule: Rule = "stack"
    half_life: float = 1440.0
    eta: float = 10.0
    min_records: float = 12.0
    ridge: float = 0.05

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown ensemble rule {self.rule!r}; expected one of {', '.join(RULES)}")
        if not self.half_life > 0 or not self.eta > 0 or self.min_records < 0 or self.ridge < 0:
            raise ValueError(f"ensemble options out of range: {self}")


def default_half_life(step_hours: float) -> float:
    """Half-life in grid steps when none is given: 60 days of records on sub-daily grids, and at
    least 280 records on coarser ones (a daily grid has few records to learn from)."""
    return max(1440.0 / float(step_hours), 280.0)


Method = Literal["split", "rolling", "aci"]
METHODS: tuple[str, ...] = ("split", "rolling", "aci")
DEFAULT_QUANTILES: tuple[float, ...] = (0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975)
#: central intervals scored for coverage and width, as nominal fractions
INTERVALS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95)


def check_quantiles(levels: tuple[float, ...] | list[float]) -> tuple[float, ...]:
    """The levels as a tuple; :class:`ValueError` unless they are in (0, 1), sorted and distinct."""
    qs = tuple(float(q) for q in levels)
    if not qs:
        raise ValueError("no quantile levels given")
    bad = [q for q in qs if not 0.0 < q < 1.0]
    if bad:
        raise ValueError(f"quantile levels must lie strictly between 0 and 1, got {bad}")
    if any(b <= a for a, b in zip(qs, qs[1:])):
        raise ValueError(f"quantile levels must be sorted and distinct, got {list(qs)}")
    return qs


@dataclass(frozen=True)
class IntervalOptions:
    """How quantiles are calibrated (``wq evaluate --quantiles/--interval-method``)."""

    levels: tuple[float, ...] = DEFAULT_QUANTILES
    method: Method = "aci"
    half_life: float = 1440.0  # grid steps (60 days hourly)
    gamma: float = 0.01  # ACI step size
    min_records: int = 20

    def __post_init__(self) -> None:
        check_quantiles(self.levels)
        if self.method not in METHODS:
            raise ValueError(f"unknown interval method {self.method!r}; expected one of {', '.join(METHODS)}")


def default_interval_half_life(step_hours: float) -> float:
    """The rolling half-life in grid steps: 60 days on sub-daily grids, at least 280 records on
    coarser ones (as the ensemble's, :func:`wq_pipeline.models.ensemble.default_half_life`)."""
    return max(1440.0 / float(step_hours), 280.0)


_PATTERN = re.compile(r"^\s*(?P<col>[^<>]+?)\s*(?P<op>[<>])\s*(?P<value>[-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Threshold:
    """``column op value``: ``op`` is ``"<"`` (crossing below) or ``">"`` (above)."""

    column: str
    op: str
    value: float

    @property
    def label(self) -> str:
        return f"{self.column}{self.op}{self.value:g}"


def parse_threshold(text: str) -> Threshold:
    """``"DO_obs<2"`` -> :class:`Threshold`; :class:`ValueError` naming what was expected."""
    m = _PATTERN.match(str(text))
    if not m:
        raise ValueError(f"threshold {text!r}: expected COLUMN<VALUE or COLUMN>VALUE, e.g. 'DO_obs<2'")
    try:
        value = float(m["value"])
    except ValueError:
        raise ValueError(f"threshold {text!r}: {m['value']!r} is not a number") from None
    if not np.isfinite(value):
        raise ValueError(f"threshold {text!r}: the level must be finite")
    return Threshold(m["col"].strip(), m["op"], value)
