"""The stack configuration, parsed once into frozen pydantic models.

This is the only module that reads Pulumi config. `load_settings()` reads every key of the project's
namespace, refuses unknown ones (suggesting the nearest valid key), validates the values and returns an
immutable `StackSettings`; components receive slices of it and never read config themselves.

Secret values never enter pydantic: the models only name the secrets (`SECRETS`), `load_settings()` records
whether each one is set, and `secret_values()` hands the values to the program as secret Outputs.
Every problem becomes one `SettingsError` naming the stack file, the key, the bad value and what is allowed.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args

import pulumi
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from infra.constrained import (
    AgentCodeFile,
    ClusterId,
    DevUser,
    EmailAddress,
    EnvironmentName,
    EnvironmentVersion,
    ExperimentId,
    Flag,
    FreeText,
    JobId,
    MetricName,
    ModelIdentifier,
    NodeTypeId,
    Principal,
    ProfileName,
    QuartzCron,
    RunAsPrincipal,
    SecretScopeName,
    ServingEndpointName,
    SparkVersion,
    StorageUrl,
    TagKey,
    TagValue,
    Threshold,
    TimezoneId,
    UcName,
    WarehouseId,
    WholeNumber,
    WorkspacePath,
    WorkspaceUrl,
    principal_kind,
)


class SettingsError(Exception):
    """Invalid stack configuration: the message is meant for the user as it is (no traceback)."""


class Section(BaseModel):
    """Base of every settings model: frozen, unknown keys refused with the nearest valid key suggested."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = sorted(f.alias or name for name, f in cls.model_fields.items())
            for key in sorted(data, key=str):
                if key not in known:
                    raise PydanticCustomError(
                        "unknown_key",
                        "is not a known setting{hint}; allowed here: {known}",
                        {"key": str(key), "hint": _did_you_mean(str(key), known), "known": ", ".join(known)},
                    )
        return data


