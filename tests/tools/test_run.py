"""`python -m infra run`, as users run it (in this process), against the local stand-in for the Jobs and Clusters
APIs driven by the real databricks-sdk: cluster start with a bounded wait, the run's URL, following it, exit
status; one idempotency token per invocation; a host that refuses or resets connections given up on within the
configured time, named; bad arguments, outputs and missing credentials refused before anything starts. Time is
a fake clock: no test sleeps for the SDK's retry back-off."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from databricks.sdk import clock as sdk_clock

from infra.tools.cli import TIMEOUT_HELP, main
from infra.tools.run import HTTP_TIMEOUT_SECONDS, TIMEOUT_SECONDS
from standin import StandIn
from tests.workspace_standin import FakeClock, Resetting

CLUSTER = "1115-120035-jyzgoasz"
OUTPUTS = {"eval_agent_job_id": "11", "rlm_orchestrator_job_id": "21", "rlm_executor_job_id": "22", "catalog": "main"}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The injected clock; the SDK's start-up probe of the host builds its own client on the real clock, so the
    real clock's methods follow the fake one too (else a refused host costs real back-off seconds)."""
    fake = FakeClock()
    monkeypatch.setattr(sdk_clock.RealClock, "time", lambda _: fake.time())
    monkeypatch.setattr(sdk_clock.RealClock, "sleep", lambda _, s: fake.sleep(s))
    return fake


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials as a user's shell has them (a token), and no ~/.databrickscfg to fall back on."""
    for name in [k for k in os.environ if k.startswith("DATABRICKS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-cli-user")
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.fixture
def workspace(env: None) -> Iterator[StandIn]:
    with StandIn() as server:
        server.clusters[CLUSTER] = {"state": "TERMINATED", "polls_to_start": 2}
        yield server


def run(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    host: str,
    *args: str,
    outputs: dict[str, Any] | str | None = OUTPUTS,
    clock: FakeClock | None = None,
) -> tuple[int, str, str]:
    """`python -m infra run ARGS --host HOST [--outputs FILE]`: (exit status, stdout, stderr)."""
    extra = []
    if outputs is not None:
        (tmp_path / "outputs.json").write_text(outputs if isinstance(outputs, str) else json.dumps(outputs))
        extra = ["--outputs", str(tmp_path / "outputs.json")]
    try:
        code = main(["run", *args, "--host", host, "--poll-seconds", "5", *extra], clock=clock or FakeClock())
    except SystemExit as exc:  # argparse: usage errors
        code = int(str(exc.code))
    out, err = capsys.readouterr()
    return code, out, err


def test_job_on_an_existing_cluster_starts_it_runs_and_follows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, workspace: StandIn
) -> None:
    """The seed's run-and-wait: start the cluster (progress shown), trigger, print the URL, follow to the end."""
    code, out, err = run(
        capsys, tmp_path, workspace.url, "rlm_orchestrator", "--stack", "dev", "--wait", "--param", "max_iterations=5"
    )
    assert code == 0, err
    assert workspace.clusters[CLUSTER]["starts"] == 1
    assert f"cluster {CLUSTER} is TERMINATED: starting it" in err
    assert f"waiting for cluster {CLUSTER}: PENDING" in err and f"cluster {CLUSTER} is running" in err
    (run_now,) = workspace.posts("/api/2.2/jobs/run-now")
    token = run_now["body"].pop("idempotency_token")
    assert run_now["body"] == {"job_id": 21, "job_parameters": {"max_iterations": "5"}}
    assert len(token) == 36 and run_now["headers"]["Authorization"] == "Bearer dapi-cli-user"
    assert out.splitlines() == [f"run 1000 of job 21: {workspace.url}/#job/21/run/1000", "run 1000 finished: SUCCESS"]
    assert "run 1000: RUNNING" in err and "run 1000: TERMINATED" in err
    assert "Failed" not in err and "Traceback" not in err


def test_failed_run_is_the_exit_status(capsys: pytest.CaptureFixture[str], tmp_path: Path, workspace: StandIn) -> None:
    """A run that ends in FAILED is exit status 1, with the state message; a running cluster is not restarted."""
    workspace.clusters[CLUSTER]["state"] = "RUNNING"
    workspace.job_handlers[22] = lambda _: "FAILED"
    code, out, _ = run(capsys, tmp_path, workspace.url, "rlm_executor", "--stack", "dev", "--wait")
    assert code == 1
    assert "run 1000 finished: FAILED (task failed)" in out
    assert "starts" not in workspace.clusters[CLUSTER]  # already running: not started again


