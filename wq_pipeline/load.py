"""Read a station CSV / CSV.gz (wide or long), find the time column, parse timestamps, pick a site.

:func:`load_table` only reads and parses; all cleaning (sorting, duplicates, NERRS flags,
physical ranges, regular grid, gaps) happens in :func:`wq_pipeline.qc.run_qc`.
:func:`load_station` does both.

Row numbers in error messages: data row ``n`` is 1-based (header excluded), so the 0-based
data row ``i`` is reported as ``row i+1 (line i+2)``, ``line`` being the file line.
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .config import QCConfig
from .errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from .qc import StationSeries

#: candidate time columns, in order of preference (matched case-insensitively)
TIME_COLUMNS = ("DateTimeStamp", "datetimestamp", "datetime", "timestamp", "time", "date")
#: candidate site columns for long-format files (matched case-insensitively)
SITE_COLUMNS = ("siteID", "site", "site_id", "StationCode", "station")
#: cell texts read as missing (compared after strip + lower-case)
NA_TOKENS = frozenset({"", "na", "nan", "n/a", "#n/a", "null", "none", "-"})

_TS_HINT = "expected ISO 8601 or M/D/YYYY H:MM"
#: a UTC offset after a clock time: "...00:30:00-0500", "... 00:30Z", "...00:30:00.5+05:30"
_OFFSET_RE = re.compile(r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?P<off>Z|[+-]\d{2}(?::?\d{2})?)$")


@dataclass
class LoadedTable:
    """One station's rows as read from the file, before any QC.

    ``frame`` is indexed by the parsed timestamps (``DatetimeIndex`` named ``'time'``;
    tz-aware when the file carries UTC offsets) in FILE ORDER: not sorted, not
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

    @property
    def name(self) -> str:
        """File name used in messages."""
        return self.path.name


def row_ref(i: int) -> str:
    """Human row reference for 0-based data row ``i``: ``'row i+1 (line i+2)'``."""
    return f"row {i + 1} (line {i + 2})"


# --------------------------------------------------------------------------- reading


def _is_gzip(path: Path) -> bool:
    if path.suffix.lower() == ".gz":
        return True
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _read_text_csv(path: Path) -> pd.DataFrame:
    """All cells as str (no NA conversion), header names stripped."""
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if not path.is_file():
        raise InputError(f"{path}: not a file (expected a CSV or gzip CSV file)")
    compression = "gzip" if _is_gzip(path) else None
    last_err: Exception | None = None
    for encoding in ("utf-8-sig", "latin-1"):
        try:
            df = pd.read_csv(
                path, dtype=str, keep_default_na=False, na_filter=False,
                compression=compression, encoding=encoding,
            )
            break
        except UnicodeDecodeError as e:
            last_err = e
            continue
        except pd.errors.EmptyDataError:
            raise InputError(f"{path.name}: file is empty (expected a CSV header line and data rows)") from None
        except pd.errors.ParserError as e:
            raise InputError(f"{path.name}: not a valid CSV file ({e})") from None
        except (gzip.BadGzipFile, zlib.error, EOFError, OSError) as e:
            raise InputError(f"{path.name}: cannot read gzip CSV ({e})") from None
    else:  # pragma: no cover - latin-1 decodes any byte
        raise InputError(f"{path.name}: cannot decode text ({last_err})")
    df.columns = [str(c).strip() for c in df.columns]
    if len(df) == 0:
        raise InputError(f"{path.name}: no data rows (expected a header line followed by data rows)")
    return df


def find_column(columns: list[str], wanted: str) -> str | None:
    """Exact match, else a unique case-insensitive match, else None."""
    if wanted in columns:
        return wanted
    hits = [c for c in columns if c.lower() == wanted.strip().lower()]
    return hits[0] if len(hits) == 1 else None


def _cols_text(columns: list[str]) -> str:
    return ", ".join(columns)


