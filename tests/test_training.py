"""Training a model version as of a time: only the data known then, idempotent, recorded in a manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import TINY, TINY_TRAIN_AS_OF
from wq_pipeline.config import EvaluateConfig
from wq_pipeline.errors import InputError
from wq_pipeline.registry import Registry
from wq_pipeline.training import train_version


def _cut_file(src: Path, dst: Path, until: str) -> Path:
    """The file a user would have had at ``until``: rows with a timestamp at or before it (same
    file name, so the same site name)."""
    dst = dst / src.name
    dst.parent.mkdir(parents=True, exist_ok=True)
    df = pd.read_csv(src)
    keep = pd.to_datetime(df["DateTimeStamp"], utc=True) <= pd.Timestamp(until)
    df[keep].to_csv(dst, index=False)
    return dst


def test_training_as_of_sees_exactly_the_data_a_user_had_then(tiny_model, sapelo_tiny_csv, tmp_path):
    cfg, root, version = tiny_model
    m = version.manifest
    assert pd.Timestamp(m["training_period"]["end"]) == pd.Timestamp(TINY_TRAIN_AS_OF)
    assert m["components"] == ["imf1", "imf2", "residual"] and m["procedure"] == "wq train"
    assert m["training"]["n_train"] > 400 and m["training"]["n_val"] >= 10
    # all TINY options are recorded, so forecasts can rebuild the same decomposition
    assert all(m["config"][k] == v for k, v in TINY.items())
    assert np.isfinite(m["validation"]["rmse"]) and m["validation"]["n_points"] == m["training"]["n_val"]
    assert set(m["files"]) == {"scalers.json", *(f"networks/{c}.keras" for c in m["components"])}

    # the same cut-off on a file that ends at TINY_TRAIN_AS_OF gives the very same version:
    # same data hash, so nothing after the cut-off reached the training data
    reg = tmp_path / "reg"
    shutil.copytree(root, reg)
    cut = _cut_file(sapelo_tiny_csv, tmp_path / "cut", TINY_TRAIN_AS_OF)
    again, trained = train_version(cfg.model_copy(update={"data": cut}), Registry(reg))
    assert not trained and again.version == version.version
    assert again.manifest["data_sha256"] == m["data_sha256"]

    # one more hour of data is another version
    later = train_version(cfg, Registry(reg), as_of=pd.Timestamp(TINY_TRAIN_AS_OF) + pd.Timedelta("1h"),
                          progress=None)[0]
    assert later.version != version.version and later.trained_until > version.trained_until


def test_training_on_too_little_data_is_a_clear_error(sapelo_tiny_csv, tmp_path):
    cfg = EvaluateConfig(data=sapelo_tiny_csv, **TINY)
    with pytest.raises(InputError, match=r"yields 0 training origins .*\(at least 50 needed\)"):
        train_version(cfg, Registry(tmp_path / "reg"), as_of=pd.Timestamp("2012-01-05T00:00-05:00"))
    assert not (tmp_path / "reg").exists()


def test_manifest_is_plain_json_with_versions_and_hashes(tiny_model):
    _, _, version = tiny_model
    on_disk = json.loads((version.path / "manifest.json").read_text())
    assert on_disk["version"] == version.version
    assert {"tensorflow-cpu", "keras", "numpy"} <= set(on_disk["library_versions"])
    assert pd.Timestamp(on_disk["created_at"]).tzinfo is not None


def test_two_stage_version_learns_its_groups_from_its_own_training_data(sapelo_tiny_csv, tmp_path):
    from wq_pipeline.forecasting import issue_forecast

    cfg = EvaluateConfig(data=sapelo_tiny_csv, **dict(TINY, method="ceemdan-se-vmd", modes=3, secondary_modes=2,
                                                      emd_trials=5))
    registry = Registry(tmp_path / "models")
    version, trained = train_version(cfg, registry, as_of=pd.Timestamp(TINY_TRAIN_AS_OF))
    params = version.manifest["decomposer_params"]
    assert trained and len(params["groups"]) == 4 and params["groups"][0] == 0
    assert version.manifest["components"] == ["high_vmd1", "high_vmd2", "medium", "low", "residual"]
    issued = issue_forecast(cfg, registry, pd.Timestamp("2012-02-10T12:00:00-05:00"))
    assert issued.version == version.version and np.isfinite(issued.values).all()
    assert 0.0 < issued.values.mean() < 15.0  # mg/L of dissolved oxygen, not a unit slip
