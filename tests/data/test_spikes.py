"""wq_pipeline.data.spikes and its use in QC: the causal spike guard, on real series with glitches injected."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from wq_pipeline.cli import _config_from_args, build_parser, main
from wq_pipeline.config import QCConfig, SpikeGuardConfig
from wq_pipeline.data.load import load_table
from wq_pipeline.data.station import load_station
from wq_pipeline.data.qc import PHYSICAL_RANGES, UNITS, run_qc
from wq_pipeline.data.spikes import DEFAULT_LIMITS, SpikeParams, column_params, spike_guard

SAPELO = "nerr_sapelo_deancreek_2012.csv"
APALACH = "nerr_apalachicola_catpoint_2012_2013.csv.gz"
NEON = "neon_streams_15min_2018_2019.csv.gz"
DAILY = "neon_aquatics_daily_2020_2022.csv.gz"

DO = SpikeParams(floor=DEFAULT_LIMITS["do_obs"].floor, max_rate=DEFAULT_LIMITS["do_obs"].max_rate)


def times_ns(text: pd.Series) -> np.ndarray:
    """ISO 8601 strings (with offsets) -> int64 UTC nanoseconds, shape (n,)."""
    return pd.DatetimeIndex(pd.to_datetime(text, utc=True)).asi8


@pytest.fixture(scope="module")
def sapelo_frame(shared_data: Path) -> pd.DataFrame:
    return pd.read_csv(shared_data / SAPELO)


@pytest.fixture(scope="module")
def sapelo_do(sapelo_frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Sapelo 2012 DO_obs readings every 30 min (mg/L, 13 missing): (times_ns, values)."""
    return times_ns(sapelo_frame["DateTimeStamp"]), sapelo_frame["DO_obs"].to_numpy(float)


