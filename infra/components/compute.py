"""Task compute for wheel tasks: a serverless environment, an existing cluster or a job cluster.

Each form gets the wheel its own way: serverless as an environment dependency, clusters as a task library.
`SharedCompute` says once that several tasks share one compute (a job cluster, a serverless environment or
an existing cluster): the job gets its `job_clusters` / `environments` list from it, and every task the same
keyword arguments (`job_cluster_key` or `environment_key`, and on clusters the libraries, which the Jobs API
sets per task; on one shared cluster they install once and the later tasks find them there).
`wheel_compute` is the one-task form the single-task jobs use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_databricks as db

from infra.settings import Compute, ExistingClusterCompute, JobClusterCompute, ServerlessCompute


@dataclass(frozen=True)
class TaskCompute:
    task: dict[str, Any]
    """Keyword arguments for db.JobTaskArgs (environment_key, existing_cluster_id or job_cluster_key, libraries)."""
    environments: list[db.JobEnvironmentArgs] = field(default_factory=list)
    job_clusters: list[db.JobJobClusterArgs] = field(default_factory=list)


@dataclass(frozen=True)
class SharedCompute:
    """One compute for many tasks of a job, declared once."""

    key: str
    """The job_cluster_key or environment_key (unused for an existing cluster)."""
    job_clusters: tuple[db.JobJobClusterArgs, ...] = ()
    environments: tuple[db.JobEnvironmentArgs, ...] = ()
    existing_cluster_id: str | None = None
    libraries: tuple[db.JobTaskLibraryArgs, ...] = ()
    """What every task on a cluster installs (serverless tasks get theirs from the environment)."""

    def task(self) -> dict[str, Any]:
        """Keyword arguments for each db.JobTaskArgs that runs on this compute (a fresh dict per task)."""
        if self.environments:
            return {"environment_key": self.key}
        placement: dict[str, Any] = (
            {"existing_cluster_id": self.existing_cluster_id}
            if self.existing_cluster_id is not None
            else {"job_cluster_key": self.key}
        )
        return {**placement, "libraries": list(self.libraries) or None}

    def one_task(self) -> TaskCompute:
        return TaskCompute(task=self.task(), environments=list(self.environments), job_clusters=list(self.job_clusters))


def shared_compute(
    compute: Compute,
    wheel_path: pulumi.Input[str],
    tags: Mapping[str, str],
    run_as: str | None = None,
    *,
    key: str = "default",
    packages: Sequence[str] = (),
    dedicated: bool = False,
) -> SharedCompute:
    """Compute shared by every task of a job that runs the platform's wheel.

    `packages` are PyPI requirements the tasks need beside the wheel: environment dependencies on serverless,
    task libraries on clusters. `dedicated` makes a job cluster SINGLE_USER even when the job has no run_as
    identity (it then runs as its owner, and Databricks makes the cluster the run-as identity's): what
    SparkContext and addPyFile need."""
    if isinstance(compute, ServerlessCompute):
        spec = db.JobEnvironmentSpecArgs(
            environment_version=compute.environment_version, dependencies=[wheel_path, *packages]
        )
        return SharedCompute(key=key, environments=(db.JobEnvironmentArgs(environment_key=key, spec=spec),))
    libraries = (
        db.JobTaskLibraryArgs(whl=wheel_path),
        *(db.JobTaskLibraryArgs(pypi=db.JobTaskLibraryPypiArgs(package=p)) for p in packages),
    )
    if isinstance(compute, ExistingClusterCompute):
        return SharedCompute(key=key, existing_cluster_id=compute.cluster_id, libraries=libraries)
    assert isinstance(compute, JobClusterCompute)
    cluster = db.JobJobClusterNewClusterArgs(
        spark_version=compute.spark_version,
        node_type_id=compute.node_type_id,
        num_workers=compute.num_workers,
        policy_id=compute.policy_id,
        spark_conf=dict(compute.spark_conf) or None,
        custom_tags=dict(tags),
        # Unity Catalog access: single-user mode for the identity the job runs as; without one (a development
        # stack, where the job runs as its owner) standard access mode, which needs no user name, unless the
        # tasks need a dedicated cluster: then single-user without a name, which the run-as identity fills in.
        data_security_mode="SINGLE_USER" if run_as or dedicated else "USER_ISOLATION",
        single_user_name=run_as,
    )
    return SharedCompute(
        key=key,
        job_clusters=(db.JobJobClusterArgs(job_cluster_key=key, new_cluster=cluster),),
        libraries=libraries,
    )


def wheel_compute(
    compute: Compute,
    wheel_path: pulumi.Input[str],
    tags: Mapping[str, str],
    run_as: str | None = None,
    key: str = "default",
    extra_requirements: Sequence[str] = (),
) -> TaskCompute:
    """Compute for a job's one task that runs the platform's wheel, with the requirements of the system's extra
    beside it (environment dependencies on serverless, PyPI libraries on clusters)."""
    return shared_compute(compute, wheel_path, tags, run_as, key=key, packages=extra_requirements).one_task()
