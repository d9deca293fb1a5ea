"""What a system declares, once: everything else of the program derives from these declarations.

A declaration is plain data (no pulumi_databricks import, so the settings, `--help` and the config reference stay
fast); its `components` module, imported only when a stack is built, creates the resources.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from infra.settings.base import Section

if TYPE_CHECKING:
    from infra.systems.context import SystemContext, SystemResult


@dataclass(frozen=True)
class JobDecl:
    """A job of a system."""

    key: str
    """Its key: the stack outputs <key>_job_id / <key>_job_url, an `infra run` choice, an `adopt.jobs` key."""
    logical: str
    """The db.Job's Pulumi logical name (adoption finds the resource by it)."""
    compute: str | None = "compute"
    """The field of the system's settings holding the job's compute (`infra run` starts an existing cluster)."""
    extra: str | None = None
    """The wheel's extra this job installs, when not the system's (seed 001's optimiser beside its app)."""


@dataclass(frozen=True)
class VolumeDecl:
    """A Unity Catalog volume a system uses."""

    role: str
    """Its role: the key in the `volumes` output and in `adopt.volumes`."""
    setting: str
    """The field of the system's settings that holds the volume's name."""
    purpose: str
    """The volume's comment."""
    schema: str = "platform"
    """The schema it lives in: `platform` or the key of a schema the system declares."""


@dataclass(frozen=True)
class SchemaDecl:
    """A schema of a system's own (beside the platform schema)."""

    key: str
    """Its key: the `<key>_schema` stack output and `adopt.schemas` key."""
    setting: str
    """The field of the system's settings holding its SchemaSettings."""
    comment: str
    privileges: tuple[str, ...]
    """What the jobs' identity is granted there."""


@dataclass(frozen=True)
class SecretDecl:
    """One secret config key of a system and where its value goes (values only from `pulumi config set
    --secret`)."""

    config_key: str
    key: str
    """The key inside the system's secret scope."""
    required: bool
    description: str


@dataclass(frozen=True)
class AdoptableDecl:
    """An object besides jobs, schemas, volumes and scopes that `adopt` can import (seed 002's model)."""

    setting: str
    """Its key under `adopt`."""
    type: str
    """The resource's short type (RegisteredModel)."""
    logical: str
    name: Callable[[Section], str]
    """Its name inside the system's first schema, from the system's settings."""


@dataclass(frozen=True)
class System:
    """One system of ../shared/seeds, declared once."""

    key: str
    """Its settings key, like eval_agent."""
    seed: str
    title: str
    settings: type[Section]
    components: str
    """The module whose `build(ctx)` creates the system's resources."""
    jobs: tuple[JobDecl, ...] = ()
    volumes: tuple[VolumeDecl, ...] = ()
    schemas: tuple[SchemaDecl, ...] = ()
    secrets: tuple[SecretDecl, ...] = ()
    adoptable: tuple[AdoptableDecl, ...] = ()
    wheel_extra: str | None = None
    """The wheel's extra its jobs install (wheel/pyproject.toml); None: the system runs no wheel."""
    notes: Callable[[Any, Section], list[str]] | None = None
    """Preview notes for a stack that enables it (stack settings, its settings) -> lines."""
    prerequisites: Callable[[Any, Section], list[str]] | None = None
    """What must hold in the workspace that the stack does not grant itself (stack settings, its settings)."""

    @property
    def secret_scope_logical(self) -> str:
        return f"{self.key.replace('_', '-')}-secrets"

    def build(self, ctx: SystemContext) -> SystemResult:
        module = importlib.import_module(self.components)
        result: SystemResult = module.build(ctx)
        return result
