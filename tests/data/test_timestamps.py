"""wq_pipeline.data.timestamps: timestamps as stations export them, on the real Sapelo file rewritten
into other formats. Every rewrite must give the same instants as the original (which carries a
fixed -05:00 offset), or a clear error."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from wq_pipeline.cli import main
from wq_pipeline.config import ReadOptions
from wq_pipeline.errors import InputError
from wq_pipeline.data.load import load_table
from wq_pipeline.data.station import load_station

SAPELO = "nerr_sapelo_deancreek_2012.csv"


@pytest.fixture(scope="module")
def sapelo(shared_data: Path) -> pd.DataFrame:
    """The real file as text, and its instants in UTC (column ``utc``)."""
    df = pd.read_csv(shared_data / SAPELO, dtype=str)
    df["utc"] = pd.to_datetime(df["DateTimeStamp"], utc=True)
    return df


def rewrite(tmp_path: Path, df: pd.DataFrame, name: str, stamps: pd.Series) -> Path:
    out = df.drop(columns=["utc"]).assign(DateTimeStamp=stamps.to_numpy())
    p = tmp_path / name
    out.to_csv(p, index=False)
    return p


def instants(p: Path, **read) -> pd.DatetimeIndex:
    return load_table(p, read=ReadOptions(**read)).frame.index.tz_convert("UTC")


def test_year_month_day_with_slashes(tmp_path: Path, sapelo: pd.DataFrame, shared_data: Path) -> None:
    local = sapelo["utc"].dt.tz_convert("Etc/GMT+5")  # the file's own -05:00 clock
    text = local.dt.year.astype(str) + "/" + local.dt.month.astype(str) + "/" + local.dt.day.astype(str) + " " + \
        local.dt.strftime("%H:%M") + "-0500"
    p = rewrite(tmp_path, sapelo, "ymd.csv", text)
    got = load_table(p)
    assert got.frame.index.equals(load_table(shared_data / SAPELO).frame.index)
    assert got.frame.index[0].utcoffset() == pd.Timedelta(hours=-5)
    assert "year/month/day" in got.time_rule


def test_day_month_year_with_time_format(tmp_path: Path, sapelo: pd.DataFrame) -> None:
    local = sapelo["utc"].dt.tz_convert("Etc/GMT+5").dt.tz_localize(None)
    p = rewrite(tmp_path, sapelo, "dmy.csv", local.dt.strftime("%d.%m.%Y %H:%M"))
    got = instants(p, time_format="%d.%m.%Y %H:%M", tz="Etc/GMT+5")
    assert (got == pd.DatetimeIndex(sapelo["utc"])).all()
    # without the format the order is read from the data: days above 12 mean day first
    assert (instants(p, tz="Etc/GMT+5") == pd.DatetimeIndex(sapelo["utc"])).all()
    # a format that does not fit names the row and the format
    with pytest.raises(InputError, match=r"dmy.csv: row 1 \(line 2\), column 'DateTimeStamp': cannot parse timestamp "
                       r"'01.01.2012 00:00' with --time-format '%m/%d/%Y %H:%M'"):
        instants(p, time_format="%m/%d/%Y %H:%M")


def test_ambiguous_day_month_order_exits_2(tmp_path: Path, sapelo: pd.DataFrame, capsys) -> None:
    first_days = sapelo.iloc[:12 * 48]  # 1-12 January: no field above 12
    local = first_days["utc"].dt.tz_convert("Etc/GMT+5").dt.tz_localize(None)
    p = rewrite(tmp_path, first_days, "ambiguous.csv", local.dt.strftime("%d/%m/%Y %H:%M"))
    with pytest.raises(InputError, match="ambiguous: no day above 12 in any row; pass --time-format"):
        load_table(p)
    out = tmp_path / "out"
    rc = main(["evaluate", "--data", str(p), "--target", "DO_obs", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "--time-format" in err and "Traceback" not in err, err
    assert not out.exists()
    # the explicit format settles it
    got = instants(p, time_format="%d/%m/%Y %H:%M", tz="Etc/GMT+5")
    assert (got == pd.DatetimeIndex(first_days["utc"])).all()


def test_naive_times_with_and_without_tz(tmp_path: Path, sapelo: pd.DataFrame) -> None:
    kolkata = sapelo["utc"].dt.tz_convert("Asia/Kolkata").dt.tz_localize(None)
    p = rewrite(tmp_path, sapelo, "naive.csv", kolkata.dt.strftime("%Y-%m-%d %H:%M"))
    t = load_table(p, read=ReadOptions(tz="Asia/Kolkata"))
    assert (t.frame.index.tz_convert("UTC") == pd.DatetimeIndex(sapelo["utc"])).all()
    assert t.frame.index[0].utcoffset() == pd.Timedelta(hours=5, minutes=30)  # one offset throughout: kept
    assert "local times of Asia/Kolkata" in t.time_rule
    # without --tz the same text is read as UTC, and the QC summary says so
    s = load_station(p, "DO_obs")
    assert s.values.index.tz is not None and str(s.values.index.tz) == "UTC"
    assert s.values.index[0] == pd.Timestamp(kolkata.iloc[0], tz="UTC")
    assert "read as UTC (no --tz given)" in s.summary["timestamps"]
    assert any("read as UTC" in r for r in s.summary["rules"])


def test_dst_zone_repeated_and_skipped_times(tmp_path: Path, sapelo: pd.DataFrame) -> None:
    ny = sapelo["utc"].dt.tz_convert("America/New_York").dt.tz_localize(None).dt.strftime("%Y-%m-%d %H:%M")
    # the fall-back hour 01:00-01:59 on 4 Nov 2012 appears twice in the wall-clock column
    assert (ny == "2012-11-04 01:30").sum() == 2
    # one logger line at a time the spring-forward change skips (02:30 on 11 Mar 2012 does not exist)
    extra = sapelo.iloc[[0]].assign(utc=pd.NaT)
    df = pd.concat([sapelo, extra], ignore_index=True)
    stamps = pd.concat([ny, pd.Series(["2012-03-11 02:30"])], ignore_index=True)
    p = rewrite(tmp_path, df, "ny.csv", stamps)
    t = load_table(p, read=ReadOptions(tz="America/New_York"))
    assert t.time_dropped == 1
    assert (t.frame.index == pd.DatetimeIndex(sapelo["utc"])).all()  # every real reading at its true instant
    assert str(t.frame.index.tz) == "UTC"
    assert "4 readings in the hour repeated" in t.time_rule  # 01:00 and 01:30, twice each
    assert "1 readings at local times skipped" in t.time_rule and "row 17569" in t.time_rule
    s = load_station(p, "DO_obs", read=ReadOptions(tz="America/New_York"))
    assert s.summary["time_dropped"] == 1
    # a repeated time seen once only cannot be placed: dropped and counted, not shifted
    once = df.drop(index=ny.index[ny == "2012-11-04 01:30"][1])
    stamps_once = stamps.drop(index=ny.index[ny == "2012-11-04 01:30"][1])
    q = rewrite(tmp_path, once, "once.csv", stamps_once)
    t = load_table(q, read=ReadOptions(tz="America/New_York"))
    assert t.time_dropped == 2 and "seen once only dropped" in t.time_rule
