"""wq_pipeline.data.reading: station files as agencies export them. Semicolon, tab, decimal-comma and
Excel copies of the real Sapelo file give the same QC'd series as the original."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wq_pipeline.cli import main
from wq_pipeline.config import ReadOptions
from wq_pipeline.errors import InputError
from wq_pipeline.data.load import load_table
from wq_pipeline.data.station import load_station

SAPELO = "nerr_sapelo_deancreek_2012.csv"


@pytest.fixture(scope="module")
def original(shared_data: Path):
    return load_station(shared_data / SAPELO, "DO_obs")


@pytest.fixture(scope="module")
def text(shared_data: Path) -> pd.DataFrame:
    return pd.read_csv(shared_data / SAPELO, dtype=str)


def same_series(a, b, rtol: float = 0.0) -> None:
    assert a.values.index.equals(b.values.index)
    np.testing.assert_allclose(a.values.to_numpy(), b.values.to_numpy(), rtol=rtol)
    np.testing.assert_array_equal(a.observed.to_numpy(), b.observed.to_numpy())
    assert a.frame.columns.tolist() == b.frame.columns.tolist()
    np.testing.assert_allclose(a.frame.to_numpy(), b.frame.to_numpy(), rtol=rtol)


@pytest.mark.parametrize("sep, decimal, expect", [
    (";", ".", "semicolon-separated (detected)"),
    ("\t", ".", "tab-separated (detected)"),
    (";", ",", "semicolon-separated (detected), decimal comma (detected)"),
    ("\t", ",", "tab-separated (detected), decimal comma (detected)"),
])
def test_delimiter_and_decimal_detected(tmp_path: Path, text, original, sep, decimal, expect) -> None:
    df = text.copy()
    if decimal == ",":
        value_cols = [c for c in df.columns if c != "DateTimeStamp"]
        df[value_cols] = df[value_cols].apply(lambda s: s.str.replace(".", ",", regex=False))
        assert df["DO_obs"].str.contains(",").any()
    p = tmp_path / "copy.txt"
    df.to_csv(p, sep=sep, index=False)
    got = load_station(p, "DO_obs")
    same_series(got, original)
    assert got.summary["read_as"] == expect
    assert any(r == f"file read as {expect}" for r in got.summary["rules"])
    # the same with the options given explicitly
    same_series(load_station(p, "DO_obs", read=ReadOptions(sep=sep, decimal=decimal)), original)


def test_xlsx_copy_and_sheet_choice(tmp_path: Path, text, shared_data: Path) -> None:
    head = text.iloc[:1500]
    p = tmp_path / "station.xlsx"
    numeric = head.drop(columns=["DateTimeStamp"]).astype(float)
    with pd.ExcelWriter(p, engine="openpyxl") as xl:
        pd.DataFrame({"note": ["exported by the agency portal"]}).to_excel(xl, sheet_name="About", index=False)
        pd.concat([head[["DateTimeStamp"]], numeric], axis=1).to_excel(xl, sheet_name="Data", index=False)
    csv = tmp_path / "head.csv"
    head.to_csv(csv, index=False)
    want = load_station(csv, "DO_obs")
    got = load_station(p, "DO_obs", read=ReadOptions(sheet="Data"))
    same_series(got, want, rtol=1e-14)  # Excel stores doubles to 15-17 significant digits
    assert got.summary["read_as"] == "sheet 'Data' of an Excel workbook"
    same_series(load_station(p, "DO_obs", read=ReadOptions(sheet="2")), want, rtol=1e-14)
    with pytest.raises(InputError, match=r"station.xlsx: no sheet 'Readings' .*sheets: 'About', 'Data'"):
        load_table(p, read=ReadOptions(sheet="Readings"))
    with pytest.raises(InputError, match=r"station.xlsx: no time column found.*read as sheet 'About'"):
        load_table(p)  # the first sheet holds no data
    with pytest.raises(InputError, match=r"head.csv: --sheet applies to Excel workbooks"):
        load_table(csv, read=ReadOptions(sheet="Data"))
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a zip file")
    with pytest.raises(InputError, match=r"broken.xlsx: cannot read the Excel workbook"):
        load_table(broken)


def test_unreadable_file_names_delimiter_and_header(tmp_path: Path, text) -> None:
    p = tmp_path / "odd.csv"
    text.iloc[:50].to_csv(p, sep=";", index=False)
    with pytest.raises(InputError) as e:
        load_table(p, read=ReadOptions(sep=","))  # the user forced the wrong delimiter
    msg = str(e.value)
    assert msg.startswith("odd.csv: no time column found")
    assert "read as comma-separated;" in msg and "header line: 'DateTimeStamp;Temp;Sal;DO_obs" in msg


@pytest.mark.parametrize("args, needle", [
    (["--tz", "Mars/Olympus"], "--tz: Value error, unknown time zone 'Mars/Olympus'"),
    (["--sep", "#"], "--sep: Value error, expected one of"),
    (["--time-format", "dd/mm/yyyy"], "--time-format: Value error, expected a strptime format"),
])
def test_bad_read_options_exit_2(capsys, tmp_path: Path, shared_data: Path, args, needle) -> None:
    out = tmp_path / "out"
    rc = main(["evaluate", "--data", str(shared_data / SAPELO), "--target", "DO_obs", *args, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and "Traceback" not in err, err
    assert not out.exists()
