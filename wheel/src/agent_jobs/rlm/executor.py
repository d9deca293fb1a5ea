"""`rlm-executor` (seed 003's job B): run one generated artifact and record what happened.

Reads its parameters (artifact path, run id, iteration), runs the artifact from the volume as its own Python
process under a supervisor (agent_jobs.rlm.processes: nothing it starts outlives the run), writes
`result.json` beside the artifact (whole, atomically) and appends a telemetry row. Only then does the task
fail, if the artifact did: there is never a crash without a result. Whatever stops the run, `result.json` says
what happened (`status`: succeeded, failed, timed_out, cancelled):

- bad arguments: a failed result with the usage error (beside the artifact when its path is usable, else in
  the working directory), exit status 2, the artifact not run;
- SIGTERM (a cancelled or timed-out job run): the artifact's processes are killed, `status: cancelled`;
- the artifact removed its directory: it is created again for the result; it made `result.json` a directory:
  the result goes to `executor-result.json` beside it, saying so (the orchestrator reads either).

The artifact's environment is explicit, not the executor's: PATH, HOME, locale, TMPDIR, the Python and Spark
variables a cluster's Python needs (ARTIFACT_ENV), RLM_RUN_ID, RLM_ITERATION, RLM_PREVIOUS_RESULT,
RLM_EXECUTION_ID, and the secrets named with --env-secret (NAME=<scope>/<key>, read at run time). No
DATABRICKS_TOKEN, nothing credential-named. Every secret value the executor knows of (those secrets, credential
variables of its own environment) is redacted from everything it records: result.json, the telemetry row,
its log. Output is kept as head and tail with a marker where it was cut (agent_jobs.rlm.processes); the last
line, if it is a JSON object of at most 64 KiB, becomes the result's `output` (`{"done": true}` ends the
orchestrator's loop).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from agent_jobs import logs
from agent_jobs.entry import at_least, entry_point
from agent_jobs.errors import Cancelled, JobError
from agent_jobs.files import write_json
from agent_jobs.redact import REDACTOR, is_credential_name
from agent_jobs.rlm import processes, telemetry
from agent_jobs.runtime import detect_runtime
from agent_jobs.secrets import REFERENCE_RULE, parse_reference, read_secret

log = logging.getLogger("agent_jobs.rlm.executor")

RESULT_NAME = "result.json"
FALLBACK_NAME = "executor-result.json"
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600
MAX_ERROR_CHARS = 2000
DRAIN_SECONDS = 2.0
"""After the artifact exits, how long its output pipes may stay open (held by a child) before the rest of its
processes are stopped and the result is its exit status."""
ARTIFACT_ENV = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP",
    "PYTHONPATH", "VIRTUAL_ENV", "JAVA_HOME", "SPARK_HOME", "PYSPARK_PYTHON", "HADOOP_CONF_DIR",
    "DATABRICKS_RUNTIME_VERSION", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
)  # fmt: skip
"""The executor's variables an artifact gets (plus LC_*), unless credential-named."""


def _env_secret(text: str) -> str:
    """An argparse type for NAME=<scope>/<key>; the reference is never echoed (it may be a pasted value)."""
    name, _, reference = text.partition("=")
    if not name.isidentifier() or not name.isascii():
        raise argparse.ArgumentTypeError("--env-secret must be NAME=<scope>/<key> with NAME an identifier")
    try:
        parse_reference(reference)
    except JobError:
        raise argparse.ArgumentTypeError(f"--env-secret {name}=...: {REFERENCE_RULE}") from None
    return text


def _artifact_path(text: str) -> str:
    path = Path(text)
    if not text.strip() or "\0" in text or not path.name or path.name in (".", "..") or text.endswith("/"):
        raise argparse.ArgumentTypeError("must be the path of the artifact file (like /Volumes/.../artifact.py)")
    if path.is_dir():
        raise argparse.ArgumentTypeError("is a directory, not the artifact file")
    return str(path.absolute())


class _Parser(argparse.ArgumentParser):
    """On a usage error, first leave a failed result where the orchestrator (or a person) looks for it."""

    def error(self, message: str) -> NoReturn:
        raw = argparse.ArgumentParser(add_help=False)
        for option in ("--artifact-path", "--run-id", "--iteration", "--job-id", "--job-run-id"):
            raw.add_argument(option, default=None)
        known, _ = raw.parse_known_args(getattr(self, "_argv", []))
        result = {"status": "failed", "error": f"rlm-executor: {message}", "artifact_path": known.artifact_path,
                  "run_id": known.run_id, "iteration": known.iteration}  # fmt: skip
        where = _usable_result_path(known.artifact_path)
        written = _write_result(where, result)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message} (failed result: {written or 'not written'})\n")

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._argv = list(sys.argv[1:] if args is None else args)
        return super().parse_args(self._argv, namespace)


