"""Seed 004's jobs under the recording mocks: the task graphs, the shared cluster or serverless environment,
every wheel task's parameters as `deps-wheelhouse` itself parses them, Databricks' strict job models, the
fixtures uploaded (retained, reproducible, paths the Files API keeps), and the settings' refusals."""

from __future__ import annotations

import base64
import hashlib
import sys
from pathlib import Path
from typing import Any

import pulumi
import pytest
from databricks.bundles.jobs import Job as BundleJob
from pydantic import ValidationError

from agent_jobs.wheelhouse.cleanup import check_run_dir
from agent_jobs.wheelhouse.cli import build_parser
from agent_jobs.wheelhouse.shapes import SHAPES as WHEEL_SHAPES
from agent_jobs.wheelhouse.wheels import PYTHON_VERSION_RE
from infra.components.jobs import JobCommon
from infra.settings import NotificationSettings
from infra.systems.dependency_wheelhouse.components import DependencyWheelhouse, DependencyWheelhouseArgs
from infra.systems.dependency_wheelhouse.fixtures import BuiltFixture, build_fixtures
from infra.systems.dependency_wheelhouse.settings import (
    SHAPES,
    DependencyWheelhouseSettings,
    notes,
    target_python,
)
from infra.tools.offline import Plan, run_program, unwrap
from policy.rules import check, path_problem
from tests.conftest import PROJECT, provider
from tests.jobs_api import job_api_shape

SP = "6f1c2a4e-0b7d-4c1e-9a53-2f8e7d6c5b4a"
VOLUME = "/Volumes/main/agents_dev/dependency_wheelhouse"
WHEEL = "/Volumes/main/agents_dev/wheels/agent_jobs-0.1.0.dev7-py3-none-any.whl"
MAIN, FORMATS = "dependency-wheelhouse", "dependency-wheelhouse-formats"
TAGS = {"project": PROJECT, "environment": "dev", "stack": "test", "managed_by": "pulumi", "dev": "true"}


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuiltFixture]:
    return build_fixtures(cache=tmp_path_factory.mktemp("cache"))


def plan_for(
    fixtures: dict[str, BuiltFixture], settings: dict[str, Any] | None = None, run_as: str | None = SP
) -> Plan:
    s = DependencyWheelhouseSettings.model_validate({"enabled": True, **(settings or {})})
    common = JobCommon(tags=TAGS, run_as=run_as, notifications=NotificationSettings(), permissions={}, development=True)

    def program() -> None:
        opts = pulumi.ResourceOptions(provider=provider())
        args = DependencyWheelhouseArgs(
            settings=s,
            common=common,
            job_name="dev-agent-platform-dependency-wheelhouse",
            formats_job_name="dev-agent-platform-dependency-wheelhouse-formats",
            wheel_path=WHEEL,
            runs_volume_path=VOLUME,
            fixtures=fixtures,
        )
        component = DependencyWheelhouse(MAIN, args, opts)
        pulumi.export("dependency_wheelhouse_job_id", component.job_id)
        pulumi.export("dependency_wheelhouse_formats_job_url", component.formats_job_url)

    return run_program(program, PROJECT, "test", {}, frozenset())


@pytest.fixture(scope="module")
def cluster_plan(fixtures: dict[str, BuiltFixture]) -> Plan:
    return plan_for(fixtures)


def job(plan: Plan, name: str) -> dict[str, Any]:
    return dict(unwrap(plan.one("Job", name).inputs))


def tasks(plan: Plan, name: str) -> dict[str, dict[str, Any]]:
    return {t["taskKey"]: t for t in job(plan, name)["tasks"]}


def edges(plan: Plan, name: str) -> set[tuple[str, str]]:
    return {(d["taskKey"], key) for key, t in tasks(plan, name).items() for d in t.get("dependsOns") or []}


def options(task: dict[str, Any]) -> tuple[str, dict[str, list[str]]]:
    """(subcommand, --option -> values) of a deps-wheelhouse task, checked by the entry point's own parser."""
    wheel = task["pythonWheelTask"]
    assert (wheel["packageName"], wheel["entryPoint"]) == ("agent_jobs", "deps-wheelhouse")
    params = wheel["parameters"]
    build_parser().parse_args(params)  # exits (SystemExit 2) on anything deps-wheelhouse would refuse
    found: dict[str, list[str]] = {}
    rest = params[1:]
    while rest:
        flag, *rest = rest
        if rest and not rest[0].startswith("--"):
            value, *rest = rest
            found.setdefault(flag, []).append(value)
        else:
            found.setdefault(flag, []).append("")
    return params[0], found