def test_cluster_wait_is_bounded(capsys: pytest.CaptureFixture[str], tmp_path: Path, workspace: StandIn) -> None:
    """A cluster that does not come up in time ends the command without starting a run."""
    workspace.clusters[CLUSTER]["polls_to_start"] = 10**6
    clock = FakeClock()
    args = ("rlm_executor", "--stack", "dev", "--cluster-timeout-seconds", "60")
    code, _, err = run(capsys, tmp_path, workspace.url, *args, clock=clock)
    assert code == 1
    assert f"error: cluster {CLUSTER} is still PENDING after" in err and "limit 60s" in err
    assert not workspace.posts("/api/2.2/jobs/run-now") and sum(clock.sleeps) <= 60


def test_serverless_job_without_wait_prints_the_url_and_returns(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, workspace: StandIn
) -> None:
    code, out, err = run(capsys, tmp_path, workspace.url, "eval_agent", "--stack", "dev", "--param", "experiment_id=42")
    assert code == 0, err
    assert out.strip() == f"run 1000 of job 11: {workspace.url}/#job/11/run/1000"
    assert not workspace.calls("/api/2.1/clusters/get")
    assert len(workspace.calls("/api/2.2/jobs/runs/get")) == 1  # only for the URL: not followed


def test_a_lost_run_now_response_never_starts_the_job_twice(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, workspace: StandIn
) -> None:
    """The run is created but its response is lost (the connection closes): the SDK retries run-now with this
    invocation's token and gets that run back, so one run exists. A second invocation is a second run, with a
    token of its own."""
    workspace.drop_run_now = 1
    code, out, err = run(capsys, tmp_path, workspace.url, "eval_agent", "--stack", "dev")
    assert code == 0, err
    first, retry = workspace.posts("/api/2.2/jobs/run-now")
    assert first["body"]["idempotency_token"] == retry["body"]["idempotency_token"]
    assert list(workspace.runs) == [1000] and out.startswith("run 1000 of job 11: ")
    assert run(capsys, tmp_path, workspace.url, "eval_agent", "--stack", "dev")[0] == 0
    tokens = [r["body"]["idempotency_token"] for r in workspace.posts("/api/2.2/jobs/run-now")]
    assert list(workspace.runs) == [1000, 1001] and len(set(tokens)) == 2 and all(len(t) <= 64 for t in tokens)


