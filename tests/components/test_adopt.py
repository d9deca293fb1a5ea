"""Adopting what the seeds' DAB deployments created: the listed objects are imported with their existing ids,
and nothing else about the plan changes."""

from __future__ import annotations

import json
from typing import Any

from infra.tools.offline import Plan, unwrap
from tests.conftest import program_plan

ADOPT: dict[str, Any] = {
    "jobs": {
        "eval_agent": "111111111111111",
        "rlm_orchestrator": "222222222222222",
        "rlm_executor": "333333333333333",
        "agent_setup": "444444444444444",
        "agent_deployment": "667754679146345",  # seed 002's example id
    },
    "schemas": {"platform": "main.agents_dev", "agent": "main.health_monitor_agent_dev"},
    "volumes": {
        "wheels": "main.agents_dev.wheels",
        "health_monitor_runbooks": "main.health_monitor_agent_dev.runbooks",
    },
    "secret_scopes": {"eval_agent": "mlflow-eval-dev", "rlm": "adk-secrets-dev"},
    "registered_model": "main.health_monitor_agent_dev.health_monitor_agent",
}
IMPORTED = {
    ("Job", "eval-agent"): "111111111111111",
    ("Job", "rlm-orchestrator"): "222222222222222",
    ("Job", "rlm-executor"): "333333333333333",
    ("Job", "health-monitor-setup"): "444444444444444",
    ("Job", "health-monitor-deployment"): "667754679146345",
    ("Schema", "platform"): "main.agents_dev",
    ("Schema", "agent"): "main.health_monitor_agent_dev",
    ("Volume", "platform-wheels"): "main.agents_dev.wheels",
    ("Volume", "agent-health-monitor-runbooks"): "main.health_monitor_agent_dev.runbooks",
    ("SecretScope", "eval-agent-secrets"): "mlflow-eval-dev",
    ("SecretScope", "rlm-secrets"): "adk-secrets-dev",
    ("RegisteredModel", "health-monitor-model"): "main.health_monitor_agent_dev.health_monitor_agent",
}


def by_key(plan: Plan) -> dict[tuple[str, str], Any]:
    return {(r.type.rsplit(":", 1)[-1], r.name): r for r in plan.resources}


def test_adopted_objects_carry_their_ids_and_nothing_else_changes() -> None:
    """Done when: imported resources carry the given ids, are retained (they were not this stack's to delete),
    and nothing else changes."""
    fresh, adopted = by_key(program_plan()), by_key(program_plan({"adopt": ADOPT}))
    assert fresh.keys() == adopted.keys()  # nothing added or removed
    for key, resource in adopted.items():
        if key in IMPORTED:
            assert (resource.import_id, resource.id) == (IMPORTED[key], IMPORTED[key]), key
            assert resource.retain_on_delete, key  # it existed before the stack: destroying the stack leaves it
        else:
            assert resource.import_id is None, key
        if key[0] in ("Job", "Resource", "Permissions"):
            continue  # they name the jobs' ids, which are the adopted ones: compared below
        assert unwrap(resource.inputs) == unwrap(fresh[key].inputs), key
    for job in ("eval-agent", "rlm-orchestrator", "rlm-executor", "health-monitor-setup", "health-monitor-deployment"):
        assert unwrap(adopted[("Job", job)].inputs) == _with_job_ids(unwrap(fresh[("Job", job)].inputs), fresh, adopted)


def test_job_ids_and_the_models_link_stay_as_they_were() -> None:
    plan = program_plan({"adopt": ADOPT})
    assert plan.outputs["agent_deployment_job_id"][0] == "667754679146345"
    assert plan.outputs["rlm_executor_job_id"][0] == "333333333333333"
    link = plan.one("Resource", "health-monitor-deployment-link")
    assert link.inputs["job_id"] == "667754679146345"  # the link the seed made by hand points at the same job
    orchestrator = unwrap(plan.one("Job", "rlm-orchestrator").inputs)
    params = orchestrator["tasks"][0]["pythonWheelTask"]["parameters"]
    assert params[params.index("--executor-job-id") + 1] == "333333333333333"


def test_the_preview_says_what_is_imported() -> None:
    from infra.tools.preview import to_text

    text = to_text(program_plan({"adopt": ADOPT}))
    assert (
        "health-monitor-deployment  dev-agent-platform-agent-deployment (1 tasks)  [retain_on_delete, import "
        "667754679146345]" in text
    )
    assert text.count("[import ") + text.count(", import ") == len(IMPORTED)


def _with_job_ids(inputs: Any, fresh: dict[tuple[str, str], Any], adopted: dict[tuple[str, str], Any]) -> Any:
    """`inputs` with every fresh job id replaced by the adopted one (the orchestrator names the executor's)."""
    text = json.dumps(inputs)
    for key, resource in fresh.items():
        if key[0] == "Job":
            text = text.replace(resource.id, adopted[key].id)
    return json.loads(text)
