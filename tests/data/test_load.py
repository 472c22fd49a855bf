"""wq_pipeline.data.load: reading CSV / gzip CSV, time column, timestamps, sites, input errors."""

from __future__ import annotations

import gzip
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wq_pipeline.errors import InputError
from wq_pipeline.data.load import load_table
from wq_pipeline.data.station import load_station

SAPELO = "nerr_sapelo_deancreek_2012.csv"
APALACH = "nerr_apalachicola_catpoint_2012_2013.csv.gz"
GRANDBAY = "nerr_grandbay_gndbl_2021_cdmo_export.csv"
NEON = "neon_streams_15min_2018_2019.csv.gz"


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# --------------------------------------------------------------------------- real files


def test_sapelo_table_fixed_offset_kept(shared_data: Path) -> None:
    t = load_table(shared_data / SAPELO)
    assert t.time_col == "DateTimeStamp" and t.site is None and t.site_col is None
    assert t.rows_read == len(t.frame) == 17568
    assert t.frame.index.name == "time"
    assert t.frame.index.tz is not None
    assert t.frame.index[0].utcoffset() == timedelta(hours=-5)
    assert t.frame.index[0] == pd.Timestamp("2012-01-01 05:00", tz="UTC")
    assert t.frame["DO_obs"].dtype == np.float64
    assert list(t.source_rows[:3]) == [0, 1, 2]


def test_grandbay_cdmo_export_times_and_padded_site(shared_data: Path) -> None:
    t = load_table(shared_data / GRANDBAY)
    assert t.site_col == "StationCode" and t.site == "gndblwq"  # 'gndblwq   ' stripped
    assert t.time_col == "DateTimeStamp"
    assert str(t.frame.index.tz) == "UTC"  # M/D/YYYY H:MM without offset and no tz -> read as UTC
    assert t.frame.index[0] == pd.Timestamp("2021-07-02 00:00", tz="UTC")
    assert t.frame.index[-1] == pd.Timestamp("2021-08-31 23:45", tz="UTC")
    assert "month/day/year" in t.time_rule and "read as UTC (no --tz given)" in t.time_rule
    assert t.frame["DO_mgl"].dtype == np.float64
    assert t.frame["F_DO_mgl"].dtype == object  # flags stay text
    assert "StationCode" not in t.frame.columns and "DateTimeStamp" not in t.frame.columns
    # explicit site with different padding / case works too
    assert load_table(shared_data / GRANDBAY, site=" GNDBLWQ").site == "gndblwq"


def test_apalachicola_gzip_lowercase_time_column(shared_data: Path) -> None:
    t = load_table(shared_data / APALACH)
    assert t.time_col == "datetimestamp"
    assert t.rows_read == 70176
    assert t.frame["do_mgl"].dtype == np.float64


def test_neon_long_format_needs_site(shared_data: Path) -> None:
    with pytest.raises(InputError) as e:
        load_table(shared_data / NEON)
    msg = str(e.value)
    assert NEON in msg and "siteID" in msg
    for s in ("ARIK", "CARI", "LEWI"):
        assert s in msg


def test_neon_site_selected_and_unknown_site(shared_data: Path) -> None:
    t = load_table(shared_data / NEON, site="ARIK")
    assert t.site == "ARIK" and t.site_col == "siteID"
    assert t.rows_read == 43215 and len(t.frame) == 16243
    assert str(t.frame.index.tz) == "UTC"
    with pytest.raises(InputError) as e:
        load_table(shared_data / NEON, site="KING")
    msg = str(e.value)
    assert NEON in msg and "'KING'" in msg and "ARIK" in msg and "LEWI" in msg


# --------------------------------------------------------------------------- formats


def test_gzip_detected_by_content_without_suffix(tmp_path: Path) -> None:
    p = tmp_path / "plain_name.csv"
    p.write_bytes(gzip.compress(b"time,DO\n2020-01-01 00:00,5\n2020-01-01 01:00,6\n"))
    t = load_table(p)
    assert t.frame["DO"].tolist() == [5.0, 6.0]


def test_identical_offsets_kept_and_mixed_offsets_converted_to_utc(tmp_path: Path) -> None:
    same = write(tmp_path, "same.csv", "timestamp,x\n2020-03-01T00:00:00+01:00,1\n2020-03-01T01:00:00+01:00,2\n")
    t = load_table(same)
    assert t.frame.index[0].utcoffset() == timedelta(hours=1)
    mixed = write(tmp_path, "mixed.csv", "timestamp,x\n2020-03-28T23:00:00+01:00,1\n2020-03-29T01:00:00+0200,2\n")
    t = load_table(mixed)
    assert str(t.frame.index.tz) == "UTC"
    assert list(t.frame.index) == [pd.Timestamp("2020-03-28 22:00", tz="UTC"), pd.Timestamp("2020-03-28 23:00", tz="UTC")]
    z = write(tmp_path, "z.csv", "datetime,x\n2020-01-01T00:00Z,1\n2020-01-01T00:15Z,2\n")
    assert str(load_table(z).frame.index.tz) == "UTC"


