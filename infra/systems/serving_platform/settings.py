"""Settings of seed 001's serving platform, the online path: the Databricks App, its always-on LLM endpoint,
its Lakebase memory and its prompts volume.

Defaults follow the environment where cost and production differ: a development stack queries an existing
pay-per-token endpoint and lets Lakebase suspend when idle; a production stack gets a provisioned-throughput
endpoint (never scaled to zero) and an always-on Lakebase compute. `ServingPlatformSettings.llm_for(production)`
and `.memory.always_on_for(production)` resolve those defaults; nothing else here depends on the environment.
The telemetry and optimiser sub-sections (`telemetry`, `optimizer`) are nested by the stack model from
`offline_settings.py`, written separately.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import AfterValidator, Field, model_validator

from infra.settings.base import Section, fail
from infra.settings.types import (
    Flag,
    FreeText,
    ModelIdentifier,
    Principal,
    ServingEndpointName,
    UcName,
    WholeNumber,
    _matching,
)
from infra.systems.serving_platform.offline_settings import PromptOptimizerSettings, TelemetrySettings

# Databricks App names: lowercase letters, digits and hyphens (App resource docs), at most 30 characters.
AppNameSuffix = Annotated[
    str,
    AfterValidator(
        _matching(
            r"[a-z]([a-z0-9-]*[a-z0-9])?",
            "app name part",
            "lowercase letters, digits and hyphens, starting with a letter, at most 20 characters",
            20,
        )
    ),
]
# A Postgres identifier the app uses unquoted (database and schema names).
PgIdentifier = Annotated[
    str,
    AfterValidator(
        _matching(
            r"[a-z_][a-z0-9_]*",
            "Postgres identifier",
            "lowercase letters, digits and underscores, starting with a letter or underscore, at most 63 characters",
            63,
        )
    ),
]
# A foundation model in Unity Catalog's system.ai schema (the provisioned-throughput entity).
SystemModel = Annotated[
    str,
    AfterValidator(
        _matching(
            r"system\.ai\.[A-Za-z0-9][A-Za-z0-9_.-]*",
            "foundation model",
            "a model of system.ai, like system.ai.llama-4-maverick (Catalog Explorer > system > ai)",
            128,
        )
    ),
]

DEV_LLM_ENDPOINT = "databricks-meta-llama-3-3-70b-instruct"
"""The pay-per-token endpoint a development stack queries by default (exists in every workspace with Foundation
Model APIs; no cost when idle)."""


class ProvisionedLlm(Section):
    """A Model Serving endpoint of this stack with Foundation Model provisioned throughput: always on."""

    kind: Literal["provisioned_throughput"] = Field("provisioned_throughput", description="provisioned_throughput")
    entity_name: SystemModel = Field(
        "system.ai.llama-4-maverick",
        description="The foundation model served (served_entities.entity_name), a model of system.ai. The seed's "
        "databricks-dbrx-instruct is a pay-per-token endpoint name, not a model, and DBRX is retired.",
    )
    entity_version: ModelIdentifier = Field("1", description="Version of that model (served_entities.entity_version).")
    provisioned_model_units: WholeNumber = Field(
        50,
        ge=1,
        le=10000,
        description="Throughput reserved (provisioned_model_units); billed while the endpoint exists, since it "
        "never scales to zero. The seed's min_provisioned_throughput: 100 combined with a workload size is "
        "not a valid served entity.",
    )
    endpoint_suffix: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")] = Field(
        "llm", description="The endpoint is named <environment>-<project>-<this> (lowercase, digits, hyphens)."
    )
    inference_table_prefix: UcName = Field(
        "serving_llm",
        description="AI Gateway inference tables go to the platform schema as <this>_payload (every request and "
        "response, for evaluation and the nightly optimiser).",
    )
    endpoint_permissions: dict[Principal, Literal["CAN_VIEW", "CAN_QUERY", "CAN_MANAGE"]] = Field(
        {},
        description="Who else may use the endpoint directly, principal -> CAN_VIEW, CAN_QUERY or CAN_MANAGE. "
        "Authoritative (Permissions): unlisted principals lose access the stack did not grant. The app's service "
        "principal gets CAN_QUERY through its app resource either way.",
    )


class ExistingLlm(Section):
    """An endpoint that already exists (a pay-per-token Foundation Model endpoint): nothing is created."""

    kind: Literal["existing_endpoint"] = Field(description="existing_endpoint")
    endpoint: ServingEndpointName = Field(
        DEV_LLM_ENDPOINT, description="Its name, like databricks-meta-llama-3-3-70b-instruct (Serving page)."
    )


Llm = Annotated[
    Union[ProvisionedLlm, ExistingLlm],  # noqa: UP007 (pydantic discriminator)
    Field(discriminator="kind"),
]


class MemorySettings(Section):
    """Lakebase (Autoscaling) Postgres: the agents' memory, registered in Unity Catalog."""

    pg_version: Literal[16, 17] = Field(17, description="Postgres major version of the Lakebase project.")
    min_cu: float = Field(
        0.5, ge=0.5, le=112, description="Smallest compute size the endpoint autoscales to, in capacity units "
        "(1 CU = 2 GB of memory)."
    )  # fmt: skip
    max_cu: float = Field(4.0, ge=0.5, le=112, description="Largest compute size it autoscales to, in CU.")
    always_on: Flag | None = Field(
        None,
        description="Never suspend the compute (no_suspension): no cold start on the first query. Default: true "
        "in production mode, false otherwise (the compute then suspends after suspend_timeout_seconds idle).",
    )
    suspend_timeout_seconds: WholeNumber = Field(
        300, ge=60, le=604800, description="Idle time after which a compute that is not always on suspends."
    )
    database: PgIdentifier = Field("agent_memory", description="The Postgres database holding the memory tables.")
    memory_schema: PgIdentifier = Field(
        "agent_memory", description="Postgres schema the app creates its tables in (SERVING_MEMORY_SCHEMA)."
    )
    uc_catalog: UcName | None = Field(
        None,
        description="The Unity Catalog catalog registering the database (PostgresCatalog). Default: "
        "<environment>_agent_memory (with the developer's name in development mode).",
    )

    @model_validator(mode="after")
    def _limits(self) -> MemorySettings:
        if self.min_cu > self.max_cu:
            fail("min_cu", self.min_cu, f"is above max_cu ({self.max_cu}); allowed: min_cu <= max_cu")
        return self

    def always_on_for(self, production: bool) -> bool:
        return production if self.always_on is None else self.always_on


