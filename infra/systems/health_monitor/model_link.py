"""Connects the deployment job to the registered model (seed 002, "Connecting Deployment Job to Model").

pulumi-databricks has no field for this link. MLflow makes it with
`MlflowClient(registry_uri="databricks-uc").update_registered_model(name, deployment_job_id=...)`, which is one
REST call: PATCH /api/2.0/mlflow/unity-catalog/registered-models/update {name, deployment_job_id}. This dynamic
resource makes that same call (tests check the request is the one MLflow sends) through databricks-sdk, so it
authenticates exactly as the provider does (the stack's host and profile, the same unified auth) and `pulumi up`
needs no MLflow. It reads before it writes: an existing link to the same job changes nothing. Deleting the
resource (the job is gone, or the system is switched off) removes the link, but only if it still points at this
job: a link someone re-pointed by hand stays.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi.dynamic as dynamic

GET = "/api/2.0/mlflow/unity-catalog/registered-models/get"
UPDATE = "/api/2.0/mlflow/unity-catalog/registered-models/update"
RETRY_SECONDS = 120  # how long transient failures (connection refused, 429, 503) are retried before giving up


class RegistryError(Exception):
    """The model registry could not be reached, or refused the change."""


def _client(host: str, profile: str | None) -> Any:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    return WorkspaceClient(config=Config(host=host, profile=profile, retry_timeout_seconds=RETRY_SECONDS))


def _explain(action: str, model: str, host: str, exc: Exception) -> RegistryError:
    return RegistryError(
        f"cannot {action} the deployment job link of registered model {model} at {host}: {exc}. Check that "
        "workspace.host and workspace.profile reach the workspace, and that the identity running `pulumi up` "
        "has MANAGE on the model (seed 002's 'Permission denied' row)."
    )


def current_job_id(client: Any, model: str, host: str) -> str:
    """The job the model is linked to ('' when none)."""
    try:
        reply = client.api_client.do("GET", GET, query={"name": model})
    except Exception as exc:  # databricks-sdk raises per-status subclasses; every one is reported the same way
        raise _explain("read", model, host, exc) from exc
    return str((reply or {}).get("registered_model", {}).get("deployment_job_id") or "")


def link(client: Any, model: str, job_id: str, host: str) -> bool:
    """Point the model's deployment job at `job_id` ('' unlinks). True when something changed."""
    if current_job_id(client, model, host) == job_id:
        return False
    try:
        client.api_client.do("PATCH", UPDATE, body={"name": model, "deployment_job_id": job_id})
    except Exception as exc:
        raise _explain("update", model, host, exc) from exc
    return True


class _LinkProvider(dynamic.ResourceProvider):
    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        link(_client(props["host"], props.get("profile")), props["model_name"], props["job_id"], props["host"])
        return dynamic.CreateResult(id_=props["model_name"], outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        changed = [k for k in ("host", "profile", "model_name", "job_id") if olds.get(k) != news.get(k)]
        replaces = [k for k in changed if k in ("host", "model_name")]
        return dynamic.DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=True)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        link(_client(news["host"], news.get("profile")), news["model_name"], news["job_id"], news["host"])
        return dynamic.UpdateResult(outs=news)

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        """`pulumi refresh`: the link as the registry has it (a link re-pointed by hand shows as a change)."""
        from databricks.sdk.errors import NotFound

        try:
            linked = current_job_id(_client(props["host"], props.get("profile")), props["model_name"], props["host"])
        except RegistryError as exc:
            if isinstance(exc.__cause__, NotFound):
                return dynamic.ReadResult(id_=None, outs={})  # the model, and so the link, is gone
            raise
        return dynamic.ReadResult(id_=id_, outs={**props, "job_id": linked})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        from databricks.sdk.errors import NotFound

        client = _client(props["host"], props.get("profile"))
        try:
            linked = current_job_id(client, props["model_name"], props["host"])
        except RegistryError as exc:
            if isinstance(exc.__cause__, NotFound):
                return  # the model is gone, and its link with it
            raise
        if linked == props["job_id"]:
            link(client, props["model_name"], "", props["host"])


class DeploymentJobLink(dynamic.Resource):
    """The registered model's deployment job, set through the MLflow UC registry API."""

    model_name: pulumi.Output[str]
    job_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        host: str,
        profile: str | None,
        model_name: pulumi.Input[str],
        job_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {"host": host, "profile": profile, "model_name": model_name, "job_id": job_id}
        super().__init__(_LinkProvider(), name, props, opts)