def test_mdy_with_seconds_and_explicit_time_col(tmp_path: Path) -> None:
    p = write(tmp_path, "m.csv", "when,date,x\n1/2/2021 3:04:05,ignored,1\n12/31/2021 23:45,ignored,2\n")
    t = load_table(p, time_col="WHEN")  # case-insensitive match
    assert t.time_col == "when"
    assert list(t.frame.index) == [pd.Timestamp("2021-01-02 03:04:05", tz="UTC"), pd.Timestamp("2021-12-31 23:45", tz="UTC")]


# --------------------------------------------------------------------------- input errors


def test_missing_file_names_path(tmp_path: Path) -> None:
    p = tmp_path / "nope.csv"
    with pytest.raises(InputError, match="nope.csv: file not found"):
        load_table(p)


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty.csv: file is empty"):
        load_table(write(tmp_path, "empty.csv", ""))
    with pytest.raises(InputError, match="header.csv: no data rows"):
        load_table(write(tmp_path, "header.csv", "time,DO\n"))


def test_no_time_column_lists_columns(tmp_path: Path) -> None:
    p = write(tmp_path, "notime.csv", "when,DO,Temp\n2020-01-01,5,10\n")
    with pytest.raises(InputError) as e:
        load_table(p)
    msg = str(e.value)
    assert msg.startswith("notime.csv: no time column found")
    assert "when, DO, Temp" in msg and "DateTimeStamp" in msg


def test_given_time_column_not_found(tmp_path: Path) -> None:
    p = write(tmp_path, "t.csv", "time,DO\n2020-01-01,5\n")
    with pytest.raises(InputError, match=r"t.csv: time column 'stamp' not found; available columns: time, DO"):
        load_table(p, time_col="stamp")


def test_unparseable_timestamp_reports_row_line_and_value(tmp_path: Path) -> None:
    rows = "".join(f"2020-01-01T{h:02d}:00:00,{h}\n" for h in range(16)) + "abc,99\n"
    p = write(tmp_path, "x.csv", "DateTimeStamp,DO\n" + rows)
    with pytest.raises(InputError) as e:
        load_table(p)
    assert str(e.value) == (
        "x.csv: row 17 (line 18), column 'DateTimeStamp': cannot parse timestamp 'abc' "
        "(expected ISO 8601, Y/M/D, D/M/Y or M/D/Y dates with an optional time, or pass --time-format)"
    )


def test_mixed_day_month_order_and_empty_timestamp(tmp_path: Path) -> None:
    p = write(tmp_path, "cdmo.csv", "DateTimeStamp,DO\n7/14/2021 0:00,1\n13/2/2021 0:15,2\n")
    with pytest.raises(InputError, match=r"cdmo.csv: column 'DateTimeStamp' mixes day-first '13/2/2021 0:15' "
                       r"\(row 2 \(line 3\)\) and month-first '7/14/2021 0:00' \(row 1 \(line 2\)\)"):
        load_table(p)
    p = write(tmp_path, "blank.csv", "DateTimeStamp,DO\n7/2/2021 0:00,1\n ,2\n")
    with pytest.raises(InputError, match=r"blank.csv: row 2 \(line 3\), column 'DateTimeStamp': empty timestamp"):
        load_table(p)


def test_offset_on_some_rows_only(tmp_path: Path) -> None:
    p = write(tmp_path, "half.csv", "time,DO\n2020-01-01T00:00:00-05:00,1\n2020-01-01T01:00:00,2\n")
    with pytest.raises(InputError, match=r"half.csv: row 2 \(line 3\), column 'time': timestamp '2020-01-01T01:00:00' has no UTC offset"):
        load_table(p)


def test_site_errors_in_synthetic_long_file(tmp_path: Path) -> None:
    text = "station,time,DO\nA ,2020-01-01 00:00,1\nB,2020-01-01 00:00,2\nA,2020-01-01 00:15,3\n"
    p = write(tmp_path, "long.csv", text)
    with pytest.raises(InputError, match=r"long.csv: column 'station' holds 2 sites \('A', 'B'\)"):
        load_table(p)
    t = load_table(p, site="A")
    assert t.frame["DO"].tolist() == [1.0, 3.0]
    assert list(t.source_rows) == [0, 2]  # file data rows of the selected site
    with pytest.raises(InputError, match=r"long.csv: site column 'sid' not found; available columns: station, time, DO"):
        load_table(p, site_col="sid")
    wide = write(tmp_path, "wide.csv", "time,DO\n2020-01-01 00:00,1\n")
    with pytest.raises(InputError, match=r"wide.csv: site 'A' requested but the file has no site column"):
        load_table(wide, site="A")


def test_load_station_row_numbers_refer_to_file_lines_of_selected_site(tmp_path: Path) -> None:
    text = "site,time,DO\nB,2020-01-01 00:00,1\nA,2020-01-01 00:00,1\nB,2020-01-01 00:15,x\nA,2020-01-01 00:15,oops\n"
    p = write(tmp_path, "rows.csv", text)
    with pytest.raises(InputError) as e:
        load_station(p, "DO", site="A")
    assert str(e.value).startswith("rows.csv: row 4 (line 5), column 'DO': value 'oops' is not a number")
