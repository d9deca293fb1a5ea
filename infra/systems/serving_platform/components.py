"""Seed 001's build: the serving platform from the shared parts (infra.systems.serving_platform.system holds
the components)."""

from __future__ import annotations

from infra.systems.context import SystemContext, SystemResult
from infra.systems.serving_platform import PROMPTS_VOLUME_ROLE
from infra.systems.serving_platform.system import ServingPlatform, ServingPlatformArgs, serving_names


def build(ctx: SystemContext) -> SystemResult:
    assert ctx.wheel is not None
    s, sp = ctx.settings, ctx.own
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
            schema=ctx.schemas["platform"],
            prompts_volume_path=ctx.volume_paths[PROMPTS_VOLUME_ROLE],
            wheel=ctx.wheel.built,
            wheel_source=ctx.wheel.source,
            host=s.workspace.host,
            profile=s.workspace.profile,
            tags={k: v for k, v in ctx.common.tags.items() if k != "git_commit"},  # jobs only: see infra.platform
        ),
        ctx.opts,
    )
    return SystemResult(outputs=platform.outputs())