def test_main_job_is_process_verify_cleanup_with_a_cleanup_that_always_runs(cluster_plan: Plan) -> None:
    """The seed's job: process_deps -> verify -> cleanup, the cleanup whatever happened before it."""
    found = tasks(cluster_plan, MAIN)
    assert set(found) == {"process_deps", "verify", "cleanup"}
    assert edges(cluster_plan, MAIN) == {("process_deps", "verify"), ("verify", "cleanup")}
    assert found["cleanup"]["runIf"] == "ALL_DONE"
    assert "runIf" not in found["verify"] and "runIf" not in found["process_deps"]
    spec = job(cluster_plan, MAIN)
    assert spec["name"] == "dev-agent-platform-dependency-wheelhouse"
    # A run without parameters processes the first format's uploaded fixture.
    fixture_path = cluster_plan.one("File", "dependency-wheelhouse-fixture-requirements").inputs["path"]
    assert spec["parameters"] == [{"name": "input_path", "default": fixture_path}]
    assert spec["maxConcurrentRuns"] == 5 and spec["timeoutSeconds"] == 3600


def test_main_job_paths_are_scoped_to_the_run(cluster_plan: Plan) -> None:
    """Every run writes under runs/{{job.run_id}}/ (the seed's UUIDs, without UUIDs), the path handed from
    task to task as a parameter (task values are notebook-only), and the cleanup removes exactly that."""
    found = tasks(cluster_plan, MAIN)
    command, process = options(found["process_deps"])
    assert command == "process"
    assert process["--input"] == ["{{job.parameters.input_path}}"]
    assert process["--output"] == [f"{VOLUME}/runs/{{{{job.run_id}}}}/wheelhouse"]
    assert process["--python-version"] == ["3.10"]  # 14.3 LTS runs Python 3.10
    assert "--no-index" not in process  # a user's input may need the index
    command, verify = options(found["verify"])
    assert command == "verify"
    assert verify["--wheelhouse"] == [f"{VOLUME}/runs/{{{{job.run_id}}}}/wheelhouse/wheelhouse.zip"]
    assert verify["--spark"] == ["require"] and verify["--workers"] == ["4"]
    assert "--target" not in verify  # the main job installs into the driver's Python, as the seed did
    command, cleanup = options(found["cleanup"])
    assert command == "cleanup"
    assert cleanup["--run-dir"] == [f"{VOLUME}/runs/{{{{job.run_id}}}}"]
    # The wheel's own guard accepts it once Databricks fills in the run id.
    assert str(check_run_dir(cleanup["--run-dir"][0].replace("{{job.run_id}}", "123456"))).endswith("/runs/123456")
    for task in found.values():
        _, opts = options(task)
        assert (opts["--job-id"], opts["--job-run-id"]) == (["{{job.id}}"], ["{{job.run_id}}"])


def test_format_job_runs_every_shape_in_parallel_then_one_cleanup(
    cluster_plan: Plan, fixtures: dict[str, BuiltFixture]
) -> None:
    found = tasks(cluster_plan, FORMATS)
    assert set(found) == {f"{step}_{shape}" for shape in SHAPES for step in ("process", "verify")} | {"cleanup"}
    assert edges(cluster_plan, FORMATS) == {(f"process_{s}", f"verify_{s}") for s in SHAPES} | {
        (f"verify_{s}", "cleanup") for s in SHAPES
    }
    assert found["cleanup"]["runIf"] == "ALL_DONE"
    assert job(cluster_plan, FORMATS).get("parameters") is None
    assert job(cluster_plan, FORMATS)["maxConcurrentRuns"] == 1
    targets = set()
    for shape in SHAPES:
        _, process = options(found[f"process_{shape}"])
        file = cluster_plan.one("File", f"dependency-wheelhouse-fixture-{shape.replace('_', '-')}")
        assert process["--input"] == [file.inputs["path"]]
        assert process["--output"] == [f"{VOLUME}/runs/{{{{job.run_id}}}}/{shape}/wheelhouse"]
        # Only the shapes whose fixture pins index packages (requirements, mixed) may use the network.
        assert ("--no-index" in process) == (shape not in ("requirements", "mixed"))
        _, verify = options(found[f"verify_{shape}"])
        assert verify["--wheelhouse"] == [f"{VOLUME}/runs/{{{{job.run_id}}}}/{shape}/wheelhouse/wheelhouse.zip"]
        assert tuple(verify["--expect"]) == fixtures[shape].modules
        targets.add(verify["--target"][0])
    assert len(targets) == len(SHAPES)  # parallel verifies on one driver never share an install directory
    _, cleanup = options(found["cleanup"])
    assert cleanup["--run-dir"] == [f"{VOLUME}/runs/{{{{job.run_id}}}}"]


