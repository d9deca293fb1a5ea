"""Seed 002's settings: the health-monitor agent's setup and evaluation-gated deployment jobs."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from infra.settings.base import Section, fail
from infra.settings.sections import MlflowServerlessCompute, SchemaSettings
from infra.settings.types import (
    Flag,
    MetricName,
    Principal,
    ServingEndpointName,
    Threshold,
    UcName,
    WarehouseId,
    WholeNumber,
    WorkspacePath,
)

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
            fail("scorers", [], "is empty, so the gate could check nothing; allowed: one or more of "
                  f"{', '.join(SEED_SCORERS)}")  # fmt: skip
        if not self.thresholds:
            fail("thresholds", {}, "leaves no threshold, so the gate would promote any model; allowed: at least "
                  "one metric with a minimum, like safety/mean: 0.7")  # fmt: skip
        for metric in self.thresholds:
            if metric.split("/")[0] not in self.scorers:
                fail(f"thresholds.{metric}", self.thresholds[metric], "names a metric no configured scorer "
                      f"produces, so the gate would always fail; allowed: metrics of {', '.join(self.scorers)} "
                      "(health_monitor.scorers), or null to drop the threshold")  # fmt: skip
        return self
