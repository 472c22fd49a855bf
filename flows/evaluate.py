"""Prefect flows for evaluation runs. Thin: every stage is a library function run as a task.

``evaluate_flow`` evaluates one series, each stage a task. ``evaluate_series_flow`` evaluates
several (``wq evaluate --site A,B``, ``--all-sites``, several ``--data``): one task per series,
submitted through the flow's task runner, so series fan out over threads or, with
``[runner] task_runner = "dask"``, over a Dask cluster's workers (``wq evaluate --config``); a
series with bad input is reported and the others go on.

Decompositions are cached by a content hash of their input series, forecast positions and
parameters (the key comes from :func:`wq_pipeline.evaluation.pipeline.decomposition_cache_key`), so a rerun
on the same data with other model settings skips the expensive stepwise decomposition. Each
network (every component with and without FECA, and the plain LSTM) is its own task; they run
concurrently, each in a worker process of the training pool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from prefect import flow, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from wq_pipeline.config import EvaluateConfig
from wq_pipeline.errors import InputError
from wq_pipeline.evaluation.pipeline import MODEL_NAMES, StageRunner, run_evaluation
from wq_pipeline.store.registry import Registry
from wq_pipeline.report import build_report
from wq_pipeline.serve.training import register_evaluation


class PrefectStages(StageRunner):
    """Runs every pipeline stage as a Prefect task."""

    def run(self, name: str, fn: Callable[..., Any], *args: Any, cache_key: str | None = None, **kwargs: Any) -> Any:
        if cache_key is not None:
            stage = task(fn, name=name, cache_key_fn=lambda *_: cache_key, persist_result=True,
                         result_serializer="pickle")
        else:
            stage = task(fn, name=name, cache_policy=NO_CACHE, persist_result=False)
        return stage(*args, **kwargs)

    def map(self, name: str, fn: Callable[..., Any], calls: list[tuple], labels: list[str],
            workers: int, progress: Callable[[int], Any] | None = None) -> list[Any]:
        futures = [
            task(fn, name=name, task_run_name=f"{name}-{label}", cache_policy=NO_CACHE, persist_result=False).submit(*call)
            for call, label in zip(calls, labels)
        ]
        results = []
        for fut in futures:
            results.append(fut.result())
            if progress is not None:
                progress(1)
        return results

    def submit(self, name: str, label: str, fn: Callable[..., Any], *args: Any) -> Any:
        return task(fn, name=name, task_run_name=f"{name}-{label}", cache_policy=NO_CACHE,
                    persist_result=False).submit(*args)


def headline_markdown(metrics: dict[str, Any]) -> str:
    """Markdown table of every model at step H (for the flow run's artifact), the main model in
    bold; with several folds, one line per fold with the main model's RMSE and the best baseline's."""
    models = metrics["models"]
    main = metrics.get("main_model")
    names = [n for n in MODEL_NAMES if n in models] + [n for n in models if n not in MODEL_NAMES]

    def f(v: Any) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    lines = [
        f"### {metrics['target']} at {metrics.get('site') or 'station'}: step H={metrics['horizon']}, "
        f"{metrics['protocol_label']}",
        "",
        "| model | RMSE | MAE | NSE | KGE | skill vs persistence |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        m = models[name]
        cells = [m.get(k) for k in ("rmse", "mae", "nse", "kge", "skill")]
        label = f"**{name}** (main model)" if name == main else name
        lines.append("| " + label + " | " + " | ".join(f(v) for v in cells) + " |")
    folds = metrics.get("folds") or []
    if main and len(folds) > 1:
        pooled = models.get(main) or {}
        lines += ["", f"Pooled over {len(folds)} folds, {main} RMSE {f(pooled.get('rmse'))}; best baseline "
                      f"{pooled.get('best_baseline') or 'n/a'} RMSE "
                      f"{f((models.get(pooled.get('best_baseline')) or {}).get('rmse'))}. Per fold:", ""]
        for fold in folds:
            fm = fold.get("models") or {}
            m = fm.get(main) or {}
            best = m.get("best_baseline")
            per = fold.get("periods") or {}
            lines.append(f"- fold {fold.get('fold')} (test {per.get('test_start', '?')} .. {per.get('test_end', '?')}, "
                         f"{fold.get('n_test')} origins): {main} RMSE {f(m.get('rmse'))}; best baseline "
                         f"{best or 'n/a'} RMSE {f((fm.get(best) or {}).get('rmse'))}")
    return "\n".join(lines)


@task(name="report", cache_policy=NO_CACHE)
def report_task(out: str) -> str:
    """Build ``report.html`` in the run folder and link it from the flow run."""
    path = build_report(Path(out))
    create_link_artifact(key="wq-evaluation-report", link=path.resolve().as_uri(),
                         link_text="evaluation report", description="HTML report (self-contained, opens offline)")
    return str(path)


@task(name="register", cache_policy=NO_CACHE, persist_result=False)
def register_task(result: Any, cfg: EvaluateConfig, registry_dir: str) -> str:
    """Save the evaluated main model to the model registry; returns the version id."""
    return register_evaluation(result, cfg, Registry(Path(registry_dir))).version


@flow(name="wq-evaluate", log_prints=True)
def evaluate_flow(config: dict[str, Any], register_to: str | None = None) -> dict[str, Any]:
    """Evaluate the decomposition model and its baselines; returns ``metrics.json``'s content.
    With ``register_to`` (a model registry folder) the evaluated main model is registered too."""
    cfg = EvaluateConfig.model_validate(config)
    result = run_evaluation(cfg, runner=PrefectStages())
    if register_to:
        result.metrics["model_version"] = register_task(result, cfg, register_to)
    create_markdown_artifact(markdown=headline_markdown(result.metrics), key="wq-evaluate-headline",
                             description=f"wq evaluate: {cfg.target} ({cfg.protocol})")
    report_task(str(cfg.out))
    return result.metrics


@task(name="evaluate-series", cache_policy=NO_CACHE, persist_result=False)
def evaluate_series(config: dict[str, Any], register_to: str | None = None) -> dict[str, Any]:
    """Evaluate one series in this task (its stages in-process), write its outputs and report,
    register its main model when asked; returns ``metrics.json``'s content."""
    cfg = EvaluateConfig.model_validate(config)
    result = run_evaluation(cfg, runner=StageRunner())
    if register_to:
        result.metrics["model_version"] = register_evaluation(result, cfg, Registry(Path(register_to))).version
    build_report(cfg.out)
    return result.metrics


@flow(name="wq-evaluate-series", log_prints=True)
def evaluate_series_flow(configs: dict[str, dict[str, Any]], register_to: str | None = None
                         ) -> dict[str, dict[str, Any] | str]:
    """Evaluate every series of ``configs`` ({label: config}), one task each through the flow's
    task runner. Returns ``{label: metrics}``, or ``{label: reason}`` for a series with bad input
    (:class:`~wq_pipeline.errors.InputError`); any other failure fails the flow run once every
    series has finished."""
    futures = {label: evaluate_series.with_options(task_run_name=f"evaluate-{label}").submit(cfg, register_to)
               for label, cfg in configs.items()}
    out: dict[str, dict[str, Any] | str] = {}
    failed = []
    for label, fut in futures.items():
        fut.wait()
        if fut.state.is_completed():
            out[label] = fut.result()
            continue
        exc = fut.result(raise_on_failure=False)
        if isinstance(exc, InputError):
            out[label] = str(exc)
        else:
            failed.append(f"{label}: {type(exc).__name__}: {exc}")
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(configs)} series failed: " + "; ".join(failed))
    return out
