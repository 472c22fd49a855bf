"""Model registry: trained model versions as immutable folders ``<root>/<version>/``.

A version folder holds::

    manifest.json          what was trained, on what, with which settings, and file hashes
    scalers.json           {component: Scaler.to_json()}: mean, std, level-free settings (exact float
                           round trip; a version saved before level-free scaling holds mean/std only)
    networks/<name>.keras  one Keras file per component network
    forecaster.json        a forecaster's state {"name", "state"} (:mod:`wq_pipeline.models.forecaster`):
                           alone for a statistical model (``kind`` "statistical"); with the
                           networks above and ``arrays.npz`` (e.g. the ensemble's error record,
                           read without pickle) for any other (``kind`` "forecaster")

A *global* version (``kind`` "global", ``wq train --all-sites``) holds networks trained once on
every station's pooled samples, with their pooled scalers, and the list of its stations. Each
station gets its own version beside it, as any other forecaster's, except that its networks are
not copied: its ``scalers.json`` holds the station's way into the pooled networks
(:class:`~wq_pipeline.models.scaling.SeriesScaler`) and ``manifest["shared"]`` names the global
version and the SHA-256 of each network file it uses there; loading verifies those too.

``manifest["kind"]`` says which (absent in versions saved before forecasters: component networks
and scalers only); ``manifest["model"]`` names the model (absent: ``decomp_feca_lstm``).

Versions are written into ``<root>/.tmp-<version>-<uuid>/`` and renamed into place in one
``os.rename``, so readers never see a half-written version. Version ids are deterministic
(:func:`version_id`), so registering the same training twice is idempotent: the second save
finds the first one and returns it. Loading verifies every file's SHA-256 and loads networks in
Keras safe mode (no code from the file is ever run).
"""

from __future__ import annotations

import copy
import errno
import json
import logging
import math
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from wq_pipeline.common import content_sha256, file_sha256, library_versions, to_jsonable
from wq_pipeline.errors import InputError
from wq_pipeline.models.serialized import load_network
from wq_pipeline.models.scaling import Scaler, SeriesScaler, scaler_from_json

if TYPE_CHECKING:  # keras is imported lazily: listing versions must not start TensorFlow
    import keras

    from wq_pipeline.models.forecaster import Forecaster

log = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
SCALERS = "scalers.json"
NETWORKS = "networks"
FORECASTER = "forecaster.json"
ARRAYS = "arrays.npz"
#: what a version holds: component networks with scalers (before forecasters), a statistical
#: forecaster's JSON state, or any forecaster's state with its networks and arrays
KIND_NETWORKS, KIND_STATISTICAL, KIND_FORECASTER, KIND_GLOBAL = "networks", "statistical", "forecaster", "global"
KINDS = (KIND_NETWORKS, KIND_STATISTICAL, KIND_FORECASTER, KIND_GLOBAL)
#: the model of a version whose manifest names none (every version before ``--model``)
DEFAULT_MODEL = "decomp_feca_lstm"
TMP_PREFIX = ".tmp-"
TMP_MAX_AGE_S = 3600.0
REQUIRED_KEYS = ("version", "site", "target", "method", "components", "training_period", "data_sha256",
                 "config", "validation")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_MAX_LISTED = 10


# --------------------------------------------------------------------------- ids and small helpers


def slug(text: str) -> str:
    """Lowercase ``text`` and keep ``[a-z0-9_-]`` only: every run of other characters becomes one
    ``-`` (leading/trailing ``-`` dropped); an empty result becomes ``"unnamed"``."""
    s = re.sub(r"[^a-z0-9_-]+", "-", str(text).lower()).strip("-")
    return s or "unnamed"


def _utc(ts: Any, what: str) -> pd.Timestamp:
    """A tz-aware timestamp in UTC; naive timestamps are refused (their instant is ambiguous)."""
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware (an ISO 8601 time with an offset), got {ts!r}")
    return t.tz_convert("UTC")


def _stamp(trained_until: pd.Timestamp) -> str:
    return _utc(trained_until, "trained_until").strftime("%Y%m%dT%H%MZ")


