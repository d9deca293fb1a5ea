"""Seed 000's settings: the MLflow evaluation agent's job."""

from __future__ import annotations

from pydantic import Field

from infra.settings.base import Section
from infra.settings.sections import Compute, ScheduleSettings, ServerlessCompute
from infra.settings.types import ExperimentId, Flag, ModelIdentifier, SecretScopeName, ServingEndpointName, UcName


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
