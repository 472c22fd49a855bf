"""Model registry: real Keras files in tmp_path, tiny networks (window 8, 3 LSTM units)."""

from __future__ import annotations

import json
import os
import re
import stat
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from wq_pipeline.errors import InputError
from wq_pipeline.models import build_forecaster, predict
from wq_pipeline.store.registry import LoadedModel, ModelVersion, Registry, version_id
from wq_pipeline.models.scaling import Scaler

W, H = 8, 2
END = pd.Timestamp("2012-01-10T00:00:00-05:00")


@pytest.fixture(scope="module")
def networks() -> list[tuple[str, keras.Model, Scaler]]:
    """One FECA and one plain forecaster with scalers whose floats need all 17 digits."""
    feca = build_forecaster(W, 1, H, units=3, feca=True, seed=0, name="feca_imf1")
    plain = build_forecaster(W, 1, H, units=3, feca=False, seed=1, name="plain_imf1")
    return [("feca_imf1", feca, Scaler(mean=0.1 + 0.2, std=1 / 3)),
            ("plain_imf1", plain, Scaler(mean=-7.123456789012345e-5, std=2.0 ** 0.5))]


def _manifest(site: str = "Sapelo Dean Creek", target: str = "DO_obs", end: pd.Timestamp = END,
              seed: int = 1, components: tuple[str, ...] = ("feca_imf1", "plain_imf1")) -> dict:
    start = end - pd.Timedelta(days=60)
    config = {"window": W, "horizon": H, "units": 3, "seed": seed, "method": "vmd", "modes": 1}
    content = {"site": site, "target": target, "config": config, "data_sha256": "ab" * 32}
    return {
        "version": version_id(site, target, end, content),
        "site": site,
        "target": target,
        "method": "vmd",
        "components": list(components),
        "training_period": {"start": start.isoformat(), "end": end.isoformat()},
        "data_sha256": "ab" * 32,
        "config": config,
        "validation": {"rmse": 0.4123456789, "nse": 0.87, "n_val": 120},
    }


def _dirs(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def test_round_trip_predictions_scalers_manifest(tmp_path: Path, networks) -> None:
    reg = Registry(tmp_path / "registry")
    assert not (tmp_path / "registry").exists()  # created lazily
    manifest = _manifest()
    mv = reg.save(manifest, networks)
    assert isinstance(mv, ModelVersion) and mv.version == manifest["version"]
    assert mv.path == tmp_path / "registry" / manifest["version"]
    assert "created_at" not in manifest  # the caller's dict is not modified

    # layout and permissions
    assert sorted(str(p.relative_to(mv.path)) for p in mv.path.rglob("*")) == [
        "manifest.json", "networks", "networks/feca_imf1.keras", "networks/plain_imf1.keras", "scalers.json"]
    for p in [mv.path, *mv.path.rglob("*")]:
        assert stat.S_IMODE(p.stat().st_mode) == (0o755 if p.is_dir() else 0o644), p

    loaded = reg.load(mv.version)
    assert isinstance(loaded, LoadedModel)
    assert [n for n, _, _ in loaded.networks] == ["feca_imf1", "plain_imf1"]
    x = np.random.default_rng(0).normal(size=(16, W, 1)).astype("float32")
    for (name, original, scaler), (lname, model, lscaler) in zip(networks, loaded.networks):
        assert lname == name
        assert lscaler == scaler  # exact float round-trip
        assert type(lscaler.mean) is float and type(lscaler.std) is float
        np.testing.assert_array_equal(predict(model, x), predict(original, x))
    assert any(type(layer).__name__ == "FECA" for layer in loaded.networks[0][1].layers)
    assert not any(type(layer).__name__ == "FECA" for layer in loaded.networks[1][1].layers)

    m = loaded.version.manifest
    for key, value in manifest.items():
        assert m[key] == value, key
    assert m["format"] == 1
    assert set(m["files"]) == {"networks/feca_imf1.keras", "networks/plain_imf1.keras", "scalers.json"}
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in m["files"].values())
    assert {"wq-pipeline", "python", "numpy", "keras"} <= set(m["library_versions"])
    created = pd.Timestamp(m["created_at"])
    assert created.tzinfo is not None and abs(pd.Timestamp.now(tz="UTC") - created) < pd.Timedelta(minutes=5)
    assert loaded.version.site == "Sapelo Dean Creek" and loaded.version.target == "DO_obs"
    assert loaded.version.trained_until == END and loaded.version.trained_until.tzinfo is not None
    assert loaded.version.created_at == created
    saved = json.loads((mv.path / "scalers.json").read_text())["feca_imf1"]
    assert saved["mean"] == 0.1 + 0.2 and saved["std"] == 1 / 3 and saved["level_free"] is False


