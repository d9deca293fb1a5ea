"""Seed 002's health-monitor agent: the setup job, the evaluation-gated deployment job, the registered model
they work on, the MLflow experiment they log to, and the model's link to the deployment job.

Every task runs one subcommand of the wheel's `health-monitor` entry point. Environments follow the seed's
table ("Environment Configuration by Task"), each with its dependencies unpinned (the seed's serverless lesson)
plus the platform's wheel, which is pinned by content, not by version range. The setup job creates no endpoint:
only the gate does, and only when every threshold passes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_databricks as db

from infra import naming
from infra.components.jobs import JobCommon, job_args, job_permissions, wheel_task
from infra.naming import experiment_folder
from infra.systems.context import JobOutputs, SystemContext, SystemResult
from infra.systems.health_monitor.model_link import DeploymentJobLink
from infra.systems.health_monitor.settings import HealthMonitorSettings

ENTRY_POINT = "health-monitor"

# Environment key -> dependencies besides the wheel (seed 002's table; no version pins).
ENVIRONMENTS: dict[str, tuple[str, ...]] = {
    "sql_only": (),
    # The seed lists only mlflow; its register_scorers and run_evaluation tasks also run MLflow's LLM judges,
    # which on Databricks import databricks-agents.
    "mlflow_env": ("databricks-agents", "mlflow"),
    "agent_env": ("mlflow", "databricks-sdk"),
    "agents_env": ("databricks-agents", "mlflow"),
    "evaluation_env": ("mlflow", "pandas", "databricks-agents"),
}


@dataclass(frozen=True)
class SetupTask:
    key: str
    command: str
    environment: str
    depends_on: tuple[str, ...] = ()


# The seed's six tasks and their dependencies, exactly.
SETUP_TASKS: tuple[SetupTask, ...] = (
    SetupTask("create_agent_infrastructure", "create-infrastructure", "sql_only"),
    SetupTask("register_prompts", "register-prompts", "mlflow_env", ("create_agent_infrastructure",)),
    SetupTask("register_scorers", "register-scorers", "mlflow_env", ("create_agent_infrastructure",)),
    SetupTask("create_evaluation_datasets", "create-datasets", "agents_env", ("create_agent_infrastructure",)),
    SetupTask("log_agent_model", "log-model", "agent_env", ("register_prompts", "register_scorers")),
    SetupTask("run_evaluation", "evaluate", "mlflow_env", ("log_agent_model", "create_evaluation_datasets")),
)
DEPLOYMENT_TASK = "deployment_job"


@dataclass(frozen=True)
class HealthMonitorArgs:
    settings: HealthMonitorSettings
    common: JobCommon
    job_names: Mapping[str, str]
    """'agent_setup' / 'agent_deployment' -> physical job name."""
    catalog: pulumi.Input[str]
    schema: pulumi.Input[str]
    """The agent schema's name, from the Schema resource (so the model comes after it)."""
    wheel_path: pulumi.Input[str]
    experiment_path: str
    promotion_target: str
    serving_endpoint: str
    host: str
    profile: str | None
    protect: bool
    extra_requirements: tuple[str, ...] = ()


