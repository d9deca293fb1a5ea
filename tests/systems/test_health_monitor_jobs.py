"""Seed 002 in the whole program: the setup job's task graph, the deployment job's parameters, the registered
model and its link to the deployment job, environments and outputs."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra.components.wheel import SOURCE, extra_requirements
from infra.systems.health_monitor.settings import SEED_THRESHOLDS
from infra.tools.offline import Plan, unwrap
from tests.conftest import program_plan, stack_plan

# The seed's DAG (agent_setup_job.yml), as (upstream, downstream) pairs.
SEED_EDGES = {
    ("create_agent_infrastructure", "register_prompts"),
    ("create_agent_infrastructure", "register_scorers"),
    ("create_agent_infrastructure", "create_evaluation_datasets"),
    ("register_prompts", "log_agent_model"),
    ("register_scorers", "log_agent_model"),
    ("log_agent_model", "run_evaluation"),
    ("create_evaluation_datasets", "run_evaluation"),
}
# The seed's table "Environment Configuration by Task".
SEED_ENVIRONMENTS = {
    "create_agent_infrastructure": "sql_only",
    "register_prompts": "mlflow_env",
    "register_scorers": "mlflow_env",
    "log_agent_model": "agent_env",
    "run_evaluation": "mlflow_env",
    "create_evaluation_datasets": "agents_env",
}
SP = "6f1c2a4e-0b7d-4c1e-9a53-2f8e7d6c5b4a"


def options(task: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """(subcommand, --option -> value) of a health-monitor wheel task."""
    wheel = task["pythonWheelTask"]
    assert (wheel["packageName"], wheel["entryPoint"]) == ("agent_jobs", "health-monitor")
    command, *rest = wheel["parameters"]
    joined = [part for part in rest if part.startswith("--") and "=" in part]
    pairs = [part for part in rest if part not in joined]
    return command, {
        **dict(part.split("=", 1) for part in joined),
        **dict(zip(pairs[0::2], pairs[1::2], strict=True)),
    }


@pytest.fixture(scope="module")
def dev() -> Plan:
    return stack_plan("dev")


@pytest.fixture(scope="module")
def prod() -> Plan:
    return stack_plan("prod")


def test_setup_job_has_exactly_the_seeds_task_graph(dev: Plan) -> None:
    """Done when: the dev plan shows the setup job with exactly the seed's task graph."""
    job = unwrap(dev.one("Job", "health-monitor-setup").inputs)
    tasks = {t["taskKey"]: t for t in job["tasks"]}
    assert set(tasks) == set(SEED_ENVIRONMENTS)
    edges = {(d["taskKey"], key) for key, t in tasks.items() for d in t.get("dependsOns") or []}
    assert edges == SEED_EDGES
    assert job["name"] == "dev-agent-platform-agent-setup"


def test_setup_tasks_run_the_wheel_with_catalog_and_agent_schema(dev: Plan) -> None:
    job = unwrap(dev.one("Job", "health-monitor-setup").inputs)
    commands = {}
    for task in job["tasks"]:
        command, opts = options(task)
        commands[task["taskKey"]] = command
        assert (opts["--catalog"], opts["--agent-schema"]) == ("main", "health_monitor_agent_dev")
        assert (opts["--job-id"], opts["--job-run-id"]) == ("{{job.id}}", "{{job.run_id}}")
    assert commands == {
        "create_agent_infrastructure": "create-infrastructure",
        "register_prompts": "register-prompts",
        "register_scorers": "register-scorers",
        "create_evaluation_datasets": "create-datasets",
        "log_agent_model": "log-model",
        "run_evaluation": "evaluate",
    }
    # No endpoint is created by this job: no task runs the gate, and Pulumi creates no serving endpoint.
    assert "deploy" not in commands.values() and not dev.all("ModelServing")


