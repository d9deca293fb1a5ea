"""`rlm-orchestrator` (seed 003's job A): the control loop that runs generated artifacts through the executor job.

Each iteration writes an artifact to the artifacts volume (the agent's code from ADK_AGENT_CODE_PATH), submits
a run of the executor job through the Jobs API, follows it with bounded backoff, reads its result.json and
records the submission and its outcome (submission.json beside the artifact, telemetry rows). The loop ends
when an artifact's output says {"done": true}, after --max-iterations, or when an executor run fails.

- Exactly-once submission: every iteration has its own idempotency token, so when a submission is retried
  (the SDK retries a lost response, and so does this loop) Databricks returns the run the first attempt
  started instead of starting another.
- Auth: the job's own identity first; only if that cannot use the Jobs API, the PAT (and host) from the
  secret scope, as seed 003 planned.
- The executor's job id is a parameter the Pulumi program wires from the executor job itself: no secret
  scope lookup.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_jobs import logs
from agent_jobs.entry import at_least, entry_point
from agent_jobs.errors import JobError
from agent_jobs.files import write_json
from agent_jobs.rlm import telemetry
from agent_jobs.runtime import detect_runtime, session_id
from agent_jobs.secrets import read_secret

log = logging.getLogger("agent_jobs.rlm.orchestrator")

TERMINAL = {"TERMINATED", "SKIPPED", "INTERNAL_ERROR"}
SUBMIT_ATTEMPTS = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlm-orchestrator", description="Run the RLM loop through the executor job.")
    parser.add_argument(
        "--executor-job-id", required=True, type=at_least(1), help="the executor job (wired by the Pulumi program)"
    )
    parser.add_argument("--artifacts-path", required=True, help="volume directory for artifacts (ADK_ARTIFACTS_PATH)")
    parser.add_argument("--agent-code-path", required=True, help="the agent's code (ADK_AGENT_CODE_PATH)")
    parser.add_argument("--catalog", help="telemetry catalog (ADK_DELTA_CATALOG)")
    parser.add_argument("--schema", help="telemetry schema (ADK_DELTA_SCHEMA)")
    parser.add_argument("--telemetry-warehouse-id", help="write telemetry through this SQL warehouse")
    parser.add_argument("--max-iterations", type=at_least(1), default=3, help="stop after this many iterations")
    parser.add_argument("--session-id", default="", help="default: job-<job_id>-run-<run_id>, or a timestamp")
    parser.add_argument("--token-secret", help="<scope>/<key> of a PAT, used only if the job's identity fails")
    parser.add_argument("--host-secret", help="<scope>/<key> of the workspace host for the PAT fallback")
    parser.add_argument("--poll-seconds", type=float, default=5.0, help="first wait between status checks")
    parser.add_argument("--max-poll-seconds", type=float, default=60.0, help="longest wait between checks")
    parser.add_argument("--run-timeout-seconds", type=float, default=3600.0, help="give up on a run after this")
    parser.add_argument("--job-id", help="{{job.id}}")
    parser.add_argument("--job-run-id", help="{{job.run_id}}")
    return parser


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
    host = read_secret(host_secret) if host_secret else os.environ.get("DATABRICKS_HOST", "")
    if not host:
        raise JobError("the PAT fallback needs a workspace host: pass --host-secret <scope>/<key>")
    try:
        client = factory(host=host, token=token, auth_type="pat")
        client.current_user.me()
    except Exception as exc:
        raise JobError(f"the PAT from {token_secret} cannot use the Jobs API either: {exc}") from exc
    return client, "PAT from secret scope"


def idempotency_token(session: str, iteration: int) -> str:
    """One token per iteration (at most 64 characters, as the Jobs API requires)."""
    token = f"rlm-{session}-{iteration}"
    return token if len(token) <= 64 else f"rlm-{hashlib.sha256(token.encode()).hexdigest()[:40]}-{iteration}"


def submit(client: Any, executor_job_id: int, parameters: dict[str, str], token: str) -> int:
    """Start an executor run; retried with the same token, so it never starts two."""
    for attempt in range(1, SUBMIT_ATTEMPTS + 1):
        try:
            waiter = client.jobs.run_now(job_id=executor_job_id, job_parameters=parameters, idempotency_token=token)
            return int(waiter.run_id)
        except Exception as exc:
            if attempt == SUBMIT_ATTEMPTS:
                raise JobError(f"could not submit an executor run of job {executor_job_id}: {exc}") from exc
            log.warning("submitting the executor run failed (%s); retrying with the same idempotency token", exc)
    raise AssertionError("unreachable")


@dataclass
class Clock:
    """Time, injectable so that tests need not wait."""

    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], float] = time.monotonic


def wait_for_run(client: Any, run_id: int, timeout: float, poll: float, max_poll: float, clock: Clock) -> Any:
    """Follow a run until it ends, backing off from `poll` to `max_poll` seconds; logs each state change."""
    deadline, delay, last = clock.now() + timeout, poll, None
    while True:
        run = client.jobs.get_run(run_id)
        state = run.state.life_cycle_state.value if run.state and run.state.life_cycle_state else "UNKNOWN"
        if state != last:
            log.info("executor run %s: %s %s", run_id, state, run.run_page_url or "")
            last = state
        if state in TERMINAL:
            return run
        if clock.now() + delay > deadline:
            raise JobError(f"executor run {run_id} did not finish within {timeout:g} seconds (last state {state})")
        clock.sleep(delay)
        delay = min(delay * 2, max_poll)


def _read_result(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        return {"status": "missing", "error": f"no readable result at {path}: {exc}"}


def orchestrate(args: argparse.Namespace, client: Any, auth: str, clock: Clock) -> dict[str, Any]:
    runtime = detect_runtime(os.environ, args.job_id, args.job_run_id)
    session = args.session_id or session_id(runtime)
    root = Path(args.artifacts_path) / session
    agent_code = Path(args.agent_code_path)
    if not agent_code.is_file():
        raise JobError(f"the agent's code {agent_code} does not exist")
    sink = telemetry.sink(args.catalog, args.schema, args.telemetry_warehouse_id, root)

    def emit(name: str, iteration: int, artifact: Path, run_id: int, **fields: Any) -> None:
        sink.write([telemetry.Event(source="orchestrator", event=name, session_id=session, job_id=runtime.job_id,
                                    job_run_id=runtime.job_run_id, iteration=iteration, artifact_path=str(artifact),
                                    executor_run_id=str(run_id), **fields)])  # fmt: skip

    iterations: list[dict[str, Any]] = []
    previous = ""
    log.info(
        "session %s: up to %d iterations via executor job %s (%s)",
        session,
        args.max_iterations,
        args.executor_job_id,
        auth,
    )
    for iteration in range(1, args.max_iterations + 1):
        directory = root / f"iter-{iteration}"
        directory.mkdir(parents=True, exist_ok=True)
        artifact = directory / "artifact.py"
        shutil.copyfile(agent_code, artifact)
        token = idempotency_token(session, iteration)
        parameters = {
            "artifact_path": str(artifact),
            "run_id": session,
            "iteration": str(iteration),
            "previous_result": previous,
        }
        started = clock.now()
        run_id = submit(client, args.executor_job_id, parameters, token)
        url = client.jobs.get_run(run_id).run_page_url
        submission = {
            "executor_job_id": args.executor_job_id,
            "executor_run_id": run_id,
            "run_page_url": url,
            "idempotency_token": token,
            "parameters": parameters,
            "auth": auth,
            "submitted_at": time.time(),
        }
        write_json(directory / "submission.json", submission)
        emit("submitted", iteration, artifact, run_id, status="submitted", details={"run_page_url": url})
        log.info("iteration %d: executor run %s submitted: %s", iteration, run_id, url)
        run = wait_for_run(client, run_id, args.run_timeout_seconds, args.poll_seconds, args.max_poll_seconds, clock)
        result = _read_result(directory / "result.json")
        run_state = (
            run.state.result_state.value if run.state and run.state.result_state else run.state.life_cycle_state.value
        )
        emit("finished", iteration, artifact, run_id, status=result.get("status"), error=result.get("error"),
             duration_ms=int((clock.now() - started) * 1000), details={"run_state": run_state})  # fmt: skip
        iterations.append({"iteration": iteration, "executor_run_id": run_id, "run_state": run_state, "result": result})
        if run_state != "SUCCESS" or result.get("status") != "succeeded":
            write_json(root / "session.json", {"session_id": session, "status": "failed", "iterations": iterations})
            raise JobError(
                f"iteration {iteration}: executor run {run_id} {run_state}: {result.get('error', 'no error recorded')}"
            )
        previous = str(directory / "result.json")
        if (result.get("output") or {}).get("done"):
            log.info("iteration %d: the artifact reports done", iteration)
            break
    summary = {"session_id": session, "status": "completed", "iterations": iterations}
    write_json(root / "session.json", summary)
    log.info("session %s completed after %d iterations", session, len(iterations))
    return summary


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logs.setup()

    def run() -> None:
        client, auth = connect(args.token_secret, args.host_secret)
        orchestrate(args, client, auth, Clock())

    entry_point("rlm-orchestrator", run, args.job_id, args.job_run_id)