def _resolve_col(name: str, columns: list[str], given: str | None, candidates: tuple[str, ...], kind: str) -> str | None:
    """The column the user named (error if absent), else the first candidate present (any case)."""
    if given is not None:
        found = find_column(columns, given)
        if found is None:
            raise InputError(f"{name}: {kind} column {given!r} not found; available columns: {_cols_text(columns)}")
        return found
    lower = {c.lower(): c for c in columns}
    for cand in candidates:
        if cand.lower() in lower:
            return lower[cand.lower()]
    return None


def _resolve_time_col(name: str, columns: list[str], time_col: str | None) -> str:
    found = _resolve_col(name, columns, time_col, tuple(TIME_COLUMNS), "time")
    if found is None:
        raise InputError(
            f"{name}: no time column found (looked for {', '.join(TIME_COLUMNS)}, any case; "
            f"pass --time-col); available columns: {_cols_text(columns)}"
        )
    return found


def _resolve_site_col(name: str, columns: list[str], site_col: str | None) -> str | None:
    return _resolve_col(name, columns, site_col, tuple(SITE_COLUMNS), "site")


# --------------------------------------------------------------------------- timestamps


def _offset_minutes(off: str) -> int:
    """'Z' / '+HH' / '-HHMM' / '-HH:MM' -> signed minutes east of UTC."""
    if off == "Z":
        return 0
    d = off.replace(":", "")
    sign = -1 if d[0] == "-" else 1
    return sign * (int(d[1:3]) * 60 + (int(d[3:5]) if len(d) >= 5 else 0))


def _fmt_offset(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    m = abs(minutes)
    return f"{sign}{m // 60:02d}:{m % 60:02d}"


def parse_timestamps(text: pd.Series, *, name: str, col: str, rows: np.ndarray) -> tuple[pd.DatetimeIndex, str]:
    """Parse timestamp strings -> (DatetimeIndex named 'time', rule text).

    Accepts ISO 8601 (``2012-01-01T00:30:00``, ``2012-01-01 00:30``, date only) and CDMO
    ``M/D/YYYY H:MM[:SS]``, each optionally followed by a UTC offset (``Z``, ``-0500``,
    ``-05:00``, ``+01``). All offsets identical -> that fixed offset is kept; offsets that
    differ -> converted to UTC; no offsets -> naive. ``rows`` gives the 0-based file data
    row of each entry (for messages).
    """
    s = text.astype(str).str.strip()
    blank = (s == "").to_numpy()
    if blank.any():
        i = int(np.flatnonzero(blank)[0])
        raise InputError(f"{name}: {row_ref(int(rows[i]))}, column {col!r}: empty timestamp ({_TS_HINT})")

    base_list: list[str] = []
    off_list: list[str | None] = []
    search = _OFFSET_RE.search
    for x in s.to_numpy(dtype=object):
        m = search(x)
        if m is None:
            base_list.append(x)
            off_list.append(None)
        else:
            base_list.append(x[: m.start("off")].rstrip())
            off_list.append(m.group("off"))
    base = pd.Series(base_list, index=s.index, dtype=object)
    offs = np.asarray(off_list, dtype=object)
    has_off = np.not_equal(offs, None)

    slash = base.str.contains("/", regex=False).to_numpy()
    parsed = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    if slash.any():
        b = base[slash]
        out = pd.to_datetime(b, format="%m/%d/%Y %H:%M", errors="coerce")
        for fmt in ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y"):
            miss = out.isna()
            if miss.any():
                out[miss] = pd.to_datetime(b[miss], format=fmt, errors="coerce")
        parsed[slash] = out.astype("datetime64[ns]")
    if (~slash).any():
        parsed[~slash] = pd.to_datetime(base[~slash], format="ISO8601", errors="coerce").astype("datetime64[ns]")

    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{name}: {row_ref(int(rows[i]))}, column {col!r}: cannot parse timestamp {s.iloc[i]!r} ({_TS_HINT})"
        )

    if not has_off.any():
        idx = pd.DatetimeIndex(parsed.to_numpy(), name="time")
        return idx, "timestamps without UTC offset, kept as naive local times"
    if not has_off.all():
        i = int(np.flatnonzero(~has_off)[0])
        j = int(np.flatnonzero(has_off)[0])
        raise InputError(
            f"{name}: {row_ref(int(rows[i]))}, column {col!r}: timestamp {s.iloc[i]!r} has no UTC offset "
            f"but {s.iloc[j]!r} at {row_ref(int(rows[j]))} has one (expected all or none to carry an offset)"
        )
    codes, uniq_off = pd.factorize(offs)
    minutes = np.array([_offset_minutes(o) for o in uniq_off], dtype=np.int64)[codes]
    uniq = np.unique(minutes)
    if len(uniq) == 1:
        m = int(uniq[0])
        tz = timezone.utc if m == 0 else timezone(timedelta(minutes=m))
        idx = pd.DatetimeIndex(parsed.to_numpy(), name="time").tz_localize(tz)
        return idx, f"timestamps carry one fixed UTC offset ({_fmt_offset(m)}), kept"
    utc = parsed.to_numpy() - minutes.astype("timedelta64[m]")
    idx = pd.DatetimeIndex(utc, name="time").tz_localize("UTC")
    offs = ", ".join(_fmt_offset(int(u)) for u in uniq)
    return idx, f"timestamps carry different UTC offsets ({offs}), converted to UTC"


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