def test_environments_follow_the_seeds_table_unpinned(dev: Plan) -> None:
    wheel = dev.one("File", "wheel").inputs["path"]
    for name in ("health-monitor-setup", "health-monitor-deployment"):
        job = unwrap(dev.one("Job", name).inputs)
        environments = {e["environmentKey"]: e["spec"] for e in job["environments"]}
        used = {t["environmentKey"] for t in job["tasks"]}
        assert set(environments) == used  # none missing, none unused
        for spec in environments.values():
            assert spec["environmentVersion"] == "5"  # MLflow 3: mlflow.genai.evaluate
            extra = list(extra_requirements(SOURCE, "health-monitor"))
            deps = spec["dependencies"]
            assert deps[len(deps) - len(extra) :] == extra  # the wheel's health-monitor extra, last
            *packages, last = deps[: len(deps) - len(extra)]
            assert last == wheel
            assert all(re.fullmatch(r"[a-z][a-z0-9-]*", p) for p in packages), packages  # no version pins
    setup = unwrap(dev.one("Job", "health-monitor-setup").inputs)
    assert {t["taskKey"]: t["environmentKey"] for t in setup["tasks"]} == SEED_ENVIRONMENTS
    n = 1 + len(extra_requirements(SOURCE, "health-monitor"))
    specs = {e["environmentKey"]: e["spec"]["dependencies"][:-n] for e in setup["environments"]}
    assert specs["sql_only"] == [] and "databricks-agents" in specs["agents_env"]


def test_deployment_job_parameters_and_gate(dev: Plan) -> None:
    """Done when: the deployment job with its parameters (model_name defaults to the stack's model)."""
    job = unwrap(dev.one("Job", "health-monitor-deployment").inputs)
    params = {p["name"]: p["default"] for p in job["parameters"]}
    assert params == {
        "model_name": "main.health_monitor_agent_dev.health_monitor_agent",
        "model_version": "",
        "promotion_target": "staging",
        "gate_mode": "enabled",
    }
    assert dev.outputs["registered_model"][0] == params["model_name"]
    (task,) = job["tasks"]
    assert task["taskKey"] == "deployment_job"
    command, opts = options(task)
    assert command == "deploy"
    for name in params:
        flag = "--mode" if name == "gate_mode" else "--" + name.replace("_", "-")
        assert opts[flag] == f"{{{{job.parameters.{name}}}}}"
    assert json.loads(opts["--thresholds"]) == SEED_THRESHOLDS
    assert opts["--endpoint-name"] == "health-monitor-agent-dev"
    assert json.loads(opts["--endpoint-permissions"]) == {}
    assert opts["--experiment"] == "/Shared/agent-platform/dev/health-monitor"


def test_prod_promotes_to_production_and_protects_the_model(prod: Plan, dev: Plan) -> None:
    job = unwrap(prod.one("Job", "health-monitor-deployment").inputs)
    assert {p["name"]: p["default"] for p in job["parameters"]}["promotion_target"] == "production"
    assert job["runAs"] == {"servicePrincipalName": SP}
    model = prod.one("RegisteredModel", "health-monitor-model")
    assert model.retain_on_delete and model.protect
    assert model.inputs["owner"] == SP  # aliases and versions need ownership; the jobs run as SP
    dev_model = dev.one("RegisteredModel", "health-monitor-model")
    assert dev_model.retain_on_delete and not dev_model.protect and "owner" not in dev_model.inputs
    experiment = prod.one("MlflowExperiment", "health-monitor-experiment")
    assert experiment.retain_on_delete and experiment.protect


def test_deployment_job_is_linked_to_the_registered_model(dev: Plan) -> None:
    """Done when: the plan shows the link to the registered model."""
    link = dev.one("Resource", "health-monitor-deployment-link")
    assert link.type == "pulumi-python:dynamic:Resource" and link.name == "health-monitor-deployment-link"
    assert link.inputs["model_name"] == dev.outputs["registered_model"][0]
    assert link.inputs["job_id"] == dev.one("Job", "health-monitor-deployment").id
    assert link.inputs["host"] == "https://e2-demo-field-eng.cloud.databricks.com"
    assert link.inputs["__provider"] != "" and "token" not in json.dumps(link.inputs).lower()


def test_outputs(dev: Plan) -> None:
    setup, deployment = dev.one("Job", "health-monitor-setup"), dev.one("Job", "health-monitor-deployment")
    assert dev.outputs["agent_setup_job_id"] == (setup.id, False)
    assert dev.outputs["agent_deployment_job_id"] == (deployment.id, False)
    assert dev.outputs["agent_setup_job_url"][0].endswith(f"/#job/{setup.id}")
    assert dev.outputs["agent_deployment_job_url"][0].endswith(f"/#job/{deployment.id}")