def version_id(site: str, target: str, trained_until: pd.Timestamp, content: dict) -> str:
    """Deterministic id: ``{slug(site)}.{slug(target)}.{trained_until UTC %Y%m%dT%H%MZ}.{sha256(content)[:10]}``.

    ``content`` is hashed as sorted-key JSON (see :func:`content_sha256`), so the same inputs always
    give the same id and retraining the same thing is idempotent. ``trained_until`` must be
    timezone-aware.
    """
    return f"{slug(site)}.{slug(target)}.{_stamp(trained_until)}.{content_sha256(content)[:10]}"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, obj: Any) -> None:
    """Write JSON (floats in shortest round-trip form, no NaN), 0644, flushed to disk."""
    text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(path, 0o644)


# --------------------------------------------------------------------------- versions


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: its id, folder and manifest (read-only by convention)."""

    version: str
    path: Path
    manifest: dict = field(hash=False, repr=False)

    @property
    def site(self) -> str:
        return str(self.manifest["site"])

    @property
    def target(self) -> str:
        return str(self.manifest["target"])

    @property
    def trained_until(self) -> pd.Timestamp:
        """End of the training period (tz-aware; a naive value in an old manifest is read as UTC)."""
        t = pd.Timestamp(self.manifest["training_period"]["end"])
        return t.tz_localize("UTC") if t.tzinfo is None else t

    @property
    def created_at(self) -> pd.Timestamp:
        t = pd.Timestamp(self.manifest["created_at"])
        return t.tz_localize("UTC") if t.tzinfo is None else t

    @property
    def model(self) -> str:
        """The model's name (``decomp_feca_lstm`` for versions saved before ``--model``)."""
        return str(self.manifest.get("model", DEFAULT_MODEL))

    @property
    def kind(self) -> str:
        """``"networks"``, ``"statistical"``, ``"forecaster"`` or ``"global"``."""
        return str(self.manifest.get("kind", KIND_NETWORKS))

    def sort_key(self) -> tuple[str, str, pd.Timestamp, pd.Timestamp]:
        return (self.site, self.target, self.trained_until, self.created_at)


@dataclass
class LoadedModel:
    """A loaded version: its networks with their scalers, in ``manifest['components']`` order, or
    (statistical versions) its fitted ``forecaster`` and no networks."""

    version: ModelVersion
    networks: list[tuple[str, "keras.Model", Scaler]]
    forecaster: "Forecaster | None" = None


# --------------------------------------------------------------------------- validation


def _check_manifest(manifest: dict, networks: list[tuple[str, Any, Scaler]]) -> None:
    """Refuse a manifest that would make an unreadable or mislabelled version (programming errors:
    :class:`ValueError`)."""
    _check_common(manifest)
    _check_networks(manifest, networks)