def test_outputs_come_from_the_pulumi_cli(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, workspace: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --outputs, the job id comes from `pulumi stack output --json --stack NAME`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "pulumi"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/args\necho '{json.dumps(OUTPUTS)}'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    code, _, err = run(capsys, tmp_path, workspace.url, "eval_agent", "--stack", "dev", outputs=None)
    assert code == 0, err
    assert (tmp_path / "args").read_text().split() == ["stack", "output", "--json", "--stack", "dev"]


def test_missing_pulumi_cli_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, workspace: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    code, _, err = run(capsys, tmp_path, workspace.url, "eval_agent", "--stack", "dev", outputs=None)
    assert code == 2
    assert "the Pulumi CLI is not installed; pass the outputs with --outputs FILE" in err


# --- a host that does not answer -----------------------------------------------------------------------------------


@pytest.fixture
def refused() -> str:
    """A local address where nothing listens: every connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def resetting() -> Iterator[Resetting]:
    host = Resetting()
    yield host
    host.server.close()


@pytest.mark.parametrize("timeout", [30, 90])
def test_a_refusing_host_is_given_up_on_within_the_timeout(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, env: None, clock: FakeClock, refused: str, timeout: int
) -> None:
    """Connections refused: the SDK retries until --timeout-seconds (no longer), then the command says which
    host did not answer; exit 1, no traceback. A longer bound means more attempts, not an endless wait."""
    code, out, err = run(
        capsys, tmp_path, refused, "eval_agent", "--stack", "dev", "--timeout-seconds", str(timeout), clock=clock
    )
    assert (code, out) == (1, "")
    assert err.startswith(f"error: cannot reach the workspace at {refused}: no answer within {timeout}s, retries ")
    assert "Connection refused" in err and "Traceback" not in err and len(err.splitlines()) == 1
    # Two bounded retry loops: the SDK's start-up probe of the host, then run-now; each stops at the bound.
    assert len(clock.sleeps) >= 4 and sum(clock.sleeps) <= 2 * (timeout + 11)


def test_a_resetting_host_is_given_up_on_within_the_timeout(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, env: None, clock: FakeClock, resetting: Resetting
) -> None:
    """Every connection reset: retried (the run-now with its one token) until the bound, then a message naming
    the host."""
    code, _, err = run(
        capsys, tmp_path, resetting.url, "eval_agent", "--stack", "dev", "--timeout-seconds", "20", clock=clock
    )
    assert code == 1
    assert err.startswith(f"error: cannot reach the workspace at {resetting.url}: no answer within 20s")
    assert resetting.connections >= 4 and sum(clock.sleeps) <= 2 * (20 + 11)


def test_the_defaults_in_the_help_are_the_ones_used() -> None:
    """`--help` states the bound and the per-attempt timeout the client is built with."""
    assert f"({TIMEOUT_SECONDS:g}; each attempt at most {HTTP_TIMEOUT_SECONDS:g})" in TIMEOUT_HELP


# --- refused before anything starts --------------------------------------------------------------------------------


def test_no_credentials_is_a_usage_error_that_says_how_to_authenticate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, workspace: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No token, no service principal, no profile: exit 2 naming the host and the three ways to authenticate,
    before any cluster is started or run triggered."""
    monkeypatch.delenv("DATABRICKS_TOKEN")
    code, out, err = run(capsys, tmp_path, workspace.url, "rlm_executor", "--stack", "dev", "--wait")
    assert (code, out) == (2, "")
    assert err.startswith(f"error: cannot authenticate to {workspace.url} (")
    assert "set DATABRICKS_TOKEN, or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET" in err
    assert "workspace.profile in Pulumi.dev.yaml" in err and "Traceback" not in err
    assert not [r for r in workspace.requests if r["path"].startswith("/api/")]


USAGE: list[tuple[list[str], dict[str, Any] | str, str]] = [
    (["--poll-seconds", "nan"], OUTPUTS, "argument --poll-seconds: 'nan': allowed: a number of seconds greater than 0"),
    (["--poll-seconds", "-1"], OUTPUTS, "argument --poll-seconds: '-1': allowed"),
    (["--poll-seconds", "0"], OUTPUTS, "argument --poll-seconds: '0': allowed"),
    (["--cluster-timeout-seconds", "inf"], OUTPUTS, "argument --cluster-timeout-seconds: 'inf': allowed"),
    (["--run-timeout-seconds=-Infinity"], OUTPUTS, "argument --run-timeout-seconds: '-Infinity': allowed"),
    (["--timeout-seconds", "soon"], OUTPUTS, "argument --timeout-seconds: 'soon': allowed"),
    ([], "{not json", "--outputs OUT: is not JSON (Expecting property name"),
    ([], '["eval_agent_job_id"]', "--outputs OUT: is a JSON list, not an object; allowed: the object"),
    ([], '{"eval_agent_job_id": NaN}', "--outputs OUT: is not JSON (NaN is not a number JSON allows)"),
    ([], "[" * 100_000, "--outputs OUT: nested too deeply"),
    ([], {"eval_agent_job_id": "abc"}, 'eval_agent_job_id is "abc"; allowed: a job id, a positive whole number'),
    ([], {"eval_agent_job_id": 1.5}, "eval_agent_job_id is 1.5; allowed: a job id"),
    ([], {"eval_agent_job_id": True}, "eval_agent_job_id is true; allowed: a job id"),
    ([], {"eval_agent_job_id": "-3"}, 'eval_agent_job_id is "-3"; allowed: a job id'),
    ([], {"eval_agent_job_id": {"id": 1}}, "eval_agent_job_id is a JSON dict; allowed: a job id"),
    ([], {"catalog": "main"}, "stack dev has no output eval_agent_job_id (is the system enabled and deployed?)"),
    (["--param", "noequals"], OUTPUTS, "--param 'noequals': allowed: KEY=VALUE"),
    (["--stack", "staging"], OUTPUTS, "Pulumi.staging.yaml: no such stack file"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "outputs", "expected"), USAGE, ids=range(len(USAGE)))
def test_usage_errors_exit_2_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    workspace: StandIn,
    args: list[str],
    outputs: dict[str, Any] | str,
    expected: str,
) -> None:
    """Non-finite, negative or zero numbers, outputs that are not a JSON object or hold a job id that is not
    one, a bad parameter or stack: exit 2, a message naming the option or key, no traceback, and not one request
    to the workspace."""
    stack = [] if "--stack" in args else ["--stack", "dev"]
    code, out, err = run(capsys, tmp_path, workspace.url, "eval_agent", *stack, *args, outputs=outputs)
    assert (code, out) == (2, "")
    assert expected.replace("OUT", str(tmp_path / "outputs.json")) in err, err
    assert "Traceback" not in err and err.splitlines()[-1].startswith(
        ("error:", "usage:", "python -m infra run: error")
    )
    assert workspace.requests == []
