"""Seed 003: the RLM agent's orchestrator/executor job pair (`rlm-orchestrator`, `rlm-executor`)."""

from infra.systems.base import JobDecl, SecretDecl, System, VolumeDecl
from infra.systems.rlm.settings import RlmSettings

SYSTEM = System(
    key="rlm",
    seed="003",
    title="RLM orchestrator/executor jobs",
    settings=RlmSettings,
    components="infra.systems.rlm.components",
    jobs=(JobDecl("rlm_orchestrator", "rlm-orchestrator"), JobDecl("rlm_executor", "rlm-executor")),
    volumes=(
        VolumeDecl("rlm_artifacts", "artifacts_volume",
                   "RLM agent: generated artifacts and their result.json (seed 003)"),
        VolumeDecl("rlm_agent_code", "agent_code_volume", "RLM agent: the agent's code (seed 003)"),
    ),
    secrets=(
        SecretDecl("rlm_google_api_key", "google-api-key", True,
                   "Google API key of the RLM agent (GOOGLE_API_KEY); stored as adk-secrets/google-api-key."),
        SecretDecl("rlm_databricks_host", "databricks-host", False,
                   "Optional: workspace host for the orchestrator's Jobs API fallback auth; stored as "
                   "adk-secrets/databricks-host."),
        SecretDecl("rlm_databricks_token", "databricks-token", False,
                   "Optional: token for the orchestrator's Jobs API fallback auth (used only if the job's own "
                   "identity fails); stored as adk-secrets/databricks-token."),
    ),
    wheel_extra="rlm",
)  # fmt: skip
