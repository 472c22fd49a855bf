"""The network models as forecasters (:mod:`wq_pipeline.models.forecaster`): the plain LSTM, the
per-component networks (with FECA or without) and the hybrid (first stage + one FECA-LSTM).

Each holds its trained networks (Keras models with their :class:`~wq_pipeline.models.scaling.Scaler`)
and the settings its inputs need, and forecasts ``(n_origins, H)`` exactly as the evaluation
built its test inputs: the same trailing windows, the same stepwise decomposition of each
origin's window (shared between models through :class:`Decomposition`'s cache, so an ensemble
decomposes once), the same covariate channels and calendar terms. The state is JSON (settings
and network names) plus the networks as binary :class:`~wq_pipeline.models.forecaster.Parts`.

They are trained by :mod:`wq_pipeline.serve.training` (one pool of training processes for every
network of a model, as the evaluation trains them), not by :meth:`fit`: fitting one network
object at a time would give up that parallelism.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from wq_pipeline.data.covariates import with_covariates
from wq_pipeline.models.hybrid import HybridOptions, calendar_channels, first_stage_forecast, hybrid_inputs
from wq_pipeline.models.protocol import ComponentSamples, raw_windows, stepwise_decompose
from wq_pipeline.models.scaling import Scaler
from wq_pipeline.models.forecaster import Fitted, Forecaster, Parts, SeriesView, register

Network = tuple[str, Any, Scaler]  # (file name, Keras model, scaler)


@dataclass(frozen=True)
class Decomposition:
    """How a network model decomposes each origin's trailing window: ``method`` with ``modes``,
    ``params`` (method options) and ``learnt`` (what was fitted on training windows, e.g.
    CEEMDAN-SE-VMD's groups), trailing ``decomp_window`` (L) points, the last ``window`` (W) of
    each component kept as inputs."""

    method: str
    modes: int
    seed: int
    params: dict[str, Any]
    decomp_window: int
    window: int
    learnt: dict[str, Any] = field(default_factory=dict)

    def decomposer(self) -> Any:
        from wq_pipeline.decompose import make_decomposer

        return make_decomposer(self.method, self.modes, self.seed, **self.params, **self.learnt)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Decomposition":
        return cls(method=str(d["method"]), modes=int(d["modes"]), seed=int(d["seed"]), params=dict(d["params"]),
                   decomp_window=int(d["decomp_window"]), window=int(d["window"]), learnt=dict(d.get("learnt") or {}))

    def samples(self, values: np.ndarray, origins: np.ndarray) -> ComponentSamples:
        """The stepwise decomposition at ``origins`` (cached by content: the series, the origins
        and these settings), ``tails (n, K, W)``."""
        key = hashlib.blake2b(np.ascontiguousarray(values, dtype=np.float64).tobytes(), digest_size=16)
        key.update(np.ascontiguousarray(origins, dtype=np.int64).tobytes())
        key.update(json.dumps(self.to_json(), sort_keys=True, default=str).encode())
        digest = key.hexdigest()
        if digest in _SAMPLES:
            _SAMPLES.move_to_end(digest)
            return _SAMPLES[digest]
        t0 = time.perf_counter()
        out = stepwise_decompose(values, np.asarray(origins, dtype=np.int64), self.decomposer(), self.decomp_window,
                                 self.window)
        _SECONDS[0] += time.perf_counter() - t0
        _SAMPLES[digest] = out
        while len(_SAMPLES) > 2:
            _SAMPLES.popitem(last=False)
        return out


_SAMPLES: "OrderedDict[str, ComponentSamples]" = OrderedDict()
_SECONDS = [0.0]


def decomposition_seconds() -> float:
    """Seconds this process has spent in stepwise decompositions for forecasts (a running total)."""
    return _SECONDS[0]


def _predict(net: Network, X: np.ndarray) -> np.ndarray:
    """One network's forecast ``(n, H)`` in target units from inputs ``(n, W, C)``."""
    from wq_pipeline.models.train import compiled_predict

    _, model, scaler = net
    return scaler.inverse(compiled_predict(model, scaler.transform_inputs(X).astype("float32")), X)


def _with_cov(X: np.ndarray, view: SeriesView, origins: np.ndarray, channels: int | None) -> np.ndarray:
    """``X`` plus the view's covariate channels; checks the count the network was trained with."""
    if view.covariates is not None:
        X = with_covariates(X, view.covariates, origins)
    if channels is not None and X.shape[2] != channels:
        raise ValueError(f"the network was trained on {channels} input channels, the series gives {X.shape[2]} "
                         f"(covariates missing?)")
    return X


def _networks_from(names: list[str | None], parts: Parts | None) -> list[Network | None]:
    """The networks named in a state, from ``parts`` (None for a network the training skipped)."""
    have = {name: (name, model, scaler) for name, model, scaler in (parts.networks if parts else [])}
    missing = [n for n in names if n is not None and n not in have]
    if missing:
        raise ValueError(f"no network file for {', '.join(missing)}")
    return [None if n is None else have[n] for n in names]


class _NetworkModel(Forecaster):
    """A forecaster made of trained networks (a skipped one is None: its forecasts are NaN)."""

    trains_networks = True

    def __init__(self, networks: list[Network | None], channels: int | None = None) -> None:
        self.networks = networks
        self.channels = channels
        self._fitted = True

    def fit(self, view: SeriesView) -> "_NetworkModel":
        raise TypeError(f"{self.name}: networks are trained by wq_pipeline.serve.training (one training pool for every "
                        f"network of a model), then wrapped in this forecaster")

    def parts(self) -> Parts:
        return Parts(networks=[n for n in self.networks if n is not None])

    def _names(self) -> list[str | None]:
        return [None if n is None else n[0] for n in self.networks]

    def _nan(self, origins: np.ndarray, horizon: int) -> np.ndarray:
        return np.full((np.asarray(origins).size, horizon), np.nan)


@register
class PlainLSTM(_NetworkModel):
    """The plain LSTM: the raw series' last W values (and the covariates) -> the next H values."""

    name = "lstm"

    def __init__(self, networks: list[Network | None], window: int, channels: int | None = None) -> None:
        super().__init__(networks, channels)
        self.window = int(window)

    def forecast(self, view: SeriesView, origins: np.ndarray) -> np.ndarray:
        origins = np.asarray(origins, dtype=np.int64)
        (net,) = self.networks
        if net is None or origins.size == 0:
            return self._nan(origins, view.horizon)
        X = _with_cov(raw_windows(np.asarray(view.values, dtype=np.float64), origins, self.window), view, origins,
                      self.channels)
        return _predict(net, X)

    def state(self) -> dict[str, Any]:
        return {"window": self.window, "networks": self._names(), "channels": self.channels}

    @classmethod
    def from_fitted(cls, fitted: Fitted) -> "PlainLSTM":
        return cls([fitted.network("lstm")], fitted.settings["window"], fitted.channels("lstm"))

    @classmethod
    def from_state(cls, state: dict[str, Any], parts: Parts | None = None) -> "PlainLSTM":
        return cls(_networks_from(state["networks"], parts), int(state["window"]), state.get("channels"))


@register
class ComponentNetworks(_NetworkModel):
    """One network per component of the stepwise decomposition, summed (with FECA)."""

    name = "decomp_feca_lstm"
    prefix = "feca_"  # the training jobs' names: prefix + component

    def __init__(self, networks: list[Network | None], decomposition: Decomposition,
                 channels: int | None = None) -> None:
        super().__init__(networks, channels)
        self.decomposition = decomposition

    def forecast(self, view: SeriesView, origins: np.ndarray) -> np.ndarray:
        origins = np.asarray(origins, dtype=np.int64)
        if origins.size == 0 or any(n is None for n in self.networks):
            return self._nan(origins, view.horizon)
        samples = self.decomposition.samples(np.asarray(view.values, dtype=np.float64), origins)
        if samples.tails.shape[1] != len(self.networks):
            raise ValueError(f"{len(self.networks)} component networks, but the decomposition gives "
                             f"{samples.tails.shape[1]} components")
        total = np.zeros((origins.size, view.horizon))
        for k, net in enumerate(self.networks):
            X = _with_cov(samples.tails[:, k, :][:, :, None], view, origins, self.channels)
            total += _predict(net, X)
        return total

    def state(self) -> dict[str, Any]:
        return {"decomposition": self.decomposition.to_json(), "networks": self._names(), "channels": self.channels}

    @classmethod
    def from_fitted(cls, fitted: Fitted) -> "ComponentNetworks":
        names = [cls.prefix + c for c in fitted.components]
        return cls([fitted.network(n) for n in names], fitted.settings["decomposition"], fitted.channels(names[0]))

    @classmethod
    def from_state(cls, state: dict[str, Any], parts: Parts | None = None) -> "ComponentNetworks":
        return cls(_networks_from(state["networks"], parts), Decomposition.from_json(state["decomposition"]),
                   state.get("channels"))


@register
class PlainComponentNetworks(ComponentNetworks):
    """The per-component networks without FECA (the ablation)."""

    name = "decomp_lstm"
    prefix = "plain_"


@register
class HybridNetwork(_NetworkModel):
    """The hybrid (:mod:`wq_pipeline.models.hybrid`): first-stage forecast plus ``weights (H,)`` x the
    network's correction; with the network skipped, the first stage alone."""

    name = "hybrid_feca_lstm"

    def __init__(self, networks: list[Network | None], options: HybridOptions, first_stage_params: dict[str, Any] | None,
                 weights: np.ndarray, window: int, decomposition: Decomposition | None,
                 channels: int | None = None) -> None:
        super().__init__(networks, channels)
        self.options = options
        self.first_stage_params = first_stage_params
        self.weights = np.asarray(weights, dtype=np.float64)
        self.window = int(window)
        self.decomposition = decomposition

    def forecast(self, view: SeriesView, origins: np.ndarray) -> np.ndarray:
        origins = np.asarray(origins, dtype=np.int64)
        values = np.asarray(view.values, dtype=np.float64)
        f1 = first_stage_forecast(values, origins, view.horizon, view.step_hours, self.options.first_stage,
                                  self.first_stage_params)
        (net,) = self.networks
        if net is None or origins.size == 0:
            return f1 if self.options.first_stage != "none" else self._nan(origins, view.horizon)
        samples = None
        if self.options.components:
            if self.decomposition is None:
                raise ValueError("the hybrid uses components but its state has no decomposition")
            samples = self.decomposition.samples(values, origins)
        cal = calendar_channels(view.times) if self.options.calendar else None
        from wq_pipeline.data.covariates import Covariates

        cov = view.covariates if view.covariates is not None else Covariates(np.zeros((values.size, 0)), [])
        X = hybrid_inputs(values, origins, self.window, self.options, samples, cov, cal)
        if self.channels is not None and X.shape[2] != self.channels:
            raise ValueError(f"the hybrid network was trained on {self.channels} input channels, the series gives "
                             f"{X.shape[2]} (covariates missing?)")
        return f1 + self.weights[None, :] * _predict(net, X)

    def state(self) -> dict[str, Any]:
        return {"options": asdict(self.options), "first_stage_params": self.first_stage_params,
                "weights": [float(w) for w in self.weights], "window": self.window,
                "decomposition": None if self.decomposition is None else self.decomposition.to_json(),
                "networks": self._names(), "channels": self.channels}

    @classmethod
    def from_fitted(cls, fitted: Fitted) -> "HybridNetwork":
        opts = fitted.settings["hybrid_options"]
        return cls([fitted.network("hybrid")], opts, fitted.settings.get("first_stage_params"),
                   fitted.settings["hybrid_weights"], fitted.settings["window"],
                   fitted.settings["decomposition"] if opts.components else None, fitted.channels("hybrid"))

    @classmethod
    def from_state(cls, state: dict[str, Any], parts: Parts | None = None) -> "HybridNetwork":
        dec = state.get("decomposition")
        return cls(_networks_from(state["networks"], parts), HybridOptions(**state["options"]),
                   state.get("first_stage_params"), np.asarray(state["weights"], dtype=np.float64),
                   int(state["window"]), None if dec is None else Decomposition.from_json(dec), state.get("channels"))
