"""Seed 001's online path as one component: the LLM endpoint, Lakebase memory, the base prompts, the app's code,
the App and the deployment of that code, wired in the order Databricks needs.

Order: endpoint and memory first (the App's resources name them), then the App, then the app's Postgres role
(Databricks creates it with the App's postgres resource; the stack adopts it), then the deployment, which waits
for the code uploads, the prompts and the role, so the first start finds everything it reads.
The prompts volume itself is created by the catalog component (role `serving_prompts`), and passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_databricks as db

from infra.components.wheel import BuiltWheel
from infra.systems.serving_platform import PROMPTS_VOLUME_PURPOSE, PROMPTS_VOLUME_ROLE
from infra.systems.serving_platform.app import AgentApp, AgentAppArgs
from infra.systems.serving_platform.app_code import AppCode, AppCodeArgs
from infra.systems.serving_platform.app_deployment import AppDeployment
from infra.systems.serving_platform.llm import ServingLlm, ServingLlmArgs
from infra.systems.serving_platform.memory import LakebaseMemory, LakebaseMemoryArgs
from infra.systems.serving_platform.prompts import BasePrompts, BasePromptsArgs, base_prompts
from infra.systems.serving_platform.settings import ServingPlatformSettings
from infra.systems.serving_platform.telemetry import TelemetryTables, TelemetryTablesArgs

__all__ = ["PROMPTS_VOLUME_PURPOSE", "PROMPTS_VOLUME_ROLE"]


@dataclass(frozen=True)
class ServingNames:
    """Physical names of the system's objects (serving_names builds them from the stack's identity)."""

    app: str
    endpoint: str
    lakebase_project: str
    uc_catalog: str
    source_root: str
    """Workspace folder of the app's source versions."""


def serving_names(
    settings: ServingPlatformSettings, *, environment: str, project: str, user: str | None, production: bool
) -> ServingNames:
    """`<environment>[-<user>]-...` names: the app (at most 30 characters), the endpoint, the Lakebase project;
    `<environment>[_<user>]_agent_memory` for the UC catalog unless set."""
    who = "-".join(filter(None, [environment, None if production else user]))
    app = f"{who}-{settings.app_name_suffix}"
    if len(app) > 30:
        raise ValueError(f"the app name {app!r} has more than 30 characters (Databricks' limit); shorten "
                         "serving_platform.app_name_suffix")  # fmt: skip
    llm = settings.llm_for(production)
    suffix = getattr(llm, "endpoint_suffix", "llm")
    return ServingNames(
        app=app,
        endpoint=f"{who}-{project}-{suffix}",
        lakebase_project=f"{who}-{project}-memory"[:63].rstrip("-"),
        uc_catalog=settings.memory.uc_catalog or f"{who.replace('-', '_')}_agent_memory",
        source_root=f"/Shared/{project}/{who}/apps/{app}",
    )


@dataclass(frozen=True)
class ServingPlatformArgs:
    settings: ServingPlatformSettings
    names: ServingNames
    production: bool
    protect: bool
    catalog: pulumi.Input[str]
    schema: pulumi.Input[str]
    """The platform schema's bare name (inference tables go there)."""
    prompts_volume_path: pulumi.Input[str]
    """/Volumes/<catalog>/<schema>/<prompts volume>, created by the catalog component."""
    wheel: BuiltWheel
    wheel_source: Path
    host: str
    profile: str | None
    tags: Mapping[str, str]
    extra_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """More app variables (the telemetry exporter's), plain values: never a secret."""
    extra_env_from: Mapping[str, str] = field(default_factory=dict)
    """More app variables `valueFrom` a resource key of extra_resources (a secret, say)."""
    extra_resources: Sequence[db.AppResourceArgs] = field(default_factory=tuple)
    dashboard_name: str = "Agent serving"
    """The telemetry dashboard's default display name."""
    extras: Sequence[str] = ("serving",)
    """The wheel's extras the app installs (add "telemetry" for the OTLP exporter)."""