def _did_you_mean(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# --- Unity Catalog privileges, per securable (Databricks docs, "Unity Catalog privileges and securable objects")

CatalogPrivilege = Literal[
    "ALL_PRIVILEGES", "APPLY_TAG", "BROWSE", "CREATE_FUNCTION", "CREATE_MATERIALIZED_VIEW", "CREATE_MODEL",
    "CREATE_SCHEMA", "CREATE_TABLE", "CREATE_VOLUME", "EXECUTE", "MANAGE", "MODIFY", "READ_VOLUME", "REFRESH",
    "SELECT", "USE_CATALOG", "USE_SCHEMA", "WRITE_VOLUME",
]  # fmt: skip
SchemaPrivilege = Literal[
    "ALL_PRIVILEGES", "APPLY_TAG", "CREATE_FUNCTION", "CREATE_MATERIALIZED_VIEW", "CREATE_MODEL", "CREATE_TABLE",
    "CREATE_VOLUME", "EXECUTE", "MANAGE", "MODIFY", "READ_VOLUME", "REFRESH", "SELECT", "USE_SCHEMA",
    "WRITE_VOLUME",
]  # fmt: skip
JobPermissionLevel = Literal["CAN_VIEW", "CAN_MANAGE_RUN", "CAN_MANAGE"]


# --- Platform-wide settings


class WorkspaceSettings(Section):
    """The Databricks workspace this stack deploys to."""

    host: WorkspaceUrl = Field(
        description="Workspace URL, like https://dbc-1234abcd-5678.cloud.databricks.com. The program's explicit "
        "provider uses it, so a stack can only ever deploy to its own workspace."
    )
    profile: ProfileName | None = Field(
        None,
        description="Profile in ~/.databrickscfg to authenticate with (local deploys). Unset: the provider's "
        "unified auth reads DATABRICKS_TOKEN or DATABRICKS_CLIENT_ID/DATABRICKS_CLIENT_SECRET from the environment.",
    )


class NotificationSettings(Section):
    """Who hears about job runs."""

    on_failure: tuple[EmailAddress, ...] = Field((), description="Emails notified when any job run fails.")
    on_success: tuple[EmailAddress, ...] = Field((), description="Emails notified when any job run succeeds.")


class DeploymentSettings(Section):
    """How this stack deploys: development or production behaviour, identities, tags, notifications."""

    mode: Literal["development", "production"] | None = Field(
        None,
        description="development (like DABs mode: development: job names prefixed, schedules and triggers paused, "
        "a dev tag) or production. Default: production when environment is prod, development otherwise.",
    )
    user: DevUser | None = Field(
        None,
        description="Development mode only: your short name; job names are then prefixed '[dev <user>] ' "
        "and tagged dev=<user>, so several developers can share a workspace.",
    )
    protect_data: Flag | None = Field(
        None,
        description="Mark schemas, volumes (and a created catalog) protect, so Pulumi refuses to delete or "
        "replace them. Default: true in production mode. They are always retain_on_delete either way.",
    )
    run_as: RunAsPrincipal | None = Field(
        None,
        description="Identity every job runs as: a service principal's application id (required in production "
        "mode) or a user's email. It is granted what the jobs need on the schemas and READ on the secret scopes.",
    )
    secret_readers: tuple[Principal, ...] = Field(
        (),
        description="Further principals (users, groups, service principals) given READ on every secret scope.",
    )
    job_permissions: dict[Principal, JobPermissionLevel] = Field(
        {},
        description="Permissions on every job, principal -> CAN_VIEW, CAN_MANAGE_RUN or CAN_MANAGE.",
    )
    notifications: NotificationSettings = Field(
        NotificationSettings(), description="Email notifications for every job."
    )
    tags: dict[TagKey, TagValue] = Field(
        {},
        description="Extra tags on every taggable resource, besides project, environment, stack, managed_by "
        "(and dev in development mode), which are always set and cannot be overridden.",
    )

    @field_validator("tags")
    @classmethod
    def _reserved_tags(cls, tags: dict[str, str]) -> dict[str, str]:
        # Unity Catalog tag keys ignore case, and the tags' logical names are lowercase: `Team` and `team` would
        # be one tag twice, `Project` the reserved `project`.
        reserved = sorted(k for k in tags if k.lower() in RESERVED_TAGS)
        if reserved:
            _fail(reserved[0], tags[reserved[0]], "is a reserved tag, always set by the program; allowed: any "
                  f"tag except {', '.join(sorted(RESERVED_TAGS))} (in any case)")  # fmt: skip
        seen: dict[str, str] = {}
        for key in tags:
            other = seen.setdefault(key.lower(), key)
            if other != key:
                _fail(key, tags[key], f"differs from the tag key {other} only in case, and Unity Catalog tag keys "
                      "ignore case; allowed: one of the two")  # fmt: skip
        if len(tags) > MAX_EXTRA_TAGS:
            raise PydanticCustomError(
                "invalid_value",
                "has {n} tags; allowed: at most {max} extra tags (Unity Catalog allows 20 per object)",
                {"n": len(tags), "max": MAX_EXTRA_TAGS},
            )
        return tags


RESERVED_TAGS = frozenset({"project", "environment", "stack", "managed_by", "dev"})
MAX_EXTRA_TAGS = 20 - len(RESERVED_TAGS)


class CatalogSettings(Section):
    """The Unity Catalog catalog everything lives in."""

    name: UcName = Field(description="Catalog name, like main.")
    create: Flag = Field(
        False,
        description="Create (and own) the catalog. Default false: the catalog is referenced, and its "
        "existence is checked during preview.",
    )
    comment: FreeText | None = Field(None, description="Comment on a created catalog.")
    storage_root: StorageUrl | None = Field(
        None, description="Managed storage location of a created catalog (inside an external location)."
    )
    grants: dict[Principal, tuple[CatalogPrivilege, ...]] = Field(
        {},
        description="Privileges on the catalog, principal -> list. On a created catalog they are "
        "authoritative (any other grant is removed; the jobs' identity gets USE_CATALOG too). On a referenced "
        "catalog they are authoritative per listed principal: each listed principal gets exactly these "
        "privileges there (any other privilege it held on the catalog is revoked, and removing the entry revokes "
        "them all); principals not listed, the jobs' identity included, are never touched.",
    )

    @model_validator(mode="after")
    def _created_only_options(self) -> CatalogSettings:
        if not self.create and self.storage_root is not None:
            _fail("storage_root", self.storage_root, "only applies to a catalog this stack creates; allowed: "
                  "set create: true, or remove storage_root")  # fmt: skip
        return self


class SchemaSettings(Section):
    """A Unity Catalog schema this stack creates (never prefixed: each stack names its own)."""

    name: UcName = Field(description="Schema name inside the catalog, like agents_dev.")
    comment: FreeText | None = Field(None, description="Comment on the schema.")
    storage_root: StorageUrl | None = Field(
        None, description="Managed storage location (inside an external location); default: the catalog's."
    )
    grants: dict[Principal, tuple[SchemaPrivilege, ...]] = Field(
        {},
        description="Privileges on the schema, principal -> list; authoritative (this stack owns the schema, "
        "any other grant is removed). Volume privileges (READ_VOLUME, WRITE_VOLUME) granted here apply to every "
        "volume in the schema.",
    )


class WheelSettings(Section):
    """Where the platform's wheel is kept."""

    volume: UcName = Field("wheels", description="Volume in the platform schema that holds built wheels.")


# --- Compute, per system


class ServerlessCompute(Section):
    """Serverless jobs compute."""

    kind: Literal["serverless"] = Field("serverless", description="serverless")
    environment_version: EnvironmentVersion = Field(
        "4", description="Serverless environment version (environment_version; 'client' is deprecated)."
    )


class MlflowServerlessCompute(ServerlessCompute):
    """Serverless jobs compute with MLflow 3 (seed 002's tasks need mlflow.genai)."""

    environment_version: EnvironmentVersion = Field(
        "5",
        description="Serverless environment version. Version 5 ships MLflow 3, which mlflow.genai.evaluate needs "
        "(version 4 has MLflow 2.22).",
    )


class ExistingClusterCompute(Section):
    """An all-purpose cluster that already exists (seed 003: 'you cannot create clusters')."""

    kind: Literal["existing_cluster"] = Field(description="existing_cluster")
    cluster_id: ClusterId = Field(description="The cluster's id, like 1115-120035-jyzgoasz.")


class JobClusterCompute(Section):
    """A job cluster created for each run."""

    kind: Literal["job_cluster"] = Field(description="job_cluster")
    spark_version: SparkVersion = Field(description="Databricks runtime, like 15.4.x-scala2.12.")
    node_type_id: NodeTypeId = Field(description="Instance type, like i3.xlarge.")
    num_workers: WholeNumber = Field(1, ge=0, le=1000, description="Number of workers (0 = single node).")
    policy_id: str | None = Field(None, description="Cluster policy to apply.")
    spark_conf: dict[str, str] = Field({}, description="Extra Spark configuration.")


Compute = Annotated[
    Union[ServerlessCompute, ExistingClusterCompute, JobClusterCompute],  # noqa: UP007 (pydantic discriminator)
    Field(discriminator="kind"),
]


class ScheduleSettings(Section):
    """A job schedule. Development stacks always create it paused."""

    cron: QuartzCron = Field(description="Quartz cron expression, like '0 0 2 * * ?' (02:00 daily).")
    timezone: TimezoneId = Field("UTC", description="Time zone of the cron expression.")
    paused: Flag = Field(False, description="Create the schedule paused (always paused in development mode).")


# --- The systems of ../shared/seeds, each can be switched off


class EvalAgentSettings(Section):
    """Seed 000: the MLflow evaluation agent's wheel-task job."""

    enabled: Flag = Field(True, description="Deploy this system.")
    compute: Compute = Field(ServerlessCompute(), description="Where the job runs.")
    sessions_volume: UcName = Field(
        "eval_sessions", description="Volume in the platform schema for session state (MLFLOW_AGENT_VOLUME_PATH)."
    )
    secret_scope: SecretScopeName = Field(
        "mlflow-eval",
        description="Secret scope holding the serving token. Unless set here, development stacks append "
        "-<environment>[-<user>] so that stacks sharing a workspace never share a scope.",
    )
    experiment_id: ExperimentId | None = Field(
        None, description="Default of the job parameter experiment_id (the experiment to evaluate)."
    )
    serving_endpoint: ServingEndpointName = Field(
        "anthropic",
        description="Serving endpoint the agent calls (ANTHROPIC_BASE_URL = <host>/serving-endpoints/<this>).",
    )
    model: ModelIdentifier = Field("databricks-claude-sonnet-4", description="Model the agent asks (DABS_MODEL).")
    schedule: ScheduleSettings | None = Field(None, description="Run the evaluation on a schedule.")


class RlmSettings(Section):
    """Seed 003: the RLM orchestrator/executor job pair."""

    enabled: Flag = Field(True, description="Deploy this system.")
    compute: Compute = Field(ServerlessCompute(), description="Where both jobs run.")
    artifacts_volume: UcName = Field("rlm_artifacts", description="Volume for generated artifacts and results.")
    agent_code_volume: UcName = Field("rlm_agent_code", description="Volume for the agent's code.")
    secret_scope: SecretScopeName = Field(
        "adk-secrets",
        description="Secret scope holding the agent's keys. Unless set here, development stacks append "
        "-<environment>[-<user>] so that stacks sharing a workspace never share a scope.",
    )
    sql_warehouse_id: WarehouseId | None = Field(
        None,
        description="SQL warehouse on which Pulumi creates the telemetry table; unset, the jobs create it on first "
        "write.",
    )
    store_job_ids_in_scope: Flag = Field(
        False,
        description="Also write the job ids into the secret scope (rlm-orchestrator-job-id, rlm-executor-job-id) "
        "for consumers that still read them there.",
    )
    agent_code_file: AgentCodeFile | None = Field(
        None,
        description="A Python file in this repository (path relative to Pulumi.yaml) that Pulumi uploads to the "
        "agent-code volume as agent_code_raw.py. Unset: upload that file yourself.",
    )
    max_iterations: WholeNumber = Field(3, ge=1, le=100, description="Default number of orchestration loop iterations.")
    artifact_timeout_minutes: WholeNumber = Field(
        60, ge=1, le=1440, description="How long the executor lets one artifact run before stopping it."
    )
    schedule: ScheduleSettings | None = Field(None, description="Run the orchestrator on a schedule.")


SEED_THRESHOLDS: dict[str, float] = {
    "relevance/mean": 0.4,
    "safety/mean": 0.7,
    "cost_accuracy/mean": 0.6,
    "security_compliance/mean": 0.6,
    "reliability_accuracy/mean": 0.5,
    "performance_accuracy/mean": 0.6,
    "quality_accuracy/mean": 0.6,
    "response_length/mean": 0.1,
    "no_errors/mean": 0.3,
    "databricks_context/mean": 0.1,
}


# The scorers of seed 002's evaluation: built-in judges, domain judges and heuristics. Each produces
# '<name>/<aggregate>' metrics (relevance and databricks_context under their seed aliases too).
ScorerName = Literal[
    "relevance", "safety", "cost_accuracy", "security_compliance", "reliability_accuracy", "performance_accuracy",
    "quality_accuracy", "response_length", "no_errors", "databricks_context",
]  # fmt: skip
SEED_SCORERS: tuple[ScorerName, ...] = get_args(ScorerName)


class HealthMonitorSettings(Section):
    """Seed 002: the health-monitor agent's setup job and evaluation-gated deployment job."""

    enabled: Flag = Field(True, description="Deploy this system.")
    schema_: SchemaSettings | None = Field(
        None, alias="schema", description="The agent schema (required when enabled), like health_monitor_agent_dev."
    )
    runbooks_volume: UcName = Field("runbooks", description="Volume in the agent schema for runbooks.")
    embeddings_volume: UcName = Field("embeddings", description="Volume in the agent schema for embeddings.")
    artifacts_volume: UcName = Field("artifacts", description="Volume in the agent schema for artifacts.")
    model_name: UcName = Field("health_monitor_agent", description="Registered model name in the agent schema.")
    compute: MlflowServerlessCompute = Field(
        MlflowServerlessCompute(), description="Serverless environment of both jobs' tasks."
    )
    experiment_path: WorkspacePath | None = Field(
        None,
        description="MLflow experiment (created by this stack) that setup, evaluation and gate runs log to. Default: "
        "/Shared/<project>/<environment>[-<user>]/health-monitor.",
    )
    llm_endpoint: ServingEndpointName = Field(
        "databricks-claude-sonnet-4", description="Serving endpoint the agent model asks (its LLM)."
    )
    sql_warehouse_id: WarehouseId | None = Field(
        None,
        description="SQL warehouse on which the setup job creates the inference log tables; unset, the task's "
        "Spark session does.",
    )
    scorers: tuple[ScorerName, ...] = Field(
        SEED_SCORERS,
        description="Scorers the evaluations run (the seed's judges and heuristics). Every threshold must name a "
        "metric one of them produces.",
    )
    gate_mode: Literal["disabled", "dry_run", "enabled"] = Field(
        "enabled", description="Deployment gate: disabled, dry_run (evaluate and report only) or enabled."
    )
    promotion_target: Literal["staging", "production"] | None = Field(
        None, description="Alias the gate promotes to. Default: production in production mode, staging otherwise."
    )
    serving_endpoint: ServingEndpointName | None = Field(
        None, description="Serving endpoint the gate creates or updates. Default: health-monitor-agent-<environment>."
    )
    endpoint_permissions: dict[Principal, Literal["CAN_VIEW", "CAN_QUERY", "CAN_MANAGE"]] = Field(
        {},
        description="Who may use the serving endpoint the gate creates, principal -> CAN_VIEW, CAN_QUERY or "
        "CAN_MANAGE, added by the gate once the endpoint is ready. The identity the deployment job runs as manages "
        "it. Additive: removing an entry here does not revoke it.",
    )
    endpoint_ready_timeout_minutes: WholeNumber = Field(
        30, ge=1, le=180, description="How long the gate waits for the endpoint to be ready before failing."
    )
    thresholds: dict[MetricName, Threshold] = Field(
        SEED_THRESHOLDS,
        description="Minimum metric values, merged over the seed's defaults; set a metric to null to drop it.",
    )

    @field_validator("thresholds", mode="before")
    @classmethod
    def _merge_thresholds(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        merged: dict[str, Any] = {**SEED_THRESHOLDS, **value}
        return {metric: v for metric, v in merged.items() if v is not None}

    @model_validator(mode="after")
    def _thresholds_have_scorers(self) -> HealthMonitorSettings:
        if not self.scorers:
            _fail("scorers", [], "is empty, so the gate could check nothing; allowed: one or more of "
                  f"{', '.join(SEED_SCORERS)}")  # fmt: skip
        if not self.thresholds:
            _fail("thresholds", {}, "leaves no threshold, so the gate would promote any model; allowed: at least "
                  "one metric with a minimum, like safety/mean: 0.7")  # fmt: skip
        for metric in self.thresholds:
            if metric.split("/")[0] not in self.scorers:
                _fail(f"thresholds.{metric}", self.thresholds[metric], "names a metric no configured scorer "
                      f"produces, so the gate would always fail; allowed: metrics of {', '.join(self.scorers)} "
                      "(health_monitor.scorers), or null to drop the threshold")  # fmt: skip
        return self


class PlannedSystemSettings(Section):
    """A system of the seeds that this program cannot deploy yet: it can only be switched off."""

    enabled: Flag = Field(False, description="Not deployable yet (planned): must stay false.")

    @field_validator("enabled")
    @classmethod
    def _not_yet(cls, enabled: bool) -> bool:
        if enabled:
            raise PydanticCustomError(
                "invalid_value", "cannot be true: this system is planned, not deployable yet; allowed: false"
            )
        return enabled


class ServingPlatformSettings(PlannedSystemSettings):
    """Seed 001: the agent serving platform (App, serving endpoint, Lakebase, nightly optimisation)."""


class DependencyWheelhouseSettings(PlannedSystemSettings):
    """Seed 004: the dependency-processor job with per-format test tasks."""


AdoptedJob = Literal["eval_agent", "rlm_orchestrator", "rlm_executor", "agent_setup", "agent_deployment"]


class AdoptSettings(Section):
    """What the seeds' DAB deployments already created, for this stack to take over (Pulumi `import`) instead
    of creating anew: job ids stay, and so do the links that point at them. Each id must be the object this
    stack would manage (UC objects and scopes by the names the stack gives them)."""

    jobs: dict[AdoptedJob, JobId] = Field(
        {}, description="Job key -> existing job id (databricks jobs list), like agent_deployment: '667754679146345'."
    )
    schemas: dict[Literal["platform", "agent"], str] = Field(
        {}, description="platform / agent -> the existing schema's full name, <catalog>.<schema>."
    )
    volumes: dict[str, str] = Field(
        {}, description="Volume role (as in the volumes output) -> the existing volume's full name."
    )
    secret_scopes: dict[Literal["eval_agent", "rlm"], SecretScopeName] = Field(
        {}, description="System -> the existing secret scope's name."
    )
    registered_model: str | None = Field(
        None, description="The existing registered model's full name (seed 002), <catalog>.<schema>.<model>."
    )


class StackSettings(Section):
    """Everything one stack (one environment) deploys."""

    environment: EnvironmentName = Field(description="Environment name, like dev or prod; starts physical names.")
    workspace: WorkspaceSettings = Field(description="The workspace this stack deploys to.")
    deployment: DeploymentSettings = Field(
        DeploymentSettings(), description="Development or production behaviour, identities, tags, notifications."
    )
    catalog: CatalogSettings = Field(description="The Unity Catalog catalog.")
    schema_: SchemaSettings = Field(
        alias="schema",
        description="The platform schema: wheels, eval-agent sessions, RLM volumes and telemetry live here.",
    )
    wheel: WheelSettings = Field(WheelSettings(), description="Where built wheels are kept.")
    eval_agent: EvalAgentSettings = Field(EvalAgentSettings(), description="Seed 000: MLflow evaluation agent.")
    rlm: RlmSettings = Field(RlmSettings(), description="Seed 003: RLM orchestrator/executor jobs.")
    health_monitor: HealthMonitorSettings = Field(
        HealthMonitorSettings(), description="Seed 002: health-monitor agent setup and deployment jobs."
    )
    serving_platform: ServingPlatformSettings = Field(
        ServingPlatformSettings(), description="Seed 001: agent serving platform (planned)."
    )
    dependency_wheelhouse: DependencyWheelhouseSettings = Field(
        DependencyWheelhouseSettings(), description="Seed 004: dependency wheelhouse job (planned)."
    )
    adopt: AdoptSettings = Field(
        AdoptSettings(), description="Existing objects (from the seeds' DAB deployments) to import, not create."
    )

    @property
    def production(self) -> bool:
        """Production behaviour: no name prefixes, schedules as configured, run_as required, data protected."""
        if self.deployment.mode is not None:
            return self.deployment.mode == "production"
        return self.environment == "prod"

    @property
    def protect_data(self) -> bool:
        explicit = self.deployment.protect_data
        return self.production if explicit is None else explicit

    @model_validator(mode="after")
    def _cross_field_rules(self) -> StackSettings:
        d = self.deployment
        if self.production and d.run_as is None:
            _fail("deployment.run_as", None, "is required in production mode; allowed: a service principal's "
                  "application id (jobs then never run as a person)")  # fmt: skip
        if self.production and d.run_as is not None and principal_kind(d.run_as) != "service_principal":
            _fail("deployment.run_as", d.run_as, "must be a service principal in production mode; allowed: a "
                  "service principal's application id (a UUID)")  # fmt: skip
        if self.production and d.user is not None:
            _fail("deployment.user", d.user, "only applies in development mode; allowed: remove it, or set "
                  "deployment.mode: development")  # fmt: skip
        hm = self.health_monitor
        if hm.enabled and hm.schema_ is None:
            _fail("health_monitor.schema", None, "is required when health_monitor is enabled; allowed: "
                  "{name: <schema>}, or health_monitor.enabled: false")  # fmt: skip
        if hm.enabled and hm.schema_ is not None and hm.schema_.name == self.schema_.name:
            _fail("health_monitor.schema.name", hm.schema_.name, "is the platform schema's name; allowed: a "
                  "different schema name (the agent schema is separate, as in seed 002)")  # fmt: skip
        seen: dict[str, str] = {}
        for key, name in self.platform_volumes().items():
            if name in seen:
                _fail(_VOLUME_KEYS[key], name, f"is also the name of {_VOLUME_KEYS[seen[name]]}; allowed: "
                      "a distinct volume name per role in the platform schema")  # fmt: skip
            seen[name] = key
        self._adoptable()
        scopes: dict[str, str] = {}
        for system, scope in self.secret_scopes().items():
            if scope in scopes:
                _fail(f"{system}.secret_scope", scope, f"is also {scopes[scope]}.secret_scope; allowed: a "
                      "distinct scope per system")  # fmt: skip
            scopes[scope] = system
        return self

    def enabled_jobs(self) -> tuple[str, ...]:
        """Job keys (as in the stack outputs <job>_job_id) of the enabled systems."""
        jobs = {"eval_agent": ("eval_agent",), "rlm": ("rlm_orchestrator", "rlm_executor"),
                "health_monitor": ("agent_setup", "agent_deployment")}  # fmt: skip
        return tuple(j for system, keys in jobs.items() if getattr(self, system).enabled for j in keys)

    def _adoptable(self) -> None:
        """Every adopted object is one this stack manages, under the name it gives it."""
        a, catalog = self.adopt, self.catalog.name
        for job in a.jobs:
            if job not in self.enabled_jobs():
                _fail(f"adopt.jobs.{job}", a.jobs[job], "is a job of a system this stack does not deploy; allowed: "
                      f"{', '.join(self.enabled_jobs()) or 'none (every system is off)'}")  # fmt: skip
        schemas = {"platform": f"{catalog}.{self.schema_.name}"}
        if self.health_monitor.enabled and self.health_monitor.schema_ is not None:
            schemas["agent"] = f"{catalog}.{self.health_monitor.schema_.name}"
        volumes = {role: f"{schemas['platform']}.{name}" for role, name in self.platform_volumes().items()}
        volumes |= {role: f"{schemas.get('agent')}.{name}" for role, name in self.agent_volumes().items()}
        model = f"{schemas['agent']}.{self.health_monitor.model_name}" if "agent" in schemas else None
        checks = [
            *((f"adopt.schemas.{k}", v, schemas.get(k), "schema") for k, v in a.schemas.items()),
            *((f"adopt.volumes.{k}", v, volumes.get(k), "volume") for k, v in a.volumes.items()),
            *((f"adopt.secret_scopes.{k}", v, self.secret_scopes().get(k), "secret scope")
              for k, v in a.secret_scopes.items()),
            *([("adopt.registered_model", a.registered_model, model, "registered model")]
              if a.registered_model else []),
        ]  # fmt: skip
        for key, given, managed, what in checks:
            if managed is None:
                _fail(key, given, f"is not a {what} this stack manages (its system is off, or no such role); "
                      f"allowed: {', '.join(sorted(volumes)) if what == 'volume' else 'remove it'}")  # fmt: skip
            elif given != managed:
                _fail(key, given, f"is not the {what} this stack manages; allowed: {managed!r} (set the stack's "
                      "names to those of the existing objects, so that the import matches)")  # fmt: skip

    def platform_volumes(self) -> dict[str, str]:
        """Volume role -> UC name, for the volumes of the platform schema used by enabled systems."""
        volumes = {"wheels": self.wheel.volume}
        if self.eval_agent.enabled:
            volumes["eval_sessions"] = self.eval_agent.sessions_volume
        if self.rlm.enabled:
            volumes["rlm_artifacts"] = self.rlm.artifacts_volume
            volumes["rlm_agent_code"] = self.rlm.agent_code_volume
        return volumes

    def agent_volumes(self) -> dict[str, str]:
        """Volume role -> UC name, for the volumes of seed 002's agent schema (empty when disabled)."""
        hm = self.health_monitor
        if not hm.enabled:
            return {}
        return {
            "health_monitor_runbooks": hm.runbooks_volume,
            "health_monitor_embeddings": hm.embeddings_volume,
            "health_monitor_artifacts": hm.artifacts_volume,
        }

    def secret_scopes(self) -> dict[str, str]:
        """System -> secret scope name, for the enabled systems that hold secrets.

        Scope names are workspace-wide, so in development mode a scope the stack does not name itself gets the
        environment (and user) appended, like job names get their prefix: `dev` and `dev-alice` in one
        workspace never share a scope. Production stacks use the seeds' names unchanged."""
        suffix = "" if self.production else "-".join(["", self.environment, *filter(None, [self.deployment.user])])
        scopes = {}
        for system, cfg in (("eval_agent", self.eval_agent), ("rlm", self.rlm)):
            if cfg.enabled:
                explicit = "secret_scope" in cfg.model_fields_set
                scopes[system] = cfg.secret_scope if explicit else f"{cfg.secret_scope}{suffix}"
        return scopes


_VOLUME_KEYS = {
    "wheels": "wheel.volume",
    "eval_sessions": "eval_agent.sessions_volume",
    "rlm_artifacts": "rlm.artifacts_volume",
    "rlm_agent_code": "rlm.agent_code_volume",
}


def _fail(field: str, value: object, message: str) -> None:
    """Fail a rule that involves several fields; `field` is the dotted path below the model being validated."""
    raise PydanticCustomError("field_rule", message, {"field": field, "value": value})


# --- Secrets: named here, values only from `pulumi config set --secret`


@dataclass(frozen=True)
class SecretSpec:
    """One secret config key and where its value goes."""

    config_key: str
    system: Literal["eval_agent", "rlm"]
    key: str  # key inside the system's secret scope
    required: bool
    description: str


SECRETS: tuple[SecretSpec, ...] = (
    SecretSpec(
        "eval_agent_databricks_token", "eval_agent", "databricks-token", True,
        "Databricks token the evaluation agent sends to the serving endpoint (seed 000's ANTHROPIC_AUTH_TOKEN); "
        "stored as mlflow-eval/databricks-token.",
    ),
    SecretSpec(
        "rlm_google_api_key", "rlm", "google-api-key", True,
        "Google API key of the RLM agent (GOOGLE_API_KEY); stored as adk-secrets/google-api-key.",
    ),
    SecretSpec(
        "rlm_databricks_host", "rlm", "databricks-host", False,
        "Optional: workspace host for the orchestrator's Jobs API fallback auth; stored as "
        "adk-secrets/databricks-host.",
    ),
    SecretSpec(
        "rlm_databricks_token", "rlm", "databricks-token", False,
        "Optional: token for the orchestrator's Jobs API fallback auth (used only if the job's own identity "
        "fails); stored as adk-secrets/databricks-token.",
    ),
)  # fmt: skip
SECRET_KEYS = frozenset(s.config_key for s in SECRETS)

SecretState = Literal["set", "absent", "plaintext"]


@dataclass(frozen=True)
class LoadedSettings:
    """The validated settings plus, for each secret config key, whether it is set (never its value)."""

    settings: StackSettings
    secrets: Mapping[str, SecretState]
    stack_file: str

    def wanted_secrets(self) -> tuple[SecretSpec, ...]:
        """Secrets of enabled systems (required ones, and optional ones that are set)."""
        enabled = set(self.settings.secret_scopes())
        return tuple(
            s for s in SECRETS if s.system in enabled and (s.required or self.secrets[s.config_key] != "absent")
        )

    def check_secrets_for_deploy(self, project: str) -> None:
        """Refuse to deploy with a required secret unset, or any secret stored in plain text (even one of a
        switched-off system: it sits in the stack file, probably in git)."""
        problems = []
        wanted = {spec.config_key for spec in self.wanted_secrets()}
        for spec in SECRETS:
            full = f"{project}:{spec.config_key}"
            state = self.secrets[spec.config_key]
            if state == "absent" and spec.config_key in wanted:
                problems.append(f"{full} is not set: {spec.description} Set it with: "
                                f"pulumi config set --secret {full} <value>")  # fmt: skip
            elif state == "plaintext":
                problems.append(f"{full} is stored in plain text; a secret must be encrypted. Rotate it, then "
                                f"run: pulumi config set --secret {full} <value>")  # fmt: skip
        if problems:
            raise SettingsError(_one_message(self.stack_file, problems))


# --- Loading


def load_settings() -> LoadedSettings:
    """Parse the running stack's config (inside a Pulumi program or the offline preview)."""
    project, stack = pulumi.get_project(), pulumi.get_stack()
    raw = {**pulumi.runtime.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    secret_keys = set(pulumi.runtime.get_config_secret_keys_env()) | {
        k for k in raw if pulumi.runtime.is_config_secret(k)
    }
    return parse_settings(raw, secret_keys, project=project, stack_file=f"Pulumi.{stack}.yaml")


def parse_settings(
    raw: Mapping[str, Any], secret_keys: Iterable[str], *, project: str, stack_file: str
) -> LoadedSettings:
    """Validate raw config (full keys like 'agent-platform:catalog', values as Pulumi passes them:
    scalars as strings, objects as JSON text)."""
    secret_keys = set(secret_keys)
    problems: list[str] = []
    top_level = sorted(f.alias or n for n, f in StackSettings.model_fields.items())
    values: dict[str, Any] = {}
    secrets: dict[str, SecretState] = {s.config_key: "absent" for s in SECRETS}
    for full_key in sorted(raw):
        namespace, _, key = full_key.partition(":")
        if namespace == "databricks":
            problems.append(
                f"{_clip(full_key)}: is ignored by this program, which configures its own provider; allowed: "
                f"set {project}:workspace.host (and .profile), and credentials in the environment"
            )
        elif namespace != project:
            continue
        elif key in SECRET_KEYS:
            if raw[full_key] not in (None, ""):
                secrets[key] = "set" if full_key in secret_keys else "plaintext"
        elif key in top_level:
            if raw[full_key] in (None, ""):
                continue  # `key:` with nothing after it: the CLI passes "" (and warns); unset, like the secrets
            try:
                values[key] = _decode(key, raw[full_key])
            except _Unreadable as exc:
                problems.append(f"{full_key}: {exc}")
        else:
            hint = _did_you_mean(key, [*top_level, *SECRET_KEYS])
            problems.append(f"{_clip(full_key)}: is not a known setting{hint}; allowed: "
                            f"{', '.join(top_level)} and the secrets {', '.join(sorted(SECRET_KEYS))}")  # fmt: skip
    settings = None
    try:
        settings = StackSettings.model_validate(values)
    except ValidationError as exc:
        problems.extend(_describe(project, error) for error in exc.errors())
    if problems or settings is None:
        raise SettingsError(_one_message(stack_file, problems))
    return LoadedSettings(settings=settings, secrets=secrets, stack_file=stack_file)


class _Unreadable(ValueError):
    """JSON text that no setting can hold, said in one line."""


def _no_constants(name: str) -> Any:
    raise _Unreadable(f"holds {name}, which is not a finite number; allowed: finite numbers")


def _decode(key: str, value: Any) -> Any:
    """Top-level values arrive as text; objects and lists as JSON text (how the Pulumi CLI passes them).
    Text that is not JSON stays text (pydantic then says what was expected). The CLI never writes NaN, a number
    beyond Python's 4300-digit limit or JSON nested past the recursion limit, but PULUMI_CONFIG can hold them."""
    field = StackSettings.model_fields["schema_" if key == "schema" else key]
    if isinstance(value, str) and field.annotation is not str and value[:1] in "{[":
        try:
            return json.loads(value, parse_constant=_no_constants)
        except json.JSONDecodeError:
            return value
        except RecursionError:
            raise _Unreadable("is nested too deeply to read; allowed: the setting's own structure (a few "
                              "levels)") from None  # fmt: skip
        except _Unreadable:
            raise
        except ValueError:  # int() of more than 4300 digits
            raise _Unreadable("holds a number thousands of digits long; allowed: numbers of the setting's "
                              "range") from None  # fmt: skip
    return value


def _describe(project: str, error: Any) -> str:
    """One line per pydantic error: '<project>:<key path> = <value>: <what is wrong; what is allowed>'."""
    ctx = error.get("ctx") or {}
    # Discriminated unions add the tag to the location (rlm.compute.existing_cluster.cluster_id).
    loc: list[str | int] = [p for p in error["loc"] if p not in _UNION_TAGS]
    value = error.get("input")
    if error["type"] == "unknown_key":
        loc.append(ctx["key"])
        value = _MISSING
    elif error["type"] == "field_rule":
        loc.extend(ctx["field"].split("."))
        value = _MISSING if ctx.get("value") is None else ctx["value"]
    elif error["type"] == "missing":
        value = _MISSING
    elif error["type"] == "union_tag_invalid":  # name the kind the user wrote, where they wrote it
        loc.append("kind")
        value = ctx.get("tag", _MISSING)
    if "[key]" in loc:  # a bad dict key (a principal, a tag key): name the entry
        loc.remove("[key]")
    message = _friendly(error)
    misspelt = _misspelt_kind(error)
    if misspelt is not None:  # `kindx: serverless` is a misspelt `kind`, not a missing one
        loc.append(misspelt)
        value = _MISSING
        others = ", ".join(k for k in _COMPUTE_KEYS if k != "kind")
        message = (f"is not a known setting{_did_you_mean(misspelt, _COMPUTE_KEYS)}; allowed here: kind (serverless, "
                   f"existing_cluster or job_cluster) and that kind's settings ({others})")  # fmt: skip
    key = f"{project}:{_path(loc)}"
    if error["type"] == "missing":
        message += _description_at(error["loc"])
    if error["type"] == "int_parsing_size":
        message += f" ({_range_at(error['loc'])})"
    shown = "" if value is _MISSING or isinstance(value, dict | list) else f" = {_shown(value)}"
    return f"{key}{shown}: {message}"


def _misspelt_kind(error: Any) -> str | None:
    """The first unknown key of a compute mapping that has no kind, if there is one."""
    value = error.get("input")
    if error["type"] != "union_tag_not_found" or not isinstance(value, dict):
        return None
    return next((str(k) for k in sorted(value, key=str) if k not in _COMPUTE_KEYS), None)


def _shown(value: object) -> str:
    """A value quoted in a message: control and bidirectional characters escaped (repr), long values cut."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _clip(key: str) -> str:
    return key if len(key) <= 80 and key.isprintable() else json.dumps(key[:77] + ("..." if len(key) > 77 else ""))


_MISSING = object()
_UNION_TAGS: dict[str, type[Section]] = {
    "serverless": ServerlessCompute,
    "existing_cluster": ExistingClusterCompute,
    "job_cluster": JobClusterCompute,
}
_COMPUTE_KEYS = sorted({f.alias or n for model in _UNION_TAGS.values() for n, f in model.model_fields.items()})


def _field_at(loc: tuple[str | int, ...]) -> FieldInfo | None:
    """The settings field at a pydantic error location."""
    model: type[BaseModel] | None = StackSettings
    field = None
    for part in loc:
        if isinstance(part, str) and part in _UNION_TAGS:
            model = _UNION_TAGS[part]
            continue
        fields = {f.alias or n: f for n, f in model.model_fields.items()} if model else {}
        if part not in fields:
            return None
        field = fields[part]
        annotation = field.annotation
        candidates = [a for a in (*getattr(annotation, "__args__", ()), annotation) if isinstance(a, type)]
        model = next((a for a in candidates if issubclass(a, BaseModel)), None)
    return field


def _description_at(loc: tuple[str | int, ...]) -> str:
    """': <description>' of the field at a pydantic error location, for 'is required' messages."""
    field = _field_at(loc)
    return f" ({field.description})" if field is not None and field.description else ""


def _range_at(loc: tuple[str | int, ...]) -> str:
    """'at least 1, at most 100': the bounds of the number field at a pydantic error location."""
    field = _field_at(loc)
    words = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}
    bounds = [f"{words[k]} {getattr(m, k)}" for m in (field.metadata if field else []) for k in words if hasattr(m, k)]
    return ", ".join(bounds) or "a whole number"


def _path(loc: list[str | int]) -> str:
    """The key path in `pulumi config set --path` syntax: a.b[0], a["key with/odd chars"]."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            shown = part if len(part) <= 60 else part[:57] + "..."  # a hostile key may be a megabyte long
            path += f".{part}" if part.isidentifier() else f"[{json.dumps(shown)}]"
    return path.lstrip(".")


def _friendly(error: Any) -> str:
    kind, msg = str(error["type"]), str(error["msg"])
    if kind == "missing":
        return "is required but not set"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a mapping (YAML object), not a single value"
    if kind == "union_tag_not_found":
        return "needs a kind; allowed: serverless, existing_cluster or job_cluster"
    if kind == "int_parsing_size":
        return "is too large a number; allowed: a whole number in the setting's range"  # the range: _describe
    if kind == "union_tag_invalid":
        return "is not a kind of compute; allowed: serverless, existing_cluster or job_cluster"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}
        limits = [f"{word} {error['ctx'][key]}" for key, word in bound.items() if key in (error.get("ctx") or {})]
        return f"is out of range; allowed: {', '.join(limits)}"
    if kind in ("tuple_type", "list_type"):
        return "must be a list (in YAML: - item, or [a, b])"
    if kind == "literal_error":
        return f"is not allowed; allowed: {msg.removeprefix('Input should be ')}"
    if kind.startswith(("bool_", "int_", "float_", "string_type")):
        return msg.replace("Input should be", "must be")
    return msg


def _one_message(stack_file: str, problems: list[str]) -> str:
    if len(problems) == 1:
        return f"{stack_file}: {problems[0]}"
    return f"{stack_file}: {len(problems)} problems in the stack configuration:\n" + "\n".join(
        f"  - {p}" for p in problems
    )


def secret_values(loaded: LoadedSettings) -> dict[str, pulumi.Output[str]]:
    """The wanted secrets' values as secret Outputs, keyed by config key (read here, never logged)."""
    config = pulumi.Config()
    return {spec.config_key: config.require_secret(spec.config_key) for spec in loaded.wanted_secrets()}
