"""infra.components.compute: one compute declared once for many tasks (SharedCompute), and the one-task form the
single-task jobs use (wheel_compute), which must keep giving exactly what those jobs had."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_databricks as db
import pytest

from infra.components.compute import SharedCompute, shared_compute, wheel_compute
from infra.components.jobs import wheel_task
from infra.settings import ExistingClusterCompute, JobClusterCompute, ServerlessCompute
from infra.tools.offline import Plan, run_program, unwrap
from tests.conftest import PROJECT, provider

WHEEL = "/Volumes/main/agents_dev/wheels/agent_jobs-0.1.0.dev7-py3-none-any.whl"
SP = "6f1c2a4e-0b7d-4c1e-9a53-2f8e7d6c5b4a"
CLUSTER = JobClusterCompute(kind="job_cluster", spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge")


def job_of(shared: SharedCompute, keys: tuple[str, ...] = ("a", "b", "c")) -> dict[str, Any]:
    """The wire inputs of a job whose tasks all run on `shared`."""

    def program() -> None:
        tasks = [wheel_task(k, "x", [], shared.task()) for k in keys]
        db.Job(
            "job",
            name="job",
            tasks=tasks,
            job_clusters=list(shared.job_clusters) or None,
            environments=list(shared.environments) or None,
            opts=pulumi.ResourceOptions(provider=provider()),
        )

    plan: Plan = run_program(program, PROJECT, "test", {}, frozenset())
    return dict(unwrap(plan.one("Job", "job").inputs))


def test_tasks_on_one_job_cluster_name_it_once() -> None:
    shared = shared_compute(CLUSTER, WHEEL, {"a": "b"}, SP, key="shared", packages=("wheel", "setuptools>=61.0"))
    spec = job_of(shared)
    (cluster,) = spec["jobClusters"]
    assert cluster["jobClusterKey"] == "shared" and cluster["newCluster"]["singleUserName"] == SP
    libraries = [{"whl": WHEEL}, {"pypi": {"package": "wheel"}}, {"pypi": {"package": "setuptools>=61.0"}}]
    assert [(t["jobClusterKey"], t["libraries"]) for t in spec["tasks"]] == [("shared", libraries)] * 3


def test_tasks_on_one_serverless_environment_name_it_once() -> None:
    shared = shared_compute(ServerlessCompute(), WHEEL, {}, key="env", packages=("wheel",))
    spec = job_of(shared)
    assert spec["environments"] == [
        {"environmentKey": "env", "spec": {"environmentVersion": "4", "dependencies": [WHEEL, "wheel"]}}
    ]
    assert all(t == {"taskKey": t["taskKey"], "environmentKey": "env", "pythonWheelTask": t["pythonWheelTask"]}
               for t in spec["tasks"])  # fmt: skip


def test_tasks_on_an_existing_cluster_get_its_id_and_the_libraries() -> None:
    shared = shared_compute(
        ExistingClusterCompute(kind="existing_cluster", cluster_id="1115-120035-jyzgoasz"), WHEEL, {}
    )
    spec = job_of(shared)
    assert "jobClusters" not in spec and "environments" not in spec
    assert {(t["existingClusterId"], str(t["libraries"])) for t in spec["tasks"]} == {
        ("1115-120035-jyzgoasz", str([{"whl": WHEEL}]))
    }


@pytest.mark.parametrize(("run_as", "dedicated", "mode"), [(SP, False, "SINGLE_USER"), (None, False, "USER_ISOLATION"),
                                                           (None, True, "SINGLE_USER")])  # fmt: skip
def test_access_mode(run_as: str | None, dedicated: bool, mode: str) -> None:
    """Single-user for the run-as identity; without one standard access, unless the tasks need a dedicated
    cluster (SparkContext, addPyFile): then single-user, and Databricks names the run-as identity."""
    (cluster,) = job_of(shared_compute(CLUSTER, WHEEL, {}, run_as, dedicated=dedicated))["jobClusters"]
    assert cluster["newCluster"]["dataSecurityMode"] == mode
    assert cluster["newCluster"].get("singleUserName") == run_as


def test_each_task_gets_its_own_keyword_arguments() -> None:
    """Tasks never share one mutable dict or list (sorted_tasks edits tasks in place)."""
    shared = shared_compute(CLUSTER, WHEEL, {})
    first, second = shared.task(), shared.task()
    assert first == second and first is not second and first["libraries"] is not second["libraries"]


@pytest.mark.parametrize(
    "compute",
    [ServerlessCompute(), ExistingClusterCompute(kind="existing_cluster", cluster_id="1115-120035-jyzgoasz"), CLUSTER],
)
@pytest.mark.parametrize("run_as", [SP, None])
def test_wheel_compute_is_the_one_task_form(
    compute: ServerlessCompute | ExistingClusterCompute | JobClusterCompute, run_as: str | None
) -> None:
    """What the single-task jobs had before SharedCompute, unchanged."""
    got = wheel_compute(compute, WHEEL, {"t": "v"}, run_as)
    if isinstance(compute, ServerlessCompute):
        assert got.task == {"environment_key": "default"} and not got.job_clusters
        (env,) = got.environments
        assert env.environment_key == "default" and env.spec.dependencies == [WHEEL]
        return
    (library,) = got.task["libraries"]
    assert library.whl == WHEEL and not got.environments
    if isinstance(compute, ExistingClusterCompute):
        assert got.task["existing_cluster_id"] == compute.cluster_id and not got.job_clusters
        return
    (cluster,) = got.job_clusters
    assert got.task["job_cluster_key"] == cluster.job_cluster_key == "default"
    new = cluster.new_cluster
    assert new.data_security_mode == ("SINGLE_USER" if run_as else "USER_ISOLATION")
    assert new.single_user_name == run_as and new.custom_tags == {"t": "v"} and new.num_workers == 1
