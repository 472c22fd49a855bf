"""Read a station file into text cells: CSV / gzip CSV with the delimiter and decimal mark
detected, or an Excel workbook (``.xlsx``, one sheet).

Detection, overridable by :class:`wq_pipeline.config.ReadOptions`:

- delimiter: the one of comma, semicolon, tab and ``|`` that splits the header line into the
  most fields (ties in that order);
- decimal mark: a comma when the file is not comma-separated and numbers such as ``5,25`` occur
  but none such as ``5.25`` (both kinds: ambiguous, a point is assumed; pass ``--decimal``).
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from wq_pipeline.config import ReadOptions
from wq_pipeline.errors import InputError

#: delimiters tried, in order of preference on a tie
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
_COMMA_NUMBER = re.compile(r"^\s*[+-]?\d+,\d+\s*$")
_POINT_NUMBER = re.compile(r"^\s*[+-]?\d*\.\d+\s*$")
_SAMPLE_BYTES = 1 << 16


@dataclass
class RawTable:
    """Every cell as whitespace-unstripped text (no NA conversion), header names stripped, and how
    the file was read (for messages and the QC summary)."""

    frame: pd.DataFrame
    how: str  # e.g. "semicolon-separated, decimal comma" or "sheet 'Data' of an Excel workbook"
    header: str  # the header line as read (first 200 characters)


def _is_gzip(path: Path) -> bool:
    if path.suffix.lower() == ".gz":
        return True
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _sample_text(path: Path, compression: str | None) -> tuple[str, str]:
    """(first ~64 KB of the file as text, its encoding)."""
    opener = gzip.open if compression == "gzip" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read(_SAMPLE_BYTES)
    except (gzip.BadGzipFile, zlib.error, EOFError, OSError) as e:
        raise InputError(f"{path.name}: cannot read gzip CSV ({e})") from None
    for encoding in ("utf-8-sig", "latin-1"):
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError as e:  # a cut multi-byte character at the end is fine
            if encoding == "utf-8-sig" and e.start >= len(raw) - 3:
                return raw[: e.start].decode(encoding), encoding
    raise AssertionError("latin-1 decodes any byte")  # pragma: no cover


def detect_delimiter(header: str) -> str:
    """The delimiter of :data:`DELIMITERS` that splits ``header`` into the most fields, ignoring
    quoted text (comma when none splits it)."""
    unquoted = re.sub(r'"[^"]*"', "", header)
    counts = {d: unquoted.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: (counts[d], -DELIMITERS.index(d)))
    return best if counts[best] > 0 else ","


def detect_decimal(frame: pd.DataFrame, skip: set[str]) -> str:
    """The decimal mark of the value cells of ``frame`` outside the columns ``skip``: ``','``
    when numbers such as ``5,25`` occur and none such as ``5.25``, else ``'.'``."""
    comma = point = False
    for c in frame.columns:
        if c in skip:
            continue
        cells = frame[c].head(5000)
        comma = comma or bool(cells.str.match(_COMMA_NUMBER).any())
        point = point or bool(cells.str.match(_POINT_NUMBER).any())
    return "," if comma and not point else "."


def decimal_comma_to_point(frame: pd.DataFrame, skip: set[str]) -> pd.DataFrame:
    """Cells such as ``5,25`` -> ``5.25`` in every column outside ``skip`` (other text untouched)."""
    out = frame.copy()
    for c in out.columns:
        if c not in skip:
            out[c] = out[c].str.replace(r"^(\s*[+-]?\d*),(\d+\s*)$", r"\1.\2", regex=True)
    return out


def _read_excel(path: Path, sheet: str | None) -> RawTable:
    try:
        book = pd.ExcelFile(path, engine="openpyxl")
    except ImportError:  # pragma: no cover - openpyxl is a dependency
        raise InputError(f"{path.name}: reading Excel workbooks needs openpyxl (pip install openpyxl)") from None
    except Exception as e:  # openpyxl raises zipfile / KeyError / InvalidFileException on bad files
        raise InputError(f"{path.name}: cannot read the Excel workbook ({type(e).__name__}: {e})") from None
    names = [str(n) for n in book.sheet_names]
    if sheet is None:
        chosen = names[0]
    elif sheet in names:
        chosen = sheet
    elif sheet.isdigit() and 1 <= int(sheet) <= len(names):
        chosen = names[int(sheet) - 1]
    else:
        raise InputError(f"{path.name}: no sheet {sheet!r} (--sheet takes a name or a 1-based number); "
                         f"sheets: {', '.join(repr(n) for n in names)}")
    df = book.parse(chosen, dtype=str, keep_default_na=False, na_filter=False)
    df = df.fillna("").astype(str)
    df.columns = [str(c).strip() for c in df.columns]
    header = ", ".join(df.columns)[:200]
    if len(df) == 0:
        raise InputError(f"{path.name}: sheet {chosen!r} has no data rows (expected a header row followed by data rows)")
    return RawTable(frame=df, how=f"sheet {chosen!r} of an Excel workbook", header=header)


def read_cells(path: Path, options: ReadOptions | None = None) -> RawTable:
    """Read ``path`` (CSV, gzip CSV or ``.xlsx``) into text cells, decimal marks untouched (see
    :func:`apply_decimal`). Raises :class:`InputError`."""
    options = options or ReadOptions()
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if not path.is_file():
        raise InputError(f"{path}: not a file (expected a CSV, gzip CSV or .xlsx file)")
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise InputError(f"{path.name}: old Excel .xls workbooks are not read; save it as .xlsx or CSV")
    if suffix in EXCEL_SUFFIXES:
        table = _read_excel(path, options.sheet)
    else:
        if options.sheet is not None:
            raise InputError(f"{path.name}: --sheet applies to Excel workbooks (.xlsx), not to a text file")
        table = _read_text(path, options)
    return table


def _read_text(path: Path, options: ReadOptions) -> RawTable:
    compression = "gzip" if _is_gzip(path) else None
    sample, encoding = _sample_text(path, compression)
    lines = [ln for ln in sample.splitlines() if ln.strip()]
    if not lines:
        raise InputError(f"{path.name}: file is empty (expected a CSV header line and data rows)")
    header = lines[0]
    sep = options.sep or detect_delimiter(header)
    try:
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_filter=False,
                         compression=compression, encoding=encoding)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path.name}: file is empty (expected a CSV header line and data rows)") from None
    except pd.errors.ParserError as e:
        raise InputError(f"{path.name}: not a valid {DELIMITER_NAMES[sep]}-separated file ({e}); "
                         f"header line: {header[:200]!r}") from None
    except UnicodeDecodeError:
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_filter=False,
                         compression=compression, encoding="latin-1")
    except (gzip.BadGzipFile, zlib.error, EOFError, OSError) as e:
        raise InputError(f"{path.name}: cannot read gzip CSV ({e})") from None
    df.columns = [str(c).strip() for c in df.columns]
    if len(df) == 0:
        raise InputError(f"{path.name}: no data rows (expected a header line followed by data rows)")
    how = f"{DELIMITER_NAMES[sep]}-separated" + ("" if options.sep else " (detected)")
    return RawTable(frame=df, how=how, header=header[:200])


def apply_decimal(table: RawTable, options: ReadOptions, skip: set[str]) -> RawTable:
    """Decimal commas -> points in every column outside ``skip`` (time, site) when ``--decimal ,``
    was given, or when detected (never in a comma-separated file, which cannot hold unquoted
    decimal commas)."""
    keep = {c for c in skip if c in table.frame.columns}
    if options.decimal == ",":
        return RawTable(decimal_comma_to_point(table.frame, keep), table.how + ", decimal comma", table.header)
    if options.decimal is not None or table.how.startswith("comma"):
        return table
    if detect_decimal(table.frame, keep) == ",":
        return RawTable(decimal_comma_to_point(table.frame, keep), table.how + ", decimal comma (detected)",
                        table.header)
    return table
