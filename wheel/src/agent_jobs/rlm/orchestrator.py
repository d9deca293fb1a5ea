"""`rlm-orchestrator` (seed 003's job A): the control loop that runs generated artifacts through the executor job.

Each iteration writes an artifact to the artifacts volume (the agent's code from ADK_AGENT_CODE_PATH), submits
a run of the executor job through the Jobs API, follows it with bounded backoff, reads its result.json and
records the submission and its outcome (submission.json beside the artifact, telemetry rows). The loop ends
when an artifact's output says {"done": true}, after --max-iterations, or when an iteration fails.

- It always ends with `<session>/session.json` written: `completed` or `failed` with the error, and every
  executor run it started (id, URL, idempotency token, how it ended: finished, cancelled, or abandoned when
  even the cancel failed). Whatever fails is recorded there first: the connection, a status check, the
  telemetry warehouse, a result.json that is missing, null or of the wrong shape, a run that does not end in
  time (it is cancelled), a SIGTERM (the run in flight is cancelled).
- Exactly-once submission within an attempt: every iteration has its own idempotency token, so a retried
  submission (the SDK retries a lost response, and so does this loop) gets back the run the first request
  started. Fresh tokens per attempt: the token holds the job run id and the task's execution count
  (`--attempt {{task.execution_count}}`, which a repair or a task retry increments), so a repaired run starts
  new executor runs with the fixed code instead of getting the old failed ones back. Locally (no job run id)
  every invocation is a new attempt.
- Status checks and submissions that fail transiently (5xx, 429, lost connections) are retried with bounded
  backoff on an injectable clock; permanent refusals (400, 403, 404) are not.
- `--session-id` is a plain name (letters, digits, '.', '_', '-'): anything else, `../../x` included, is a
  usage error, so a session never writes outside the artifacts volume.
- Auth: the job's own identity first; only if that cannot use the Jobs API, the PAT (and host) from the
  secret scope, as seed 003 planned. The PAT is redacted from everything recorded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from agent_jobs import logs
from agent_jobs.entry import at_least, entry_point, number
from agent_jobs.errors import Cancelled, JobError, UsageError
from agent_jobs.files import write_json
from agent_jobs.redact import REDACTOR
from agent_jobs.rlm import telemetry
from agent_jobs.rlm.executor import FALLBACK_NAME, RESULT_NAME
from agent_jobs.runtime import detect_runtime, session_id
from agent_jobs.secrets import read_secret, reference_argument

log = logging.getLogger("agent_jobs.rlm.orchestrator")
T = TypeVar("T")

TERMINAL = {"TERMINATED", "SKIPPED", "INTERNAL_ERROR"}
RESULT_STATUSES = ("succeeded", "failed", "timed_out", "cancelled")
SUBMIT_ATTEMPTS = 5
STATUS_ATTEMPTS = 6
CANCEL_ATTEMPTS = 3
MAX_RESULT_BYTES = 16 * 1024 * 1024
SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_WAIT_SECONDS = 30 * 24 * 3600.0


def _session_id(text: str) -> str:
    if text and not SESSION_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(
            "must be a plain name: letters, digits, '.', '_' and '-', at most 128, starting with a letter or digit"
        )
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlm-orchestrator", description="Run the RLM loop through the executor job.")
    parser.add_argument("--executor-job-id", required=True, type=at_least(1, 2**63 - 1),
                        help="the executor job (wired by the Pulumi program)")  # fmt: skip
    parser.add_argument("--artifacts-path", required=True, help="volume directory for artifacts (ADK_ARTIFACTS_PATH)")
    parser.add_argument("--agent-code-path", required=True, help="the agent's code (ADK_AGENT_CODE_PATH)")
    parser.add_argument("--catalog", help="telemetry catalog (ADK_DELTA_CATALOG)")
    parser.add_argument("--schema", help="telemetry schema (ADK_DELTA_SCHEMA)")
    parser.add_argument("--telemetry-warehouse-id", help="write telemetry through this SQL warehouse")
    parser.add_argument("--max-iterations", type=at_least(1, 1000), default=3, help="stop after this many iterations")
    parser.add_argument("--session-id", default="", type=_session_id,
                        help="default: job-<job_id>-run-<run_id>, or a timestamp")  # fmt: skip
    parser.add_argument("--token-secret", type=reference_argument,
                        help="<scope>/<key> of a PAT, used only if the job's identity fails")  # fmt: skip
    parser.add_argument("--host-secret", type=reference_argument,
                        help="<scope>/<key> of the workspace host for the PAT fallback")  # fmt: skip
    parser.add_argument("--poll-seconds", type=number(0, 3600, above=True), default=5.0,
                        help="first wait between status checks")  # fmt: skip
    parser.add_argument("--max-poll-seconds", type=number(0, 3600, above=True), default=60.0,
                        help="longest wait between checks")  # fmt: skip
    parser.add_argument("--run-timeout-seconds", type=number(0, MAX_WAIT_SECONDS, above=True), default=3600.0,
                        help="give up on (and cancel) an executor run after this long; the program passes the "
                        "executor job's own timeout plus a margin")  # fmt: skip
    parser.add_argument("--attempt", default="", help="{{task.execution_count}}: new idempotency tokens per attempt")
    parser.add_argument("--job-id", help="{{job.id}}")
    parser.add_argument("--job-run-id", help="{{job.run_id}}")
    return parser


@dataclass
class Clock:
    """Time, injectable so that tests need not wait."""

    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], float] = time.monotonic


def _transient(exc: Exception) -> bool:
    """Worth retrying: server errors, throttling, lost connections; not a refusal that will not change."""
    from databricks.sdk.errors import BadRequest, NotFound, PermissionDenied, ResourceConflict, Unauthenticated

    return not isinstance(exc, (BadRequest, NotFound, PermissionDenied, ResourceConflict, Unauthenticated))


def retried(what: str, call: Callable[[], T], clock: Clock, attempts: int, first_delay: float = 1.0) -> T:
    """`call()`, retried on transient errors with doubling waits (at most 30 s) up to `attempts` times."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Cancelled:
            raise
        except Exception as exc:
            if attempt == attempts or not _transient(exc):
                raise JobError(f"{what} failed ({attempt} attempt(s)): {exc}") from exc
            log.warning("%s failed (%s); retrying in %g s (attempt %d of %d)", what, exc, delay, attempt + 1, attempts)
            clock.sleep(delay)
            delay = min(delay * 2, 30.0)
    raise AssertionError("unreachable")


