"""`rlm-executor` (seed 003's job B): run one generated artifact and record what happened.

Reads its parameters (artifact path, run id, iteration), runs the artifact from the volume as its own Python
process (so a hanging one can be stopped at the timeout, process group and all), writes `result.json` beside
the artifact (whole, atomically) and appends a telemetry row. A failing, missing or hanging artifact gives a
failed result holding the error; only then does the task fail, so there is never a crash without output.

The artifact gets RLM_RUN_ID, RLM_ITERATION, RLM_PREVIOUS_RESULT and the secrets named with --env-secret
(NAME=<scope>/<key>, read at run time) in its environment; the last line of its output, if it is a JSON
object, becomes the result's `output` (`{"done": true}` ends the orchestrator's loop).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from agent_jobs import logs
from agent_jobs.entry import at_least, entry_point
from agent_jobs.errors import JobError
from agent_jobs.files import write_json
from agent_jobs.rlm import telemetry
from agent_jobs.runtime import detect_runtime
from agent_jobs.secrets import parse_reference, read_secret

log = logging.getLogger("agent_jobs.rlm.executor")

TAIL = 4000  # characters of stdout/stderr kept in the result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlm-executor", description="Run one RLM artifact and record its result.")
    parser.add_argument("--artifact-path", required=True, help="the artifact (a Python script) on a volume")
    parser.add_argument("--run-id", required=True, help="the orchestrator session this artifact belongs to")
    parser.add_argument("--iteration", type=at_least(0), default=0, help="iteration of the orchestration loop")
    parser.add_argument("--previous-result", default="", help="result.json of the previous iteration, if any")
    parser.add_argument("--timeout-seconds", type=at_least(1), default=3600, help="stop the artifact after this long")
    parser.add_argument("--env-secret", action="append", default=[], metavar="NAME=SCOPE/KEY",
                        help="put this secret into the artifact's environment as NAME")  # fmt: skip
    parser.add_argument("--catalog", help="telemetry table catalog (ADK_DELTA_CATALOG)")
    parser.add_argument("--schema", help="telemetry table schema (ADK_DELTA_SCHEMA)")
    parser.add_argument("--telemetry-warehouse-id", help="write telemetry through this SQL warehouse")
    parser.add_argument("--job-id", help="{{job.id}}")
    parser.add_argument("--job-run-id", help="{{job.run_id}}")
    return parser


def _secret_env(specs: list[str]) -> dict[str, str]:
    env = {}
    for spec in specs:
        name, _, reference = spec.partition("=")
        if not name.isidentifier():
            raise JobError(f"--env-secret must be NAME=<scope>/<key>, got {spec!r}")
        parse_reference(reference)
        env[name] = read_secret(reference)
    return env


def _tail(text: str | bytes | None) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return (text or "")[-TAIL:]


def _output(stdout: str) -> Any:
    lines = [line for line in stdout.strip().splitlines() if line.strip()]
    if lines:
        try:
            value = json.loads(lines[-1])
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None
    return None


def run_artifact(artifact: Path, env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run the artifact as its own process group; the outcome as result fields."""
    if not artifact.is_file():
        return {"status": "failed", "error": f"artifact {artifact} does not exist"}
    process = subprocess.Popen(
        [sys.executable, str(artifact)],
        cwd=artifact.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a timeout stops its children too
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        return {
            "status": "timed_out",
            "error": f"artifact did not finish within {timeout:g} seconds and was stopped",
            "stdout_tail": _tail(stdout),
            "stderr_tail": _tail(stderr),
        }
    result: dict[str, Any] = {
        "status": "succeeded" if process.returncode == 0 else "failed",
        "exit_code": process.returncode,
        "stdout_tail": _tail(stdout),
        "stderr_tail": _tail(stderr),
        "output": _output(stdout),
    }
    if process.returncode != 0:
        last = [line for line in _tail(stderr).splitlines() if line.strip()]
        result["error"] = f"artifact exited with status {process.returncode}: {last[-1] if last else 'no output'}"
    return result


def execute(args: argparse.Namespace) -> dict[str, Any]:
    runtime = detect_runtime(os.environ, args.job_id, args.job_run_id)
    artifact = Path(args.artifact_path)
    result_path = artifact.with_name("result.json")
    started = time.monotonic()
    log.info("running %s (session %s, iteration %s)", artifact, args.run_id, args.iteration)
    result: dict[str, Any] = {
        "artifact_path": str(artifact),
        "run_id": args.run_id,
        "iteration": args.iteration,
        "job_id": runtime.job_id,
        "job_run_id": runtime.job_run_id,
    }
    try:
        env = {
            **os.environ,
            "RLM_RUN_ID": args.run_id,
            "RLM_ITERATION": str(args.iteration),
            "RLM_PREVIOUS_RESULT": args.previous_result,
            **_secret_env(args.env_secret),
        }
        result.update(run_artifact(artifact, env, args.timeout_seconds))
    except JobError as exc:
        result.update(status="failed", error=str(exc))
    result["duration_ms"] = int((time.monotonic() - started) * 1000)
    if artifact.parent.is_dir():
        write_json(result_path, result)
        log.info("result %s: %s", result["status"], result_path)
    else:
        log.error("cannot write %s: the artifact's directory does not exist", result_path)
    return result


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logs.setup()
    entry_point("rlm-executor", lambda: record(args, execute(args)), args.job_id, args.job_run_id)


def record(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """Append the telemetry row; then fail the task if the artifact failed (its result is already written)."""
    event = telemetry.Event(
        source="executor",
        event="result",
        session_id=args.run_id,
        iteration=args.iteration,
        job_id=result["job_id"],
        job_run_id=result["job_run_id"],
        executor_run_id=result["job_run_id"],
        artifact_path=result["artifact_path"],
        status=result["status"],
        duration_ms=result["duration_ms"],
        error=result.get("error"),
        details={"exit_code": result.get("exit_code"), "output": result.get("output")},
    )
    sink = telemetry.sink(args.catalog, args.schema, args.telemetry_warehouse_id, Path(args.artifact_path).parent)
    try:
        sink.write([event])
    except Exception as exc:
        raise JobError(f"result written, but the telemetry row could not be appended: {exc}") from exc
    if result["status"] != "succeeded":
        raise JobError(f"artifact {result['status']}: {result.get('error')}")
