"""`python -m infra run JOB --stack NAME [--wait] [--param k=v]`: what seed 003's run-and-wait script did.

The job's id comes from the stack's outputs (`pulumi stack output --json`, or a file given with --outputs); the
workspace and the job's compute from the stack's settings. A job on an existing cluster gets that cluster
started first (bounded wait, progress shown). The run's URL is printed; with --wait the run is followed to its
end and its result becomes the exit status: 0 SUCCESS, 1 anything else, 2 bad arguments or configuration.

Everything that can be wrong with the arguments (settings, outputs, parameters, credentials) is found before
the first request that changes anything. One idempotency token per invocation: the SDK's own retry of a
run-now whose response was lost gets the run it already started, never a second one. Every call to the
workspace, retries included, gives up after `--timeout-seconds`, naming the host. Also used by
`python -m infra verify` (stack outputs, the workspace client, how an unreachable host is reported).
"""

from __future__ import annotations

import json
import logging
import math
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from infra.settings import Compute, ExistingClusterCompute, SettingsError, StackSettings, parse_settings
from infra.systems import SYSTEMS
from infra.tools.offline import read_stack_config

TERMINAL = {"TERMINATED", "SKIPPED", "INTERNAL_ERROR"}
TIMEOUT_SECONDS = 120.0  # default --timeout-seconds: one call to the workspace, retries included
HTTP_TIMEOUT_SECONDS = 30.0  # one attempt of a call at most (databricks-sdk's http_timeout_seconds)
MAX_OUTPUTS_BYTES = 16 * 1024 * 1024
AUTH_HELP = (
    "set DATABRICKS_TOKEN, or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET (a service principal), or "
    "workspace.profile in the stack file (a profile of ~/.databrickscfg)"
)


class RunError(Exception):
    """The run could not be started or followed (exit status 1)."""


def job_compute(settings: StackSettings, job: str) -> Compute | None:
    """The compute the job's declaration names (infra.systems), None when it has none to start."""
    for system in SYSTEMS:
        for decl in system.jobs:
            if decl.key == job and decl.compute is not None:
                compute: Compute | None = getattr(settings.system(system.key), decl.compute, None)
                return compute
    return None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_outputs(text: str, source: str) -> dict[str, Any]:
    """Stack outputs as `pulumi stack output --json` prints them: one JSON object. SettingsError otherwise."""
    if len(text) > MAX_OUTPUTS_BYTES:
        raise SettingsError(f"{source}: larger than {MAX_OUTPUTS_BYTES // 2**20} MiB; allowed: the JSON object "
                            "`pulumi stack output --json` prints")  # fmt: skip
    try:
        outputs = json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        raise SettingsError(f"{source}: nested too deeply; allowed: the JSON object `pulumi stack output --json` "
                            "prints") from None  # fmt: skip
    except ValueError as exc:  # JSONDecodeError included
        raise SettingsError(f"{source}: is not JSON ({exc}); allowed: the object `pulumi stack output --json` "
                            "prints") from None  # fmt: skip
    if not isinstance(outputs, dict):
        raise SettingsError(f"{source}: is a JSON {type(outputs).__name__}, not an object; allowed: the object "
                            "`pulumi stack output --json` prints, like {\"eval_agent_job_id\": \"123\"}")  # fmt: skip
    return outputs