def test_every_task_shares_one_dedicated_job_cluster(cluster_plan: Plan) -> None:
    """The seed's shared cluster, once per job: 14.3, one worker, SINGLE_USER for the run-as identity, every
    task on it with the seed's libraries and the platform's wheel."""
    for name in (MAIN, FORMATS):
        spec = job(cluster_plan, name)
        (cluster,) = spec["jobClusters"]
        assert cluster["jobClusterKey"] == "wheelhouse"
        new = cluster["newCluster"]
        assert new["sparkVersion"] == "14.3.x-scala2.12" and new["numWorkers"] == 1
        assert new["dataSecurityMode"] == "SINGLE_USER" and new["singleUserName"] == SP
        assert new["nodeTypeId"] == "i3.xlarge" and new["customTags"] == TAGS
        assert "environments" not in spec
        for task in spec["tasks"]:
            assert task["jobClusterKey"] == "wheelhouse"
            assert task["libraries"] == [
                {"whl": WHEEL},
                {"pypi": {"package": "wheel"}},
                {"pypi": {"package": "setuptools>=61.0"}},
            ]


def test_without_run_as_the_cluster_stays_dedicated(fixtures: dict[str, BuiltFixture]) -> None:
    """A development stack has no run_as (the job runs as its owner): still SINGLE_USER, which addPyFile
    needs, with no user name (Databricks takes the run-as identity), not the standard access mode."""
    plan = plan_for(fixtures, run_as=None)
    new = job(plan, MAIN)["jobClusters"][0]["newCluster"]
    assert new["dataSecurityMode"] == "SINGLE_USER" and "singleUserName" not in new
    assert "runAs" not in job(plan, MAIN)


def test_serverless_uses_environment_dependencies_instead_of_libraries(fixtures: dict[str, BuiltFixture]) -> None:
    plan = plan_for(fixtures, {"compute": {"kind": "serverless"}})
    for name in (MAIN, FORMATS):
        spec = job(plan, name)
        assert spec["environments"] == [
            {
                "environmentKey": "wheelhouse",
                "spec": {"environmentVersion": "4", "dependencies": [WHEEL, "wheel", "setuptools>=61.0"]},
            }
        ]
        assert "jobClusters" not in spec
        for task in spec["tasks"]:
            assert task["environmentKey"] == "wheelhouse" and "libraries" not in task and "jobClusterKey" not in task
    _, process = options(tasks(plan, MAIN)["process_deps"])
    assert process["--python-version"] == ["3.12"]  # serverless environment 4 runs Python 3.12


def test_target_python_and_platforms_follow_the_settings(fixtures: dict[str, BuiltFixture]) -> None:
    plan = plan_for(
        fixtures,
        {
            "compute": {"kind": "job_cluster", "spark_version": "15.4.x-scala2.12", "node_type_id": "m6gd.large"},
            "platforms": ["manylinux_2_17_aarch64", "manylinux2014_aarch64"],
            "formats": ["nested", "mixed"],
        },
    )
    _, process = options(tasks(plan, MAIN)["process_deps"])
    assert process["--python-version"] == ["3.11"]
    assert process["--platform"] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    assert set(tasks(plan, FORMATS)) == {"process_nested", "verify_nested", "process_mixed", "verify_mixed", "cleanup"}
    assert len(plan.all("File")) == 2
    nested = plan.one("File", "dependency-wheelhouse-fixture-nested").inputs["path"]
    assert job(plan, MAIN)["parameters"][0]["default"] == nested  # the first format listed


@pytest.mark.parametrize("settings", [{}, {"compute": {"kind": "serverless"}}])
def test_both_jobs_parse_with_databricks_strict_models(
    fixtures: dict[str, BuiltFixture], settings: dict[str, Any]
) -> None:
    plan = plan_for(fixtures, settings)
    for name in (MAIN, FORMATS):
        parsed = BundleJob.from_dict(job_api_shape(plan.one("Job", name).inputs))
        keys = [t.task_key for t in parsed.tasks]
        assert keys == sorted(keys)  # stable order: no diff on every preview