class HealthMonitor(pulumi.ComponentResource):
    """Children: `MlflowExperiment` <name>-experiment (in `Directory` <name>-experiment-folder unless that always
    exists) and `RegisteredModel` <name>-model (both retain_on_delete, protected when data is), `Job`s
    <name>-setup and <name>-deployment (with `Permissions` when configured), and the dynamic
    `DeploymentJobLink` <name>-deployment-link."""

    setup_job_id: pulumi.Output[str]
    setup_job_url: pulumi.Output[str]
    deployment_job_id: pulumi.Output[str]
    deployment_job_url: pulumi.Output[str]
    registered_model: pulumi.Output[str]

    def __init__(self, name: str, args: HealthMonitorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:jobs:HealthMonitor", name, None, opts)
        s, child = args.settings, pulumi.ResourceOptions(parent=self)
        data = pulumi.ResourceOptions(parent=self, retain_on_delete=True, protect=args.protect)
        folder = experiment_folder(args.experiment_path)
        if folder is not None:  # MLflow does not create an experiment's parent folders
            directory = db.Directory(
                f"{name}-experiment-folder",
                path=folder,
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True, protect=args.protect),  # may hold more
            )
            data = pulumi.ResourceOptions.merge(data, pulumi.ResourceOptions(depends_on=[directory]))
        experiment = db.MlflowExperiment(f"{name}-experiment", name=args.experiment_path, opts=data)
        model = db.RegisteredModel(
            f"{name}-model",
            name=s.model_name,
            catalog_name=args.catalog,
            schema_name=args.schema,
            comment="Health-monitor agent (seed 002). The setup job logs versions; only the deployment job's gate "
            "sets the staging/production aliases.",
            # Registering versions and setting aliases needs ownership (Unity Catalog API): the jobs' identity.
            owner=args.common.run_as,
            opts=data,
        )
        full_name = pulumi.Output.concat(args.catalog, ".", args.schema, ".", model.name)
        base: list[tuple[str, pulumi.Input[str]]] = [("--catalog", args.catalog), ("--agent-schema", args.schema)]
        run_ids: list[tuple[str, pulumi.Input[str]]] = [("--job-id", "{{job.id}}"), ("--job-run-id", "{{job.run_id}}")]
        setup_options: dict[str, list[tuple[str, pulumi.Input[str]]]] = {
            "create_agent_infrastructure": [
                ("--volumes", ",".join((s.runbooks_volume, s.embeddings_volume, s.artifacts_volume))),
                *([("--warehouse-id", s.sql_warehouse_id)] if s.sql_warehouse_id else []),
            ],
            "register_prompts": [("--experiment", experiment.name)],
            "register_scorers": [("--experiment", experiment.name), ("--scorers", ",".join(s.scorers))],
            "create_evaluation_datasets": [("--experiment", experiment.name)],
            "log_agent_model": [
                ("--experiment", experiment.name),
                ("--model-name", full_name),
                ("--llm-endpoint", s.llm_endpoint),
            ],
            "run_evaluation": [
                ("--experiment", experiment.name),
                ("--model-name", full_name),
                ("--scorers", ",".join(s.scorers)),
            ],
        }
        tasks = []
        for t in SETUP_TASKS:
            task = wheel_task(
                t.key, ENTRY_POINT, [*base, *setup_options[t.key], *run_ids], {"environment_key": t.environment},
                flags=[t.command],
            )  # fmt: skip
            task.depends_ons = [db.JobTaskDependsOnArgs(task_key=d) for d in t.depends_on] or None
            tasks.append(task)
        setup = db.Job(
            f"{name}-setup",
            job_args(
                args.common,
                args.job_names["agent_setup"],
                "Health-monitor agent setup (seed 002): tables, prompts, scorers, datasets, model version, sanity "
                "evaluation. Creates no serving endpoint: the deployment job does, when the gate passes.",
                tasks,
                timeout_seconds=2 * 3600,
                environments=self._environments(
                    s, args.wheel_path, [t.environment for t in SETUP_TASKS], args.extra_requirements
                ),
            ),
            opts=child,
        )
        job_permissions(f"{name}-setup", setup, args.common.permissions, self)

        gate_options: list[tuple[str, pulumi.Input[str]]] = [
            ("--model-name", "{{job.parameters.model_name}}"),
            ("--promotion-target", "{{job.parameters.promotion_target}}"),
            ("--mode", "{{job.parameters.gate_mode}}"),
            ("--thresholds", json.dumps(dict(sorted(s.thresholds.items())), separators=(",", ":"))),
            ("--scorers", ",".join(s.scorers)),
            ("--experiment", experiment.name),
            ("--endpoint-name", args.serving_endpoint),
            ("--endpoint-permissions", json.dumps(dict(sorted(s.endpoint_permissions.items())))),
            ("--ready-timeout-minutes", str(s.endpoint_ready_timeout_minutes)),
        ]
        gate = wheel_task(
            DEPLOYMENT_TASK, ENTRY_POINT, [*base, *gate_options, *run_ids], {"environment_key": "evaluation_env"},
            # One element, so that the empty default ("latest") can never go missing from argv.
            flags=["deploy", "--model-version={{job.parameters.model_version}}"],
        )  # fmt: skip
        # Parameters the model's deployment-job link fills in for each new version (seed: "Job Parameter
        # Requirements"); a manual run takes the defaults: the stack's model, its latest version.
        parameters = [
            db.JobParameterArgs(name="model_name", default=full_name),
            db.JobParameterArgs(name="model_version", default=""),
            db.JobParameterArgs(name="promotion_target", default=args.promotion_target),
            db.JobParameterArgs(name="gate_mode", default=s.gate_mode),
        ]
        deployment = db.Job(
            f"{name}-deployment",
            job_args(
                args.common,
                args.job_names["agent_deployment"],
                "Health-monitor agent deployment (seed 002): evaluate a model version, check the thresholds, and "
                "only if all pass promote it and create or update its serving endpoint",
                [gate],
                timeout_seconds=(s.endpoint_ready_timeout_minutes + 60) * 60,
                parameters=parameters,
                environments=self._environments(s, args.wheel_path, ["evaluation_env"], args.extra_requirements),
            ),
            opts=child,
        )
        job_permissions(f"{name}-deployment", deployment, args.common.permissions, self)
        DeploymentJobLink(
            f"{name}-deployment-link",
            host=args.host,
            profile=args.profile,
            model_name=full_name,
            job_id=deployment.id,
            opts=child,
        )

        self.setup_job_id, self.setup_job_url = setup.id, setup.url
        self.deployment_job_id, self.deployment_job_url = deployment.id, deployment.url
        self.registered_model = full_name
        self.register_outputs({"setup_job_id": setup.id, "deployment_job_id": deployment.id, "model": full_name})

    @staticmethod
    def _environments(
        s: HealthMonitorSettings, wheel_path: pulumi.Input[str], keys: Sequence[str], extra: Sequence[str] = ()
    ) -> list[db.JobEnvironmentArgs]:
        # The seed's dependencies of each environment, the wheel, and the requirements of the wheel's extra.
        return [
            db.JobEnvironmentArgs(
                environment_key=key,
                spec=db.JobEnvironmentSpecArgs(
                    environment_version=s.compute.environment_version,
                    dependencies=[*ENVIRONMENTS[key], wheel_path, *extra],
                ),
            )
            for key in sorted(set(keys))
        ]


def build(ctx: SystemContext) -> SystemResult:
    assert ctx.wheel is not None
    s, hm = ctx.settings, ctx.own
    health = HealthMonitor(
        "health-monitor",
        HealthMonitorArgs(
            settings=hm,
            common=ctx.common,
            job_names={job: ctx.job_name(job) for job in ("agent_setup", "agent_deployment")},
            catalog=ctx.catalog,
            schema=ctx.schemas["agent"],
            wheel_path=ctx.wheel.path,
            experiment_path=hm.experiment_path or naming.experiment_path(s, ctx.project, "health-monitor"),
            promotion_target=hm.promotion_target or naming.promotion_target(s),
            serving_endpoint=hm.serving_endpoint or naming.serving_endpoint(s, "health-monitor-agent"),
            host=s.workspace.host,
            profile=s.workspace.profile,
            protect=s.protect_data,
            extra_requirements=ctx.extra_requirements,
        ),
        ctx.opts,
    )
    return SystemResult(
        jobs={
            "agent_setup": JobOutputs(health.setup_job_id, health.setup_job_url),
            "agent_deployment": JobOutputs(health.deployment_job_id, health.deployment_job_url),
        },
        outputs={"registered_model": health.registered_model},
    )