def connect(
    token_secret: str | None, host_secret: str | None, factory: Callable[..., Any] | None = None
) -> tuple[Any, str]:
    """A workspace client that can use the Jobs API: the job's identity, else the PAT from the scope."""
    if factory is None:
        from databricks.sdk import WorkspaceClient

        factory = WorkspaceClient
    try:
        client = factory()
        client.current_user.me()
        return client, "job identity"
    except Exception as native:
        if not token_secret:
            raise JobError(
                f"the job's identity cannot use the Jobs API ({native}); no fallback token configured"
            ) from native
        log.warning(
            "the job's identity cannot use the Jobs API (%s); falling back to the PAT in %s", native, token_secret
        )
    token = read_secret(token_secret)
    host = read_secret(host_secret, sensitive=False) if host_secret else os.environ.get("DATABRICKS_HOST", "")
    if not host:
        raise JobError("the PAT fallback needs a workspace host: pass --host-secret <scope>/<key>")
    try:
        client = factory(host=host, token=token, auth_type="pat")
        client.current_user.me()
    except Exception as exc:
        raise JobError(f"the PAT from {token_secret} cannot use the Jobs API either: {exc}") from exc
    return client, "PAT from secret scope"


def attempt_key(job_run_id: str | None, attempt: str, session: str) -> str:
    """What makes one attempt's tokens its own: the job run and the task's execution count in a job; a random
    part locally (each invocation is a new attempt)."""
    count = attempt.strip() if attempt and attempt.strip().isdigit() else "1"
    return f"{job_run_id}-{count}" if job_run_id else f"{session}-{uuid.uuid4().hex[:12]}"


def idempotency_token(key: str, iteration: int) -> str:
    """One token per attempt and iteration (at most 64 characters, as the Jobs API requires)."""
    token = f"rlm-{key}-{iteration}"
    return token if len(token) <= 64 else f"rlm-{hashlib.sha256(key.encode()).hexdigest()[:40]}-{iteration}"


