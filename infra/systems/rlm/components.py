"""Seed 003's job pair: `rlm_orchestrator` (job A) submits runs of `rlm_executor` (job B) through the Jobs API.

The seed's ADK_* variables reach the jobs as parameters their entry points read (works on existing clusters,
where a job cannot set environment variables, and on serverless, which has none):
ADK_DELTA_CATALOG/ADK_DELTA_SCHEMA -> --catalog/--schema, ADK_ARTIFACTS_PATH -> --artifacts-path,
ADK_AGENT_CODE_PATH -> --agent-code-path, ADK_EXECUTOR_JOB_ID -> --executor-job-id, wired from the executor
job's own id (an Output), never through a secret scope. GOOGLE_API_KEY reaches the artifacts the executor
runs as --env-secret GOOGLE_API_KEY=<scope>/google-api-key: a reference read at run time, never a value.

The orchestrator waits for each executor run at least as long as that run may last (the executor job's
timeout plus a margin for queueing and start-up), and gets `{{task.execution_count}}` to make its idempotency
tokens unique per attempt (see the orchestrator options below).

Logical names are stable, so job ids stay stable across deploys (the seed kept its bundle keys for that).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_databricks as db

from infra import PROJECT_ROOT
from infra.components.compute import wheel_compute
from infra.components.jobs import JobCommon, job_args, job_permissions, wheel_task
from infra.systems.context import JobOutputs, SystemContext, SystemResult
from infra.systems.rlm import SYSTEM
from infra.systems.rlm.settings import RlmSettings

AGENT_CODE_NAME = "agent_code_raw.py"  # seed 003's ADK_AGENT_CODE_PATH file name
TELEMETRY_TABLE = "telemetry"
JOB_ID_SECRETS = {"rlm_orchestrator": "rlm-orchestrator-job-id", "rlm_executor": "rlm-executor-job-id"}
EXECUTOR_SETUP_MINUTES = 15
"""The executor job's allowance beyond the artifact's own timeout: library install, start-up, result, telemetry."""
RUN_WAIT_MARGIN_SECONDS = 600
"""How much longer than the executor job's timeout the orchestrator waits for a run: time in the queue and to
start (a job's timeout does not count queueing)."""
ITERATION_OVERHEAD_SECONDS = 300
"""Per iteration, beyond the wait: writing the artifact, submitting, reading the result, telemetry."""


def executor_timeout_seconds(settings: RlmSettings) -> int:
    return (settings.artifact_timeout_minutes + EXECUTOR_SETUP_MINUTES) * 60


def run_wait_seconds(settings: RlmSettings) -> int:
    """The orchestrator's --run-timeout-seconds: never shorter than an executor run may legitimately take."""
    return executor_timeout_seconds(settings) + RUN_WAIT_MARGIN_SECONDS


def telemetry_columns(wheel_source: Path) -> list[dict[str, str]]:
    """The telemetry table's columns: the same file the jobs use for CREATE TABLE IF NOT EXISTS."""
    return list(json.loads((wheel_source / "src/agent_jobs/rlm/telemetry_columns.json").read_text()))


@dataclass(frozen=True)
class RlmJobsArgs:
    settings: RlmSettings
    common: JobCommon
    job_names: dict[str, str]
    """'rlm_orchestrator' / 'rlm_executor' -> physical job name."""
    catalog: pulumi.Input[str]
    schema: pulumi.Input[str]
    """The platform schema's name, from the Schema resource (so the telemetry table comes after it)."""
    wheel_path: pulumi.Input[str]
    artifacts_volume_path: pulumi.Input[str]
    agent_code_volume_path: pulumi.Input[str]
    secret_scope: pulumi.Input[str]
    fallback_secrets: tuple[str, ...]
    """Keys of the optional Jobs API fallback (databricks-token, databricks-host) present in the scope."""
    telemetry_columns: list[dict[str, str]]
    project_root: Path
    protect: bool
    extra_requirements: tuple[str, ...] = ()


class RlmJobs(pulumi.ComponentResource):
    """Children: `Job`s rlm-executor and rlm-orchestrator (with `Permissions` when configured); the
    `SqlTable` rlm-telemetry when a SQL warehouse is configured (retain_on_delete, protect when asked); the
    `File` rlm-agent-code when rlm.agent_code_file is set; the `Secret`s of both job ids only when
    rlm.store_job_ids_in_scope is on."""

    orchestrator_id: pulumi.Output[str]
    orchestrator_url: pulumi.Output[str]
    executor_id: pulumi.Output[str]
    executor_url: pulumi.Output[str]

    def __init__(self, name: str, args: RlmJobsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:jobs:RlmJobs", name, None, opts)
        s, child = args.settings, pulumi.ResourceOptions(parent=self)
        compute = wheel_compute(
            s.compute, args.wheel_path, args.common.tags, args.common.run_as, extra_requirements=args.extra_requirements
        )
        telemetry: list[tuple[str, pulumi.Input[str]]] = [("--catalog", args.catalog), ("--schema", args.schema)]
        if s.sql_warehouse_id:
            telemetry.append(("--telemetry-warehouse-id", s.sql_warehouse_id))
            db.SqlTable(
                f"{name}-telemetry",
                catalog_name=args.catalog,
                schema_name=args.schema,
                name=TELEMETRY_TABLE,
                table_type="MANAGED",
                data_source_format="DELTA",
                warehouse_id=s.sql_warehouse_id,
                comment="RLM agent telemetry (seed 003): one row per submission, result and outcome",
                columns=[
                    db.SqlTableColumnArgs(name=c["name"], type=c["type"], comment=c["comment"])
                    for c in args.telemetry_columns
                ],
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True, protect=args.protect),
            )
        run_ids = [("--job-id", "{{job.id}}"), ("--job-run-id", "{{job.run_id}}")]
        scope = args.secret_scope

        executor_options: list[tuple[str, pulumi.Input[str]]] = [
            ("--artifact-path", "{{job.parameters.artifact_path}}"),
            ("--run-id", "{{job.parameters.run_id}}"),
            ("--iteration", "{{job.parameters.iteration}}"),
            ("--previous-result", "{{job.parameters.previous_result}}"),
            ("--timeout-seconds", str(s.artifact_timeout_minutes * 60)),
            ("--env-secret", pulumi.Output.concat("GOOGLE_API_KEY=", scope, "/google-api-key")),
            *telemetry,
            *run_ids,
        ]
        executor_task = wheel_task("executor", "rlm-executor", executor_options, compute.task)
        executor = db.Job(
            f"{name}-executor",
            job_args(
                args.common,
                args.job_names["rlm_executor"],
                "RLM executor (seed 003, job B): runs one generated artifact, writes result.json and telemetry",
                [executor_task],
                timeout_seconds=executor_timeout_seconds(s),
                max_concurrent_runs=10,  # several orchestrator sessions may run at once
                parameters=[
                    db.JobParameterArgs(name=n, default=d)
                    for n, d in (("artifact_path", ""), ("run_id", ""), ("iteration", "0"), ("previous_result", ""))
                ],
                environments=compute.environments,
                job_clusters=compute.job_clusters,
            ),
            opts=child,
        )
        job_permissions(f"{name}-executor", executor, args.common.permissions, self)

        fallback = [
            (f"--{key.split('-')[1]}-secret", pulumi.Output.concat(scope, "/", key))
            for key in ("databricks-token", "databricks-host")
            if key in args.fallback_secrets
        ]
        agent_code = pulumi.Output.concat(args.agent_code_volume_path, "/", AGENT_CODE_NAME)
        orchestrator_options: list[tuple[str, pulumi.Input[str]]] = [
            ("--executor-job-id", executor.id),
            ("--artifacts-path", args.artifacts_volume_path),
            ("--agent-code-path", agent_code),
            ("--max-iterations", "{{job.parameters.max_iterations}}"),
            ("--session-id", "{{job.parameters.session_id}}"),
            ("--run-timeout-seconds", str(run_wait_seconds(s))),
            # Idempotency tokens are rlm-<job run id>-<attempt>-<iteration>. {{job.run_id}} alone stays the same when
            # a run is repaired, so a repair would get the old (failed) executor runs back and never run the fixed
            # code. Databricks' dynamic value references offer {{job.repair_count}} (repairs only, not task
            # retries), {{task.run_id}} (new per attempt, but a long id) and {{task.execution_count}}: "number of
            # executions including retries and repairs". The count is used: each attempt gets fresh tokens and its
            # own directory (attempt-<n>/), while retries within one attempt keep one executor run per iteration.
            ("--attempt", "{{task.execution_count}}"),
            *fallback,
            *telemetry,
            *run_ids,
        ]
        orchestrator_task = wheel_task("orchestrator", "rlm-orchestrator", orchestrator_options, compute.task)
        orchestrator = db.Job(
            f"{name}-orchestrator",
            job_args(
                args.common,
                args.job_names["rlm_orchestrator"],
                "RLM orchestrator (seed 003, job A): submits executor runs through the Jobs API",
                [orchestrator_task],
                # Every iteration may wait the whole run wait: the job must not time out before its last wait does.
                timeout_seconds=(run_wait_seconds(s) + ITERATION_OVERHEAD_SECONDS) * s.max_iterations,
                parameters=[
                    db.JobParameterArgs(name="max_iterations", default=str(s.max_iterations)),
                    db.JobParameterArgs(name="session_id", default=""),
                ],
                environments=compute.environments,
                job_clusters=compute.job_clusters,
                schedule=s.schedule,
            ),
            opts=child,
        )
        job_permissions(f"{name}-orchestrator", orchestrator, args.common.permissions, self)

        if s.agent_code_file:
            code = (args.project_root / s.agent_code_file).read_bytes()
            db.File(
                f"{name}-agent-code",
                path=agent_code,
                content_base64=base64.b64encode(code).decode(),
                md5=hashlib.md5(code).hexdigest(),
                opts=child,
            )
        if s.store_job_ids_in_scope:
            for job, key in (
                (orchestrator, JOB_ID_SECRETS["rlm_orchestrator"]),
                (executor, JOB_ID_SECRETS["rlm_executor"]),
            ):
                db.Secret(f"{name}-{key}", scope=scope, key=key, string_value=pulumi.Output.secret(job.id), opts=child)

        self.orchestrator_id, self.orchestrator_url = orchestrator.id, orchestrator.url
        self.executor_id, self.executor_url = executor.id, executor.url
        self.register_outputs({"orchestrator_id": orchestrator.id, "executor_id": executor.id})


def build(ctx: SystemContext) -> SystemResult:
    assert ctx.wheel is not None and ctx.secret_scope is not None
    rlm = RlmJobs(
        "rlm",
        RlmJobsArgs(
            settings=ctx.own,
            common=ctx.common,
            job_names={job: ctx.job_name(job) for job in ("rlm_orchestrator", "rlm_executor")},
            catalog=ctx.catalog,
            schema=ctx.schemas["platform"],
            wheel_path=ctx.wheel.path,
            artifacts_volume_path=ctx.volume_paths["rlm_artifacts"],
            agent_code_volume_path=ctx.volume_paths["rlm_agent_code"],
            secret_scope=ctx.secret_scope,
            fallback_secrets=tuple(decl.key for decl in SYSTEM.secrets if decl.config_key in ctx.secrets),
            telemetry_columns=telemetry_columns(ctx.wheel.source),
            project_root=PROJECT_ROOT,
            protect=ctx.settings.protect_data,
            extra_requirements=ctx.extra_requirements,
        ),
        ctx.opts,
    )
    return SystemResult(
        jobs={
            "rlm_orchestrator": JobOutputs(rlm.orchestrator_id, rlm.orchestrator_url),
            "rlm_executor": JobOutputs(rlm.executor_id, rlm.executor_url),
        }
    )
