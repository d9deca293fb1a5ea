"""Seed 000's job and the wheel it runs, in the whole program: what the plan must show, for every compute
kind, and that every job parses with databricks-bundles' strict Job model."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from databricks.bundles.jobs import Job as BundleJob

from infra.components.wheel import SOURCE, build_wheel, extra_requirements
from infra.tools.offline import Plan, unwrap
from tests.conftest import ROOT, SECRETS, STACK_FILES, program_plan, stack_plan
from tests.jobs_api import job_api_shape

SP = "6f1c2a4e-0b7d-4c1e-9a53-2f8e7d6c5b4a"


def task_of(plan: Plan) -> dict[str, Any]:
    (task,) = unwrap(plan.one("Job", "eval-agent").inputs)["tasks"]
    return task


@pytest.fixture(scope="module")
def dev() -> Plan:
    return stack_plan("dev")


def test_job_runs_the_uploaded_wheel(dev: Plan) -> None:
    """Done when: the dev plan shows the wheel File and the job depending on exactly the uploaded path."""
    file = dev.one("File", "wheel")
    job = unwrap(dev.one("Job", "eval-agent").inputs)
    wheel = build_wheel()
    assert file.inputs["path"] == f"/Volumes/main/agents_dev/wheels/{wheel.filename}"
    assert file.inputs["md5"] == wheel.md5 and file.retain_on_delete
    # The wheel, then its eval-agent extra's requirements (wheel/pyproject.toml): the system's own libraries only.
    extra = list(extra_requirements(SOURCE, "eval-agent"))
    assert "anthropic" in " ".join(extra)
    assert job["environments"] == [
        {
            "environmentKey": "default",
            "spec": {"environmentVersion": "4", "dependencies": [file.inputs["path"], *extra]},
        }
    ]
    assert dev.outputs["wheel_path"] == (file.inputs["path"], False)
    assert dev.outputs["wheel_version"] == (wheel.version, False)


def test_task_matches_the_seed(dev: Plan) -> None:
    """Task key, package, entry point and the seed's parameters; the seed's env_vars become parameters the
    runtime reads, the token only as a secret reference."""
    task = task_of(dev)
    assert task["taskKey"] == "run_autonomous" and task["environmentKey"] == "default"
    wheel_task = task["pythonWheelTask"]
    assert (wheel_task["packageName"], wheel_task["entryPoint"]) == ("agent_jobs", "mlflow-eval")
    params = wheel_task["parameters"]
    assert params[:3] == ["--autonomous", "--experiment-id", "{{job.parameters.experiment_id}}"]
    options = dict(zip(params[1::2], params[2::2], strict=False))
    assert options["--volume-path"] == "/Volumes/main/agents_dev/eval_sessions"
    assert options["--base-url"] == "https://e2-demo-field-eng.cloud.databricks.com/serving-endpoints/anthropic"
    assert options["--model"] == "databricks-claude-sonnet-4"
    assert options["--token-secret"] == "mlflow-eval-dev/databricks-token"
    assert (options["--job-id"], options["--job-run-id"]) == ("{{job.id}}", "{{job.run_id}}")
    job = unwrap(dev.one("Job", "eval-agent").inputs)
    assert job["parameters"] == [{"name": "experiment_id", "default": "123456789"}]


def test_no_secret_value_in_any_job() -> None:
    """The token's value never enters a job definition, whatever the compute."""
    for compute in ({"kind": "serverless"}, {"kind": "existing_cluster", "cluster_id": "1115-120035-jyzgoasz"}):
        plan = program_plan({"eval_agent": {"compute": compute}})
        text = repr(unwrap(plan.one("Job", "eval-agent").inputs))
        assert not any(v in text for v in SECRETS.values())


def test_existing_cluster_gets_the_wheel_as_a_library() -> None:
    """Seed 003's kind of compute: the task names the cluster and installs the uploaded wheel."""
    plan = program_plan({"eval_agent": {"compute": {"kind": "existing_cluster", "cluster_id": "1115-120035-jyzgoasz"}}})
    task, path = task_of(plan), plan.one("File").inputs["path"]
    extra = [{"pypi": {"package": r}} for r in extra_requirements(SOURCE, "eval-agent")]
    assert task["existingClusterId"] == "1115-120035-jyzgoasz" and task["libraries"] == [{"whl": path}, *extra]
    assert "environments" not in unwrap(plan.one("Job", "eval-agent").inputs)


