"""The program's systems, one package each, declared once in SYSTEMS (infra.systems.base says what a
declaration holds). Adding a system: one package with its settings, declaration and components, and one line
here."""

from infra.systems import dependency_wheelhouse, eval_agent, health_monitor, rlm, serving_platform
from infra.systems.base import System

SYSTEMS: tuple[System, ...] = (
    eval_agent.SYSTEM,
    rlm.SYSTEM,
    health_monitor.SYSTEM,
    serving_platform.SYSTEM,
    dependency_wheelhouse.SYSTEM,
)
BY_KEY = {system.key: system for system in SYSTEMS}
