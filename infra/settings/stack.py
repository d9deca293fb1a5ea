"""The stack model: the platform-wide sections, then one section per system of infra.systems.SYSTEMS (its
own settings model, composed here so that no list of systems is repeated), and the rules that span them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, create_model, model_validator

from infra.settings.base import Section, fail
from infra.settings.sections import (
    AdoptSettings,
    CatalogSettings,
    DeploymentSettings,
    SchemaSettings,
    WheelSettings,
    WorkspaceSettings,
)
from infra.settings.types import EnvironmentName, principal_kind
from infra.systems import SYSTEMS
from infra.systems.base import System


class PlatformSettings(Section):
    """Everything one stack (one environment) deploys."""

    environment: EnvironmentName = Field(description="Environment name, like dev or prod; starts physical names.")
    workspace: WorkspaceSettings = Field(description="The workspace this stack deploys to.")
    deployment: DeploymentSettings = Field(
        DeploymentSettings(), description="Development or production behaviour, identities, tags, notifications."
    )
    catalog: CatalogSettings = Field(description="The Unity Catalog catalog.")
    schema_: SchemaSettings = Field(
        alias="schema",
        description="The platform schema: wheels, eval-agent sessions, RLM volumes and telemetry live here.",
    )
    wheel: WheelSettings = Field(WheelSettings(), description="Where built wheels are kept.")
    adopt: AdoptSettings = Field(
        AdoptSettings(), description="Existing objects (from the seeds' DAB deployments) to import, not create."
    )

    @property
    def production(self) -> bool:
        """Production behaviour: no name prefixes, schedules as configured, run_as required, data protected."""
        if self.deployment.mode is not None:
            return self.deployment.mode == "production"
        return self.environment == "prod"

    @property
    def protect_data(self) -> bool:
        explicit = self.deployment.protect_data
        return self.production if explicit is None else explicit

    # --- What the enabled systems need, derived from their declarations

    def system(self, key: str) -> Any:
        """The settings section of the system `key` (its own model, infra/systems/<key>/settings.py)."""
        return getattr(self, key)

    def enabled_systems(self) -> tuple[System, ...]:
        return tuple(s for s in SYSTEMS if self.system(s.key).enabled)

    def enabled_jobs(self) -> tuple[str, ...]:
        """Job keys (as in the stack outputs <job>_job_id) of the enabled systems."""
        return tuple(job.key for s in self.enabled_systems() for job in s.jobs)

    def needs_wheel(self) -> bool:
        return any(s.wheel_extra is not None for s in self.enabled_systems())

    def schemas(self) -> dict[str, tuple[SchemaSettings, str]]:
        """Schema key -> (its settings, the setting's key), the platform schema first."""
        found = {"platform": (self.schema_, "schema")}
        for s in self.enabled_systems():
            for decl in s.schemas:
                schema = getattr(self.system(s.key), decl.setting)
                if schema is not None:
                    found[decl.key] = (schema, f"{s.key}.{decl.setting.rstrip('_')}")
        return found

    def volumes(self) -> dict[str, tuple[str, str, str]]:
        """Volume role -> (schema key, UC name, the setting's key), for the wheels and the enabled systems."""
        found = {"wheels": ("platform", self.wheel.volume, "wheel.volume")}
        for s in self.enabled_systems():
            for decl in s.volumes:
                found[decl.role] = (decl.schema, getattr(self.system(s.key), decl.setting), f"{s.key}.{decl.setting}")
        return found

    def secret_scopes(self) -> dict[str, str]:
        """System key -> secret scope name, for the enabled systems that hold secrets.

        Scope names are workspace-wide, so in development mode a scope the stack does not name itself gets the
        environment (and user) appended, like job names get their prefix: `dev` and `dev-alice` in one
        workspace never share a scope. Production stacks use the seeds' names unchanged."""
        suffix = "" if self.production else "-".join(["", self.environment, *filter(None, [self.deployment.user])])
        scopes = {}
        for s in self.enabled_systems():
            if s.secrets:
                cfg = self.system(s.key)
                explicit = "secret_scope" in cfg.model_fields_set
                scopes[s.key] = cfg.secret_scope if explicit else f"{cfg.secret_scope}{suffix}"
        return scopes

    def full_names(self) -> dict[str, dict[str, str]]:
        """What adoption can import, by kind: schema key / volume role / system / setting -> its full name."""
        catalog = self.catalog.name
        schemas = {key: f"{catalog}.{schema.name}" for key, (schema, _) in self.schemas().items()}
        volumes = {role: f"{schemas[where]}.{name}" for role, (where, name, _) in self.volumes().items()}
        others: dict[str, str] = {}
        for s in self.enabled_systems():
            home = schemas[s.schemas[0].key] if s.schemas and s.schemas[0].key in schemas else schemas["platform"]
            others |= {decl.setting: f"{home}.{decl.name(self.system(s.key))}" for decl in s.adoptable}
        return {"schema": schemas, "volume": volumes, "secret scope": self.secret_scopes(), "other": others}

    @model_validator(mode="after")
    def _cross_field_rules(self) -> PlatformSettings:
        d = self.deployment
        if self.production and d.run_as is None:
            fail("deployment.run_as", None, "is required in production mode; allowed: a service principal's "
                 "application id (jobs then never run as a person)")  # fmt: skip
        if self.production and d.run_as is not None and principal_kind(d.run_as) != "service_principal":
            fail("deployment.run_as", d.run_as, "must be a service principal in production mode; allowed: a "
                 "service principal's application id (a UUID)")  # fmt: skip
        if self.production and d.user is not None:
            fail("deployment.user", d.user, "only applies in development mode; allowed: remove it, or set "
                 "deployment.mode: development")  # fmt: skip
        for s in self.enabled_systems():
            for decl in s.schemas:
                if getattr(self.system(s.key), decl.setting) is None:
                    fail(f"{s.key}.{decl.setting.rstrip('_')}", None, f"is required when {s.key} is enabled; "
                         f"allowed: {{name: <schema>}}, or {s.key}.enabled: false")  # fmt: skip
        schema_names: dict[str, str] = {}
        for _key, (schema, setting) in self.schemas().items():
            if schema.name in schema_names:
                fail(f"{setting}.name", schema.name, f"is the {schema_names[schema.name]} schema's name too; "
                     "allowed: a different schema name (each schema is separate)")  # fmt: skip
            schema_names[schema.name] = setting
        seen: dict[tuple[str, str], str] = {}
        for where, name, setting in self.volumes().values():
            if (where, name) in seen:
                fail(setting, name, f"is also the name of {seen[(where, name)]}; allowed: a distinct volume "
                     "name per role in one schema")  # fmt: skip
            seen[(where, name)] = setting
        scopes: dict[str, str] = {}
        for system, scope in self.secret_scopes().items():
            if scope in scopes:
                fail(f"{system}.secret_scope", scope, f"is also {scopes[scope]}.secret_scope; allowed: a "
                     "distinct scope per system")  # fmt: skip
            scopes[scope] = system
        self._adoptable()
        return self

    def _adoptable(self) -> None:
        """Every adopted object is one this stack manages, under the name it gives it."""
        a, names = self.adopt, self.full_names()
        for job in a.jobs:
            if job not in self.enabled_jobs():
                fail(f"adopt.jobs.{job}", a.jobs[job], "is not a job of a system this stack deploys; allowed: "
                     f"{', '.join(self.enabled_jobs()) or 'none (every system is off)'}")  # fmt: skip
        others = {k: v for k, v in (("registered_model", a.registered_model),) if v}
        checks = [
            *((f"adopt.schemas.{k}", v, names["schema"], k, "schema") for k, v in a.schemas.items()),
            *((f"adopt.volumes.{k}", v, names["volume"], k, "volume") for k, v in a.volumes.items()),
            *((f"adopt.secret_scopes.{k}", v, names["secret scope"], k, "secret scope")
              for k, v in a.secret_scopes.items()),
            *((f"adopt.{k}", v, names["other"], k, k.replace("_", " ")) for k, v in others.items()),
        ]  # fmt: skip
        for key, given, managed, which, what in checks:
            if which not in managed:
                allowed = ", ".join(sorted(managed)) if what != "registered model" else "remove it"
                fail(key, given, f"is not a {what} this stack manages (its system is off, or no such "
                     f"{'role' if what == 'volume' else 'key'}); allowed: {allowed or 'remove it'}")  # fmt: skip
            elif given != managed[which]:
                fail(key, given, f"is not the {what} this stack manages; allowed: {managed[which]!r} (set the "
                     "stack's names to those of the existing objects, so that the import matches)")  # fmt: skip


def _system_fields() -> dict[str, Any]:
    return {
        s.key: (
            s.settings,
            Field(s.settings(), description=f"Seed {s.seed}: {s.title}."),
        )
        for s in SYSTEMS
    }


if TYPE_CHECKING:
    StackSettings = PlatformSettings
else:
    StackSettings = create_model("StackSettings", __base__=PlatformSettings, **_system_fields())
    StackSettings.__doc__ = PlatformSettings.__doc__
