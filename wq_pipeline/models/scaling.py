"""Scaling of network inputs and targets, fitted on training samples only; optionally level-free.

*Level-free* (the default of every network, ``wq evaluate --level-free``): each input window is
taken relative to its own last value, channel by channel (``X - X[:, -1:, :]``; calendar channels,
the trailing ``fixed_channels``, are left as they are), and the targets relative to the last value
of the level channel (channel 0): the network predicts *changes from the last observation*. A level
the training period never saw is then not out of distribution, and shifting a series by ``c``
shifts its forecast by exactly ``c`` (to float rounding). Both are then standardised with
statistics of the (shifted) training samples.

Without ``level_free`` inputs and targets are standardised as they are (the published method).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Scaler:
    """``z = (x - mean) / std`` with statistics from training samples (a constant gets std 1).

    ``mean``/``std`` scale input channel 0 (and the targets unless ``target`` is set);
    ``extra`` holds ``(mean, std)`` of each further input channel, in channel order; ``target``,
    when set, scales the targets instead. ``level_free``: inputs and targets are first taken
    relative to each window's last value (module docstring); ``fixed_channels``: trailing channels
    exempt from that; ``target_from_level``: targets are changes from channel 0's last value
    (False for targets that carry no level, such as a first stage's error).
    """

    mean: float
    std: float
    extra: tuple[tuple[float, float], ...] = ()
    target: tuple[float, float] | None = None
    level_free: bool = False
    fixed_channels: int = 0
    target_from_level: bool = True
    level_reference: str = "last"  # "last" or "mean"

    @classmethod
    def fit(cls, x: np.ndarray, extra: np.ndarray | None = None, target: np.ndarray | None = None) -> "Scaler":
        """Plain scaler on any-shaped training array, ignoring NaN; ``extra`` ``(..., K)``: one
        further input channel per last-axis entry; ``target``: training targets with their own
        statistics (else they share channel 0's)."""
        extras = () if extra is None else tuple(_stats(extra[..., k]) for k in range(extra.shape[-1]))
        mean, std = _stats(x)
        return cls(mean=mean, std=std, extra=extras, target=None if target is None else _stats(target))

    @classmethod
    def for_samples(cls, X: np.ndarray, Y: np.ndarray, *, level_free: bool = False, fixed_channels: int = 0,
                    own_target: bool = False, level_reference: str = "last") -> "Scaler":
        """Fit on training inputs ``(n, W, C)`` and targets ``(n, H)`` (target units).

        ``own_target``: the targets are not channel 0's quantity (they get their own statistics
        and, level-free, no level offset); ``level_reference``: each window's level is its
        ``"last"`` value or its ``"mean"``."""
        C = X.shape[2]
        if not 0 <= fixed_channels < C:
            raise ValueError(f"fixed_channels must be in [0, {C - 1}], got {fixed_channels}")
        if level_reference not in ("last", "mean"):
            raise ValueError(f"level_reference must be 'last' or 'mean', got {level_reference!r}")
        proto = cls(0.0, 1.0, extra=((0.0, 1.0),) * (C - 1), level_free=level_free,
                    fixed_channels=fixed_channels, target_from_level=not own_target, level_reference=level_reference)
        Xs = proto.shift_inputs(X)
        Ys = Y - proto.level(X)[:, None]
        mean, std = _stats(Xs[..., 0])
        extras = tuple(_stats(Xs[..., k]) for k in range(1, C))
        separate = own_target or level_free
        return cls(mean=mean, std=std, extra=extras, target=_stats(Ys) if separate else None,
                   level_free=level_free, fixed_channels=fixed_channels, target_from_level=not own_target,
                   level_reference=level_reference)

    def _levels(self, X: np.ndarray) -> np.ndarray:
        """``(n, 1, C)``: each window's level per channel: its last value or its mean."""
        X = np.asarray(X, dtype=np.float64)
        return X[:, -1:, :] if self.level_reference == "last" else X.mean(axis=1, keepdims=True)

    def shift_inputs(self, X: np.ndarray) -> np.ndarray:
        """Inputs ``(n, W, C)`` relative to each window's level (level-free), else unchanged."""
        if not self.level_free:
            return X
        k = X.shape[2] - self.fixed_channels
        out = np.array(X, dtype=np.float64, copy=True)
        out[:, :, :k] -= self._levels(X[:, :, :k])
        return out

    def level(self, X: np.ndarray) -> np.ndarray:
        """``(n,)``: what the targets are relative to: channel 0's level (level-free with
        ``target_from_level``), else 0."""
        if self.level_free and self.target_from_level:
            return self._levels(X[:, :, :1])[:, 0, 0]
        return np.zeros(X.shape[0])

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Scale channel-0 values (no level shift)."""
        return (x - self.mean) / self.std

    def transform_target(self, y: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
        """Scale targets ``(n, H)``; level-free scalers need the inputs ``X`` for the level."""
        m, s = self.target or (self.mean, self.std)
        if self.level_free and self.target_from_level:
            if X is None:
                raise ValueError("a level-free scaler needs the inputs to scale targets")
            y = y - self.level(X)[:, None]
        return (y - m) / s

    def inverse(self, z: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
        """Network outputs ``(n, H)`` back to target units (level-free: plus each window's level)."""
        m, s = self.target or (self.mean, self.std)
        out = z * s + m
        if self.level_free and self.target_from_level:
            if X is None:
                raise ValueError("a level-free scaler needs the inputs to restore the level")
            out = out + self.level(X)[:, None]
        return out

    def transform_inputs(self, X: np.ndarray) -> np.ndarray:
        """Scale model inputs ``(n, W, 1 + len(extra))``: shifted when level-free, then channel 0
        with ``mean``/``std`` and channel ``k >= 1`` with ``extra[k-1]``."""
        if X.shape[-1] != 1 + len(self.extra):
            raise ValueError(f"inputs have {X.shape[-1]} channels, the scaler was fitted on {1 + len(self.extra)}")
        X = self.shift_inputs(X)
        if not self.extra:
            return self.transform(X)
        mean = np.array([self.mean, *(m for m, _ in self.extra)])
        std = np.array([self.std, *(s for _, s in self.extra)])
        return (X - mean) / std

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (exact float round trip through :meth:`from_json`)."""
        d = asdict(self)
        d["extra"] = [list(e) for e in self.extra]
        d["target"] = list(self.target) if self.target is not None else None
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Scaler":
        """Inverse of :meth:`to_json`; a scaler saved before level-free scaling existed (only
        ``mean``/``std``) loads as a plain one."""
        target = d.get("target")
        return cls(mean=float(d["mean"]), std=float(d["std"]),
                   extra=tuple((float(a), float(b)) for a, b in d.get("extra") or ()),
                   target=None if target is None else (float(target[0]), float(target[1])),
                   level_free=bool(d.get("level_free", False)), fixed_channels=int(d.get("fixed_channels", 0)),
                   target_from_level=bool(d.get("target_from_level", True)),
                   level_reference=str(d.get("level_reference", "last")))


def _stats(x: np.ndarray) -> tuple[float, float]:
    mean, std = float(np.nanmean(x)), float(np.nanstd(x))
    return mean, std if std > 1e-12 else 1.0


@dataclass(frozen=True)
class SeriesScaler:
    """One series' way into and out of a network trained on several series' pooled samples
    (:mod:`wq_pipeline.evaluation.global_networks`): its inputs ``(n, W, C)`` are divided by its own
    training ``spread`` per channel and get ``n_series`` one-hot series channels (1 in channel
    ``series_index``), then the ``pooled`` scaler applies; the pooled network's outputs come back
    through the pooled scaler and are multiplied by its ``target_spread`` (target units).

    It has the :class:`Scaler` methods a served network uses (``transform_inputs``, ``inverse``,
    ``to_json``), so every forecaster serves a global network as it serves its own.
    """

    pooled: Scaler
    spread: tuple[float, ...]
    target_spread: float
    series_index: int
    n_series: int

    TYPE = "series_of_pooled"

    @property
    def mean(self) -> float:
        return self.pooled.mean

    @property
    def std(self) -> float:
        return self.pooled.std

    def series_inputs(self, X: np.ndarray) -> np.ndarray:
        """``(n, W, C)`` -> ``(n, W, C + n_series)``: unit-free, with the series' identifier."""
        X = np.asarray(X, dtype=np.float64)
        if X.shape[-1] != len(self.spread):
            raise ValueError(f"inputs have {X.shape[-1]} channels, the series was pooled with {len(self.spread)}")
        onehot = np.zeros((*X.shape[:2], self.n_series))
        onehot[:, :, self.series_index] = 1.0
        return np.concatenate([X / np.asarray(self.spread), onehot], axis=2)

    def transform_inputs(self, X: np.ndarray) -> np.ndarray:
        return self.pooled.transform_inputs(self.series_inputs(X))

    def inverse(self, z: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
        if X is None:
            raise ValueError("a series scaler needs the inputs to restore the level")
        return self.pooled.inverse(z, self.series_inputs(X)) * self.target_spread

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, "pooled": self.pooled.to_json(), "spread": list(self.spread),
                "target_spread": self.target_spread, "series_index": self.series_index, "n_series": self.n_series}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "SeriesScaler":
        return cls(pooled=Scaler.from_json(d["pooled"]), spread=tuple(float(s) for s in d["spread"]),
                   target_spread=float(d["target_spread"]), series_index=int(d["series_index"]),
                   n_series=int(d["n_series"]))


def scaler_from_json(d: dict[str, Any]) -> "Scaler | SeriesScaler":
    """A network's scaler as :meth:`Scaler.to_json` or :meth:`SeriesScaler.to_json` wrote it."""
    return SeriesScaler.from_json(d) if d.get("type") == SeriesScaler.TYPE else Scaler.from_json(d)
