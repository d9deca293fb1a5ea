"""`mlflow-eval` end to end: a real MLflow store, the real anthropic and databricks-sdk clients talking to a
local stand-in for the serving endpoint and the Secrets API. The CLI is called in this process (`main(argv)`, as
the console script calls it); one test runs the real console script for its exit status and stderr line."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_jobs.errors import JobError
from agent_jobs.eval_agent.agent import AgentConfig, run_interactive
from agent_jobs.eval_agent.cli import main
from agent_jobs.runtime import detect_runtime
from conftest import Store
from inprocess import Result, call
from standin import TOKEN, StandIn

SCRIPT = str(Path(sys.executable).with_name("mlflow-eval"))


def clean(env: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "ANTHROPIC_", "DATABRICKS_", "MLFLOW_"))}
    return {**base, **env}


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> Result:
    return call(main, args, env=clean(env), cwd=cwd)


def run_script(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, *args], env=clean(env), cwd=cwd, capture_output=True, text=True, timeout=120)


def job_env(store: Store, volume: Path, base_url: str) -> dict[str, str]:
    return {
        "DB_IS_JOB": "TRUE", "DB_JOB_ID": "7", "DB_JOB_RUN_ID": "9",
        "MLFLOW_AGENT_VOLUME_PATH": str(volume), "MLFLOW_TRACKING_URI": store.uri,
        "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_AUTH_TOKEN": TOKEN, "DABS_MODEL": "databricks-claude-sonnet-4",
    }  # fmt: skip


class _Time:
    """The time module as the anthropic client sees it, its sleeps recorded instead of slept."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)


@pytest.fixture(autouse=True)
def retry_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """No test waits for the anthropic client's retry back-off: its sleeps are recorded (and asserted)."""
    import anthropic._base_client

    fake = _Time()
    monkeypatch.setattr(anthropic._base_client, "time", fake)
    return fake.sleeps


def state(directory: Path) -> dict:
    return json.loads((directory / "state.json").read_text())


