"""The agent's serving endpoint, created or updated only after the evaluation gate passed (seed 002).

The SDK's `create_and_wait` would block for up to 20 minutes with no progress in the job's log, so the gate
creates without waiting and then waits itself, bounded, logging the state and the endpoint's page. An endpoint
that once served a non-agent model refuses to be updated to an agent model (or the reverse): it is deleted and
created again, as the seed's deployment job learned to do.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from databricks.sdk.errors import DatabricksError, NotFound
from databricks.sdk.service.serving import (
    AiGatewayConfig,
    AiGatewayInferenceTableConfig,
    AiGatewayUsageTrackingConfig,
    EndpointCoreConfigInput,
    EndpointTag,
    ServedEntityInput,
    ServingEndpointAccessControlRequest,
    ServingEndpointPermissionLevel,
)

from agent_jobs.errors import JobError

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Databricks' words: "Agent endpoint cannot be updated to serve non-agent models or vice-versa".
_AGENT_CONFLICT = re.compile(r"agent endpoint cannot be updated to serve (non-)?agent models", re.IGNORECASE)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


@dataclass(frozen=True)
class EndpointSpec:
    name: str
    model_name: str  # catalog.schema.model
    model_version: str
    workload_size: str = "Small"
    scale_to_zero: bool = True
    inference_table: tuple[str, str] | None = None  # (catalog, schema) of the AI Gateway inference tables
    tags: Mapping[str, str] = field(default_factory=dict)
    environment_vars: Mapping[str, str] = field(default_factory=dict)
    """The served entity's environment (the gate sets MLflow tracing's: ENABLE_MLFLOW_TRACING, MLFLOW_EXPERIMENT_ID)."""


class Endpoints(Protocol):
    def deploy(self, spec: EndpointSpec) -> str:
        """Create or update the endpoint to serve the spec's model version: "created", "updated" or "recreated"."""

    def wait_ready(self, name: str, timeout_seconds: float) -> None:
        """Return once the endpoint serves its latest config; JobError on a failed update or the timeout."""

    def set_permissions(self, name: str, permissions: Mapping[str, str]) -> None:
        """Grant principal -> CAN_VIEW | CAN_QUERY | CAN_MANAGE, keeping the grants already there."""


def _describe(exc: DatabricksError) -> str:
    code = getattr(exc, "error_code", None)
    return f"{code}: {exc}" if code else str(exc)


def _value(enum: Any) -> str | None:
    return None if enum is None else str(getattr(enum, "value", enum))