def _usable_result_path(artifact_path: str | None) -> Path:
    """Beside the artifact when its path names a file; else in the working directory."""
    try:
        return Path(_artifact_path(artifact_path or "")).with_name(RESULT_NAME)
    except (argparse.ArgumentTypeError, ValueError, OSError):
        return Path.cwd() / RESULT_NAME


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rlm-executor", description="Run one RLM artifact and record its result.")
    parser.add_argument("--artifact-path", required=True, type=_artifact_path,
                        help="the artifact (a Python script) on a volume")  # fmt: skip
    parser.add_argument("--run-id", required=True, help="the orchestrator session this artifact belongs to")
    parser.add_argument("--iteration", type=at_least(0, 10**6), default=0, help="iteration of the loop")
    parser.add_argument("--previous-result", default="", help="result.json of the previous iteration, if any")
    parser.add_argument("--timeout-seconds", type=at_least(1, MAX_TIMEOUT_SECONDS), default=3600,
                        help="stop the artifact (and everything it started) after this long")  # fmt: skip
    parser.add_argument("--env-secret", action="append", default=[], metavar="NAME=SCOPE/KEY", type=_env_secret,
                        help="put this secret into the artifact's environment as NAME")  # fmt: skip
    parser.add_argument("--catalog", help="telemetry table catalog (ADK_DELTA_CATALOG)")
    parser.add_argument("--schema", help="telemetry table schema (ADK_DELTA_SCHEMA)")
    parser.add_argument("--telemetry-warehouse-id", help="write telemetry through this SQL warehouse")
    parser.add_argument("--job-id", help="{{job.id}}")
    parser.add_argument("--job-run-id", help="{{job.run_id}}")
    return parser


def artifact_environment(args: argparse.Namespace, secrets: dict[str, str], env: dict[str, str]) -> dict[str, str]:
    """What the artifact sees: the allow-listed variables, its run's context and its secrets."""
    kept = {k: v for k, v in env.items() if (k in ARTIFACT_ENV or k.startswith("LC_")) and not is_credential_name(k)}
    return {**kept, "PYTHONUNBUFFERED": "1", "RLM_RUN_ID": args.run_id, "RLM_ITERATION": str(args.iteration),
            "RLM_PREVIOUS_RESULT": args.previous_result, **secrets}  # fmt: skip


def _read_secrets(specs: list[str]) -> dict[str, str]:
    env = {}
    for spec in specs:
        name, _, reference = spec.partition("=")
        env[name] = read_secret(reference)
    return env


