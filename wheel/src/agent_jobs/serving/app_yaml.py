"""What the infrastructure needs to deploy the app: its command, the environment it reads, and the app
resources that provide part of it, as data, so the generated `app.yaml` is written from this one place.

`app_yaml(...)` returns the mapping to dump as `app.yaml`: `command`, and `env` with `valueFrom: <resource
key>` for each setting an app resource provides (the LLM and embeddings serving endpoints give their names,
the postgres resource its endpoint path, the volume its path) and `value` for the fixed, non-secret values
given. Variables Databricks Apps sets itself (DATABRICKS_APP_PORT, DATABRICKS_HOST, DATABRICKS_CLIENT_ID/
SECRET, PGHOST/PGPORT/PGDATABASE/PGUSER/PGSSLMODE for the first postgres resource) are not listed.
`RESOURCES` says which resource each role is and the permission the app needs on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent_jobs.serving.settings import SOURCES, SOURCES_BY_FIELD

COMMAND = ("python", "-m", "agent_jobs.serving")  # the same as the `serving-app` console script


@dataclass(frozen=True)
class ResourceRole:
    role: str
    kind: str  # the App resource block: serving_endpoint, postgres, uc_securable
    permission: str
    env: str
    description: str


RESOURCES: tuple[ResourceRole, ...] = tuple(
    ResourceRole(s.resource, kind, permission, s.env, s.description)
    for s in SOURCES
    if s.resource is not None
    for kind, permission in [{
        "llm-endpoint": ("serving_endpoint", "CAN_QUERY"),
        "embeddings-endpoint": ("serving_endpoint", "CAN_QUERY"),
        "postgres": ("postgres", "CAN_CONNECT_AND_CREATE"),
        "prompts-volume": ("uc_securable (VOLUME)", "READ_VOLUME"),
    }[s.resource]]
)  # fmt: skip
ROLES = {r.role: r for r in RESOURCES}


def app_yaml(resource_keys: Mapping[str, str | None], values: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The app.yaml mapping.

    resource_keys: role (`llm-endpoint`, `embeddings-endpoint`, `postgres`, `prompts-volume`) -> the key of
      the App resource that provides it; None leaves the setting out (give it in `values` instead, e.g.
      SERVING_DATABASE_INSTANCE for a Lakebase Provisioned instance in place of `postgres`).
    values: environment variable -> fixed value, for settings no resource provides (SERVING_EMBEDDING_DIM,
      SERVING_MEMORY_SCHEMA, ...); platform variables and secrets are refused.
    """
    unknown = set(resource_keys) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown resource roles {sorted(unknown)}; known: {sorted(ROLES)}")
    env: list[dict[str, str]] = []
    for role in RESOURCES:
        key = resource_keys.get(role.role)
        if key:
            env.append({"name": role.env, "valueFrom": key})
    by_env = {s.env: s for s in SOURCES}
    for name, value in sorted((values or {}).items()):
        source = by_env.get(name)
        if source is None:
            raise ValueError(f"{name} is not a setting of the serving app")
        if source.platform or source.secret:
            raise ValueError(f"{name} is {'set by Databricks Apps' if source.platform else 'secret'}: not in app.yaml")
        if any(e["name"] == name for e in env):
            raise ValueError(f"{name} already comes from an app resource")
        env.append({"name": name, "value": str(value)})
    missing = [
        r.env
        for r in RESOURCES
        if r.role in ("llm-endpoint", "embeddings-endpoint") and not any(e["name"] == r.env for e in env)
    ]
    if missing:
        raise ValueError(f"the app needs {missing}: give their resource keys or values")
    return {"command": list(COMMAND), "env": env}


def environment() -> list[dict[str, Any]]:
    """Every variable the app reads: name, command-line option, where it comes from, meaning."""
    rows = []
    for s in SOURCES:
        origin = (
            "Databricks Apps" if s.platform else (f"valueFrom the {s.resource} resource" if s.resource else "value")
        )
        rows.append({"env": s.env, "flag": s.flag, "origin": origin, "secret": s.secret, "description": s.description})
    # Read by databricks-sdk (the app's own identity), never by the settings model.
    for name in ("DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"):
        rows.append(
            {
                "env": name,
                "flag": None,
                "origin": "Databricks Apps",
                "secret": name.endswith("SECRET"),
                "description": "The app's service principal; databricks-sdk signs serving, Files and Lakebase "
                "credential calls with it.",
            }
        )
    return rows


__all__ = ["COMMAND", "RESOURCES", "SOURCES_BY_FIELD", "app_yaml", "environment"]