def submit(client: Any, executor_job_id: int, parameters: dict[str, str], token: str, clock: Clock) -> int:
    """Start an executor run; retried with the same token, so it never starts two."""

    def run_now() -> int:
        waiter = client.jobs.run_now(job_id=executor_job_id, job_parameters=parameters, idempotency_token=token)
        return int(waiter.run_id)

    return retried(f"submitting a run of executor job {executor_job_id}", run_now, clock, SUBMIT_ATTEMPTS)


def _state_of(run: Any) -> str:
    state = getattr(run, "state", None)
    life_cycle = getattr(state, "life_cycle_state", None)
    return str(life_cycle.value) if life_cycle is not None else "UNKNOWN"


def get_run(client: Any, run_id: int, clock: Clock) -> Any:
    return retried(f"reading the state of executor run {run_id}", lambda: client.jobs.get_run(run_id), clock,
                   STATUS_ATTEMPTS)  # fmt: skip


def wait_for_run(client: Any, run_id: int, timeout: float, poll: float, max_poll: float, clock: Clock) -> Any:
    """Follow a run until it ends, backing off from `poll` to `max_poll` seconds; logs each state change."""
    deadline, delay, last = clock.now() + timeout, poll, None
    while True:
        run = get_run(client, run_id, clock)
        state = _state_of(run)
        if state != last:
            log.info("executor run %s: %s %s", run_id, state, getattr(run, "run_page_url", "") or "")
            last = state
        if state in TERMINAL:
            return run
        if clock.now() + delay > deadline:
            raise JobError(f"executor run {run_id} did not finish within {timeout:g} seconds (last state {state})")
        clock.sleep(delay)
        delay = min(delay * 2, max_poll)


def read_result(directory: Path, run_id: int) -> dict[str, Any]:
    """The executor's result for `run_id`: result.json (or executor-result.json when the artifact made
    result.json a directory), checked; a failed result saying why when it is missing or malformed."""
    path = directory / RESULT_NAME
    if path.is_dir():
        path = directory / FALLBACK_NAME
    try:
        if path.stat().st_size > MAX_RESULT_BYTES:
            return {"status": "invalid", "error": f"{path} is larger than {MAX_RESULT_BYTES} bytes"}
        value = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError, RecursionError) as exc:
        return {"status": "missing", "error": f"no readable result at {path}: {type(exc).__name__}: {exc}"[:2000]}
    problem = None
    if not isinstance(value, dict):
        problem = f"holds {type(value).__name__ if value is not None else 'null'}, not an object"
    elif value.get("status") not in RESULT_STATUSES:
        problem = f"has status {str(value.get('status'))[:80]!r}, not one of {', '.join(RESULT_STATUSES)}"
    elif value.get("output") is not None and not isinstance(value["output"], dict):
        problem = f"has an output that is a {type(value['output']).__name__}, not an object"
    elif value.get("error") is not None and not isinstance(value["error"], str):
        problem = "has an error that is not text"
    elif value.get("job_run_id") not in (None, str(run_id)):
        problem = f"belongs to run {str(value.get('job_run_id'))[:40]}, not to run {run_id} (a stale result)"
    if problem:
        return {"status": "invalid", "error": f"{path} {problem}"}
    return dict(value)


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class SessionState:
    """session.json: written at the start, after every change, and whatever ends the run."""

    def __init__(self, path: Path, **fields: Any) -> None:
        self.path = path
        self.data: dict[str, Any] = {"status": "running", "started_at": _utc_now(), "iterations": [], "runs": [],
                                     "telemetry_errors": [], **fields}  # fmt: skip

    def write(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.path, REDACTOR.value(self.data))
        except (OSError, ValueError) as exc:
            log.error("cannot write the session state %s: %s", self.path, exc)


