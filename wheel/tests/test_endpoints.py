"""The agent's serving endpoint through the real databricks-sdk against the local stand-in: create, update,
the agent/non-agent recreate, bounded waits (on a fake clock), failed updates, API errors and permissions."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient

import standin as standin_module
from agent_jobs.errors import JobError
from agent_jobs.health_monitor.endpoints import DatabricksEndpoints, EndpointSpec
from standin import TOKEN, StandIn

NAME = "health-monitor-agent-dev"
ROOT = "/api/2.0/serving-endpoints"
SPEC = EndpointSpec(
    name=NAME,
    model_name="main.health_agent.health_monitor_agent",
    model_version="4",
    inference_table=("main", "health_agent"),
    tags={"project": "health_monitor"},
)
SERVED = {
    "entity_name": "main.health_agent.health_monitor_agent",
    "entity_version": "4",
    "workload_size": "Small",
    "scale_to_zero_enabled": True,
}
INFERENCE_TABLE = {
    "enabled": True,
    "catalog_name": "main",
    "schema_name": "health_agent",
    "table_name_prefix": "health_monitor_agent_dev",
}


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def endpoints(standin: StandIn, fake_time: FakeTime, monkeypatch: pytest.MonkeyPatch) -> DatabricksEndpoints:
    for name in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CONFIG_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    client = WorkspaceClient(host=standin.url, token=TOKEN)
    return DatabricksEndpoints(client, poll_seconds=30, sleep=fake_time.sleep, clock=fake_time.clock)


def calls(standin: StandIn) -> list[tuple[str, str]]:
    """The serving API calls in order, paths relative to /api/2.0/serving-endpoints."""
    return [(r["method"], r["path"].removeprefix(ROOT)) for r in standin.requests if r["path"].startswith(ROOT)]


def body(standin: StandIn, method: str, path: str) -> dict[str, Any]:
    (request,) = [r for r in standin.requests if r["method"] == method and r["path"] == path]
    return request["body"]


def served(standin: StandIn) -> dict[str, Any]:
    return standin.serving[NAME]["config"]["served_entities"][0]


def test_a_missing_endpoint_is_created_with_its_model_gateway_and_tags(
    standin: StandIn, endpoints: DatabricksEndpoints, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    """One create, not create-and-wait: the request carries the served entity (scale to zero), the AI Gateway
    (inference tables under a table-safe prefix, usage tracking) and the tags; waiting is the caller's."""
    assert endpoints.deploy(SPEC) == "created"
    assert calls(standin) == [("GET", f"/{NAME}"), ("POST", "")]
    sent = body(standin, "POST", ROOT)
    assert sent["name"] == NAME
    assert sent["config"] == {"name": NAME, "served_entities": [SERVED]}
    assert sent["ai_gateway"] == {"inference_table_config": INFERENCE_TABLE, "usage_tracking_config": {"enabled": True}}
    assert sent["tags"] == [{"key": "project", "value": "health_monitor"}]
    assert standin.serving[NAME]["config_update"] == "IN_PROGRESS"

    with caplog.at_level(logging.INFO, logger="agent_jobs.health_monitor.endpoints"):
        endpoints.wait_ready(NAME, timeout_seconds=600)
    assert fake_time.sleeps == [30]  # NOT_READY on the first get, READY on the second
    assert served(standin) == SERVED
    assert f"{standin.url}/ml/endpoints/{NAME}" in caplog.text
    assert "ready=NOT_READY config_update=IN_PROGRESS" in caplog.text


