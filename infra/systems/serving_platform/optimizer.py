"""Seed 001's nightly prompt optimisation: one job, task `optimize_prompts`, running the wheel's
`prompt-optimizer` on serverless at 02:00 (the seed's "Nightly at 2am"; paused in development stacks).

The seed's `jobs/optimize_prompts_dspy.py` becomes a python_wheel_task of the platform's wheel; its serverless
environment installs the wheel plus the libraries of the wheel's `optimizer` extra (read from wheel/pyproject.toml,
so the two never drift), unpinned like every serverless dependency here. The job reads the training table,
asks the serving endpoint, and writes promoted prompts to the prompts volume's `optimised/` area, which the app
re-reads every 5 minutes. The identity it runs as needs SELECT on the table, CAN_QUERY on the endpoint and
WRITE_VOLUME on the prompts volume; this component grants none of them (see the README's wiring notes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_databricks as db

from infra.components.jobs import JobCommon, job_args, job_permissions, wheel_task
from infra.components.wheel import SOURCE, extra_requirements
from infra.naming import experiment_folder
from infra.systems.serving_platform.offline_settings import PromptOptimizerSettings

TASK_KEY = "optimize_prompts"
ENTRY_POINT = "prompt-optimizer"
ENVIRONMENT_KEY = "optimizer_env"
EXTRA = "optimizer"


def training_table(
    settings: PromptOptimizerSettings, catalog: pulumi.Input[str], schema: pulumi.Input[str]
) -> pulumi.Output[str]:
    """The training table's full name: as configured when it is one, else in the serving schema."""
    if "." in settings.training_table:
        return pulumi.Output.from_input(settings.training_table)
    return pulumi.Output.concat(catalog, ".", schema, ".", settings.training_table)


@dataclass(frozen=True)
class PromptOptimizerJobArgs:
    settings: PromptOptimizerSettings
    common: JobCommon
    job_name: str
    catalog: pulumi.Input[str]
    schema: pulumi.Input[str]
    """The serving schema's name (a bare training_table lives there)."""
    wheel_path: pulumi.Input[str]
    prompts_volume_path: pulumi.Input[str]
    """/Volumes/... of the prompts volume the app reads (base/ and optimised/)."""
    serving_endpoint: pulumi.Input[str]
    """The name of the serving endpoint the agents use."""
    experiment_path: str
    protect: bool
    wheel_source: Path = SOURCE


class PromptOptimizerJob(pulumi.ComponentResource):
    """Children: `MlflowExperiment` <name>-experiment (in `Directory` <name>-experiment-folder unless the folder
    always exists; both retain_on_delete, protect when asked), `Job` <name> (one python_wheel_task on serverless,
    scheduled), `Permissions` <name>-permissions when configured."""

    job_id: pulumi.Output[str]
    job_url: pulumi.Output[str]
    experiment_path: pulumi.Output[str]

    def __init__(self, name: str, args: PromptOptimizerJobArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:serving:PromptOptimizerJob", name, None, opts)
        s = args.settings
        data = pulumi.ResourceOptions(parent=self, retain_on_delete=True, protect=args.protect)
        folder = experiment_folder(args.experiment_path)
        if folder is not None:  # MLflow does not create an experiment's parent folders
            directory = db.Directory(f"{name}-experiment-folder", path=folder, opts=data)
            data = pulumi.ResourceOptions.merge(data, pulumi.ResourceOptions(depends_on=[directory]))
        experiment = db.MlflowExperiment(f"{name}-experiment", name=args.experiment_path, opts=data)
        options: list[tuple[str, pulumi.Input[str]]] = [
            ("--table", training_table(s, args.catalog, args.schema)),
            ("--prompts-volume", args.prompts_volume_path),
            ("--endpoint", args.serving_endpoint),
            ("--experiment", experiment.name),
            *([("--warehouse-id", s.warehouse_id)] if s.warehouse_id else []),
            *([("--agents", ",".join(s.agents))] if s.agents else []),
            ("--margin", repr(s.margin)),
            ("--holdout-fraction", repr(s.holdout_fraction)),
            ("--min-examples", str(s.min_examples)),
            ("--job-id", "{{job.id}}"),
            ("--job-run-id", "{{job.run_id}}"),
        ]
        task = wheel_task(TASK_KEY, ENTRY_POINT, options, {"environment_key": ENVIRONMENT_KEY})
        environment = db.JobEnvironmentArgs(
            environment_key=ENVIRONMENT_KEY,
            spec=db.JobEnvironmentSpecArgs(
                environment_version=s.environment_version,
                dependencies=[args.wheel_path, *extra_requirements(args.wheel_source, EXTRA)],
            ),
        )
        job = db.Job(
            name,
            job_args(
                args.common,
                args.job_name,
                "Nightly prompt optimisation (seed 001): DSPy against the serving endpoint; a prompt is promoted to "
                "the prompts volume only when it beats the current one on a holdout",
                [task],
                timeout_seconds=s.timeout_minutes * 60,
                environments=[environment],
                schedule=s.schedule,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        job_permissions(name, job, args.common.permissions, self)
        self.job_id = job.id
        self.job_url = job.url
        self.experiment_path = experiment.name
        self.register_outputs({"job_id": self.job_id, "job_url": self.job_url, "experiment": self.experiment_path})
