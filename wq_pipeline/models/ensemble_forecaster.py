"""The main model as a forecaster: the online-weighted ensemble (:mod:`wq_pipeline.models.ensemble`) of
fitted member forecasters, with the record its weights need.

State: every member's state, the weighting options, the members the evaluation found identical
to an earlier one (left out, as there), the trailing window an origin needs, and the **record**:
the origins (UTC times) and every member's forecasts there ``(M, r, H)``, as the evaluation or
the training computed them (validation and, after ``wq evaluate --register``, test origins).

``forecast(view, origins)`` at origin ``t``:

1. the record's rows on the view's grid up to ``max(origins)``;
2. every member's forecasts at the requested origins and at every usable origin after the
   record's last one up to ``max(origins)`` (recomputed from the view, each from data up to its
   own origin; remembered between calls on the same series, so a backfill's chunks do not
   recompute them);
3. the weights at each requested origin from those rows with :func:`~wq_pipeline.models.ensemble.online_weights`
   (a row issued at ``s`` counts for step ``h`` only once ``s + h <= t``, and only where the view
   holds a real observation at ``s + h``): at an origin of the record they equal the
   evaluation's weights there;
4. the weighted combination; a member without a forecast (NaN) is left out and the others
   renormalised.

Where the networks cannot forecast at an origin (a gap breaks the trailing window they need),
``forecast(..., only=statistical_members())`` combines the statistical members that can, with
their weights at that origin: the serving fallback's first stand-in.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from typing import Any

import numpy as np
from wq_pipeline.models.ensemble import EnsembleOptions, combine, online_weights
from wq_pipeline.models.intervals import IntervalOptions, conformal_quantiles
from wq_pipeline.models.protocol import window_ok
from wq_pipeline.models import networks, statistical  # noqa: F401  (its members: they register their kinds)
from wq_pipeline.models.forecaster import (
    KINDS,
    Fitted,
    Forecaster,
    Parts,
    SeriesView,
    dump_forecaster,
    forecaster_from_doc,
    register,
)

RECORD_TIMES, RECORD_FORECASTS = "record_times", "record_forecasts"


def _view_key(view: SeriesView) -> str:
    """Content fingerprint of what a member forecast may depend on."""
    h = hashlib.blake2b(digest_size=16)
    for arr in (view.values, view.observed, view.times.asi8):
        h.update(np.ascontiguousarray(arr).tobytes())
    if view.covariates is not None:
        h.update(np.ascontiguousarray(view.covariates.values).tobytes())
    h.update(str(view.horizon).encode())
    return h.hexdigest()


@register
class EnsembleForecaster(Forecaster):
    """The online-weighted ensemble of ``members`` ({name: fitted forecaster}, in weight order)."""

    name = "ensemble"
    trains_networks = True

    def __init__(self, members: dict[str, Forecaster], options: EnsembleOptions, lookback: int,
                 record_times: np.ndarray, record: np.ndarray, duplicates: dict[str, str] | None = None,
                 intervals: IntervalOptions | None = None) -> None:
        self.members = dict(members)
        self.options = options
        self.lookback = int(lookback)
        self.record_times = np.asarray(record_times, dtype=np.int64)  # (r,) UTC nanoseconds
        self.record = np.asarray(record, dtype=np.float64)  # (M, r, H)
        self.duplicates = dict(duplicates or {})
        self.intervals = intervals or IntervalOptions()
        if self.record.ndim != 3 or self.record.shape[0] != len(self.members) \
                or self.record.shape[1] != self.record_times.size:
            raise ValueError(f"record must be (M={len(self.members)}, r={self.record_times.size}, H), "
                             f"got {self.record.shape}")
        if self.record_times.size > 1 and not np.all(np.diff(self.record_times) > 0):
            raise ValueError("record times must be sorted and distinct")
        self._memo: tuple[str, np.ndarray, np.ndarray] | None = None  # (view key, origins, (M, n, H))
        self._fitted = True

    def fit(self, view: SeriesView) -> "EnsembleForecaster":
        raise TypeError("the ensemble is built by wq_pipeline.serve.training from its trained members and their record")

    # ------------------------------------------------------------------ forecasting

    def member_forecasts(self, view: SeriesView, origins: np.ndarray) -> np.ndarray:
        """``(M, n, H)``: every member's forecasts at ``origins`` (NaN for a member left out as a
        duplicate), remembered per series."""
        origins = np.asarray(origins, dtype=np.int64)
        key = _view_key(view)
        if self._memo is None or self._memo[0] != key:
            self._memo = (key, np.empty(0, np.int64), np.empty((len(self.members), 0, view.horizon)))
        _, known, F = self._memo
        new = np.setdiff1d(origins, known)
        if new.size:
            rows = np.stack([np.full((new.size, view.horizon), np.nan) if name in self.duplicates
                             else np.asarray(m.forecast(view, new), dtype=np.float64)
                             for name, m in self.members.items()])
            known = np.concatenate([known, new])
            F = np.concatenate([F, rows], axis=1)
            order = np.argsort(known, kind="stable")
            known, F = known[order], F[:, order]
            self._memo = (key, known, F)
        return F[:, np.searchsorted(known, origins)]

    def statistical_members(self) -> list[str]:
        """The members without networks (they forecast from short windows, in seconds)."""
        return [name for name, m in self.members.items() if not m.parts().networks]

    def _only(self, view: SeriesView, origins: np.ndarray, only: list[str]) -> np.ndarray:
        """``(M, n, H)``: the forecasts of the members in ``only`` at ``origins``, NaN for the others
        (not remembered: these origins are not usable by every member)."""
        return np.stack([np.asarray(m.forecast(view, origins), dtype=np.float64)
                         if name in only and name not in self.duplicates else np.full((origins.size, view.horizon), np.nan)
                         for name, m in self.members.items()])

    def _rows(self, view: SeriesView, origins: np.ndarray,
              only: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The sorted origins ``(q,)`` and member forecasts ``(M, q, H)`` the weights at
        ``origins`` are computed from: the record's rows, then recomputed rows (at ``origins``
        themselves, only the members in ``only`` when given)."""
        last = int(origins.max())
        utc = view.times.tz_convert("UTC") if view.times.tz is not None else view.times.tz_localize("UTC")
        pos = utc.asi8.searchsorted(self.record_times)
        inside = pos < utc.size
        on_grid = np.zeros(self.record_times.size, dtype=bool)
        on_grid[inside] = utc.asi8[pos[inside]] == self.record_times[inside]
        keep = on_grid & (pos <= last)
        rec_pos, rec_F = pos[keep].astype(np.int64), self.record[:, keep]
        after = int(rec_pos.max()) + 1 if rec_pos.size else 0
        ok = window_ok(np.isfinite(np.asarray(view.values, dtype=np.float64)), self.lookback) & \
            np.asarray(view.observed, dtype=bool)
        gap = np.flatnonzero(ok[after:last]) + after
        if only is None:
            new = np.union1d(origins, gap)
            F_new = self.member_forecasts(view, new)
        else:
            gap = np.setdiff1d(gap, origins)
            new = np.concatenate([gap, origins])
            F_new = np.concatenate([self.member_forecasts(view, gap), self._only(view, origins, only)], axis=1)
        old = ~np.isin(rec_pos, new)
        seq_o = np.concatenate([rec_pos[old], new])
        seq_F = np.concatenate([rec_F[:, old], F_new], axis=1)
        order = np.argsort(seq_o, kind="stable")
        return seq_o[order], seq_F[:, order]

    def weights(self, view: SeriesView, origins: np.ndarray) -> np.ndarray:
        """``(n, H, M)``: the members' weights at ``origins``."""
        origins = np.asarray(origins, dtype=np.int64)
        if origins.size == 0:
            return np.zeros((0, view.horizon, len(self.members)))
        seq_o, seq_F = self._rows(view, origins)
        W = online_weights(seq_F, seq_o, np.where(view.observed, view.values, np.nan), self.options)
        return W[np.searchsorted(seq_o, origins)]

    def forecast(self, view: SeriesView, origins: np.ndarray, only: list[str] | None = None) -> np.ndarray:
        """``(n, H)`` at sorted, distinct ``origins``; ``only``: combine just these members at them."""
        origins = np.asarray(origins, dtype=np.int64)
        if origins.size == 0:
            return np.zeros((0, view.horizon))
        seq_o, seq_F = self._rows(view, origins, only)
        W = online_weights(seq_F, seq_o, np.where(view.observed, view.values, np.nan), self.options)
        idx = np.searchsorted(seq_o, origins)
        return combine(seq_F[:, idx], W[idx])

    def forecast_with_quantiles(self, view: SeriesView, origins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(n, H)`` forecasts and ``(n, H, Q)`` quantiles at ``self.intervals.levels`` in one pass:
        the ensemble's own forecasts over its record and the requested origins, calibrated on their
        errors already observed at each origin (:func:`~wq_pipeline.models.intervals.conformal_quantiles`),
        as the evaluation calibrates them."""
        origins = np.asarray(origins, dtype=np.int64)
        if origins.size == 0:
            return np.zeros((0, view.horizon)), np.zeros((0, view.horizon, len(self.intervals.levels)))
        seq_o, seq_F = self._rows(view, origins)
        y_obs = np.where(view.observed, view.values, np.nan)
        main = combine(seq_F, online_weights(seq_F, seq_o, y_obs, self.options))
        idx = np.searchsorted(seq_o, origins)
        return main[idx], conformal_quantiles(main, seq_o, y_obs, self.intervals)[idx]

    # ------------------------------------------------------------------ state

    def state(self) -> dict[str, Any]:
        return {"members": {name: dump_forecaster(m) for name, m in self.members.items()},
                "options": asdict(self.options), "lookback": self.lookback, "duplicates": self.duplicates,
                "intervals": {**asdict(self.intervals), "levels": list(self.intervals.levels)}}

    def parts(self) -> Parts:
        networks = [net for m in self.members.values() for net in m.parts().networks]
        names = [n for n, _, _ in networks]
        if len(set(names)) != len(names):
            raise ValueError(f"member network names collide: {names}")
        return Parts(networks=networks, arrays={RECORD_TIMES: self.record_times, RECORD_FORECASTS: self.record})

    @classmethod
    def from_fitted(cls, fitted: Fitted) -> "EnsembleForecaster":
        if fitted.record is None:
            raise ValueError("the ensemble needs its record of member forecasts")
        members = {m: KINDS[m].from_fitted(fitted) for m in fitted.settings["members"]}
        return cls(members, fitted.settings["ensemble_options"], fitted.settings["lookback"], fitted.record[0],
                   fitted.record[1], fitted.duplicates, fitted.settings.get("interval_options"))

    @classmethod
    def from_state(cls, state: dict[str, Any], parts: Parts | None = None) -> "EnsembleForecaster":
        if parts is None or RECORD_TIMES not in parts.arrays or RECORD_FORECASTS not in parts.arrays:
            raise ValueError("the ensemble's record (record_times, record_forecasts) is missing")
        members = {name: forecaster_from_doc(doc, f"ensemble member {name!r}", parts)
                   for name, doc in state["members"].items()}
        iv = state.get("intervals")  # absent in versions saved before quantiles: the defaults
        intervals = IntervalOptions(**{**iv, "levels": tuple(iv["levels"])}) if iv else None
        return cls(members, EnsembleOptions(**state["options"]), int(state["lookback"]),
                   parts.arrays[RECORD_TIMES], parts.arrays[RECORD_FORECASTS], state.get("duplicates"), intervals)