def test_an_existing_endpoint_is_updated_and_keeps_its_gateway_limits(
    standin: StandIn, endpoints: DatabricksEndpoints
) -> None:
    """update_config with the new version; the gateway PUT adds the inference table and keeps the rate limits
    set elsewhere (a PUT replaces them all); the missing tag is added. A second deploy changes no gateway."""
    limits = [{"calls": 100, "key": "user", "renewal_period": "minute"}]
    standin.add_serving_endpoint(NAME, ai_gateway={"rate_limits": limits})
    assert endpoints.deploy(SPEC) == "updated"
    assert calls(standin) == [("GET", f"/{NAME}"), ("PUT", f"/{NAME}/config"), ("PUT", f"/{NAME}/ai-gateway"),
                              ("PATCH", f"/{NAME}/tags")]  # fmt: skip
    assert body(standin, "PUT", f"{ROOT}/{NAME}/config") == {"served_entities": [SERVED]}
    assert body(standin, "PUT", f"{ROOT}/{NAME}/ai-gateway") == {
        "inference_table_config": INFERENCE_TABLE, "usage_tracking_config": {"enabled": True}, "rate_limits": limits
    }  # fmt: skip
    assert standin.serving[NAME]["tags"] == [{"key": "project", "value": "health_monitor"}]
    assert served(standin)["entity_version"] == "1"  # the old config serves until the update is done

    endpoints.wait_ready(NAME, timeout_seconds=600)
    assert served(standin) == SERVED
    standin.requests.clear()
    assert endpoints.deploy(SPEC) == "updated"
    assert calls(standin) == [("GET", f"/{NAME}"), ("PUT", f"/{NAME}/config")]


@pytest.mark.parametrize(
    "refusal",
    [
        "Agent endpoint cannot be updated to serve non-agent models or vice-versa",
        "Non-agent endpoint cannot be updated to serve agent models",
    ],
)
def test_an_endpoint_refusing_the_agent_model_is_deleted_and_created_again(
    standin: StandIn,
    endpoints: DatabricksEndpoints,
    fake_time: FakeTime,
    monkeypatch: pytest.MonkeyPatch,
    refusal: str,
) -> None:
    """Databricks refuses to switch an endpoint between agent and non-agent models: delete, wait until the
    endpoint is gone (it lingers for two gets here), then create it with the new config."""
    monkeypatch.setattr(standin_module, "AGENT_CONFLICT", refusal)
    standin.add_serving_endpoint(NAME, agent=False)
    standin.polls_to_delete = 2
    assert endpoints.deploy(SPEC) == "recreated"
    endpoint = f"/{NAME}"
    assert calls(standin) == [("GET", endpoint), ("PUT", f"{endpoint}/config"), ("DELETE", endpoint),
                              ("GET", endpoint), ("GET", endpoint), ("GET", endpoint), ("POST", "")]  # fmt: skip
    assert fake_time.sleeps == [30, 30]
    assert body(standin, "POST", ROOT)["config"]["served_entities"] == [SERVED]
    endpoints.wait_ready(NAME, timeout_seconds=600)
    assert served(standin) == SERVED and standin.serving[NAME]["agent"]


def test_a_deleted_endpoint_that_never_goes_away_is_an_error(standin: StandIn, fake_time: FakeTime) -> None:
    standin.add_serving_endpoint(NAME, agent=False)
    standin.polls_to_delete = 10**6
    client = WorkspaceClient(host=standin.url, token=TOKEN)
    endpoints = DatabricksEndpoints(
        client, poll_seconds=30, delete_timeout_seconds=90, sleep=fake_time.sleep, clock=fake_time.clock
    )
    with pytest.raises(JobError, match=f"'{NAME}' was deleted but still exists after 90s"):
        endpoints.deploy(SPEC)
    assert not standin.posts(ROOT)


def test_an_endpoint_that_never_gets_ready_is_given_up_on_at_the_bound(
    standin: StandIn, endpoints: DatabricksEndpoints, fake_time: FakeTime
) -> None:
    standin.polls_to_ready = None
    endpoints.deploy(SPEC)
    with pytest.raises(JobError) as error:
        endpoints.wait_ready(NAME, timeout_seconds=100)
    message = str(error.value)
    assert f"'{NAME}' was not ready after waiting 100s" in message
    assert "ready=NOT_READY, config_update=IN_PROGRESS" in message
    assert f"{standin.url}/ml/endpoints/{NAME}" in message
    assert fake_time.sleeps == [30, 30, 30, 10]


