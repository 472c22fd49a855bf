"""Signal decomposition with a single interface: ``make_decomposer(method, modes, seed, **params)``.

Every decomposer maps a window (L,) to (C, L) with a fixed C: ``modes`` mode channels and a
residual channel (signal - sum of modes), C = ``modes + 1``, so all windows have the same
channels and they sum back to the signal exactly. See :mod:`wq_pipeline.decompose.base` for the
channel order per method. The two-stage ``"ceemdan-se-vmd"``
(:mod:`wq_pipeline.decompose.two_stage`) has ``secondary_modes + 3`` channels and must be
fitted on training windows first. ``"atrous"`` (:mod:`wq_pipeline.decompose.atrous`) is the
causal Haar à trous wavelet transform: ``modes`` = levels (1..12), channels ``d1 .. dJ`` then the
smooth as ``residual``.
"""

from __future__ import annotations

import inspect
from typing import Any

from wq_pipeline.decompose.atrous import AtrousDecomposer, atrous, boundary_samples
from wq_pipeline.decompose.base import MAX_MODES, MIN_MODES, Decomposer, fix_mode_count
from wq_pipeline.decompose.emd import CEEMDANDecomposer, EEMDDecomposer, ceemdan, eemd
from wq_pipeline.decompose.entropy import sample_entropy, sample_entropy_rows
from wq_pipeline.decompose.two_stage import CEEMDANSEVMDDecomposer, entropy_groups
from wq_pipeline.decompose.vmd import VMDDecomposer, vmd, vmd_batch
from wq_pipeline.errors import InputError

__all__ = [
    "METHODS",
    "Decomposer",
    "VMDDecomposer",
    "EEMDDecomposer",
    "CEEMDANDecomposer",
    "CEEMDANSEVMDDecomposer",
    "AtrousDecomposer",
    "make_decomposer",
    "fix_mode_count",
    "vmd",
    "vmd_batch",
    "eemd",
    "ceemdan",
    "sample_entropy",
    "sample_entropy_rows",
    "entropy_groups",
    "atrous",
    "boundary_samples",
]

METHODS: dict[str, type[Decomposer]] = {
    "vmd": VMDDecomposer,
    "eemd": EEMDDecomposer,
    "ceemdan": CEEMDANDecomposer,
    "ceemdan-se-vmd": CEEMDANSEVMDDecomposer,
    "atrous": AtrousDecomposer,
}


def _keyword_params(cls: type[Decomposer]) -> list[str]:
    sig = inspect.signature(cls.__init__)
    return [n for n, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]


def make_decomposer(method: str, modes: int = 8, seed: int = 0, **params: Any) -> Decomposer:
    """Build a decomposer: ``method`` in {"vmd", "eemd", "ceemdan", "ceemdan-se-vmd", "atrous"}
    (case-insensitive), ``modes`` in 1..32 mode channels (output has ``modes + 1`` channels;
    for "ceemdan-se-vmd" ``modes`` is the CEEMDAN IMF count of the first stage and the output
    has ``secondary_modes + 3`` channels; for "atrous" ``modes`` is the level count, 1..12),
    ``seed`` for the noise (EMD methods) or random init (VMD ``init=2``), method parameters as
    keywords (the keyword-only parameters of the method's class). A "ceemdan-se-vmd" decomposer
    must be fitted (``fit(training windows)``) before use, or built with ``groups=`` from an
    earlier fit.

    Raises InputError for an unknown method, ``modes`` out of range or an unknown or invalid
    parameter.
    """
    key = str(method).strip().lower()
    if key not in METHODS:
        raise InputError(
            f"unknown decomposition method {method!r}; valid methods: {', '.join(sorted(METHODS))}"
        )
    cls = METHODS[key]
    allowed = _keyword_params(cls)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InputError(
            f"unknown parameter(s) {', '.join(unknown)} for method {key!r}; "
            f"valid parameters: {', '.join(allowed)}"
        )
    if isinstance(seed, bool) or not hasattr(seed, "__index__") or not 0 <= int(seed) < 2**32:
        raise InputError(f"seed must be an integer in 0..2**32-1, got {seed!r}")
    if isinstance(modes, bool) or not hasattr(modes, "__index__") or not MIN_MODES <= int(modes) <= MAX_MODES:
        raise InputError(f"modes must be an integer in {MIN_MODES}..{MAX_MODES}, got {modes!r}")
    return cls(int(modes), int(seed), **params)
