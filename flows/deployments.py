"""The scheduled deployments ``wq serve`` runs: an hourly forecast and a weekly retrain of every
station in the settings, each on a cron schedule in the settings' time zone.

Deployment parameters carry the stations (as JSON), the archive URL and the registry folder,
never an as-of time: each run takes its as-of time from its own scheduled start time (see
:mod:`flows.operations`).

Task runners (``[runner]`` in the config file):

- ``thread`` (default): ``ThreadPoolTaskRunner(max_workers)``, stations run in threads of the
  flow run's process.
- ``dask`` with ``dask_address``: ``DaskTaskRunner(address=...)`` on an existing cluster; every
  worker needs this package installed and the data, registry and database paths visible.
- ``dask`` without an address: a local cluster started for each flow run and torn down after it,
  ``max_workers`` single-threaded *worker processes* (``processes=True``): each station's
  TensorFlow work gets its own process, no GIL and no Keras state shared between stations; the
  dashboard is off so concurrent flow runs do not compete for its port. Dask's worker processes
  are daemonic and cannot start processes themselves, which is why the flows train with one
  process per station.

Why ``serve_all`` uses ``Runner.add_flow`` rather than ``prefect.serve(*deployments)``: a runner
given deployments loads each flow run's flow again from its entrypoint (``flows/operations.py:
forecast_flow``), which drops the task runner set with ``with_options``; a runner given the flow
objects runs them as configured.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import Flow
from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import TerminationSignal
from prefect.runner import Runner
from prefect.schedules import Cron
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows.operations import forecast_flow, train_flow
from wq_pipeline.errors import InputError
from wq_pipeline.settings import RunnerSettings, ServeSettings

FORECAST_DEPLOYMENT = "hourly-forecast"
RETRAIN_DEPLOYMENT = "weekly-retrain"


def task_runner_for(runner: RunnerSettings) -> TaskRunner:
    """The Prefect task runner the settings ask for (see the module docstring)."""
    if runner.task_runner == "thread":
        return ThreadPoolTaskRunner(max_workers=runner.max_workers)
    from prefect_dask import DaskTaskRunner

    if runner.dask_address:
        return DaskTaskRunner(address=runner.dask_address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": runner.max_workers, "threads_per_worker": 1,
                                          "processes": True, "dashboard_address": ":0"})


def deployment_parameters(settings: ServeSettings) -> dict[str, Any]:
    """Parameters of both scheduled deployments: stations, archive URL, registry folder."""
    return {"stations": [s.model_dump(mode="json") for s in settings.stations],
            "database": settings.archive.database, "models": str(settings.archive.models)}


def retrain_parameters(settings: ServeSettings) -> dict[str, Any]:
    """The retrain deployment's parameters: the common ones, and whether it trains global versions."""
    return {**deployment_parameters(settings), "global_networks": settings.schedule.retrain_global}


def _specs(settings: ServeSettings) -> list[tuple[Flow, dict[str, Any]]]:
    """``(flow with the configured task runner, to_deployment keyword arguments)`` per deployment."""
    if not settings.stations:
        raise InputError("no [[stations]] in the settings: nothing to schedule (see wq.example.toml)")
    tz, params = settings.schedule.timezone, deployment_parameters(settings)
    n = len(settings.stations)
    return [
        (forecast_flow.with_options(task_runner=task_runner_for(settings.runner)), dict(
            name=FORECAST_DEPLOYMENT, schedules=[Cron(settings.schedule.forecast_cron, timezone=tz)],
            parameters=params, tags=["wq", "forecast"],
            description=f"Forecast {n} station(s) as of each run's scheduled time "
                        f"({settings.schedule.forecast_cron}, {tz})")),
        (train_flow.with_options(task_runner=task_runner_for(settings.runner)), dict(
            name=RETRAIN_DEPLOYMENT, schedules=[Cron(settings.schedule.retrain_cron, timezone=tz)],
            parameters=retrain_parameters(settings), tags=["wq", "train"],
            description=f"Retrain {n} station(s) on the data known at each run's scheduled time "
                        f"({settings.schedule.retrain_cron}, {tz})")),
    ]


def build_deployments(settings: ServeSettings) -> list[RunnerDeployment]:
    """The forecast and retrain deployments (not yet registered with the API)."""
    return [fl.to_deployment(**kwargs) for fl, kwargs in _specs(settings)]


def serve_all(settings: ServeSettings, *, run_once: bool = False) -> None:
    """Register both deployments and run their scheduled flow runs until interrupted (schedules
    are paused on shutdown). ``run_once``: execute the runs that are due now, wait for them, return."""
    runner = Runner(name="wq-serve", pause_on_shutdown=True)
    for fl, kwargs in _specs(settings):
        runner.add_flow(fl, **kwargs)
    if not run_once:
        names = ", ".join(f"{fl.name}/{kw['name']}" for fl, kw in _specs(settings))
        print(f"wq serve: serving {names} for {len(settings.stations)} station(s); Ctrl-C stops")
    try:
        asyncio.run(runner.start(run_once=run_once))
    except (KeyboardInterrupt, TerminationSignal):
        print("wq serve: stopped")