def test_a_failed_config_update_is_an_error(standin: StandIn, endpoints: DatabricksEndpoints) -> None:
    """The old config keeps serving (READY) while the new one failed: that is not a deployment."""
    standin.add_serving_endpoint(NAME, update_fails=True)
    endpoints.deploy(SPEC)
    with pytest.raises(JobError, match=f"'{NAME}': config update UPDATE_FAILED .*ready=READY"):
        endpoints.wait_ready(NAME, timeout_seconds=600)


@pytest.mark.parametrize("existing", [False, True])
def test_other_api_errors_name_the_endpoint_and_recreate_nothing(
    standin: StandIn, endpoints: DatabricksEndpoints, existing: bool
) -> None:
    if existing:
        standin.add_serving_endpoint(NAME)
    spec = EndpointSpec(name=NAME, model_name=SPEC.model_name, model_version="4", workload_size="Huge")
    action = "update" if existing else "create"
    expected = f"Could not {action} serving endpoint '{NAME}': INVALID_PARAMETER_VALUE: Invalid workload size 'Huge'"
    with pytest.raises(JobError, match=expected):
        endpoints.deploy(spec)
    assert ("DELETE", f"/{NAME}") not in calls(standin)
    assert (NAME in standin.serving) == existing


def test_a_refused_read_is_an_error_naming_the_endpoint(standin: StandIn, endpoints: DatabricksEndpoints) -> None:
    standin.denied.add(TOKEN)
    with pytest.raises(JobError, match=f"Could not read serving endpoint '{NAME}': PERMISSION_DENIED"):
        endpoints.deploy(SPEC)
    with pytest.raises(JobError, match=f"Could not read serving endpoint '{NAME}': PERMISSION_DENIED"):
        endpoints.wait_ready(NAME, timeout_seconds=600)


def test_permissions_are_added_by_principal_kind(standin: StandIn, endpoints: DatabricksEndpoints) -> None:
    """An e-mail is a user, a UUID a service principal's application id, anything else a group; the grants
    are added to the endpoint's id (the creator keeps CAN_MANAGE)."""
    endpoint = standin.add_serving_endpoint(NAME)
    sp = "6f2b9c1e-0d4a-4b8e-9f3a-2c1d7e5a9b04"
    endpoints.set_permissions(NAME, {"ops@example.com": "CAN_QUERY", sp: "CAN_QUERY", "health-admins": "CAN_MANAGE"})
    sent = body(standin, "PATCH", f"/api/2.0/permissions/serving-endpoints/{endpoint['id']}")
    assert sent["access_control_list"] == [
        {"user_name": "ops@example.com", "permission_level": "CAN_QUERY"},
        {"service_principal_name": sp, "permission_level": "CAN_QUERY"},
        {"group_name": "health-admins", "permission_level": "CAN_MANAGE"},
    ]
    levels = {next(v for k, v in e.items() if k != "all_permissions"): e["all_permissions"][0]["permission_level"]
              for e in endpoint["acl"]}  # fmt: skip
    assert levels == {"job-identity@example.com": "CAN_MANAGE", "ops@example.com": "CAN_QUERY", sp: "CAN_QUERY",
                      "health-admins": "CAN_MANAGE"}  # fmt: skip


def test_an_unknown_permission_is_refused_before_any_call(standin: StandIn, endpoints: DatabricksEndpoints) -> None:
    standin.add_serving_endpoint(NAME)
    with pytest.raises(JobError, match=r"Unknown permission 'CAN_READ' for ops@example.com .* CAN_MANAGE"):
        endpoints.set_permissions(NAME, {"ops@example.com": "CAN_READ"})
    endpoints.set_permissions(NAME, {})
    assert not [r for r in standin.requests if "permissions" in r["path"]]
