"""The agent's prompts in the MLflow prompt registry (the seed's `register_prompts` task).

The texts ship in the wheel (agent_jobs/health_monitor/prompts/<name>.md), so the registry holds exactly
what the code was built with. On Databricks the registry is Unity Catalog and a prompt is named
<catalog>.<schema>.<prompt>, beside the agent's model. A text equal to the latest registered version is
not registered again, so rerunning the setup job adds no versions and version numbers mean changes.
"""

from __future__ import annotations

import logging
from importlib import metadata
from typing import Any

from agent_jobs.errors import JobError
from agent_jobs.prompting import load

log = logging.getLogger(__name__)

PROMPTS: tuple[str, ...] = (
    "orchestrator_system",
    "intent_classifier",
    "response_synthesizer",
    "cost_worker",
    "security_worker",
    "performance_worker",
    "reliability_worker",
    "quality_worker",
)
RUN_TYPE = "prompt_registration"
PACKAGE = "agent_jobs.health_monitor"  # the texts: health_monitor/prompts/<name>.md


def prompt_text(name: str) -> str:
    """The shipped text of one of PROMPTS."""
    if name not in PROMPTS:
        raise JobError(f"unknown prompt {name!r}; known prompts: {', '.join(PROMPTS)}")
    return load(PACKAGE, name)


def latest_version(client: Any, full_name: str) -> Any:
    """The highest registered version of a prompt (a PromptVersion), or None when it is not registered."""
    if client.get_prompt(full_name) is None:
        return None
    versions: list[Any] = []
    token = None
    while True:
        page = client.search_prompt_versions(full_name, max_results=100, page_token=token)
        versions.extend(page)
        token = page.token
        if not token:
            break
    return max(versions, key=lambda v: int(v.version), default=None)


def _wheel_version() -> str:
    try:
        return metadata.version("agent_jobs")
    except metadata.PackageNotFoundError:
        return "unknown"


def register_prompt(client: Any, full_name: str, text: str) -> tuple[int, bool]:
    """Register `text` as a new version of `full_name` unless the latest version has the same text.
    Returns (version, registered)."""
    import mlflow

    latest = latest_version(client, full_name)
    if latest is not None and latest.template == text:
        log.info("prompt %s unchanged, keeping version %s", full_name, latest.version)
        return int(latest.version), False
    version = mlflow.genai.register_prompt(
        name=full_name,
        template=text,
        commit_message=f"health-monitor setup (agent_jobs {_wheel_version()})",
        tags={"agent": "health_monitor"},
    )
    log.info("registered prompt %s version %s", full_name, version.version)
    return int(version.version), True


def register_prompts(catalog: str, schema: str, *, experiment: str | None = None) -> dict[str, int]:
    """Register every prompt of PROMPTS as <catalog>.<schema>.<prompt> inside an MLflow run tagged
    run_type=prompt_registration (in `experiment`, a path or name, when given; else the active one).
    Returns the full prompt name -> its current version."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if experiment:
        mlflow.set_experiment(experiment)
    client = mlflow.MlflowClient()
    versions: dict[str, int] = {}
    registered = 0
    with mlflow.start_run(run_name=RUN_TYPE):
        mlflow.set_tag("run_type", RUN_TYPE)
        for name in PROMPTS:
            full_name = f"{catalog}.{schema}.{name}"
            try:
                versions[full_name], new = register_prompt(client, full_name, prompt_text(name))
            except MlflowException as exc:
                raise JobError(
                    f"cannot register prompt {full_name} in {mlflow.get_registry_uri()}: {exc.message}"
                ) from exc
            registered += new
        mlflow.log_params({"prompt_count": len(PROMPTS), "new_versions": registered})
        mlflow.log_dict(versions, "prompt_versions.json")
    log.info("prompts: %d registered, %d unchanged", registered, len(PROMPTS) - registered)
    return versions