def test_configured_values_reach_the_jobs() -> None:
    plan = program_plan(
        {
            "deployment": {"user": "alice"},
            "health_monitor": {
                "schema": {"name": "hm_alice"},
                "gate_mode": "dry_run",
                "thresholds": {"safety/mean": 0.95, "relevance/mean": None},
                "endpoint_permissions": {"agent-users": "CAN_QUERY"},
                "experiment_path": "/Users/alice@example.com/health-monitor",
            },
        }
    )
    job = unwrap(plan.one("Job", "health-monitor-deployment").inputs)
    assert job["name"] == "[dev alice] dev-agent-platform-agent-deployment"
    params = {p["name"]: p["default"] for p in job["parameters"]}
    assert params["gate_mode"] == "dry_run" and params["model_name"] == "main.hm_alice.health_monitor_agent"
    _, opts = options(job["tasks"][0])
    thresholds = json.loads(opts["--thresholds"])
    assert thresholds["safety/mean"] == 0.95 and "relevance/mean" not in thresholds
    assert thresholds["no_errors/mean"] == SEED_THRESHOLDS["no_errors/mean"]
    assert json.loads(opts["--endpoint-permissions"]) == {"agent-users": "CAN_QUERY"}
    assert opts["--endpoint-name"] == "health-monitor-agent-dev-alice"
    assert plan.one("MlflowExperiment").inputs["name"] == "/Users/alice@example.com/health-monitor"
    assert not plan.all("Directory")  # a user's home always exists


def test_the_experiments_folder_is_created_before_it(dev: Plan) -> None:
    """MLflow does not create parent folders: /Shared/agent-platform/dev is created (and kept) first."""
    folder = dev.one("Directory", "health-monitor-experiment-folder")
    assert folder.inputs["path"] == "/Shared/agent-platform/dev" and folder.retain_on_delete
    experiment = dev.one("MlflowExperiment", "health-monitor-experiment")
    assert experiment.inputs["name"] == "/Shared/agent-platform/dev/health-monitor"
    assert f"{folder.type}::{folder.name}" in experiment.depends_on  # the engine creates the folder first


def test_disabled_health_monitor_creates_nothing_of_it() -> None:
    plan = program_plan({"health_monitor": {"enabled": False}})
    assert (
        not plan.all("RegisteredModel")
        and not plan.all("MlflowExperiment")
        and not [r for r in plan.all("Resource") if r.name.startswith("health-monitor")]
    )
    assert {r.name for r in plan.all("Job")} == {"eval-agent", "rlm-executor", "rlm-orchestrator"}
    assert not {"agent_setup_job_id", "agent_deployment_job_id", "registered_model"} & set(plan.outputs)
    only = program_plan({"eval_agent": {"enabled": False}, "rlm": {"enabled": False}})
    assert {r.name for r in only.all("Job")} == {"health-monitor-setup", "health-monitor-deployment"}
    assert only.all("File")  # the wheel is still built and uploaded for these jobs


def test_stack_config_and_wheel_agree_on_scorers_and_metrics() -> None:
    """A scorer the stack file may name is one the wheel can build, and every seed threshold names a metric one
    of the seed's scorers produces ('<scorer name>/mean', under one of the names the wheel's gate looks for)."""
    from agent_jobs.health_monitor.evaluation import candidates
    from agent_jobs.health_monitor.scorers import SCORERS, build_scorers
    from infra.systems.health_monitor.settings import SEED_SCORERS

    assert set(SEED_SCORERS) == set(SCORERS)
    produced = {f"{scorer.name}/mean" for scorer in build_scorers(SEED_SCORERS, judge_model="databricks")}
    assert {metric: sorted(produced & set(candidates(metric))) for metric in SEED_THRESHOLDS} == {
        metric: [metric] for metric in SEED_THRESHOLDS
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_task_passes_what_the_wheels_cli_accepts(stack: str) -> None:
    """The job definitions and the `health-monitor` argument parser agree: every option passed is known,
    every required one is passed (job parameters replaced by their defaults, as a manual run does)."""
    from agent_jobs.health_monitor.cli import parser

    plan = stack_plan(stack)
    for name in ("health-monitor-setup", "health-monitor-deployment"):
        job = unwrap(plan.one("Job", name).inputs)
        defaults = {p["name"]: p["default"] for p in job.get("parameters") or []}
        for task in job["tasks"]:
            argv = []
            for part in task["pythonWheelTask"]["parameters"]:
                for key, value in {**defaults, "job.id": "1", "job.run_id": "2"}.items():
                    part = part.replace(f"{{{{job.parameters.{key}}}}}", value).replace(f"{{{{{key}}}}}", value)
                argv.append(part)
            assert "{{" not in " ".join(argv), argv
            args = parser().parse_args(argv)  # SystemExit(2) on an unknown or missing option
            assert args.catalog == "main"
