"""`rlm-executor` under hostile artifacts, faults and bad arguments (issue #11), called as its console script
calls it (`main([...])`, in-process; a subprocess only for SIGTERM). The secret comes from the stand-in's
Secrets API through the real databricks-sdk. Every case ends with the same checks: the exit status, what the
result file says, no form of a secret in any file the run wrote, its log, stdout or stderr, and no process the
artifact started still alive."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from faultkit import FakeClock, job_log, leaks, run_main, survivors

from agent_jobs import logs, sql
from agent_jobs.rlm import executor
from standin import StandIn

SECRET = "AIzaSyFAKE-executor-secret-0123456789"
IDENTITY_TOKEN = "dapi-executor-own-identity-token-42"


@dataclass
class Run:
    code: int
    result: dict[str, Any]
    result_file: Path
    directory: Path
    rows: list[dict[str, Any]]
    log: str
    out: str
    err: str
    tag: str


@pytest.fixture(autouse=True)
def no_stale_console_handler() -> Iterator[None]:
    """Each in-process run adds the job's console handler to the root logger, bound to this test's captured
    stdout; remove it afterwards so that the next test's run gets its own."""
    yield
    root = logging_root()
    for handler in [h for h in root.handlers if h.get_name() == logs._HANDLER_NAME]:
        root.removeHandler(handler)


def logging_root() -> Any:
    import logging

    return logging.getLogger()


@pytest.fixture
def run(
    standin: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Run]:
    """Run the executor on an artifact with `code`; GOOGLE_API_KEY from the scope unless `secret=False`."""
    standin.secrets[("adk-secrets", "google-api-key")] = SECRET
    for name in ("DB_IS_JOB", "DB_JOB_ID", "DB_JOB_RUN_ID", "DATABRICKS_CONFIG_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABRICKS_HOST", standin.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", IDENTITY_TOKEN)
    monkeypatch.setattr(executor, "DRAIN_SECONDS", 0.3)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)

    def go(code: str, *extra: str, artifact_path: str | None = None, secret: bool = True) -> Run:
        directory = tmp_path / "artifacts" / "sess" / "iter-1"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "artifact.py").write_text(textwrap.dedent(code))
        tag = f"t-{uuid.uuid4().hex[:12]}"
        path = str(directory / "artifact.py") if artifact_path is None else artifact_path
        argv = ["--artifact-path", path, "--run-id", tag, "--iteration", "1", *extra]
        if secret:
            argv += ["--env-secret", "GOOGLE_API_KEY=adk-secrets/google-api-key"]
        with job_log() as log:
            code_ = run_main(executor.main, argv)
        out, err = capsys.readouterr()
        result_file = next(
            (p for p in (directory / "result.json", directory / "executor-result.json", work / "result.json")
             if p.is_file()),
            directory / "result.json",
        )  # fmt: skip
        result = json.loads(result_file.read_text()) if result_file.is_file() else {}
        telemetry = directory / "telemetry.jsonl"
        rows = [json.loads(line) for line in telemetry.read_text().splitlines()] if telemetry.exists() else []
        done = Run(code_, result, result_file, directory, rows, log.getvalue(), out, err, tag)
        assert leaks(SECRET, tmp_path, done.log, out, err) == [], "the secret leaked"
        assert leaks(IDENTITY_TOKEN, tmp_path, done.log, out, err) == [], "the executor's own token leaked"
        assert survivors(tag) == [], "a process the artifact started is still running"
        return done

    return go


@dataclass(frozen=True)
class Case:
    name: str
    code: str
    args: tuple[str, ...] = ()
    exit: int = 0
    status: str = "succeeded"
    check: Callable[[Run], None] = field(default=lambda run: None)


def _bytes(run: Run) -> None:
    assert "\ufffd" in run.result["stdout_tail"] and "\ufffd" in run.result["stderr_tail"]
    assert "not utf-8" in run.result["stdout_tail"]


def _huge(run: Run) -> None:
    assert run.result_file.stat().st_size < 100_000  # the 20 MB line is not in the result
    assert "bytes cut ...]" in run.result["stdout_tail"] and run.result["stdout_bytes"] == 20_000_001
    assert run.result["output"] is None and "longer than 65536 bytes" in run.result["output_error"]
    (row,) = run.rows
    assert len(json.dumps(row)) < 100_000


def _rmtree(run: Run) -> None:
    assert run.result_file == run.directory / "result.json"
    assert any("did not exist when the result was written" in note for note in run.result["notes"])


def _result_dir(run: Run) -> None:
    assert run.result_file.name == "executor-result.json" and (run.directory / "result.json").is_dir()
    assert any("is a directory" in note for note in run.result["notes"])
    assert "is a directory" in run.log


