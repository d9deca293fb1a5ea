"""Deploys the app's uploaded code: the step the `App` resource does not do (its docs: it "doesn't handle app
deployment"; terraform-provider-databricks#5452 is an open PR, databricks/cli#6401 warns off `source_code_path`).

A `pulumi.dynamic` resource, like infra.systems.health_monitor.model_link: through databricks-sdk (so it
authenticates as the provider does: the stack's host and profile, unified auth) it calls the Apps API the way
`databricks apps deploy` does:

1. the app's compute must be ACTIVE: a STOPPED app is started, a STARTING one waited for;
2. `POST /api/2.0/apps/<name>/deployments` (SNAPSHOT mode: Databricks copies the source directory, so later
   uploads never change a running deployment). One deployment runs at a time: while another is in progress
   the API refuses ("... active deployment in progress", databricks/cli#2153), and this waits for it and
   tries again;
3. polls the deployment until it leaves IN_PROGRESS, logging each new status message, within a bound;
4. SUCCEEDED and the app RUNNING: done. Otherwise `pulumi up` fails with the deployment's (or the app's) own
   message, the app's URL and where its logs are.

A new deployment happens only when the uploaded content changed: the inputs carry the content hash of the
source directory (and its path, which contains that hash), and `diff` compares them; `pulumi refresh` reads the
app's active deployment, so code deployed by hand is replaced on the next `pulumi up`. Deleting this resource
deploys nothing and stops nothing: the app keeps running its last deployment until the App itself is deleted.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi.dynamic as dynamic

RETRY_SECONDS = 120  # how long the SDK retries transient failures (connection refused, 429, 503)
POLL_SECONDS = 5.0
IN_PROGRESS_MARKER = "deployment in progress"  # the Apps API's refusal while another deployment runs
CONTENT_KEYS = ("app_name", "source_code_path", "content_hash")


class AppDeploymentError(Exception):
    """The app's code could not be deployed, or the deployed app did not start."""


class Clock:
    """time() and sleep(), replaceable in tests (tests/workspace_standin.FakeClock has the same two)."""

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


CLOCK: Any = Clock()


def _log(message: str) -> None:
    """Progress for the person running `pulumi up` (the engine's log when reachable, stderr otherwise)."""
    try:
        pulumi.log.info(message)
    except Exception:  # a dynamic provider process may have no engine connection to log through
        print(message, file=sys.stderr)


def _client(host: str, profile: str | None) -> Any:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    return WorkspaceClient(config=Config(host=host, profile=profile, retry_timeout_seconds=RETRY_SECONDS))


def _state(obj: Any, attr: str) -> str:
    status = getattr(obj, attr, None)
    state = getattr(status, "state", None)
    return str(getattr(state, "value", state) or "")


def _message(obj: Any, attr: str) -> str:
    return str(getattr(getattr(obj, attr, None), "message", None) or "")


class _Deployer:
    def __init__(self, client: Any, app_name: str, timeout_seconds: float, log: Callable[[str], None]) -> None:
        self.client, self.app, self.log = client, app_name, log
        self.deadline = CLOCK.time() + timeout_seconds
        self.timeout_seconds = timeout_seconds

    def fail(self, what: str, url: str | None = None) -> AppDeploymentError:
        where = url or self.url()
        logs = f"; its logs: {where}/logz" if where else ""
        return AppDeploymentError(
            f"app {self.app}: {what}. App: {where or '(no URL yet)'}{logs} (or `databricks apps logs {self.app}`)"
        )

    def url(self) -> str:
        try:
            return str(self.client.apps.get(self.app).url or "")
        except Exception:
            return ""

    def wait(self, what: str) -> None:
        if CLOCK.time() + POLL_SECONDS > self.deadline:
            raise self.fail(f"{what} after {self.timeout_seconds:.0f} s (serving_platform.deploy_timeout_minutes)")
        CLOCK.sleep(POLL_SECONDS)

    def compute_active(self) -> None:
        started = False
        while True:
            app = self.client.apps.get(self.app)
            state = _state(app, "compute_status")
            if state == "ACTIVE":
                return
            if state == "ERROR":
                raise self.fail(f"its compute is in ERROR: {_message(app, 'compute_status')}", app.url)
            if state in ("STOPPED", "") and not started:
                self.log(f"app {self.app}: compute is {state or 'not started'}; starting it")
                self.client.apps.start(self.app)
                started = True
            self.wait(f"compute still {state or 'not started'}")

    def submit(self, source_code_path: str) -> str:
        from databricks.sdk.errors import DatabricksError
        from databricks.sdk.service.apps import AppDeployment, AppDeploymentMode

        while True:
            try:
                waiter = self.client.apps.deploy(
                    self.app, AppDeployment(source_code_path=source_code_path, mode=AppDeploymentMode.SNAPSHOT)
                )
                return str(waiter.deployment_id)
            except DatabricksError as exc:
                if IN_PROGRESS_MARKER not in str(exc):
                    raise self.fail(f"the Apps API refused the deployment of {source_code_path}: {exc}") from exc
                self.log(f"app {self.app}: another deployment is in progress; waiting for it before deploying")
                self.wait("another deployment was still in progress")

    def follow(self, deployment_id: str) -> None:
        seen = ""
        while True:
            deployment = self.client.apps.get_deployment(self.app, deployment_id)
            state, message = _state(deployment, "status"), _message(deployment, "status")
            if message and message != seen:
                self.log(f"app {self.app}: deployment {deployment_id}: {state}: {message}")
                seen = message
            if state == "SUCCEEDED":
                return
            if state != "IN_PROGRESS":
                raise self.fail(f"deployment {deployment_id} {state or 'ended'}: {message or 'no message'}")
            self.wait(f"deployment {deployment_id} still in progress")

    def running(self) -> str:
        while True:
            app = self.client.apps.get(self.app)
            state = _state(app, "app_status")
            if state == "RUNNING":
                return str(app.url or "")
            if state in ("CRASHED", "UNAVAILABLE"):
                raise self.fail(f"deployed, but the app is {state}: {_message(app, 'app_status') or 'no message'}")
            self.wait(f"the app still {state or 'not running'} after its deployment")


