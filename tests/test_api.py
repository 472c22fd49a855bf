"""The Python API (``wq_pipeline.api``) and the README's examples, run as doctests."""

from __future__ import annotations

import doctest
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wq_pipeline.errors import InputError

REPO = Path(__file__).resolve().parents[1]


def test_the_readme_examples_run(monkeypatch, shared_data):
    monkeypatch.chdir(REPO)
    if not (REPO.parent / "shared" / "data").is_dir():
        pytest.skip("the README's examples read ../shared/data")
    result = doctest.testfile(str(REPO / "README.md"), module_relative=False, report=True,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 8 and result.failed == 0, result


def test_the_public_names_import_in_a_fresh_interpreter_without_tensorflow():
    code = ("import sys; from wq_pipeline import evaluate, load_station, Model; "
            "print('tensorflow' in sys.modules, callable(evaluate), callable(load_station))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True", "True"]


def test_evaluate_a_dataframe_and_save(tmp_path, shared_data):
    """A DataFrame in memory: its DatetimeIndex gives the times; the scores match the files saved."""
    from wq_pipeline import evaluate, load_station

    st = load_station(shared_data / "neon_aquatics_daily_2020_2022.csv.gz", "oxygen", site="SUGG", freq="1D")
    frame = pd.DataFrame({"oxygen": st.values.where(st.observed)})
    ev = evaluate(frame, "oxygen", freq="1D", window=14, decomp_window=32, horizon=3, modes=2, epochs=2, units=4,
                  seed=1, test_start="2022-01-01")
    saved = ev.save(tmp_path / "saved")
    import json

    on_disk = json.loads((saved / "metrics.json").read_text())
    for name, row in ev.metrics.iterrows():
        assert row["rmse"] == pytest.approx(on_disk["models"][name]["rmse"])
    assert (saved / "report.html").is_file() and (saved / "forecasts.csv").is_file()
    assert set(ev.forecasts["model"]) == set(ev.metrics.index)


def test_model_forecasts_from_the_past_only_and_refuses_what_it_is_not(shared_data):
    from wq_pipeline import Model, load_station

    st = load_station(shared_data / "neon_aquatics_daily_2020_2022.csv.gz", "oxygen", site="BARC", freq="1D")
    s = st.values.where(st.observed)
    model = Model("harmonic_ar", horizon=3, window=28).fit(s[:"2021-12-31"])
    origin = ["2022-02-01"]
    before = model.predict(origin, series=s)
    future = s.copy()
    future[future.index > pd.Timestamp("2022-02-01", tz="UTC")] += 5.0  # change the future only
    np.testing.assert_array_equal(model.predict(origin, series=future).to_numpy(), before.to_numpy())
    assert before.shape == (1, 3) and np.isfinite(before.to_numpy()).all()
    with pytest.raises(InputError, match="not a statistical model"):
        Model("ensemble", horizon=3)
    with pytest.raises(InputError, match="not times of the series"):
        model.predict(["2030-01-01"])
    gap = s[s.isna() & (s.index > pd.Timestamp("2021-06-01", tz="UTC"))].index[:1]
    with pytest.raises(InputError, match="no observation at origin"):  # its value would be filled from after it
        model.predict(gap, series=s)


def test_short_gaps_are_filled_as_quality_control_fills_them():
    from wq_pipeline.api import _fill_short_gaps

    v = np.array([1.0, np.nan, 3.0, np.nan, np.nan, np.nan, np.nan, 8.0, np.nan])
    np.testing.assert_allclose(_fill_short_gaps(v, 3), [1, 2, 3, np.nan, np.nan, np.nan, np.nan, 8, np.nan])
