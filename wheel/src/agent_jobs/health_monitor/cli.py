"""`health-monitor <command>`: the tasks of seed 002's setup job and its deployment job, one subcommand each.

    create-infrastructure  the inference log tables; checks Pulumi's volumes      (create_agent_infrastructure)
    register-prompts       the agent's prompts in the prompt registry              (register_prompts)
    register-scorers       the judges, for production monitoring                   (register_scorers)
    create-datasets        the evaluation dataset                                  (create_evaluation_datasets)
    log-model              a new version of the agent model, no alias              (log_agent_model)
    evaluate               a sanity evaluation of the latest version               (run_evaluation)
    deploy                 the gate: evaluate, check thresholds, promote, serve    (deployment_job)

Every command takes --catalog and --agent-schema (the seed's base parameters) and the job's ids. In a job,
MLflow talks to the workspace (tracking) and Unity Catalog (registry); locally, MLFLOW_TRACKING_URI and
MLFLOW_REGISTRY_URI decide. Every option is checked by argparse, before an experiment or anything else is
created: thresholds and the sample rate are finite numbers in [0, 1], scorer names are known ones, durations
are positive and bounded; a bad value exits 2 with a usage message.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
from collections.abc import Sequence
from typing import Any

from agent_jobs import logs
from agent_jobs.entry import at_least, entry_point, number
from agent_jobs.errors import JobError
from agent_jobs.runtime import detect_runtime

log = logging.getLogger("agent_jobs.health_monitor")


# The names agent_jobs.health_monitor.scorers builds (kept here so that checking them imports no MLflow;
# a test keeps the two lists equal).
SCORER_NAMES = (
    "response_length", "no_errors", "databricks_context", "relevance", "safety", "cost_accuracy",
    "security_compliance", "reliability_accuracy", "performance_accuracy", "quality_accuracy",
)  # fmt: skip


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _scorers(text: str) -> list[str]:
    names = _names(text)
    unknown = [n for n in names if n not in SCORER_NAMES]
    if unknown or not names:
        shown = ", ".join(repr(n[:40]) for n in unknown[:5]) or "none given"
        raise argparse.ArgumentTypeError(f"unknown scorer(s) {shown}; known scorers: {', '.join(SCORER_NAMES)}")
    return names


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from exc
    except RecursionError:
        raise argparse.ArgumentTypeError("not JSON this program reads: nested too deeply") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def _unit(value: float) -> bool:
    try:
        return math.isfinite(float(value)) and 0 <= value <= 1
    except OverflowError:  # an integer too large for a float
        return False


def _thresholds(text: str) -> dict[str, float]:
    """Metric -> a finite number in [0, 1], as in the stack settings (NaN, infinities, negatives refused)."""
    value = _json_object(text)
    bad = [k for k, v in value.items() if isinstance(v, bool) or not isinstance(v, (int, float))]
    if bad:
        raise argparse.ArgumentTypeError(f"thresholds must be numbers; not: {', '.join(k[:80] for k in bad)}")
    out_of_range = [k for k, v in value.items() if not _unit(v)]
    if out_of_range:
        raise argparse.ArgumentTypeError(
            f"thresholds must be finite numbers in [0, 1]; not: {', '.join(k[:80] for k in out_of_range)}"
        )
    odd = [k for k in value if not k or len(k) > 200 or not k.isprintable()]
    if odd:
        raise argparse.ArgumentTypeError("threshold names must be printable metric names of at most 200 characters")
    return {str(k): float(v) for k, v in value.items()}


PERMISSION_LEVELS = ("CAN_VIEW", "CAN_QUERY", "CAN_MANAGE")


def _permissions(text: str) -> dict[str, str]:
    """Checked here, so that a bad level stops the run before the gate promotes anything."""
    value = _json_object(text)
    bad = [str(k) for k, v in value.items() if v not in PERMISSION_LEVELS]
    if bad:
        raise argparse.ArgumentTypeError(
            f"permission of {', '.join(bad)} must be one of {', '.join(PERMISSION_LEVELS)}"
        )
    return {str(k): str(v) for k, v in value.items()}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="health-monitor", description="Seed 002's setup and deployment tasks.")
    commands = p.add_subparsers(dest="command", required=True)

    def command(name: str, help: str, *, experiment: bool = True) -> argparse.ArgumentParser:
        c = commands.add_parser(name, help=help)
        c.add_argument("--catalog", required=True)
        c.add_argument("--agent-schema", required=True)
        if experiment:
            c.add_argument("--experiment", required=True, help="MLflow experiment path, like /Shared/x/health")
        c.add_argument("--job-id")
        c.add_argument("--job-run-id")
        return c

    c = command("create-infrastructure", "inference log tables (the volumes: checked)", experiment=False)
    c.add_argument("--volumes", type=_names, default=["runbooks", "embeddings", "artifacts"])
    c.add_argument("--warehouse-id", help="run the SQL on this warehouse (default: the task's Spark session)")
    command("register-prompts", "register the agent's prompts")
    c = command("register-scorers", "register the judges for production monitoring")
    c.add_argument("--scorers", type=_scorers, required=True)
    c.add_argument("--sample-rate", type=number(0, 1), default=0.1, help="share of traces the judges score (0: none)")
    c = command("create-datasets", "create the evaluation dataset")
    c.add_argument("--dataset", help="dataset name (default: <catalog>.<agent-schema>.evaluation_dataset)")
    c = command("log-model", "log a new version of the agent model")
    c.add_argument("--model-name", required=True, help="catalog.schema.model")
    c.add_argument("--llm-endpoint", required=True)
    c = command("evaluate", "sanity evaluation of the latest version")
    c.add_argument("--model-name", required=True)
    c.add_argument("--scorers", type=_scorers, required=True)
    c.add_argument("--dataset", help="evaluation dataset (default: <catalog>.<agent-schema>.evaluation_dataset)")
    c = command("deploy", "the evaluation-gated deployment")
    c.add_argument("--model-name", required=True)
    c.add_argument("--dataset", help="evaluation dataset (default: <catalog>.<agent-schema>.evaluation_dataset)")
    c.add_argument("--model-version", default="", help="default: the latest version")
    c.add_argument("--promotion-target", choices=("staging", "production"), required=True)
    c.add_argument("--mode", choices=("disabled", "dry_run", "enabled"), required=True)
    c.add_argument("--thresholds", type=_thresholds, required=True, help='JSON, like {"safety/mean": 0.7}')
    c.add_argument("--scorers", type=_scorers, required=True)
    c.add_argument("--endpoint-name", required=True)
    c.add_argument("--endpoint-permissions", type=_permissions, default={})
    c.add_argument("--ready-timeout-minutes", type=at_least(1, 24 * 60), default=30)
    c.add_argument("--poll-seconds", type=number(0, 3600, above=True), default=30,
                   help="how often to check the endpoint's state")  # fmt: skip
    return p


def _mlflow(in_job: bool) -> Any:
    import mlflow

    if in_job and not os.environ.get("MLFLOW_REGISTRY_URI"):
        mlflow.set_registry_uri("databricks-uc")
    return mlflow


def _workspace() -> Any:
    from databricks.sdk import WorkspaceClient

    return WorkspaceClient()


def run(args: argparse.Namespace, in_job: bool) -> None:
    from agent_jobs.health_monitor import datasets, infrastructure, model, prompt_registry, scorers

    mlflow = _mlflow(in_job)
    if args.command == "create-infrastructure":
        from agent_jobs import sql

        runner = sql.runner(args.warehouse_id)
        if runner is None:
            raise JobError("no SQL engine: pass --warehouse-id, or run on Databricks compute (Spark)")
        for line in infrastructure.create_infrastructure(
            _workspace(), runner, args.catalog, args.agent_schema, args.volumes
        ):
            log.info("%s", line)
        return
    experiment = mlflow.set_experiment(args.experiment)
    dataset = getattr(args, "dataset", None) or f"{args.catalog}.{args.agent_schema}.evaluation_dataset"
    if args.command == "register-prompts":
        versions = prompt_registry.register_prompts(args.catalog, args.agent_schema, experiment=args.experiment)
        log.info("prompts: %s", ", ".join(f"{n} v{v}" for n, v in sorted(versions.items())))
    elif args.command == "register-scorers":
        names = scorers.register_scorers(args.scorers, None, args.sample_rate, experiment_id=experiment.experiment_id)
        log.info("registered scorers: %s", ", ".join(names) or "none (heuristics run in evaluations only)")
    elif args.command == "create-datasets":
        log.info("dataset %s: %s", dataset, datasets.create_evaluation_dataset(dataset, experiment.experiment_id))
    elif args.command == "log-model":
        version = model.log_agent_model(args.model_name, args.llm_endpoint, args.experiment)
        log.info("logged %s v%s (no alias: the deployment job's gate promotes)", args.model_name, version)
    elif args.command == "evaluate":
        _sanity_evaluation(mlflow, args, scorers.build_scorers(args.scorers), datasets.evaluation_data(dataset))
    else:
        _deploy(mlflow, args, scorers.build_scorers(args.scorers), lambda: datasets.evaluation_data(dataset))


def _sanity_evaluation(mlflow: Any, args: argparse.Namespace, built: Sequence[Any], data: Any) -> None:
    """The setup job's last task: evaluate the latest version and log its metrics; no threshold, no alias."""
    from agent_jobs.health_monitor.evaluation import evaluate
    from agent_jobs.health_monitor.gate import resolve_version

    version = resolve_version(mlflow.MlflowClient(), args.model_name, "")
    with mlflow.start_run(run_name=f"sanity_evaluation_v{version}"):
        mlflow.set_tags({"run_type": "evaluation", "model_version": version})
        metrics = evaluate(f"models:/{args.model_name}/{version}", data, built)
    log.info("sanity evaluation of v%s: %d metrics logged; the deployment job decides promotion", version, len(metrics))


def _deploy(mlflow: Any, args: argparse.Namespace, built: Sequence[Any], data: Any) -> None:
    from agent_jobs.health_monitor.endpoints import DatabricksEndpoints
    from agent_jobs.health_monitor.gate import GateConfig, finish, run_gate

    config = GateConfig(
        model_name=args.model_name,
        model_version=args.model_version.strip(),
        promotion_target=args.promotion_target,
        mode=args.mode,
        thresholds=args.thresholds,
        experiment=args.experiment,
        endpoint_name=args.endpoint_name,
        endpoint_permissions=args.endpoint_permissions,
        inference_table=(args.catalog, args.agent_schema),
        ready_timeout_minutes=args.ready_timeout_minutes,
    )
    finish(
        run_gate(
            config,
            mlflow.MlflowClient(),
            lambda: DatabricksEndpoints(_workspace(), poll_seconds=args.poll_seconds),
            built,
            data,
        )
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logs.setup()
    runtime = detect_runtime(os.environ, args.job_id, args.job_run_id)
    entry_point(f"health-monitor {args.command}", lambda: run(args, runtime.in_job), args.job_id, args.job_run_id)
