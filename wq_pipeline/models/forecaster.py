"""The forecaster contract: one shape for every model the evaluation scores and operations serve.

A forecaster is fitted on what is known at a cut (:class:`SeriesView`: the series on its grid,
which positions are real observations, the grid times, and the training/validation split), then
forecasts ``(n_origins, H)`` in target units at any origins, row ``i`` using positions
``<= origins[i]`` only. Its state is JSON (:meth:`Forecaster.state`), so a registry version can
hold it and :func:`~wq_pipeline.models.kinds.load_forecaster` rebuilds an equal forecaster.

Kinds register themselves with :func:`register`; ``name`` is the model name used in
``metrics.json``, ``forecasts.csv`` and ``wq train --model``.

A state is JSON plus named binary :class:`Parts` (network files with their scalers, and arrays
such as the ensemble's error record), so a statistical model is one JSON file and a network model
JSON plus ``.keras`` files.

Where this differs from the design note (``shared/design/forecaster-contract.md``), and why:

- **Fitting.** A statistical model fits itself (:meth:`Forecaster.fit`). Network models and the
  ensemble are built by :meth:`Forecaster.from_fitted` from one fit of every model
  (:class:`Fitted`: the evaluation's fold code trains all networks of a fold in one pool of
  processes, two cores busy; fitting one network object at a time would idle one core, and the
  ensemble needs every member's validation forecasts anyway). ``wq train`` and ``wq evaluate
  --register`` both go through ``from_fitted``, so no code names a model to build it.
- **The ensemble's record** is every member's forecasts at the record's origins, not their errors:
  the errors follow from the observations of whatever series the forecaster is given, so the same
  state serves a file that has grown since training.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import pandas as pd

from wq_pipeline.errors import InputError

if TYPE_CHECKING:
    from wq_pipeline.data.covariates import Covariates
    from wq_pipeline.models.scaling import Scaler


@dataclass(frozen=True)
class SeriesView:
    """What a forecaster may see.

    - ``values (N,)``: the target on its grid (short gaps interpolated, NaN in long gaps);
    - ``observed (N,)``: True where the value is a real observation that passed QC;
    - ``times (N,)``: grid times (tz-aware);
    - ``horizon``: H, steps ahead;
    - ``val_start``: positions ``< val_start`` are training data;
    - ``val_origins (n_val,)``: validation origins (their targets lie before any test period),
      on which a forecaster may choose its settings;
    - ``covariates``: the extra input channels ``(N, K)`` on the same grid (None: none).
    """

    values: np.ndarray
    observed: np.ndarray
    times: pd.DatetimeIndex
    horizon: int
    val_start: int
    val_origins: np.ndarray
    covariates: "Covariates | None" = None

    @property
    def obs_values(self) -> np.ndarray:
        """``(N,)`` values with NaN wherever they are not real observations (what may score)."""
        return np.where(self.observed, self.values, np.nan)

    @property
    def step_hours(self) -> float:
        """The grid step in hours."""
        if len(self.times) < 2:
            raise ValueError("a series view needs at least two grid times")
        return float((self.times[1] - self.times[0]) / pd.Timedelta(hours=1))


@dataclass
class Parts:
    """A state's binary parts: ``networks`` as ``(file name, Keras model, scaler)`` (saved as
    ``networks/<name>.keras``), ``arrays`` as named numpy arrays (saved as ``.npz``, read without
    pickle)."""

    networks: list[tuple[str, Any, "Scaler"]] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.networks or self.arrays)


@dataclass
class Fitted:
    """What one fit of every model produced (a fold of :func:`wq_pipeline.evaluation.pipeline.fit_folds`):
    what :meth:`Forecaster.from_fitted` builds any fitted forecaster from.

    - ``view``: the series up to the test period, with its validation origins and covariates;
    - ``networks``: every trained network by job name (``"lstm"``, ``"feca_imf1"``, ``"plain_imf1"``,
      ``"hybrid"``), as ``(model, scaler, input channels)``, None where training skipped it;
    - ``components``: the decomposition's component names; ``settings``: the options the kinds need
      (``window``, ``seasonal_period``, ``decomposition``, ``hybrid_options``,
      ``first_stage_params``, ``hybrid_weights``, ``ensemble_options``, ``lookback``,
      ``members``);
    - ``record``: the ensemble's record ``(times (r,) UTC ns, forecasts (M, r, H))``, with
      ``duplicates``, the members left out as identical to an earlier one.
    """

    view: SeriesView
    networks: dict[str, tuple[Any, "Scaler", int | None] | None]
    components: list[str]
    settings: dict[str, Any]
    record: tuple[np.ndarray, np.ndarray] | None = None
    duplicates: dict[str, str] = field(default_factory=dict)

    def network(self, name: str) -> tuple[str, Any, "Scaler"] | None:
        """``(name, model, scaler)`` of a trained network, None if training skipped it."""
        got = self.networks[name]
        return None if got is None else (name, got[0], got[1])

    def channels(self, name: str) -> int | None:
        got = self.networks[name]
        return None if got is None else got[2]


F = TypeVar("F", bound="Forecaster")


class Forecaster(ABC):
    """A model: ``fit`` on a :class:`SeriesView`, ``forecast`` at origins, ``state`` to save."""

    #: the model name (``"harmonic_ar"``, ...)
    name: ClassVar[str]
    #: whether fitting it trains networks (in the evaluation's training pool); False: fitted alone
    trains_networks: ClassVar[bool] = False

    @abstractmethod
    def fit(self: F, view: SeriesView) -> F:
        """Fit on training data and choose settings on validation data only; returns ``self``."""

    @abstractmethod
    def forecast(self, view: SeriesView, origins: np.ndarray) -> np.ndarray:
        """``(n_origins, H)`` forecasts in target units; row ``i`` uses positions ``<= origins[i]``."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """The fitted state as JSON-able values (what :meth:`from_state` needs)."""

    @classmethod
    @abstractmethod
    def from_state(cls: type[F], state: dict[str, Any], parts: Parts | None = None) -> F:
        """The fitted forecaster back from :meth:`state` and :meth:`parts`."""

    def parts(self) -> Parts:
        """The binary parts of the state (none for a statistical model)."""
        return Parts()

    @classmethod
    def from_fitted(cls: type[F], fitted: Fitted) -> F:
        """This model as one fit of every model fitted it (networks trained in one pool, settings
        chosen on ``fitted.view``'s validation origins); by default :meth:`fit` on the view."""
        return cls().fit(fitted.view)

    @property
    def served_model(self) -> str:
        """The model this forecaster serves (its registry versions' ``model``): its name; a
        wrapper's (:mod:`~wq_pipeline.models.calibrated`), the wrapped model's."""
        return self.name

    @property
    def fitted(self) -> bool:
        """True once fitted (or loaded)."""
        return bool(getattr(self, "_fitted", False))

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError(f"{self.name}: forecast before fit")


KINDS: dict[str, type[Forecaster]] = {}


def register(cls: type[F]) -> type[F]:
    """Class decorator: make ``cls`` loadable by its ``name``."""
    KINDS[cls.name] = cls
    return cls


def dump_forecaster(forecaster: Forecaster) -> dict[str, Any]:
    """``{"name": ..., "state": ...}``: what a registry version stores."""
    return {"name": forecaster.name, "state": forecaster.state()}


def forecaster_from_doc(doc: dict[str, Any], where: str = "forecaster state", parts: Parts | None = None) -> Forecaster:
    """Rebuild a forecaster of a kind already registered from :func:`dump_forecaster`'s output
    and its binary ``parts``; :class:`InputError` for an unknown kind or a state that does not
    fit it. (:func:`wq_pipeline.models.kinds.load_forecaster` registers every kind first.)"""
    if not isinstance(doc, dict) or "name" not in doc or "state" not in doc:
        raise InputError(f"{where}: corrupted (expected {{'name': ..., 'state': ...}})")
    cls = KINDS.get(doc["name"])
    if cls is None:
        raise InputError(f"{where}: unknown model kind {doc['name']!r} (this wq-pipeline knows "
                         f"{', '.join(sorted(KINDS))}); upgrade wq-pipeline or retrain")
    try:
        return cls.from_state(doc["state"], parts)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InputError(f"{where}: corrupted state for {doc['name']!r} ({type(exc).__name__}: {exc})") from None
