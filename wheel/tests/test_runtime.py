"""Runtime detection, session placement and ids (seed 000 steps 2-4, 7; its testing checklist 1-3)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from agent_jobs.errors import JobError
from agent_jobs.runtime import (
    RuntimeContext,
    detect_runtime,
    refuse_interactive_in_job,
    session_id,
    sessions_base_path,
)


def test_local_run_uses_local_sessions() -> None:
    """Checklist 1: local development is unchanged; sessions go to ./sessions."""
    runtime = detect_runtime({})
    assert runtime.context is RuntimeContext.LOCAL
    assert sessions_base_path(runtime) == Path("sessions")
    now = datetime(2026, 11, 23, 9, 30, 5, tzinfo=timezone.utc)
    assert session_id(runtime, {}, now) == "2026-11-23_093005"


def test_volume_path_is_used_when_set() -> None:
    """Checklist 2: MLFLOW_AGENT_VOLUME_PATH puts sessions on the volume."""
    runtime = detect_runtime({"MLFLOW_AGENT_VOLUME_PATH": "/tmp/test"})
    assert sessions_base_path(runtime) == Path("/tmp/test/sessions")


def test_simulated_job_gives_job_aware_session_ids() -> None:
    """Checklist 3: DB_IS_JOB=TRUE with job and run ids gives job-<job>-run-<run>."""
    runtime = detect_runtime({"DB_IS_JOB": "TRUE", "DB_JOB_ID": "7", "DB_JOB_RUN_ID": "9"})
    assert runtime.in_job and session_id(runtime, {}) == "job-7-run-9"


def test_values_passed_by_the_job_are_enough() -> None:
    """On serverless the DB_* variables may be missing: {{job.id}} and {{job.run_id}} parameters suffice,
    and they win over the environment."""
    runtime = detect_runtime({"DB_JOB_ID": "1"}, job_id="123", job_run_id="456", volume_path="/Volumes/c/s/v")
    assert runtime.in_job and (runtime.job_id, runtime.job_run_id) == ("123", "456")
    assert sessions_base_path(runtime) == Path("/Volumes/c/s/v/sessions")


def test_unresolved_references_do_not_count() -> None:
    """Running the job's command line by hand leaves '{{job.id}}' literal: that is not a job run."""
    runtime = detect_runtime({}, job_id="{{job.id}}", job_run_id="{{job.run_id}}", volume_path="")
    assert runtime.context is RuntimeContext.LOCAL and runtime.volume_path is None


def test_explicit_session_id_wins() -> None:
    runtime = detect_runtime({"DB_IS_JOB": "TRUE", "DB_JOB_ID": "7", "DB_JOB_RUN_ID": "9"})
    assert session_id(runtime, {"SESSION_ID": "replay-1"}) == "replay-1"


def test_interactive_mode_is_refused_in_a_job() -> None:
    """A job has no terminal: interactive mode would hang until the timeout, so it fails at once."""
    with pytest.raises(JobError, match="interactive mode is not supported in a Databricks job"):
        refuse_interactive_in_job(detect_runtime({"DB_IS_JOB": "TRUE"}))
    refuse_interactive_in_job(detect_runtime({}))
