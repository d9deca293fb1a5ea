"""Seed 004, the dependency wheelhouse: its settings (`settings`), the fixtures of its format job (`fixtures`),
its jobs (`components`), and `notes(settings)`, what the preview tells about it (14.3's end of support)."""

from infra.systems.dependency_wheelhouse.settings import DependencyWheelhouseSettings, notes

__all__ = ["DependencyWheelhouseSettings", "notes"]
