"""`python -m infra run`, as users run it, against the local stand-in for the Jobs and Clusters APIs
(driven by the real databricks-sdk): cluster start with a bounded wait, the run's URL, following it, exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from standin import StandIn
from tests.conftest import ROOT

CLUSTER = "1115-120035-jyzgoasz"
OUTPUTS = {"eval_agent_job_id": "11", "rlm_orchestrator_job_id": "21", "rlm_executor_job_id": "22", "catalog": "main"}


@pytest.fixture
def workspace() -> Iterator[StandIn]:
    with StandIn() as server:
        server.clusters[CLUSTER] = {"state": "TERMINATED", "polls_to_start": 2}
        yield server


def run(tmp_path: Path, standin: StandIn, *args: str, outputs: dict[str, str] | None = OUTPUTS,
        path: str | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    extra = []
    if outputs is not None:
        (tmp_path / "outputs.json").write_text(json.dumps(outputs))
        extra = ["--outputs", str(tmp_path / "outputs.json")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
    env.update(DATABRICKS_TOKEN="dapi-cli-user", PATH=path or env["PATH"])
    command = [sys.executable, "-m", "infra", "run", *args, "--host", standin.url, "--poll-seconds", "0.01", *extra]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_job_on_an_existing_cluster_starts_it_runs_and_follows(tmp_path: Path, workspace: StandIn) -> None:
    """The seed's run-and-wait: start the cluster (progress shown), trigger, print the URL, follow to the end."""
    result = run(tmp_path, workspace, "rlm_orchestrator", "--stack", "dev", "--wait", "--param", "max_iterations=5")
    assert result.returncode == 0, result.stderr
    assert workspace.clusters[CLUSTER]["starts"] == 1
    assert f"cluster {CLUSTER} is TERMINATED: starting it" in result.stderr
    assert (
        f"waiting for cluster {CLUSTER}: PENDING" in result.stderr and f"cluster {CLUSTER} is running" in result.stderr
    )
    (run_now,) = workspace.posts("/api/2.2/jobs/run-now")
    assert run_now["body"] == {"job_id": 21, "job_parameters": {"max_iterations": "5"}}
    assert run_now["headers"]["Authorization"] == "Bearer dapi-cli-user"
    lines = result.stdout.splitlines()
    assert lines == [f"run 1000 of job 21: {workspace.url}/#job/21/run/1000", "run 1000 finished: SUCCESS"]
    assert "run 1000: RUNNING" in result.stderr and "run 1000: TERMINATED" in result.stderr
    assert "Failed" not in result.stderr and "Traceback" not in result.stderr


def test_failed_run_is_the_exit_status(tmp_path: Path, workspace: StandIn) -> None:
    workspace.clusters[CLUSTER]["state"] = "RUNNING"
    workspace.job_handlers[22] = lambda _: "FAILED"
    result = run(tmp_path, workspace, "rlm_executor", "--stack", "dev", "--wait")
    assert result.returncode == 1
    assert "run 1000 finished: FAILED (task failed)" in result.stdout
    assert "starts" not in workspace.clusters[CLUSTER]  # already running: not started again


def test_cluster_wait_is_bounded(tmp_path: Path, workspace: StandIn) -> None:
    """A cluster that does not come up in time ends the command without starting a run."""
    workspace.clusters[CLUSTER]["polls_to_start"] = 10**6
    result = run(tmp_path, workspace, "rlm_executor", "--stack", "dev", "--cluster-timeout-seconds", "0.2")
    assert result.returncode == 1
    assert f"error: cluster {CLUSTER} is still PENDING after" in result.stderr and "limit 0.2s" in result.stderr
    assert not workspace.posts("/api/2.2/jobs/run-now")


def test_serverless_job_without_wait_prints_the_url_and_returns(tmp_path: Path, workspace: StandIn) -> None:
    result = run(tmp_path, workspace, "eval_agent", "--stack", "dev", "--param", "experiment_id=42")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"run 1000 of job 11: {workspace.url}/#job/11/run/1000"
    assert not workspace.calls("/api/2.1/clusters/get")
    assert len(workspace.calls("/api/2.2/jobs/runs/get")) == 1  # only for the URL: not followed


def test_outputs_come_from_the_pulumi_cli(tmp_path: Path, workspace: StandIn) -> None:
    """Without --outputs, the job id comes from `pulumi stack output --json --stack NAME`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "pulumi"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/args\necho '{json.dumps(OUTPUTS)}'\n")
    fake.chmod(0o755)
    result = run(
        tmp_path, workspace, "eval_agent", "--stack", "dev", outputs=None, path=f"{bin_dir}:{os.environ['PATH']}"
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "args").read_text().split() == ["stack", "output", "--json", "--stack", "dev"]


@pytest.mark.parametrize(
    ("args", "outputs", "expected"),
    [
        (["agent_setup", "--stack", "dev"], OUTPUTS, "stack dev has no output agent_setup_job_id"),
        (["eval_agent", "--stack", "dev", "--param", "noequals"], OUTPUTS, "--param 'noequals': allowed: KEY=VALUE"),
        (["eval_agent", "--stack", "staging"], OUTPUTS, "Pulumi.staging.yaml: no such stack file"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, workspace: StandIn, args: list[str], outputs: dict[str, str], expected: str
) -> None:
    result = run(tmp_path, workspace, *args, outputs=outputs)
    assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr


def test_missing_pulumi_cli_is_a_clear_error(tmp_path: Path, workspace: StandIn) -> None:
    result = run(tmp_path, workspace, "eval_agent", "--stack", "dev", outputs=None, path=str(tmp_path))
    assert result.returncode == 2
    assert "the Pulumi CLI is not installed; pass the outputs with --outputs FILE" in result.stderr
