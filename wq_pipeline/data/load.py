"""Read a station file (CSV, gzip CSV or .xlsx; wide or long), find the time column, parse
timestamps, pick a site. Reading the cells is :mod:`wq_pipeline.data.reading`, the timestamps
:mod:`wq_pipeline.data.timestamps`.

:func:`load_table` only reads and parses; all cleaning (sorting, duplicates, NERRS flags,
physical ranges, regular grid, gaps) happens in :func:`wq_pipeline.data.qc.run_qc`.
:func:`load_station` does both.

Row numbers in error messages: data row ``n`` is 1-based (header excluded), so the 0-based
data row ``i`` is reported as ``row i+1 (line i+2)``, ``line`` being the file line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


import numpy as np
import pandas as pd

from wq_pipeline.config import QCConfig, ReadOptions
from wq_pipeline.errors import InputError
from wq_pipeline.data.reading import RawTable, apply_decimal, read_cells
from wq_pipeline.data.timestamps import parse_timestamps

#: candidate time columns, in order of preference (matched case-insensitively)
TIME_COLUMNS = ("DateTimeStamp", "datetimestamp", "datetime", "timestamp", "time", "date")
#: candidate site columns for long-format files (matched case-insensitively)
SITE_COLUMNS = ("siteID", "site", "site_id", "StationCode", "station")
#: cell texts read as missing (compared after strip + lower-case)
NA_TOKENS = frozenset({"", "na", "nan", "n/a", "#n/a", "null", "none", "-"})


@dataclass
class LoadedTable:
    """One station's rows as read from the file, before any QC.

    ``frame`` is indexed by the parsed timestamps (tz-aware ``DatetimeIndex`` named ``'time'``)
    in FILE ORDER: not sorted, not
    deduplicated (``run_qc`` does that and counts it). The time and site columns are not
    in ``frame``; a column whose non-missing cells all parse as finite numbers is float64,
    any other column keeps its whitespace-stripped text (object dtype).
    """

    path: Path
    frame: pd.DataFrame
    site: str | None
    time_col: str
    site_col: str | None
    rows_read: int  # data rows in the file (all sites)
    #: 0-based data-row position in the file of each ``frame`` row, shape (len(frame),)
    source_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: how timestamps were interpreted (for the QC summary)
    time_rule: str = ""
    #: how the file was read, e.g. "semicolon-separated (detected), decimal comma (detected)"
    read_how: str = ""
    #: the header line as read (first 200 characters)
    header: str = ""
    #: rows of the site dropped because their local time does not exist or cannot be placed (DST)
    time_dropped: int = 0

    @property
    def name(self) -> str:
        """File name used in messages."""
        return self.path.name


# --------------------------------------------------------------------------- columns


def find_column(columns: list[str], wanted: str) -> str | None:
    """Exact match, else a unique case-insensitive match, else None."""
    if wanted in columns:
        return wanted
    hits = [c for c in columns if c.lower() == wanted.strip().lower()]
    return hits[0] if len(hits) == 1 else None


def read_context(how: str, header: str) -> str:
    """``' (read as ...; header line: '...')'``: how a file was read, for column errors."""
    return f" (read as {how}; header line: {header!r}; see --sep, --decimal, --sheet)" if how else ""


def _cols_text(columns: list[str], ctx: str = "") -> str:
    return ", ".join(columns) + ctx


def _resolve_col(name: str, columns: list[str], given: str | None, candidates: tuple[str, ...], kind: str,
                 ctx: str = "") -> str | None:
    """The column the user named (error if absent), else the first candidate present (any case)."""
    if given is not None:
        found = find_column(columns, given)
        if found is None:
            raise InputError(f"{name}: {kind} column {given!r} not found; available columns: {_cols_text(columns, ctx)}")
        return found
    lower = {c.lower(): c for c in columns}
    for cand in candidates:
        if cand.lower() in lower:
            return lower[cand.lower()]
    return None


def _resolve_time_col(name: str, columns: list[str], time_col: str | None, ctx: str = "") -> str:
    found = _resolve_col(name, columns, time_col, tuple(TIME_COLUMNS), "time", ctx)
    if found is None:
        raise InputError(
            f"{name}: no time column found (looked for {', '.join(TIME_COLUMNS)}, any case; "
            f"pass --time-col); available columns: {_cols_text(columns, ctx)}"
        )
    return found


def _resolve_site_col(name: str, columns: list[str], site_col: str | None, ctx: str = "") -> str | None:
    return _resolve_col(name, columns, site_col, tuple(SITE_COLUMNS), "site", ctx)


# --------------------------------------------------------------------------- cells


def _numeric_uniques(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Factorize text cells -> (codes, stripped uniques, float value per unique, bad-per-unique).

    A unique is "bad" when it is neither a missing token (:data:`NA_TOKENS`) nor a finite number.
    Working on uniques keeps this fast for flag and value columns (few distinct cells).
    """
    codes, uniq = pd.factorize(values, use_na_sentinel=False)
    u = pd.Series(uniq, dtype=object).astype(str).str.strip()
    na = u.str.lower().isin(NA_TOKENS).to_numpy() | pd.isna(pd.Series(uniq, dtype=object)).to_numpy()
    num = pd.to_numeric(u.where(~na), errors="coerce").to_numpy(dtype=float)
    bad = ~na & ~np.isfinite(num)
    num[na] = np.nan
    return codes, u.to_numpy(dtype=object), num, bad


