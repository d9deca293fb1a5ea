"""Seed 001: the agent serving platform (App, serving endpoint, Lakebase, telemetry, nightly optimisation)."""

from infra.systems.base import System
from infra.systems.planned import PlannedSystemSettings


class ServingPlatformSettings(PlannedSystemSettings):
    """Seed 001: the agent serving platform (App, serving endpoint, Lakebase, nightly optimisation)."""


SYSTEM = System(
    key="serving_platform",
    seed="001",
    title="Agent serving platform",
    settings=ServingPlatformSettings,
    components="infra.systems.serving_platform.components",
    planned=True,
)
