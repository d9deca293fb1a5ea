"""What every job shares: name, tags, identity, notifications, limits, queueing, permissions, task order.

Tasks are emitted sorted by task_key, each task's dependencies sorted too: the provider compares `tasks` as
an ordered list, so any other order shows a diff on every preview (a known pulumi-databricks issue).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_databricks as db

from infra.components.wheel import PACKAGE
from infra.naming import logical, pause_status
from infra.settings import NotificationSettings, ScheduleSettings
from infra.settings.types import principal_kind


@dataclass(frozen=True)
class JobCommon:
    """The stack-wide job settings, resolved once in platform.py."""

    tags: Mapping[str, str]
    run_as: str | None
    notifications: NotificationSettings
    permissions: Mapping[str, str]
    development: bool


def sorted_tasks(tasks: Sequence[db.JobTaskArgs]) -> list[db.JobTaskArgs]:
    """Tasks by task_key, each one's depends_ons by task_key (stable order: no diff on every preview)."""
    for task in tasks:
        if task.depends_ons:
            task.depends_ons = sorted(task.depends_ons, key=lambda d: str(d.task_key))
    return sorted(tasks, key=lambda t: str(t.task_key))


def wheel_task(
    task_key: str,
    entry_point: str,
    options: Sequence[tuple[str, pulumi.Input[str]]],
    compute_task: Mapping[str, Any],
    *,
    flags: Sequence[str] = (),
    depends_on: Sequence[str] = (),
    run_if: str | None = None,
) -> db.JobTaskArgs:
    """A python_wheel_task of the platform's wheel: `entry_point` called with `flags` then `--option value`
    pairs, on the compute `compute_task` describes (see infra.components.compute), after the tasks `depends_on`."""
    return db.JobTaskArgs(
        task_key=task_key,
        python_wheel_task=db.JobTaskPythonWheelTaskArgs(
            package_name=PACKAGE,
            entry_point=entry_point,
            parameters=[*flags, *[part for option in options for part in option]],
        ),
        depends_ons=[db.JobTaskDependsOnArgs(task_key=key) for key in depends_on] or None,
        run_if=run_if,
        **compute_task,
    )


def job_args(
    common: JobCommon,
    name: str,
    description: str,
    tasks: Sequence[db.JobTaskArgs],
    *,
    timeout_seconds: int,
    max_concurrent_runs: int = 1,
    parameters: Sequence[db.JobParameterArgs] = (),
    environments: Sequence[db.JobEnvironmentArgs] = (),
    job_clusters: Sequence[db.JobJobClusterArgs] = (),
    schedule: ScheduleSettings | None = None,
) -> db.JobArgs:
    """The db.JobArgs of a job with everything every job must have."""
    email = None
    if common.notifications.on_failure or common.notifications.on_success:
        email = db.JobEmailNotificationsArgs(
            on_failures=list(common.notifications.on_failure) or None,
            on_successes=list(common.notifications.on_success) or None,
        )
    return db.JobArgs(
        name=name,
        description=description,
        tags=dict(common.tags),
        tasks=sorted_tasks(tasks),
        parameters=list(parameters) or None,
        environments=list(environments) or None,
        job_clusters=list(job_clusters) or None,
        run_as=run_as(common.run_as),
        email_notifications=email,
        timeout_seconds=timeout_seconds,
        max_concurrent_runs=max_concurrent_runs,
        queue=db.JobQueueArgs(enabled=True),
        schedule=_schedule(schedule, common.development),
    )


def run_as(principal: str | None) -> db.JobRunAsArgs | None:
    if principal is None:
        return None  # the job runs as its owner, the identity that deployed it
    if principal_kind(principal) == "service_principal":
        return db.JobRunAsArgs(service_principal_name=principal)
    return db.JobRunAsArgs(user_name=principal)


def _schedule(schedule: ScheduleSettings | None, development: bool) -> db.JobScheduleArgs | None:
    if schedule is None:
        return None
    return db.JobScheduleArgs(
        quartz_cron_expression=schedule.cron,
        timezone_id=schedule.timezone,
        pause_status=pause_status(not development, schedule.paused),
    )


def job_permissions(
    name: str, job: db.Job, permissions: Mapping[str, str], parent: pulumi.Resource
) -> db.Permissions | None:
    """Authoritative permissions on one job (the deploying identity stays its owner)."""
    if not permissions:
        return None
    controls = []
    for principal, level in sorted(permissions.items()):
        kind = principal_kind(principal)
        if kind == "user":
            controls.append(db.PermissionsAccessControlArgs(user_name=principal, permission_level=level))
        elif kind == "service_principal":
            controls.append(db.PermissionsAccessControlArgs(service_principal_name=principal, permission_level=level))
        else:
            controls.append(db.PermissionsAccessControlArgs(group_name=principal, permission_level=level))
    return db.Permissions(
        logical(name, "permissions"),
        job_id=job.id,
        access_controls=controls,
        opts=pulumi.ResourceOptions(parent=parent),
    )
