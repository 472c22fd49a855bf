"""Every forecaster and what it is built from: the forecaster contract and its kinds
(statistical baselines, networks, the hybrid, the ensemble, calibrated quantiles), the honest
sample construction (protocol), scaling, network training jobs and pool, ensemble weights,
conformal intervals, scoring rules and threshold crossings; and the Keras parts: the FECA layer,
the (FECA-)LSTM builder, training and prediction.

The Keras names below are imported on first use, so importing ``wq_pipeline.models.serialized`` (what training
workers send back) does not start TensorFlow.
"""

from importlib import import_module
from typing import Any

_WHERE = {
    "FECA": "feca", "dct_matrix": "feca", "build_forecaster": "lstm",
    "TrainResult": "train", "fit_forecaster": "train", "predict": "train",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'wq_pipeline.models' has no attribute {name!r}")
    return getattr(import_module(f"wq_pipeline.models.{_WHERE[name]}"), name)
