"""Seed 001's build: the serving platform (online path: infra.systems.serving_platform.system) and its offline
path (telemetry inside it, the nightly prompt optimisation beside it) from the shared parts."""

from __future__ import annotations

from infra import naming
from infra.systems.context import JobOutputs, SystemContext, SystemResult
from infra.systems.serving_platform import PROMPTS_VOLUME_ROLE
from infra.systems.serving_platform.optimizer import PromptOptimizerJob, PromptOptimizerJobArgs
from infra.systems.serving_platform.system import ServingPlatform, ServingPlatformArgs, serving_names
from infra.systems.serving_platform.telemetry import app_telemetry_env, table_names


def build(ctx: SystemContext) -> SystemResult:
    assert ctx.wheel is not None
    s, sp = ctx.settings, ctx.own
    schema = ctx.schemas["platform"]
    tables = table_names(sp.telemetry, ctx.catalog, schema)
    platform = ServingPlatform(
        "serving-platform",
        ServingPlatformArgs(
            settings=sp,
            names=serving_names(
                sp, environment=s.environment, project=ctx.project, user=s.deployment.user, production=s.production
            ),
            production=s.production,
            protect=s.protect_data,
            catalog=ctx.catalog,
            schema=schema,
            prompts_volume_path=ctx.volume_paths[PROMPTS_VOLUME_ROLE],
            wheel=ctx.wheel.built,
            wheel_source=ctx.wheel.source,
            host=s.workspace.host,
            profile=s.workspace.profile,
            tags={k: v for k, v in ctx.common.tags.items() if k != "git_commit"},  # jobs only: see infra.platform
            extra_env=app_telemetry_env(sp.telemetry, tables),
            extras=("serving", "telemetry") if sp.telemetry.on else ("serving",),
            dashboard_name=f"Agent serving ({ctx.project} {naming.who(s)})",
        ),
        ctx.opts,
    )
    jobs = {}
    if sp.optimizer.enabled:
        optimizer = PromptOptimizerJob(
            "prompt-optimizer",
            PromptOptimizerJobArgs(
                settings=sp.optimizer,
                common=ctx.common,
                job_name=ctx.job_name("prompt_optimizer"),
                catalog=ctx.catalog,
                schema=schema,
                wheel_path=ctx.wheel.path,
                prompts_volume_path=ctx.volume_paths[PROMPTS_VOLUME_ROLE],
                serving_endpoint=platform.endpoint_name,
                experiment_path=sp.optimizer.experiment_path
                or naming.experiment_path(s, ctx.project, "serving/prompt-optimizer"),
                protect=s.protect_data,
                wheel_source=ctx.wheel.source,
            ),
            ctx.opts,
        )
        jobs["prompt_optimizer"] = JobOutputs(optimizer.job_id, optimizer.job_url)
    return SystemResult(jobs=jobs, outputs=platform.outputs())
