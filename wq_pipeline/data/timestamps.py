"""Timestamps as stations export them: parse a time column into a tz-aware index.

Rules, in order (the rule that applied is returned as text for the QC summary):

- ``time_format`` given: every cell is parsed with that strptime format (``%z`` allowed).
- Otherwise ISO 8601 (``2012-01-01T00:30:00``, date only), numeric dates with ``/``, ``.`` or
  ``-`` in year/month/day order (``2023/8/4 23:00``) or day and month before a 2- or 4-digit year
  (``7/2/2021 0:00``), and anything else pandas reads without guessing (month names). The
  day/month order of ``a/b/YYYY`` dates is read from the data: a first field above 12 means day
  first, a second field above 12 means month first; both in one column, or neither in any row,
  is an error that asks for ``--time-format``.
- UTC offsets (``Z``, ``-0500``, ``-05:00``, ``+01``) win: one offset throughout is kept, differing
  offsets are converted to UTC.
- Times without an offset are local times of ``tz`` (an IANA zone). A time repeated by a
  daylight-saving change is resolved by file order (first: summer time, second: standard time);
  a time the change skips, or a repeated time seen once only, cannot be placed and the row is
  dropped and counted. Without ``tz`` they are read as UTC, and the rule says so.
"""

from __future__ import annotations

import re
from datetime import timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from wq_pipeline.errors import InputError

HINT = "expected ISO 8601, Y/M/D, D/M/Y or M/D/Y dates with an optional time, or pass --time-format"
#: a UTC offset after a clock time: "...00:30:00-0500", "... 00:30Z", "...00:30:00.5+05:30"
_OFFSET_RE = re.compile(r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?P<off>Z|[+-]\d{2}(?::?\d{2})?)$")
#: numeric date with a separator, then an optional time: groups a, sep, b, c, rest
_NUMERIC_DATE_RE = re.compile(r"^(\d{1,4})([/.\-])(\d{1,2})\2(\d{1,4})(?:(?:[ T]+)(.*))?$")


def row_ref(i: int) -> str:
    """Human row reference for 0-based data row ``i``: ``'row i+1 (line i+2)'``."""
    return f"row {i + 1} (line {i + 2})"


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