def test_job_cluster_is_tagged_and_single_user() -> None:
    compute = {
        "kind": "job_cluster",
        "spark_version": "15.4.x-scala2.12",
        "node_type_id": "i3.xlarge",
        "num_workers": 2,
    }
    plan = program_plan({"eval_agent": {"compute": compute}, "deployment": {"run_as": "alice@example.com"}})
    job = unwrap(plan.one("Job", "eval-agent").inputs)
    (cluster,) = job["jobClusters"]
    assert task_of(plan)["jobClusterKey"] == cluster["jobClusterKey"] == "default"
    assert cluster["newCluster"]["customTags"]["managed_by"] == "pulumi"
    assert cluster["newCluster"]["singleUserName"] == "alice@example.com"
    extra = [{"pypi": {"package": r}} for r in extra_requirements(SOURCE, "eval-agent")]
    assert task_of(plan)["libraries"] == [{"whl": plan.one("File").inputs["path"]}, *extra]


def test_job_cluster_without_run_as_uses_standard_access_mode() -> None:
    """Without an identity to run as there is no single user to name: standard access mode, still UC-capable."""
    compute = {"kind": "job_cluster", "spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge"}
    (cluster,) = unwrap(program_plan({"eval_agent": {"compute": compute}}).one("Job", "eval-agent").inputs)[
        "jobClusters"
    ]
    assert (
        cluster["newCluster"]["dataSecurityMode"] == "USER_ISOLATION" and "singleUserName" not in cluster["newCluster"]
    )


def test_development_and_production_job_settings() -> None:
    """Dev: prefixed name, dev tag, paused schedule. Prod: plain name, a service principal, unpaused schedule,
    notifications and permissions."""
    schedule = {"cron": "0 0 2 * * ?", "timezone": "Europe/Berlin"}
    dev = unwrap(
        program_plan({"deployment": {"user": "alice"}, "eval_agent": {"schedule": schedule}})
        .one("Job", "eval-agent")
        .inputs
    )
    assert dev["name"] == "[dev alice] dev-agent-platform-eval-agent" and dev["tags"]["dev"] == "alice"
    assert dev["schedule"] == {
        "quartzCronExpression": "0 0 2 * * ?",
        "timezoneId": "Europe/Berlin",
        "pauseStatus": "PAUSED",
    }
    prod_plan = program_plan({
        "environment": "prod",
        "deployment": {"run_as": SP, "notifications": {"on_failure": ["oncall@example.com"]},
                       "job_permissions": {"agent-operators": "CAN_MANAGE_RUN", "bob@example.com": "CAN_VIEW"}},
        "eval_agent": {"schedule": schedule},
    })  # fmt: skip
    prod = unwrap(prod_plan.one("Job", "eval-agent").inputs)
    assert prod["name"] == "prod-agent-platform-eval-agent" and "dev" not in prod["tags"]
    assert prod["runAs"] == {"servicePrincipalName": SP}
    assert prod["schedule"]["pauseStatus"] == "UNPAUSED"
    assert prod["emailNotifications"] == {"onFailures": ["oncall@example.com"]}
    assert (prod["timeoutSeconds"], prod["maxConcurrentRuns"], prod["queue"]) == (14400, 1, {"enabled": True})
    permissions = unwrap(prod_plan.one("Permissions", "eval-agent-permissions").inputs)
    assert permissions["jobId"] == prod_plan.one("Job", "eval-agent").id
    assert permissions["accessControls"] == [
        {"groupName": "agent-operators", "permissionLevel": "CAN_MANAGE_RUN"},
        {"userName": "bob@example.com", "permissionLevel": "CAN_VIEW"},
    ]


def test_no_wheel_when_no_job_runs_it() -> None:
    plan = program_plan(
        {"eval_agent": {"enabled": False}, "rlm": {"enabled": False}, "health_monitor": {"enabled": False}}
    )
    assert not plan.all("Job") and not plan.all("File") and "wheel_path" not in plan.outputs


@pytest.mark.parametrize("stack_file", STACK_FILES)
def test_every_job_parses_with_the_strict_bundles_model(stack_file: str) -> None:
    """Field names and enums are checked against Databricks' own job model, not only ours."""
    plan = stack_plan(stack_file.removeprefix("Pulumi.").removesuffix(".yaml"))
    jobs = plan.all("Job")
    assert jobs
    for job in jobs:
        parsed = BundleJob.from_dict(job_api_shape(job.inputs))
        assert [t.task_key for t in parsed.tasks] == sorted(t.task_key for t in parsed.tasks)