@pytest.fixture(scope="module")
def lewi_do(shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    """NEON LEWI dissolved oxygen (mg/L), 15 min with holes and gaps of months: (times_ns, values)."""
    df = pd.read_csv(shared_data / NEON)
    d = df[df["siteID"] == "LEWI"]
    return times_ns(d["datetime"]), d["dissolved_oxygen"].to_numpy(float)


def calm_positions(x: np.ndarray, start: int, step: int, span: int = 4, tol: float = 1.0) -> list[int]:
    """Positions every ``step`` from ``start`` with 20 readings before and ``span`` after present and
    the series within ``tol`` of the previous reading from ``2 * span`` readings before to ``span``
    readings after (no fast real change around it)."""
    out = []
    for i in range(start, len(x) - span - 1, step):
        if np.isnan(x[i - 20:i + span + 1]).any() or np.abs(x[i - 2 * span:i + span + 1] - x[i - 1]).max() > tol:
            continue
        out.append(i)
    return out


def inject(x: np.ndarray, positions: list[int], single: float = 4.0, run: float = 5.0, run_len: int = 2,
           mid: float = 5.5) -> tuple[np.ndarray, np.ndarray]:
    """Glitches at ``positions``: alternately one reading moved by ``single`` and ``run_len`` readings
    moved by ``run`` (upwards below ``mid``, downwards above). Returns (values, injected mask)."""
    y = x.copy()
    hit = np.zeros(len(x), dtype=bool)
    for k, i in enumerate(positions):
        size = single if k % 2 == 0 else run
        n = 1 if k % 2 == 0 else run_len
        y[i:i + n] = x[i:i + n] + (size if x[i] < mid else -size)
        hit[i:i + n] = True
    return y, hit


# --------------------------------------------------------------------------- the guard on real series


def test_clean_sapelo_do_has_nothing_guarded(sapelo_do) -> None:
    t, x = sapelo_do
    m = spike_guard(t, x, DO)
    assert m.shape == x.shape and m.dtype == bool
    assert int(m.sum()) == 0  # the clean series: fast tidal rises (up to 1.7 mg/L in 30 min) all accepted


def test_injected_glitches_guarded_and_neighbours_not(sapelo_do) -> None:
    t, x = sapelo_do
    pos = calm_positions(x, 400, 100)
    assert len(pos) == 22
    y, hit = inject(x, pos)  # single readings +-4 mg/L, 1-hour runs (2 readings) +-5 mg/L
    m = spike_guard(t, y, DO)
    assert m[hit].all()  # every injected reading
    assert not (m & ~hit).any()  # and nothing else: the readings around each glitch stay
    assert int(m.sum()) == int(hit.sum()) == (len(pos) + 1) // 2 + 2 * (len(pos) // 2)


def test_do_drop_of_one_hour_at_level_11_is_guarded(lewi_do) -> None:
    """The incident: DO about 11 mg/L, two readings fall to 3.3 and 6.5 mg/L (a glitch inside the
    physical range), then the level is back."""
    t, x = lewi_do
    i = next(j for j in calm_positions(x, 200, 50, tol=0.3) if abs(x[j] - 11.0) < 0.3)
    y = x.copy()
    y[i], y[i + 1] = 3.3, 6.5
    m = spike_guard(t, y, DO)
    assert m[i] and m[i + 1]
    assert not m[i - 20:i].any() and not m[i + 2:i + 40].any()


def test_level_shift_accepted_after_max_run(lewi_do) -> None:
    """A real, lasting move of the level (+3 mg/L from one reading on): the first max_run readings of
    the new level are guarded, then it is accepted and the guard works as before on it."""
    t, x = lewi_do
    base = spike_guard(t, x, DO)
    for p in (5000, 7000, 15000):
        y = x.copy()
        y[p:] += 3.0
        m = spike_guard(t, y, DO)
        assert m[p:p + 4].all() and not m[p + 4] and not m[p - 50:p].any()
        assert np.array_equal(m[p + 4:p + 1000], base[p + 4:p + 1000])
        m2 = spike_guard(t, y, SpikeParams(floor=1.5, max_rate=12.0, max_run=2))
        assert m2[p:p + 2].all() and not m2[p + 2:p + 6].any()


def test_no_decision_before_min_history_nor_right_after_a_long_gap(lewi_do) -> None:
    t, x = lewi_do
    gaps = np.flatnonzero(np.diff(t) > 36 * 3_600_000_000_000)  # LEWI has gaps of days to months
    g = int(gaps[gaps > 3000][0]) + 1  # first reading after a gap of more than 36 h
    assert np.diff(t)[g - 1] > 36 * 3_600_000_000_000
    for offset, guarded in ((3, False), (40, True)):  # 3rd reading of the new history: no decision yet
        y = x.copy()
        y[g + offset] += 5.0
        m = spike_guard(t, y, DO)
        assert bool(m[g + offset]) is guarded
    y = x.copy()
    y[5] += 5.0  # 6th reading of the file: fewer than min_history = 8 accepted readings
    assert not spike_guard(t, y, DO)[5]
    y[2000] += 5.0
    y[1990:1995] = np.nan  # no reading: never guarded, and the glitch after the hole still is
    m = spike_guard(t, y, DO)
    assert not m[1990:1995].any() and m[2000]


def test_floor_keeps_quantised_series_from_being_over_flagged(shared_data: Path) -> None:
    """Apalachicola pH (2013) is quantised to 0.1: the MAD of the rates is often 0, so without a floor
    every change would be an outlier."""
    table = load_table(shared_data / APALACH)
    s = run_qc(table, "ph", freq=None, qc=QCConfig(max_gap=0, spike_guard={"enabled": False}))
    keep = s.frame_observed["ph"].to_numpy() & (s.frame.index >= pd.Timestamp("2013-01-01", tz=s.frame.index.tz))
    t, x = s.frame.index.asi8[keep], s.frame["ph"].to_numpy()[keep]
    assert len(x) > 29000
    no_floor = spike_guard(t, x, SpikeParams(floor=0.0))
    default = spike_guard(t, x, SpikeParams(floor=DEFAULT_LIMITS["ph"].floor))
    assert no_floor.mean() > 0.3  # a third of the readings
    assert default.mean() < 0.002 and default.sum() > 0
    last_accepted = pd.Series(np.where(default, np.nan, x)).ffill().shift(1).to_numpy()
    assert np.abs(x - last_accepted)[default].min() > 0.4 + 1e-9  # only jumps beyond the 0.4 floor (0.5 and more)


def test_rate_limit(sapelo_do) -> None:
    t, x = sapelo_do
    for i in calm_positions(x, 3000, 100)[:5]:
        y = x.copy()
        y[i] += 5.0  # 5 +- 1 mg/L in 30 min: 8 to 12 mg/L per hour
        hampel_off = dict(floor=1.5, threshold=1e9)
        assert not spike_guard(t, y, SpikeParams(**hampel_off))[i]
        assert spike_guard(t, y, SpikeParams(**hampel_off, max_rate=6.0))[i]
        assert not spike_guard(t, y, SpikeParams(**hampel_off, max_rate=16.0))[i]


def test_input_checks(sapelo_do) -> None:
    t, x = sapelo_do
    with pytest.raises(ValueError, match="strictly increasing"):
        spike_guard(t[::-1], x, DO)
    with pytest.raises(ValueError, match="same length"):
        spike_guard(t[:-1], x, DO)
    with pytest.raises(ValueError, match="threshold"):
        SpikeParams(floor=1.0, threshold=0.0)
    with pytest.raises(ValueError, match="min_history"):
        SpikeParams(floor=1.0, window=8, min_history=9)
    y = x.copy()
    m = spike_guard(t, y, DO)
    assert np.array_equal(y, x, equal_nan=True) and not m[np.isnan(x)].any()  # pure; NaN never guarded


def test_fast_enough(shared_data: Path) -> None:
    """The whole QC of the 70,176-row Apalachicola file (guard on four columns) stays well under 2 s."""
    table = load_table(shared_data / APALACH)
    run_qc(table, "do_mgl", freq=None, qc=QCConfig())  # compile / load the numba cache
    t0 = time.perf_counter()
    s = run_qc(table, "do_mgl", freq=None, qc=QCConfig())
    assert time.perf_counter() - t0 < 2.0
    assert set(s.summary["spike_guarded_by_column"]) == {"temp", "sal", "do_mgl", "ph"}


# --------------------------------------------------------------------------- causality


def test_mask_up_to_t_ignores_every_later_reading(sapelo_do) -> None:
    t, x = sapelo_do
    pos = calm_positions(x, 400, 100)
    y, hit = inject(x, pos)
    m = spike_guard(t, y, DO)
    assert np.array_equal(m, hit)
    run_start = pos[1]  # a 2-reading glitch
    named = [pos[0] - 1, pos[0], run_start, run_start + 1, run_start + 2]  # before / at a glitch, in a run, after
    checks = named + list(range(500, len(x) - 200, 127))  # and all along the year
    touchy = SpikeParams(floor=0.2, threshold=3.0, max_run=8)  # many decisions close to the line
    m_touchy = spike_guard(t, y, touchy)
    assert 0.05 < m_touchy.mean() < 0.5
    rng = np.random.default_rng(7)
    for at in checks:
        later = y.copy()
        later[at + 1:] = rng.uniform(0.0, 20.0, len(x) - at - 1)  # every later reading changed
        later[at + 1::17] = np.nan
        for params, before in ((DO, m), (touchy, m_touchy)):
            m2 = spike_guard(t, later, params)
            assert np.array_equal(m2[:at + 1], before[:at + 1]), at
            assert not np.array_equal(m2[at + 1:], before[at + 1:])  # the later change did change later decisions
            if at in named:  # also a file that ends at t
                assert np.array_equal(spike_guard(t[:at + 1], y[:at + 1], params), before[:at + 1])


def _write_sapelo(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def glitchy_sapelo(sapelo_frame: pd.DataFrame, tmp_path_factory) -> tuple[Path, pd.DataFrame, np.ndarray, np.ndarray]:
    """The real Sapelo file with DO_obs and Temp glitches injected: (path, frame, DO hits, Temp hits)."""
    df = sapelo_frame.copy()
    do, do_hit = inject(df["DO_obs"].to_numpy(float), calm_positions(df["DO_obs"].to_numpy(float), 400, 100))
    temp = df["Temp"].to_numpy(float)
    temp_pos = calm_positions(temp, 650, 1400, tol=0.5)
    temp_hit = np.zeros(len(df), dtype=bool)
    temp_hit[temp_pos] = True
    temp = temp.copy()
    temp[temp_pos] += 6.0
    df["DO_obs"], df["Temp"] = do, temp
    return _write_sapelo(df, tmp_path_factory.mktemp("spikes") / "sapelo_glitches.csv"), df, do_hit, temp_hit


@pytest.mark.parametrize("freq", [None, "1h"])
def test_run_qc_up_to_t_ignores_every_later_reading(glitchy_sapelo, tmp_path: Path, freq: str | None) -> None:
    path, df, do_hit, _ = glitchy_sapelo
    a = load_station(path, "DO_obs", freq=freq)
    stamps = pd.to_datetime(df["DateTimeStamp"])
    starts = np.flatnonzero(do_hit & ~np.roll(do_hit, 1))
    single, run = int(starts[0]), int(starts[1])  # a single glitch reading, a 2-reading glitch
    rng = np.random.default_rng(3)
    for row in (single, run, run + 1, run + 2, 9001):
        if freq == "1h":
            while stamps.iloc[row].minute != 0:  # a reading on the hour: every 1 h bin up to it is complete
                row += 1
        elif row != 9001:
            assert a.removed.loc[stamps.iloc[row]] == ("spike" if do_hit[row] else "")
        changed = df.copy()
        n_after = len(df) - row - 1
        for col, (lo, hi) in (("DO_obs", (0.0, 30.0)), ("Temp", (0.0, 50.0)), ("Sal", (0.0, 40.0))):
            changed.loc[row + 1:, col] = rng.uniform(lo, hi, n_after)
        b = load_station(_write_sapelo(changed, tmp_path / f"changed_{row}.csv"), "DO_obs", freq=freq)
        cut = stamps.iloc[row]
        assert a.values.index.equals(b.values.index)
        pd.testing.assert_series_equal(a.removed.loc[:cut], b.removed.loc[:cut])
        pd.testing.assert_series_equal(a.observed.loc[:cut], b.observed.loc[:cut])
        pd.testing.assert_frame_equal(a.frame_observed.loc[:cut], b.frame_observed.loc[:cut])
        last_obs = a.observed.loc[:cut][a.observed.loc[:cut]].index[-1]  # interpolation needs the next reading
        pd.testing.assert_series_equal(a.values.loc[:last_obs], b.values.loc[:last_obs])
        real_a, real_b = a.frame.where(a.frame_observed), b.frame.where(b.frame_observed)  # covariates too
        pd.testing.assert_frame_equal(real_a.loc[:cut], real_b.loc[:cut])
        assert b.summary["spike_guarded"] > a.summary["spike_guarded"]  # random later readings: guarded


# --------------------------------------------------------------------------- in QC


def test_run_qc_removes_guarded_readings(glitchy_sapelo, sapelo_frame: pd.DataFrame, shared_data: Path) -> None:
    path, df, do_hit, temp_hit = glitchy_sapelo
    s = load_station(path, "DO_obs")  # native 30 min grid: one reading per grid point
    n = int(do_hit.sum())
    assert n == 33  # 11 single readings and 11 runs of 2
    assert s.summary["spike_guarded"] == n == s.summary["spike_guarded_by_column"]["DO_obs"]
    assert (s.removed.to_numpy() == "spike").sum() == n
    assert np.array_equal(s.removed.to_numpy() == "spike", do_hit)
    assert not s.observed.to_numpy()[do_hit].any()
    assert s.interpolated.to_numpy()[do_hit].all()  # runs of 1-2 readings <= max_gap 3: filled, never scored
    raw = sapelo_frame["DO_obs"].to_numpy(float)
    i = int(np.flatnonzero(do_hit)[0])  # a single glitch: linear between its neighbours, not the glitch
    assert s.values.iloc[i] == pytest.approx((raw[i - 1] + raw[i + 1]) / 2)
    assert s.raw.iloc[i] == pytest.approx(df["DO_obs"].iloc[i]) != s.values.iloc[i]
    # covariates: the Temp glitches are removed too (6 readings of the real file are guarded as well)
    base_temp = load_station(shared_data / SAPELO, "DO_obs").summary["spike_guarded_by_column"]["Temp"]
    assert base_temp == 6
    assert s.summary["spike_guarded_by_column"]["Temp"] == base_temp + int(temp_hit.sum())
    assert not s.frame_observed["Temp"].to_numpy()[temp_hit].any()
    assert (s.frame["Temp"].to_numpy()[temp_hit] < df["Temp"].to_numpy()[temp_hit] - 4).all()
    rule = next(r for r in s.summary["rules"] if r.startswith("causal spike guard"))
    assert "6 robust standard deviations" in rule and "'DO_obs' (floor 1.5, rate limit 12/h)" in rule
    assert f"'DO_obs' (floor 1.5, rate limit 12/h): {n} removed" in rule

    off = load_station(path, "DO_obs", qc=QCConfig(spike_guard={"enabled": False}))
    assert off.summary["spike_guarded"] == 0 and "spike" not in set(off.removed)
    assert off.observed.to_numpy()[do_hit].all()
    assert np.allclose(off.values.to_numpy()[do_hit], df["DO_obs"].to_numpy()[do_hit])
    assert "causal spike guard off" in off.summary["rules"]


def test_another_reason_wins_over_spike(sapelo_frame: pd.DataFrame, tmp_path: Path) -> None:
    df = sapelo_frame.copy()
    do = df["DO_obs"].to_numpy(float)
    r = next(j for j in calm_positions(do, 1001, 100) if pd.Timestamp(df["DateTimeStamp"].iloc[j]).minute == 30)
    df.loc[r, "DO_obs"] = do[r] + (4.0 if do[r] < 5.5 else -4.0)  # a glitch: guarded
    df.loc[r + 1, "DO_obs"] = 99.0  # out of the physical range: removed before the guard
    p = _write_sapelo(df, tmp_path / "reasons.csv")
    s = load_station(p, "DO_obs")
    assert s.removed.iloc[r] == "spike" and s.removed.iloc[r + 1] == "out_of_range"
    assert s.summary["out_of_range"] == 1 and s.summary["spike_guarded"] == 1
    assert s.observed.iloc[r + 2] and s.values.iloc[r + 2] == do[r + 2]  # the reading after is kept
    h = load_station(p, "DO_obs", freq="1h")  # both readings in one hourly bin: the stronger reason
    label = pd.Timestamp(df["DateTimeStamp"].iloc[r + 1])
    assert h.removed.loc[label] == "out_of_range" and not h.observed.loc[label]


def test_neon_daily_oxygen_has_range_unit_and_guard(shared_data: Path, tmp_path: Path) -> None:
    assert PHYSICAL_RANGES["oxygen"] == (0.0, 25.0) and UNITS["oxygen"] == "mg/L"
    s = load_station(shared_data / DAILY, "oxygen", site="POSE")
    assert s.unit == "mg/L" and s.freq == "1D"
    assert "physical range for 'oxygen': [0, 25] (inclusive); readings outside removed" in s.summary["rules"]
    assert any("'oxygen' (floor 1.5, rate limit 12/h): 0 removed" in r for r in s.summary["rules"])
    assert s.summary["spike_guarded"] == 0  # 828 daily means, none guarded
    df = pd.read_csv(shared_data / DAILY)
    df = df[df["site_id"] == "POSE"].reset_index(drop=True)
    day = int(np.flatnonzero(df["datetime"] == "2021-06-15")[0])
    df.loc[day, "oxygen"] -= 5.0  # one day's mean 5 mg/L low
    g = load_station(_write_sapelo(df, tmp_path / "pose.csv"), "oxygen")
    assert g.summary["spike_guarded"] == 1 and g.removed.loc["2021-06-15"] == "spike"
    assert not g.observed.loc["2021-06-15"] and (g.removed == "spike").sum() == 1
    assert g.values.loc["2021-06-15"] == pytest.approx(s.values.loc["2021-06-15"], abs=0.5)  # interpolated


# --------------------------------------------------------------------------- configuration and CLI


def test_column_params_defaults_and_overrides() -> None:
    cfg = SpikeGuardConfig()
    for name in ("DO_obs", "do_mgl", "dissolved_oxygen", "DO", "oxygen"):
        assert column_params(name, cfg) == SpikeParams(floor=1.5, max_rate=12.0)
    assert column_params("Temp", cfg).floor == 2.5 and column_params("temperature", cfg).max_rate is None
    assert column_params("pH", cfg).floor == 0.4 and column_params("Sal", cfg).floor == 8.0
    assert column_params("ATemp", cfg) is None and column_params("Turb", cfg) is None
    cfg = SpikeGuardConfig(threshold=4.5, window=16, min_history=4, max_run=2, reset_after_hours=6,
                           columns={"turb": {"floor": 50}, "SAL": {"enabled": False}, "do_obs": {"max_rate": 0}})
    assert column_params("Turb", cfg) == SpikeParams(floor=50.0, threshold=4.5, window=16, min_history=4,
                                                     max_run=2, reset_after_hours=6.0)
    assert column_params("Sal", cfg) is None
    assert column_params("DO_obs", cfg).max_rate is None and column_params("DO_obs", cfg).floor == 1.5
    assert column_params("DO_obs", SpikeGuardConfig(enabled=False)) is None


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_threshold_must_be_positive(bad: float) -> None:
    with pytest.raises(ValidationError, match="threshold"):
        SpikeGuardConfig(threshold=bad)
    with pytest.raises(ValidationError, match="threshold"):
        QCConfig(spike_guard={"threshold": bad})


def test_other_guard_options_validated() -> None:
    for bad in ({"window": 2}, {"min_history": 40}, {"max_run": 0}, {"reset_after_hours": 0},
                {"columns": {" ": {}}}, {"columns": {"DO": {}, "do": {}}}, {"columns": {"DO": {"floor": -1}}},
                {"unknown": 1}):
        with pytest.raises(ValidationError):
            SpikeGuardConfig(**bad)
    assert SpikeGuardConfig(spike_threshold=3).threshold == 3.0  # the CLI's name for it
    cfg = QCConfig(spike_guard={"columns": {"Turb": {"floor": 50, "max_rate": 200}}})
    assert QCConfig.model_validate(cfg.model_dump(mode="json")) == cfg


@pytest.mark.parametrize("value", ["0", "-1.5"])
def test_cli_rejects_non_positive_threshold(shared_data: Path, tmp_path: Path, capsys, value: str) -> None:
    out = tmp_path / "out"
    rc = main(["evaluate", "--data", str(shared_data / SAPELO), "--target", "DO_obs", "--spike-threshold", value,
               "--no-flow", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("wq: error: --spike-threshold: ") and "greater than 0" in err
    assert "Traceback" not in err and not out.exists()


def test_cli_spike_switches(glitchy_sapelo) -> None:
    path, _, do_hit, _ = glitchy_sapelo
    parser = build_parser()

    def config(*extra: str):
        argv = ["evaluate", "--data", str(path), "--target", "DO_obs", *extra]
        return _config_from_args(parser.parse_args(argv), argv)

    default, off, strict = config(), config("--no-spike-guard"), config("--spike-threshold", "4.5")
    assert default.qc.spike_guard == SpikeGuardConfig()
    assert off.qc.spike_guard.enabled is False and strict.qc.spike_guard.threshold == 4.5
    assert config("--no-spike-guard", "--spike-guard").qc.spike_guard.enabled is True
    n_on = load_station(path, "DO_obs", qc=default.qc).summary["spike_guarded"]
    s_off = load_station(path, "DO_obs", qc=off.qc)
    assert n_on == int(do_hit.sum()) and s_off.summary["spike_guarded"] == 0
    assert s_off.summary["spike_guarded_by_column"] == {}
    for command in ("train", "forecast", "backfill"):  # every command that loads data has the switches
        extra = ["--start", "2012-03-01", "--end", "2012-03-02"] if command == "backfill" else []
        a = parser.parse_args([command, "--data", str(path), "--target", "DO_obs", "--no-spike-guard",
                               "--spike-threshold", "5", *extra])
        assert a.spike_guard is False and a.spike_threshold == 5.0
