"""Seed 003's two jobs: the executor on real files (succeeding, failing, hanging and missing artifacts), the
orchestrator through the real databricks-sdk against the local stand-in, whose executor job really runs the
executor (lost responses, auth fallback and failures included). Faults and hostile input: test_faults_*.py."""

from __future__ import annotations

import json
import logging
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from faultkit import FakeClock, run_main, sdk_client

from agent_jobs import logs
from agent_jobs.errors import JobError
from agent_jobs.rlm import executor, orchestrator
from agent_jobs.rlm.telemetry import COLUMNS, create_table_sql
from standin import StandIn

EXECUTOR_JOB = 42


def artifact(directory: Path, code: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "artifact.py"
    path.write_text(textwrap.dedent(code))
    return path


class Finished:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def run_executor(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """`rlm-executor` as its console script runs it, in-process: exit status, stdout, stderr."""
    for name in ("DB_IS_JOB", "DB_JOB_ID", "DB_JOB_RUN_ID", "DATABRICKS_HOST", "DATABRICKS_TOKEN"):
        monkeypatch.delenv(name, raising=False)

    def run(args: list[str], env: dict[str, str] | None = None) -> Finished:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        code = run_main(executor.main, args)
        out, err = capsys.readouterr()
        return Finished(code, out, err)

    yield run
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == logs._HANDLER_NAME]:
        root.removeHandler(handler)


def running(pid: int) -> bool:
    """Alive and not a zombie (a killed orphan may wait for a parent that never reaps it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def result_of(path: Path) -> dict[str, Any]:
    return json.loads(path.with_name("result.json").read_text())


def telemetry_rows(directory: Path) -> list[dict[str, Any]]:
    path = directory / "telemetry.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# --- executor


def test_succeeding_artifact_writes_its_result_and_a_telemetry_row(tmp_path: Path, run_executor: Any) -> None:
    """The artifact sees its run id and iteration; its last output line becomes the result's output."""
    code = """
        import json, os
        print("working")
        print(json.dumps({"done": True, "iteration": os.environ["RLM_ITERATION"], "run": os.environ["RLM_RUN_ID"]}))
    """
    path = artifact(tmp_path / "iter-1", code)
    result = run_executor(["--artifact-path", str(path), "--run-id", "sess-1", "--iteration", "1"])
    assert result.returncode == 0, result.stderr
    r = result_of(path)
    assert (r["status"], r["exit_code"]) == ("succeeded", 0)
    assert r["output"] == {"done": True, "iteration": "1", "run": "sess-1"}
    assert not list(path.parent.glob(".*.tmp"))  # written whole, by rename
    (row,) = telemetry_rows(path.parent)
    assert list(row) == [c["name"] for c in COLUMNS]
    assert (row["source"], row["event"], row["status"], row["session_id"]) == (
        "executor",
        "result",
        "succeeded",
        "sess-1",
    )


def test_failing_artifact_gives_a_failed_result_holding_the_error(tmp_path: Path, run_executor: Any) -> None:
    """Never a crash without output: the result says what failed, then the task fails."""
    path = artifact(tmp_path / "iter-1", "raise ValueError('bad input table')\n")
    result = run_executor(["--artifact-path", str(path), "--run-id", "s", "--iteration", "1"])
    assert result.returncode == 1
    assert (
        "rlm-executor: error: artifact failed: artifact exited with status 1: ValueError: bad input table"
        in result.stderr
    )
    r = result_of(path)
    assert r["status"] == "failed" and "ValueError: bad input table" in r["error"] and "Traceback" in r["stderr_tail"]
    assert telemetry_rows(path.parent)[0]["status"] == "failed"


def test_hanging_artifact_is_stopped_at_the_timeout(tmp_path: Path, run_executor: Any) -> None:
    """A hanging artifact (and the process it started) is stopped; the result says it timed out."""
    code = """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open("child.pid", "w").write(str(child.pid))
        time.sleep(600)
    """
    path = artifact(tmp_path / "iter-1", code)
    started = time.monotonic()
    result = run_executor(["--artifact-path", str(path), "--run-id", "s", "--timeout-seconds", "1"])
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    r = result_of(path)
    assert r["status"] == "timed_out" and "did not finish within 1 seconds" in r["error"]
    child = int((path.parent / "child.pid").read_text())
    assert not running(child)  # everything it started was stopped


def test_missing_artifact_is_a_failed_result(tmp_path: Path, run_executor: Any) -> None:
    (tmp_path / "iter-1").mkdir()
    result = run_executor(["--artifact-path", str(tmp_path / "iter-1" / "artifact.py"), "--run-id", "s"])
    assert result.returncode == 1
    assert "does not exist" in result_of(tmp_path / "iter-1" / "artifact.py")["error"]


def test_secrets_reach_the_artifact_only_through_its_environment(
    tmp_path: Path, standin: StandIn, run_executor: Any
) -> None:
    """GOOGLE_API_KEY is read from the scope at run time and handed to the artifact, never to the result."""
    standin.secrets[("adk-secrets", "google-api-key")] = "AIza-secret-value"
    code = """
        import hashlib, json, os
        print(json.dumps({"key_sha": hashlib.sha256(os.environ["GOOGLE_API_KEY"].encode()).hexdigest()}))
    """
    path = artifact(tmp_path / "iter-1", code)
    env = {"DATABRICKS_HOST": standin.url, "DATABRICKS_TOKEN": "dapi-job-identity"}
    args = ["--artifact-path", str(path), "--run-id", "s", "--env-secret", "GOOGLE_API_KEY=adk-secrets/google-api-key"]
    result = run_executor(args, env)
    assert result.returncode == 0, result.stderr
    import hashlib

    assert result_of(path)["output"]["key_sha"] == hashlib.sha256(b"AIza-secret-value").hexdigest()
    assert "AIza-secret-value" not in path.with_name("result.json").read_text() + result.stdout + result.stderr


def test_telemetry_goes_through_the_warehouse_when_one_is_configured(
    tmp_path: Path, standin: StandIn, run_executor: Any
) -> None:
    """With a warehouse, the table is created if missing (the one column definition) and the row inserted
    with parameters, through the Statement Execution API."""
    path = artifact(tmp_path / "iter-1", "print('{}')\n")
    env = {"DATABRICKS_HOST": standin.url, "DATABRICKS_TOKEN": "dapi-job-identity"}
    args = ["--artifact-path", str(path), "--run-id", "s", "--iteration", "3", "--catalog", "main",
            "--schema", "agents_dev", "--telemetry-warehouse-id", "1a2b3c4d5e6f7a8b"]  # fmt: skip
    assert run_executor(args, env).returncode == 0
    create, insert = standin.statements
    assert create["statement"] == create_table_sql("main.agents_dev.telemetry")
    assert create["warehouse_id"] == "1a2b3c4d5e6f7a8b"
    assert insert["statement"].startswith("INSERT INTO main.agents_dev.telemetry (event_time, source, event,")
    values = {p["name"]: p.get("value") for p in insert["parameters"]}
    assert (values["source"], values["iteration"], values["status"]) == ("executor", "3", "succeeded")
    assert not (path.parent / "telemetry.jsonl").exists()


# --- orchestrator


AGENT_CODE = """
    import json, os
    iteration = int(os.environ["RLM_ITERATION"])
    previous = os.environ["RLM_PREVIOUS_RESULT"]
    seen = json.load(open(previous))["output"]["iteration"] if previous else 0
    print(json.dumps({"iteration": iteration, "previous": seen, "done": iteration >= 2}))
"""


def executor_job(parameters: dict[str, str]) -> str:
    """The stand-in's executor job: runs the real executor with the run's parameters."""
    args = executor.build_parser().parse_args(
        ["--artifact-path", parameters["artifact_path"], "--run-id", parameters["run_id"],
         "--iteration", parameters["iteration"], "--previous-result", parameters["previous_result"]]
    )  # fmt: skip
    try:
        executor.record(args, executor.execute(args))
    except JobError:
        return "FAILED"
    return "SUCCESS"


def orchestrator_args(tmp_path: Path, code: str = AGENT_CODE, *extra: str) -> Any:
    code_path = tmp_path / "agent_code" / "agent_code_raw.py"
    code_path.parent.mkdir(parents=True, exist_ok=True)
    code_path.write_text(textwrap.dedent(code))
    return orchestrator.build_parser().parse_args(
        ["--executor-job-id", str(EXECUTOR_JOB), "--artifacts-path", str(tmp_path / "artifacts"),
         "--agent-code-path", str(code_path), "--session-id", "sess-1", "--poll-seconds", "0.01", *extra]
    )  # fmt: skip


NO_WAIT = orchestrator.Clock(sleep=lambda _: None)


@pytest.fixture
def workspace(standin: StandIn, monkeypatch: pytest.MonkeyPatch) -> WorkspaceClient:
    standin.job_handlers[EXECUTOR_JOB] = executor_job
    monkeypatch.setenv("DATABRICKS_HOST", standin.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-job-identity")
    for name in ("DB_IS_JOB", "DB_JOB_ID", "DB_JOB_RUN_ID", "DATABRICKS_CONFIG_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return sdk_client(standin.url, FakeClock())  # the SDK's own retries sleep on a fake clock


def test_loop_submits_the_executor_until_the_artifact_is_done(
    tmp_path: Path, standin: StandIn, workspace: WorkspaceClient
) -> None:
    """Each iteration writes an artifact, submits one executor run with its own token, waits, reads the
    result; the artifact's {"done": true} ends the loop, and everything is recorded."""
    summary = orchestrator.orchestrate(orchestrator_args(tmp_path), workspace, "job identity", NO_WAIT)
    assert summary["status"] == "completed" and len(summary["iterations"]) == 2
    assert [r["job_id"] for r in standin.runs.values()] == [EXECUTOR_JOB, EXECUTOR_JOB]
    first, second = (r["token"] for r in standin.runs.values())
    assert first.startswith("rlm-sess-1-") and first.endswith("-1") and second == first[:-1] + "2"
    session = tmp_path / "artifacts" / "sess-1"
    second = json.loads((session / "iter-2" / "result.json").read_text())
    assert second["output"] == {"iteration": 2, "previous": 1, "done": True}
    submission = json.loads((session / "iter-1" / "submission.json").read_text())
    assert submission["executor_run_id"] == 1000 and submission["idempotency_token"] == first
    assert submission["run_page_url"].endswith("/#job/42/run/1000")
    assert json.loads((session / "session.json").read_text())["status"] == "completed"
    events = [(r["source"], r["event"], r["iteration"]) for r in telemetry_rows(session)]
    assert events == [("orchestrator", "submitted", 1), ("orchestrator", "finished", 1),
                      ("orchestrator", "submitted", 2), ("orchestrator", "finished", 2)]  # fmt: skip
    assert telemetry_rows(session / "iter-1")[0]["source"] == "executor"
    polls = standin.calls("/api/2.2/jobs/runs/get")
    assert len(polls) >= 6  # each run followed through PENDING, RUNNING, TERMINATED


def test_a_retried_submission_starts_exactly_one_executor_run(
    tmp_path: Path, standin: StandIn, workspace: WorkspaceClient
) -> None:
    """The first run-now's response is lost after the run started; the SDK retries with the same
    idempotency token and gets the same run back: two requests, one run."""
    standin.drop_run_now = 1
    code = "import json; print(json.dumps({'done': True}))\n"
    summary = orchestrator.orchestrate(orchestrator_args(tmp_path, code), workspace, "job identity", NO_WAIT)
    requests = standin.posts("/api/2.2/jobs/run-now")
    assert len(requests) == 2
    (token,) = {r["body"]["idempotency_token"] for r in requests}
    assert token.startswith("rlm-sess-1-") and token.endswith("-1")
    assert len(standin.runs) == 1
    assert summary["iterations"][0]["executor_run_id"] == 1000


def test_a_failing_executor_run_fails_the_orchestrator_with_its_error(
    tmp_path: Path, standin: StandIn, workspace: WorkspaceClient
) -> None:
    code = "raise RuntimeError('model produced invalid SQL')\n"
    with pytest.raises(JobError, match=r"iteration 1: executor run 1000 FAILED, result failed: .*invalid SQL"):
        orchestrator.orchestrate(orchestrator_args(tmp_path, code), workspace, "job identity", NO_WAIT)
    session = json.loads((tmp_path / "artifacts" / "sess-1" / "session.json").read_text())
    assert session["status"] == "failed" and len(standin.runs) == 1


def test_waiting_is_bounded(tmp_path: Path, standin: StandIn, workspace: WorkspaceClient) -> None:
    """A run that never ends is given up on after the timeout, with backoff between checks."""
    standin.polls_to_finish = 10**6
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    clock = orchestrator.Clock(sleep=sleep, now=lambda: now[0])
    args = orchestrator_args(tmp_path, AGENT_CODE, "--run-timeout-seconds", "30", "--max-poll-seconds", "8")
    args.poll_seconds = 1.0
    with pytest.raises(JobError, match="did not finish within 30 seconds"):
        orchestrator.orchestrate(args, workspace, "job identity", clock)
    assert sleeps[:5] == [1.0, 2.0, 4.0, 8.0, 8.0] and sum(sleeps) <= 30


def test_auth_falls_back_to_the_pat_in_the_scope(standin: StandIn, workspace: WorkspaceClient) -> None:
    """The job's identity first; when it is refused, the PAT and host from the secret scope."""
    standin.denied.add("dapi-job-identity")
    standin.secrets[("adk-secrets", "databricks-token")] = "dapi-fallback-pat"
    standin.secrets[("adk-secrets", "databricks-host")] = standin.url
    client, auth = orchestrator.connect("adk-secrets/databricks-token", "adk-secrets/databricks-host")
    assert auth == "PAT from secret scope"
    client.jobs.run_now(job_id=EXECUTOR_JOB, idempotency_token="t")
    assert standin.posts("/api/2.2/jobs/run-now")[-1]["headers"]["Authorization"] == "Bearer dapi-fallback-pat"


def test_auth_uses_the_job_identity_when_it_works(standin: StandIn, workspace: WorkspaceClient) -> None:
    _, auth = orchestrator.connect("adk-secrets/databricks-token", None)
    assert auth == "job identity"
    assert not standin.calls("/api/2.0/secrets/get")


def test_refused_identity_without_fallback_is_a_clear_error(standin: StandIn, workspace: WorkspaceClient) -> None:
    standin.denied.add("dapi-job-identity")
    with pytest.raises(JobError, match=r"the job's identity cannot use the Jobs API .* no fallback token configured"):
        orchestrator.connect(None, None)


def test_idempotency_tokens_fit_the_jobs_api() -> None:
    """At most 64 characters, distinct per attempt and iteration, readable when they fit."""
    key = orchestrator.attempt_key("912345678901234", "2", "job-7-run-9")
    assert orchestrator.idempotency_token(key, 3) == "rlm-912345678901234-2-3"
    long = orchestrator.idempotency_token("x" * 80, 12)
    assert len(long) <= 64 and long.endswith("-12") and long != orchestrator.idempotency_token("y" * 80, 12)


@pytest.mark.parametrize(
    ("args", "expected"),
    [(["--executor-job-id", "abc"], "'abc' is not a whole number of at least 1"),
     (["--executor-job-id", "42", "--max-iterations", "0"], "'0' is not a whole number of at least 1")],
)  # fmt: skip
def test_bad_orchestrator_arguments_are_usage_errors(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong parameter is a usage error at start-up, not a submission retried three times."""
    base = ["--artifacts-path", "/tmp/a", "--agent-code-path", "/tmp/a.py"]
    assert run_main(orchestrator.main, [*base, *args]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_missing_agent_code_is_a_clear_error(tmp_path: Path, workspace: WorkspaceClient) -> None:
    args = orchestrator_args(tmp_path)
    args.agent_code_path = str(tmp_path / "nope.py")
    with pytest.raises(JobError, match=r"the agent's code .*nope.py does not exist"):
        orchestrator.orchestrate(args, workspace, "job identity", NO_WAIT)
