"""Prefect flow for one evaluation run. Thin: every stage is a library function run as a task.

Decompositions are cached by a content hash of their input series, forecast positions and
parameters (the key comes from :func:`wq_pipeline.pipeline.decomposition_cache_key`), so a rerun
on the same data with other model settings skips the expensive stepwise decomposition.
"""

from __future__ import annotations

from typing import Any, Callable

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from wq_pipeline.config import EvaluateConfig
from wq_pipeline.pipeline import MODEL_NAMES, run_evaluation


def run_as_task(name: str, fn: Callable[..., Any], *args: Any, cache_key: str | None = None, **kwargs: Any) -> Any:
    """Stage runner for :func:`run_evaluation`: wrap ``fn`` as a Prefect task and call it."""
    if cache_key is not None:
        stage = task(fn, name=name, cache_key_fn=lambda *_: cache_key, persist_result=True,
                     result_serializer="pickle", retries=0)
    else:
        stage = task(fn, name=name, cache_policy=NO_CACHE, persist_result=False)
    return stage(*args, **kwargs)


def headline_markdown(metrics: dict[str, Any]) -> str:
    """Markdown table of every model at step H (for the flow run's artifact)."""
    lines = [
        f"### {metrics['target']} at {metrics.get('site') or 'station'}: step H={metrics['horizon']}, "
        f"{metrics['protocol_label']}",
        "",
        "| model | RMSE | MAE | NSE | KGE | skill vs persistence |",
        "|---|---|---|---|---|---|",
    ]
    for name in MODEL_NAMES:
        m = metrics["models"][name]
        cells = [m.get(k) for k in ("rmse", "mae", "nse", "kge", "skill")]
        lines.append("| " + name + " | " + " | ".join("n/a" if v is None else f"{v:.3f}" for v in cells) + " |")
    return "\n".join(lines)


@flow(name="wq-evaluate", log_prints=True)
def evaluate_flow(config: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the decomposition model and its baselines; returns ``metrics.json``'s content."""
    cfg = EvaluateConfig.model_validate(config)
    result = run_evaluation(cfg, run_stage=run_as_task)
    create_markdown_artifact(markdown=headline_markdown(result.metrics), key="wq-evaluate-headline",
                             description=f"wq evaluate: {cfg.target} ({cfg.protocol})")
    return result.metrics
