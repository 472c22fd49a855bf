"""wq_pipeline.data.qc: duplicates, NERRS flags, physical ranges, regular grid, gaps (real + synthetic data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from wq_pipeline.config import QCConfig
from wq_pipeline.errors import InputError
from wq_pipeline.data.load import load_table
from wq_pipeline.data.station import load_station
from wq_pipeline.data.qc import StationSeries, flag_codes, run_qc, short_gap_mask

SAPELO = "nerr_sapelo_deancreek_2012.csv"
APALACH = "nerr_apalachicola_catpoint_2012_2013.csv.gz"
GRANDBAY = "nerr_grandbay_gndbl_2021_cdmo_export.csv"
NEON = "neon_streams_15min_2018_2019.csv.gz"

SUMMARY_KEYS = {
    "rows_read", "rows_site", "duplicates_exact", "duplicates_conflicting", "flagged_rejected",
    "flagged_suspect", "out_of_range", "spike_guarded", "grid_points", "observed", "interpolated", "missing",
    "longest_gap_steps", "rules",
}


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def series_csv(tmp_path: Path, name: str, values: list, *, step_min: int = 15, col: str = "DO",
               extra: dict[str, list] | None = None) -> Path:
    """Wide CSV with a naive ISO time column every step_min minutes from 2020-01-01 00:00."""
    t = pd.date_range("2020-01-01", periods=len(values), freq=f"{step_min}min")
    df = pd.DataFrame({"time": t.strftime("%Y-%m-%d %H:%M"), col: values, **(extra or {})})
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


def check_consistent(s: StationSeries) -> None:
    """Invariants every StationSeries must satisfy."""
    idx = s.values.index
    for other in (s.observed, s.interpolated, s.raw, s.removed):
        assert other.index.equals(idx)
    assert s.frame.index.equals(idx)
    assert idx.is_monotonic_increasing and idx.is_unique
    assert (np.diff(idx.asi8) == pd.Timedelta(s.freq).value).all()
    assert not (s.observed & s.interpolated).any()
    assert (s.values.notna() == (s.observed | s.interpolated)).all()
    assert SUMMARY_KEYS <= set(s.summary)
    json.dumps(s.summary)
    assert s.summary["grid_points"] == len(idx)
    assert s.summary["observed"] == int(s.observed.sum())
    assert s.summary["interpolated"] == int(s.interpolated.sum())
    assert s.summary["missing"] == int(s.values.isna().sum())
    assert set(s.removed.unique()) <= {"", "flag_rejected", "flag_suspect", "out_of_range", "spike"}


# --------------------------------------------------------------------------- real files


@pytest.fixture(scope="module")
def sapelo_native(shared_data: Path) -> StationSeries:
    return load_station(shared_data / SAPELO, "DO_obs")


@pytest.fixture(scope="module")
def sapelo_hourly(shared_data: Path) -> StationSeries:
    return load_station(shared_data / SAPELO, "DO_obs", freq="1h")


@pytest.fixture(scope="module")
def apalach(shared_data: Path) -> StationSeries:
    return load_station(shared_data / APALACH, "do_mgl")


@pytest.fixture(scope="module")
def apalach_raw(shared_data: Path) -> pd.DataFrame:
    return pd.read_csv(shared_data / APALACH)


def test_sapelo_native_grid(sapelo_native: StationSeries) -> None:
    s = sapelo_native
    check_consistent(s)
    assert s.freq == "30min" and s.site is None and s.target == "DO_obs" and s.unit == "mg/L"
    assert len(s.values) == 17568
    assert s.values.index[0] == pd.Timestamp("2012-01-01 00:00", tz="-05:00")
    assert s.values.index[-1] == pd.Timestamp("2012-12-31 23:30", tz="-05:00")
    assert 0.2 <= s.values.min() < 1.0 and 9.0 < s.values.max() <= 10.0
    assert s.summary["rows_read"] == 17568 and s.summary["duplicates_exact"] == 0
    assert {"Temp", "Sal", "ATemp", "BP", "WSpd", "Tide", "DO_obs"} <= set(s.frame.columns)
    assert s.removed.eq("").all()


def test_sapelo_hourly_right_closed_mean(shared_data: Path, sapelo_hourly: StationSeries) -> None:
    s = sapelo_hourly
    check_consistent(s)
    assert s.freq == "1h" and len(s.values) == 8784
    assert s.values.index[0] == pd.Timestamp("2012-01-01 00:00", tz="-05:00")
    assert s.values.index[-1] == pd.Timestamp("2012-12-31 23:00", tz="-05:00")
    raw = pd.read_csv(shared_data / SAPELO, nrows=6)
    do = raw["DO_obs"].to_numpy()  # 00:00, 00:30, 01:00, 01:30, 02:00, 02:30
    assert s.values.iloc[0] == pytest.approx(do[0])  # bin (23:00, 00:00] holds only 00:00
    assert s.values.iloc[1] == pytest.approx((do[1] + do[2]) / 2)  # 01:00 <- 00:30, 01:00
    assert s.values.iloc[2] == pytest.approx((do[3] + do[4]) / 2)  # 02:00 <- 01:30, 02:00
    assert s.values.iloc[1] != pytest.approx((do[2] + do[3]) / 2)  # never a reading after 01:00
    # the 23:30 reading would be labelled 2013-01-01 00:00, past the data: dropped, counted
    assert s.summary["rows_beyond_grid"] == 1
    assert s.frame["Temp"].iloc[1] == pytest.approx(raw["Temp"].iloc[1:3].mean())


def test_apalachicola_flags_removed(apalach: StationSeries, apalach_raw: pd.DataFrame) -> None:
    s, a = apalach, apalach_raw
    check_consistent(s)
    assert s.freq == "15min" and len(s.values) == 70176
    flag = a["f_do_mgl"].astype(str).str.strip()
    direct = int((flag.str.startswith("<-3>") & a["do_mgl"].notna()).sum())
    assert direct > 7000
    assert s.summary["flagged_rejected"] == direct
    assert 0.09 < direct / len(a) < 0.13  # README: ~11% of DO flagged <-3>
    assert int((s.removed == "flag_rejected").sum()) == direct  # native grid: one reading per point
    assert s.summary["flagged_suspect"] == int((flag.str.startswith("<1>") & a["do_mgl"].notna()).sum())
    # flagged readings are gone from values, still visible in raw
    bad = (flag.str.startswith("<-3>") & a["do_mgl"].notna()).to_numpy()
    assert s.observed.to_numpy()[bad].sum() == 0
    assert np.allclose(s.raw.to_numpy()[bad], a["do_mgl"].to_numpy()[bad])
    assert 0.0 <= s.values.min() and s.values.max() < 15.0
    # covariates: temp stuck at 50.0 (flagged) gone, pH stuck at 14.0 gone
    assert int((a["temp"] == 50.0).sum()) > 700
    assert not (s.frame["temp"] == 50.0).any() and s.frame["temp"].max() < 40.0
    assert s.frame["ph"].max() < 14.0
    assert "chlfluor" not in s.frame.columns  # empty column dropped


def test_apalachicola_drop_suspect(shared_data: Path, apalach: StationSeries) -> None:
    s = load_station(shared_data / APALACH, "do_mgl", qc=QCConfig(drop_suspect=True, max_gap=0))
    n_sus = s.summary["flagged_suspect"]
    assert n_sus > 0
    assert int((s.removed == "flag_suspect").sum()) == n_sus
    # native grid, one reading per point: what passes flags and ranges is either observed or spike-guarded
    # (dropping the suspect readings changes the guard's history, so compare the sums)
    passed = s.summary["observed"] + s.summary["spike_guarded"]
    assert passed == apalach.summary["observed"] + apalach.summary["spike_guarded"] - n_sus
    assert s.summary["interpolated"] == 0


def test_grandbay_cdmo_export(shared_data: Path) -> None:
    s = load_station(shared_data / GRANDBAY, "DO_mgl")
    check_consistent(s)
    assert s.site == "gndblwq" and s.freq == "15min" and len(s.values) == 5856
    assert s.values.index[0] == pd.Timestamp("2021-07-02 00:00", tz="UTC")
    assert 1.0 <= s.values.min() < 2.0 and 9.5 < s.values.max() <= 10.0
    assert s.summary["missing"] >= 521  # 8.9% of rows are <-2> missing
    assert "isSWMP" not in s.frame.columns and "Historical" not in s.frame.columns
    assert not any(c.lower().startswith("f_") for c in s.frame.columns)


def test_neon_arik_irregular_axis(shared_data: Path) -> None:
    s = load_station(shared_data / NEON, "dissolved_oxygen", site="ARIK")
    check_consistent(s)
    assert s.site == "ARIK" and s.freq == "15min" and s.summary["native_step"] == "15min"
    first, last = pd.Timestamp("2018-11-16 18:15", tz="UTC"), pd.Timestamp("2019-12-31 23:45", tz="UTC")
    assert s.values.index[0] == first and s.values.index[-1] == last
    assert len(s.values) == (last - first) // pd.Timedelta("15min") + 1
    # every reading lands on its own grid point: it is observed unless the causal spike guard removed it
    assert s.summary["rows_site"] == s.summary["observed"] + s.summary["spike_guarded"] == 16243
    assert s.summary["longest_gap_steps"] > 30 * 96  # winter gap of more than a month stays NaN
    assert s.summary["interpolated"] > 0  # 30-60 min holes filled
    assert 0.5 < s.values.min() and s.values.max() < 13.0


# --------------------------------------------------------------------------- grid and gaps (synthetic)


def test_gap_interpolation_fills_short_leaves_long(tmp_path: Path) -> None:
    v = [np.nan, 1.0, 2.0, np.nan, np.nan, 5.0, 6.0, np.nan, np.nan, np.nan, np.nan, np.nan, 12.0, 13.0, np.nan]
    p = series_csv(tmp_path, "gaps.csv", v)
    s = load_station(p, "DO", qc=QCConfig(max_gap=3))
    check_consistent(s)
    out = s.values.to_numpy()
    assert out[3] == pytest.approx(3.0) and out[4] == pytest.approx(4.0)  # 2-step gap: linear
    assert np.isnan(out[7:12]).all()  # 5-step gap: entirely NaN (no partial fill)
    assert np.isnan(out[0]) and np.isnan(out[14])  # leading / trailing never filled
    assert s.interpolated.to_numpy().nonzero()[0].tolist() == [3, 4]
    assert s.summary["longest_gap_steps"] == 5
    assert s.summary["missing"] == 7
    s0 = load_station(p, "DO", qc=QCConfig(max_gap=0))
    assert s0.summary["interpolated"] == 0
    s5 = load_station(p, "DO", qc=QCConfig(max_gap=5))
    assert s5.values.iloc[7:12].tolist() == pytest.approx([7.0, 8.0, 9.0, 10.0, 11.0])


def test_short_gap_mask_edges() -> None:
    m = np.array([1, 0, 1, 1, 0, 1, 1, 1, 1, 0, 1], dtype=bool)
    assert short_gap_mask(m, 3).nonzero()[0].tolist() == [2, 3]
    assert not short_gap_mask(m, 0).any()


def test_irregular_timestamps_land_on_next_grid_point(tmp_path: Path) -> None:
    text = "time,DO\n2020-01-01 00:00,1\n2020-01-01 00:15,2\n2020-01-01 00:37,3\n2020-01-01 00:45,4\n2020-01-01 01:00,5\n"
    s = load_station(write(tmp_path, "irr.csv", text), "DO")
    assert s.freq == "15min"
    # 00:37 falls in (00:30, 00:45] together with 00:45; 00:30 has no reading -> interpolated
    assert s.values.tolist() == pytest.approx([1.0, 2.0, 2.75, 3.5, 5.0])
    assert s.interpolated.tolist() == [False, False, True, False, False]


def test_coarser_freq_aggregates_right_closed(tmp_path: Path) -> None:
    p = series_csv(tmp_path, "agg.csv", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])  # 00:00 .. 02:00
    s = load_station(p, "DO", freq="1h")
    assert s.values.index.tolist() == [pd.Timestamp("2020-01-01 00:00", tz="UTC"),
                                       pd.Timestamp("2020-01-01 01:00", tz="UTC"), pd.Timestamp("2020-01-01 02:00", tz="UTC")]
    assert s.values.tolist() == pytest.approx([1.0, 3.5, 7.5])  # (00:00,01:00] = 2,3,4,5


def test_freq_errors(tmp_path: Path) -> None:
    p = series_csv(tmp_path, "f.csv", [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(InputError, match=r"f.csv: freq '5min' is finer than the native time step 15min"):
        load_station(p, "DO", freq="5min")
    with pytest.raises(InputError, match=r"f.csv: freq 'MS' is not a fixed-length pandas offset alias"):
        load_station(p, "DO", freq="MS")
    with pytest.raises(InputError, match=r"f.csv: freq 'banana' is not a fixed-length"):
        load_station(p, "DO", freq="banana")


# --------------------------------------------------------------------------- duplicates (synthetic)


DUP_CSV = (
    "time,DO,Temp\n"
    "2020-01-01 00:00,1.0,10\n"
    "2020-01-01 00:30,3.0,10\n"   # out of order: sorted
    "2020-01-01 00:15,2.0,10\n"
    "2020-01-01 00:15,2.0,10\n"   # exact duplicate: dropped
    "2020-01-01 00:30,5.0,10\n"   # conflicting with the 3.0 row
    "2020-01-01 00:45,6.0,10\n"
)


def test_duplicates_last_rule(tmp_path: Path) -> None:
    s = load_station(write(tmp_path, "dup.csv", DUP_CSV), "DO")
    check_consistent(s)
    assert s.summary["duplicates_exact"] == 1
    assert s.summary["duplicates_conflicting"] == 1
    assert s.values.tolist() == pytest.approx([1.0, 2.0, 5.0, 6.0])  # last row in file order wins


def test_duplicates_mean_rule(tmp_path: Path) -> None:
    s = load_station(write(tmp_path, "dup.csv", DUP_CSV), "DO", qc=QCConfig(duplicate_rule="mean"))
    assert s.summary["duplicates_exact"] == 1 and s.summary["duplicates_conflicting"] == 1
    assert s.values.tolist() == pytest.approx([1.0, 2.0, 4.0, 6.0])


# --------------------------------------------------------------------------- flags and ranges (synthetic)


def test_flag_codes_parsing() -> None:
    col = pd.Series(["<0> ", "<1> [SDO] (CCU)", "<-3>", "<-2> [GSM]", "", " <3>", "-4", "junk"], dtype=object)
    codes = flag_codes(col)
    assert codes[:4].tolist() == [0, 1, -3, -2]
    assert np.isnan(codes[4]) and codes[5] == 3 and codes[6] == -4 and np.isnan(codes[7])


def test_flags_and_ranges_synthetic(tmp_path: Path) -> None:
    vals = [5.0, 6.0, 7.0, 30.0, 8.0, 9.0, 10.0, -1.0, 11.0]
    flags = ["<0>", "<-3> (CWD)", "<1> [SDO] (CCU)", "<0>", "<-5>", "<0> ", "<-4>", "<0>", "<-2>"]
    p = series_csv(tmp_path, "fl.csv", vals, col="DO_mgl", extra={"F_DO_mgl": flags})
    s = load_station(p, "do_mgl", qc=QCConfig(max_gap=0))  # target matched case-insensitively
    assert s.target == "DO_mgl" and s.unit == "mg/L"
    assert s.summary["flagged_rejected"] == 3  # -3, -5, -4 with a value present
    assert s.summary["flagged_missing"] == 1  # -2 with a value present
    assert s.summary["flagged_suspect"] == 1  # kept by default
    assert s.summary["out_of_range"] == 2  # 30 and -1 (outside 0-25 mg/L)
    assert s.removed.tolist() == ["", "flag_rejected", "", "out_of_range", "flag_rejected", "",
                                  "flag_rejected", "out_of_range", "flag_rejected"]
    assert s.values.dropna().tolist() == [5.0, 7.0, 9.0]
    assert s.raw.tolist() == vals
    s2 = load_station(p, "DO_mgl", qc=QCConfig(drop_suspect=True, max_gap=0, ranges={"do_mgl": (-5, 40)}))
    assert s2.removed.iloc[2] == "flag_suspect"
    assert s2.summary["out_of_range"] == 0
    assert s2.values.dropna().tolist() == [5.0, 30.0, 9.0, -1.0]


def test_flags_applied_before_aggregation(tmp_path: Path) -> None:
    vals = [1.0, 2.0, 100.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    flags = ["<0>", "<0>", "<-3>", "<0>", "<0>", "<0>", "<0>", "<0>", "<0>"]
    p = series_csv(tmp_path, "agg_fl.csv", vals, extra={"f_DO": flags})
    s = load_station(p, "DO", freq="1h")
    assert s.values.iloc[1] == pytest.approx((2.0 + 3.0 + 4.0) / 3)  # 100 removed before the mean
    assert s.raw.iloc[1] == pytest.approx((2.0 + 100.0 + 3.0 + 4.0) / 4)
    assert s.removed.eq("").all()  # some readings of the bin survived


# --------------------------------------------------------------------------- target errors


def test_unknown_target_lists_columns(tmp_path: Path) -> None:
    p = series_csv(tmp_path, "nerr.csv", [1.0, 2.0], extra={"Temp": [1, 2]})
    with pytest.raises(InputError) as e:
        load_station(p, "DO_obs")
    assert str(e.value) == ("nerr.csv: column 'DO_obs' not found; available columns: time, DO, Temp (read as "
                            "comma-separated (detected); header line: 'time,DO,Temp'; see --sep, --decimal, --sheet)")


def test_time_column_as_target(tmp_path: Path) -> None:
    p = series_csv(tmp_path, "tt.csv", [1.0, 2.0])
    with pytest.raises(InputError, match=r"tt.csv: column 'time' is the time or site column"):
        load_station(p, "time")


def test_non_numeric_target_reports_row_and_value(tmp_path: Path) -> None:
    p = series_csv(tmp_path, "nn.csv", ["1.0", "NA", "", "2.5", "abc", "3"])
    with pytest.raises(InputError) as e:
        load_station(p, "DO")
    assert str(e.value) == (
        "nn.csv: row 5 (line 6), column 'DO': value 'abc' is not a number (expected a number or a blank / NA cell)"
    )


def test_all_missing_target(tmp_path: Path) -> None:
    p = series_csv(tmp_path, "empty_do.csv", [np.nan, np.nan, np.nan], extra={"Temp": [1, 2, 3]})
    with pytest.raises(InputError, match=r"empty_do.csv: column 'DO' has no values"):
        load_station(p, "DO")


def test_all_removed_by_qc(tmp_path: Path) -> None:
    p = series_csv(tmp_path, "allbad.csv", [1.0, 2.0, 3.0], extra={"f_DO": ["<-3>", "<-3>", "<-3>"]})
    with pytest.raises(InputError, match=r"allbad.csv: column 'DO': every value was removed by QC \(flag-rejected 3"):
        load_station(p, "DO")


def test_constant_target_after_qc(tmp_path: Path) -> None:
    p = series_csv(tmp_path, "const.csv", [4.0, 4.0, 99.0, 4.0])  # 99 out of range -> constant 4
    with pytest.raises(InputError, match=r"const.csv: column 'DO' is constant after QC \(every value = 4\)"):
        load_station(p, "DO")


def test_single_timestamp(tmp_path: Path) -> None:
    p = write(tmp_path, "one.csv", "time,DO\n2020-01-01 00:00,1\n2020-01-01 00:00,2\n")
    with pytest.raises(InputError, match=r"one.csv: only one distinct timestamp"):
        load_station(p, "DO")


def test_run_qc_on_loaded_table_matches_load_station(tmp_path: Path) -> None:
    p = series_csv(tmp_path, "same.csv", [1.0, 2.0, np.nan, 4.0])
    a = run_qc(load_table(p), "DO", freq=None, qc=QCConfig())
    b = load_station(p, "DO")
    pd.testing.assert_series_equal(a.values, b.values)
    assert a.values.tolist() == pytest.approx([1.0, 2.0, 3.0, 4.0])


# --------------------------------------------------------------------------- config


def test_qcconfig_validation() -> None:
    assert QCConfig().model_dump() == {
        "drop_suspect": False, "max_gap": 3, "ranges": None, "duplicate_rule": "last",
        "spike_guard": {"enabled": True, "threshold": 6.0, "window": 32, "min_history": 8, "max_run": 4,
                        "reset_after_hours": 36.0, "columns": {}},
    }
    with pytest.raises(ValidationError):
        QCConfig(max_gap=-1)
    with pytest.raises(ValidationError):
        QCConfig(unknown=1)
    with pytest.raises(ValidationError):
        QCConfig(duplicate_rule="first")
    with pytest.raises(ValidationError):
        QCConfig(ranges={"DO": (5.0, 1.0)})
    assert QCConfig(ranges={"DO": [0, 20]}).ranges == {"DO": (0.0, 20.0)}
