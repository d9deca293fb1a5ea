"""The platform-wide sections of a stack's settings: workspace, deployment, catalog, schema, wheel, the
compute and schedule shapes the systems reuse, and what to adopt. The systems' own models live with their
systems (infra/systems/<system>/settings.py)."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from infra.settings.base import Section, fail
from infra.settings.cron import QuartzCron
from infra.settings.types import (
    ClusterId,
    DevUser,
    EmailAddress,
    EnvironmentVersion,
    Flag,
    FreeText,
    JobId,
    NodeTypeId,
    Principal,
    ProfileName,
    RunAsPrincipal,
    SecretScopeName,
    SparkVersion,
    StorageUrl,
    TagKey,
    TagValue,
    TimezoneId,
    UcName,
    WholeNumber,
    WorkspaceUrl,
)

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
            fail(reserved[0], tags[reserved[0]], "is a reserved tag, always set by the program; allowed: any "
                  f"tag except {', '.join(sorted(RESERVED_TAGS))} (in any case)")  # fmt: skip
        seen: dict[str, str] = {}
        for key in tags:
            other = seen.setdefault(key.lower(), key)
            if other != key:
                fail(key, tags[key], f"differs from the tag key {other} only in case, and Unity Catalog tag keys "
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
            fail("storage_root", self.storage_root, "only applies to a catalog this stack creates; allowed: "
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


# --- Adoption


class AdoptSettings(Section):
    """What the seeds' DAB deployments already created, for this stack to take over (Pulumi `import`) instead
    of creating anew: job ids stay, and so do the links that point at them. Each id must be the object this
    stack would manage (UC objects and scopes by the names the stack gives them)."""

    jobs: dict[str, JobId] = Field(
        {}, description="Job key -> existing job id (databricks jobs list), like agent_deployment: '667754679146345'."
    )
    schemas: dict[str, str] = Field(
        {},
        description="Schema key (platform, or a system's schema such as agent) -> the existing schema's full "
        "name, <catalog>.<schema>.",
    )
    volumes: dict[str, str] = Field(
        {}, description="Volume role (as in the volumes output) -> the existing volume's full name."
    )
    secret_scopes: dict[str, SecretScopeName] = Field({}, description="System -> the existing secret scope's name.")
    registered_model: str | None = Field(
        None, description="The existing registered model's full name (seed 002), <catalog>.<schema>.<model>."
    )
