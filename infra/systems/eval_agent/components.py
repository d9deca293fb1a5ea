"""Seed 000's `eval_agent_job`: task `run_autonomous` runs `mlflow-eval --autonomous` from the platform's wheel.

The seed set task-level `env_vars`, which is not a Jobs API field. The same values reach the agent as
parameters its runtime module reads, which works on serverless, existing and job clusters alike:
MLFLOW_AGENT_VOLUME_PATH -> --volume-path, ANTHROPIC_BASE_URL -> --base-url, DABS_MODEL -> --model,
MLFLOW_EXPERIMENT_ID -> --experiment-id {{job.parameters.experiment_id}}, and ANTHROPIC_AUTH_TOKEN ->
--token-secret <scope>/databricks-token: a reference the agent resolves with the job's identity at run time,
never the value. {{job.id}} and {{job.run_id}} give job-aware session ids on every kind of compute.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_databricks as db

from infra.components.compute import wheel_compute
from infra.components.jobs import JobCommon, job_args, job_permissions, wheel_task
from infra.systems.context import JobOutputs, SystemContext, SystemResult
from infra.systems.eval_agent.settings import EvalAgentSettings

TASK_KEY = "run_autonomous"
ENTRY_POINT = "mlflow-eval"
TOKEN_KEY = "databricks-token"
TIMEOUT_SECONDS = 4 * 3600  # one long autonomous session (seed 000: "single long-running job execution")


@dataclass(frozen=True)
class EvalAgentJobArgs:
    settings: EvalAgentSettings
    common: JobCommon
    job_name: str
    workspace_host: str
    wheel_path: pulumi.Input[str]
    sessions_volume_path: pulumi.Input[str]
    secret_scope: pulumi.Input[str]
    extra_requirements: tuple[str, ...] = ()


class EvalAgentJob(pulumi.ComponentResource):
    """Children: `Job` <name> (one python_wheel_task), `Permissions` <name>-permissions when configured."""

    job_id: pulumi.Output[str]
    job_url: pulumi.Output[str]

    def __init__(self, name: str, args: EvalAgentJobArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:jobs:EvalAgentJob", name, None, opts)
        s = args.settings
        compute = wheel_compute(
            s.compute, args.wheel_path, args.common.tags, args.common.run_as, extra_requirements=args.extra_requirements
        )
        # The seed's parameters, then its env_vars as parameters the runtime module reads (see module docstring).
        options: list[tuple[str, pulumi.Input[str]]] = [
            ("--experiment-id", "{{job.parameters.experiment_id}}"),
            ("--volume-path", args.sessions_volume_path),
            ("--base-url", f"{args.workspace_host}/serving-endpoints/{s.serving_endpoint}"),
            ("--model", s.model),
            ("--token-secret", pulumi.Output.concat(args.secret_scope, "/", TOKEN_KEY)),
            ("--job-id", "{{job.id}}"),
            ("--job-run-id", "{{job.run_id}}"),
        ]
        task = wheel_task(TASK_KEY, ENTRY_POINT, options, compute.task, flags=["--autonomous"])
        job = db.Job(
            name,
            job_args(
                args.common,
                args.job_name,
                "MLflow evaluation agent: reviews an experiment's runs with a model and writes a report (seed 000)",
                [task],
                timeout_seconds=TIMEOUT_SECONDS,
                parameters=[db.JobParameterArgs(name="experiment_id", default=s.experiment_id or "")],
                environments=compute.environments,
                job_clusters=compute.job_clusters,
                schedule=s.schedule,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        job_permissions(name, job, args.common.permissions, self)
        self.job_id = job.id
        self.job_url = job.url
        self.register_outputs({"job_id": self.job_id, "job_url": self.job_url})


def build(ctx: SystemContext) -> SystemResult:
    assert ctx.wheel is not None and ctx.secret_scope is not None
    job = EvalAgentJob(
        "eval-agent",
        EvalAgentJobArgs(
            settings=ctx.own,
            common=ctx.common,
            job_name=ctx.job_name("eval_agent"),
            workspace_host=ctx.settings.workspace.host,
            wheel_path=ctx.wheel.path,
            sessions_volume_path=ctx.volume_paths["eval_sessions"],
            secret_scope=ctx.secret_scope,
            extra_requirements=ctx.extra_requirements,
        ),
        ctx.opts,
    )
    return SystemResult(jobs={"eval_agent": JobOutputs(job.job_id, job.job_url)})
