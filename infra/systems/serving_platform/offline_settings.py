"""Settings of seed 001's offline path: the telemetry tables, views and dashboard (`TelemetrySettings`,
`DashboardSettings`) and the nightly prompt optimisation job (`PromptOptimizerSettings`).

Plain pydantic sections (infra.settings.Section: frozen, unknown keys refused); they read no config. The serving
platform's settings model holds them as `telemetry` and `prompt_optimizer`. Ranges are those the wheel accepts
(agent_jobs.telemetry_otel.settings for the app's TELEMETRY_* variables, `prompt-optimizer`'s argparse), so a
value the stack file accepts never makes the app or the job refuse to start.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from infra.settings.base import Section, fail
from infra.settings.sections import ScheduleSettings
from infra.settings.types import (
    EnvironmentVersion,
    Flag,
    FreeText,
    Threshold,
    UcName,
    WarehouseId,
    WholeNumber,
    WorkspacePath,
)

# Zerobus Ingest's endpoint: https://<workspace-id>.zerobus.<region>.cloud.databricks.com (AWS; Azure:
# <workspace-id>.zerobus.<region>.azuredatabricks.net). The workspace id is also the OAuth token's resource.
_ZEROBUS = re.compile(r"https://[0-9]{1,32}\.zerobus\.[a-z0-9-]{1,40}\.(cloud\.databricks\.com|azuredatabricks\.net)")


def _zerobus_endpoint(value: str) -> str:
    if len(value) > 200 or not _ZEROBUS.fullmatch(value.rstrip("/")):
        raise PydanticCustomError(
            "invalid_value",
            "is not a Zerobus Ingest endpoint; allowed: https://<workspace-id>.zerobus.<region>.cloud.databricks.com "
            "(or .azuredatabricks.net), like https://1234567890123456.zerobus.us-west-2.cloud.databricks.com",
        )
    return value.rstrip("/")


ZerobusEndpoint = Annotated[str, AfterValidator(_zerobus_endpoint)]

_UC_PART = r"[a-z_][a-z0-9_]{0,254}"


def _table_name(value: str) -> str:
    if not re.fullmatch(rf"{_UC_PART}(\.{_UC_PART}\.{_UC_PART})?", value):
        raise PydanticCustomError(
            "invalid_value",
            "is not a table name; allowed: a table in the serving schema (like prompt_training) or a full name "
            "catalog.schema.table, lowercase letters, digits and underscores",
        )
    return value


TableName = Annotated[str, AfterValidator(_table_name)]


def _agent_name(value: str) -> str:
    # The optimiser writes <volume>/optimised/<agent>.json: the same rule as its --agents option.
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", value):
        raise PydanticCustomError(
            "invalid_value",
            "is not an agent name; allowed: lowercase letters, digits and _, starting with a letter, at most 64 "
            "characters (like fraud_detector)",
        )
    return value


AgentName = Annotated[str, AfterValidator(_agent_name)]


def _not_bool(value: object) -> object:
    if isinstance(value, bool):  # pydantic would read true as 1
        raise PydanticCustomError("invalid_value", "is a boolean; allowed: a number")
    return value


Seconds = Annotated[float, BeforeValidator(_not_bool), Field(ge=0.001, le=3600, allow_inf_nan=False)]
HoldoutFraction = Annotated[float, BeforeValidator(_not_bool), Field(ge=0.05, le=0.9, allow_inf_nan=False)]


class DashboardSettings(Section):
    """The Lakeview dashboard over the telemetry views (recent executions, error rate and latency by agent)."""

    enabled: Flag = Field(True, description="Create the dashboard (when telemetry is on).")
    warehouse_id: WarehouseId | None = Field(
        None, description="SQL warehouse the dashboard's queries run on. Default: telemetry.warehouse_id."
    )
    parent_path: WorkspacePath = Field(
        "/Shared",
        description="Existing workspace folder the dashboard is created in (the program does not create it).",
    )
    display_name: FreeText | None = Field(
        None,
        description="The dashboard's name (unique in its folder). Default: 'Agent serving (<project> "
        "<environment>[-<user>])'.",
    )


class TelemetrySettings(Section):
    """OTEL -> Zerobus Ingest -> Delta (seed 001's 'Monitoring' row): the tables Zerobus writes, the views the
    seed's queries use, grants for the app's service principal, the dashboard, and the app's TELEMETRY_* settings."""

    enabled: Flag | None = Field(
        None,
        description="Create the telemetry tables, views and dashboard, and export the app's telemetry. Default: on "
        "when zerobus_endpoint is set (the endpoint is the workspace's own: it has no default).",
    )
    zerobus_endpoint: ZerobusEndpoint | None = Field(
        None,
        description="The workspace's Zerobus Ingest endpoint (required when enabled), "
        "https://<workspace-id>.zerobus.<region>.cloud.databricks.com; the app sends OTLP/HTTP there.",
    )
    warehouse_id: WarehouseId | None = Field(
        None,
        description="SQL warehouse that runs the tables' and views' DDL (required when enabled; without one the "
        "provider would start a cluster of its own), and by default the dashboard's queries.",
    )
    spans_table: UcName = Field(
        "agent_otel_spans", description="Delta table of the app's spans (Zerobus' OTLP spans schema), in the schema."
    )
    metrics_table: UcName = Field(
        "agent_otel_metrics", description="Delta table of the app's metric data points (OTLP metrics schema)."
    )
    sample_rate: Threshold = Field(
        0.1,
        description="Share of traces exported, 0 to 1 (the seed's TELEMETRY_SAMPLE_RATE: 0.1); the metrics table "
        "still counts every execution.",
    )
    batch_interval_seconds: Seconds = Field(
        10.0, description="Export spans at least this often, in seconds, 0.001 to 3600 (the seed's 'every 10 s')."
    )
    batch_size: WholeNumber = Field(
        1000, ge=1, le=100_000, description="Export as soon as this many spans wait (the seed's '1000 events')."
    )
    queue_size: WholeNumber = Field(
        10_000,
        ge=1,
        le=1_000_000,
        description="Spans waiting for export at most; beyond, new spans are dropped and counted (never blocking a "
        "request). At least batch_size.",
    )
    dashboard: DashboardSettings = Field(DashboardSettings(), description="The Lakeview dashboard.")

    @model_validator(mode="after")
    def _complete(self) -> TelemetrySettings:
        if self.queue_size < self.batch_size:
            fail("queue_size", self.queue_size, f"is less than batch_size ({self.batch_size}); allowed: at least "
                  "batch_size")  # fmt: skip
        if self.spans_table == self.metrics_table:
            fail("metrics_table", self.metrics_table, "is also spans_table; allowed: one table per signal")
        for key in ("spans_table", "metrics_table"):
            if getattr(self, key) in VIEWS:
                fail(key, getattr(self, key), f"is the name of a view ({', '.join(VIEWS)}); allowed: another name")
        if self.on:
            for key in ("zerobus_endpoint", "warehouse_id"):
                if getattr(self, key) is None:
                    fail(key, None, f"is required when telemetry is on ({_DESCRIBED[key]}); allowed: set it, "
                          "or telemetry.enabled: false")  # fmt: skip
        return self

    @property
    def on(self) -> bool:
        """Telemetry is exported (and its tables exist): as `enabled` says, else when an endpoint is set."""
        return self.enabled if self.enabled is not None else self.zerobus_endpoint is not None


VIEWS = ("traces", "metrics")
"""The views the seed's queries name (main.agents.traces, main.agents.metrics): fixed, so the queries and the
dashboard's datasets keep working unchanged."""
_DESCRIBED = {
    "zerobus_endpoint": "https://<workspace-id>.zerobus.<region>.cloud.databricks.com",
    "warehouse_id": "a SQL warehouse id, 16 hexadecimal characters",
}


class PromptOptimizerSettings(Section):
    """The nightly `prompt-optimizer` job (seed 001's 'Prompt Optimization' row): DSPy against the serving
    endpoint, promoted to the prompts volume only when it beats the current prompt on a holdout by `margin`."""

    enabled: Flag = Field(True, description="Create the nightly optimisation job.")
    training_table: TableName = Field(
        "prompt_training",
        description="Delta table of training examples (columns agent_name, input, expected): a table in the serving "
        "schema, or a full name catalog.schema.table. Not created by the program.",
    )
    margin: Threshold = Field(
        0.02, description="Holdout accuracy a candidate must gain over the current prompt to be promoted (0 to 1)."
    )
    holdout_fraction: HoldoutFraction = Field(
        0.3, description="Share of each agent's examples kept for the holdout evaluation (0.05 to 0.9)."
    )
    min_examples: WholeNumber = Field(
        20, ge=4, le=1_000_000, description="Examples an agent needs at least; fewer fail the run (nothing written)."
    )
    agents: tuple[AgentName, ...] = Field((), description="Agents to optimise. Default: every agent in the table.")
    schedule: ScheduleSettings = Field(
        ScheduleSettings(cron="0 0 2 * * ?", timezone="UTC"),
        description="When it runs: the seed's 'nightly at 2am' (Quartz cron). Development stacks create it paused.",
    )
    environment_version: EnvironmentVersion = Field(
        "4", description="Serverless environment version of the job (Python 3.12 from version 3 on; DSPy needs 3.10+)."
    )
    warehouse_id: WarehouseId | None = Field(
        None, description="SQL warehouse the job reads the training table through. Default: the job's own Spark."
    )
    experiment_path: WorkspacePath | None = Field(
        None,
        description="MLflow experiment (created by this stack) the runs log to. Default: "
        "/Shared/<project>/<environment>[-<user>]/serving/prompt-optimizer (its own folder: the health monitor's "
        "experiment folder is another resource's).",
    )
    timeout_minutes: WholeNumber = Field(
        180, ge=10, le=1440, description="Longest run, in minutes (the seed expects 30 to 60)."
    )
