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

# Job key (as in the stack outputs) -> the Job's logical name.
JOB_NAMES = {
    "eval_agent": "eval-agent",
    "rlm_orchestrator": "rlm-orchestrator",
    "rlm_executor": "rlm-executor",
    "agent_setup": "health-monitor-setup",
    "agent_deployment": "health-monitor-deployment",
}
SCOPE_NAMES = {"eval_agent": "eval-agent-secrets", "rlm": "rlm-secrets"}


def targets(settings: StackSettings) -> dict[tuple[str, str], str]:
    """(short type, logical name) -> existing id, for every object the stack adopts."""
    a = settings.adopt
    found = {("Job", JOB_NAMES[job]): job_id for job, job_id in a.jobs.items()}
    found |= {("Schema", key): name for key, name in a.schemas.items()}
    agent_roles = settings.agent_volumes()
    found |= {
        ("Volume", logical("agent" if role in agent_roles else "platform", role)): name
        for role, name in a.volumes.items()
    }
    found |= {("SecretScope", SCOPE_NAMES[system]): scope for system, scope in a.secret_scopes.items()}
    if a.registered_model:
        found[("RegisteredModel", "health-monitor-model")] = a.registered_model
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
