"""The app deployment resource (infra.systems.serving_platform.app_deployment) against a local stand-in of the
Apps API, through the real databricks-sdk: first deploy, unchanged content, changed content, a deployment
already in progress, a failed start, a stopped app, the time bound."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from infra.systems.serving_platform import app_deployment
from infra.systems.serving_platform.app_deployment import AppDeploymentError, _DeploymentProvider
from standin import TOKEN, StandIn
from tests.conftest import ROOT
from tests.workspace_standin import FakeClock

APP = "dev-agent-serving"
URL = f"https://{APP}-1234567890.aws.databricksapps.com"
APPS = f"/api/2.0/apps/{APP}"
PATH_1 = "/Workspace/Shared/agent-platform/dev/apps/dev-agent-serving/0123456789abcdef"
PATH_2 = "/Workspace/Shared/agent-platform/dev/apps/dev-agent-serving/fedcba9876543210"


class AppsApi:
    """GET /api/2.0/apps/<name>, POST .../start, POST .../deployments, GET .../deployments/<id>, for one app.

    A deployment is IN_PROGRESS for `polls_to_finish` reads (None: forever), then ends as `outcome`; the app
    is then `app_after`. While `refuse_busy` > 0, a deploy is refused as the Apps API refuses one while another
    deployment runs (and the count goes down)."""

    def __init__(self) -> None:
        self.compute = "ACTIVE"
        self.app_state = "RUNNING"
        self.app_message = "App has status: App is running"
        self.deployments: dict[str, dict[str, Any]] = {}
        self.posted: list[dict[str, Any]] = []
        self.refuse_busy = 0
        self.polls_to_finish: int | None = 2
        self.outcome = ("SUCCEEDED", "App started successfully")
        self.app_after = ("RUNNING", "App has status: App is running")
        self.starts = 0
        self.active: dict[str, Any] | None = None
        self.exists = True

    def _app(self) -> dict[str, Any]:
        if self.compute == "STARTING":
            self.compute = "ACTIVE"  # started by the time of the next read
        return {
            "name": APP,
            "url": URL,
            "compute_status": {"state": self.compute, "message": f"App compute is {self.compute.lower()}"},
            "app_status": {"state": self.app_state, "message": self.app_message},
            "service_principal_client_id": "6f2c1e2a-1b7d-4c55-9d0e-3a1b2c3d4e5f",
            **({"active_deployment": self.active} if self.active else {}),
        }

    def __call__(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        if (method, path) == ("GET", APPS):
            if not self.exists:
                return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"App with name {APP} does not exist."}
            return 200, self._app()
        if (method, path) == ("POST", f"{APPS}/start"):
            self.starts += 1
            self.compute = "STARTING"
            return 200, self._app()
        if (method, path) == ("POST", f"{APPS}/deployments"):
            self.posted.append(body)
            if self.refuse_busy > 0:
                self.refuse_busy -= 1
                message = f"Cannot deploy app {APP} as there is an active deployment in progress."
                return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": message}
            deployment_id = f"01f0{len(self.deployments):04d}"
            self.deployments[deployment_id] = {**body, "deployment_id": deployment_id, "polls": 0}
            return 200, self._deployment(deployment_id, "IN_PROGRESS", "Preparing source code for new app deployment.")
        if method == "GET" and path.startswith(f"{APPS}/deployments/"):
            deployment_id = path.rsplit("/", 1)[1]
            if deployment_id not in self.deployments:
                return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"no deployment {deployment_id}"}
            record = self.deployments[deployment_id]
            record["polls"] += 1
            if self.polls_to_finish is not None and record["polls"] >= self.polls_to_finish:
                state, message = self.outcome
                if state == "SUCCEEDED":
                    self.app_state, self.app_message = self.app_after
                    self.active = self._deployment(deployment_id, state, message)
                return 200, self._deployment(deployment_id, state, message)
            return 200, self._deployment(deployment_id, "IN_PROGRESS", "Installing packages from requirements.txt.")
        return None

    def _deployment(self, deployment_id: str, state: str, message: str) -> dict[str, Any]:
        record = self.deployments[deployment_id]
        return {
            "deployment_id": deployment_id,
            "source_code_path": record.get("source_code_path"),
            "mode": record.get("mode"),
            "status": {"state": state, "message": message},
        }


@pytest.fixture
def apps(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[StandIn, AppsApi, FakeClock]]:
    for name in ("DATABRICKS_HOST", "DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)  # how `pulumi up` would authenticate, besides a profile
    clock = FakeClock()
    monkeypatch.setattr(app_deployment, "CLOCK", clock)
    with StandIn() as standin:
        api = AppsApi()
        standin.routes.append(api)
        yield standin, api, clock


def props(host: str, path: str = PATH_1, content_hash: str | None = None, timeout: int = 600) -> dict[str, Any]:
    return {
        "host": host,
        "profile": None,
        "app_name": APP,
        "source_code_path": path,
        "content_hash": content_hash or path.rsplit("/", 1)[1] * 4,
        "timeout_seconds": timeout,
        "deployment_id": None,
    }


def test_first_deploy_deploys_the_uploaded_snapshot_and_waits_for_it(
    apps: tuple[StandIn, AppsApi, FakeClock],
) -> None:
    standin, api, clock = apps
    result = _DeploymentProvider().create(props(standin.url))
    assert api.posted == [{"source_code_path": PATH_1, "mode": "SNAPSHOT"}]
    assert result.outs is not None and result.id == f"{APP}/{result.outs['deployment_id']}"
    assert api.deployments[result.outs["deployment_id"]]["polls"] == 2  # followed to its end, not fire-and-forget
    assert clock.sleeps == [app_deployment.POLL_SECONDS]


def test_unchanged_content_is_no_change_and_no_deployment(apps: tuple[StandIn, AppsApi, FakeClock]) -> None:
    standin, api, _ = apps
    provider = _DeploymentProvider()
    outs = provider.create(props(standin.url)).outs
    assert outs is not None
    assert not provider.diff("x", outs, props(standin.url)).changes
    # A timeout change alone is recorded but deploys nothing.
    update = provider.update("x", outs, props(standin.url, timeout=900))
    assert len(api.posted) == 1 and update.outs is not None
    assert update.outs["deployment_id"] == outs["deployment_id"]


def test_changed_content_deploys_again_in_place(apps: tuple[StandIn, AppsApi, FakeClock]) -> None:
    standin, api, _ = apps
    provider = _DeploymentProvider()
    outs = provider.create(props(standin.url)).outs
    assert outs is not None
    diff = provider.diff("x", outs, props(standin.url, PATH_2))
    assert diff.changes and diff.replaces == []
    update = provider.update("x", outs, props(standin.url, PATH_2))
    assert [p["source_code_path"] for p in api.posted] == [PATH_1, PATH_2]
    assert update.outs is not None and update.outs["deployment_id"] != outs["deployment_id"]


def test_a_deployment_in_progress_is_waited_for_then_retried(apps: tuple[StandIn, AppsApi, FakeClock]) -> None:
    standin, api, clock = apps
    api.refuse_busy = 2
    logged: list[str] = []
    client = app_deployment._client(standin.url, None)
    deployment_id = app_deployment.deploy(client, APP, PATH_1, 600, log=logged.append)
    assert len(api.posted) == 3 and deployment_id in api.deployments
    assert sum("another deployment is in progress" in m for m in logged) == 2
    assert any("is running at " + URL in m for m in logged)
    assert len(clock.sleeps) == 3  # two waits for the other deployment, one poll of ours


def test_a_failed_start_fails_with_the_deployments_message_and_the_url(
    apps: tuple[StandIn, AppsApi, FakeClock],
) -> None:
    standin, api, _ = apps
    api.outcome = ("FAILED", "Error installing packages: No matching distribution found for fastapi>=0.115")
    with pytest.raises(AppDeploymentError) as raised:
        _DeploymentProvider().create(props(standin.url))
    text = str(raised.value)
    assert "FAILED: Error installing packages: No matching distribution found for fastapi>=0.115" in text
    assert f"App: {URL}; its logs: {URL}/logz" in text


def test_an_app_that_crashes_after_its_deployment_fails_the_update(apps: tuple[StandIn, AppsApi, FakeClock]) -> None:
    standin, api, _ = apps
    api.app_after = ("CRASHED", "App crashed unexpectedly: exit status 2 (SERVING_LLM_ENDPOINT is required)")
    with pytest.raises(AppDeploymentError, match=r"the app is CRASHED: App crashed unexpectedly: exit status 2"):
        _DeploymentProvider().create(props(standin.url))


def test_a_stopped_app_is_started_before_deploying(apps: tuple[StandIn, AppsApi, FakeClock]) -> None:
    standin, api, _ = apps
    api.compute = "STOPPED"
    _DeploymentProvider().create(props(standin.url))
    assert api.starts == 1 and len(api.posted) == 1


def test_a_deployment_that_never_ends_fails_at_the_bound(apps: tuple[StandIn, AppsApi, FakeClock]) -> None:
    standin, api, clock = apps
    api.polls_to_finish = None
    start = clock.now
    with pytest.raises(AppDeploymentError, match=r"still in progress after 60 s .*deploy_timeout_minutes.*App: http"):
        _DeploymentProvider().create(props(standin.url, timeout=60))
    assert clock.now - start <= 60


def test_a_refused_deployment_is_not_retried(apps: tuple[StandIn, AppsApi, FakeClock]) -> None:
    standin, api, _ = apps
    standin.denied.add(TOKEN)
    with pytest.raises(AppDeploymentError):
        _DeploymentProvider().create(props(standin.url))
    assert api.posted == []


def test_refresh_shows_code_deployed_by_hand_as_a_change(apps: tuple[StandIn, AppsApi, FakeClock]) -> None:
    standin, api, _ = apps
    provider = _DeploymentProvider()
    outs = provider.create(props(standin.url)).outs
    assert outs is not None
    assert provider.read("x", outs).outs == outs  # as deployed: no change
    assert api.active is not None
    api.active = {**api.active, "deployment_id": "by-hand", "source_code_path": "/Workspace/Users/someone/app"}
    refreshed = provider.read("x", outs).outs
    assert refreshed is not None and refreshed["source_code_path"] == "/Workspace/Users/someone/app"
    assert provider.diff("x", refreshed, props(standin.url)).changes  # the next `pulumi up` deploys again
    provider.update("x", refreshed, props(standin.url))
    assert [p["source_code_path"] for p in api.posted] == [PATH_1, PATH_1]
    api.exists = False
    assert provider.read("x", outs).id is None


def test_deleting_the_resource_calls_nothing(apps: tuple[StandIn, AppsApi, FakeClock]) -> None:
    standin, api, _ = apps
    before = len(standin.requests)
    _DeploymentProvider().delete("x", props(standin.url))
    assert len(standin.requests) == before and api.posted == []


def test_the_serialized_provider_loads_where_pulumi_runs_it() -> None:
    """Pulumi stores the provider (dill, by reference to its module) and loads it in another process started in
    the project directory; check that such a process can load it and diff with it."""
    import base64

    import dill

    serialized = base64.b64encode(dill.dumps(_DeploymentProvider(), recurse=True)).decode()
    code = (
        "import base64, sys, dill; p = dill.loads(base64.b64decode(sys.argv[1])); "
        "print(type(p).__name__, p.diff('d', {'content_hash': '1'}, {'content_hash': '2'}).changes)"
    )
    loaded = subprocess.run([sys.executable, "-c", code, serialized], cwd=ROOT, capture_output=True, text=True)
    assert loaded.stdout.split() == ["_DeploymentProvider", "True"], loaded.stderr
