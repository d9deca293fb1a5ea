"""Naming: physical names from project and environment, DABs-like development mode, tags merged in one place."""

from __future__ import annotations

from infra import naming
from tests.conftest import PROJECT, parse

SP = "6f1c2a4e-0b7d-4c1e-9a53-2f8e7d6c5b4a"


def test_job_names_start_with_the_environment_and_carry_the_dev_prefix() -> None:
    """Like DABs development mode, a configured user prefixes job names so developers don't collide."""
    dev = parse().settings
    alice = parse({"deployment": {"user": "alice"}}).settings
    prod = parse({"environment": "prod", "deployment": {"run_as": SP}}).settings
    assert naming.job_name(dev, PROJECT, "eval_agent") == "dev-agent-platform-eval-agent"
    assert naming.job_name(alice, PROJECT, "eval_agent") == "[dev alice] dev-agent-platform-eval-agent"
    assert naming.job_name(prod, PROJECT, "rlm_executor") == "prod-agent-platform-rlm-executor"


def test_tags_always_carry_project_environment_stack_and_managed_by() -> None:
    """Every taggable resource is traceable to its stack; extra tags cannot override the fixed ones."""
    dev = parse({"deployment": {"user": "alice", "tags": {"cost_center": "ml-42"}}}).settings
    prod = parse({"environment": "prod", "deployment": {"run_as": SP}}).settings
    assert naming.tags(dev, PROJECT, "dev-alice") == {
        "project": PROJECT, "environment": "dev", "stack": "dev-alice", "managed_by": "pulumi",
        "dev": "alice", "cost_center": "ml-42",
    }  # fmt: skip
    assert "dev" not in naming.tags(prod, PROJECT, "prod")


def test_unity_catalog_names_are_never_prefixed() -> None:
    """Unlike DABs development mode, schema names are exactly what the stack file says."""
    s = parse({"deployment": {"user": "alice"}}).settings
    assert s.schema_.name == "agents_dev" and s.volumes()["wheels"][1] == "wheels"


def test_schedules_are_paused_in_development() -> None:
    """A dev stack never runs jobs on a schedule; production runs them unless the stack pauses them."""
    dev = parse().settings
    prod = parse({"environment": "prod", "deployment": {"run_as": SP}}).settings
    assert naming.pause_status(dev.production) == "PAUSED"
    assert naming.pause_status(dev.production, paused=False) == "PAUSED"
    assert naming.pause_status(prod.production) == "UNPAUSED"
    assert naming.pause_status(prod.production, paused=True) == "PAUSED"


def test_principal_slugs_are_stable_and_distinct() -> None:
    """Logical names built from principals never collide, and kebab-case principals stay readable."""
    assert naming.slug("data-engineers") == "data-engineers"
    assert naming.slug(SP) == SP
    assert naming.slug("a.b@example.com").startswith("a-b-at-example-com-")
    assert naming.slug("data engineers") != naming.slug("data-engineers ")
    assert naming.slug("x@y.io") == naming.slug("x@y.io")
    assert naming.logical("health_monitor", "runbooks") == "health-monitor-runbooks"