def _check_common(manifest: dict) -> None:
    """The checks every kind of version passes (:class:`ValueError`)."""
    if not isinstance(manifest, dict):
        raise ValueError(f"manifest must be a dict, got {type(manifest).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise ValueError(f"manifest lacks required keys: {', '.join(missing)}")
    version = manifest["version"]
    if not isinstance(version, str) or not _SAFE_NAME.match(version):
        raise ValueError(f"manifest version {version!r} is not a safe folder name ([A-Za-z0-9_.-], no leading dot)")
    for key in ("site", "target", "method", "data_sha256"):
        if not isinstance(manifest[key], str):
            raise ValueError(f"manifest['{key}'] must be a string, got {manifest[key]!r}")
    for key in ("config", "validation"):
        if not isinstance(manifest[key], dict):
            raise ValueError(f"manifest['{key}'] must be a dict, got {type(manifest[key]).__name__}")
    period = manifest["training_period"]
    if not isinstance(period, dict) or not {"start", "end"} <= set(period):
        raise ValueError(f"manifest['training_period'] must be {{'start': ISO, 'end': ISO}}, got {period!r}")
    for key in ("start", "end"):
        if not isinstance(period[key], str):
            raise ValueError(f"training_period['{key}'] must be an ISO 8601 string, got {period[key]!r}")
        _utc(period[key], f"training_period['{key}']")
    prefix = f"{slug(manifest['site'])}.{slug(manifest['target'])}.{_stamp(pd.Timestamp(period['end']))}."
    if not version.startswith(prefix):
        raise ValueError(f"manifest version {version!r} does not match its site, target and training end "
                         f"(expected an id starting with {prefix!r}; use version_id())")


def _check_networks(manifest: dict, networks: list[tuple[str, Any, Scaler]]) -> None:
    components = manifest["components"]
    names = [n for n, _, _ in networks]
    if not isinstance(components, list) or components != names:
        raise ValueError(f"manifest['components'] {components!r} must list the networks' names in order {names!r}")
    if not names:
        raise ValueError("a model version needs at least one network")
    if len(set(names)) != len(names):
        raise ValueError(f"network names must be unique, got {names!r}")
    for name, _, scaler in networks:
        if not isinstance(name, str) or not _SAFE_NAME.match(name):
            raise ValueError(f"network name {name!r} is not a safe file name ([A-Za-z0-9_.-], no leading dot)")
        if not isinstance(scaler, (Scaler, SeriesScaler)):
            raise ValueError(f"network {name!r}: expected a Scaler, got {type(scaler).__name__}")


# --------------------------------------------------------------------------- registry


class Registry:
    """Model versions under ``root`` (created on the first save)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Registry({str(self.root)!r})"

    # ---------------------------------------------------------------- writing

    def save(self, manifest: dict, networks: list[tuple[str, "keras.Model", Scaler]]) -> ModelVersion:
        """Register a trained version atomically and return it.

        ``manifest`` needs at least ``version`` (from :func:`version_id`), ``site``, ``target``,
        ``method``, ``components`` (the networks' names, in order), ``training_period`` ({start,
        end}, ISO 8601 with offsets), ``data_sha256``, ``config`` and ``validation``. Added here:
        ``created_at`` (UTC now), ``library_versions``, ``files`` ({relative path: sha256}) and
        ``format``. If the version already exists (also when another process registers it
        while this one writes), the existing version is returned unchanged. A network is a Keras
        model or a :class:`~wq_pipeline.models.serialized.SerializedNetwork` (anything whose
        ``save(path)`` writes a ``.keras`` file).
        """
        _check_manifest(manifest, networks)
        return self._commit(manifest, lambda tmp: self._write_networks(tmp, networks))

    def save_global(self, manifest: dict, networks: list[tuple[str, "keras.Model", Scaler]],
                    stations: list[str]) -> ModelVersion:
        """Register a global version (idempotent, as :meth:`save`): ``networks`` trained on the
        pooled samples of ``stations``, with their pooled scalers. The stations' own versions
        are saved after it with :meth:`save_forecaster` ``(shared=...)``."""
        return self.save({**manifest, "kind": KIND_GLOBAL, "stations": list(stations)}, networks)

    def save_forecaster(self, manifest: dict, forecaster: "Forecaster",
                        shared: ModelVersion | None = None) -> ModelVersion:
        """Register a fitted forecaster atomically (idempotent, as :meth:`save`): its state goes to
        ``forecaster.json``, its networks to ``networks/`` with ``scalers.json``, its arrays to
        ``arrays.npz``. The manifest gets ``kind`` ("statistical" for a JSON-only state, else
        "forecaster"), ``model`` (the forecaster's name) and ``components`` (the network files).
        ``shared``: a global version whose networks (same names) these are; they are not copied,
        the manifest records the global version and their SHA-256s."""
        from wq_pipeline.models.forecaster import dump_forecaster

        parts = forecaster.parts()
        kind = KIND_FORECASTER if parts else KIND_STATISTICAL
        manifest = {**manifest, "kind": kind, "model": forecaster.served_model,
                    "components": [name for name, _, _ in parts.networks]}
        _check_common(manifest)
        if parts.networks:
            _check_networks(manifest, parts.networks)
        if shared is not None:
            if shared.kind != KIND_GLOBAL:
                raise ValueError(f"shared networks come from a global version, {shared.version} is {shared.kind!r}")
            rels = [f"{NETWORKS}/{name}.keras" for name in manifest["components"]]
            missing = [r for r in rels if r not in shared.manifest["files"]]
            if missing:
                raise ValueError(f"global version {shared.version} has no {', '.join(missing)}")
            manifest["shared"] = {"version": shared.version, "files": {r: shared.manifest["files"][r] for r in rels}}
        doc = dump_forecaster(forecaster)

        def write(tmp: Path) -> dict[str, str]:
            files = (self._write_networks(tmp, parts.networks, models=shared is None) if parts.networks else {})
            if parts.arrays:
                import numpy as np

                with open(tmp / ARRAYS, "wb") as fh:
                    np.savez(fh, **parts.arrays)
                _fsync(tmp / ARRAYS)
                files[ARRAYS] = file_sha256(tmp / ARRAYS)
            _write_json(tmp / FORECASTER, doc)
            files[FORECASTER] = file_sha256(tmp / FORECASTER)
            return files

        return self._commit(manifest, write)

    @staticmethod
    def _write_networks(tmp: Path, networks: list[tuple[str, "keras.Model", Scaler]],
                        models: bool = True) -> dict[str, str]:
        """Write ``networks/<name>.keras`` (unless not ``models``) and ``scalers.json`` into
        ``tmp``; their SHA-256s."""
        net_dir = tmp / NETWORKS
        if models:
            os.mkdir(net_dir, 0o755)
            os.chmod(net_dir, 0o755)
        files: dict[str, str] = {}
        for name, model, _ in networks if models else []:
            rel = f"{NETWORKS}/{name}.keras"
            path = tmp / rel
            model.save(path)
            os.chmod(path, 0o644)
            _fsync(path)
            files[rel] = file_sha256(path)
        scalers = {}
        for name, _, sc in networks:
            mean, std = float(sc.mean), float(sc.std)
            if not (math.isfinite(mean) and math.isfinite(std)):
                raise ValueError(f"network {name!r}: scaler must be finite, got mean={mean}, std={std}")
            scalers[name] = sc.to_json()
        _write_json(tmp / SCALERS, scalers)
        files[SCALERS] = file_sha256(tmp / SCALERS)
        if models:
            _fsync(net_dir)
        return files

    def _commit(self, manifest: dict, write: Any) -> ModelVersion:
        """Write a version's files with ``write(tmp_folder) -> {relative path: sha256}`` and its
        manifest into a temporary folder, then rename it into place (or return the existing one)."""
        version = manifest["version"]
        final = self.root / version
        existing = self._read(version)
        if existing is not None:
            return existing

        self.root.mkdir(parents=True, exist_ok=True)
        self._clean_tmp()
        tmp = self.root / f"{TMP_PREFIX}{version}-{uuid.uuid4().hex}"
        os.mkdir(tmp, 0o755)
        try:
            os.chmod(tmp, 0o755)
            files = write(tmp)

            full = to_jsonable(copy.deepcopy(manifest))
            full["created_at"] = pd.Timestamp.now(tz="UTC").isoformat()
            full["library_versions"] = library_versions()
            full["files"] = files
            full["format"] = FORMAT
            _write_json(tmp / MANIFEST, full)
            _fsync(tmp)
            try:
                os.rename(tmp, final)
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                log.info("model version %s was registered by another process first; keeping that one", version)
                shutil.rmtree(tmp, ignore_errors=True)
                existing = self._read(version)
                if existing is None:
                    raise InputError(f"{final}: exists but is not a readable model version; "
                                     f"move it away and register again") from exc
                return existing
            try:
                _fsync(self.root)
            except OSError:  # some file systems refuse fsync on folders; the rename is done
                pass
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return ModelVersion(version=version, path=final, manifest=full)

    def _clean_tmp(self) -> None:
        """Remove ``.tmp-*`` folders older than an hour (left by crashed saves)."""
        now = time.time()
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return
        for entry in entries:
            if not entry.name.startswith(TMP_PREFIX):
                continue
            try:
                if now - entry.stat(follow_symlinks=False).st_mtime > TMP_MAX_AGE_S:
                    shutil.rmtree(entry.path, ignore_errors=True)
            except OSError:
                pass

    # ---------------------------------------------------------------- reading

    def _read(self, version: str) -> ModelVersion | None:
        """The version in folder ``version``, or None if it is no (readable) version."""
        if not _SAFE_NAME.match(version):
            return None
        path = self.root / version
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(manifest, dict) or manifest.get("version") != version:
            return None
        mv = ModelVersion(version=version, path=path, manifest=manifest)
        try:
            mv.sort_key()
        except (KeyError, TypeError, ValueError):
            return None
        return mv

    def _all(self) -> list[ModelVersion]:
        try:
            names = sorted(e.name for e in os.scandir(self.root) if e.is_dir() and not e.name.startswith("."))
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            mv = self._read(name)
            if mv is None:
                log.warning("ignoring %s: not a readable model version", self.root / name)
            else:
                out.append(mv)
        return out

    def _unknown(self, version: str) -> InputError:
        known = sorted(self._all(), key=lambda v: (v.trained_until, v.created_at, v.version), reverse=True)
        if not known:
            listed = f"the registry {self.root} holds no versions"
        else:
            shown = ", ".join(v.version for v in known[:_MAX_LISTED])
            more = f" (and {len(known) - _MAX_LISTED} more)" if len(known) > _MAX_LISTED else ""
            listed = f"available versions in {self.root}, newest first: {shown}{more}"
        return InputError(f"unknown model version '{version}' in registry {self.root}; {listed}")

    def get(self, version: str) -> ModelVersion:
        """The registered version ``version``; :class:`InputError` listing the available ones if unknown."""
        mv = self._read(str(version))
        if mv is None:
            raise self._unknown(str(version))
        return mv

    def list(self, site: str | None = None, target: str | None = None) -> list[ModelVersion]:
        """Registered versions (optionally of one site and/or target), sorted by
        ``(site, target, trained_until, created_at)``. Unfinished ``.tmp-*`` folders are skipped."""
        out = [v for v in self._all() if (site is None or v.site == site) and (target is None or v.target == target)]
        return sorted(out, key=ModelVersion.sort_key)

    def newest(self, site: str, target: str, as_of: pd.Timestamp, model: str | None = None) -> ModelVersion | None:
        """The version of ``site``/``target`` (and ``model``, when given) with the latest
        ``trained_until <= as_of`` (ties: the latest created), or None. A naive ``as_of`` is read as UTC."""
        t = pd.Timestamp(as_of)
        if t.tzinfo is None:
            t = t.tz_localize("UTC")
        eligible = [v for v in self.list(site, target) if v.trained_until <= t and v.kind != KIND_GLOBAL
                    and (model is None or v.model == model)]
        return eligible[-1] if eligible else None

    def load(self, version: str) -> LoadedModel:
        """Load a version after verifying every file's SHA-256; networks load in Keras safe mode.

        Raises :class:`InputError` for an unknown version, an unknown manifest format, a missing
        or corrupted file, or a network file that contains code (refused by safe mode).
        """
        mv = self.get(version)
        m = mv.manifest
        if m.get("format") != FORMAT:
            raise InputError(f"{mv.path / MANIFEST}: unknown registry format {m.get('format')!r} "
                             f"(this wq-pipeline reads format {FORMAT}); upgrade wq-pipeline or retrain")
        if mv.kind not in KINDS:
            raise InputError(f"{mv.path / MANIFEST}: unknown model version kind {mv.kind!r} (this wq-pipeline reads "
                             f"{', '.join(KINDS)}); upgrade wq-pipeline or retrain")
        files = m.get("files")
        components = m.get("components")
        if not isinstance(files, dict) or not isinstance(components, list):
            raise InputError(f"{mv.path / MANIFEST}: corrupted manifest (no 'files' or 'components' list)")
        _verify_files(mv, mv.path, files)
        net_base, shared_files = mv.path, {}
        if "shared" in m:
            shared = m["shared"]
            if not isinstance(shared, dict) or not isinstance(shared.get("files"), dict):
                raise InputError(f"{mv.path / MANIFEST}: corrupted manifest (no 'files' in 'shared')")
            owner = self._read(str(shared.get("version")))
            if owner is None:
                raise InputError(f"{mv.path / MANIFEST}: model version '{mv.version}' serves the networks of global "
                                 f"version '{shared.get('version')}', which is not in the registry {self.root}")
            net_base, shared_files = owner.path, shared["files"]
            _verify_files(mv, net_base, shared_files)
        needed = ([FORECASTER] if mv.kind == KIND_STATISTICAL
                  else [SCALERS] + [f"{NETWORKS}/{name}.keras" for name in components])
        if mv.kind == KIND_FORECASTER:
            needed = [FORECASTER] + (needed if components else [])
        unlisted = [rel for rel in needed if rel not in files and rel not in shared_files]
        if unlisted:
            raise InputError(f"{mv.path / MANIFEST}: corrupted manifest (no hash for {', '.join(unlisted)})")
        networks = (self._load_networks(mv, components, net_base)
                    if mv.kind != KIND_STATISTICAL and components else [])
        if mv.kind in (KIND_NETWORKS, KIND_GLOBAL):
            return LoadedModel(version=mv, networks=networks)
        from wq_pipeline.models.forecaster import Parts
        from wq_pipeline.models.kinds import load_forecaster

        arrays = {}
        if ARRAYS in files:
            import numpy as np

            try:
                with np.load(mv.path / ARRAYS, allow_pickle=False) as npz:
                    arrays = {k: npz[k] for k in npz.files}
            except (OSError, ValueError) as exc:
                raise InputError(f"{mv.path / ARRAYS}: corrupted ({exc})") from None
        try:
            doc = json.loads((mv.path / FORECASTER).read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InputError(f"{mv.path / FORECASTER}: corrupted ({exc})") from None
        forecaster = load_forecaster(doc, str(mv.path / FORECASTER), Parts(networks=networks, arrays=arrays))
        if forecaster.served_model != mv.model:
            raise InputError(f"{mv.path / FORECASTER}: holds {forecaster.served_model!r}, the manifest names "
                             f"{mv.model!r}")
        return LoadedModel(version=mv, networks=networks, forecaster=forecaster)

    @staticmethod
    def _load_networks(mv: ModelVersion, components: list[str], base: Path) -> list[tuple[str, "keras.Model", Scaler]]:
        """A version's networks (from ``base``: its own folder, or its global version's) with its
        scalers, in ``components`` order (files already verified)."""
        try:
            raw = json.loads((mv.path / SCALERS).read_text(encoding="utf-8"))
            scalers = {name: scaler_from_json(raw[name]) for name in components}
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{mv.path / SCALERS}: corrupted (no scaler for every component: {exc})") from exc

        return [(name, load_network(base / NETWORKS / f"{name}.keras"), scalers[name]) for name in components]


def _verify_files(mv: ModelVersion, folder: Path, files: dict[str, str]) -> None:
    """Every file of ``files`` ({path relative to ``folder``: SHA-256}) lies inside ``folder``,
    exists and has its recorded hash; else :class:`InputError` naming the version."""
    root = folder.resolve()
    for rel, digest in files.items():
        path = (folder / rel).resolve()
        if root not in path.parents:
            raise InputError(f"{mv.path / MANIFEST}: corrupted manifest (file {rel!r} lies outside {folder})")
        if not path.is_file():
            raise InputError(f"{folder / rel}: missing from model version '{mv.version}' (corrupted version)")
        if file_sha256(path) != digest:
            raise InputError(f"{folder / rel}: corrupted (SHA-256 differs from the one recorded in "
                             f"{mv.path / MANIFEST}); the model version '{mv.version}' cannot be trusted, retrain it")
