"""Log the agent and register a new version of its model (the seed's `log_agent_model` task).

The agent is logged from code (agent_model.py) with unpinned requirements and the LLM endpoint declared as a
resource, so Model Serving passes credentials for it. The system prompt is the wheel's prompt text, baked
into the model's config: a version always answers with the prompts it was evaluated with. No alias is set:
`staging` and `production` are the deployment gate's to give, after an evaluation passed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from agent_jobs.errors import JobError
from agent_jobs.health_monitor.prompt_registry import prompt_text

log = logging.getLogger(__name__)

MODEL_FILE = Path(__file__).with_name("agent_model.py")
# No version constraints: Model Serving has both pre-installed (seed 002's serverless lesson).
PIP_REQUIREMENTS = ("mlflow", "databricks-sdk")
RUN_TYPE = "model_logging"
DOMAIN_WORKERS = ("cost_worker", "security_worker", "performance_worker", "reliability_worker", "quality_worker")


def system_prompt() -> str:
    """The orchestrator's system prompt followed by each domain specialist's guidance."""
    sections = [prompt_text("orchestrator_system").strip()]
    sections += [prompt_text(worker).strip() for worker in DOMAIN_WORKERS]
    return "\n\n---\n\n".join(sections) + "\n"


def signature() -> object:
    """Input: {"messages": [{"role", "content"}]}; output: {"response"}. Built by hand, since inferring it
    from an example needs the model to run (calling the LLM) or packages mlflow-skinny lacks."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, DataType, Object, Property, Schema

    message = Object([Property("role", DataType.string), Property("content", DataType.string)])
    return ModelSignature(
        inputs=Schema([ColSpec(Array(message), "messages")]),
        outputs=Schema([ColSpec(DataType.string, "response")]),
    )


def log_agent_model(model_name: str, llm_endpoint: str, experiment: str) -> str:
    """Log the agent in an MLflow run (tagged run_type=model_logging) of `experiment` (a path or name) and
    register it as a new version of `model_name` (catalog.schema.model on Databricks). Returns the version."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models.resources import DatabricksServingEndpoint

    if len(model_name.split(".")) != 3 or not all(model_name.split(".")):
        raise JobError(f"model name must be <catalog>.<schema>.<model>, got {model_name!r}")
    if not llm_endpoint:
        raise JobError("no LLM endpoint given for the agent")
    try:
        mlflow.set_experiment(experiment)
        with mlflow.start_run(run_name="health_monitor_agent_registration"):
            mlflow.set_tag("run_type", RUN_TYPE)
            mlflow.log_params({"model_name": model_name, "llm_endpoint": llm_endpoint})
            info = mlflow.pyfunc.log_model(
                name="agent",
                python_model=str(MODEL_FILE),
                model_config={"llm_endpoint": llm_endpoint, "system_prompt": system_prompt()},
                registered_model_name=model_name,
                pip_requirements=list(PIP_REQUIREMENTS),
                resources=[DatabricksServingEndpoint(endpoint_name=llm_endpoint)],
                signature=signature(),
            )
    except MlflowException as exc:
        raise JobError(f"cannot log and register {model_name} in experiment {experiment}: {exc.message}") from exc
    version = str(info.registered_model_version)
    log.info("registered %s version %s (model %s); no alias set", model_name, version, info.model_uri)
    return version
