"""What a system's `build(ctx)` gets from the shared parts, and what it gives back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from infra import naming
from infra.components.jobs import JobCommon
from infra.components.wheel import BuiltWheel
from infra.settings import StackSettings


@dataclass(frozen=True)
class Wheel:
    """The platform's wheel in the wheels volume."""

    path: pulumi.Output[str]
    version: pulumi.Input[str]
    source: Path
    """The wheel's source tree (for what a system reads from it, like the RLM telemetry columns)."""
    cache: Path
    """Where builds from it are cached (the wheel, seed 004's fixtures)."""
    built: BuiltWheel
    """The built file (what the serving app's code bundle carries)."""


@dataclass(frozen=True)
class SystemContext:
    """The shared parts one system builds on; its settings are `settings.system(key)`."""

    key: str
    settings: StackSettings
    project: str
    stack: str
    opts: pulumi.ResourceOptions
    """The explicit provider of the stack's workspace."""
    common: JobCommon
    catalog: pulumi.Output[str]
    schemas: Mapping[str, pulumi.Output[str]]
    """Schema key -> the schema's name (platform, and the system's own)."""
    volume_paths: Mapping[str, pulumi.Output[str]]
    """Volume role -> /Volumes/... path."""
    secret_scope: pulumi.Output[str] | None
    secrets: Mapping[str, pulumi.Input[str]]
    """The system's wanted secrets: config key -> value (a secret Output)."""
    wheel: Wheel | None
    extra_requirements: tuple[str, ...]
    """What the system's jobs install beside the wheel: the requirements of its extra (wheel/pyproject.toml), as
    serverless environment dependencies or PyPI libraries of a cluster, so no system gets another's."""

    @property
    def own(self) -> Any:
        """The system's own settings section."""
        return self.settings.system(self.key)

    def job_name(self, job_key: str) -> str:
        return naming.job_name(self.settings, self.project, job_key)


@dataclass(frozen=True)
class JobOutputs:
    id: pulumi.Output[str]
    url: pulumi.Output[str]


@dataclass
class SystemResult:
    """The jobs of a system's declaration, by job key (the program exports <key>_job_id / <key>_job_url), and
    any further stack outputs the system has."""

    jobs: dict[str, JobOutputs] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
