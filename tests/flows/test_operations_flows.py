"""The operational flows on real Prefect (a temporary API server and database), real SQLite
archives and real Keras model versions: scheduled forecasts take their as-of time from the
scheduled start time, the deployments `wq serve` registers, Dask fan-out, retraining."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import TINY, TINY_TRAIN_AS_OF
from wq_pipeline.store.archive import Archive
from wq_pipeline.store.registry import Registry
from wq_pipeline.settings import RunnerSettings, ServeSettings, load_serve_settings

REPO = Path(__file__).resolve().parents[2]
NY = "America/New_York"
T_SCHEDULED = pd.Timestamp("2012-02-10T12:00:00-05:00")  # an observation time in the tiny file


@pytest.fixture(scope="module")
def prefect_api():
    """A real Prefect API server on a temporary database, for this module's flow runs."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=None):
        yield


@pytest.fixture(scope="module")
def stores(tiny_model, tmp_path_factory, prefect_api):
    """A copy of the tiny registry (DO_obs as of TINY_TRAIN_AS_OF) plus a Temp version trained by
    ``train_flow``, and an empty archive. Returns (do station, temp station, database, models,
    the first train_flow result)."""
    from flows.operations import train_flow

    cfg, root, version = tiny_model
    base = tmp_path_factory.mktemp("ops")
    models = base / "models"
    shutil.copytree(root, models)
    database = f"sqlite:///{base / 'wq.db'}"
    do = cfg.model_dump(mode="json")
    temp = {**do, "target": "Temp"}
    first = train_flow([temp], as_of=TINY_TRAIN_AS_OF, database=database, models=str(models))
    return do, temp, database, str(models), first, version


def _task_runs(flow_run_id) -> list:
    """The task runs of one flow run, read back from the API."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    with get_client(sync_client=True) as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                                     sort=TaskRunSort.EXPECTED_START_TIME_ASC, limit=20)


def test_build_deployments_schedules_in_the_zone_and_freezes_no_as_of(tmp_path, shared_data):
    from flows.deployments import FORECAST_DEPLOYMENT, RETRAIN_DEPLOYMENT, build_deployments

    (tmp_path / "wq.toml").write_text(f"""
[archive]
database = "sqlite:///db/wq.db"
models = "registry"

[schedule]
forecast_cron = "5 * * * *"
retrain_cron = "15 3 * * 0"
timezone = "{NY}"

[runner]
task_runner = "thread"
max_workers = 3

[[stations]]
data = "{shared_data / 'nerr_sapelo_deancreek_2012.csv'}"
target = "DO_obs"
freq = "1h"
horizon = 6

