"""Task compute for wheel tasks: a serverless environment, an existing cluster or a job cluster.

Each form gets the wheel its own way: serverless as an environment dependency, clusters as a task library.
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


def wheel_compute(
    compute: Compute,
    wheel_path: pulumi.Input[str],
    tags: Mapping[str, str],
    run_as: str | None = None,
    key: str = "default",
    extra_requirements: Sequence[str] = (),
) -> TaskCompute:
    """Compute for tasks that run the platform's wheel, with the requirements of the system's extra beside it (as
    environment dependencies on serverless, PyPI libraries on clusters). Every task given `.task` shares the
    one environment or job cluster."""
    if isinstance(compute, ServerlessCompute):
        spec = db.JobEnvironmentSpecArgs(
            environment_version=compute.environment_version, dependencies=[wheel_path, *extra_requirements]
        )
        return TaskCompute(
            task={"environment_key": key},
            environments=[db.JobEnvironmentArgs(environment_key=key, spec=spec)],
        )
    library = [db.JobTaskLibraryArgs(whl=wheel_path)]
    library += [db.JobTaskLibraryArgs(pypi=db.JobTaskLibraryPypiArgs(package=r)) for r in extra_requirements]
    if isinstance(compute, ExistingClusterCompute):
        return TaskCompute(task={"existing_cluster_id": compute.cluster_id, "libraries": library})
    assert isinstance(compute, JobClusterCompute)
    cluster = db.JobJobClusterNewClusterArgs(
        spark_version=compute.spark_version,
        node_type_id=compute.node_type_id,
        num_workers=compute.num_workers,
        policy_id=compute.policy_id,
        spark_conf=dict(compute.spark_conf) or None,
        custom_tags=dict(tags),
        # Unity Catalog access: single-user mode for the identity the job runs as; without one (a development
        # stack, where the job runs as its owner) standard access mode, which needs no user name.
        data_security_mode="SINGLE_USER" if run_as else "USER_ISOLATION",
        single_user_name=run_as,
    )
    return TaskCompute(
        task={"job_cluster_key": key, "libraries": library},
        job_clusters=[db.JobJobClusterArgs(job_cluster_key=key, new_cluster=cluster)],
    )
