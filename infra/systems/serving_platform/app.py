"""The Databricks App itself (no code: `AppCode` uploads it and `AppDeployment` deploys it) and who may use it.

Its resources are what the wheel's app reads (agent_jobs.serving.app_yaml.RESOURCES), under the keys app.yaml's
`valueFrom` names: the LLM and embeddings serving endpoints (CAN_QUERY), the Lakebase database
(CAN_CONNECT_AND_CREATE: Databricks creates the app's Postgres role and grants it CONNECT and CREATE), the prompts
volume (READ_VOLUME), plus any the caller adds (a secret for the telemetry exporter). Adding a resource grants the
app's service principal that permission, so the app needs no other grant.

The seed's hot pool (min 2, max 20, no scale to zero) does not exist: apps do not autoscale. A fixed instance
count (compute_min_instances = compute_max_instances) is Private Preview; unset, the app runs one instance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_databricks as db

from infra.systems.serving_platform.app_code import RESOURCE_KEYS
from infra.systems.serving_platform.llm import access_control
from infra.systems.serving_platform.settings import ServingPlatformSettings


@dataclass(frozen=True)
class AgentAppArgs:
    settings: ServingPlatformSettings
    app_name: str
    llm_endpoint: pulumi.Input[str]
    embeddings_endpoint: str
    postgres_branch: pulumi.Input[str]
    postgres_database: pulumi.Input[str]
    """The Lakebase branch and database resource names (projects/.../branches/..., .../databases/...)."""
    prompts_volume: pulumi.Input[str]
    """The prompts volume's full name, <catalog>.<schema>.<volume>."""
    extra_resources: Sequence[db.AppResourceArgs] = field(default_factory=tuple)


class AgentApp(pulumi.ComponentResource):
    """Children: `App` <name> and, when settings.permissions is set, its `Permissions` (authoritative on the
    app: CAN_USE / CAN_MANAGE exactly as listed). Renaming the app replaces it (a new URL and service principal)."""

    name: pulumi.Output[str]
    url: pulumi.Output[str]
    service_principal_client_id: pulumi.Output[str]
    service_principal_name: pulumi.Output[str]
    app: db.App

    def __init__(self, name: str, args: AgentAppArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:serving:AgentApp", name, None, opts)
        s = args.settings
        if len(args.app_name) > 30:
            raise ValueError(f"app name {args.app_name!r} has more than 30 characters; shorten "
                             "serving_platform.app_name_suffix")  # fmt: skip
        keys = RESOURCE_KEYS
        resources = [
            db.AppResourceArgs(
                name=keys["llm-endpoint"],
                description="The chat LLM (SERVING_LLM_ENDPOINT)",
                serving_endpoint=db.AppResourceServingEndpointArgs(name=args.llm_endpoint, permission="CAN_QUERY"),
            ),
            db.AppResourceArgs(
                name=keys["embeddings-endpoint"],
                description="Memory embeddings (SERVING_EMBEDDINGS_ENDPOINT)",
                serving_endpoint=db.AppResourceServingEndpointArgs(
                    name=args.embeddings_endpoint, permission="CAN_QUERY"
                ),
            ),
            db.AppResourceArgs(
                name=keys["postgres"],
                description="Lakebase memory (PG* variables, LAKEBASE_ENDPOINT)",
                postgres=db.AppResourcePostgresArgs(
                    branch=args.postgres_branch, database=args.postgres_database, permission="CAN_CONNECT_AND_CREATE"
                ),
            ),
            db.AppResourceArgs(
                name=keys["prompts-volume"],
                description="The agents' prompts (SERVING_PROMPTS_VOLUME)",
                uc_securable=db.AppResourceUcSecurableArgs(
                    securable_type="VOLUME", securable_full_name=args.prompts_volume, permission="READ_VOLUME"
                ),
            ),
            *args.extra_resources,
        ]
        app = db.App(
            name,
            name=args.app_name,
            description=s.description,
            compute_size=s.compute_size,
            compute_min_instances=s.instances,
            compute_max_instances=s.instances,
            resources=resources,
            user_api_scopes=list(s.user_api_scopes) or None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        if s.permissions:
            db.Permissions(
                f"{name}-permissions",
                app_name=app.name,
                access_controls=[access_control(p, lvl) for p, lvl in sorted(s.permissions.items())],
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.app = app
        self.name = app.name
        self.url = app.url
        self.service_principal_client_id = app.service_principal_client_id
        self.service_principal_name = app.service_principal_name
        self.register_outputs({"url": self.url, "service_principal_client_id": self.service_principal_client_id})
