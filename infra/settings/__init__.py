"""The stack configuration, parsed once into frozen pydantic models; the only place that reads Pulumi config.

  base       Section (frozen, unknown keys refused) and SettingsError
  types      the constrained value types, one line each; cron: Quartz cron expressions
  sections   the platform-wide sections (workspace, deployment, catalog, schema, wheel, compute, schedule, adopt)
  stack      the stack model: those sections plus one per system of infra.systems.SYSTEMS
  loader     config -> settings; the secrets (named by the systems' declarations, values never in pydantic)
  messages   pydantic's errors as one line per problem, naming the stack file and the key

The systems' own models live with their systems (infra/systems/<system>/settings.py).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.settings.base import Section, SettingsError
    from infra.settings.loader import (
        SECRET_KEYS,
        SECRETS,
        LoadedSettings,
        SecretSpec,
        SecretState,
        load_settings,
        parse_settings,
        secret_values,
    )
    from infra.settings.sections import (
        AdoptSettings,
        CatalogSettings,
        Compute,
        DeploymentSettings,
        ExistingClusterCompute,
        JobClusterCompute,
        MlflowServerlessCompute,
        NotificationSettings,
        ScheduleSettings,
        SchemaSettings,
        ServerlessCompute,
        WheelSettings,
        WorkspaceSettings,
    )
    from infra.settings.stack import PlatformSettings, StackSettings

# Resolved on first use (PEP 562), so that a system's settings module can import infra.settings.base while the
# stack model, which composes the systems' models, is still being built.
_HOME = {
    "AdoptSettings": "infra.settings.sections",
    "CatalogSettings": "infra.settings.sections",
    "Compute": "infra.settings.sections",
    "DeploymentSettings": "infra.settings.sections",
    "ExistingClusterCompute": "infra.settings.sections",
    "JobClusterCompute": "infra.settings.sections",
    "LoadedSettings": "infra.settings.loader",
    "MlflowServerlessCompute": "infra.settings.sections",
    "NotificationSettings": "infra.settings.sections",
    "PlatformSettings": "infra.settings.stack",
    "SECRETS": "infra.settings.loader",
    "SECRET_KEYS": "infra.settings.loader",
    "ScheduleSettings": "infra.settings.sections",
    "SchemaSettings": "infra.settings.sections",
    "SecretSpec": "infra.settings.loader",
    "SecretState": "infra.settings.loader",
    "Section": "infra.settings.base",
    "ServerlessCompute": "infra.settings.sections",
    "SettingsError": "infra.settings.base",
    "StackSettings": "infra.settings.stack",
    "WheelSettings": "infra.settings.sections",
    "WorkspaceSettings": "infra.settings.sections",
    "load_settings": "infra.settings.loader",
    "parse_settings": "infra.settings.loader",
    "secret_values": "infra.settings.loader",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOME[name]), name)


__all__ = [
    "SECRETS",
    "SECRET_KEYS",
    "AdoptSettings",
    "CatalogSettings",
    "Compute",
    "DeploymentSettings",
    "ExistingClusterCompute",
    "JobClusterCompute",
    "LoadedSettings",
    "MlflowServerlessCompute",
    "NotificationSettings",
    "PlatformSettings",
    "ScheduleSettings",
    "SchemaSettings",
    "SecretSpec",
    "SecretState",
    "Section",
    "ServerlessCompute",
    "SettingsError",
    "StackSettings",
    "WheelSettings",
    "WorkspaceSettings",
    "load_settings",
    "parse_settings",
    "secret_values",
]