def convert_column(values: np.ndarray) -> np.ndarray:
    """Text cells -> float64 array if every non-missing cell is a finite number, else stripped text."""
    codes, text, num, bad = _numeric_uniques(values)
    if bad.any():
        return text[codes]
    return num[codes]


def first_non_numeric(s: pd.Series) -> int | None:
    """Position of the first non-missing cell that is not a finite number, or None."""
    codes, _, _, bad = _numeric_uniques(s.to_numpy(dtype=object))
    hit = bad[codes]
    return int(np.flatnonzero(hit)[0]) if hit.any() else None


# --------------------------------------------------------------------------- public


def list_sites(path: str | Path, *, time_col: str | None = None, site_col: str | None = None,
               read: ReadOptions | None = None) -> list[str]:
    """The site codes of a long-format file, in first-seen order (whitespace-stripped, empty
    codes left out); :class:`InputError` for a file without a site column."""
    path = Path(path)
    read = read or ReadOptions()
    cells = read_cells(path, read)
    columns = list(cells.frame.columns)
    ctx = read_context(cells.how, cells.header)
    tcol = _resolve_time_col(path.name, columns, time_col, ctx)
    scol = _resolve_site_col(path.name, columns, site_col, ctx)
    if scol is None or scol == tcol:
        raise InputError(f"{path.name}: has no site column to choose sites from (looked for {', '.join(SITE_COLUMNS)}, "
                         f"any case; pass --site-col); available columns: {_cols_text(columns, ctx)}")
    codes = cells.frame[scol].str.strip()
    return [c for c in dict.fromkeys(codes.tolist()) if c]


def load_table(
    path: str | Path,
    *,
    time_col: str | None = None,
    site: str | None = None,
    site_col: str | None = None,
    read: ReadOptions | None = None,
) -> LoadedTable:
    """Read a CSV, gzip CSV (detected by ``.gz`` suffix or content) or ``.xlsx`` workbook as
    ``read`` says (:mod:`wq_pipeline.data.reading`) and return one site's rows.

    The time column is ``time_col`` or the first of :data:`TIME_COLUMNS` present (any case).
    Long format: the site column is ``site_col`` or the first of :data:`SITE_COLUMNS` present;
    site codes are whitespace-stripped; ``site`` is required when the file holds several
    sites. Raises :class:`InputError` for every bad-input case.
    """
    path = Path(path)
    read = read or ReadOptions()
    cells = read_cells(path, read)
    raw = cells.frame
    name = path.name
    columns = list(raw.columns)
    rows_read = len(raw)
    ctx = read_context(cells.how, cells.header)

    tcol = _resolve_time_col(name, columns, time_col, ctx)
    scol = _resolve_site_col(name, columns, site_col, ctx)
    if scol == tcol:
        raise InputError(f"{name}: column {tcol!r} cannot be both the time and the site column")

    positions = np.arange(rows_read, dtype=np.int64)
    chosen: str | None = None
    if scol is None:
        if site is not None:
            raise InputError(
                f"{name}: site {site!r} requested but the file has no site column "
                f"(looked for {', '.join(SITE_COLUMNS)}, any case; pass site_col=...); "
                f"available columns: {_cols_text(columns, ctx)}"
            )
    else:
        codes = raw[scol].str.strip()
        sites = list(dict.fromkeys(codes.tolist()))  # first-seen order
        listing = ", ".join(repr(x) for x in sites)
        if site is None:
            if len(sites) > 1:
                raise InputError(
                    f"{name}: column {scol!r} holds {len(sites)} sites ({listing}); choose one with site=..."
                )
            chosen = sites[0]
        else:
            want = site.strip()
            if want in sites:
                chosen = want
            else:
                ci = [x for x in sites if x.lower() == want.lower()]
                if len(ci) != 1:
                    raise InputError(f"{name}: site {site!r} not found in column {scol!r}; sites: {listing}")
                chosen = ci[0]
        keep = (codes == chosen).to_numpy()
        positions = positions[keep]
        raw = raw.loc[keep]

    cells = apply_decimal(RawTable(raw, cells.how, cells.header), read, {tcol} | ({scol} if scol else set()))
    raw = cells.frame
    idx, kept, time_rule = parse_timestamps(raw[tcol], name=name, col=tcol, rows=positions,
                                            time_format=read.time_format, tz=read.tz)
    time_dropped = int((~kept).sum())
    if time_dropped:
        raw, positions = raw.loc[kept], positions[kept]

    data: dict[str, pd.Series] = {}
    for c in columns:
        if c in (tcol, scol):
            continue
        data[c] = convert_column(raw[c].to_numpy(dtype=object))
    frame = pd.DataFrame(data)
    frame.index = idx
    return LoadedTable(
        path=path, frame=frame, site=chosen, time_col=tcol, site_col=scol,
        rows_read=rows_read, source_rows=positions, time_rule=time_rule, read_how=cells.how, header=cells.header,
        time_dropped=time_dropped,
    )
