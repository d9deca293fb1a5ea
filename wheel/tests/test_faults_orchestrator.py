"""`rlm-orchestrator` under faults (issue #11): the real databricks-sdk against the stand-in with scripted faults
on the Jobs and SQL APIs (500s, 500 after the run was created, lost responses, resets, slow answers), results
of the wrong shape, runs that never end, refused identities, repairs and bad arguments. The stand-in's
executor job runs the real executor. No test sleeps for back-off: the SDK and the orchestrator share a fake
clock, whose sleeps are asserted. Every case ends with session.json written and listing every run started."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from faultkit import FakeClock, leaks, run_main, sdk_client, survivors

from agent_jobs.errors import JobError
from agent_jobs.rlm import executor, orchestrator
from standin import Fault, StandIn

EXECUTOR_JOB = 42
RUN_GET, RUN_NOW, CANCEL = "/api/2.2/jobs/runs/get", "/api/2.2/jobs/run-now", "/api/2.2/jobs/runs/cancel"
DONE = 'import json, os; print("using", os.environ["GOOGLE_API_KEY"]); print(json.dumps({"done": True}))\n'
PAT = "dapi-fallback-pat-0123456789abcdef"
SECRET = "AIzaSyFAKE-orchestrated-artifact-key-77"


def real_executor(parameters: dict[str, str]) -> str:
    """The stand-in's executor job: the real executor on the run's parameters, with the artifact's key."""
    args = executor.build_parser().parse_args(
        ["--artifact-path", parameters["artifact_path"], "--run-id", parameters["run_id"],
         "--iteration", parameters["iteration"], "--previous-result", parameters["previous_result"],
         "--env-secret", "GOOGLE_API_KEY=adk-secrets/google-api-key"]
    )  # fmt: skip
    try:
        executor.record(args, executor.execute(args, drain_seconds=0.2))
    except JobError:
        return "FAILED"
    return "SUCCESS"


def writes_result(content: str) -> Callable[[dict[str, str]], str]:
    """An executor job that writes `content` as result.json (or nothing, for None) and succeeds."""

    def job(parameters: dict[str, str]) -> str:
        if content:
            Path(parameters["artifact_path"]).with_name("result.json").write_text(content)
        return "SUCCESS"

    return job


@dataclass
class World:
    standin: StandIn
    clock: FakeClock
    tmp: Path
    session: str

    def args(self, *extra: str, code: str = DONE) -> Any:
        code_path = self.tmp / "agent_code" / "agent_code_raw.py"
        code_path.parent.mkdir(parents=True, exist_ok=True)
        code_path.write_text(textwrap.dedent(code))
        return orchestrator.build_parser().parse_args(
            ["--executor-job-id", str(EXECUTOR_JOB), "--artifacts-path", str(self.tmp / "artifacts"),
             "--agent-code-path", str(code_path), "--session-id", self.session, "--poll-seconds", "1",
             "--max-poll-seconds", "4", *extra]
        )  # fmt: skip

    @property
    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.tmp / "artifacts" / self.session / "session.json").read_text()))


