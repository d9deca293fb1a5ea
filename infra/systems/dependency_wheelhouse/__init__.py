"""Seed 004, the dependency wheelhouse: its settings (`settings`), the fixtures of its format job (`fixtures`),
its jobs (`components`), and `notes(settings)`, what the preview tells about it (14.3's end of support)."""

from typing import Any

from infra.settings.base import Section
from infra.systems.base import JobDecl, System, VolumeDecl
from infra.systems.dependency_wheelhouse.settings import DependencyWheelhouseSettings, notes


def _notes(_stack: Any, settings: Section) -> list[str]:
    assert isinstance(settings, DependencyWheelhouseSettings)
    return notes(settings)


SYSTEM = System(
    key="dependency_wheelhouse",
    seed="004",
    title="dependency wheelhouse jobs",
    settings=DependencyWheelhouseSettings,
    components="infra.systems.dependency_wheelhouse.components",
    jobs=(JobDecl("dependency_wheelhouse", "dependency-wheelhouse"),
          JobDecl("dependency_wheelhouse_formats", "dependency-wheelhouse-formats")),
    volumes=(
        VolumeDecl("dependency_wheelhouse", "runs_volume",
                   "Dependency wheelhouse: per-run directories runs/<job run id>/ (removed by each run's cleanup) "
                   "and the format job's fixtures (seed 004)"),
    ),
    wheel_extra="wheelhouse",
    notes=_notes,
)  # fmt: skip

__all__ = ["SYSTEM", "DependencyWheelhouseSettings", "notes"]