class ServingPlatform(pulumi.ComponentResource):
    """Children: `ServingLlm` llm, `LakebaseMemory` memory, `BasePrompts` prompts, `AppCode` app-code, `AgentApp`
    app, the app's `PostgresRole` app-role and the `AppDeployment` app-deployment. Holds data (retained,
    protected when asked): the Lakebase project, branch, database, role, catalog, and the prompt files."""

    app_name: pulumi.Output[str]
    app_url: pulumi.Output[str]
    app_service_principal_client_id: pulumi.Output[str]
    app_service_principal_name: pulumi.Output[str]
    endpoint_name: pulumi.Output[str]
    memory_project: pulumi.Output[str]
    memory_database: pulumi.Output[str]
    memory_uc_catalog: pulumi.Output[str]
    deployment_id: pulumi.Output[str]

    def __init__(self, name: str, args: ServingPlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:serving:ServingPlatform", name, None, opts)
        s, n = args.settings, args.names
        child = pulumi.ResourceOptions(parent=self)
        llm = ServingLlm(
            "llm",
            ServingLlmArgs(s.llm_for(args.production), n.endpoint, args.catalog, args.schema, args.tags),
            child,
        )
        memory = LakebaseMemory(
            "memory",
            LakebaseMemoryArgs(
                s.memory, n.lakebase_project, n.uc_catalog, s.memory.always_on_for(args.production), args.tags,
                args.protect,
            ),
            child,
        )  # fmt: skip
        prompts = BasePrompts(
            "prompts", BasePromptsArgs(base_prompts(args.wheel_source), args.prompts_volume_path), child
        )
        code = AppCode(
            "app-code",
            AppCodeArgs(
                wheel=args.wheel,
                root=n.source_root,
                values={
                    "SERVING_EMBEDDING_DIM": str(s.embedding_dim),
                    "SERVING_MEMORY_SCHEMA": s.memory.memory_schema,
                    "SERVING_PROMPTS_REFRESH_S": str(s.prompts_refresh_seconds),
                },
                extra_env=args.extra_env,
                extra_env_from=args.extra_env_from,
                extras=args.extras,
            ),
            child,
        )
        volume_full_name = pulumi.Output.from_input(args.prompts_volume_path).apply(
            lambda p: ".".join(p.removeprefix("/Volumes/").strip("/").split("/"))
        )
        app = AgentApp(
            "app",
            AgentAppArgs(
                settings=s,
                app_name=n.app,
                llm_endpoint=llm.endpoint_name,
                embeddings_endpoint=s.embeddings_endpoint,
                postgres_branch=memory.branch_name,
                postgres_database=memory.database_name,
                prompts_volume=volume_full_name,
                extra_resources=args.extra_resources,
            ),
            child,
        )
        role = memory.add_app_role("app-role", app.service_principal_client_id, after=app.app)
        # The offline path's tables need the App's service principal for their grants; the app's deployment waits
        # for them, so its first export finds them.
        telemetry = None
        if s.telemetry.on:
            telemetry = TelemetryTables(
                "telemetry",
                TelemetryTablesArgs(
                    settings=s.telemetry,
                    catalog=args.catalog,
                    schema=args.schema,
                    app_principal=app.service_principal_client_id,
                    dashboard_name=args.dashboard_name,
                    host=args.host,
                    protect=args.protect,
                    wheel_source=args.wheel_source,
                ),
                child,
            )
        deployment = AppDeployment(
            "app-deployment",
            host=args.host,
            profile=args.profile,
            app_name=app.name,
            source_code_path=code.source_code_path,
            content_hash=code.content_hash,
            timeout_seconds=s.deploy_timeout_minutes * 60,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[app, role, prompts, code, *([telemetry] if telemetry else [])]
            ),
        )
        self.app_name = app.name
        self.app_url = app.url
        self.app_service_principal_client_id = app.service_principal_client_id
        self.app_service_principal_name = app.service_principal_name
        self.endpoint_name = llm.endpoint_name
        self.memory_project = memory.project_name
        self.memory_database = memory.database_name
        self.memory_uc_catalog = memory.uc_catalog
        self.deployment_id = deployment.deployment_id
        self.telemetry_tables = telemetry.tables if telemetry else None
        self.telemetry_dashboard_url = telemetry.dashboard_url if telemetry else None
        self.register_outputs(self.outputs())

    def outputs(self) -> dict[str, Any]:
        """The stack outputs of this system (ARCHITECTURE 3.3), snake_case."""
        return {
            "serving_app_name": self.app_name,
            "serving_app_url": self.app_url,
            "serving_app_service_principal": self.app_service_principal_client_id,
            "serving_app_service_principal_name": self.app_service_principal_name,
            "serving_llm_endpoint": self.endpoint_name,
            "serving_memory_project": self.memory_project,
            "serving_memory_database": self.memory_database,
            "serving_memory_catalog": self.memory_uc_catalog,
            **({"telemetry_tables": self.telemetry_tables} if self.telemetry_tables is not None else {}),
            **(
                {"telemetry_dashboard_url": self.telemetry_dashboard_url}
                if self.telemetry_dashboard_url is not None
                else {}
            ),
        }
