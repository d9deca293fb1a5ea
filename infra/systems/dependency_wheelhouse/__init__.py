"""Seed 004: the dependency wheelhouse jobs."""

from infra.systems.base import System
from infra.systems.planned import PlannedSystemSettings


class DependencyWheelhouseSettings(PlannedSystemSettings):
    """Seed 004: the dependency-processor job with per-format test tasks."""


SYSTEM = System(
    key="dependency_wheelhouse",
    seed="004",
    title="Dependency wheelhouse",
    settings=DependencyWheelhouseSettings,
    components="infra.systems.dependency_wheelhouse.components",
    planned=True,
)
