"""wq-pipeline: honest water-quality forecasting.

The Python API (:mod:`wq_pipeline.api`): ``from wq_pipeline import evaluate, load_station, Model``.
Importing the package itself loads nothing heavy; each name is imported on first use.
"""

from typing import Any

from wq_pipeline._version import __version__

__all__ = ["Evaluation", "Model", "__version__", "evaluate", "load_station"]


def __getattr__(name: str) -> Any:
    if name in ("Evaluation", "Model", "evaluate", "load_station"):
        from wq_pipeline import api

        return getattr(api, name)
    raise AttributeError(f"module 'wq_pipeline' has no attribute {name!r}")
