"""The Python API, for notebooks and scripts: ``from wq_pipeline import evaluate, load_station, Model``.

* :func:`load_station` reads and quality-controls one series, as every command does;
* :func:`evaluate` runs the honest evaluation of ``wq evaluate`` (in-process, no Prefect) on a
  file or a DataFrame and returns an :class:`Evaluation` (``.metrics``, ``.forecasts``,
  ``.report_html()``, ``.save(dir)``);
* :class:`Model` is one statistical model with ``fit(series)`` and ``predict(origins)``, through
  the same forecaster contract the evaluation and the served versions use.

Everything here is a thin layer over the library; the command line stays the reference.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wq_pipeline.config import STATISTICAL_MODELS, EvaluateConfig, QCConfig
from wq_pipeline.errors import InputError
from wq_pipeline.data.station import load_station

__all__ = ["Evaluation", "Model", "evaluate", "load_station"]

#: the files of an evaluation folder, as ``wq evaluate`` writes them
OUTPUT_FILES = ("metrics.json", "forecasts.csv", "weights.csv", "stationarity.csv", "series.csv", "components.csv")


class Evaluation:
    """The result of :func:`evaluate`: scores and forecasts of every model on the test points."""

    def __init__(self, result: Any, out: Path, keep: Any = None) -> None:
        self.raw: dict[str, Any] = result.metrics  # metrics.json's content
        self.forecasts: pd.DataFrame = result.forecasts  # one row per model, origin and step
        self.out = out
        self._keep = keep  # the temporary folder, alive as long as the result

    @property
    def main_model(self) -> str:
        return str(self.raw["main_model"])

    @property
    def metrics(self) -> pd.DataFrame:
        """One row per model (index), scores at step H on the test points: ``rmse``, ``mae``,
        ``nse``, ``kge``, ``skill`` (against persistence), ``n_points``."""
        cols = ("rmse", "mae", "nse", "kge", "skill", "n_points")
        rows = {name: {c: s.get(c) for c in cols} for name, s in self.raw["models"].items()}
        return pd.DataFrame.from_dict(rows, orient="index", columns=list(cols))

    def report_html(self) -> str:
        """The self-contained HTML report (built on first use)."""
        from wq_pipeline.report import build_report

        path = self.out / "report.html"
        if not path.is_file():
            build_report(self.out)
        return path.read_text(encoding="utf-8")

    def save(self, directory: str | Path) -> Path:
        """Copy the evaluation's files (``metrics.json``, ``forecasts.csv``, ..., ``report.html``)
        to ``directory``; returns it."""
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        self.report_html()
        for name in (*OUTPUT_FILES, "report.html"):
            if (self.out / name).is_file() and (self.out / name).resolve() != (target / name).resolve():
                shutil.copy2(self.out / name, target / name)
        return target

    def __repr__(self) -> str:
        m = self.raw["models"][self.main_model]
        return (f"<Evaluation of {self.raw['target']}: {len(self.raw['models'])} models, "
                f"{m['n_points']} test points, main model RMSE {m['rmse']:.3f}>")


def evaluate(data: str | Path | pd.DataFrame, target: str, *, out: str | Path | None = None,
             **options: Any) -> Evaluation:
    """Evaluate every model on ``target`` of ``data`` (a station file, or a DataFrame with a
    time column or a ``DatetimeIndex``), honestly: each forecast uses only data up to its origin.
    ``options`` are :class:`~wq_pipeline.config.EvaluateConfig` fields (the long options of
    ``wq evaluate`` with ``_``: ``freq="1D"``, ``horizon=7``, ``window=28`` ...). Outputs go to
    ``out`` (default: a temporary folder that lives as long as the result).
    Bad input raises :class:`~wq_pipeline.errors.InputError` naming what is wrong."""
    from wq_pipeline.evaluation.pipeline import StageRunner, run_evaluation

    keep = tempfile.TemporaryDirectory(prefix="wq-evaluate-") if out is None else None
    folder = Path(keep.name) if keep is not None else Path(out)
    path = _as_file(data, folder) if isinstance(data, pd.DataFrame) else Path(data)
    if isinstance(data, pd.DataFrame) and "time_col" not in options:
        options["time_col"] = "time"
    cfg = _config(path, target, folder, options)
    return Evaluation(run_evaluation(cfg, StageRunner()), folder, keep)


def _as_file(frame: pd.DataFrame, folder: Path) -> Path:
    """``frame`` written as the CSV the pipeline reads (its index as ``time`` when it is one)."""
    folder.mkdir(parents=True, exist_ok=True)
    table = frame.rename_axis("time").reset_index() if isinstance(frame.index, pd.DatetimeIndex) else frame
    path = folder / "input.csv"
    table.to_csv(path, index=False)
    return path


def _config(data: Path, target: str, out: Path, options: dict[str, Any]) -> EvaluateConfig:
    from pydantic import ValidationError

    try:
        return EvaluateConfig(data=data, target=target, out=out, **options)
    except ValidationError as exc:
        raise InputError("; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())) from None


def _fill_short_gaps(values: np.ndarray, max_gap: int) -> np.ndarray:
    """``values (N,)`` with runs of at most ``max_gap`` NaNs between two observations filled
    linearly, as quality control fills them; longer gaps and the ends stay NaN."""
    filled = pd.Series(values).interpolate(limit_area="inside").to_numpy()
    nan = np.isnan(values)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], nan.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2]):
        if stop - start > max_gap:
            filled[start:stop] = np.nan
    return filled


class Model:
    """One statistical model (``harmonic_ar``, ``persistence``, ``seasonal_naive``,
    ``level_adjusted_seasonal_naive``, ``climatology``, ``arima``) as the evaluation fits it.

    ``fit(series)`` takes a regular, tz-aware ``pd.Series`` (NaN where nothing was observed; the
    last ``val_fraction`` validates the model's own choices) and ``predict(origins)`` returns the
    forecasts ``(n_origins, horizon)`` issued at those times, each from the data up to its origin,
    as a DataFrame (rows: origins, columns: steps 1..H).
    """

    def __init__(self, name: str, horizon: int, *, window: int = 48, seasonal_period: int | None = None,
                 val_fraction: float = 0.2) -> None:
        if name not in STATISTICAL_MODELS:
            raise InputError(f"Model: {name!r} is not a statistical model ({', '.join(STATISTICAL_MODELS)}); the "
                             f"network models and the ensemble are fitted by evaluate() and 'wq train'")
        self.name, self.horizon, self.window = name, int(horizon), int(window)
        self.seasonal_period, self.val_fraction = seasonal_period, float(val_fraction)
        self._fitted: Any = None
        self._series: pd.Series | None = None

    def _view(self, series: pd.Series) -> Any:
        from wq_pipeline.models.forecaster import SeriesView
        from wq_pipeline.models.protocol import eligible_origins

        if not isinstance(series.index, pd.DatetimeIndex) or series.index.tz is None:
            raise InputError("Model.fit: the series needs a tz-aware DatetimeIndex on a regular grid")
        values = series.to_numpy(dtype=float)
        observed = np.isfinite(values)
        filled = _fill_short_gaps(values, QCConfig().max_gap)
        val_start = int(round(values.size * (1.0 - self.val_fraction)))
        ok = np.flatnonzero(eligible_origins(filled, observed, self.window, self.horizon))
        return SeriesView(filled, observed, series.index, self.horizon, val_start, ok[ok >= val_start])

    def fit(self, series: pd.Series) -> "Model":
        """Fit on ``series`` (what is known at its last time); returns self."""
        from wq_pipeline.models.forecaster import Fitted
        from wq_pipeline.models.kinds import forecaster_from_fitted

        view = self._view(series)
        settings = {"window": self.window, "seasonal_period": self.seasonal_period}
        self._fitted = forecaster_from_fitted(self.name, Fitted(view, {}, [], settings))
        self._series = series
        return self

    def predict(self, origins: Any, series: pd.Series | None = None) -> pd.DataFrame:
        """Forecasts issued at ``origins`` (times of the series' grid), each from the data up to
        it (``series``: a longer series with the same start, else the one fitted on)."""
        if self._fitted is None:
            raise RuntimeError("Model.predict before fit")
        s = self._series if series is None else series
        view = self._view(s)
        when = pd.DatetimeIndex(pd.to_datetime(list(origins) if not isinstance(origins, pd.DatetimeIndex)
                                               else origins))
        if when.tz is None:  # times without an offset are the series' own
            when = when.tz_localize(s.index.tz)
        pos = s.index.get_indexer(when)
        if (pos < 0).any():
            raise InputError(f"Model.predict: origin(s) {list(when[pos < 0])} are not times of the series")
        unobserved = ~np.isfinite(s.to_numpy(dtype=float)[pos])
        if unobserved.any():  # a forecast starts from a real observation (gap filling stays causal)
            raise InputError(f"Model.predict: no observation at origin(s) {list(when[unobserved])}")
        F = self._fitted.forecast(view, pos.astype(np.int64))
        return pd.DataFrame(F, index=when, columns=pd.RangeIndex(1, self.horizon + 1, name="step"))