@pytest.mark.parametrize(
    "compute",
    [{"kind": "existing_cluster", "cluster_id": "1115-120035-jyzgoasz"},
     {"kind": "job_cluster", "spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge"}],
)  # fmt: skip
def test_every_compute_kind_parses_strictly(compute: dict[str, Any]) -> None:
    overrides = {"eval_agent": {"compute": compute, "schedule": {"cron": "0 0 2 * * ?"}},
                 "deployment": {"notifications": {"on_failure": ["a@example.com"]}}}  # fmt: skip
    for job in program_plan({**overrides, "rlm": {"compute": compute}}).all("Job"):
        BundleJob.from_dict(job_api_shape(job.inputs))


@pytest.mark.parametrize(
    ("task", "expected"),
    [({"taskKey": "b", "dependsOn": [{"taskKey": "a"}]}, "Pulumi names this block 'depends_ons'"),
     ({"taskKey": "b", "depends_on": [{"taskKey": "a"}]}, "is not camelCase"),
     ({"taskKey": "b", "pythonWheelTasks": {}}, "Unexpected field 'python_wheel_tasks'")],
)  # fmt: skip
def test_a_misspelt_wire_field_fails_the_strict_check(task: dict[str, Any], expected: str) -> None:
    """The check is real: a field the provider would drop fails, even when the Jobs API spells it that way."""
    with pytest.raises(ValueError, match=expected):
        BundleJob.from_dict(job_api_shape({"name": "x", "tasks": [{"taskKey": "a"}, task]}))
    fixed = {"name": "x", "tasks": [{"taskKey": "a"}, {"taskKey": "b", "dependsOns": [{"taskKey": "a"}]}]}
    assert BundleJob.from_dict(job_api_shape(fixed)).tasks[1].depends_on[0].task_key == "a"


def changed(a: Plan, b: Plan) -> dict[str, list[str]]:
    """(type::name) -> input keys that differ between two plans."""
    out = {}
    before = {(r.type, r.name): unwrap(r.inputs) for r in a.resources}
    for r in b.resources:
        old, new = before.get((r.type, r.name)), unwrap(r.inputs)
        if old != new:
            keys = sorted(k for k in set(old or {}) | set(new) if (old or {}).get(k) != new.get(k))
            out[f"{r.type.rsplit(':', 1)[-1]}::{r.name}"] = keys
    return out


def test_changing_one_prompt_changes_only_the_wheel_and_its_jobs(tmp_path: Path) -> None:
    """Done when: a prompt edit gives a new version and path for the wheel, and nothing else changes except
    the jobs that run it (and the outputs naming the wheel)."""
    source = tmp_path / "wheel"
    shutil.copytree(ROOT / "wheel", source, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    before = program_plan(wheel_source=source, cache=tmp_path / "cache")
    prompt = source / "src/agent_jobs/eval_agent/prompts/system.md"
    prompt.write_text(prompt.read_text() + "\nKeep the report under one page.\n")
    after = program_plan(wheel_source=source, cache=tmp_path / "cache")
    assert changed(before, after) == {
        "File::wheel": ["contentBase64", "md5", "path"],
        "Job::eval-agent": ["environments"],
        "Job::health-monitor-deployment": ["environments"],
        "Job::health-monitor-setup": ["environments"],
        "Job::rlm-executor": ["environments"],
        "Job::rlm-orchestrator": ["environments"],
    }
    old_version, new_version = before.outputs["wheel_version"][0], after.outputs["wheel_version"][0]
    assert old_version != new_version and new_version in after.one("File").inputs["path"]
    assert {k for k in after.outputs if after.outputs[k] != before.outputs[k]} == {"wheel_path", "wheel_version"}


def test_unchanged_sources_are_not_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A preview with unchanged sources reuses the cached wheel instead of building again."""
    source = tmp_path / "wheel"
    shutil.copytree(ROOT / "wheel", source, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    first = build_wheel(source, tmp_path / "cache")

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("rebuilt although the sources did not change")

    monkeypatch.setattr("infra.components.wheel._build_into", no_build)
    assert build_wheel(source, tmp_path / "cache") == first


def test_build_ignores_source_date_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CI runner's SOURCE_DATE_EPOCH must not change the wheel's bytes."""
    source = tmp_path / "wheel"
    shutil.copytree(ROOT / "wheel", source, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    plain = build_wheel(source, tmp_path / "a")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert build_wheel(source, tmp_path / "b").sha256 == plain.sha256


def test_a_broken_wheel_is_a_clear_error(tmp_path: Path) -> None:
    from infra.components.wheel import WheelBuildError

    source = tmp_path / "wheel"
    shutil.copytree(ROOT / "wheel", source, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    (source / "pyproject.toml").write_text(
        (source / "pyproject.toml").read_text().replace('name = "agent_jobs"', "name = ")
    )
    with pytest.raises(WheelBuildError, match=r"building the wheel in .* failed"):
        build_wheel(source, tmp_path / "cache")