def _background(run: Run) -> None:
    child = int((run.directory / "child.pid").read_text())
    assert not _alive(child) and run.result["stopped_processes"] >= 1


def _daemon(run: Run) -> None:
    assert "did not finish within 1 seconds" in run.result["error"]
    daemon = int((run.directory / "daemon.pid").read_text())
    assert not _alive(daemon)  # it called setsid() and forked away from the artifact's process group


def _holds_stdout(run: Run) -> None:
    assert run.result["exit_code"] == 0 and run.result["duration_ms"] < 10_000
    assert run.result["output"] == {"done": True}


def _secret_failure(run: Run) -> None:
    assert "[REDACTED]" in run.result["error"] and "[REDACTED]" in run.result["stdout_tail"]
    assert "artifact failed: artifact exited with status 1" in run.err and "[REDACTED]" in run.err
    assert run.rows[0]["error"] == run.result["error"]


def _environment(run: Run) -> None:
    names = run.result["output"]["names"]
    assert "GOOGLE_API_KEY" in names and "RLM_RUN_ID" in names and "PATH" in names
    assert not [n for n in names if n.startswith("DATABRICKS_") or "TOKEN" in n]


def _sigsegv(run: Run) -> None:
    assert run.result["exit_code"] == -11 and "SIGSEGV" in run.result["error"]


def _lost(run: Run) -> None:
    assert "supervisor was killed" in run.result["error"]


def _nan(run: Run) -> None:
    assert run.result["output"] is None  # NaN is not JSON: not an output, and result.json stays strict JSON


CASES = [
    Case("undecodable bytes", """
        import sys
        sys.stdout.buffer.write(b"\\xff\\xfe\\x80 not utf-8\\n"); sys.stderr.buffer.write(b"\\xc3\\x28\\n")
    """, check=_bytes),
    Case("a 20 MB last line", "import sys; sys.stdout.write('x' * 20_000_000 + chr(10))\n", check=_huge),
    Case("deletes its own directory", "import os, shutil; shutil.rmtree(os.getcwd())\n", check=_rmtree),
    Case("makes result.json a directory", "import os; os.mkdir('result.json')\n", check=_result_dir),
    Case("leaves a background child", """
        import subprocess, sys
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        open("child.pid", "w").write(str(child.pid))
    """, check=_background),
    Case("a setsid daemon outlives the timeout", """
        import os, sys, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                open("daemon.pid", "w").write(str(os.getpid()))
                os.closerange(0, 3)
                time.sleep(600)
            os._exit(0)
        while not os.path.exists("daemon.pid"):
            time.sleep(0.01)
        time.sleep(600)
    """, ("--timeout-seconds", "1"), exit=1, status="timed_out", check=_daemon),
    Case("exits 0 while a child holds stdout", """
        import json, subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print(json.dumps({"done": True}))
    """, ("--timeout-seconds", "30"), check=_holds_stdout),
    Case("fails quoting its key", """
        import base64, os, sys, urllib.parse
        key = os.environ["GOOGLE_API_KEY"]
        print("calling", urllib.parse.quote(key, safe=""), base64.b64encode(key.encode()).decode())
        sys.exit(f"400 Bad Request for url: https://generativelanguage.googleapis.com/v1beta/models?key={key}")
    """, exit=1, status="failed", check=_secret_failure),
    Case("sees an explicit environment", """
        import json, os
        print(json.dumps({"names": sorted(os.environ)}))
    """, check=_environment),
    Case("dies of SIGSEGV", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)\n", exit=1, status="failed",
         check=_sigsegv),
    Case("kills its supervisor", """
        import os, signal, time
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(600)
    """, exit=1, status="failed", check=_lost),
    Case("prints NaN as its output", "print('{\"done\": NaN}')\n", check=_nan),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_executor_records_what_any_artifact_does(run: Callable[..., Run], case: Case) -> None:
    """Whatever the artifact does, result.json (or the file it names) says what happened, the exit status
    follows it, nothing it started survives and no secret is recorded."""
    done = run(case.code, *case.args)
    assert (done.code, done.result["status"]) == (case.exit, case.status), done.err
    case.check(done)