def test_fixtures_are_uploaded_retained_byte_for_byte_under_keepable_paths(
    cluster_plan: Plan, fixtures: dict[str, BuiltFixture], tmp_path: Path
) -> None:
    """Each fixture is uploaded as built from this repository, retained when removed or replaced, under a
    content-addressed path without + or spaces; a second build from scratch gives the same bytes."""
    again = build_fixtures(cache=tmp_path)
    files = cluster_plan.all("File")
    assert len(files) == len(SHAPES)
    for shape in SHAPES:
        file = cluster_plan.one("File", f"dependency-wheelhouse-fixture-{shape.replace('_', '-')}")
        data = base64.b64decode(file.inputs["contentBase64"])
        assert data == fixtures[shape].path.read_bytes() == again[shape].path.read_bytes()
        assert file.inputs["md5"] == hashlib.md5(data).hexdigest()
        assert file.inputs["path"] == f"{VOLUME}/fixtures/{shape}-{hashlib.sha256(data).hexdigest()[:16]}.zip"
        assert path_problem(file.inputs["path"]) is None
        assert file.retain_on_delete and file.parent == f"agent-platform:systems:DependencyWheelhouse::{MAIN}"


def test_every_resource_passes_the_policy_and_uses_the_explicit_provider(cluster_plan: Plan) -> None:
    for r in cluster_plan.resources:
        if not r.custom or r.type.startswith("pulumi:providers:"):
            continue
        assert r.provider and "::workspace::" in r.provider, r.name
        assert check(r.type, r.name, r.inputs, retain_on_delete=r.retain_on_delete, protect=r.protect,
                     production=True, wheels_volume="/Volumes/main/agents_dev/wheels") == []  # fmt: skip


def test_outputs_are_the_jobs_ids_and_urls(cluster_plan: Plan) -> None:
    job_id, secret = cluster_plan.outputs["dependency_wheelhouse_job_id"]
    assert job_id == cluster_plan.one("Job", MAIN).id and not secret
    url, _ = cluster_plan.outputs["dependency_wheelhouse_formats_job_url"]
    assert url.endswith(f"/#job/{cluster_plan.one('Job', FORMATS).id}")


# --- settings


def test_shapes_are_the_wheels_shapes() -> None:
    assert SHAPES == WHEEL_SHAPES


@pytest.mark.parametrize(
    ("compute", "python"),
    [({"kind": "job_cluster"}, "3.10"),
     ({"kind": "job_cluster", "spark_version": "14.3.x-cpu-ml-scala2.12"}, "3.10"),
     ({"kind": "job_cluster", "spark_version": "15.4.x-scala2.12"}, "3.11"),
     ({"kind": "job_cluster", "spark_version": "16.4.x-scala2.12"}, "3.12"),
     ({"kind": "job_cluster", "spark_version": "17.3.x-scala2.13"}, "3.12"),
     ({"kind": "serverless", "environment_version": "2"}, "3.11")],
)  # fmt: skip
def test_target_python_is_the_runtimes(compute: dict[str, str], python: str) -> None:
    settings = DependencyWheelhouseSettings.model_validate({"compute": compute})
    assert target_python(settings) == python and PYTHON_VERSION_RE.match(python)


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"compute": {"kind": "job_cluster", "spark_version": "13.3.x-scala2.12"}},
      "runtime 13.3.x-scala2.12 has no known Python version (known runtimes: 14.x, 15.x, 16.x, 17.x)"),
     ({"compute": {"kind": "job_cluster", "spark_version": "latest"}}, "Databricks runtime version"),
     ({"compute": {"kind": "serverless", "environment_version": "9"}},
      "serverless environment version 9 has no known Python version"),
     ({"compute": {"kind": "existing_cluster", "cluster_id": "1115-120035-jyzgoasz"}}, "needs kind job_cluster or serverless"),
     ({"compute": {"kind": "job_cluster", "num_workers": 0}}, "greater than or equal to 1"),
     ({"formats": ["wheels"]}, "'requirements', 'pure_python', 'packaged', 'existing_wheels', 'mixed' or 'nested'"),
     ({"formats": ["nested", "nested"]}, "lists nested twice"),
     ({"formats": []}, "is empty; allowed: one or more of requirements, pure_python"),
     ({"platforms": ["manylinux_2_17_x86_64 --index-url"]}, "is not a Linux platform tag"),
     ({"build_packages": ["git+https://example.com/x.git"]}, "is not a PyPI requirement"),
     ({"python_version": "2.7"}, "is not a Python version the wheel targets"),
     ({"volume": "x"}, "is not a known setting")],
)  # fmt: skip
def test_bad_settings_are_refused_with_a_clear_message(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        DependencyWheelhouseSettings.model_validate(settings)
    assert message in str(caught.value)


def test_a_compute_without_kind_is_the_shared_cluster() -> None:
    settings = DependencyWheelhouseSettings.model_validate({"compute": {"spark_version": "15.4.x-scala2.12"}})
    assert settings.compute.kind == "job_cluster" and target_python(settings) == "3.11"


def test_an_unknown_runtime_is_accepted_with_its_python_named() -> None:
    settings = DependencyWheelhouseSettings.model_validate(
        {"compute": {"kind": "job_cluster", "spark_version": "18.0.x-scala2.13"}, "python_version": "3.12"}
    )
    assert target_python(settings) == "3.12"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [({"enabled": True}, 1),
     ({"enabled": True, "compute": {"kind": "job_cluster", "spark_version": "14.3.x-cpu-ml-scala2.12"}}, 1),
     ({"enabled": False}, 0),
     ({"enabled": True, "compute": {"kind": "job_cluster", "spark_version": "15.4.x-scala2.12"}}, 0),
     ({"enabled": True, "compute": {"kind": "serverless"}}, 0)],
)  # fmt: skip
def test_the_preview_notes_the_end_of_support_of_14_3(settings: dict[str, Any], expected: int) -> None:
    found = notes(DependencyWheelhouseSettings.model_validate(settings))
    assert len(found) == expected
    assert all("1 Feb 2027" in note and "dependency_wheelhouse.compute.spark_version" in note for note in found)


