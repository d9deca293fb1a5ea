"""`python -m infra verify --stack dev`, in this process, against a local stand-in of the Jobs, Files, Secrets and
UC registry APIs driven by the real databricks-sdk, seeded as `pulumi up` of the dev stack's plan would leave
the workspace: every check passes on a faithful deployment, each kind of drift fails by name, a wheel path with
a `+` uploaded the provider's way fails (the platform stores it under a space), no secret value is ever printed,
and bad arguments exit 2 before any request."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.tools import verify
from infra.tools.cli import main
from infra.tools.offline import Plan, preview_stack, unwrap
from standin import TOKEN, StandIn
from tests.conftest import stack_preview
from tests.jobs_api import job_api_shape
from tests.workspace_standin import FakeClock, Resetting, Workspace

SECRET_VALUES = {"databricks-token": "dapi-SECRET-VALUE-never-printed", "google-api-key": "AIza-SECRET-never-printed"}


@pytest.fixture(scope="module")
def dev_plan() -> tuple[Plan, Any]:
    """The dev stack's offline plan (what `verify` renders itself), once for the module."""
    return stack_preview("dev")


def with_wheel_name(plan: Plan, name: str) -> Plan:
    """The plan with its wheel file named `name` (as a version scheme with or without a `+` would name it)."""
    old = Path(str(plan.outputs["wheel_path"][0])).name
    plan = copy.deepcopy(plan)
    for r in plan.resources:
        r.inputs = json.loads(json.dumps(r.inputs).replace(old, name))
    plan.outputs = {k: (json.loads(json.dumps(v).replace(old, name)), s) for k, (v, s) in plan.outputs.items()}
    return plan


def wheel_name(plan: Plan) -> str:
    return Path(str(plan.outputs["wheel_path"][0])).name


@dataclass
class Deployed:
    """The stand-in seeded as `pulumi up` of `plan` leaves the workspace, and the stack's outputs."""

    standin: StandIn
    workspace: Workspace
    plan: Plan
    outputs: dict[str, Any]
    wheel_path: str

    def job_id(self, job: str) -> int:
        return int(self.outputs[f"{job}_job_id"])