def test_version_id_is_deterministic() -> None:
    content = {"config": {"window": 8, "units": 3}, "data_sha256": "ab" * 32}
    a = version_id("Sapelo Dean Creek", "DO (mg/L)", END, content)
    assert re.fullmatch(r"sapelo-dean-creek\.do-mg-l\.20120110T0500Z\.[0-9a-f]{10}", a), a
    assert version_id("Sapelo Dean Creek", "DO (mg/L)", END, dict(reversed(list(content.items())))) == a
    assert version_id("Sapelo Dean Creek", "DO (mg/L)", END.tz_convert("UTC"), content) == a  # same instant
    assert version_id("Sapelo Dean Creek", "DO (mg/L)", END + pd.Timedelta(hours=1), content) != a
    assert version_id("Sapelo Dean Creek", "DO (mg/L)", END, {**content, "config": {"window": 8, "units": 4}}) != a
    with pytest.raises(ValueError, match="timezone"):
        version_id("s", "t", pd.Timestamp("2012-01-10"), content)


def test_save_rejects_inconsistent_manifest(tmp_path: Path, networks) -> None:
    reg = Registry(tmp_path)
    with pytest.raises(ValueError, match="components"):
        reg.save(_manifest(components=("plain_imf1", "feca_imf1")), networks)
    with pytest.raises(ValueError, match="does not match"):
        reg.save({**_manifest(), "site": "another site"}, networks)
    bad = _manifest()
    del bad["data_sha256"]
    with pytest.raises(ValueError, match="data_sha256"):
        reg.save(bad, networks)
    assert _dirs(tmp_path) == []  # nothing half-written


def test_save_is_idempotent_and_crash_leftovers_are_invisible(tmp_path: Path, networks) -> None:
    root = tmp_path / "registry"
    reg = Registry(root)
    manifest = _manifest()
    first = reg.save(manifest, networks)
    second = reg.save(manifest, networks)
    assert second.version == first.version and second.manifest["created_at"] == first.manifest["created_at"]
    assert _dirs(root) == [first.version]

    # another process registers the same version while this one is writing: the rename loses
    class Racing(Registry):
        def _clean_tmp(self) -> None:
            super()._clean_tmp()
            Registry(self.root).save(other, networks)

    other = _manifest(seed=2)
    won = Racing(root).save(other, networks)
    assert won.version == other["version"]
    assert _dirs(root) == sorted([first.version, other["version"]])  # the loser's temp folder is gone
    assert Registry(root).load(won.version).version.manifest["created_at"] == won.manifest["created_at"]

    # a crash mid-save leaves a .tmp- folder with partial files: invisible to list/get/newest
    crashed = _manifest(end=END + pd.Timedelta(days=3))
    tmp = root / f".tmp-{crashed['version']}-0123456789abcdef"
    (tmp / "networks").mkdir(parents=True)
    (tmp / "networks" / "feca_imf1.keras").write_bytes(b"PK\x03\x04 partial")
    (tmp / "manifest.json").write_text(json.dumps({**crashed, "format": 1, "files": {}, "created_at": "now"}))
    assert [v.version for v in reg.list()] == [first.version, other["version"]]  # same end: by created_at
    assert reg.newest("Sapelo Dean Creek", "DO_obs", END + pd.Timedelta(days=30)).version in (
        first.version, other["version"])
    for name in (crashed["version"], tmp.name):
        with pytest.raises(InputError, match="unknown model version"):
            reg.get(name)

    # leftovers older than an hour are cleaned by the next save; recent ones (a save in progress) stay
    stale = root / ".tmp-stale-version-00"
    (stale / "networks").mkdir(parents=True)
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    reg.save(_manifest(seed=3), networks)
    assert not stale.exists() and tmp.exists()


