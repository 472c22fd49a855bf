"""Training a model version as of a time: only the data known then, idempotent, recorded in a manifest."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import TINY, TINY_TRAIN_AS_OF
from wq_pipeline.config import EvaluateConfig
from wq_pipeline.errors import InputError
from wq_pipeline.store.registry import Registry
from wq_pipeline.serve.training import train_version


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
    # the main model by default: its members' networks, one file each
    comps = ["imf1", "imf2", "residual"]
    assert m["model"] == "ensemble" and m["kind"] == "forecaster" and m["procedure"] == "wq train"
    assert m["components"] == ["lstm", *(f"plain_{c}" for c in comps), *(f"feca_{c}" for c in comps), "hybrid"]
    assert m["training"]["n_train"] > 400 and m["training"]["n_val"] >= 10
    # all TINY options are recorded, so forecasts can rebuild the same decomposition
    assert all(m["config"][k] == v for k, v in TINY.items())
    assert np.isfinite(m["validation"]["rmse"]) and m["validation"]["n_points"] == m["training"]["n_val"]
    assert set(m["files"]) == {"scalers.json", "forecaster.json", "arrays.npz",
                                *(f"networks/{c}.keras" for c in m["components"])}

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
    from wq_pipeline.serve.forecasting import issue_forecast

    cfg = EvaluateConfig(data=sapelo_tiny_csv, **dict(TINY, method="ceemdan-se-vmd", modes=3, secondary_modes=2,
                                                      emd_trials=5))
    registry = Registry(tmp_path / "models")
    version, trained = train_version(cfg, registry, as_of=pd.Timestamp(TINY_TRAIN_AS_OF))
    params = version.manifest["decomposer_params"]
    assert trained and len(params["groups"]) == 4 and params["groups"][0] == 0
    assert [c for c in version.manifest["components"] if c.startswith("feca_")] == [
        f"feca_{c}" for c in ("high_vmd1", "high_vmd2", "medium", "low", "residual")]
    issued = issue_forecast(cfg, registry, pd.Timestamp("2012-02-10T12:00:00-05:00"))
    assert issued.version == version.version and np.isfinite(issued.values).all()
    assert 0.0 < issued.values.mean() < 15.0  # mg/L of dissolved oxygen, not a unit slip


# --------------------------------------------------------------------------- statistical models


from wq_pipeline.config import NETWORK_SERVED as NETWORKS  # noqa: E402
from wq_pipeline.config import STATISTICAL_MODELS as STATISTICAL  # noqa: E402


def test_registered_models_forecast_what_the_evaluation_scored(tiny_stepwise_run, tmp_path):
    """``wq evaluate --register --model NAME``, for every model it can register: the served
    version's forecast at every test origin equals the evaluation's forecast of NAME there (same
    fitted state or networks, through a registry round trip), and so do its quantiles (the
    record of its own forecasts comes with it)."""
    from wq_pipeline.serve.forecasting import forecasts_from
    from wq_pipeline.serve.training import config_for, register_evaluation

    out, result = tiny_stepwise_run
    table = result.forecasts  # forecasts.csv, before rounding
    origins = result.plan.split.test
    registry = Registry(tmp_path / "models")
    cfg = EvaluateConfig(data=Path(result.metrics["dataset"]), out=out, **TINY)
    for name in (*STATISTICAL, *NETWORKS, "ensemble"):
        mcfg = cfg.model_copy(update={"model": name})
        version = register_evaluation(result, mcfg, registry)
        statistical = name in STATISTICAL
        assert version.model == name and version.kind == "forecaster"  # a state and the record of its forecasts
        loaded = registry.load(version.version)
        assert (loaded.networks == []) == statistical
        issued, _ = forecasts_from(result.station, version.site, loaded, config_for(version, mcfg), origins)
        assert set(issued.issued_by) == {name}
        rows = table[table["model"] == name]
        want = rows.pivot(index="issued_at", columns="step", values="forecast")
        # statistical state is exact; networks predict through a compiled function (float32)
        tol = 1e-9 if statistical else 1e-5
        np.testing.assert_allclose(issued.values, want.to_numpy(), rtol=0, atol=tol, err_msg=name)
        levels = issued.levels
        assert levels == tuple(cfg.quantiles), name
        for k, lv in enumerate(levels):
            want_q = rows.pivot(index="issued_at", columns="step", values=f"q{lv:g}").to_numpy()
            np.testing.assert_allclose(issued.quantiles[:, :, k], want_q, rtol=0, atol=10 * tol, err_msg=f"{name} q{lv:g}")
        assert register_evaluation(result, mcfg, registry).version == version.version  # idempotent
    assert len(registry.list()) == len(STATISTICAL) + len(NETWORKS) + 1


def test_train_forecast_and_corrupted_state_of_a_statistical_version(sapelo_tiny_csv, tmp_path, capsys):
    from wq_pipeline.cli import main

    store = ["--models", str(tmp_path / "models"), "--database", f"sqlite:///{tmp_path / 'wq.db'}"]
    data = ["--data", str(sapelo_tiny_csv), "--target", "DO_obs", "--freq", "1h", *store]
    common = [*data, "--model", "harmonic_ar"]
    assert main(["train", *common, "--window", "24", "--horizon", "3", "--as-of", TINY_TRAIN_AS_OF]) == 0
    assert "(harmonic_ar)" in capsys.readouterr().out
    (version,) = Registry(tmp_path / "models").list()
    assert version.model == "harmonic_ar" and (version.path / "forecaster.json").is_file()
    assert main(["models", "list", *store]) == 0
    listed = capsys.readouterr().out.splitlines()[1].split()
    assert listed[0] == version.version and listed[2] == "harmonic_ar"
    assert float(listed[3]) == pytest.approx(version.manifest["validation"]["rmse"], abs=5e-4)
    assert main(["forecast", *common, "--as-of", "2012-02-03T00:00"]) == 0, capsys.readouterr().err
    assert f"by model version {version.version}" in capsys.readouterr().out
    # the per-component model has no version here: the default --model says so
    assert main(["forecast", *data, "--as-of", "2012-02-03T00:00"]) == 2
    assert "no model version of model 'ensemble'" in capsys.readouterr().err
    # an altered state file is refused (exit 2), as is a manifest of an unknown kind
    state = version.path / "forecaster.json"
    os.chmod(state, 0o644)
    state.write_text(state.read_text().replace('"p_ar": ', '"p_ar": 1'))
    assert main(["forecast", *common, "--as-of", "2012-02-03T00:00"]) == 2
    assert "forecaster.json: corrupted (SHA-256 differs" in capsys.readouterr().err
    manifest = version.path / "manifest.json"
    os.chmod(manifest, 0o644)
    doc = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**doc, "kind": "gradient_boosting"}))
    assert main(["forecast", *common, "--as-of", "2012-02-03T00:00"]) == 2
    assert "unknown model version kind 'gradient_boosting'" in capsys.readouterr().err


def test_wq_train_with_covariates_trains_and_serves_them(sapelo_tiny_csv, tmp_path):
    """``wq train --covariates Temp`` used to train on the target alone without saying so: the
    networks now get the covariate channel, and the version serves it."""
    from wq_pipeline.serve.forecasting import issue_forecast

    cfg = EvaluateConfig(data=sapelo_tiny_csv, covariates=["Temp"], **TINY)
    registry = Registry(tmp_path / "models")
    version, trained = train_version(cfg, registry, as_of=pd.Timestamp(TINY_TRAIN_AS_OF))
    assert trained and version.manifest["covariates"]["names"] == ["Temp"]
    loaded = registry.load(version.version)
    channels = {name: model.input_shape[-1] for name, model, _ in loaded.networks}
    assert all(c == 2 for name, c in channels.items() if name != "hybrid")  # component (or raw series) + Temp
    assert channels["hybrid"] == 1 + 3 + 1 + 4  # raw, 3 components, Temp, 4 calendar terms
    issued = issue_forecast(cfg, registry, "2012-02-05T00:00:00-05:00")
    assert issued.version == version.version and np.isfinite(issued.values).all()
    plain, _ = train_version(cfg.model_copy(update={"covariates": []}), registry, as_of=pd.Timestamp(TINY_TRAIN_AS_OF))
    assert plain.version != version.version and plain.manifest["covariates"]["names"] == []


@pytest.mark.parametrize("model", ["lstm", "decomp_lstm"])
def test_wq_train_other_network_models(model, sapelo_tiny_csv, tmp_path):
    """``wq train --model lstm`` (the raw window and the covariates) and ``--model decomp_lstm``
    (component networks without FECA) register and serve their own kind."""
    from wq_pipeline.serve.forecasting import issue_forecast

    cfg = EvaluateConfig(data=sapelo_tiny_csv, covariates=["Temp"], model=model, **TINY)
    registry = Registry(tmp_path / "models")
    version, _ = train_version(cfg, registry, as_of=pd.Timestamp(TINY_TRAIN_AS_OF))
    assert version.model == model and version.kind == "forecaster"
    loaded = registry.load(version.version)
    layers = {type(layer).__name__ for _, net, _ in loaded.networks for layer in net.layers}
    assert "FECA" not in layers
    assert [n for n, _, _ in loaded.networks] == version.manifest["components"]
    assert version.manifest["components"] == (["lstm"] if model == "lstm" else ["plain_imf1", "plain_imf2",
                                                                                  "plain_residual"])
    issued = issue_forecast(cfg, registry, "2012-02-05T00:00:00-05:00")
    assert issued.version == version.version and np.isfinite(issued.values).all()
    assert set(issued.issued_by) == {model}


def test_ensemble_version_state_is_checked_and_legacy_network_versions_still_load(tiny_stepwise_run, tmp_path):
    """The ensemble's record (``arrays.npz``) and state are hash-checked (a changed or missing
    file exits 2); a version saved before forecasters (component networks named by component, no
    ``kind``) still loads and serves what the evaluation scored."""
    from wq_pipeline.serve.forecasting import forecasts_from
    from wq_pipeline.serve.training import config_for, register_evaluation

    out, result = tiny_stepwise_run
    cfg = EvaluateConfig(data=Path(result.metrics["dataset"]), out=out, **TINY)
    registry = Registry(tmp_path / "models")
    ens = register_evaluation(result, cfg, registry)
    loaded = registry.load(ens.version)
    names = list(loaded.forecaster.members)
    assert names[:6] == list(STATISTICAL) and set(names[6:]) == {*NETWORKS}
    record = loaded.forecaster.record
    fold = result.folds[-1]
    assert record.shape == (len(names), fold.plan.split.fit_origins.size, TINY["horizon"])
    np.testing.assert_array_equal(np.nan_to_num(record[names.index("harmonic_ar")], nan=-1),
                                  np.nan_to_num(fold.forecasts["harmonic_ar"], nan=-1))

    for name, damage in (("arrays.npz", lambda p: p.write_bytes(p.read_bytes()[:-7])),
                         ("forecaster.json", lambda p: p.unlink())):
        copy = tmp_path / f"copy-{name}"
        shutil.copytree(registry.root, copy)
        path = copy / ens.version / name
        os.chmod(path, 0o644)
        damage(path)
        with pytest.raises(InputError, match=rf"{name}: (corrupted|missing)"):
            Registry(copy).load(ens.version)

    # a legacy version: the evaluated per-component networks under their component names
    mcfg = cfg.model_copy(update={"model": "decomp_feca_lstm"})
    new = registry.load(register_evaluation(result, mcfg, registry).version)
    manifest = {k: v for k, v in new.version.manifest.items()
                if k not in ("kind", "model", "files", "created_at", "library_versions", "format")}
    manifest["version"] = manifest["version"][:-10] + "0123456789"
    components = [n[len("feca_"):] for n, _, _ in new.networks]
    manifest["components"] = components
    legacy = registry.save(manifest, [(c, model, scaler) for c, (_, model, scaler) in zip(components, new.networks)])
    assert legacy.kind == "networks" and legacy.model == "decomp_feca_lstm"
    old = registry.load(legacy.version)
    assert old.forecaster is None
    origins = result.plan.split.test
    issued, _ = forecasts_from(result.station, legacy.site, old, config_for(legacy, mcfg), origins)
    want = result.forecasts[result.forecasts["model"] == "decomp_feca_lstm"].pivot(
        index="issued_at", columns="step", values="forecast")
    np.testing.assert_allclose(issued.values, want.to_numpy(), rtol=0, atol=1e-5)