def load_table(
    path: str | Path,
    *,
    time_col: str | None = None,
    site: str | None = None,
    site_col: str | None = None,
) -> LoadedTable:
    """Read a CSV or gzip CSV (detected by ``.gz`` suffix or content) and return one site's rows.

    The time column is ``time_col`` or the first of :data:`TIME_COLUMNS` present (any case).
    Long format: the site column is ``site_col`` or the first of :data:`SITE_COLUMNS` present;
    site codes are whitespace-stripped; ``site`` is required when the file holds several
    sites. Raises :class:`InputError` for every bad-input case.
    """
    path = Path(path)
    raw = _read_text_csv(path)
    name = path.name
    columns = list(raw.columns)
    rows_read = len(raw)

    tcol = _resolve_time_col(name, columns, time_col)
    scol = _resolve_site_col(name, columns, site_col)
    if scol == tcol:
        raise InputError(f"{name}: column {tcol!r} cannot be both the time and the site column")

    positions = np.arange(rows_read, dtype=np.int64)
    chosen: str | None = None
    if scol is None:
        if site is not None:
            raise InputError(
                f"{name}: site {site!r} requested but the file has no site column "
                f"(looked for {', '.join(SITE_COLUMNS)}, any case; pass site_col=...); "
                f"available columns: {_cols_text(columns)}"
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

    idx, time_rule = parse_timestamps(raw[tcol], name=name, col=tcol, rows=positions)

    data: dict[str, pd.Series] = {}
    for c in columns:
        if c in (tcol, scol):
            continue
        data[c] = convert_column(raw[c].to_numpy(dtype=object))
    frame = pd.DataFrame(data)
    frame.index = idx
    return LoadedTable(
        path=path, frame=frame, site=chosen, time_col=tcol, site_col=scol,
        rows_read=rows_read, source_rows=positions, time_rule=time_rule,
    )


def load_station(
    path: str | Path,
    target: str,
    *,
    time_col: str | None = None,
    site: str | None = None,
    site_col: str | None = None,
    freq: str | None = None,
    qc: QCConfig | None = None,
) -> StationSeries:
    """:func:`load_table` then :func:`wq_pipeline.qc.run_qc` (default :class:`QCConfig` if None)."""
    from .qc import run_qc

    table = load_table(path, time_col=time_col, site=site, site_col=site_col)
    return run_qc(table, target, freq=freq, qc=qc if qc is not None else QCConfig())