@pytest.fixture
def world(standin: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    standin.job_handlers[EXECUTOR_JOB] = real_executor
    standin.secrets[("adk-secrets", "google-api-key")] = SECRET
    for name in ("DB_IS_JOB", "DB_JOB_ID", "DB_JOB_RUN_ID", "DATABRICKS_CONFIG_PROFILE", "SESSION_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABRICKS_HOST", standin.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-job-identity")
    return World(standin, FakeClock(), tmp_path, f"s-{uuid.uuid4().hex[:10]}")


def orchestrate(world: World, *extra: str, code: str = DONE, **client: Any) -> tuple[dict[str, Any] | None, str]:
    """Run the loop; (its summary or None, the error it failed with or '')."""
    sdk = sdk_client(world.standin.url, world.clock, **client)
    try:
        return orchestrator.orchestrate(world.args(*extra, code=code), sdk, "job identity",
                                        world.clock.orchestrator_clock()), ""  # fmt: skip
    except JobError as exc:
        return None, str(exc)


def check_state(world: World, status: str) -> dict[str, Any]:
    """session.json says how the session ended and lists every run the stand-in started, with its URL; no
    form of the artifact's key is in any file of the run; nothing the artifacts started is running."""
    state = world.state
    assert leaks(SECRET, world.tmp) == []
    assert state["status"] == status and state["ended_at"]
    recorded = {r["executor_run_id"]: r for r in state["runs"]}
    assert set(recorded) == set(world.standin.runs)
    assert all(r["idempotency_token"] for r in recorded.values())
    assert all(r["run_page_url"] for r in recorded.values() if r["state"] == "finished")
    assert survivors(world.session) == []
    return state


@dataclass(frozen=True)
class Case:
    name: str
    setup: Callable[[StandIn], None]
    status: str = "completed"
    error: str = ""
    runs: int = 1
    client: dict[str, Any] = field(default_factory=dict)
    check: Callable[[World, dict[str, Any]], None] = field(default=lambda world, state: None)


def fault(method: str, path: str, *faults: Fault) -> Callable[[StandIn], None]:
    return lambda standin: standin.fault(method, path, *faults)


def one_token(world: World, state: dict[str, Any]) -> None:
    """Every run-now of the iteration carried the same token (and got the same run back)."""
    tokens = {r["body"]["idempotency_token"] for r in world.standin.posts(RUN_NOW)}
    assert len(world.standin.posts(RUN_NOW)) >= 2 and len(tokens) == 1


def retried_status(world: World, state: dict[str, Any]) -> None:
    assert world.standin.faults_taken and 1.0 in world.clock.sleeps


def cancelled(world: World, state: dict[str, Any]) -> None:
    (run,) = state["runs"]
    assert run["state"] == "cancelled" and world.standin.cancelled == [run["executor_run_id"]]


def abandoned(world: World, state: dict[str, Any]) -> None:
    (run,) = state["runs"]
    assert run["state"] == "abandoned" and "cancelling executor run" in run["cancel_error"]


def never_ends(standin: StandIn) -> None:
    standin.polls_to_finish = 10**6


def handler(job: Callable[[dict[str, str]], str]) -> Callable[[StandIn], None]:
    return lambda standin: standin.job_handlers.__setitem__(EXECUTOR_JOB, job)


def both(*setups: Callable[[StandIn], None]) -> Callable[[StandIn], None]:
    def setup(standin: StandIn) -> None:
        for each in setups:
            each(standin)

    return setup


ERRORS = [Fault("error", 500)] * 10
CASES = [
    Case("runs/get answers 500 once", fault("GET", RUN_GET, Fault("error", 500)), check=retried_status),
    Case("runs/get answers 503 three times", fault("GET", RUN_GET, *[Fault("error", 503)] * 3), check=retried_status),
    Case("runs/get loses its response", fault("GET", RUN_GET, Fault("drop"))),
    Case("runs/get answers slowly", fault("GET", RUN_GET, Fault("delay", seconds=0.4)),
         client={"http_timeout_seconds": 0.1}),
    Case("run-now answers 500 before creating the run", fault("POST", RUN_NOW, Fault("error", 500)), check=one_token),
    Case("run-now answers 500 after creating the run", fault("POST", RUN_NOW, Fault("error_after", 500)),
         check=one_token),
    Case("run-now loses its response", fault("POST", RUN_NOW, Fault("drop")), check=one_token),
    Case("run-now's connection is reset", fault("POST", RUN_NOW, Fault("reset")), check=one_token),
    Case("run-now answers slowly", fault("POST", RUN_NOW, Fault("delay", seconds=0.4)),
         client={"http_timeout_seconds": 0.1}, check=one_token),
    Case("runs/get keeps failing", fault("GET", RUN_GET, *ERRORS), "failed",
         r"reading the state of executor run 1000 failed \(6 attempt\(s\)\).*was cancelled", check=cancelled),
    Case("runs/get and the cancel keep failing", both(fault("GET", RUN_GET, *ERRORS), fault("POST", CANCEL, *ERRORS)),
         "failed", r"the run was abandoned", check=abandoned),
    Case("the run never ends", never_ends, "failed", r"did not finish within 30 seconds.*was cancelled",
         check=cancelled),
    Case("result.json is null", handler(writes_result("null")), "failed", r"result invalid: .*holds null"),
    Case("result.json is a list", handler(writes_result("[1, 2]")), "failed", r"holds list, not an object"),
    Case("result.json has an unknown status", handler(writes_result('{"status": "great"}')), "failed",
         r"has status 'great'"),
    Case("result.json's output is a list", handler(writes_result('{"status": "succeeded", "output": [true]}')),
         "failed", r"has an output that is a list"),
    Case("result.json is missing", handler(writes_result("")), "failed", r"result missing: no readable result"),
    Case("result.json is not JSON", handler(writes_result("{not json")), "failed", r"no readable result"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_orchestrator_ends_with_its_session_state_whatever_fails(world: World, case: Case) -> None:
    """Transient faults are retried (one executor run per iteration, whatever was lost); permanent ones fail
    the iteration with the reason; a run given up on is cancelled or recorded as abandoned."""
    case.setup(world.standin)
    summary, error = orchestrate(world, "--run-timeout-seconds", "30", **case.client)
    assert bool(re.search(case.error, error)) if case.error else summary is not None, error
    assert len(world.standin.runs) == case.runs
    state = check_state(world, case.status)
    if case.error:
        assert state["error"] == error
    case.check(world, state)


def test_a_warehouse_error_on_telemetry_is_recorded_and_fails_the_run_at_the_end(world: World) -> None:
    """The loop is not stopped by telemetry: the session completes, records the errors and then fails."""
    world.standin.statement_error = "warehouse is stopped"
    summary, error = orchestrate(world, "--catalog", "main", "--schema", "a", "--telemetry-warehouse-id", "wh")
    assert summary is None and "session completed, but 2 telemetry row(s) were not written" in error
    state = check_state(world, "completed")
    assert len(state["telemetry_errors"]) == 2 and "warehouse is stopped" in state["telemetry_errors"][0]


def test_a_starting_warehouse_is_waited_for_on_the_same_clock(world: World) -> None:
    """A statement PENDING past the 50 s wait is polled (the orchestrator's clock), not reported as failed."""
    world.standin.statement_polls = 1
    summary, error = orchestrate(world, "--catalog", "main", "--schema", "a", "--telemetry-warehouse-id", "wh")
    assert summary is not None, error
    assert check_state(world, "completed")["telemetry_errors"] == [] and 2 in world.clock.sleeps


def test_a_repaired_run_gets_fresh_tokens_and_runs_the_fixed_code(world: World) -> None:
    """Attempt 1 fails; the repair (attempt 2, same job run id) submits new executor runs, with the fixed code,
    instead of getting the failed run back; each attempt keeps its own files."""
    job = ("--job-id", "7", "--job-run-id", "555")
    _, error = orchestrate(world, *job, "--attempt", "1", code="raise SystemExit('bug')\n")
    assert "bug" in error
    summary, error = orchestrate(world, *job, "--attempt", "2")
    assert summary is not None, error
    assert [r["token"] for r in world.standin.runs.values()] == ["rlm-555-1-1", "rlm-555-2-1"]
    session = world.tmp / "artifacts" / world.session
    assert json.loads((session / "iter-1" / "result.json").read_text())["status"] == "failed"
    assert json.loads((session / "attempt-2" / "iter-1" / "result.json").read_text())["output"] == {"done": True}
    assert world.state["attempt"] == 2 and world.state["status"] == "completed"


def test_the_console_script_exits_1_and_leaves_the_state(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As a console script (connecting from the environment): exit status 1, one line naming the failure,
    session.json saying the same."""
    world.standin.job_handlers[EXECUTOR_JOB] = writes_result("null")
    clock = world.clock.orchestrator_clock()
    monkeypatch.setattr(orchestrator, "Clock", lambda: clock)  # main's clock: no real waits between polls
    args = world.args()
    argv = ["--executor-job-id", "42", "--artifacts-path", args.artifacts_path, "--agent-code-path",
            args.agent_code_path, "--session-id", world.session]  # fmt: skip
    assert run_main(orchestrator.main, argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("rlm-orchestrator: error: iteration 1: executor run 1000 SUCCESS, result invalid")
    assert check_state(world, "failed")["error"] in err


def test_a_refused_identity_still_leaves_the_session_state(world: World) -> None:
    """Even the connection failing is recorded in session.json."""
    world.standin.denied.add("dapi-job-identity")
    with pytest.raises(JobError, match="no fallback token configured"):
        orchestrator.Orchestration(world.args(), world.clock.orchestrator_clock()).run(
            lambda: orchestrator.connect(None, None)
        )
    assert world.state["status"] == "failed" and "cannot use the Jobs API" in world.state["error"]


def test_the_fallback_pat_is_redacted_from_everything_recorded(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The PAT read from the scope is used, and appears in no file, log line or output of the run."""
    world.standin.denied.add("dapi-job-identity")
    world.standin.secrets[("adk-secrets", "databricks-token")] = PAT
    world.standin.secrets[("adk-secrets", "databricks-host")] = world.standin.url
    world.standin.job_handlers[EXECUTOR_JOB] = writes_result(json.dumps({"status": "failed", "error": f"used {PAT}"}))
    args = world.args("--token-secret", "adk-secrets/databricks-token", "--host-secret", "adk-secrets/databricks-host")
    with pytest.raises(JobError) as failed:
        orchestrator.Orchestration(args, world.clock.orchestrator_clock()).run(
            lambda: orchestrator.connect(args.token_secret, args.host_secret)
        )
    out, err = capsys.readouterr()
    assert world.state["auth"] == "PAT from secret scope"
    assert "used [REDACTED]" in world.state["error"] and PAT not in str(failed.value)
    # The scan covers what the orchestrator wrote: not the result.json the fake executor above wrote with the PAT.
    (world.tmp / "artifacts" / world.session / "iter-1" / "result.json").unlink()
    assert leaks(PAT, world.tmp, out, err) == []


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--session-id", "../../x", "must be a plain name"), ("--session-id", "a/b", "must be a plain name"),
     ("--poll-seconds", "nan", "is not a finite number"), ("--run-timeout-seconds", "inf", "is not a finite number"),
     ("--max-poll-seconds", "-1", "must be above 0"), ("--max-iterations", str(10**30), "is too large"),
     ("--token-secret", "dapi-pasted-value", "what was given is not shown")],
)  # fmt: skip
def test_bad_arguments_exit_2_before_anything_is_written(
    world: World, capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    """Usage errors, never a traceback, and nothing written anywhere (`../../x` cannot escape the volume)."""
    base = ["--executor-job-id", "42", "--artifacts-path", str(world.tmp / "vol" / "artifacts"),
            "--agent-code-path", str(world.tmp / "code.py")]  # fmt: skip
    assert run_main(orchestrator.main, [*base, option, value]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "dapi-pasted-value" not in err
    assert list(world.tmp.iterdir()) == [] and not world.standin.requests


def test_sigterm_cancels_the_run_in_flight_and_records_it(standin: StandIn, tmp_path: Path) -> None:
    """A cancelled orchestrator run: the executor run it was following is cancelled, session.json says
    failed and why, exit status 143. (A subprocess: the signal is the point.)"""
    standin.job_handlers[EXECUTOR_JOB] = lambda parameters: "SUCCESS"
    standin.polls_to_finish = 10**6
    code = tmp_path / "agent.py"
    code.write_text(DONE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DATABRICKS_"))}
    env.update(DATABRICKS_HOST=standin.url, DATABRICKS_TOKEN="dapi-job-identity")
    argv = [str(Path(sys.executable).with_name("rlm-orchestrator")), "--executor-job-id", str(EXECUTOR_JOB),
            "--artifacts-path", str(tmp_path / "artifacts"), "--agent-code-path", str(code), "--session-id", "sig",
            "--poll-seconds", "0.05", "--max-poll-seconds", "0.05"]  # fmt: skip
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state_path = tmp_path / "artifacts" / "sig" / "session.json"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(standin.calls(RUN_GET)) < 3:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 143, err
    state = json.loads(state_path.read_text())
    assert state["status"] == "failed" and "received signal 15" in state["error"]
    (run,) = state["runs"]
    assert run["state"] == "cancelled" and standin.cancelled == [run["executor_run_id"]]
