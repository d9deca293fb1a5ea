"""Seed 003's settings: the RLM orchestrator/executor pair."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from infra import PROJECT_ROOT
from infra.settings.base import Section
from infra.settings.sections import Compute, ScheduleSettings, ServerlessCompute
from infra.settings.types import Flag, SecretScopeName, UcName, WarehouseId, WholeNumber, no_hidden

# The one setting that reads the file system: the agent-code file must exist in this repository.


def _agent_code_file(value: str) -> str:
    no_hidden(value, "a path relative to Pulumi.yaml, like agents/rlm.py")
    path = (PROJECT_ROOT / value).resolve()
    if Path(value).is_absolute() or PROJECT_ROOT not in path.parents:
        raise PydanticCustomError(
            "invalid_value", "is outside the project; allowed: a path relative to Pulumi.yaml, like agents/rlm.py"
        )
    if path.suffix != ".py" or not path.is_file():
        raise PydanticCustomError(
            "invalid_value", "is not an existing .py file; allowed: a path relative to Pulumi.yaml, like agents/rlm.py"
        )
    return value


AgentCodeFile = Annotated[str, AfterValidator(_agent_code_file)]


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
