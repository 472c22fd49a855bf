"""``wq evaluate --quantiles/--interval-method``: bad levels exit 2 before any work."""

from __future__ import annotations

import pytest

from wq_pipeline.cli import main


@pytest.mark.parametrize("levels, says", [("0,0.5,0.9", "between 0 and 1"), ("0.9,0.5", "sorted and distinct"),
                                          ("0.5,0.5", "sorted and distinct"), ("0.1,1.2", "between 0 and 1"),
                                          ("0.1,x", "expected numbers")])
def test_bad_quantile_levels_exit_2_naming_the_option(levels, says, sapelo_tiny_csv, tmp_path, capsys):
    rc = main(["evaluate", "--data", str(sapelo_tiny_csv), "--target", "DO_obs", "--freq", "1h", "--no-flow",
               "--out", str(tmp_path / "out"), "--quantiles", levels])
    err = capsys.readouterr().err
    assert rc == 2 and "--quantiles" in err and says in err, err
    assert not (tmp_path / "out").exists()