def test_every_field_is_described() -> None:
    """The README's config reference is generated from the descriptions."""
    from infra.systems.dependency_wheelhouse.settings import WheelhouseJobCluster

    for model in (DependencyWheelhouseSettings, WheelhouseJobCluster):
        assert all(field.description for field in model.model_fields.values()), model


@pytest.mark.parametrize("shape", ["pure_python", "existing_wheels"])
def test_the_format_jobs_own_parameters_run_end_to_end(
    cluster_plan: Plan,
    fixtures: dict[str, BuiltFixture],
    shape: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real deps-wheelhouse, given exactly the format job's parameters for one shape (the volume a local
    directory, the run id a number), builds the wheelhouse, verifies it (driver only: no Spark here) and the
    cleanup removes the run directory: what the tasks pass is what the entry point needs."""
    from agent_jobs.wheelhouse import cli

    # verify puts its --target first on sys.path and imports the fixture's modules: undone after the test.
    monkeypatch.setattr(sys, "path", list(sys.path))
    for module in fixtures[shape].modules:
        monkeypatch.delitem(sys.modules, module, raising=False)
    volume = tmp_path / "Volumes" / "cat" / "schema" / "vol"
    found = tasks(cluster_plan, FORMATS)
    fixture_path = cluster_plan.one("File", f"dependency-wheelhouse-fixture-{shape.replace('_', '-')}").inputs["path"]
    local_fixture = Path(fixture_path.replace(VOLUME, str(volume)))
    local_fixture.parent.mkdir(parents=True)
    local_fixture.write_bytes(fixtures[shape].path.read_bytes())

    def argv(task: str) -> list[str]:
        params = found[task]["pythonWheelTask"]["parameters"]
        return [
            p.replace(VOLUME, str(volume))
            .replace("/tmp/deps-wheelhouse-", f"{tmp_path}/local-")
            .replace("{{job.run_id}}", "4242")
            .replace("{{job.id}}", "7")
            for p in params
        ]

    cli.main(argv(f"process_{shape}"))
    run_dir = volume / "runs" / "4242"
    assert (run_dir / shape / "wheelhouse" / "wheelhouse.zip").is_file()
    cli.main([*argv(f"verify_{shape}"), "--spark", "off"])  # the last --spark wins: no local Spark in this test
    assert (run_dir / shape / "wheelhouse" / "verify.json").is_file()
    cli.main(argv("cleanup"))
    assert not run_dir.exists() and local_fixture.is_file()  # the fixtures outlive every run
