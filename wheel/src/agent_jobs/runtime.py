"""Where the code runs: a Databricks job or a local shell (seed 000 steps 2, 3, 4 and 7).

A job run is recognised by DB_IS_JOB=TRUE (with DB_JOB_ID and DB_JOB_RUN_ID), or by the job and run ids the
job passes as parameters ({{job.id}}, {{job.run_id}}), which works on serverless compute too. Sessions go
under <MLFLOW_AGENT_VOLUME_PATH>/sessions when a volume is configured, ./sessions otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path

from agent_jobs.errors import JobError

VOLUME_ENV = "MLFLOW_AGENT_VOLUME_PATH"


class RuntimeContext(Enum):
    LOCAL = "local"
    DATABRICKS_JOB = "databricks_job"


@dataclass(frozen=True)
class RuntimeInfo:
    context: RuntimeContext
    job_id: str | None = None
    job_run_id: str | None = None
    volume_path: str | None = None

    @property
    def in_job(self) -> bool:
        return self.context is RuntimeContext.DATABRICKS_JOB


def _present(value: str | None) -> str | None:
    """Treat empty values and unresolved references ('{{job.id}}' outside a job) as absent."""
    if value is None or not value.strip() or value.startswith("{{"):
        return None
    return value.strip()


def detect_runtime(
    env: Mapping[str, str] | None = None,
    job_id: str | None = None,
    job_run_id: str | None = None,
    volume_path: str | None = None,
) -> RuntimeInfo:
    """The runtime from the environment, with values passed by the job (parameters) taking precedence."""
    env = os.environ if env is None else env
    job_id = _present(job_id) or _present(env.get("DB_JOB_ID"))
    job_run_id = _present(job_run_id) or _present(env.get("DB_JOB_RUN_ID"))
    volume = _present(volume_path) or _present(env.get(VOLUME_ENV))
    in_job = env.get("DB_IS_JOB", "").upper() == "TRUE" or (job_id is not None and job_run_id is not None)
    if in_job:
        return RuntimeInfo(RuntimeContext.DATABRICKS_JOB, job_id, job_run_id, volume)
    return RuntimeInfo(RuntimeContext.LOCAL, volume_path=volume)


def sessions_base_path(runtime: RuntimeInfo) -> Path:
    """<volume>/sessions when a volume is configured, ./sessions otherwise."""
    return Path(runtime.volume_path) / "sessions" if runtime.volume_path else Path("sessions")


def session_id(runtime: RuntimeInfo, env: Mapping[str, str] | None = None, now: datetime | None = None) -> str:
    """SESSION_ID wins; in a job 'job-<job_id>-run-<run_id>'; locally a UTC timestamp."""
    env = os.environ if env is None else env
    explicit = _present(env.get("SESSION_ID"))
    if explicit:
        return explicit
    if runtime.job_id and runtime.job_run_id:
        return f"job-{runtime.job_id}-run-{runtime.job_run_id}"
    return (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d_%H%M%S")


def refuse_interactive_in_job(runtime: RuntimeInfo) -> None:
    """Interactive mode waits for a person at a terminal; a job has none and would hang until its timeout."""
    if runtime.in_job:
        raise JobError(
            "interactive mode is not supported in a Databricks job (no terminal to answer it); "
            "run the job with --autonomous, or run interactive mode locally"
        )
