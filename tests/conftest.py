"""Shared helpers: a minimal valid stack config, and running programs under the recording mocks."""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import pulumi
    import pulumi_databricks as db

    from infra.settings import LoadedSettings
    from infra.tools.offline import Plan

# pulumi, pulumi_databricks and the program are imported where they are used, not here: pytest-xdist's
# controller loads this file too, before it starts the workers, and only needs the scheduler hook below.

ROOT = Path(__file__).resolve().parent.parent
# The wheel's local stand-in for Databricks APIs serves these tests too (`from standin import StandIn`).
sys.path.insert(0, str(ROOT / "wheel" / "tests"))
PROJECT = "agent-platform"
STACK_FILES = sorted(p.name for p in ROOT.glob("Pulumi.*.yaml"))

BASE: dict[str, Any] = {
    "environment": "dev",
    "workspace": {"host": "https://dbc-1234abcd-5678.cloud.databricks.com"},
    "catalog": {"name": "main"},
    "schema": {"name": "agents_dev"},
    "health_monitor": {"schema": {"name": "health_monitor_agent_dev"}},
}


def raw_config(overrides: dict[str, Any] | None = None, **secrets: str) -> dict[str, str]:
    """Config as the Pulumi CLI passes it: full keys, objects as JSON text, scalars as text."""
    values = {**BASE, **(overrides or {}), **secrets}
    return {f"{PROJECT}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items() if v is not None}


def parse(overrides: dict[str, Any] | None = None, secret_keys: tuple[str, ...] = (), **secrets: str) -> LoadedSettings:
    from infra.settings import parse_settings

    return parse_settings(
        raw_config(overrides, **secrets),
        [f"{PROJECT}:{k}" for k in secret_keys],
        project=PROJECT,
        stack_file="Pulumi.test.yaml",
    )


SECRETS = {"eval_agent_databricks_token": "tok-value-123", "rlm_google_api_key": "key-value-456"}


# Plans are shared within a session (each xdist worker has its own): the same program with the same config
# records the same plan, so it runs once. Every caller gets a deep copy, which a test may change.
_STACKS: dict[str, tuple[Plan, LoadedSettings]] = {}
_PROGRAMS: dict[str, Plan] = {}


def stack_preview(stack: str, *, cached: bool = True) -> tuple[Plan, LoadedSettings]:
    """`preview_stack(ROOT, stack)` of a committed stack file (its plan and settings), run once per session;
    `cached=False` runs the program afresh (for a test about running it)."""
    from infra.tools.offline import preview_stack

    if not cached:
        return preview_stack(ROOT, stack)
    if stack not in _STACKS:
        _STACKS[stack] = preview_stack(ROOT, stack)
    return copy.deepcopy(_STACKS[stack])


def stack_plan(stack: str, *, cached: bool = True) -> Plan:
    """The plan of `stack_preview`."""
    return stack_preview(stack, cached=cached)[0]


def program_plan(
    overrides: dict[str, Any] | None = None,
    wheel_source: Path | None = None,
    cache: Path | None = None,
    secrets: dict[str, str] | None = None,
    *,
    cached: bool = True,
) -> Plan:
    """The whole program (as __main__.py runs it, secrets set) with this config and, optionally, another
    wheel source. Run once per session for each config (a deep copy each time) unless `cached=False` or
    another wheel source is given (whose files a test changes)."""
    secrets = SECRETS if secrets is None else secrets
    if not cached or wheel_source is not None:
        return _program_plan(overrides, wheel_source, cache, secrets)
    key = json.dumps([overrides, secrets], sort_keys=True, default=str)
    if key not in _PROGRAMS:
        _PROGRAMS[key] = _program_plan(overrides, None, None, secrets)
    return copy.deepcopy(_PROGRAMS[key])


def _program_plan(
    overrides: dict[str, Any] | None, wheel_source: Path | None, cache: Path | None, secrets: dict[str, str]
) -> Plan:
    import pulumi

    from infra import platform
    from infra.settings import parse_settings, secret_values
    from infra.tools.offline import run_program

    config = raw_config(overrides, **secrets)
    secret_keys = frozenset(f"{PROJECT}:{k}" for k in secrets)

    def program() -> None:
        loaded = parse_settings(config, secret_keys, project=PROJECT, stack_file="Pulumi.test.yaml")
        extra = {} if wheel_source is None else {"wheel_source": wheel_source, "wheel_cache": cache}
        for name, value in platform.build(loaded, secret_values(loaded), PROJECT, "test", **extra).items():
            pulumi.export(name, value)

    return run_program(program, PROJECT, "test", config, secret_keys)


@pytest.fixture
def run() -> Callable[..., Plan]:
    """Run a program (a function creating resources) under the mocks; returns the recorded plan."""

    from infra.tools.offline import run_program

    def _run(program: Callable[[], None], config: dict[str, str] | None = None, stack: str = "test") -> Plan:
        return run_program(program, PROJECT, stack, config or {}, frozenset())

    return _run


def provider() -> db.Provider:
    import pulumi_databricks as db

    return db.Provider("workspace", host="https://dbc-1234abcd-5678.cloud.databricks.com")


def with_provider(p: db.Provider) -> pulumi.ResourceOptions:
    import pulumi

    return pulumi.ResourceOptions(provider=p)
