"""Wires the program together: validated settings in, stack outputs out.

First the shared parts (the explicit provider, the catalog with every enabled system's schemas and volumes,
the secret scopes, the wheel), then each enabled system of infra.systems.SYSTEMS builds its own resources from
them. Every Databricks resource goes through one explicit provider bound to the stack's workspace, so a stack
can never deploy into another workspace by way of ambient credentials (Pulumi.yaml also disables the default
provider).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi_databricks as db

from infra import PROJECT_ROOT, naming
from infra.components import adopt
from infra.components import wheel as wheels
from infra.components.catalog import SchemaSpec, UnityCatalog, UnityCatalogArgs, VolumeSpec, merge_grants
from infra.components.jobs import JobCommon
from infra.components.secrets import ScopedSecrets, SecretScopeArgs
from infra.settings import LoadedSettings, StackSettings
from infra.systems import BY_KEY
from infra.systems.context import SystemContext, Wheel
from policy.rules import DATA_TYPES

# What the identity the jobs run as needs: read and write tables, models and volumes in the platform's schemas.
# Volumes themselves are created by Pulumi, so the jobs need no CREATE_VOLUME.
JOB_SCHEMA_PRIVILEGES = (
    "CREATE_MODEL", "CREATE_TABLE", "EXECUTE", "MODIFY", "READ_VOLUME", "SELECT", "USE_SCHEMA", "WRITE_VOLUME",
)  # fmt: skip
JOB_CATALOG_PRIVILEGES = ("USE_CATALOG",)
WHEELS_PURPOSE = "Built wheels of the platform, one file per content version (older ones stay for runs in flight)"


def build(
    loaded: LoadedSettings,
    secrets: Mapping[str, pulumi.Input[str]],
    project: str,
    stack: str,
    wheel_source: Path = wheels.SOURCE,
    wheel_cache: Path = wheels.CACHE,
    git_commit: str | None = None,
) -> dict[str, Any]:
    """Create every resource of the stack; returns the stack outputs (ARCHITECTURE 3.3)."""
    s = loaded.settings
    adopt.register(adopt.targets(s))
    retain_data()
    provider = db.Provider("workspace", host=s.workspace.host, profile=s.workspace.profile)
    opts = pulumi.ResourceOptions(provider=provider)
    tags = naming.tags(s, project, stack)
    run_as = s.deployment.run_as
    enabled = s.enabled_systems()

    uc = UnityCatalog("unity-catalog", _catalog_args(s, project, tags), opts=opts)
    readers = tuple(p for p in (run_as, *s.deployment.secret_readers) if p is not None)
    wanted = loaded.wanted_secrets()
    scopes = {
        system: ScopedSecrets(
            BY_KEY[system].secret_scope_logical,
            SecretScopeArgs(
                scope=scope,
                secrets={spec.key: secrets[spec.config_key] for spec in wanted if spec.system == system},
                readers=readers,
            ),
            opts,
        )
        for system, scope in s.secret_scopes().items()
    }
    outputs: dict[str, Any] = {
        "catalog": uc.catalog_name,
        "schema": uc.schema_names["platform"],
        "volumes": uc.volume_paths,
        "secret_scope": {system: scoped.scope_name for system, scoped in scopes.items()},
    }
    outputs |= {f"{key}_schema": name for key, name in uc.schema_names.items() if key != "platform"}

    wheel = None
    if s.needs_wheel():
        built = wheels.build_wheel(wheel_source, wheel_cache)
        artifact = wheels.WheelArtifact("wheel", wheels.WheelArtifactArgs(built, uc.volume_paths["wheels"]), opts)
        wheel = Wheel(artifact.path, artifact.version, wheel_source, wheel_cache, built)
        outputs.update(wheel_path=artifact.path, wheel_version=artifact.version)
    common = JobCommon(
        tags={**tags, **({"git_commit": git_commit} if git_commit else {})},
        run_as=run_as,
        notifications=s.deployment.notifications,
        permissions=s.deployment.job_permissions,
        development=not s.production,
    )
    for system in enabled:
        ctx = SystemContext(
            key=system.key,
            settings=s,
            project=project,
            stack=stack,
            opts=opts,
            common=common,
            catalog=uc.catalog_name,
            schemas={key: uc.schemas[key].name for key in uc.schemas},
            volume_paths=uc.volume_paths,
            secret_scope=scopes[system.key].scope_name if system.key in scopes else None,
            secrets={spec.config_key: secrets[spec.config_key] for spec in wanted if spec.system == system.key},
            wheel=wheel,
            extra_requirements=(
                wheels.extra_requirements(wheel_source, system.wheel_extra) if system.wheel_extra else ()
            ),
        )
        result = system.build(ctx)
        undeclared = sorted(set(result.jobs) - {job.key for job in system.jobs})
        if undeclared:  # a system may leave a declared job out (switched off), never add one
            raise RuntimeError(f"{system.key} built jobs its declaration does not name: {undeclared}")
        for key, job in result.jobs.items():
            outputs[f"{key}_job_id"], outputs[f"{key}_job_url"] = job.id, job.url
        outputs |= result.outputs
    return outputs


def _catalog_args(s: StackSettings, project: str, tags: Mapping[str, str]) -> UnityCatalogArgs:
    run_as = s.deployment.run_as
    volumes: dict[str, dict[str, VolumeSpec]] = {}
    purposes = {decl.role: decl.purpose for system in s.enabled_systems() for decl in system.volumes}
    for role, (where, name, _) in s.volumes().items():
        volumes.setdefault(where, {})[role] = VolumeSpec(name=name, comment=purposes.get(role, WHEELS_PURPOSE))
    comments = {"platform": f"Agent platform ({project}, {s.environment}): wheels, sessions, artifacts"}
    privileges: dict[str, tuple[str, ...]] = {"platform": JOB_SCHEMA_PRIVILEGES}
    for system in s.enabled_systems():
        for decl in system.schemas:
            comments[decl.key], privileges[decl.key] = decl.comment, decl.privileges
    schemas = tuple(
        SchemaSpec(
            key=key,
            name=schema.name,
            comment=schema.comment or comments[key],
            volumes=volumes.get(key, {}),
            grants=merge_grants(schema.grants, run_as, privileges[key]),
            storage_root=schema.storage_root,
        )
        for key, (schema, _) in s.schemas().items()
    )
    return UnityCatalogArgs(
        catalog=s.catalog,
        # A created catalog is the stack's: it owns all access, the jobs' identity included. On a referenced
        # (shared) catalog only the listed principals are managed: granting the jobs' identity there would
        # revoke whatever else it holds on the catalog (Grant is authoritative per principal), and
        # `pulumi destroy` would revoke all of it. What it must hold there is a prerequisite instead.
        catalog_grants=(
            merge_grants(s.catalog.grants, run_as, JOB_CATALOG_PRIVILEGES)
            if s.catalog.create
            else merge_grants(s.catalog.grants, None, ())
        ),
        schemas=schemas,
        tags=tags,
        protect=s.protect_data,
    )


def git_commit(root: Path = PROJECT_ROOT) -> str | None:
    """The commit being deployed (tagged on every job, as mlops-stacks does), or None outside a git checkout.
    A checkout with uncommitted changes gets `-dirty` appended: the tag never claims code that is not there."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head[:12]}{'-dirty' if dirty else ''}" if head else None