[[stations]]
data = "{shared_data / 'nerr_sapelo_deancreek_2012.csv'}"
target = "Temp"
freq = "1h"
horizon = 6
""")
    settings = load_serve_settings(tmp_path / "wq.toml")
    deployments = build_deployments(settings)
    assert [(d.flow_name, d.name) for d in deployments] == [("wq-forecast", FORECAST_DEPLOYMENT),
                                                            ("wq-train", RETRAIN_DEPLOYMENT)]
    crons = [[(s.schedule.cron, s.schedule.timezone) for s in d.schedules] for d in deployments]
    assert crons == [[("5 * * * *", NY)], [("15 3 * * 0", NY)]]
    for d in deployments:
        assert d.entrypoint.endswith("flows/operations.py:" + ("forecast_flow" if d.flow_name == "wq-forecast"
                                                                else "train_flow"))
        # no as_of: nothing frozen at build time
        assert set(d.parameters) == {"stations", "database", "models"} | (
            {"global_networks"} if d.flow_name == "wq-train" else set())
        assert d.parameters["database"] == f"sqlite:///{tmp_path / 'db' / 'wq.db'}"
        assert d.parameters["models"] == str(tmp_path / "registry")
        assert [(s["target"], s["freq"], s["horizon"]) for s in d.parameters["stations"]] == [
            ("DO_obs", "1h", 6), ("Temp", "1h", 6)]
        assert d.parameters["stations"][0]["data"] == str(shared_data / "nerr_sapelo_deancreek_2012.csv")


def test_prefect_yaml_parses_and_its_entrypoints_load():
    from prefect.cli.deploy._models import PrefectYamlModel
    from prefect.flows import load_flow_from_entrypoint

    raw = yaml.safe_load((REPO / "prefect.yaml").read_text())
    model = PrefectYamlModel.model_validate(raw)
    by_name = {d.name: d for d in model.deployments}
    assert set(by_name) == {"hourly-forecast", "weekly-retrain", "backfill"}
    expected = {"hourly-forecast": "wq-forecast", "weekly-retrain": "wq-train", "backfill": "wq-backfill"}
    for name, d in by_name.items():
        path, fn = d.entrypoint.split(":")
        loaded = load_flow_from_entrypoint(f"{REPO / path}:{fn}")
        assert loaded.name == expected[name]
        assert d.work_pool.name == "wq-pool"
    assert by_name["hourly-forecast"].schedules[0].cron == "0 * * * *"
    assert by_name["hourly-forecast"].schedules[0].timezone == NY
    assert by_name["weekly-retrain"].schedules[0].cron == "30 2 * * 1"
    assert not by_name["backfill"].schedules
    # the example config parses and names the same two targets
    example = load_serve_settings(REPO / "wq.example.toml")
    assert [s.target for s in example.stations] == ["DO_obs", "Temp"]
    assert example.schedule.timezone == NY
    assert example.stations[0].data == (REPO / "../shared/data/nerr_sapelo_deancreek_2012.csv")  # relative to the file


def test_train_flow_registers_a_version_once(stores):
    from flows.operations import train_flow

    do, temp, database, models, first, _ = stores
    (row,) = first
    assert row["target"] == "Temp" and row["trained"] is True
    assert pd.Timestamp(row["trained_until"]) == pd.Timestamp(TINY_TRAIN_AS_OF)  # data known at the as-of time
    assert row["validation"]["n_points"] > 0 and row["validation"]["rmse"] > 0
    (again,) = train_flow([temp], as_of=TINY_TRAIN_AS_OF, database=database, models=models)
    assert again["version"] == row["version"] and again["trained"] is False  # same data, options, cut-off
    with Archive(database) as archive:
        versions = archive.model_versions()
        runs = archive.runs()
    assert list(versions["version"]) == [row["version"]]
    assert versions["target"].iloc[0] == "Temp"
    train_runs = runs[runs["kind"] == "train"]
    assert len(train_runs) == 2 and set(train_runs["status"]) == {"ok"}
    assert list(train_runs["message"]) == [f"trained {row['version']}", f"already registered {row['version']}"]


def test_scheduled_runs_forecast_as_of_their_scheduled_time_unless_told(stores):
    """`wq serve`'s path: register the deployments, schedule two runs in the past, let the runner
    execute them. Without an as_of parameter the forecast is as of the scheduled start time; an
    explicit as_of wins over it. The station watches two thresholds at alert level 0.9: P(DO < 20
    mg/L) is all but certain, so each run raises one alert and publishes it as a Prefect artifact,
    an event and a warning; P(DO < 0.5) raises none."""
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import LogSort
    from prefect.deployments import run_deployment

    from flows.deployments import FORECAST_DEPLOYMENT, build_deployments, serve_all

    do, temp, database, models, _, version = stores
    settings = ServeSettings.model_validate({
        "archive": {"database": database, "models": models},
        "schedule": {"forecast_cron": "0 3 1 1 *", "retrain_cron": "0 4 1 1 *", "timezone": NY},
        "runner": {"task_runner": "dask", "max_workers": 1},
        "stations": [{**do, "thresholds": ["DO_obs<20", "DO_obs<0.5"], "alert_level": 0.9}]})
    for d in build_deployments(settings):
        d.apply()
    name = f"wq-forecast/{FORECAST_DEPLOYMENT}"
    run = run_deployment(name, scheduled_time=T_SCHEDULED.to_pydatetime(), timeout=0)
    told = "2012-02-12T06:30:00-05:00"  # half past: issued from the 06:00 observation
    override = run_deployment(name, scheduled_time=T_SCHEDULED.to_pydatetime(), parameters={"as_of": told}, timeout=0)
    assert "as_of" not in run.parameters and override.parameters["as_of"] == told
    with Archive(database) as archive:
        earlier = set(archive.runs()["run_id"])
    serve_all(settings, run_once=True)  # picks up the late runs, runs each in a subprocess, waits

    with Archive(database) as archive:
        runs = archive.runs()
        runs = runs[~runs["run_id"].isin(earlier)]  # the archive records of these two flow runs
        stored = archive.forecasts(target="DO_obs")
        stored = stored[stored["run_id"].isin(runs["run_id"])]
    at_t = stored[stored["issued_at"] == T_SCHEDULED]  # from the schedule, not from "now"
    assert len(at_t) == TINY["horizon"] and list(at_t["step"]) == [1, 2, 3]
    assert list(at_t["target_time"]) == [T_SCHEDULED.tz_convert("UTC") + pd.Timedelta(hours=h) for h in (1, 2, 3)]
    assert set(at_t["model_version"]) == {version.version}
    assert at_t["value"].between(0, 20).all()  # mg/L
    told_rows = stored[stored["issued_at"] == pd.Timestamp("2012-02-12T06:00:00-05:00")]
    assert len(told_rows) == 3
    assert len(stored) == 6  # nothing else: neither run forecast as of "now"
    forecasts = runs[runs["kind"] == "forecast"]
    assert len(forecasts) == len(runs) == 2
    assert sorted(pd.Timestamp(p["as_of"]) for p in forecasts["params"]) == [T_SCHEDULED, pd.Timestamp(told)]
    assert list(forecasts["n_forecasts"]) == [3, 3] and set(forecasts["status"]) == {"ok"}

    with get_client(sync_client=True) as client:
        done = client.read_flow_run(run.id)
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])), limit=200, offset=0,
                                sort=LogSort.TIMESTAMP_ASC)
    assert done.state.is_completed(), done.state
    assert done.expected_start_time == T_SCHEDULED

    # the alerts: stored, logged, published as an artifact and as events
    with Archive(database) as archive:
        alerts = archive.alerts(target="DO_obs")
        alerts = alerts[alerts["run_id"].isin(runs["run_id"])]
    assert sorted(alerts["issued_at"]) == [T_SCHEDULED, pd.Timestamp("2012-02-12T06:00:00-05:00")]
    assert set(alerts["threshold"]) == {"DO_obs<20"} and set(alerts["step"]) == {1}
    warned = [log.message for log in logs if log.level == 30 and "ALERT: P(DO_obs<20)" in log.message]
    assert len(warned) == 1 and T_SCHEDULED.tz_convert("UTC").isoformat() in warned[0], [x.message for x in logs]
    _assert_alert_published(run.id, T_SCHEDULED)
    # the served flow kept the configured task runner (a runner loading the entrypoint would not)
    assert any("for 1 station(s) on DaskTaskRunner" in log.message for log in logs), [x.message for x in logs]


def _assert_alert_published(flow_run_id, issued_at: pd.Timestamp) -> None:
    """The flow run published its alert as a markdown artifact and as a ``wq.alert.crossing``
    event (read back from the API; events are stored asynchronously, so wait a little)."""
    import time

    from prefect import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter

    from wq_pipeline.serve.alerts import ALERT_EVENT

    with get_client(sync_client=True) as client:
        # (the sync client's read_artifacts sends null filters this server version refuses: post the filter)
        reply = client._client.post("/artifacts/filter", json={
            "artifacts": {"flow_run_id": {"any_": [str(flow_run_id)]}}, "limit": 10, "offset": 0,
            "sort": "CREATED_DESC"})
        reply.raise_for_status()
        arts = reply.json()
        assert [(a["key"], a["type"]) for a in arts] == [("wq-alerts-sapelo-62d-do-obs", "markdown")], arts
        assert "`DO_obs<20`" in arts[0]["data"] and issued_at.tz_convert("UTC").isoformat() in arts[0]["data"]
        wanted = issued_at.tz_convert("UTC").isoformat()
        since = pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=1)
        events = []
        for _ in range(60):
            page = client.read_events(filter=EventFilter(event=EventNameFilter(name=[ALERT_EVENT]),
                                                         occurred=EventOccurredFilter(since=since.to_pydatetime())),
                                      limit=50)
            events = [e for e in page.events if e.payload.get("issued_at") == wanted]
            if events:
                break
            time.sleep(0.5)
    assert len(events) == 1, "no alert event reached the API"
    (e,) = events
    assert e.resource.id == "wq.station.sapelo_62d.DO_obs"
    assert e.payload["threshold"] == "DO_obs<20" and e.payload["probability"] == pytest.approx(0.9875)
    assert e.payload["alert_level"] == 0.9 and e.payload["step"] == 1


def test_a_rerun_stores_nothing_new(stores):
    from flows.operations import forecast_flow

    do, _, database, models, _, version = stores
    when = "2012-02-13T07:30:00-05:00"  # half past: the forecast is issued from the 07:00 observation
    (first,) = forecast_flow([do], as_of=when, database=database, models=models)
    assert pd.Timestamp(first["issued_at"]) == pd.Timestamp("2012-02-13T07:00:00-05:00")
    assert first["rows_written"] == 3 and first["version"] == version.version
    (second,) = forecast_flow([do], as_of=when, database=database, models=models)
    assert second["rows_written"] == 0 and second["issued_at"] == first["issued_at"]
    with Archive(database) as archive:
        stored = archive.forecasts(target="DO_obs", start=pd.Timestamp(first["issued_at"]),
                                   end=pd.Timestamp(first["issued_at"]))
    assert len(stored) == 3
    assert stored["run_id"].nunique() == 1  # stored once, by the first run


def test_dask_task_runner_fans_out_two_stations(stores):
    from flows.deployments import task_runner_for
    from flows.operations import forecast_flow

    do, temp, database, models, trained, _ = stores
    runner = task_runner_for(RunnerSettings(task_runner="dask", max_workers=2))
    when = "2012-02-20T18:00:00-05:00"
    state = forecast_flow.with_options(task_runner=runner)([do, temp], as_of=when, database=database,
                                                           models=models, return_state=True)
    assert state.is_completed(), state
    rows = state.result()
    assert [(r["target"], r["issued_at"], r["rows_written"]) for r in rows] == [
        ("DO_obs", pd.Timestamp(when).isoformat(), 3), ("Temp", pd.Timestamp(when).isoformat(), 3)]
    assert rows[1]["version"] == trained[0]["version"]
    with Archive(database) as archive:
        for target, unit_range in (("DO_obs", (0, 20)), ("Temp", (0, 40))):
            stored = archive.forecasts(target=target, start=pd.Timestamp(when), end=pd.Timestamp(when))
            assert len(stored) == 3 and stored["value"].between(*unit_range).all()
    tasks = _task_runs(state.state_details.flow_run_id)
    assert sorted(t.name for t in tasks) == sorted(["forecast-" + Path(do["data"]).stem + "-DO_obs",
                                                    "forecast-" + Path(do["data"]).stem + "-Temp"])
    assert all(t.state.is_completed() for t in tasks)


def test_a_bad_station_fails_without_retries_and_the_other_is_stored(stores):
    from flows.operations import StationsFailed, forecast_flow

    do, _, database, models, _, _ = stores
    missing = {**do, "target": "Sal"}  # no model version for salinity: bad input, not retried
    when = "2012-02-21T09:00:00-05:00"
    state = forecast_flow([do, missing], as_of=when, database=database, models=models, return_state=True)
    assert state.is_failed()
    with pytest.raises(StationsFailed, match=r"1 of 2 station\(s\).*Sal.*no model version"):
        state.result()
    with Archive(database) as archive:
        assert len(archive.forecasts(target="DO_obs", start=pd.Timestamp(when), end=pd.Timestamp(when))) == 3
    runs = {t.name: t for t in _task_runs(state.state_details.flow_run_id)}
    stem = Path(do["data"]).stem
    assert runs[f"forecast-{stem}-DO_obs"].state.is_completed()
    assert runs[f"forecast-{stem}-Sal"].state.is_failed()
    assert runs[f"forecast-{stem}-Sal"].run_count == 1  # InputError: not retried


def test_tasks_retry_transient_errors_but_not_bad_input():
    import sqlalchemy.exc
    from prefect.states import Failed

    from flows.operations import backfill_station, forecast_station, retry_unless_input_error, train_station
    from wq_pipeline.errors import InputError

    for t in (forecast_station, train_station, backfill_station):
        assert t.retries == 2 and t.retry_condition_fn is retry_unless_input_error
    locked = sqlalchemy.exc.OperationalError("INSERT", {}, Exception("database is locked"))
    assert retry_unless_input_error(None, None, Failed(data=locked)) is True
    assert retry_unless_input_error(None, None, Failed(data=OSError("stale file handle"))) is True
    assert retry_unless_input_error(None, None, Failed(data=InputError("no model version"))) is False


def test_backfill_flow_stores_a_period_once(stores):
    from flows.operations import backfill_flow

    do, _, database, models, _, version = stores
    start, end = "2012-02-15T00:00:00-05:00", "2012-02-15T05:00:00-05:00"
    first = backfill_flow(do, start, end, every="1h", database=database, models=models)
    assert (first["issue_times"], first["written_origins"], first["rows_written"], first["skipped"]) == (6, 6, 18, 0)
    assert first["versions"] == [version.version] and first["trained"] == []
    again = backfill_flow(do, start, end, every="1h", database=database, models=models)
    assert (again["already_stored"], again["rows_written"]) == (6, 0)
    with Archive(database) as archive:
        stored = archive.forecasts(target="DO_obs", start=pd.Timestamp(start), end=pd.Timestamp(end))
        runs = archive.runs()
    assert list(stored["issued_at"].drop_duplicates()) == list(pd.date_range(start, end, freq="1h").tz_convert("UTC"))
    backfills = runs[runs["kind"] == "backfill"]
    assert list(backfills["n_forecasts"]) == [18, 0] and set(backfills["status"]) == {"ok"}


def test_a_station_served_by_a_statistical_model(stores):
    """A [[stations]] entry with ``model = "harmonic_ar"`` (and a file read with its own options):
    the weekly train flow fits and registers that model, the hourly forecast flow serves it, and
    the archive rows say so."""
    from flows.operations import forecast_flow, train_flow

    do, _, database, models, _, _ = stores
    station = {**do, "model": "harmonic_ar", "tz": "America/New_York"}  # offsets in the file win over --tz
    (trained,) = train_flow([station], as_of=TINY_TRAIN_AS_OF, database=database, models=models)
    version = Registry(Path(models)).get(trained["version"])
    assert version.model == "harmonic_ar" and version.kind == "forecaster"  # its state and its own record
    when = "2012-02-14T10:00:00-05:00"
    (issued,) = forecast_flow([station], as_of=when, database=database, models=models)
    assert issued["version"] == version.version and issued["rows_written"] == 3
    with Archive(database) as archive:
        rows = archive.forecasts(target="DO_obs", model_version=version.version)
    assert len(rows) == 3 and set(rows["issued_by"]) == {"harmonic_ar"}
    assert np.isfinite(rows["value"]).all()
    with Archive(database) as archive:  # its quantiles, calibrated on its own errors, are stored too
        q = archive.quantiles(target="DO_obs", model_version=version.version)
    assert len(q) == 3 * 9 and (q.groupby("step")["value"].apply(lambda v: np.diff(v.to_numpy()).min()) >= 0).all()
    median = q[q["level"] == 0.5].sort_values("step")["value"].to_numpy()
    assert np.abs(median - rows.sort_values("step")["value"].to_numpy()).max() < 2.0  # mg/L, near the forecast


def test_a_retrain_with_global_networks_trains_each_group_once_and_serves_every_station(stores, shared_data):
    """``retrain_global``: the train flow trains one global version for the stations sharing a
    file, target and settings (one task), a station alone in its group as usual; the forecast flow
    serves every station from its version; a rerun trains nothing."""
    from flows.operations import forecast_flow, train_flow

    _, _, database, models, _, _ = stores
    daily = dict(data=str(shared_data / "neon_aquatics_daily_2020_2022.csv.gz"), time_col="datetime", freq="1D",
                 window=14, decomp_window=32, horizon=3, modes=2, epochs=2, units=4, seed=1)
    stations = [{**daily, "site": s, "target": "oxygen"} for s in ("BARC", "SUGG")]
    alone = {**daily, "site": "BARC", "target": "temperature"}
    trained = train_flow([*stations, alone], as_of="2022-01-01", database=database, models=models,
                         global_networks=True)
    by_target = {}
    for row in trained:
        by_target.setdefault(row["target"], []).append(row)
    assert [r["site"] for r in by_target["oxygen"]] == ["BARC", "SUGG"] and all(r["trained"] for r in trained)
    (g,) = {r["global_version"] for r in by_target["oxygen"]}
    registry = Registry(Path(models))
    assert registry.get(g).kind == "global" and registry.get(g).manifest["stations"] == ["BARC", "SUGG"]
    assert "global_version" not in by_target["temperature"][0]  # alone: trained as usual
    issued = forecast_flow([*stations, alone], as_of="2022-03-01", database=database, models=models)
    assert [i["version"] for i in issued] == [r["version"] for r in (*by_target["oxygen"], *by_target["temperature"])]
    assert all(i["rows_written"] == 3 for i in issued)
    again = train_flow([*stations, alone], as_of="2022-01-01", database=database, models=models,
                       global_networks=True)
    assert not any(r["trained"] for r in again)


def test_evaluate_series_flow_fans_the_series_out_over_the_task_runner(prefect_api, shared_data, tmp_path):
    """Several series of one ``wq evaluate``: one task each on the flow's task runner, side by
    side with two threads; a series with bad input is reported and the others finish."""
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.evaluate import evaluate_series_flow
    from wq_pipeline.config import EvaluateConfig

    daily = dict(data=shared_data / "neon_aquatics_daily_2020_2022.csv.gz", time_col="datetime", freq="1D",
                 target="oxygen", window=14, decomp_window=32, horizon=3, modes=2, epochs=2, units=4, seed=1,
                 test_start="2022-01-01")
    configs = {s: EvaluateConfig(site=s, out=tmp_path / s, **daily).model_dump(mode="json")
               for s in ("BARC", "PRLA", "SUGG")}
    state = evaluate_series_flow.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))(
        configs, return_state=True)
    assert state.is_completed(), state
    done = state.result()
    assert isinstance(done["PRLA"], str) and "91 usable points" in done["PRLA"]
    for site in ("BARC", "SUGG"):
        assert done[site]["site"] == site and (tmp_path / site / "report.html").is_file()
        assert done[site]["models"]["ensemble"]["n_points"] > 100
    tasks = {t.name: t for t in _task_runs(state.state_details.flow_run_id)}
    assert set(tasks) == {"evaluate-BARC", "evaluate-PRLA", "evaluate-SUGG"}
    barc, sugg = tasks["evaluate-BARC"], tasks["evaluate-SUGG"]
    assert max(barc.start_time, sugg.start_time) < min(barc.end_time, sugg.end_time)  # they ran at the same time
