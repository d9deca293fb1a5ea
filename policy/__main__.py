"""Pulumi policy pack: the platform's rules during `pulumi preview --policy-pack policy` (and `pulumi up`).

One mandatory ResourceValidationPolicy per rule of policy/rules.py, each calling the same `check` as
`python -m infra preview`, so the offline checks and the engine's checks cannot drift apart. The engine hands
each policy a resource's type token and its inputs (camelCase wire names, secrets unwrapped, values not known
yet during a preview raising UnknownValueError, which the SDK reports as "can't run during preview").

What `check` needs beyond the inputs, and where the pack gets it:
- production: the policy config `production` (true/false, from `--policy-pack-config`), else the stack's own
  config, which the Pulumi CLI passes to policy packs (PULUMI_CONFIG): deployment.mode, else environment ==
  prod, the settings model's rule (policy.rules.stack_facts); the stack name stands in for a missing
  environment.
- the wheels volume: the policy config `wheels_volume` (`/Volumes/<catalog>/<schema>/<volume>`), else
  catalog.name, schema.name and wheel.volume from the stack config; if neither is there, the rule reports
  itself not applicable.
- retain_on_delete: the engine does not pass it to policy packs (its resource options carry `protect`, not
  retain_on_delete). A protected schema or volume passes (Pulumi refuses to delete it at all, e.g. prod);
  for any other the rule reports itself not applicable, and `python -m infra preview --strict`, which sees
  the option, is the check.

The rules are policy/rules.py beside this file (standard library only), which the program's offline preview
imports too (`policy.rules`): one module, so the offline checks and the pack cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi
from pulumi.runtime.config import get_config
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

try:  # the repository root on sys.path: tests, `python -m infra preview`
    from policy import rules
except ImportError:  # run by the Pulumi CLI, which puts the pack's own directory on sys.path
    import rules  # type: ignore[no-redef,import-not-found]

PACK_NAME = "agent-platform-policies"
STACK_KEYS = ("environment", "deployment", "catalog", "schema", "wheel")

_PRODUCTION = "Whether the stack is production (default: from the stack config: deployment.mode, else environment)."
_WHEELS_VOLUME = "The wheels volume, /Volumes/<catalog>/<schema>/<volume> (default: from the stack config)."
CONFIG: dict[str, PolicyConfigSchema] = {
    rules.RUN_AS: PolicyConfigSchema({"production": {"type": "boolean", "description": _PRODUCTION}}),
    rules.PROTECTED: PolicyConfigSchema({"production": {"type": "boolean", "description": _PRODUCTION}}),
    rules.WHEELS: PolicyConfigSchema({"wheels_volume": {"type": "string", "description": _WHEELS_VOLUME}}),
}

Validation = Callable[[ResourceValidationArgs, ReportViolation], None]


def stack_config() -> dict[str, Any]:
    """The stack config keys the rules read, as the Pulumi CLI passes them (JSON text for objects); empty when
    the pack runs without a stack."""
    project = pulumi.get_project()
    values = {key: get_config(f"{project}:{key}") for key in STACK_KEYS}
    return {key: value for key, value in values.items() if value is not None}


def _production(args: ResourceValidationArgs) -> bool:
    explicit = args.get_config().get("production")
    if isinstance(explicit, bool):
        return explicit
    return rules.stack_facts(stack_config(), pulumi.get_stack()).production


def _wheels_volume(args: ResourceValidationArgs) -> str | None:
    explicit = args.get_config().get("wheels_volume")
    if isinstance(explicit, str) and explicit:
        return explicit.rstrip("/")
    return rules.stack_facts(stack_config(), pulumi.get_stack()).wheels_volume


def _retain_on_delete(args: ResourceValidationArgs) -> bool | None:
    known = getattr(args.opts, "retain_on_delete", None)  # not in pulumi_policy 1.21's options; maybe later
    if isinstance(known, bool):
        return known
    return True if args.opts.protect else None


def validator(rule_id: str) -> Validation:
    """The validate function of one rule: policy.rules.check for that rule only, each finding reported."""
    rule = rules.RULES[rule_id]

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in rule.resource_types:
            return
        production = _production(args) if rule_id in (rules.RUN_AS, rules.PROTECTED) else False
        wheels_volume = _wheels_volume(args) if rule_id == rules.WHEELS else None
        retain = _retain_on_delete(args) if rule_id == rules.RETAINED else None
        if rule_id == rules.WHEELS and wheels_volume is None:
            args.not_applicable("the wheels volume is unknown: set the policy config wheels_volume, or run the pack "
                                "with the stack's config (catalog.name, schema.name)")  # fmt: skip
        if rule_id == rules.RETAINED and retain is None:
            args.not_applicable("the engine does not pass retain_on_delete to policy packs and the resource is not "
                                "protected; `python -m infra preview --strict` checks retain_on_delete")  # fmt: skip
        props: Mapping[str, Any] = args.props
        for violation in rules.check(
            args.resource_type,
            args.name,
            props,
            retain_on_delete=retain,
            protect=bool(args.opts.protect),
            production=production,
            wheels_volume=wheels_volume,
            rules=(rule_id,),
        ):
            report_violation(violation.message, None)

    return validate


POLICIES = [
    ResourceValidationPolicy(
        name=rule.id,
        description=rule.description,
        validate=validator(rule.id),
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=CONFIG.get(rule.id),
    )
    for rule in rules.RULES.values()
]


if __name__ == "__main__":  # run by the Pulumi CLI (python -m pulumi.policy <engine> policy); serves until stopped
    PolicyPack(name=PACK_NAME, policies=[*POLICIES], enforcement_level=EnforcementLevel.MANDATORY)
