"""A trained network as the bytes of its ``.keras`` file.

Training workers send networks back this way, so the process that collects them (``wq
evaluate``'s main process, ``wq train``) never has to import TensorFlow (about 570 MB of RSS)
just to pass them on to the model registry. ``save(path)`` has the same meaning as
``keras.Model.save``, so the registry takes either.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


class SerializedNetwork:
    """The ``.keras`` bytes of a network, plus its name and output width (horizon)."""

    def __init__(self, data: bytes, name: str, horizon: int) -> None:
        self.data = bytes(data)
        self.name = str(name)
        self.horizon = int(horizon)

    @classmethod
    def from_model(cls, model: Any) -> SerializedNetwork:
        """Serialise a Keras model exactly as the registry would save it."""
        with tempfile.TemporaryDirectory(prefix="wq-net-") as tmp:
            path = Path(tmp) / "network.keras"
            model.save(path)
            return cls(path.read_bytes(), model.name, int(model.output_shape[-1]))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the ``.keras`` file to ``path``."""
        Path(path).write_bytes(self.data)

    def load(self) -> Any:
        """The Keras model, loaded in safe mode without compiling."""
        from ..registry import _load_network
        from . import feca  # noqa: F401  (registers the FECA layer for loading)

        with tempfile.TemporaryDirectory(prefix="wq-net-") as tmp:
            path = Path(tmp) / "network.keras"
            self.save(path)
            return _load_network(path)

    def __repr__(self) -> str:
        return f"SerializedNetwork({self.name!r}, {len(self.data)} bytes)"
