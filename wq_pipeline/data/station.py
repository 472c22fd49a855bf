"""A station series from a file, as every command starts: the file read and its timestamps
parsed (:mod:`wq_pipeline.data.load`), then the target quality-controlled onto a regular grid
(:mod:`wq_pipeline.data.qc`)."""

from __future__ import annotations

from pathlib import Path

from wq_pipeline.config import QCConfig, ReadOptions
from wq_pipeline.data.load import load_table
from wq_pipeline.data.qc import StationSeries, run_qc


def load_station(
    path: str | Path,
    target: str,
    *,
    time_col: str | None = None,
    site: str | None = None,
    site_col: str | None = None,
    freq: str | None = None,
    qc: QCConfig | None = None,
    read: ReadOptions | None = None,
) -> StationSeries:
    """:func:`~wq_pipeline.data.load.load_table` then :func:`~wq_pipeline.data.qc.run_qc` (default
    :class:`QCConfig` if None)."""
    table = load_table(path, time_col=time_col, site=site, site_col=site_col, read=read)
    return run_qc(table, target, freq=freq, qc=qc if qc is not None else QCConfig())
