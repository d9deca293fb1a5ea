"""Shared helpers: a minimal valid stack config, and running programs under the recording mocks."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pulumi_databricks as db
import pytest

from infra.settings import LoadedSettings, parse_settings
from infra.tools.offline import Plan, run_program

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
    return parse_settings(
        raw_config(overrides, **secrets),
        [f"{PROJECT}:{k}" for k in secret_keys],
        project=PROJECT,
        stack_file="Pulumi.test.yaml",
    )


SECRETS = {"eval_agent_databricks_token": "tok-value-123", "rlm_google_api_key": "key-value-456"}


def program_plan(
    overrides: dict[str, Any] | None = None,
    wheel_source: Path | None = None,
    cache: Path | None = None,
    secrets: dict[str, str] | None = None,
) -> Plan:
    """The whole program (as __main__.py runs it, secrets set) with this config and, optionally, another
    wheel source."""
    from infra import platform
    from infra.settings import secret_values

    secrets = SECRETS if secrets is None else secrets
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

    def _run(program: Callable[[], None], config: dict[str, str] | None = None, stack: str = "test") -> Plan:
        return run_program(program, PROJECT, stack, config or {}, frozenset())

    return _run


def provider() -> db.Provider:
    return db.Provider("workspace", host="https://dbc-1234abcd-5678.cloud.databricks.com")


def with_provider(p: db.Provider) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(provider=p)