def prerequisites(settings: StackSettings) -> list[str]:
    """What must hold in the workspace before `pulumi up`, which this stack does not grant itself: on a
    referenced catalog, the privileges of the identity running `pulumi up` and of the jobs' identity."""
    systems = [
        line
        for system in settings.enabled_systems()
        if system.prerequisites is not None
        for line in system.prerequisites(settings, settings.system(system.key))
    ]
    if settings.catalog.create:
        return systems
    catalog, run_as = settings.catalog.name, settings.deployment.run_as
    needed = [
        f"the identity running `pulumi up` holds USE_CATALOG and CREATE_SCHEMA on the catalog {catalog} (the stack "
        "creates its schemas there)"
    ]
    if run_as is not None and run_as not in settings.catalog.grants:
        needed.append(
            f"the jobs' identity {run_as} (deployment.run_as) holds {', '.join(JOB_CATALOG_PRIVILEGES)} on the "
            f"catalog {catalog}: the stack does not grant it on a catalog it does not own (that would revoke its "
            f"other privileges there); grant it once, or list it under catalog.grants to have it managed"
        )
    return needed + systems


def notes(settings: StackSettings) -> list[str]:
    """The enabled systems' preview notes (a runtime near its end of support, ...)."""
    return [
        line
        for system in settings.enabled_systems()
        if system.notes is not None
        for line in system.notes(settings, settings.system(system.key))
    ]


def retain_data() -> None:
    """Make every resource of a type that holds data (policy.rules.DATA_TYPES, the list the policy checks too)
    retain_on_delete, whichever component creates it: removing it from the program, `pulumi destroy` or a
    replacement then leaves the data in the workspace. Call before creating any resource."""

    def transformation(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ not in DATA_TYPES or args.opts.retain_on_delete:
            return None
        retained = pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(retain_on_delete=True))
        return pulumi.ResourceTransformationResult(args.props, retained)

    pulumi.runtime.register_stack_transformation(transformation)
