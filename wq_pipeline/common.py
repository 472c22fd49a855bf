"""Shared helpers every layer may use: hashing files and JSON content, plain-JSON conversion and
the versions of the libraries that shape the numbers. A leaf: it imports nothing of the package
but its version."""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def to_jsonable(obj: Any) -> Any:
    """Recursively turn numpy scalars/arrays, tuples and dicts into plain JSON types; NaN and
    +-inf become ``None``."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj


def content_sha256(content: dict) -> str:
    """SHA-256 of ``content`` as JSON with sorted keys (numpy scalars/arrays as plain JSON)."""
    return hashlib.sha256(json.dumps(to_jsonable(content), sort_keys=True).encode("utf-8")).hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of the packages that shape the numbers."""
    from importlib.metadata import PackageNotFoundError, version

    from wq_pipeline._version import __version__

    out = {"wq-pipeline": __version__, "python": sys.version.split()[0]}
    for pkg in ("numpy", "pandas", "statsmodels", "vmdpy", "EMD-signal", "tensorflow-cpu", "tensorflow", "keras", "prefect"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out
