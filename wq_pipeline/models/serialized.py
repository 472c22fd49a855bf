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
        with tempfile.TemporaryDirectory(prefix="wq-net-") as tmp:
            path = Path(tmp) / "network.keras"
            self.save(path)
            return load_network(path)

    def __repr__(self) -> str:
        return f"SerializedNetwork({self.name!r}, {len(self.data)} bytes)"


def load_network(path: Path) -> Any:
    """Load one ``.keras`` file in safe mode, without compiling (FECA layers registered); errors
    become :class:`~wq_pipeline.errors.InputError` naming the file."""
    import contextlib

    import keras

    from wq_pipeline.errors import InputError
    from wq_pipeline.models import feca  # noqa: F401  (registers the FECA layer for loading)

    try:  # force safe mode even if the process called keras.config.enable_unsafe_deserialization()
        from keras.src.saving.serialization_lib import SafeModeScope

        scope: Any = SafeModeScope(True)
    except ImportError:  # internal module moved: load_model(safe_mode=True) still applies
        scope = contextlib.nullcontext()
    try:
        with scope:
            return keras.saving.load_model(path, safe_mode=True, compile=False)
    except ValueError as exc:
        text = str(exc)
        if "safe_mode" in text or "safe mode" in text or "arbitrary code" in text:
            raise InputError(f"{path}: the network file contains code (e.g. a Lambda layer) and Keras safe mode "
                             f"refused to load it; only models built by wq-pipeline can be loaded") from exc
        raise InputError(f"{path}: cannot load the network: {text}") from exc
    except Exception as exc:  # a zip or HDF5 error from a file that passed its hash check
        raise InputError(f"{path}: cannot load the network: {type(exc).__name__}: {exc}") from exc
