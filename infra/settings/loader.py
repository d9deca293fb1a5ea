"""Reading a stack's config into the settings, once: unknown keys refused (with the nearest valid one), values
decoded as the Pulumi CLI passes them, every problem in one SettingsError.

Secret values never enter pydantic: the systems' declarations name the secrets, `parse_settings()` records
whether each one is set, and `secret_values()` hands the values to the program as secret Outputs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
from pydantic import ValidationError

from infra.settings.base import SettingsError, did_you_mean
from infra.settings.messages import clip, describe, one_message
from infra.settings.stack import StackSettings
from infra.systems import SYSTEMS


@dataclass(frozen=True)
class SecretSpec:
    """One secret config key, the system it belongs to and where its value goes."""

    config_key: str
    system: str
    key: str  # key inside the system's secret scope
    required: bool
    description: str


SECRETS: tuple[SecretSpec, ...] = tuple(
    SecretSpec(d.config_key, s.key, d.key, d.required, d.description) for s in SYSTEMS for d in s.secrets
)
SECRET_KEYS = frozenset(s.config_key for s in SECRETS)

SecretState = Literal["set", "absent", "plaintext"]


@dataclass(frozen=True)
class LoadedSettings:
    """The validated settings plus, for each secret config key, whether it is set (never its value)."""

    settings: StackSettings
    secrets: Mapping[str, SecretState]
    stack_file: str

    def wanted_secrets(self) -> tuple[SecretSpec, ...]:
        """Secrets of enabled systems (required ones, and optional ones that are set)."""
        enabled = set(self.settings.secret_scopes())
        return tuple(
            s for s in SECRETS if s.system in enabled and (s.required or self.secrets[s.config_key] != "absent")
        )

    def check_secrets_for_deploy(self, project: str) -> None:
        """Refuse to deploy with a required secret unset, or any secret stored in plain text (even one of a
        switched-off system: it sits in the stack file, probably in git)."""
        problems = []
        wanted = {spec.config_key for spec in self.wanted_secrets()}
        for spec in SECRETS:
            full = f"{project}:{spec.config_key}"
            state = self.secrets[spec.config_key]
            if state == "absent" and spec.config_key in wanted:
                problems.append(f"{full} is not set: {spec.description} Set it with: "
                                f"pulumi config set --secret {full} <value>")  # fmt: skip
            elif state == "plaintext":
                problems.append(f"{full} is stored in plain text; a secret must be encrypted. Rotate it, then "
                                f"run: pulumi config set --secret {full} <value>")  # fmt: skip
        if problems:
            raise SettingsError(one_message(self.stack_file, problems))


# --- Loading


def load_settings() -> LoadedSettings:
    """Parse the running stack's config (inside a Pulumi program or the offline preview)."""
    project, stack = pulumi.get_project(), pulumi.get_stack()
    raw = {**pulumi.runtime.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    secret_keys = set(pulumi.runtime.get_config_secret_keys_env()) | {
        k for k in raw if pulumi.runtime.is_config_secret(k)
    }
    return parse_settings(raw, secret_keys, project=project, stack_file=f"Pulumi.{stack}.yaml")


def parse_settings(
    raw: Mapping[str, Any], secret_keys: Iterable[str], *, project: str, stack_file: str
) -> LoadedSettings:
    """Validate raw config (full keys like 'agent-platform:catalog', values as Pulumi passes them:
    scalars as strings, objects as JSON text)."""
    secret_keys = set(secret_keys)
    problems: list[str] = []
    top_level = sorted(f.alias or n for n, f in StackSettings.model_fields.items())
    values: dict[str, Any] = {}
    secrets: dict[str, SecretState] = {s.config_key: "absent" for s in SECRETS}
    for full_key in sorted(raw):
        namespace, _, key = full_key.partition(":")
        if namespace == "databricks":
            problems.append(
                f"{clip(full_key)}: is ignored by this program, which configures its own provider; allowed: "
                f"set {project}:workspace.host (and .profile), and credentials in the environment"
            )
        elif namespace != project:
            continue
        elif key in SECRET_KEYS:
            if raw[full_key] not in (None, ""):
                secrets[key] = "set" if full_key in secret_keys else "plaintext"
        elif key in top_level:
            if raw[full_key] in (None, ""):
                continue  # `key:` with nothing after it: the CLI passes "" (and warns); unset, like the secrets
            try:
                values[key] = _decode(key, raw[full_key])
            except _Unreadable as exc:
                problems.append(f"{full_key}: {exc}")
        else:
            hint = did_you_mean(key, [*top_level, *SECRET_KEYS])
            problems.append(f"{clip(full_key)}: is not a known setting{hint}; allowed: "
                            f"{', '.join(top_level)} and the secrets {', '.join(sorted(SECRET_KEYS))}")  # fmt: skip
    settings = None
    try:
        settings = StackSettings.model_validate(values)
    except ValidationError as exc:
        problems.extend(describe(project, error) for error in exc.errors())
    if problems or settings is None:
        raise SettingsError(one_message(stack_file, problems))
    return LoadedSettings(settings=settings, secrets=secrets, stack_file=stack_file)


class _Unreadable(ValueError):
    """JSON text that no setting can hold, said in one line."""


def _no_constants(name: str) -> Any:
    raise _Unreadable(f"holds {name}, which is not a finite number; allowed: finite numbers")


def _decode(key: str, value: Any) -> Any:
    """Top-level values arrive as text; objects and lists as JSON text (how the Pulumi CLI passes them).
    Text that is not JSON stays text (pydantic then says what was expected). The CLI never writes NaN, a number
    beyond Python's 4300-digit limit or JSON nested past the recursion limit, but PULUMI_CONFIG can hold them."""
    field = StackSettings.model_fields["schema_" if key == "schema" else key]
    if isinstance(value, str) and field.annotation is not str and value[:1] in "{[":
        try:
            return json.loads(value, parse_constant=_no_constants)
        except json.JSONDecodeError:
            return value
        except RecursionError:
            raise _Unreadable("is nested too deeply to read; allowed: the setting's own structure (a few "
                              "levels)") from None  # fmt: skip
        except _Unreadable:
            raise
        except ValueError:  # int() of more than 4300 digits
            raise _Unreadable("holds a number thousands of digits long; allowed: numbers of the setting's "
                              "range") from None  # fmt: skip
    return value


def secret_values(loaded: LoadedSettings) -> dict[str, pulumi.Output[str]]:
    """The wanted secrets' values as secret Outputs, keyed by config key (read here, never logged)."""
    config = pulumi.Config()
    return {spec.config_key: config.require_secret(spec.config_key) for spec in loaded.wanted_secrets()}
