"""The production stack as committed: what production mode promises, checked on the rendered plan."""

from __future__ import annotations

import json
import re

import pytest

from infra.settings import SettingsError
from infra.tools.offline import Plan, read_stack_config, unwrap
from tests.conftest import ROOT, parse, stack_plan

SP = "6f1c2a4e-0b7d-4c1e-9a53-2f8e7d6c5b4a"


@pytest.fixture(scope="module")
def prod() -> Plan:
    return stack_plan("prod")


def test_every_prod_job_runs_as_the_service_principal_and_reports_failures(prod: Plan) -> None:
    jobs = [unwrap(j.inputs) for j in prod.all("Job")]
    assert len(jobs) == len([k for k in prod.outputs if k.endswith("_job_id")]) >= 7  # every system is on in prod
    for job in jobs:
        assert job["runAs"] == {"servicePrincipalName": SP}, job["name"]
        assert job["emailNotifications"]["onFailures"] == ["agent-oncall@example.com"]
        assert job["name"].startswith("prod-agent-platform-") and "[dev" not in job["name"]
        assert job["timeoutSeconds"] > 0 and job["maxConcurrentRuns"] >= 1
        assert "dev" not in job["tags"] and job["tags"]["environment"] == "prod"


def test_prod_schedules_run_and_permissions_are_as_configured(prod: Plan) -> None:
    schedule = unwrap(prod.one("Job", "eval-agent").inputs)["schedule"]
    assert schedule == {"quartzCronExpression": "0 0 6 ? * MON", "timezoneId": "UTC", "pauseStatus": "UNPAUSED"}
    permissions = [p for p in prod.all("Permissions") if "jobId" in p.inputs]  # the app and endpoint: their own tests
    assert len(permissions) == len(prod.all("Job"))
    for p in permissions:
        assert {(c.get("groupName"), c["permissionLevel"]) for c in unwrap(p.inputs)["accessControls"]} == {
            ("agent-developers", "CAN_VIEW"),
            ("agent-operators", "CAN_MANAGE_RUN"),
        }


def test_prod_data_is_protected(prod: Plan) -> None:
    data = prod.all("Schema") + prod.all("Volume") + prod.all("RegisteredModel") + prod.all("MlflowExperiment")
    assert data and all(r.protect and r.retain_on_delete for r in data)


def test_a_prod_stack_without_a_run_as_principal_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"deployment\.run_as.*required in production mode"):
        parse({"environment": "prod"})
    with pytest.raises(SettingsError, match="must be a service principal in production mode"):
        parse({"environment": "prod", "deployment": {"run_as": "alice@example.com"}})


# Settings whose values belong to one workspace (or one organisation): a production stack must set its own.
WORKSPACE_SPECIFIC = {
    "host", "profile", "run_as", "on_failure", "on_success", "job_permissions", "secret_readers", "grants",
    "experiment_id", "cluster_id", "sql_warehouse_id", "policy_id", "endpoint_permissions", "permissions",
    "zerobus_endpoint", "warehouse_id",
}  # fmt: skip


def _specific_paths(value: object, path: str) -> set[str]:
    if not isinstance(value, dict):
        return set()
    found = set()
    for key, item in value.items():
        here = f"{path}.{key}"
        found |= {here} if key in WORKSPACE_SPECIFIC else _specific_paths(item, here)
    return found


def test_every_value_to_replace_before_the_first_deploy_is_listed_in_one_place() -> None:
    """Pulumi.prod.yaml's header lists every workspace-specific value it holds (host, identities, groups,
    experiment and cluster ids...), so nobody deploys production with another workspace's ids; adding such a
    value without listing it fails here."""
    config = read_stack_config(ROOT, "prod")
    present: set[str] = set()
    for key, text in config.values.items():
        namespace, name = key.split(":", 1)
        if namespace != "agent-platform":
            continue
        value = json.loads(text) if text.startswith(("{", "[")) else text
        present |= {f"agent-platform:{name}"} if name in WORKSPACE_SPECIFIC else _specific_paths(value, key)
    header = (ROOT / "Pulumi.prod.yaml").read_text().split("\nconfig:", 1)[0]
    listed = set(re.findall(r"^#   - (agent-platform:\S+)", header, flags=re.MULTILINE))
    assert listed == present


def test_prod_has_its_own_compute() -> None:
    """A cluster id belongs to one workspace: no stack reuses another stack's cluster id (prod runs seed 003's
    jobs on serverless, so its plan names no cluster at all)."""
    plan = stack_plan("prod")
    assert not [t for j in plan.all("Job") for t in unwrap(j.inputs)["tasks"] if "existingClusterId" in t]
    ids: dict[str, str] = {}
    for stack_file in sorted(ROOT.glob("Pulumi.*.yaml")):
        for cluster_id in re.findall(r"\b\d{4}-\d{6}-[a-z0-9]{4,16}\b", stack_file.read_text()):
            assert ids.setdefault(cluster_id, stack_file.name) == stack_file.name, cluster_id
