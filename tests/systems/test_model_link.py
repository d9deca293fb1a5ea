"""The deployment-job link (infra.systems.health_monitor.model_link) against a local stand-in of MLflow's Unity Catalog registry API,
through the real databricks-sdk; and proof that it sends the request MLflow's own client sends."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from infra.systems.health_monitor import model_link
from infra.systems.health_monitor.model_link import GET, UPDATE, RegistryError, _LinkProvider
from infra.tools.offline import unwrap
from standin import TOKEN, StandIn
from tests.conftest import ROOT, stack_plan
from tests.workspace_standin import FakeClock

MODEL = "main.health_monitor_agent_dev.health_monitor_agent"


class UcRegistry:
    """GET registered-models/get and PATCH registered-models/update, as a stand-in route."""

    def __init__(self) -> None:
        self.links: dict[str, str] = {MODEL: ""}

    def __call__(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        if (method, path) not in (("GET", GET), ("PATCH", UPDATE)):
            return None
        name = body.get("name", "")
        if name not in self.links:
            return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"Registered model '{name}' not found"}
        if method == "PATCH":
            self.links[name] = body.get("deployment_job_id", "")
        return 200, {"registered_model": {"name": name, "deployment_job_id": self.links[name]}}


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[StandIn, UcRegistry]]:
    for name in ("DATABRICKS_HOST", "DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)  # how `pulumi up` would authenticate, besides a profile
    with StandIn() as standin:
        uc = UcRegistry()
        standin.routes.append(uc)
        yield standin, uc


def props(host: str, job_id: str = "446700389678925", model: str = MODEL) -> dict[str, Any]:
    return {"host": host, "profile": None, "model_name": model, "job_id": job_id}


def patches(standin: StandIn) -> list[dict[str, Any]]:
    return [r["body"] for r in standin.requests if r["method"] == "PATCH"]


def test_create_links_the_model_to_the_job(registry: tuple[StandIn, UcRegistry]) -> None:
    standin, uc = registry
    result = _LinkProvider().create(props(standin.url))
    assert result.id == MODEL and uc.links[MODEL] == "446700389678925"
    assert patches(standin) == [{"name": MODEL, "deployment_job_id": "446700389678925"}]


def test_linking_again_to_the_same_job_changes_nothing(registry: tuple[StandIn, UcRegistry]) -> None:
    standin, uc = registry
    uc.links[MODEL] = "446700389678925"
    _LinkProvider().create(props(standin.url))
    _LinkProvider().update(MODEL, props(standin.url), props(standin.url))
    assert patches(standin) == []


def test_update_repoints_and_diff_replaces_only_for_another_model(registry: tuple[StandIn, UcRegistry]) -> None:
    standin, uc = registry
    provider = _LinkProvider()
    provider.create(props(standin.url))
    provider.update(MODEL, props(standin.url), props(standin.url, job_id="99"))
    assert uc.links[MODEL] == "99"
    assert provider.diff(MODEL, props("h"), props("h", job_id="99")).replaces == []
    other = provider.diff(MODEL, props("h"), props("h", model="main.x.other"))
    assert other.changes and other.replaces == ["model_name"]
    assert not provider.diff(MODEL, props("h"), props("h")).changes


def test_delete_unlinks_only_its_own_job(registry: tuple[StandIn, UcRegistry]) -> None:
    standin, uc = registry
    uc.links[MODEL] = "12345"  # re-pointed by hand since: left alone
    _LinkProvider().delete(MODEL, props(standin.url))
    assert uc.links[MODEL] == "12345" and patches(standin) == []
    uc.links[MODEL] = "446700389678925"
    _LinkProvider().delete(MODEL, props(standin.url))
    assert uc.links[MODEL] == ""
    del uc.links[MODEL]  # the model itself is gone: nothing to unlink, no error
    _LinkProvider().delete(MODEL, props(standin.url))


def test_refresh_reads_the_link_as_the_registry_has_it(registry: tuple[StandIn, UcRegistry]) -> None:
    standin, uc = registry
    uc.links[MODEL] = "777"  # re-pointed by hand
    read = _LinkProvider().read(MODEL, props(standin.url))
    assert (read.id, read.outs["job_id"]) == (MODEL, "777")
    del uc.links[MODEL]
    assert _LinkProvider().read(MODEL, props(standin.url)).id is None


def test_the_serialized_provider_loads_where_pulumi_runs_it() -> None:
    """Pulumi stores the provider (dill, by reference to infra.systems.health_monitor.model_link) and loads it in a separate process
    started in the project directory; check that such a process can load and use it."""
    import subprocess
    import sys

    plan = stack_plan("dev")
    serialized = unwrap(plan.one("Resource", "health-monitor-deployment-link").inputs)["__provider"]
    code = (
        "import base64, sys, dill; p = dill.loads(base64.b64decode(sys.argv[1])); "
        "print(type(p).__name__, p.diff('m', {'job_id': '1'}, {'job_id': '2'}).changes)"
    )
    loaded = subprocess.run([sys.executable, "-c", code, serialized], cwd=ROOT, capture_output=True, text=True)
    assert loaded.stdout.split() == ["_LinkProvider", "True"], loaded.stderr


def test_a_missing_model_or_refused_token_is_a_clear_error(registry: tuple[StandIn, UcRegistry]) -> None:
    standin, _ = registry
    with pytest.raises(RegistryError, match=r"cannot read the deployment job link of registered model main\.x\.gone"):
        _LinkProvider().create(props(standin.url, model="main.x.gone"))
    standin.denied.add(TOKEN)
    with pytest.raises(RegistryError, match="has MANAGE on the model") as raised:
        _LinkProvider().create(props(standin.url))
    assert "token not allowed here" in str(raised.value)


def test_an_unreachable_registry_is_a_clear_error(
    registry: tuple[StandIn, UcRegistry], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK retries a refused connection until RETRY_SECONDS (on a fake clock: no test waits), then the error
    names the model, the host and what to check."""
    fake = FakeClock()
    monkeypatch.setattr("databricks.sdk.clock.RealClock.time", lambda _: fake.time())
    monkeypatch.setattr("databricks.sdk.clock.RealClock.sleep", lambda _, s: fake.sleep(s))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        host = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(RegistryError, match=f"registered model {MODEL} at {host}: .*workspace.host"):
        _LinkProvider().create(props(host))
    # the call's retries, and the SDK's own ones for the host's metadata first: each given up on at RETRY_SECONDS
    assert len(fake.sleeps) >= 3 and model_link.RETRY_SECONDS <= sum(fake.sleeps) <= 2 * (model_link.RETRY_SECONDS + 11)


def test_the_request_is_the_one_mlflows_client_sends(
    registry: tuple[StandIn, UcRegistry], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The issue asks for MLflow's update_registered_model(name, deployment_job_id=...): same call on the wire."""
    from mlflow import MlflowClient

    standin, uc = registry
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABRICKS_HOST", standin.url)
    MlflowClient(tracking_uri="databricks", registry_uri="databricks-uc").update_registered_model(
        MODEL, deployment_job_id="446700389678925"
    )
    (mlflow_request,) = [r for r in standin.requests if r["method"] == "PATCH"]
    standin.requests.clear()
    uc.links[MODEL] = ""
    _LinkProvider().update(MODEL, props(standin.url, job_id="1"), props(standin.url))
    (ours,) = [r for r in standin.requests if r["method"] == "PATCH"]
    assert ours["path"] == mlflow_request["path"] == UPDATE
    assert ours["body"] == {"name": MODEL, "deployment_job_id": "446700389678925"}
    assert {k: v for k, v in mlflow_request["body"].items() if v is not None} == ours["body"]