class ServingPlatformSettings(Section):
    """Seed 001, the online path: the agent serving app with its code deployed, its LLM and embeddings
    endpoints, Lakebase memory and the prompts volume."""

    enabled: Flag = Field(False, description="Deploy this system.")
    telemetry: TelemetrySettings = Field(
        TelemetrySettings(), description="The offline path: OTLP telemetry into Delta tables, views, the dashboard."
    )
    optimizer: PromptOptimizerSettings = Field(
        PromptOptimizerSettings(), description="The nightly prompt optimisation job (seed 001, 02:00)."
    )
    app_name_suffix: AppNameSuffix = Field(
        "agent-serving",
        description="The app is named <environment>-<this> (<environment>-<user>-<this> in development mode with "
        "a user); Databricks App names have at most 30 characters and are permanent (the URL derives from them).",
    )
    description: FreeText = Field(
        "Agent serving platform (seed 001): /api/execute, /a2a, /mcp, /health", description="The app's description."
    )
    compute_size: Literal["MEDIUM", "LARGE", "XLARGE"] = Field(
        "MEDIUM", description="App compute size: MEDIUM (2 vCPU, 6 GB), LARGE (4 vCPU, 12 GB) or XLARGE."
    )
    instances: WholeNumber | None = Field(
        None,
        ge=1,
        le=20,
        description="A fixed number of app instances (compute_min_instances = compute_max_instances). Private "
        "Preview: your workspace must be enrolled, else leave it unset (one instance). Apps do not autoscale, so "
        "the seed's min 2 / max 20 hot pool becomes a fixed count.",
    )
    permissions: dict[Principal, Literal["CAN_USE", "CAN_MANAGE"]] = Field(
        {},
        description="Who may use the app, principal -> CAN_USE or CAN_MANAGE (a group like users for everyone). "
        "Authoritative (Permissions on the app): unlisted principals lose access the stack did not grant.",
    )
    user_api_scopes: tuple[Annotated[str, Field(pattern=r"^[a-z][a-z0-9._-]*$")], ...] = Field(
        (),
        description="OAuth scopes of user authorization (on-behalf-of-user), like sql or serving.serving-endpoints; "
        "the app then receives each user's token (X-Forwarded-Access-Token). The example agent needs none.",
    )
    llm: Llm | None = Field(
        None,
        description="The chat LLM: kind provisioned_throughput (an always-on endpoint this stack creates) or "
        "existing_endpoint (an endpoint that exists, like a pay-per-token one). Default: provisioned_throughput "
        "in production mode, the pay-per-token " + DEV_LLM_ENDPOINT + " otherwise (cost).",
    )
    embeddings_endpoint: ServingEndpointName = Field(
        "databricks-gte-large-en",
        description="The existing embeddings endpoint memory uses (pay-per-token databricks-gte-large-en by default).",
    )
    embedding_dim: WholeNumber = Field(
        1024, ge=1, le=2000, description="Dimensions of that endpoint's vectors (1024 for databricks-gte-large-en)."
    )
    memory: MemorySettings = Field(MemorySettings(), description="Lakebase Postgres memory.")
    prompts_volume: UcName = Field(
        "serving_prompts",
        description="Volume in the platform schema holding the agents' prompts: base/<agent>.md uploaded by "
        "Pulumi, optimised/<agent>.json written by the nightly optimiser beside them.",
    )
    prompts_refresh_seconds: WholeNumber = Field(
        300, ge=5, le=86400, description="How often the app re-reads the prompts (the seed's 5 minutes)."
    )
    deploy_timeout_minutes: WholeNumber = Field(
        20, ge=1, le=120, description="How long `pulumi up` waits for a deployment to run before failing."
    )

    def llm_for(self, production: bool) -> ProvisionedLlm | ExistingLlm:
        """The configured LLM, or the environment's default."""
        if self.llm is not None:
            return self.llm
        return ProvisionedLlm() if production else ExistingLlm(kind="existing_endpoint")
