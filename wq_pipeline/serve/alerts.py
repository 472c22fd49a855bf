"""Exceedance alerts: a forecast whose probability of crossing a threshold reaches the station's
alert level.

A station (``[[stations]]`` in ``wq.toml``, or the options of ``wq forecast``) names its
thresholds (``thresholds = ["DO_obs<2"]``) and one ``alert_level`` in (0, 1] (default 0.5: the
crossing is more likely than not). Each issued forecast gets the probability of every threshold
at every step from its quantiles (:func:`wq_pipeline.models.exceedance.crossing_probability`); where the
probability at any step reaches the alert level, the forecast raises one alert per threshold:
the first step that reached it, its target time, and the highest probability over the steps.

The archive stores the probabilities and the alerts with the forecast (one transaction,
idempotent), and the scheduled flow publishes the alerts that were new: a Prefect artifact, an
event and a warning in the run's log (:mod:`flows.operations`). This module is the library side:
no Prefect here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wq_pipeline.models.exceedance import Threshold, crossing_probability

#: The Prefect event a new alert emits (an automation can trigger on it).
ALERT_EVENT = "wq.alert.crossing"


def crossing_frame(site: str, target: str, version: str, issued_at: pd.DatetimeIndex,
                   target_times: pd.DatetimeIndex, quantiles: np.ndarray | None, levels: tuple[float, ...],
                   thresholds: list[Threshold] | tuple[Threshold, ...]) -> pd.DataFrame:
    """Archive rows of crossing probabilities from quantiles ``(n, H, Q)`` at ``levels``: one row
    per origin, step and threshold (``site, target, model_version, issued_at, target_time, step,
    threshold, probability``). ``target_times (n * H,)`` origin by origin. Origins without
    quantiles (a fallback issued them) get no rows."""
    cols = ["site", "target", "model_version", "issued_at", "target_time", "step", "threshold", "probability"]
    if quantiles is None or not levels or not thresholds:
        return pd.DataFrame(columns=cols)
    n, H, _ = quantiles.shape
    frames = []
    for th in thresholds:
        p = crossing_probability(quantiles, levels, th).ravel()  # (n * H,)
        frames.append(pd.DataFrame({
            "site": site, "target": target, "model_version": version,
            "issued_at": np.repeat(issued_at.to_numpy(), H), "target_time": target_times,
            "step": np.tile(np.arange(1, H + 1), n), "threshold": th.label, "probability": p}))
    out = pd.concat(frames, ignore_index=True)
    return out[np.isfinite(out["probability"].to_numpy(dtype=float))].reset_index(drop=True)


def find_alerts(crossings: pd.DataFrame, alert_level: float) -> pd.DataFrame:
    """One alert per (site, target, model_version, issued_at, threshold) whose probability reaches
    ``alert_level`` at some step: ``alert_level``, the highest ``probability``, the first ``step``
    that reached the level and its ``target_time``. Empty when none does."""
    key = ["site", "target", "model_version", "issued_at", "threshold"]
    cols = [*key, "alert_level", "probability", "step", "target_time"]
    hit = crossings[crossings["probability"] >= alert_level]
    if hit.empty:
        return pd.DataFrame(columns=cols)
    first = hit.sort_values([*key, "step"]).groupby(key, sort=True).first().reset_index()
    peak = crossings.groupby(key, sort=True)["probability"].max()
    first["probability"] = peak.reindex(pd.MultiIndex.from_frame(first[key])).to_numpy()
    first["alert_level"] = float(alert_level)
    return first[cols].reset_index(drop=True)


def alert_markdown(alerts: pd.DataFrame, as_of: str | None = None) -> str:
    """A markdown table of ``alerts`` (as :func:`find_alerts` or the archive return them)."""
    head = f"# Crossing alerts{f' as of {as_of}' if as_of else ''}\n\n"
    lines = ["| site | target | threshold | issued at (UTC) | first step | at (UTC) | max P | alert level | version |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in alerts.itertuples(index=False):
        lines.append(f"| {r.site} | {r.target} | `{r.threshold}` | {pd.Timestamp(r.issued_at).isoformat()} | "
                     f"{int(r.step)} | {pd.Timestamp(r.target_time).isoformat()} | {r.probability:.2f} | "
                     f"{r.alert_level:g} | {r.model_version} |")
    return head + "\n".join(lines) + "\n"


def alert_sentence(r: pd.Series | tuple) -> str:
    """One line for a log or a terminal: what may cross, when, and how likely."""
    return (f"P({r.threshold}) = {r.probability:.2f} >= {r.alert_level:g} at {r.site} ({r.target}): first at step "
            f"{int(r.step)}, {pd.Timestamp(r.target_time).isoformat()}, forecast issued at "
            f"{pd.Timestamp(r.issued_at).isoformat()} by {r.model_version}")