def test_simulated_job_writes_its_session_under_the_volume(
    mlflow_store: Store, standin: StandIn, tmp_path: Path
) -> None:
    """Done when: in a (simulated) job the session lands in <volume>/sessions/job-7-run-9 with its state,
    log and report; the model was asked about this experiment's runs, with the bearer token."""
    env = job_env(mlflow_store, tmp_path / "volume", f"{standin.url}/serving-endpoints/anthropic")
    result = run_cli(["--autonomous", "--experiment-id", mlflow_store.experiment_id], env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    session = tmp_path / "volume" / "sessions" / "job-7-run-9"
    assert sorted(p.name for p in session.iterdir()) == ["report.md", "session.log", "state.json"]
    s = state(session)
    assert s["status"] == "completed" and s["runs_analysed"] == 3 and s["experiment_name"] == "agent-quality"
    assert s["runtime"] == {"context": "databricks_job", "job_id": "7", "job_run_id": "9"}
    assert s["usage"] == {"input_tokens": 321, "output_tokens": 42}
    report = (session / "report.md").read_text()
    assert "The runs look healthy." in report and "| relevance/mean | 3 |" in report
    (post,) = standin.posts()
    assert post["path"] == "/serving-endpoints/anthropic/v1/messages"
    assert post["headers"]["Authorization"] == f"Bearer {TOKEN}" and "x-api-key" not in {
        h.lower() for h in post["headers"]
    }
    assert post["body"]["model"] == "databricks-claude-sonnet-4"
    prompt = post["body"]["messages"][0]["content"]
    assert "agent-quality" in prompt and "prompt-v3" in prompt and "safety/mean" in prompt
    assert "MLflow evaluation agent" in post["body"]["system"]
    log = (session / "session.log").read_text()
    assert "read experiment" in log and "report written" in log
    assert "INFO" in result.stdout  # logging, not print, to the job's output


def test_unreachable_endpoint_fails_the_run_and_says_so(
    mlflow_store: Store, closed_port_url: str, tmp_path: Path, retry_sleeps: list[float]
) -> None:
    """Done when: without a reachable endpoint the run exits non-zero and its state says why (after the
    client's two retries)."""
    env = job_env(mlflow_store, tmp_path / "volume", closed_port_url)
    result = run_cli(["--autonomous", "--experiment-id", mlflow_store.experiment_id], env, tmp_path)
    assert result.returncode != 0
    session = tmp_path / "volume" / "sessions" / "job-7-run-9"
    s = state(session)
    assert s["status"] == "failed" and s["error"].startswith(f"serving endpoint unreachable at {closed_port_url}")
    assert "finished_at" in s and not (session / "report.md").exists()
    assert "serving endpoint unreachable" in (session / "session.log").read_text()
    assert "serving endpoint unreachable" in result.stdout + result.stderr
    assert len(retry_sleeps) == 2


@pytest.mark.parametrize(("status", "expected"), [(500, "HTTP 500"), (401, "HTTP 401")])
def test_endpoint_errors_are_named(
    mlflow_store: Store, standin: StandIn, tmp_path: Path, status: int, expected: str, retry_sleeps: list[float]
) -> None:
    """A refused or failing endpoint is reported with its HTTP status; a 500 is retried twice, a 401 never."""
    standin.status = status
    env = job_env(mlflow_store, tmp_path, f"{standin.url}/serving-endpoints/anthropic")
    if status == 401:
        standin.status, env["ANTHROPIC_AUTH_TOKEN"] = 200, "wrong-token"
    result = run_cli(["-a", "-e", mlflow_store.experiment_id], env, tmp_path)
    assert result.returncode != 0
    assert expected in state(tmp_path / "sessions" / "job-7-run-9")["error"]
    assert len(retry_sleeps) == (2 if status == 500 else 0)


def test_missing_experiment_is_a_clear_failure(mlflow_store: Store, standin: StandIn, tmp_path: Path) -> None:
    env = job_env(mlflow_store, tmp_path, f"{standin.url}/serving-endpoints/anthropic")
    result = run_cli(["-a", "-e", "999999"], env, tmp_path)
    assert result.returncode != 0
    assert "999999" in state(tmp_path / "sessions" / "job-7-run-9")["error"]
    assert not standin.posts()


def test_local_run_uses_local_sessions_and_a_one_line_error(mlflow_store: Store, tmp_path: Path) -> None:
    """Locally (no job): sessions/<timestamp> under the working directory; a failure is one stderr line. (The real
    console script: its exit status and stderr are the promise.)"""
    env = {"MLFLOW_TRACKING_URI": mlflow_store.uri, "ANTHROPIC_BASE_URL": "http://127.0.0.1:9/x"}
    result = run_script(["-a", "-e", mlflow_store.experiment_id], env, tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "mlflow-eval: error: no serving token: set ANTHROPIC_AUTH_TOKEN, or pass --token-secret <scope>/<key>"
    )
    assert "Traceback" not in result.stderr
    (session,) = (tmp_path / "sessions").iterdir()
    assert state(session)["status"] == "failed" and state(session)["runtime"]["context"] == "local"


def test_token_is_read_from_the_secret_scope(mlflow_store: Store, standin: StandIn, tmp_path: Path) -> None:
    """In a job the token is never a value: --token-secret names it and databricks-sdk reads it at run time."""
    env = job_env(mlflow_store, tmp_path, f"{standin.url}/serving-endpoints/anthropic")
    del env["ANTHROPIC_AUTH_TOKEN"]
    env.update(DATABRICKS_HOST=standin.url, DATABRICKS_TOKEN="dapi-job-identity")
    args = ["-a", "-e", mlflow_store.experiment_id, "--token-secret", "mlflow-eval/databricks-token"]
    result = run_cli(args, env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    secret_get = next(r for r in standin.requests if r["path"] == "/api/2.0/secrets/get")
    assert secret_get["headers"]["Authorization"] == "Bearer dapi-job-identity"
    assert standin.posts()[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"
    missing = run_cli([*args[:-1], "mlflow-eval/nope"], env, tmp_path)
    assert missing.returncode != 0 and "cannot read secret mlflow-eval/nope" in missing.stderr


def test_interactive_mode_is_refused_in_a_job(mlflow_store: Store, tmp_path: Path) -> None:
    """Seed 000 step 7: interactive mode inside a job fails at once with a clear message."""
    env = job_env(mlflow_store, tmp_path, "http://127.0.0.1:9/x")
    result = run_cli(["--interactive", "-e", mlflow_store.experiment_id], env, tmp_path)
    assert result.returncode != 0
    assert "interactive mode is not supported in a Databricks job" in result.stderr


def test_interactive_mode_answers_questions_locally(
    mlflow_store: Store, standin: StandIn, clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locally, questions are answered with the experiment as context and kept in a transcript."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store.uri)
    config = AgentConfig(
        experiment_id=mlflow_store.experiment_id,
        base_url=f"{standin.url}/serving-endpoints/anthropic",
        model="m",
        token=lambda: TOKEN,
        runtime=detect_runtime({}),
    )
    out = io.StringIO()
    session = run_interactive(config, io.StringIO("which run is best?\nexit\n"), out)
    assert "The runs look healthy." in out.getvalue()
    assert "agent-quality" in standin.posts()[0]["body"]["system"]
    assert "which run is best?" in (session.directory / "transcript.md").read_text()
    assert session.state["status"] == "completed" and session.state["questions"] == 1


def test_bad_token_secret_reference_is_refused() -> None:
    from agent_jobs.eval_agent.cli import token_source

    with pytest.raises(JobError, match="must be <scope>/<key>"):
        token_source("just-a-scope", {})