def _strict_json(line: bytes) -> tuple[Any, str | None]:
    def reject(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    def finite(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(f"{text[:20]} is not a finite number")
        return value

    try:
        value = json.loads(line.decode("utf-8", "replace"), parse_constant=reject, parse_float=finite)
    except RecursionError:
        return None, "the last output line is nested too deeply to read"
    except ValueError:
        return None, None  # not JSON: plain output
    return (value, None) if isinstance(value, dict) else (None, None)


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:MAX_ERROR_CHARS] if lines else "no output"


def outcome_fields(outcome: processes.Outcome, timeout: float) -> dict[str, Any]:
    """The result's fields for an artifact's outcome, redacted."""
    margin = REDACTOR.longest
    stdout, stderr = outcome.stdout.text(REDACTOR.text, margin), outcome.stderr.text(REDACTOR.text, margin)
    fields: dict[str, Any] = {"exit_code": outcome.exit_code, "stdout_tail": stdout, "stderr_tail": stderr,
                              "stdout_bytes": outcome.stdout.total, "stderr_bytes": outcome.stderr.total,
                              "stopped_processes": outcome.stopped, "output": None}  # fmt: skip
    line, why = outcome.stdout.last_line()
    if line is not None:
        fields["output"], why = _strict_json(line)
    if why:
        fields["output_error"] = why
    if outcome.status == "exited":
        fields["status"] = "succeeded" if outcome.exit_code == 0 else "failed"
        if outcome.exit_code != 0:
            code = outcome.exit_code
            how = f"was killed by {signal.Signals(-code).name} (status {code})" if code and code < 0 else ""
            fields["error"] = f"artifact {how or f'exited with status {code}'}: {_last_line(stderr)}"
    elif outcome.status == "timed_out":
        fields.update(status="timed_out", error=f"artifact did not finish within {timeout:g} seconds and was stopped")
    elif outcome.status == "cancelled":
        fields.update(status="cancelled", error="the executor was stopped (SIGTERM): the artifact was stopped too")
    elif outcome.status == "lost":
        fields.update(status="failed", error="the artifact's supervisor was killed (by the artifact?): stopped all")
    else:
        fields.update(status="failed", error=outcome.error or "the artifact could not be started")
    if outcome.stopped and outcome.status == "exited":
        log.warning("the artifact left %d process(es) running; they were stopped", outcome.stopped)
    return fields


class _Stop:
    """SIGTERM/SIGINT while the artifact runs: remember it; the run loop stops the artifact and records it."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self) -> bool:
        return self.signal is not None

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread (e.g. an in-process caller's worker)
            return

        def handler(signum: int, frame: object) -> None:
            self.signal = signum

        previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, old in previous.items():
                signal.signal(s, old)


def _write_result(path: Path, result: dict[str, Any]) -> Path | None:
    """Write `result` (redacted) at `path` whatever the artifact did to its directory, noting in `result` what
    was repaired; where it was written, or None."""
    try:
        if not path.parent.is_dir():
            log.warning("the artifact's directory %s is gone; creating it for the result", path.parent)
            result.setdefault("notes", []).append(f"{path.parent} did not exist when the result was written: created")
            path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir() or (path.is_symlink() and not path.is_file()):
            fallback = path.with_name(FALLBACK_NAME)
            note = f"{path} is a directory (or a dangling link) made during the run: the result is in {fallback}"
            log.error("%s", note)
            result.setdefault("notes", []).append(note)
            path = fallback
        write_json(path, REDACTOR.value(result))
        return path
    except (OSError, ValueError) as exc:
        log.error("cannot write the result to %s: %s", path, exc)
        return None


def execute(
    args: argparse.Namespace, *, drain_seconds: float | None = None, clock: Callable[[], float] = time.monotonic
) -> dict[str, Any]:
    runtime = detect_runtime(os.environ, args.job_id, args.job_run_id)
    artifact = Path(args.artifact_path)
    result_path = artifact.with_name(RESULT_NAME)
    started = clock()
    REDACTOR.add_environment(os.environ)
    log.info("running %s (session %s, iteration %s)", artifact, args.run_id, args.iteration)
    result: dict[str, Any] = {
        "artifact_path": str(artifact),
        "run_id": args.run_id,
        "iteration": args.iteration,
        "job_id": runtime.job_id,
        "job_run_id": runtime.job_run_id,
    }
    stop = _Stop()
    with stop.installed():
        try:
            secrets = _read_secrets(args.env_secret)
            if not artifact.is_file():
                raise JobError(f"artifact {artifact} does not exist")
            outcome = processes.run(
                [sys.executable, str(artifact)],
                artifact_environment(args, secrets, dict(os.environ)),
                artifact.parent,
                args.timeout_seconds,
                stop,
                drain_seconds=DRAIN_SECONDS if drain_seconds is None else drain_seconds,
                clock=clock,
            )
            result.update(outcome_fields(outcome, args.timeout_seconds))
        except JobError as exc:
            result.update(status="failed", error=str(exc))
        except Exception as exc:  # whatever breaks here, the result still says so
            log.exception("the executor failed")
            result.update(status="failed", error=f"executor error: {type(exc).__name__}: {exc}")
        if stop():
            result.update(status="cancelled", error=f"the executor received signal {stop.signal}: run stopped")
        result["duration_ms"] = int((clock() - started) * 1000)
        written = _write_result(result_path, result)
    result = REDACTOR.value(result)
    result["result_path"] = str(written) if written else None
    log.info("result %s: %s", result["status"], written or "not written")
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
        details={
            "exit_code": result.get("exit_code"),
            "output": result.get("output"),
            "result_path": result.get("result_path"),
        },
    )
    sink = telemetry.sink(args.catalog, args.schema, args.telemetry_warehouse_id, Path(args.artifact_path).parent)
    telemetry_error = None
    try:
        sink.write([event])
    except Exception as exc:
        telemetry_error = f"the telemetry row could not be appended: {exc}"
    if result["status"] == "cancelled":
        raise Cancelled(f"artifact cancelled: {result.get('error')}")
    if result["status"] != "succeeded":
        extra = f"; {telemetry_error}" if telemetry_error else ""
        raise JobError(f"artifact {result['status']}: {result.get('error')}{extra}")
    if result.get("result_path") is None:
        raise JobError(f"the artifact succeeded, but its result could not be written beside {args.artifact_path}")
    if telemetry_error:
        raise JobError(f"result written, but {telemetry_error}")
