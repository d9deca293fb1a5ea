"""Wires the components together: validated settings in, stack outputs out.

Every Databricks resource goes through one explicit provider bound to the stack's workspace, so a stack can
never deploy into another workspace by way of ambient credentials (Pulumi.yaml also disables the default
provider). Which systems exist, and what they need, is decided here from the settings; the components only
build what they are given.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi_databricks as db

from infra import adopt, naming
from infra import wheel as wheels
from infra.catalog import SchemaSpec, UnityCatalog, UnityCatalogArgs, VolumeSpec, merge_grants
from infra.constrained import PROJECT_ROOT
from infra.jobs.common import JobCommon
from infra.jobs.eval_agent import EvalAgentJob, EvalAgentJobArgs
from infra.jobs.health_monitor import HealthMonitor, HealthMonitorArgs
from infra.jobs.rlm import RlmJobs, RlmJobsArgs, telemetry_columns
from infra.policy import DATA_TYPES
from infra.secrets import ScopedSecrets, SecretScopeArgs
from infra.settings import LoadedSettings, StackSettings

# What the identity the jobs run as needs: read and write tables, models and volumes in the platform's schemas.
# Volumes themselves are created by Pulumi, so the jobs need no CREATE_VOLUME.
JOB_SCHEMA_PRIVILEGES = (
    "CREATE_MODEL", "CREATE_TABLE", "EXECUTE", "MODIFY", "READ_VOLUME", "SELECT", "USE_SCHEMA", "WRITE_VOLUME",
)  # fmt: skip
JOB_CATALOG_PRIVILEGES = ("USE_CATALOG",)
# Seed 002's agent schema also holds the prompt registry's prompts, which need these (Databricks' prompt
# registry requirements; not checkable here).
AGENT_SCHEMA_PRIVILEGES = (*JOB_SCHEMA_PRIVILEGES, "CREATE_FUNCTION", "MANAGE")

VOLUME_PURPOSES = {
    "wheels": "Built wheels of the platform, one file per content version (older ones stay for runs in flight)",
    "eval_sessions": "MLflow evaluation agent: session state, logs and reports (seed 000)",
    "rlm_artifacts": "RLM agent: generated artifacts and their result.json (seed 003)",
    "rlm_agent_code": "RLM agent: the agent's code (seed 003)",
    "health_monitor_runbooks": "Health-monitor agent: runbooks (seed 002)",
    "health_monitor_embeddings": "Health-monitor agent: embeddings (seed 002)",
    "health_monitor_artifacts": "Health-monitor agent: artifacts (seed 002)",
}


def build(
    loaded: LoadedSettings,
    secrets: Mapping[str, pulumi.Input[str]],
    project: str,
    stack: str,
    wheel_source: Path = wheels.SOURCE,
    wheel_cache: Path = wheels.CACHE,
) -> dict[str, Any]:
    """Create every resource of the stack; returns the stack outputs (ARCHITECTURE 3.3)."""
    s = loaded.settings
    adopt.register(adopt.targets(s))
    retain_data()
    provider = db.Provider("workspace", host=s.workspace.host, profile=s.workspace.profile)
    opts = pulumi.ResourceOptions(provider=provider)
    tags = naming.tags(s, project, stack)
    run_as = s.deployment.run_as

    schemas = [
        SchemaSpec(
            key="platform",
            name=s.schema_.name,
            comment=s.schema_.comment or f"Agent platform ({project}, {s.environment}): wheels, sessions, artifacts",
            volumes=_volumes(s.platform_volumes()),
            grants=merge_grants(s.schema_.grants, run_as, JOB_SCHEMA_PRIVILEGES),
            storage_root=s.schema_.storage_root,
        )
    ]
    agent_schema = s.health_monitor.schema_
    if s.health_monitor.enabled and agent_schema is not None:
        schemas.append(
            SchemaSpec(
                key="agent",
                name=agent_schema.name,
                comment=agent_schema.comment or "Health-monitor agent: inference logs, runbooks, model (seed 002)",
                volumes=_volumes(s.agent_volumes()),
                grants=merge_grants(agent_schema.grants, run_as, AGENT_SCHEMA_PRIVILEGES),
                storage_root=agent_schema.storage_root,
            )
        )
    uc = UnityCatalog(
        "unity-catalog",
        UnityCatalogArgs(
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
            schemas=tuple(schemas),
            tags=tags,
            protect=s.protect_data,
        ),
        opts=opts,
    )

    readers = tuple(p for p in (run_as, *s.deployment.secret_readers) if p is not None)
    scopes = {}
    for system, scope in s.secret_scopes().items():
        values = {spec.key: secrets[spec.config_key] for spec in loaded.wanted_secrets() if spec.system == system}
        scopes[system] = ScopedSecrets(
            naming.logical(system, "secrets"), SecretScopeArgs(scope=scope, secrets=values, readers=readers), opts
        )

    outputs: dict[str, Any] = {
        "catalog": uc.catalog_name,
        "schema": uc.schema_names["platform"],
        "volumes": uc.volume_paths,
        "secret_scope": {system: scoped.scope_name for system, scoped in scopes.items()},
    }
    if "agent" in uc.schema_names:
        outputs["agent_schema"] = uc.schema_names["agent"]
    if not (s.eval_agent.enabled or s.rlm.enabled or s.health_monitor.enabled):
        return outputs  # no job runs the wheel: nothing to build or upload

    artifact = wheels.WheelArtifact(
        "wheel",
        wheels.WheelArtifactArgs(wheels.build_wheel(wheel_source, wheel_cache), uc.volume_paths["wheels"]),
        opts,
    )
    outputs.update(wheel_path=artifact.path, wheel_version=artifact.version)
    common = JobCommon(
        tags=tags,
        run_as=run_as,
        notifications=s.deployment.notifications,
        permissions=s.deployment.job_permissions,
        development=not s.production,
    )
    if s.eval_agent.enabled:
        eval_agent = EvalAgentJob(
            "eval-agent",
            EvalAgentJobArgs(
                settings=s.eval_agent,
                common=common,
                job_name=naming.job_name(s, project, "eval_agent"),
                workspace_host=s.workspace.host,
                wheel_path=artifact.path,
                sessions_volume_path=uc.volume_paths["eval_sessions"],
                secret_scope=scopes["eval_agent"].scope_name,
            ),
            opts,
        )
        outputs.update(eval_agent_job_id=eval_agent.job_id, eval_agent_job_url=eval_agent.job_url)
    if s.rlm.enabled:
        rlm = RlmJobs(
            "rlm",
            RlmJobsArgs(
                settings=s.rlm,
                common=common,
                job_names={job: naming.job_name(s, project, job) for job in ("rlm_orchestrator", "rlm_executor")},
                catalog=uc.catalog_name,
                schema=uc.schemas["platform"].name,
                wheel_path=artifact.path,
                artifacts_volume_path=uc.volume_paths["rlm_artifacts"],
                agent_code_volume_path=uc.volume_paths["rlm_agent_code"],
                secret_scope=scopes["rlm"].scope_name,
                fallback_secrets=tuple(spec.key for spec in loaded.wanted_secrets() if spec.system == "rlm"),
                telemetry_columns=telemetry_columns(wheel_source),
                project_root=PROJECT_ROOT,
                protect=s.protect_data,
            ),
            opts,
        )
        outputs.update(
            rlm_orchestrator_job_id=rlm.orchestrator_id,
            rlm_orchestrator_job_url=rlm.orchestrator_url,
            rlm_executor_job_id=rlm.executor_id,
            rlm_executor_job_url=rlm.executor_url,
        )
    if s.health_monitor.enabled:
        hm, who = s.health_monitor, "-".join(filter(None, [s.environment, s.deployment.user]))
        health = HealthMonitor(
            "health-monitor",
            HealthMonitorArgs(
                settings=hm,
                common=common,
                job_names={job: naming.job_name(s, project, job) for job in ("agent_setup", "agent_deployment")},
                catalog=uc.catalog_name,
                schema=uc.schemas["agent"].name,
                wheel_path=artifact.path,
                experiment_path=hm.experiment_path or f"/Shared/{project}/{who}/health-monitor",
                promotion_target=hm.promotion_target or ("production" if s.production else "staging"),
                serving_endpoint=hm.serving_endpoint or f"health-monitor-agent-{who}",
                host=s.workspace.host,
                profile=s.workspace.profile,
                protect=s.protect_data,
            ),
            opts,
        )
        outputs.update(
            agent_setup_job_id=health.setup_job_id,
            agent_setup_job_url=health.setup_job_url,
            agent_deployment_job_id=health.deployment_job_id,
            agent_deployment_job_url=health.deployment_job_url,
            registered_model=health.registered_model,
        )
    return outputs


def prerequisites(settings: StackSettings) -> list[str]:
    """What must hold in the workspace before `pulumi up`, which this stack does not grant itself: on a
    referenced catalog, the privileges of the identity running `pulumi up` and of the jobs' identity."""
    if settings.catalog.create:
        return []
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
    return needed


def retain_data() -> None:
    """Make every resource of a type that holds data (infra.policy.DATA_TYPES, the list the policy checks too)
    retain_on_delete, whichever component creates it: removing it from the program, `pulumi destroy` or a
    replacement then leaves the data in the workspace. Call before creating any resource."""

    def transformation(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ not in DATA_TYPES or args.opts.retain_on_delete:
            return None
        retained = pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(retain_on_delete=True))
        return pulumi.ResourceTransformationResult(args.props, retained)

    pulumi.runtime.register_stack_transformation(transformation)


def _volumes(roles: Mapping[str, str]) -> dict[str, VolumeSpec]:
    return {role: VolumeSpec(name=name, comment=VOLUME_PURPOSES[role]) for role, name in roles.items()}
