"""Read one MLflow experiment through the MLflow client and summarise it for the model and the report."""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from typing import Any

from agent_jobs.errors import JobError

log = logging.getLogger(__name__)

MAX_RUNS = 50


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    name: str
    status: str
    params: dict[str, str]
    metrics: dict[str, float]


@dataclass(frozen=True)
class ExperimentSummary:
    experiment_id: str
    name: str
    runs: list[RunSummary]
    metric_stats: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_markdown(self) -> str:
        lines = [f"Experiment: {self.name} (id {self.experiment_id})", f"Runs analysed: {len(self.runs)}", ""]
        if self.metric_stats:
            lines += ["| metric | runs | min | mean | max |", "|---|---|---|---|---|"]
            for metric, s in sorted(self.metric_stats.items()):
                lines.append(f"| {metric} | {int(s['count'])} | {s['min']:.4g} | {s['mean']:.4g} | {s['max']:.4g} |")
            lines.append("")
        for run in self.runs:
            params = ", ".join(f"{k}={v}" for k, v in sorted(run.params.items())) or "none"
            metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(run.metrics.items())) or "none"
            lines.append(f"- run {run.name} ({run.status}): params {params}; metrics {metrics}")
        if not self.runs:
            lines.append("The experiment has no runs yet.")
        return "\n".join(lines)


def read_experiment(client: Any, experiment_id: str, max_runs: int = MAX_RUNS) -> ExperimentSummary:
    """The experiment and its most recent runs (`client` is an mlflow.MlflowClient)."""
    from mlflow.exceptions import MlflowException

    try:
        experiment = client.get_experiment(experiment_id)
    except MlflowException as exc:
        raise JobError(f"cannot read MLflow experiment {experiment_id}: {exc.message}") from exc
    if experiment is None:
        raise JobError(f"MLflow experiment {experiment_id} does not exist (or is not visible to this identity)")
    runs = client.search_runs([experiment_id], max_results=max_runs, order_by=["attributes.start_time DESC"])
    summaries = [
        RunSummary(
            run_id=r.info.run_id,
            name=r.info.run_name or r.info.run_id[:8],
            status=r.info.status,
            params=dict(r.data.params),
            metrics=dict(r.data.metrics),
        )
        for r in runs
    ]
    values: dict[str, list[float]] = {}
    for run in summaries:
        for metric, value in run.metrics.items():
            values.setdefault(metric, []).append(value)
    stats = {m: {"count": len(v), "min": min(v), "mean": statistics.fmean(v), "max": max(v)} for m, v in values.items()}
    log.info("read experiment %s (%s): %d runs, %d metrics", experiment_id, experiment.name, len(summaries), len(stats))
    return ExperimentSummary(experiment_id, experiment.name, summaries, stats)
