"""Every kind of forecaster by name: the statistical models, the network models, the ensemble
and the calibrated wrapper register themselves (:func:`~wq_pipeline.models.forecaster.register`)
when their modules are imported; this module imports them all, so callers name a model without
importing its module. The contract itself (:mod:`wq_pipeline.models.forecaster`) imports none of
them."""

from __future__ import annotations

from typing import Any

from wq_pipeline.errors import InputError
from wq_pipeline.models import calibrated, ensemble_forecaster, networks, statistical  # noqa: F401  (they register themselves)
from wq_pipeline.models.forecaster import KINDS, Fitted, Forecaster, Parts, forecaster_from_doc


def kind(name: str) -> type[Forecaster]:
    """The forecaster class of model ``name``; :class:`InputError` when unknown."""
    if name not in KINDS:
        raise InputError(f"unknown model {name!r} (this wq-pipeline knows {', '.join(sorted(KINDS))})")
    return KINDS[name]


def forecaster_from_fitted(name: str, fitted: Fitted) -> Forecaster:
    """The fitted model ``name`` (any registered kind) from one fit of every model."""
    return kind(name).from_fitted(fitted)


def load_forecaster(doc: dict[str, Any], where: str = "forecaster state", parts: Parts | None = None) -> Forecaster:
    """Rebuild a forecaster of any kind from its stored state and binary ``parts``
    (:func:`~wq_pipeline.models.forecaster.forecaster_from_doc`)."""
    return forecaster_from_doc(doc, where, parts)
