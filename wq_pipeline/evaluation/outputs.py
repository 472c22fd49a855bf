"""What a run writes: the tables (series, forecasts, weights), metrics.json written atomically, and the terminal's table."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from wq_pipeline.common import to_jsonable
from wq_pipeline.data.qc import StationSeries
from wq_pipeline.evaluation.folds import MODEL_NAMES, FoldResult, Plan
from wq_pipeline.models.protocol import (
    target_matrix,
)


def series_frame(station: StationSeries) -> pd.DataFrame:
    """The target on its grid with QC marks: ``time, raw, value, observed, interpolated, removed``."""
    return pd.DataFrame({
        "time": [t.isoformat() for t in station.values.index],
        "raw": station.raw.to_numpy(), "value": station.values.to_numpy(),
        "observed": station.observed.to_numpy(), "interpolated": station.interpolated.to_numpy(),
        "removed": station.removed.to_numpy(),
    })


def forecast_table(plan: Plan, H: int, forecasts: dict[str, np.ndarray],
                   quantiles: dict[str, np.ndarray] | None = None, levels: tuple[float, ...] = ()) -> pd.DataFrame:
    """Long test forecast table ``model, issued_at, target_time, step, forecast, observed, fold``
    (observed: real observations only), then with ``quantiles`` (``{name: (n_test, H, Q)}``) one
    column ``q<level>`` per level (``q0.5`` is the median, beside the point forecast)."""
    s = plan.split
    obs = target_matrix(plan.obs_values, s.test, H)
    iso = np.asarray([t.isoformat() for t in plan.times])
    pos = s.test[:, None] + np.arange(1, H + 1)[None, :]
    frames = []
    for name in MODEL_NAMES:
        frames.append(pd.DataFrame({
            "model": name,
            "issued_at": np.repeat(iso[s.test], H),
            "target_time": iso[pos.ravel()],
            "step": np.tile(np.arange(1, H + 1), s.test.size),
            "forecast": forecasts[name].ravel(),
            "observed": obs.ravel(),
            "fold": s.fold,
            **({f"q{lv:g}": quantiles[name][:, :, k].ravel() for k, lv in enumerate(levels)} if quantiles else {}),
        }))
    return pd.concat(frames, ignore_index=True)


def weights_table(fold: FoldResult) -> pd.DataFrame:
    """The ensemble's weights at step H at every validation and test origin of a fold:
    ``fold, issued_at, period, <one column per member>``."""
    s = fold.plan.split
    o = s.fit_origins
    frame = pd.DataFrame(fold.weights[:, -1, :], columns=list(fold.ensemble["members"]))
    frame.insert(0, "period", np.where(o >= s.test_start, "test", "validation"))
    frame.insert(0, "issued_at", [fold.plan.times[i].isoformat() for i in o])
    frame.insert(0, "fold", s.fold)
    return frame


def write_outputs(out_dir: Path, metrics: dict, tables: dict[str, pd.DataFrame], name: str = "metrics.json") -> None:
    """Write ``metrics`` as JSON (``name``) and one CSV per table atomically: every file is first
    written to a temporary file in ``out_dir``, then all are renamed into place (the JSON last)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    writers: list[tuple[str, Callable[[Path], Any]]] = [
        (fname, lambda p, df=df: df.to_csv(p, index=False, float_format="%.6g")) for fname, df in tables.items()
    ]
    writers.append((name, lambda p: p.write_text(json.dumps(to_jsonable(metrics), indent=2, allow_nan=False))))
    staged: list[tuple[Path, Path]] = []
    try:
        for fname, writer in writers:
            fd, tmp = tempfile.mkstemp(prefix=f".{fname}.", dir=out_dir)
            os.close(fd)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be shared
            writer(Path(tmp))
            staged.append((Path(tmp), out_dir / fname))
        for tmp, final in staged:
            os.replace(tmp, final)
    finally:
        for tmp, _ in staged:
            if tmp.exists():
                tmp.unlink()


def metrics_table(metrics: dict[str, Any]) -> str:
    """Plain-text table of every model at step H, for the terminal."""
    rows = []
    head = f"{'model':<30}{'RMSE':>9}{'MAE':>9}{'MAPE%':>9}{'R2':>8}{'NSE':>8}{'KGE':>8}{'skill':>8}"
    rows.append(head)
    rows.append("-" * len(head))

    def f(v: Any, w: int, p: int) -> str:
        return f"{v:>{w}.{p}f}" if isinstance(v, (int, float)) and np.isfinite(v) else f"{'n/a':>{w}}"

    for name in MODEL_NAMES:
        m = metrics["models"][name]
        rows.append(f"{name:<30}{f(m['rmse'], 9, 4)}{f(m['mae'], 9, 4)}{f(m['mape'], 9, 2)}{f(m['r2'], 8, 3)}"
                    f"{f(m['nse'], 8, 3)}{f(m['kge'], 8, 3)}{f(m['skill'], 8, 3)}")
    unit = f" {metrics['unit']}" if metrics.get("unit") else ""
    title = (f"{metrics['target']}{unit} at step H={metrics['horizon']} ({metrics['freq']}), "
             f"{metrics['models']['persistence']['n_points']} test points, protocol: {metrics['protocol_label']}")
    return title + "\n" + "\n".join(rows)