@pytest.mark.parametrize(
    ("args", "message"),
    [(("--timeout-seconds", str(10**30)), "is too large: at most 604800"),
     (("--timeout-seconds", "nan"), "is not a whole number of at least 1"),
     (("--timeout-seconds", "0"), "is not a whole number of at least 1"),
     (("--iteration", "-1"), "is not a whole number of at least 0")],
)  # fmt: skip
def test_bad_numbers_are_usage_errors_with_a_failed_result(
    run: Callable[..., Run], args: tuple[str, ...], message: str
) -> None:
    """A number no run can use (an overflowing timeout above all) is exit 2 before the artifact runs, and the
    result beside it says why."""
    done = run("open('ran', 'w').write('ran')\n", *args)
    assert done.code == 2 and message in done.err and "Traceback" not in done.err
    assert done.result["status"] == "failed" and message in done.result["error"]
    assert done.result_file == done.directory / "result.json" and not (done.directory / "ran").exists()


@pytest.mark.parametrize("path", ["", "/"])
def test_an_unusable_artifact_path_leaves_its_result_in_the_working_directory(
    run: Callable[..., Run], path: str
) -> None:
    """'' and '/' name no artifact and no directory beside it: usage error, result in the working directory."""
    done = run("print('never run')\n", artifact_path=path)
    assert done.code == 2 and "--artifact-path: must be the path of the artifact file" in done.err
    assert done.result_file.parent.name == "work" and done.result["status"] == "failed"


def test_a_value_where_a_secret_reference_belongs_is_refused_unechoed(run: Callable[..., Run]) -> None:
    """A pasted value instead of <scope>/<key>: exit 2, and the value is nowhere (the generic leak check)."""
    pasted = "AIzaSyPASTED-value-not-a-reference-99"
    done = run("print('never run')\n", "--env-secret", f"GOOGLE_API_KEY={pasted}", secret=False)
    assert done.code == 2 and "what was given is not shown" in done.err
    assert pasted not in done.err + done.out + done.result_file.read_text()


def test_telemetry_on_a_starting_warehouse_is_polled_until_it_ends(
    run: Callable[..., Run], standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PENDING within the 50 s wait is a warehouse starting, not a failure: the statement is polled (on a fake
    clock) until it succeeds."""
    clock = FakeClock()
    monkeypatch.setattr(sql.TIMING, "sleep", clock.sleep)
    monkeypatch.setattr(sql.TIMING, "clock", clock.time)
    standin.statement_polls = 2
    warehouse = ("--catalog", "main", "--schema", "agents", "--telemetry-warehouse-id", "wh1")
    done = run("print('{}')\n", *warehouse)
    assert (done.code, done.result["status"]) == (0, "succeeded"), done.err
    assert len(standin.statements) == 2 and clock.sleeps == [2, 4, 8] * 2  # CREATE TABLE, then the INSERT
    assert all(s["wait_timeout"] == "50s" and s["on_wait_timeout"] == "CONTINUE" for s in standin.statements)


def test_a_telemetry_failure_keeps_the_result_and_fails_the_task(run: Callable[..., Run], standin: StandIn) -> None:
    """A warehouse that refuses the row: the result is written first, then the task fails saying so."""
    standin.statement_error = "TABLE_OR_VIEW_NOT_FOUND"
    done = run("print('{}')\n", "--catalog", "main", "--schema", "agents", "--telemetry-warehouse-id", "wh1")
    assert done.code == 1 and "result written, but the telemetry row could not be appended" in done.err
    assert done.result["status"] == "succeeded"


def test_sigterm_stops_the_artifact_and_records_the_cancellation(standin: StandIn, tmp_path: Path) -> None:
    """A cancelled job run SIGTERMs the executor: the artifact and its children are stopped, result.json says
    cancelled, exit status 143. (A subprocess: the process boundary is the point.)"""
    standin.secrets[("adk-secrets", "google-api-key")] = SECRET
    directory = tmp_path / "iter-1"
    directory.mkdir()
    code = """
        import os, subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print("key", os.environ["GOOGLE_API_KEY"], flush=True)
        open("started", "w").write("yes")
        time.sleep(600)
    """
    (directory / "artifact.py").write_text(textwrap.dedent(code))
    tag = f"t-{uuid.uuid4().hex[:12]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DATABRICKS_"))}
    env.update(DATABRICKS_HOST=standin.url, DATABRICKS_TOKEN=IDENTITY_TOKEN)
    argv = [str(Path(sys.executable).with_name("rlm-executor")), "--artifact-path", str(directory / "artifact.py"),
            "--run-id", tag, "--env-secret", "GOOGLE_API_KEY=adk-secrets/google-api-key"]  # fmt: skip
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (directory / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert survivors(tag), "the artifact did not start"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 143, err
    result = json.loads((directory / "result.json").read_text())
    assert result["status"] == "cancelled" and "rlm-executor: error: artifact cancelled" in err
    assert survivors(tag) == []
    assert leaks(SECRET, tmp_path, out, err) == [] and "key [REDACTED]" in result["stdout_tail"]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
