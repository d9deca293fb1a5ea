"""Evaluate a registered model version with mlflow.genai.evaluate and check the thresholds (seed 002).

MLflow names a scorer's metrics differently across versions and judges (relevance/mean or
relevance_to_query/mean, with or without an eval_ prefix): the seed's METRIC_ALIASES resolve them. A
threshold whose metric is missing, not a number (the scorer failed on every row) or infinite, is a failure
named in the list, never a silent pass.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from agent_jobs.errors import JobError

log = logging.getLogger(__name__)

_JUDGES = ("cost_accuracy", "security_compliance", "reliability_accuracy", "performance_accuracy", "quality_accuracy")
METRIC_ALIASES: dict[str, tuple[str, ...]] = {
    "relevance/mean": ("relevance/mean", "relevance_to_query/mean"),
    "databricks_context/mean": ("databricks_context/mean", "mentions_databricks_concepts/mean"),
    **{f"{judge}/mean": (f"{judge}/mean", f"{judge}_judge/mean") for judge in _JUDGES},
}


def candidates(metric: str) -> tuple[str, ...]:
    """Every name `metric` may carry in MLflow's results, in the order they are tried."""
    names = METRIC_ALIASES.get(metric, (metric,))
    return tuple(prefix + name for name in names for prefix in ("", "eval_"))


def resolve(metrics: Mapping[str, float], metric: str) -> float | None:
    for name in candidates(metric):
        if name in metrics:
            return metrics[name]
    return None


def check_thresholds(metrics: Mapping[str, float], thresholds: Mapping[str, float]) -> list[str]:
    """One failure per threshold not met, missing or not a number; empty when all pass."""
    failures = []
    for metric, threshold in sorted(thresholds.items()):
        score = resolve(metrics, metric)
        if score is None:
            failures.append(f"{metric}: missing (no metric named {' or '.join(candidates(metric)[::2])})")
            log.warning("FAILED %s: missing from the evaluation's metrics", metric)
        elif math.isnan(score):
            failures.append(f"{metric}: not a number (the scorer failed on every row)")
            log.warning("FAILED %s: not a number", metric)
        elif not math.isfinite(score):
            failures.append(f"{metric}: {score} is not a finite number")
            log.warning("FAILED %s: not finite (%s)", metric, score)
        elif score < threshold:
            failures.append(f"{metric}: {score:.2f} < {threshold}")
            log.warning("FAILED %s = %.2f (threshold %s)", metric, score, threshold)
        else:
            log.info("passed %s = %.2f (threshold %s)", metric, score, threshold)
    return failures


def evaluate(model_uri: str, data: Any, scorers: Sequence[Any]) -> dict[str, float]:
    """Load the model, answer every record's inputs.query with it, run the scorers; the aggregate metrics.
    `data` is an MLflow evaluation dataset or a list of records."""
    import mlflow

    from agent_jobs.health_monitor.scorers import extract_response_text

    if isinstance(data, list) and not data:
        raise JobError("the evaluation dataset is empty: nothing to evaluate")
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except Exception as exc:
        raise JobError(f"cannot load {model_uri}: {exc} (seed 002: check the model's pip requirements)") from exc

    def predict_fn(query: str) -> dict[str, str]:
        answer = model.predict({"messages": [{"role": "user", "content": query}]})
        return {"response": extract_response_text(answer)}

    log.info("evaluating %s with %d scorers", model_uri, len(scorers))
    results = mlflow.genai.evaluate(data=data, predict_fn=predict_fn, scorers=list(scorers))
    metrics = {}
    for name, value in sorted((results.metrics or {}).items()):
        try:
            metrics[name] = float(value)
        except (TypeError, ValueError):
            log.warning("metric %s = %r is not a number; left out", name, value)
            continue
        log.info("metric %s = %s", name, metrics[name])
    return metrics