class DatabricksEndpoints:
    def __init__(
        self,
        client: WorkspaceClient,
        *,
        poll_seconds: float = 30,
        delete_timeout_seconds: float = 600,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client, self.poll_seconds, self.delete_timeout_seconds = client, poll_seconds, delete_timeout_seconds
        self.sleep, self.clock = sleep, clock

    def url(self, name: str) -> str:
        return f"{(self.client.config.host or '').rstrip('/')}/ml/endpoints/{name}"

    def _api(self, name: str, action: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except DatabricksError as exc:
            raise JobError(f"Could not {action} serving endpoint '{name}': {_describe(exc)}") from exc

    def _find(self, name: str) -> Any:
        """The endpoint, or None when there is none of that name."""
        try:
            return self.client.serving_endpoints.get(name)
        except NotFound:
            return None
        except DatabricksError as exc:
            raise JobError(f"Could not read serving endpoint '{name}': {_describe(exc)}") from exc

    def deploy(self, spec: EndpointSpec) -> str:
        existing = self._find(spec.name)
        if existing is None:
            self._create(spec)
            return "created"
        serving = self.client.serving_endpoints
        try:
            serving.update_config(spec.name, served_entities=[_entity(spec)])
        except DatabricksError as exc:
            if not _AGENT_CONFLICT.search(str(exc)):
                raise JobError(f"Could not update serving endpoint '{spec.name}': {_describe(exc)}") from exc
            logger.warning("Serving endpoint %s refuses the model (%s): deleting and creating it again", spec.name, exc)
            self._api(spec.name, "delete", lambda: serving.delete(spec.name))
            self._wait_gone(spec.name)
            self._create(spec)
            return "recreated"
        logger.info("Updating serving endpoint %s to %s v%s", spec.name, spec.model_name, spec.model_version)
        self._put_gateway(spec, existing.ai_gateway)
        missing = [tag for tag in _tags(spec) or [] if tag not in (existing.tags or [])]
        if missing:
            self._api(spec.name, "tag", lambda: serving.patch(spec.name, add_tags=missing))
        return "updated"

    def _put_gateway(self, spec: EndpointSpec, current: Any) -> None:
        """PUT replaces the whole gateway: the rate limits, guardrails and fallbacks set elsewhere are kept."""
        wanted, ours = _gateway(spec), ("inference_table_config", "usage_tracking_config")
        if all(getattr(current, key, None) == getattr(wanted, key) for key in ours):
            return
        body = {key: getattr(wanted, key) for key in ours}
        body.update({key: getattr(current, key, None) for key in ("rate_limits", "guardrails", "fallback_config")})
        put = self.client.serving_endpoints.put_ai_gateway
        self._api(spec.name, "configure the AI Gateway of", lambda: put(spec.name, **body))

    def _create(self, spec: EndpointSpec) -> None:
        config = EndpointCoreConfigInput(name=spec.name, served_entities=[_entity(spec)])
        logger.info("Creating serving endpoint %s for %s v%s", spec.name, spec.model_name, spec.model_version)
        create = self.client.serving_endpoints.create
        self._api(
            spec.name, "create", lambda: create(spec.name, config=config, ai_gateway=_gateway(spec), tags=_tags(spec))
        )

    def _wait_gone(self, name: str) -> None:
        start = self.clock()
        while self._find(name) is not None:
            elapsed = self.clock() - start
            if elapsed >= self.delete_timeout_seconds:
                raise JobError(f"Serving endpoint '{name}' was deleted but still exists after {elapsed:.0f}s")
            self.sleep(min(self.poll_seconds, self.delete_timeout_seconds - elapsed))

    def wait_ready(self, name: str, timeout_seconds: float) -> None:
        url = self.url(name)
        logger.info("Waiting up to %.0fs for serving endpoint %s: %s", timeout_seconds, name, url)
        start = self.clock()
        while True:
            endpoint = self._api(name, "read", lambda: self.client.serving_endpoints.get(name))
            ready = _value(getattr(endpoint.state, "ready", None))
            update = _value(getattr(endpoint.state, "config_update", None))
            elapsed = self.clock() - start
            if update in ("UPDATE_FAILED", "UPDATE_CANCELED"):
                raise JobError(
                    f"Serving endpoint '{name}': config update {update} after {elapsed:.0f}s (ready={ready}); "
                    f"see its events and build logs at {url}"
                )
            if ready == "READY" and update in (None, "NOT_UPDATING"):
                logger.info("Serving endpoint %s is READY after %.0fs: %s", name, elapsed, url)
                return
            if elapsed >= timeout_seconds:
                raise JobError(
                    f"Serving endpoint '{name}' was not ready after waiting {elapsed:.0f}s (limit "
                    f"{timeout_seconds:.0f}s): state ready={ready}, config_update={update}; see {url}"
                )
            logger.info("Serving endpoint %s: ready=%s config_update=%s (%.0fs)", name, ready, update, elapsed)
            self.sleep(min(self.poll_seconds, timeout_seconds - elapsed))

    def set_permissions(self, name: str, permissions: Mapping[str, str]) -> None:
        if not permissions:
            return
        acl = [_access(name, principal, level) for principal, level in permissions.items()]
        endpoint = self._api(name, "read", lambda: self.client.serving_endpoints.get(name))
        update = self.client.serving_endpoints.update_permissions
        self._api(name, "set permissions on", lambda: update(endpoint.id, access_control_list=acl))
        logger.info("Serving endpoint %s: granted %s", name, dict(permissions))


def _entity(spec: EndpointSpec) -> ServedEntityInput:
    return ServedEntityInput(
        entity_name=spec.model_name,
        entity_version=str(spec.model_version),
        workload_size=spec.workload_size,
        scale_to_zero_enabled=spec.scale_to_zero,
        environment_vars=dict(spec.environment_vars) or None,
    )


def _gateway(spec: EndpointSpec) -> AiGatewayConfig:
    table = None
    if spec.inference_table is not None:
        catalog, schema = spec.inference_table
        prefix = re.sub(r"[^0-9a-z_]", "_", spec.name.lower())  # table names take no hyphens
        table = AiGatewayInferenceTableConfig(
            enabled=True, catalog_name=catalog, schema_name=schema, table_name_prefix=prefix
        )
    return AiGatewayConfig(
        inference_table_config=table, usage_tracking_config=AiGatewayUsageTrackingConfig(enabled=True)
    )


def _tags(spec: EndpointSpec) -> list[EndpointTag] | None:
    return [EndpointTag(key=k, value=v) for k, v in spec.tags.items()] or None


def _access(name: str, principal: str, level: str) -> ServingEndpointAccessControlRequest:
    try:
        permission = ServingEndpointPermissionLevel(level)
    except ValueError:
        known = ", ".join(p.value for p in ServingEndpointPermissionLevel)
        raise JobError(
            f"Unknown permission {level!r} for {principal} on serving endpoint '{name}'; use {known}"
        ) from None
    if "@" in principal:
        return ServingEndpointAccessControlRequest(user_name=principal, permission_level=permission)
    if _UUID.fullmatch(principal):  # a service principal's application id
        return ServingEndpointAccessControlRequest(service_principal_name=principal, permission_level=permission)
    return ServingEndpointAccessControlRequest(group_name=principal, permission_level=permission)