def test_newest_and_list_order(tmp_path: Path, networks) -> None:
    reg = Registry(tmp_path)
    utc = lambda day: pd.Timestamp(f"2012-01-{day:02d}T00:00:00Z")  # noqa: E731
    ids = {day: reg.save(_manifest(end=utc(day)), networks).version for day in (24, 10, 17)}
    reg.save(_manifest(site="Other site", end=utc(19)), networks)
    reg.save(_manifest(target="Temp", end=utc(19)), networks)

    assert reg.newest("Sapelo Dean Creek", "DO_obs", utc(20)).version == ids[17]
    assert reg.newest("Sapelo Dean Creek", "DO_obs", pd.Timestamp("2012-01-19T20:00:00-05:00")).version == ids[17]
    assert reg.newest("Sapelo Dean Creek", "DO_obs", utc(17)).version == ids[17]  # inclusive
    assert reg.newest("Sapelo Dean Creek", "DO_obs", utc(5)) is None
    assert reg.newest("Sapelo Dean Creek", "DO_obs", utc(31)).version == ids[24]
    assert reg.newest("Nowhere", "DO_obs", utc(31)) is None

    mine = reg.list("Sapelo Dean Creek", "DO_obs")
    assert [v.version for v in mine] == [ids[10], ids[17], ids[24]]
    assert [(v.site, v.target) for v in reg.list()] == [
        ("Other site", "DO_obs"), ("Sapelo Dean Creek", "DO_obs"), ("Sapelo Dean Creek", "DO_obs"),
        ("Sapelo Dean Creek", "DO_obs"), ("Sapelo Dean Creek", "Temp")]
    assert len(reg.list(target="Temp")) == 1 and len(reg.list(site="Other site")) == 1
    assert Registry(tmp_path / "empty").list() == [] and Registry(tmp_path / "empty").newest("a", "b", utc(1)) is None


def test_unknown_version_lists_available(tmp_path: Path, networks) -> None:
    reg = Registry(tmp_path / "reg")
    with pytest.raises(InputError, match="holds no versions"):
        reg.load("nope")
    a = reg.save(_manifest(end=END), networks).version
    b = reg.save(_manifest(end=END + pd.Timedelta(days=7)), networks).version
    with pytest.raises(InputError) as err:
        reg.load("sapelo.do.20990101T0000Z.0000000000")
    msg = str(err.value)
    assert "sapelo.do.20990101T0000Z.0000000000" in msg and str(tmp_path / "reg") in msg
    assert msg.index(b) < msg.index(a)  # newest first
    with pytest.raises(InputError, match="unknown model version"):
        reg.get("../reg")


def test_tampered_file_is_reported_corrupted(tmp_path: Path, networks) -> None:
    reg = Registry(tmp_path)
    mv = reg.save(_manifest(), networks)
    path = mv.path / "networks" / "plain_imf1.keras"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="corrupted") as err:
        reg.load(mv.version)
    assert "plain_imf1.keras" in str(err.value)

    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    reg.load(mv.version)  # restored: loads again
    scalers = mv.path / "scalers.json"
    scalers.write_text(scalers.read_text().replace("0.30000000000000004", "0.3"))
    with pytest.raises(InputError, match=r"scalers\.json: corrupted"):
        reg.load(mv.version)


def test_unknown_format_is_refused(tmp_path: Path, networks) -> None:
    reg = Registry(tmp_path)
    mv = reg.save(_manifest(), networks)
    manifest = json.loads((mv.path / "manifest.json").read_text())
    (mv.path / "manifest.json").write_text(json.dumps({**manifest, "format": 2}))
    with pytest.raises(InputError, match="format 2"):
        reg.load(mv.version)


def test_safe_mode_refuses_code(tmp_path: Path) -> None:
    inputs = keras.Input(shape=(W, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0, name="code")(inputs)
    outputs = keras.layers.Dense(H)(keras.layers.Flatten()(x))
    sneaky = keras.Model(inputs, outputs)
    reg = Registry(tmp_path)
    mv = reg.save(_manifest(components=("evil",)), [("evil", sneaky, Scaler(0.0, 1.0))])  # hashes are right
    with pytest.raises(InputError, match="safe mode") as err:
        reg.load(mv.version)
    assert "evil.keras" in str(err.value) and "contains code" in str(err.value)

    # even a process that switched safe mode off globally does not run the file's code
    from keras.src.saving.serialization_lib import SafeModeScope

    with SafeModeScope(False), pytest.raises(InputError, match="safe mode"):
        reg.load(mv.version)
