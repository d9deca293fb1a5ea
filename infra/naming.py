"""Physical names, tags and development-mode rules, as pure functions of the settings.

Like DABs `mode: development`, development stacks prefix job names with '[dev <user>] ', tag everything
dev=<user>, and pause schedules and triggers. Unlike DABs, Unity Catalog names are never prefixed:
each stack names its own catalog and schemas in its stack file.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from typing import Literal

from infra.settings import StackSettings

MANAGED_BY = "pulumi"


def job_name(settings: StackSettings, project: str, job_key: str) -> str:
    """'<environment>-<project>-<job>' (physical names start with the environment), prefixed
    '[dev <user>] ' in development mode when a user is configured."""
    base = f"{settings.environment}-{project}-{job_key.replace('_', '-')}"
    user = settings.deployment.user
    if not settings.production and user:
        return f"[dev {user}] {base}"
    return base


def tags(settings: StackSettings, project: str, stack: str) -> dict[str, str]:
    """The tags every taggable resource carries: project, environment, stack, managed_by (and dev in
    development mode), plus the stack's extra tags (which may not override these)."""
    base = {
        "project": project,
        "environment": settings.environment,
        "stack": stack,
        "managed_by": MANAGED_BY,
    }
    if not settings.production:
        base["dev"] = settings.deployment.user or "true"
    return {**settings.deployment.tags, **base}


def pause_status(production: bool, paused: bool = False) -> Literal["PAUSED", "UNPAUSED"]:
    """Schedules and triggers: always paused in development mode; in production as configured."""
    return "PAUSED" if paused or not production else "UNPAUSED"


def logical(*parts: str) -> str:
    """A kebab-case Pulumi logical name from parts ('health_monitor', 'runbooks' -> 'health-monitor-runbooks')."""
    return "-".join(p.replace("_", "-").lower() for p in parts if p)


def slug(principal: str) -> str:
    """A stable logical-name fragment for a principal. Names that are already kebab-case (groups like
    data-engineers, service principal UUIDs) stay as they are; others get a short hash so that two principals
    never share a fragment ('a@b.com' -> 'a-at-b-com-<hash>')."""
    text = principal.lower().replace("@", "-at-")
    clean = "-".join(filter(None, "".join(c if c.isalnum() else "-" for c in text).split("-")))
    if clean == principal:
        return clean
    return f"{clean}-{hashlib.sha256(principal.encode()).hexdigest()[:6]}"


def who(settings: StackSettings) -> str:
    """'<environment>[-<user>]': what per-stack defaults (experiment path, endpoint names) end with."""
    return "-".join(filter(None, [settings.environment, settings.deployment.user]))


def experiment_path(settings: StackSettings, project: str, system: str) -> str:
    """A system's MLflow experiment: /Shared/<project>/<environment>[-<user>]/<system>."""
    return f"/Shared/{project}/{who(settings)}/{system}"


def serving_endpoint(settings: StackSettings, base: str) -> str:
    """A serving endpoint a stack creates: <base>-<environment>[-<user>] (endpoint names are workspace-wide)."""
    return f"{base}-{who(settings)}"


def promotion_target(settings: StackSettings) -> Literal["staging", "production"]:
    """The alias a gate promotes to: production in production mode, staging otherwise."""
    return "production" if settings.production else "staging"


def experiment_folder(path: str) -> str | None:
    """The folder to create for an experiment at `path`: None when it is one that always exists (/Shared,
    a user's home)."""
    folder = posixpath.dirname(path)
    if folder in ("/", "/Shared") or re.fullmatch(r"/Users/[^/]+", folder):
        return None
    return folder
