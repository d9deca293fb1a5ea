"""The production stack as committed: what production mode promises, checked on the rendered plan."""

from __future__ import annotations

import pytest

from infra.offline import Plan, preview_stack, unwrap
from infra.settings import SettingsError
from tests.conftest import ROOT, parse

SP = "6f1c2a4e-0b7d-4c1e-9a53-2f8e7d6c5b4a"


@pytest.fixture(scope="module")
def prod() -> Plan:
    return preview_stack(ROOT, "prod")[0]


def test_every_prod_job_runs_as_the_service_principal_and_reports_failures(prod: Plan) -> None:
    jobs = [unwrap(j.inputs) for j in prod.all("Job")]
    assert len(jobs) == 5
    for job in jobs:
        assert job["runAs"] == {"servicePrincipalName": SP}, job["name"]
        assert job["emailNotifications"]["onFailures"] == ["agent-oncall@example.com"]
        assert job["name"].startswith("prod-agent-platform-") and "[dev" not in job["name"]
        assert job["timeoutSeconds"] > 0 and job["maxConcurrentRuns"] >= 1
        assert "dev" not in job["tags"] and job["tags"]["environment"] == "prod"


def test_prod_schedules_run_and_permissions_are_as_configured(prod: Plan) -> None:
    schedule = unwrap(prod.one("Job", "eval-agent").inputs)["schedule"]
    assert schedule == {"quartzCronExpression": "0 0 6 ? * MON", "timezoneId": "UTC", "pauseStatus": "UNPAUSED"}
    permissions = prod.all("Permissions")
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