def stack_outputs(stack: str, outputs_file: Path | None) -> dict[str, Any]:
    """The stack's outputs, from a file or the Pulumi CLI."""
    if outputs_file is not None:
        try:
            text = outputs_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise SettingsError(f"--outputs {outputs_file}: cannot be read ({why})") from None
        return parse_outputs(text, f"--outputs {outputs_file}")
    try:
        result = subprocess.run(
            ["pulumi", "stack", "output", "--json", "--stack", stack], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise SettingsError(
            "the Pulumi CLI is not installed; pass the outputs with --outputs FILE "
            "(written by `pulumi stack output --json > FILE` where the CLI is)"
        ) from None
    if result.returncode != 0:
        raise SettingsError(f"`pulumi stack output --stack {stack}` failed: {result.stderr.strip()}")
    return parse_outputs(result.stdout, f"`pulumi stack output --stack {stack}`")


def output_job_id(outputs: dict[str, Any], key: str, source: str) -> int:
    """A `<job>_job_id` output as a number (Pulumi prints ids as text)."""
    value = outputs[key]
    text = value if isinstance(value, str) else str(value) if type(value) is int else ""
    if not re.fullmatch(r"[1-9][0-9]{0,18}", text):
        shown = json.dumps(value)[:60] if not isinstance(value, dict | list) else f"a JSON {type(value).__name__}"
        raise SettingsError(f"{source}: {key} is {shown}; allowed: a job id, a positive whole number like 123456789")
    return int(text)


def workspace_client(host: str, profile: str | None, timeout: float, stack_file: str, clock: Any = None) -> Any:
    """databricks-sdk's client for the stack's workspace, every call (retries included) bounded by `timeout`.
    No credentials, or a profile that cannot be used, is a SettingsError that says how to authenticate."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    # The SDK logs its retries and its start-up probe of the host as warnings; the tools report failures
    # themselves, naming the host.
    logging.getLogger("databricks.sdk").addHandler(logging.NullHandler())
    try:
        config = Config(
            host=host,
            profile=profile,
            retry_timeout_seconds=max(1, math.ceil(timeout)),  # an int in the SDK: 0 would mean its default, 300
            http_timeout_seconds=min(timeout, HTTP_TIMEOUT_SECONDS),
            clock=clock,
        )
    except ValueError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        how = AUTH_HELP.replace("the stack file", stack_file)
        raise SettingsError(f"cannot authenticate to {host} ({reason}); {how}") from None
    return WorkspaceClient(config=config)


def unreachable(host: str, timeout: float, exc: BaseException) -> str:
    """The message for a call that gave up: the host, the bound, and the last low-level error, briefly."""
    cause = exc.__cause__ or exc.__context__ or exc
    text = str(cause)
    found = re.search(r"\[Errno -?\d+\][^'\")]*|Connection reset by peer|Remote end closed connection[^'\")]*|"
                      r"Read timed out|timed out", text)  # fmt: skip
    why = found.group(0).strip() if found else (text[:160] or type(cause).__name__)
    return (f"cannot reach the workspace at {host}: no answer within {timeout:g}s, retries included ({why}); "
            "check workspace.host (or --host) and the network")  # fmt: skip


@dataclass
class Follower:
    """Polls with a fixed interval and a bound, reporting progress on `out` (injectable for tests)."""

    out: TextIO
    poll_seconds: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], float] = time.monotonic

    def say(self, message: str) -> None:
        print(message, file=self.out, flush=True)


def ensure_cluster_running(client: Any, cluster_id: str, timeout: float, follow: Follower) -> None:
    """Start the job's existing cluster if needed and wait, bounded, until it runs."""
    started, asked = follow.now(), False
    while True:
        state = client.clusters.get(cluster_id).state.value
        if state == "RUNNING":
            follow.say(f"cluster {cluster_id} is running")
            return
        if state in ("TERMINATED", "ERROR") and not asked:
            follow.say(f"cluster {cluster_id} is {state}: starting it")
            client.clusters.start(cluster_id)
            asked = True
        elif state in ("TERMINATED", "ERROR"):
            raise RunError(f"cluster {cluster_id} did not start (state {state})")
        elapsed = follow.now() - started
        if elapsed + follow.poll_seconds > timeout:
            raise RunError(
                f"cluster {cluster_id} is still {state} after {elapsed:.0f}s; giving up (limit {timeout:g}s)"
            )
        follow.say(f"waiting for cluster {cluster_id}: {state} ({elapsed:.0f}s of at most {timeout:g}s)")
        follow.sleep(follow.poll_seconds)


def follow_run(client: Any, run_id: int, timeout: float | None, follow: Follower) -> Any:
    """Report each state change until the run ends (or the bound passes)."""
    started, last = follow.now(), None
    while True:
        run = client.jobs.get_run(run_id)
        state = run.state.life_cycle_state.value
        if state != last:
            follow.say(f"run {run_id}: {state}")
            last = state
        if state in TERMINAL:
            return run
        if timeout is not None and follow.now() - started + follow.poll_seconds > timeout:
            raise RunError(f"run {run_id} is still {state} after {timeout:g}s; it keeps running: {run.run_page_url}")
        follow.sleep(follow.poll_seconds)


def run_job(
    client: Any,
    job_id: int,
    parameters: dict[str, str],
    cluster_id: str | None,
    wait: bool,
    cluster_timeout: float,
    run_timeout: float | None,
    follow: Follower,
    out: TextIO,
    token: str | None = None,
) -> int:
    """Start (and maybe follow) one run; returns the exit status. `token`: this invocation's idempotency token
    (a new one by default), so that a run-now retried after a lost response returns the run it started."""
    if cluster_id:
        ensure_cluster_running(client, cluster_id, cluster_timeout, follow)
    token = token or str(uuid.uuid4())  # 36 characters: the Jobs API allows 64
    run_id = int(client.jobs.run_now(job_id=job_id, job_parameters=parameters or None, idempotency_token=token).run_id)
    url = client.jobs.get_run(run_id).run_page_url
    print(f"run {run_id} of job {job_id}: {url}", file=out, flush=True)
    if not wait:
        return 0
    run = follow_run(client, run_id, run_timeout, follow)
    result = run.state.result_state.value if run.state.result_state else run.state.life_cycle_state.value
    message = f" ({run.state.state_message})" if run.state.state_message else ""
    print(f"run {run_id} finished: {result}{message}", file=out, flush=True)
    return 0 if result == "SUCCESS" else 1


def main(args: Any, root: Path, clock: Any = None) -> int:
    """`python -m infra run` (arguments parsed by infra.__main__). `clock` (time() and sleep()): the SDK's
    retries and the polling, for tests."""
    config = read_stack_config(root, args.stack, args.config_file)
    settings = parse_settings(config.values, config.secret_keys, project=config.project, stack_file=config.stack_file)
    parameters = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SettingsError(f"--param {item!r}: allowed: KEY=VALUE, like experiment_id=123456789")
        parameters[key] = value
    outputs = stack_outputs(args.stack, args.outputs)
    key = f"{args.job}_job_id"
    if key not in outputs:
        present = ", ".join(sorted(k.removesuffix("_job_id") for k in outputs if k.endswith("_job_id"))) or "none"
        raise SettingsError(
            f"stack {args.stack} has no output {key} (is the system enabled and deployed?); jobs: {present}"
        )
    job_id = output_job_id(outputs, key, f"--outputs {args.outputs}" if args.outputs else f"stack {args.stack}")
    compute = job_compute(settings.settings, args.job)
    cluster_id = compute.cluster_id if isinstance(compute, ExistingClusterCompute) else None
    host = args.host or settings.settings.workspace.host
    client = workspace_client(host, settings.settings.workspace.profile, args.timeout_seconds, config.stack_file, clock)
    follow = Follower(out=sys.stderr, poll_seconds=args.poll_seconds)
    if clock is not None:
        follow.sleep, follow.now = clock.sleep, clock.time
    try:
        return run_job(
            client, job_id, parameters, cluster_id, args.wait,
            args.cluster_timeout_seconds, args.run_timeout_seconds, follow, sys.stdout,
        )  # fmt: skip
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except TimeoutError as exc:  # databricks-sdk gave up retrying: refused, reset, or no answer
        print(f"error: {unreachable(host, args.timeout_seconds, exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # the SDK's errors: authentication, permissions, not found
        print(f"error: {host}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
