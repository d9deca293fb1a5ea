"""`python -m infra run JOB --stack NAME [--wait] [--param k=v]`: what seed 003's run-and-wait script did.

The job's id comes from the stack's outputs (`pulumi stack output --json`, or a file given with --outputs); the
workspace and the job's compute from the stack's settings. A job on an existing cluster gets that cluster
started first (bounded wait, progress shown). The run's URL is printed; with --wait the run is followed to its
end and its result becomes the exit status: 0 SUCCESS, 1 anything else, 2 bad arguments or configuration.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from infra.offline import read_stack_config
from infra.settings import Compute, ExistingClusterCompute, SettingsError, StackSettings, parse_settings

TERMINAL = {"TERMINATED", "SKIPPED", "INTERNAL_ERROR"}


class RunError(Exception):
    """The run could not be started or followed (exit status 1)."""


def job_compute(settings: StackSettings, job: str) -> Compute:
    if job == "eval_agent":
        return settings.eval_agent.compute
    if job.startswith("rlm_"):
        return settings.rlm.compute
    return settings.health_monitor.compute


def stack_outputs(stack: str, outputs_file: Path | None) -> dict[str, Any]:
    """The stack's outputs, from a file or the Pulumi CLI."""
    if outputs_file is not None:
        try:
            return dict(json.loads(outputs_file.read_text()))
        except (OSError, ValueError) as exc:
            raise SettingsError(f"{outputs_file}: cannot read stack outputs ({exc})") from None
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
    return dict(json.loads(result.stdout))


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
) -> int:
    """Start (and maybe follow) one run; returns the exit status."""
    if cluster_id:
        ensure_cluster_running(client, cluster_id, cluster_timeout, follow)
    run_id = int(client.jobs.run_now(job_id=job_id, job_parameters=parameters or None).run_id)
    url = client.jobs.get_run(run_id).run_page_url
    print(f"run {run_id} of job {job_id}: {url}", file=out, flush=True)
    if not wait:
        return 0
    run = follow_run(client, run_id, run_timeout, follow)
    result = run.state.result_state.value if run.state.result_state else run.state.life_cycle_state.value
    message = f" ({run.state.state_message})" if run.state.state_message else ""
    print(f"run {run_id} finished: {result}{message}", file=out, flush=True)
    return 0 if result == "SUCCESS" else 1


def main(args: Any, root: Path, client_factory: Callable[..., Any] | None = None) -> int:
    """`python -m infra run` (arguments parsed by infra.__main__)."""
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
    compute = job_compute(settings.settings, args.job)
    cluster_id = compute.cluster_id if isinstance(compute, ExistingClusterCompute) else None
    if client_factory is None:
        from databricks.sdk import WorkspaceClient

        client_factory = WorkspaceClient
    host = args.host or settings.settings.workspace.host
    client = client_factory(host=host, profile=settings.settings.workspace.profile)
    follow = Follower(out=sys.stderr, poll_seconds=args.poll_seconds)
    try:
        return run_job(
            client, int(outputs[key]), parameters, cluster_id, args.wait,
            args.cluster_timeout_seconds, args.run_timeout_seconds, follow, sys.stdout,
        )  # fmt: skip
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the SDK's errors: authentication, permissions, not found, network
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