def _split_offsets(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Cells -> (text without the trailing UTC offset, offset text or None per cell)."""
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
    return pd.Series(base_list, index=s.index, dtype=object), np.asarray(off_list, dtype=object)


def _numeric_dates_to_iso(base: pd.Series, *, name: str, col: str, rows: np.ndarray) -> tuple[pd.Series, str]:
    """Rewrite numeric ``a/b/c`` dates as ISO ``YYYY-MM-DD`` (time kept); other cells unchanged.
    Returns the rewritten cells and the order read (``''`` when no cell was rewritten)."""
    parts = base.str.extract(_NUMERIC_DATE_RE)
    hit = parts[0].notna().to_numpy() & ~((parts[0].str.len() == 4) & (parts[1] == "-")).to_numpy()  # ISO: as is
    if not hit.any():
        return base, ""
    a, b, c = (parts.loc[hit, k] for k in (0, 2, 3))
    rest = parts.loc[hit, 4].fillna("")
    ymd = (a.str.len() == 4).to_numpy()
    tail_year = c.str.len().isin((2, 4)).to_numpy() & ~ymd
    odd = ~(ymd | tail_year)
    if odd.any():
        i = int(np.flatnonzero(hit)[np.flatnonzero(odd)[0]])
        raise InputError(f"{name}: {row_ref(int(rows[i]))}, column {col!r}: cannot tell which field of "
                         f"{base.iloc[i]!r} is the year ({HINT})")
    order = ""
    year, month, day = a.copy(), b.copy(), c.copy()
    if tail_year.any():
        ai, bi = a[tail_year].astype(int).to_numpy(), b[tail_year].astype(int).to_numpy()
        where = np.flatnonzero(hit)[tail_year]
        day_first, month_first = ai > 12, bi > 12
        if day_first.any() and month_first.any():
            i, j = int(where[np.flatnonzero(day_first)[0]]), int(where[np.flatnonzero(month_first)[0]])
            raise InputError(
                f"{name}: column {col!r} mixes day-first {base.iloc[i]!r} ({row_ref(int(rows[i]))}) and month-first "
                f"{base.iloc[j]!r} ({row_ref(int(rows[j]))}) dates; fix the file or pass --time-format")
        if not day_first.any() and not month_first.any():
            i = int(where[0])
            raise InputError(
                f"{name}: column {col!r}: the day/month order of {base.iloc[i]!r} ({row_ref(int(rows[i]))}) is "
                f"ambiguous: no day above 12 in any row; pass --time-format, e.g. '%d/%m/%Y %H:%M' or '%m/%d/%Y %H:%M'")
        dfirst = bool(day_first.any())
        order = "day/month/year" if dfirst else "month/day/year"
        yy = c[tail_year]
        yy = yy.where(yy.str.len() == 4, yy.astype(int).map(lambda v: str(2000 + v if v < 69 else 1900 + v)))
        year[tail_year] = yy
        month[tail_year] = (b if dfirst else a)[tail_year]
        day[tail_year] = (a if dfirst else b)[tail_year]
    if ymd.any():
        order = (order + " and " if order else "") + "year/month/day"
    iso = year + "-" + month.str.zfill(2) + "-" + day.str.zfill(2) + np.where(rest.str.len() > 0, " " + rest, "")
    out = base.copy()
    out[hit] = iso
    return out, order


def _parse_free(base: pd.Series) -> pd.Series:
    """ISO 8601 first; cells it cannot read go to pandas' own parser (month names, AM/PM), which
    only sees cells whose numeric day/month order is no longer in question."""
    parsed = pd.to_datetime(base, format="ISO8601", errors="coerce")
    miss = parsed.isna()
    if miss.any():
        other = pd.to_datetime(base[miss], format="mixed", errors="coerce")
        if getattr(other.dt, "tz", None) is not None:  # pragma: no cover - offsets were split off
            other = other.dt.tz_localize(None)
        parsed[miss] = other
    return parsed.astype("datetime64[ns]")


def _localize(naive: pd.DatetimeIndex, tz: str, *, name: str, col: str,
              rows: np.ndarray) -> tuple[pd.DatetimeIndex, np.ndarray, str]:
    """Naive local times of ``tz`` -> (aware index of the kept rows, keep mask, rule)."""
    zone = ZoneInfo(tz)
    n = len(naive)
    first = naive.tz_localize(zone, ambiguous=np.ones(n, bool), nonexistent="NaT")
    second = naive.tz_localize(zone, ambiguous=np.zeros(n, bool), nonexistent="NaT")
    skipped = np.asarray(first.isna())
    repeated = ~skipped & np.asarray(first != second)
    dst_flag = np.ones(n, bool)
    unplaced = np.zeros(n, bool)
    if repeated.any():
        wall = pd.Series(naive[repeated])
        nth = wall.groupby(wall).cumcount().to_numpy()
        size = wall.groupby(wall).transform("size").to_numpy()
        pos = np.flatnonzero(repeated)
        dst_flag[pos] = nth == 0
        unplaced[pos] = size != 2
    keep = ~skipped & ~unplaced
    aware = naive[keep].tz_localize(zone, ambiguous=dst_flag[keep], nonexistent="raise")
    notes = [f"timestamps without UTC offset read as local times of {tz}"]
    if repeated.any():
        notes.append(f"{int((repeated & keep).sum())} readings in the hour repeated by a daylight-saving change "
                     "placed by file order (first: summer time)")
    if unplaced.any():
        notes.append(f"{int(unplaced.sum())} readings at a repeated local time seen once only dropped (cannot tell "
                     f"which of the two instants; first at {row_ref(int(rows[np.flatnonzero(unplaced)[0]]))})")
    if skipped.any():
        notes.append(f"{int(skipped.sum())} readings at local times skipped by a daylight-saving change dropped "
                     f"(first {naive[np.flatnonzero(skipped)[0]]} at {row_ref(int(rows[np.flatnonzero(skipped)[0]]))})")
    utc_wall = aware.tz_convert("UTC").tz_localize(None)
    offsets = np.unique(np.asarray(naive[keep] - utc_wall, dtype="timedelta64[m]").astype(np.int64))
    if len(offsets) == 1:
        m = int(offsets[0])
        idx = aware.tz_convert(timezone.utc if m == 0 else timezone(timedelta(minutes=m)))
        notes.append(f"one UTC offset ({_fmt_offset(m)}) throughout, kept")
    else:
        idx = aware.tz_convert("UTC")
        notes.append("converted to UTC (the offset changes within the file)")
    return idx.rename("time"), keep, "; ".join(notes)


def parse_timestamps(text: pd.Series, *, name: str, col: str, rows: np.ndarray, time_format: str | None = None,
                     tz: str | None = None) -> tuple[pd.DatetimeIndex, np.ndarray, str]:
    """Parse timestamp cells -> (tz-aware DatetimeIndex named 'time' of the kept rows, keep mask
    of shape (len(text),), rule text). ``rows`` gives the 0-based file data row of each cell (for
    messages); see the module docstring for the rules. Raises :class:`InputError`."""
    s = text.astype(str).str.strip()
    blank = (s == "").to_numpy()
    if blank.any():
        i = int(np.flatnonzero(blank)[0])
        raise InputError(f"{name}: {row_ref(int(rows[i]))}, column {col!r}: empty timestamp ({HINT})")

    if time_format is not None and ("%z" in time_format or "%Z" in time_format):
        parsed_aware = pd.to_datetime(s, format=time_format, errors="coerce", utc=True)
        _raise_unparsed(parsed_aware, s, name=name, col=col, rows=rows, how=f"with --time-format {time_format!r}")
        idx = pd.DatetimeIndex(parsed_aware, name="time")
        return idx, np.ones(len(s), bool), f"timestamps read with --time-format {time_format!r}, converted to UTC"

    base, offs = _split_offsets(s)
    has_off = np.not_equal(offs, None)
    if time_format is not None:
        parsed = pd.to_datetime(base, format=time_format, errors="coerce")
        _raise_unparsed(parsed, s, name=name, col=col, rows=rows, how=f"with --time-format {time_format!r}")
        how = f"read with --time-format {time_format!r}"
    else:
        iso, order = _numeric_dates_to_iso(base, name=name, col=col, rows=rows)
        parsed = _parse_free(iso)
        _raise_unparsed(parsed, s, name=name, col=col, rows=rows, how=f"({HINT})")
        how = f"dates read as {order}" if order else ""

    if not has_off.any():
        naive = pd.DatetimeIndex(parsed.to_numpy(), name="time")
        if tz is not None:
            idx, keep, rule = _localize(naive, tz, name=name, col=col, rows=rows)
        else:
            idx, keep = naive.tz_localize("UTC"), np.ones(len(s), bool)
            rule = "timestamps without UTC offset read as UTC (no --tz given)"
        return idx, keep, "; ".join(x for x in (how, rule) if x)
    if not has_off.all():
        i = int(np.flatnonzero(~has_off)[0])
        j = int(np.flatnonzero(has_off)[0])
        raise InputError(
            f"{name}: {row_ref(int(rows[i]))}, column {col!r}: timestamp {s.iloc[i]!r} has no UTC offset "
            f"but {s.iloc[j]!r} at {row_ref(int(rows[j]))} has one (expected all or none to carry an offset)"
        )
    keep = np.ones(len(s), bool)
    codes, uniq_off = pd.factorize(offs)
    minutes = np.array([_offset_minutes(o) for o in uniq_off], dtype=np.int64)[codes]
    uniq = np.unique(minutes)
    ignored = f" (--tz {tz} applies to times without one)" if tz else ""
    if len(uniq) == 1:
        m = int(uniq[0])
        zone = timezone.utc if m == 0 else timezone(timedelta(minutes=m))
        idx = pd.DatetimeIndex(parsed.to_numpy(), name="time").tz_localize(zone)
        rule = f"timestamps carry one fixed UTC offset ({_fmt_offset(m)}), kept{ignored}"
    else:
        utc = parsed.to_numpy() - minutes.astype("timedelta64[m]")
        idx = pd.DatetimeIndex(utc, name="time").tz_localize("UTC")
        listed = ", ".join(_fmt_offset(int(u)) for u in uniq)
        rule = f"timestamps carry different UTC offsets ({listed}), converted to UTC{ignored}"
    return idx, keep, "; ".join(x for x in (how, rule) if x)


def _raise_unparsed(parsed: pd.Series, s: pd.Series, *, name: str, col: str, rows: np.ndarray, how: str) -> None:
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{name}: {row_ref(int(rows[i]))}, column {col!r}: cannot parse timestamp {s.iloc[i]!r} {how}")
