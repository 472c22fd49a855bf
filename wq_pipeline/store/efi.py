"""Stored forecasts in the Ecological Forecasting Initiative (EFI) standard, as the NEON Ecological
Forecasting Challenge takes them.

Columns ``project_id, model_id, datetime, reference_datetime, duration, site_id, family,
parameter, variable, prediction``. The mapping:

- ``datetime``: the target time; ``reference_datetime``: the issue time (the origin), both ISO 8601
  UTC; ``duration``: the grid step (``PT1H``, ``P1D``, ...);
- ``site_id``: the site; ``variable``: the target column; ``model_id``: the model version;
- ``family = "ensemble"``: a forecast with stored quantiles becomes ``members`` members (parameter
  ``1..members``), the values of its quantile function (linear between the stored quantiles, flat
  beyond them, as CRPS is computed, :mod:`wq_pipeline.models.scoring_rules`) at the evenly spaced levels
  ``(k - 0.5) / members``; so the ensemble's spread reproduces the quantiles. A forecast without
  quantiles (one issued by a fallback, or by a model without an error record) is one member, its
  point value: the standard has no family for "no uncertainty", and dropping it would hide a
  forecast that was issued.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wq_pipeline.models.scoring_rules import quantile_function

EFI_COLUMNS = ("project_id", "model_id", "datetime", "reference_datetime", "duration", "site_id", "family",
               "parameter", "variable", "prediction")
MEMBERS = 31


def iso_duration(step: pd.Timedelta) -> str:
    """ISO 8601 duration of a grid step: ``P1D``, ``PT1H``, ``PT15M``, ``PT30S``."""
    secs = int(step.total_seconds())
    if secs > 0 and secs % 86400 == 0:
        return f"P{secs // 86400}D"
    if secs > 0 and secs % 3600 == 0:
        return f"PT{secs // 3600}H"
    if secs > 0 and secs % 60 == 0:
        return f"PT{secs // 60}M"
    return f"PT{secs}S"


def _iso(times: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(times).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy()


def efi_frame(forecasts: pd.DataFrame, quantiles: pd.DataFrame, project_id: str = "wq-pipeline",
              members: int = MEMBERS) -> pd.DataFrame:
    """The EFI table of stored ``forecasts`` (archive rows) with their ``quantiles`` (archive
    quantile rows, any subset)."""
    key = ["site", "target", "model_version", "issued_at", "step"]
    f = forecasts.copy()
    step = (pd.DatetimeIndex(f["target_time"]) - pd.DatetimeIndex(f["issued_at"])) / f["step"].to_numpy()
    f["duration"] = [iso_duration(pd.Timedelta(s)) for s in step]
    wide = quantiles.pivot_table(index=key, columns="level", values="value") if len(quantiles) else None
    tau = (np.arange(members) + 0.5) / members
    frames = []
    if wide is not None and len(wide):
        levels = np.asarray(wide.columns, dtype=float)
        have = f.set_index(key).index.isin(wide.index)
        fq = f[have]
        q = wide.loc[fq.set_index(key).index].to_numpy(dtype=float)
        ok = np.isfinite(q).all(axis=1)
        fq, q = fq[ok], q[ok]
        draws = quantile_function(q, levels, tau)  # (n, members)
        frames.append(pd.DataFrame({
            "project_id": project_id, "model_id": np.repeat(fq["model_version"].to_numpy(), members),
            "datetime": np.repeat(_iso(fq["target_time"]), members),
            "reference_datetime": np.repeat(_iso(fq["issued_at"]), members),
            "duration": np.repeat(fq["duration"].to_numpy(), members),
            "site_id": np.repeat(fq["site"].to_numpy(), members), "family": "ensemble",
            "parameter": np.tile(np.arange(1, members + 1), len(fq)),
            "variable": np.repeat(fq["target"].to_numpy(), members), "prediction": draws.ravel()}))
        single = f[~f.set_index(key).index.isin(fq.set_index(key).index)]
    else:
        single = f
    if len(single):
        frames.append(pd.DataFrame({
            "project_id": project_id, "model_id": single["model_version"].to_numpy(),
            "datetime": _iso(single["target_time"]), "reference_datetime": _iso(single["issued_at"]),
            "duration": single["duration"].to_numpy(), "site_id": single["site"].to_numpy(), "family": "ensemble",
            "parameter": 1, "variable": single["target"].to_numpy(), "prediction": single["value"].to_numpy()}))
    if not frames:
        return pd.DataFrame(columns=list(EFI_COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(EFI_COLUMNS)].sort_values(
        ["site_id", "variable", "reference_datetime", "datetime", "parameter"], kind="stable").reset_index(drop=True)