def deploy(standin: StandIn, plan: Plan) -> Deployed:
    """Jobs under new (real) ids with the settings the plan sends, the wheel uploaded as the provider uploads it
    (the path sent literally), each scope holding its keys with values, the model linked to the deployment job."""
    workspace = Workspace()
    standin.routes.append(workspace)
    outputs = {name: value for name, (value, _) in plan.outputs.items()}
    real = {
        mock: str(900_000 + i) for i, mock in enumerate(sorted(v for k, v in outputs.items() if k.endswith("_job_id")))
    }
    for r in plan.resources:
        if r.type == verify.JOB:
            workspace.jobs[int(real[r.id])] = {"settings": job_api_shape(r.inputs)}
        elif r.type == "databricks:index/file:File":
            assert workspace.upload_like_the_provider(standin.url, unwrap(r.inputs)["path"], b"PK wheel", TOKEN) == 204
        elif r.type == verify.SECRET:
            inputs = unwrap(r.inputs)
            workspace.scopes.setdefault(inputs["scope"], {})[inputs["key"]] = SECRET_VALUES[inputs["key"]]
        elif r.type == verify.LINK and "model_name" in unwrap(r.inputs):
            inputs = unwrap(r.inputs)
            workspace.models[inputs["model_name"]] = real[inputs["job_id"]]
    outputs = {k: real.get(v, v) if k.endswith("_job_id") else v for k, v in outputs.items()}
    return Deployed(standin, workspace, plan, outputs, str(outputs["wheel_path"]))


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [k for k in os.environ if k.startswith("DATABRICKS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))


@pytest.fixture
def standin(env: None) -> Iterator[StandIn]:
    with StandIn() as server:
        yield server


@pytest.fixture
def use_plan(monkeypatch: pytest.MonkeyPatch, dev_plan: tuple[Plan, Any]) -> Callable[[Plan], None]:
    """Make `verify` see this plan of the dev stack (instead of rendering the same one again)."""

    def use(plan: Plan) -> None:
        monkeypatch.setattr(verify, "preview_stack", lambda *_: (plan, dev_plan[1]))

    return use


@pytest.fixture
def deployed(standin: StandIn, dev_plan: tuple[Plan, Any], use_plan: Callable[[Plan], None]) -> Deployed:
    """A faithful deployment of the dev plan with a wheel path free of `+` (the new version scheme)."""
    plan = with_wheel_name(dev_plan[0], wheel_name(dev_plan[0]).replace("+", "."))
    use_plan(plan)
    return deploy(standin, plan)


def run_verify(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    host: str,
    outputs: dict[str, Any] | str,
    *args: str,
    clock: FakeClock | None = None,
) -> tuple[int, str, str]:
    (tmp_path / "outputs.json").write_text(outputs if isinstance(outputs, str) else json.dumps(outputs))
    argv = ["verify", "--stack", "dev", "--outputs", str(tmp_path / "outputs.json"), "--host", host, *args]
    try:
        code = main(argv, clock=clock or FakeClock())
    except SystemExit as exc:
        code = int(str(exc.code))
    out, err = capsys.readouterr()
    for value in SECRET_VALUES.values():
        assert value not in out and value not in err  # whatever happened, no secret was printed
    return code, out, err


def test_a_faithful_deployment_passes_every_check(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, deployed: Deployed
) -> None:
    """Five jobs by their output ids, under the plan's names and wheel; the wheel in the volume under exactly that
    name; both scopes holding their keys (names only); the model linked to the deployment job: exit 0."""
    code, out, err = run_verify(capsys, tmp_path, deployed.standin.url, deployed.outputs)
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0] == f"verify: stack dev at {deployed.standin.url}" and lines[-1] == "verify: all 12 checks passed"
    checks = lines[1:-1]
    assert len(checks) == 12 and all(line.startswith("ok    ") for line in checks), checks
    setup = deployed.job_id("agent_setup")
    assert f"ok    job agent_setup ({setup}): dev-agent-platform-agent-setup, as planned" in checks
    assert (f"ok    wheel {deployed.wheel_path} (used by agent_deployment, agent_setup, dependency_wheelhouse, "
            "dependency_wheelhouse_formats, eval_agent, prompt_optimizer, rlm_executor, "
            "rlm_orchestrator): exists, 8 bytes") in checks  # fmt: skip
    assert "ok    secret scope adk-secrets-dev: holds google-api-key" in checks
    deployment = deployed.job_id("agent_deployment")
    assert (f"ok    model main.health_monitor_agent_dev.health_monitor_agent: deployment job: linked to {deployment}, "
            f"expected agent_deployment_job_id {deployment}") in checks  # fmt: skip
    # What was read: each job by its real id, the wheel's metadata (HEAD), each scope's key list; no secret value.
    assert sorted(int(r["query"]["job_id"]) for r in deployed.standin.calls("/api/2.2/jobs/get")) == sorted(
        deployed.workspace.jobs
    )
    assert ("HEAD", deployed.wheel_path) in deployed.workspace.file_requests
    assert not deployed.standin.calls("/api/2.0/secrets/get")


def test_todays_wheel_path_uploaded_the_providers_way_fails(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    standin: StandIn,
    dev_plan: tuple[Plan, Any],
    use_plan: Callable[[Plan], None],
) -> None:
    """A wheel version with a `+` (`0.1.0+g<hash>`): `pulumi up` succeeded, but the platform stored the file
    under a space, so every job's library is missing. verify fails on exactly that, saying why; exit 1."""
    name = wheel_name(dev_plan[0])
    plan = dev_plan[0] if "+" in name else with_wheel_name(dev_plan[0], name.replace("-py3", "+g0123abcd-py3", 1))
    use_plan(plan)
    deployed = deploy(standin, plan)
    assert "+" in deployed.wheel_path and deployed.wheel_path.replace("+", " ") in deployed.workspace.files
    code, out, _ = run_verify(capsys, tmp_path, standin.url, deployed.outputs)
    assert code == 1
    (wheel,) = [line for line in out.splitlines() if " wheel " in line]
    assert wheel.startswith(f"FAIL  wheel {deployed.wheel_path} (used by agent_deployment, agent_setup, ")
    assert (
        ": not in the volume under exactly that name (the Files API stores a `+` in an uploaded path as a space"
        in wheel
    )
    assert out.splitlines()[-1] == "verify: 12 checks, 1 failed"


def _delete_job(d: Deployed) -> None:
    del d.workspace.jobs[d.job_id("eval_agent")]


def _rename_job(d: Deployed) -> None:
    d.workspace.jobs[d.job_id("rlm_executor")]["settings"]["name"] = "renamed by hand"


def _old_wheel(d: Deployed) -> None:
    libraries = d.workspace.jobs[d.job_id("rlm_executor")]["settings"]["tasks"][0]["libraries"]
    libraries[0]["whl"] = "/Volumes/main/agents_dev/wheels/agent_jobs-0.0.9-py3-none-any.whl"
    d.workspace.files[libraries[0]["whl"]] = b"PK an older wheel"  # still in the volume: only the job is wrong


def _lost_key(d: Deployed) -> None:
    del d.workspace.scopes["adk-secrets-dev"]["google-api-key"]
    d.workspace.scopes["adk-secrets-dev"]["typo-key"] = "AIza-SECRET-never-printed"


def _lost_scope(d: Deployed) -> None:
    del d.workspace.scopes["mlflow-eval-dev"]


def _relinked(d: Deployed) -> None:
    d.workspace.models["main.health_monitor_agent_dev.health_monitor_agent"] = "123"


def _no_output(d: Deployed) -> None:
    del d.outputs["agent_setup_job_id"]


DRIFT: list[tuple[Callable[[Deployed], None], str]] = [
    (_delete_job, "FAIL  job eval_agent (ID): cannot be read: ResourceDoesNotExist: Job ID does not exist."),
    (_rename_job, "FAIL  job rlm_executor (ID): is named 'renamed by hand', the plan names it 'dev-agent-platform-rlm-executor'"),
    (_old_wheel, "FAIL  job rlm_executor (ID): references ['/Volumes/main/agents_dev/wheels/agent_jobs-0.0.9-py3-none-any.whl'], the plan ["),
    (_lost_key, "FAIL  secret scope adk-secrets-dev: lacks google-api-key (holds: typo-key)"),
    (_lost_scope, "FAIL  secret scope mlflow-eval-dev: cannot be listed: ResourceDoesNotExist: Scope mlflow-eval-dev does not exist!"),
    (_relinked, "FAIL  model main.health_monitor_agent_dev.health_monitor_agent: deployment job: linked to 123, expected agent_deployment_job_id ID"),
    (_no_output, "FAIL  job agent_setup: the stack has no output agent_setup_job_id (is it deployed?)"),
]  # fmt: skip


@pytest.mark.parametrize(("drift", "expected"), DRIFT, ids=[d.__name__[1:] for d, _ in DRIFT])
def test_each_kind_of_drift_fails_by_name(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    deployed: Deployed,
    drift: Callable[[Deployed], None],
    expected: str,
) -> None:
    """A job gone, renamed or on another wheel, a scope without its key or gone, the model linked elsewhere, an
    output missing: that check fails, naming what differs (key names only, never values); the others still
    pass; exit 1."""
    job = expected.split("job ", 1)[-1].split(" ", 1)[0] if " job " in expected else ""
    job_id = str(deployed.outputs.get(f"{job}_job_id") or deployed.outputs["agent_deployment_job_id"])
    drift(deployed)
    code, out, _ = run_verify(capsys, tmp_path, deployed.standin.url, deployed.outputs)
    assert code == 1
    failed = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].startswith(expected.replace("ID", job_id)), failed
    assert out.splitlines()[-1].endswith(" checks, 1 failed")