@contextmanager
def _sigterm_cancels() -> Iterator[None]:
    """SIGTERM (a cancelled or timed-out orchestrator run) interrupts the loop with Cancelled, so that the run
    in flight is cancelled and the session state written (main thread only: elsewhere signals cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough: let the clean-up finish
        raise Cancelled(f"the orchestrator received signal {signum} (the job run was cancelled or timed out)")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Orchestration:
    def __init__(self, args: argparse.Namespace, clock: Clock) -> None:
        self.args, self.clock = args, clock
        self.runtime = detect_runtime(os.environ, args.job_id, args.job_run_id)
        self.session = args.session_id or session_id(self.runtime)
        if not SESSION_ID.fullmatch(self.session):
            raise UsageError(f"session id {self.session[:80]!r} is not a plain name (letters, digits, '.', '_', '-')")
        self.root = Path(args.artifacts_path) / self.session
        attempt = (args.attempt or "").strip()
        self.attempt = int(attempt) if attempt.isdigit() and len(attempt) < 10 else None
        self.key = attempt_key(self.runtime.job_run_id, attempt, self.session)
        self.base = self.root / f"attempt-{self.attempt}" if self.attempt and self.attempt > 1 else self.root
        self.state = SessionState(
            self.root / "session.json", session_id=self.session, attempt=self.attempt, job_id=self.runtime.job_id,
            job_run_id=self.runtime.job_run_id, executor_job_id=args.executor_job_id,
        )  # fmt: skip
        self.in_flight: dict[str, Any] | None = None
        self.sink: telemetry.Sink | None = None
        self.client: Any = None

    def emit(self, name: str, iteration: int, artifact: Path, run_id: int, **fields: Any) -> None:
        """A telemetry row; a failure to write it is recorded, not fatal to the loop (see run)."""
        if self.sink is None:
            return
        event = telemetry.Event(source="orchestrator", event=name, session_id=self.session,
                                job_id=self.runtime.job_id, job_run_id=self.runtime.job_run_id, iteration=iteration,
                                artifact_path=str(artifact), executor_run_id=str(run_id), **fields)  # fmt: skip
        try:
            self.sink.write([event])
        except Exception as exc:
            log.warning("telemetry row %s of iteration %d not written: %s", name, iteration, exc)
            errors = self.state.data["telemetry_errors"]
            if len(errors) < 20:
                errors.append(f"{name} (iteration {iteration}): {exc}"[:1000])

    def give_up(self, record: dict[str, Any], reason: str) -> None:
        """Cancel a run this session no longer follows, and record how that went: never silently orphaned."""
        run_id = record["executor_run_id"]
        record["gave_up"] = reason
        try:
            retried(f"cancelling executor run {run_id}", lambda: self.client.jobs.cancel_run(run_id), self.clock,
                    CANCEL_ATTEMPTS)  # fmt: skip
            record["state"] = "cancelled"
            log.warning("executor run %s cancelled: %s", run_id, reason)
        except JobError as exc:
            record.update(state="abandoned", cancel_error=str(exc))
            log.error("executor run %s could not be cancelled (%s): cancel it by hand", run_id, exc)
        self.in_flight = None
        self.state.write()

    def run(self, connect_client: Callable[[], tuple[Any, str]]) -> dict[str, Any]:
        state = self.state
        with _sigterm_cancels():
            try:
                state.write()
                self.client, auth = connect_client()
                state.data["auth"] = auth
                self._loop(auth)
                state.data["status"] = "completed"
            except BaseException as exc:
                if self.in_flight is not None:
                    self.give_up(self.in_flight, f"the session stopped: {exc}")
                text = str(exc) if isinstance(exc, JobError) else f"orchestrator error: {type(exc).__name__}: {exc}"
                state.data.update(status="failed", error=REDACTOR.text(text))
                if not isinstance(exc, Exception):
                    raise
                if not isinstance(exc, JobError):
                    log.exception("the orchestrator failed")
                # Raised again redacted, without the chained causes (they may quote a secret in another form).
                raise (type(exc) if isinstance(exc, JobError) else JobError)(state.data["error"]) from None
            finally:
                state.data["ended_at"] = _utc_now()
                state.write()
        log.info("session %s completed after %d iterations", self.session, len(state.data["iterations"]))
        errors = state.data["telemetry_errors"]
        if errors:
            raise JobError(f"session completed, but {len(errors)} telemetry row(s) were not written: {errors[0]}")
        return state.data

    def _follow(
        self, record: dict[str, Any], directory: Path, artifact: Path, token: str, parameters: dict[str, str], auth: str
    ) -> str | None:
        """Record a submitted run: its page, submission.json, session.json, the telemetry row."""
        run_id, iteration = record["executor_run_id"], record["iteration"]
        url = getattr(get_run(self.client, run_id, self.clock), "run_page_url", None)
        record["run_page_url"] = url
        submission = {
            "executor_job_id": self.args.executor_job_id,
            "executor_run_id": run_id,
            "run_page_url": url,
            "idempotency_token": token,
            "parameters": parameters,
            "auth": auth,
            "submitted_at": time.time(),
        }
        write_json(directory / "submission.json", submission)
        self.state.write()
        self.emit("submitted", iteration, artifact, run_id, status="submitted", details={"run_page_url": url})
        log.info("iteration %d: executor run %s submitted: %s", iteration, run_id, url)
        return url

    def _loop(self, auth: str) -> None:
        args, clock, client, state = self.args, self.clock, self.client, self.state
        agent_code = Path(args.agent_code_path)
        if not agent_code.is_file():
            raise JobError(f"the agent's code {agent_code} does not exist")
        self.sink = telemetry.sink(args.catalog, args.schema, args.telemetry_warehouse_id, self.root, client,
                                   sleep=clock.sleep, clock=clock.now)  # fmt: skip
        log.info("session %s (attempt %s): up to %d iterations via executor job %s (%s)", self.session,
                 self.attempt or 1, args.max_iterations, args.executor_job_id, auth)  # fmt: skip
        previous = ""
        for iteration in range(1, args.max_iterations + 1):
            directory = self.base / f"iter-{iteration}"
            directory.mkdir(parents=True, exist_ok=True)
            for stale in (RESULT_NAME, FALLBACK_NAME):  # a result left by an earlier run of this directory
                if (directory / stale).is_file():
                    (directory / stale).unlink()
            artifact = directory / "artifact.py"
            shutil.copyfile(agent_code, artifact)
            token = idempotency_token(self.key, iteration)
            parameters = {"artifact_path": str(artifact), "run_id": self.session, "iteration": str(iteration),
                          "previous_result": previous}  # fmt: skip
            started = clock.now()
            run_id = submit(client, args.executor_job_id, parameters, token, clock)
            record: dict[str, Any] = {"executor_run_id": run_id, "iteration": iteration, "idempotency_token": token,
                                      "run_page_url": None, "state": "submitted"}  # fmt: skip
            state.data["runs"].append(record)
            self.in_flight = record
            state.write()
            try:
                url = self._follow(record, directory, artifact, token, parameters, auth)
                run = wait_for_run(client, run_id, args.run_timeout_seconds, args.poll_seconds,
                                   args.max_poll_seconds, clock)  # fmt: skip
            except JobError as exc:
                self.give_up(record, str(exc))
                stopped = Cancelled if isinstance(exc, Cancelled) else JobError
                raise stopped(f"iteration {iteration}: {exc}; the run was {record['state']}") from exc
            run_state = getattr(getattr(run.state, "result_state", None), "value", None) or _state_of(run)
            record["state"] = "finished"
            record["run_state"] = run_state
            self.in_flight = None
            result = read_result(directory, run_id)
            self.emit("finished", iteration, artifact, run_id, status=result.get("status"), error=result.get("error"),
                      duration_ms=int((clock.now() - started) * 1000), details={"run_state": run_state})  # fmt: skip
            iteration_record = {"iteration": iteration, "executor_run_id": run_id, "run_page_url": url,
                                "run_state": run_state, "result": result}  # fmt: skip
            state.data["iterations"].append(iteration_record)
            state.write()
            if run_state != "SUCCESS" or result.get("status") != "succeeded":
                raise JobError(
                    f"iteration {iteration}: executor run {run_id} {run_state}, result "
                    f"{result.get('status')}: {result.get('error') or 'no error recorded'}"
                )
            previous = str(directory / (FALLBACK_NAME if (directory / RESULT_NAME).is_dir() else RESULT_NAME))
            if (result.get("output") or {}).get("done"):
                log.info("iteration %d: the artifact reports done", iteration)
                break


def orchestrate(args: argparse.Namespace, client: Any, auth: str, clock: Clock) -> dict[str, Any]:
    """The loop with an already connected client (session.json written whatever happens)."""
    return Orchestration(args, clock).run(lambda: (client, auth))


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logs.setup()

    def run() -> None:
        REDACTOR.add_environment(os.environ)
        Orchestration(args, Clock()).run(lambda: connect(args.token_secret, args.host_secret))

    entry_point("rlm-orchestrator", run, args.job_id, args.job_run_id)
