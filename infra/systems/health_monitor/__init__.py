"""Seed 002: the health-monitor agent: its setup job, the evaluation-gated deployment job, the registered model
and its link to the deployment job, the experiment."""

from typing import cast

from infra.settings.base import Section
from infra.systems.base import AdoptableDecl, JobDecl, SchemaDecl, System, VolumeDecl
from infra.systems.health_monitor.settings import HealthMonitorSettings

# What the jobs' identity needs in the platform's schemas (infra.platform) plus, as the agent schema also holds
# the prompt registry's prompts, what that needs (Databricks' prompt registry requirements; not checkable here).
AGENT_SCHEMA_PRIVILEGES = (
    "CREATE_FUNCTION", "CREATE_MODEL", "CREATE_TABLE", "EXECUTE", "MANAGE", "MODIFY", "READ_VOLUME", "SELECT",
    "USE_SCHEMA", "WRITE_VOLUME",
)  # fmt: skip


def _model_name(settings: Section) -> str:
    return cast(HealthMonitorSettings, settings).model_name


SYSTEM = System(
    key="health_monitor",
    seed="002",
    title="health-monitor agent setup and deployment jobs",
    settings=HealthMonitorSettings,
    components="infra.systems.health_monitor.components",
    jobs=(JobDecl("agent_setup", "health-monitor-setup"), JobDecl("agent_deployment", "health-monitor-deployment")),
    schemas=(
        SchemaDecl("agent", "schema_", "Health-monitor agent: inference logs, runbooks, model (seed 002)",
                   AGENT_SCHEMA_PRIVILEGES),
    ),
    volumes=(
        VolumeDecl("health_monitor_runbooks", "runbooks_volume", "Health-monitor agent: runbooks (seed 002)", "agent"),
        VolumeDecl("health_monitor_embeddings", "embeddings_volume", "Health-monitor agent: embeddings (seed 002)",
                   "agent"),
        VolumeDecl("health_monitor_artifacts", "artifacts_volume", "Health-monitor agent: artifacts (seed 002)",
                   "agent"),
    ),
    adoptable=(AdoptableDecl("registered_model", "RegisteredModel", "health-monitor-model", _model_name),),
    wheel_extra="health-monitor",
)  # fmt: skip