def test_an_unreachable_workspace_stops_at_once_naming_the_host(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    deployed: Deployed,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host that resets every connection: the first check gives up within --timeout-seconds, and verify stops
    there (not once per check) with one FAIL line naming the host; exit 1."""
    fake = FakeClock()
    monkeypatch.setattr("databricks.sdk.clock.RealClock.time", lambda _: fake.time())
    monkeypatch.setattr("databricks.sdk.clock.RealClock.sleep", lambda _, s: fake.sleep(s))
    host = Resetting()
    try:
        code, out, _ = run_verify(capsys, tmp_path, host.url, deployed.outputs, "--timeout-seconds", "15", clock=fake)
    finally:
        host.server.close()
    assert code == 1
    lines = out.splitlines()
    assert lines[-2].startswith(f"FAIL  {host.url}: cannot reach the workspace at {host.url}: no answer within 15s")
    assert lines[-1] == "verify: stopped after 1 checks: the workspace does not answer"
    assert sum(fake.sleeps) <= 2 * (15 + 11)


USAGE: list[tuple[list[str], str | None, str]] = [
    ([], "{oops", "error: --outputs OUT: is not JSON ("),
    ([], "[]", "error: --outputs OUT: is a JSON list, not an object"),
    ([], '{"eval_agent_job_id": "12x"}', 'error: --outputs OUT: eval_agent_job_id is "12x"; allowed: a job id'),
    (["--timeout-seconds", "nan"], None, "argument --timeout-seconds: 'nan': allowed: a number of seconds greater than 0"),
    (["--timeout-seconds=-5"], None, "argument --timeout-seconds: '-5': allowed"),
    (["--config-file", "missing.yaml"], None, "error: missing.yaml: no such file (given with --config-file)"),
    (["NO-TOKEN"], None, "error: cannot authenticate to URL ("),
]  # fmt: skip


@pytest.mark.parametrize(("args", "outputs", "expected"), USAGE, ids=range(len(USAGE)))
def test_bad_arguments_exit_2_before_any_request(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    deployed: Deployed,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    outputs: str | None,
    expected: str,
) -> None:
    """Malformed outputs, a non-finite or negative timeout, a missing stack file, no credentials: exit 2 with one
    message naming the option or key (and how to authenticate), no traceback, no API request."""
    if args == ["NO-TOKEN"]:
        monkeypatch.delenv("DATABRICKS_TOKEN")
        args = []
    if "--config-file" in args:
        monkeypatch.setattr(verify, "preview_stack", preview_stack)  # the real one: it reads the stack file
    seeded = len(deployed.standin.requests)
    code, out, err = run_verify(capsys, tmp_path, deployed.standin.url, outputs or deployed.outputs, *args)
    assert (code, out) == (2, "")
    assert expected.replace("OUT", str(tmp_path / "outputs.json")).replace("URL", deployed.standin.url) in err, err
    assert "Traceback" not in err
    assert not [r for r in deployed.standin.requests[seeded:] if r["path"].startswith("/api/")]