def deploy(
    client: Any,
    app_name: str,
    source_code_path: str,
    timeout_seconds: float,
    log: Callable[[str], None] = _log,
) -> str:
    """Deploy `source_code_path` to the app and wait until it runs; returns the deployment id."""
    from databricks.sdk.errors import DatabricksError

    deployer = _Deployer(client, app_name, timeout_seconds, log)
    try:
        deployer.compute_active()
        deployment_id = deployer.submit(source_code_path)
        log(f"app {app_name}: deployment {deployment_id} of {source_code_path} started")
        deployer.follow(deployment_id)
        url = deployer.running()
    except DatabricksError as exc:  # per-status subclasses; every one is reported the same way
        raise AppDeploymentError(
            f"app {app_name}: the Apps API failed: {exc}. Check that workspace.host and workspace.profile reach the "
            "workspace and that the identity running `pulumi up` has CAN_MANAGE on the app."
        ) from exc
    log(f"app {app_name}: deployment {deployment_id} is running at {url}")
    return deployment_id


class _DeploymentProvider(dynamic.ResourceProvider):
    def _deploy(self, props: dict[str, Any]) -> dict[str, Any]:
        client = _client(props["host"], props.get("profile"))
        deployment_id = deploy(client, props["app_name"], props["source_code_path"], float(props["timeout_seconds"]))
        return {**props, "deployment_id": deployment_id}

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        outs = self._deploy(props)
        return dynamic.CreateResult(id_=f"{props['app_name']}/{outs['deployment_id']}", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        changed = [k for k in ("host", "profile", *CONTENT_KEYS, "timeout_seconds") if olds.get(k) != news.get(k)]
        return dynamic.DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        if all(olds.get(k) == news.get(k) for k in CONTENT_KEYS):
            # Only the host spelling, profile or timeout changed: the running code is the right one already.
            return dynamic.UpdateResult(outs={**news, "deployment_id": olds.get("deployment_id")})
        return dynamic.UpdateResult(outs=self._deploy(news))

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        """`pulumi refresh`: the app's active deployment. Code deployed by hand since shows as a change (its
        path), so the next `pulumi up` deploys the stack's code again; a deleted app drops this resource."""
        from databricks.sdk.errors import NotFound

        try:
            app = _client(props["host"], props.get("profile")).apps.get(props["app_name"])
        except NotFound:
            return dynamic.ReadResult(id_=None, outs={})
        active = app.active_deployment
        path = getattr(active, "source_code_path", None) or ""
        if path == props.get("source_code_path"):
            return dynamic.ReadResult(id_=id_, outs=props)
        return dynamic.ReadResult(
            id_=id_, outs={**props, "source_code_path": path, "deployment_id": getattr(active, "deployment_id", None)}
        )

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to undo: the app keeps its last deployment until the App resource is deleted."""


class AppDeployment(dynamic.Resource):
    """A deployment of the app's uploaded source directory, redeployed whenever its content hash changes."""

    deployment_id: pulumi.Output[str]
    content_hash: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        host: str,
        profile: str | None,
        app_name: pulumi.Input[str],
        source_code_path: pulumi.Input[str],
        content_hash: pulumi.Input[str],
        timeout_seconds: int,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "host": host,
            "profile": profile,
            "app_name": app_name,
            "source_code_path": source_code_path,
            "content_hash": content_hash,
            "timeout_seconds": timeout_seconds,
            "deployment_id": None,
        }
        super().__init__(_DeploymentProvider(), name, props, opts)
