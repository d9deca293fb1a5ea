"""Seed 000: the MLflow evaluation agent, one wheel-task job (`mlflow-eval`)."""

from infra.systems.base import JobDecl, SecretDecl, System, VolumeDecl
from infra.systems.eval_agent.settings import EvalAgentSettings

SYSTEM = System(
    key="eval_agent",
    seed="000",
    title="MLflow evaluation agent",
    settings=EvalAgentSettings,
    components="infra.systems.eval_agent.components",
    jobs=(JobDecl("eval_agent", "eval-agent"),),
    volumes=(
        VolumeDecl("eval_sessions", "sessions_volume",
                   "MLflow evaluation agent: session state, logs and reports (seed 000)"),
    ),
    secrets=(
        SecretDecl(
            "eval_agent_databricks_token", "databricks-token", True,
            "Databricks token the evaluation agent sends to the serving endpoint (seed 000's ANTHROPIC_AUTH_TOKEN); "
            "stored as mlflow-eval/databricks-token.",
        ),
    ),
    wheel_extra="eval-agent",
)  # fmt: skip
