"""Adopting what the seeds' DAB deployments already created: Pulumi imports the listed objects (the
`import_` resource option) instead of creating new ones, so job ids stay as they are, and with them everything
that points at them (the model's deployment-job link, bookmarks, other jobs' run_job_tasks).

One stack transformation adds `import_` (and `retain_on_delete`: the objects were not this stack's to delete)
to the resources the stack lists under `adopt`, found by their type and logical name, so no component needs to
know about adoption. Once `pulumi up` has imported them, they are
in the stack's state and the entries may stay (an import of a resource already in state is not repeated) or
be removed.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

from infra.naming import logical
from infra.settings import StackSettings
from infra.systems import BY_KEY, SYSTEMS


def targets(settings: StackSettings) -> dict[tuple[str, str], str]:
    """(short type, logical name) -> existing id, for every object the stack adopts; the logical names come from
    the systems' declarations (infra.systems), the same the components create them under."""
    a = settings.adopt
    declared = {job.key: job.logical for system in SYSTEMS for job in system.jobs}
    found = {("Job", declared[job]): job_id for job, job_id in a.jobs.items()}
    found |= {("Schema", key): name for key, name in a.schemas.items()}
    volumes = settings.volumes()
    found |= {("Volume", logical(volumes[role][0], role)): name for role, name in a.volumes.items()}
    found |= {("SecretScope", BY_KEY[system].secret_scope_logical): scope for system, scope in a.secret_scopes.items()}
    others = {decl.setting: decl for system in SYSTEMS for decl in system.adoptable}
    for setting, value in (("registered_model", a.registered_model),):
        if value:
            found[(others[setting].type, others[setting].logical)] = value
    return found


def register(adopted: Mapping[tuple[str, str], str]) -> None:
    """Import the adopted objects (call before creating any resource)."""
    if not adopted:
        return

    def transformation(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        existing = adopted.get((args.type_.rsplit(":", 1)[-1], args.name))
        if existing is None:
            return None
        # Retained too: the object existed before this stack, so destroying the stack must not delete it (an adopted
        # secret scope holds values this stack never managed).
        adopted_opts = pulumi.ResourceOptions(import_=existing, retain_on_delete=True)
        return pulumi.ResourceTransformationResult(args.props, pulumi.ResourceOptions.merge(args.opts, adopted_opts))

    pulumi.runtime.register_stack_transformation(transformation)
