"""Constrained value types for the stack settings, in one place.

Each type checks one kind of value (a Unity Catalog name, a cluster id, a Quartz cron expression, ...)
and fails with a message that says what is allowed, so that `settings.py` can report
"<stack file>: <key>: <what is wrong>; allowed: <what is allowed>" without a traceback.
Nothing here reads config or knows about Pulumi.
"""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

# Control characters (Unicode category Cc: NUL, line breaks, ESC...) and the invisible bidirectional controls can
# make a name display as another one ("Trojan Source"): a principal that reads as `admins` but is not, a tag
# that hides part of itself. None of them belongs in a name or a text setting, so every text type refuses them.
_HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def no_hidden(value: str, allowed: str) -> None:
    found = _HIDDEN.search(value)
    if found is not None:
        what = "a control character" if unicodedata.category(found[0]) == "Cc" else "a bidirectional control"
        raise PydanticCustomError(
            "invalid_value",
            "contains {char} ({what}) at position {at}; allowed: {allowed}",
            {"char": f"U+{ord(found[0]):04X}", "what": what, "at": found.start(), "allowed": allowed},
        )


def _matching(regex: str, what: str, allowed: str, max_len: int) -> Callable[[str], str]:
    pattern = re.compile(regex)

    def check(value: str) -> str:
        no_hidden(value[: max_len + 1], allowed)
        if len(value) > max_len or not pattern.fullmatch(value):
            raise PydanticCustomError(
                "invalid_value",
                "is not a valid {what}; allowed: {allowed}",
                {"what": what, "allowed": allowed},
            )
        return value

    return check


# Unity Catalog stores names in lowercase; hyphens and other characters would need backquotes in every
# SQL statement the jobs run (CREATE TABLE IF NOT EXISTS {catalog}.{schema}.telemetry), so they are refused.
UcName = Annotated[str, AfterValidator(_matching(r"[a-z_][a-z0-9_]*", "Unity Catalog name", "lowercase letters, digits and underscores, starting with a letter or underscore, at most 255 characters", 255))]  # fmt: skip

EnvironmentName = Annotated[str, AfterValidator(_matching(r"[a-z][a-z0-9-]*", "environment name", "lowercase letters, digits and hyphens, starting with a letter, at most 20 characters (for example dev, staging, prod)", 20))]  # fmt: skip

DevUser = Annotated[str, AfterValidator(_matching(r"[A-Za-z0-9][A-Za-z0-9._-]*", "user short name", "letters, digits, dots, underscores and hyphens, at most 64 characters (for example alice)", 64))]  # fmt: skip

SecretScopeName = Annotated[str, AfterValidator(_matching(r"[A-Za-z0-9_.@-]+", "secret scope name", "letters, digits, dashes, underscores, @ and periods, at most 128 characters", 128))]  # fmt: skip

ClusterId = Annotated[str, AfterValidator(_matching(r"\d{4}-\d{6}-[a-z0-9]{4,16}", "cluster id", "the id shown in the cluster's URL, like 1115-120035-jyzgoasz", 40))]  # fmt: skip

ProfileName = Annotated[str, AfterValidator(_matching(r"[A-Za-z0-9_.-]+", "profile name", "a section name of ~/.databrickscfg, like DEFAULT or prod", 64))]  # fmt: skip

WarehouseId = Annotated[str, AfterValidator(_matching(r"[a-f0-9]{16}", "SQL warehouse id", "16 hexadecimal characters, like 1a2b3c4d5e6f7a8b", 16))]  # fmt: skip

ExperimentId = Annotated[str, AfterValidator(_matching(r"[0-9]+", "MLflow experiment id", "digits only, like 123456789", 32))]  # fmt: skip

JobId = Annotated[str, AfterValidator(_matching(r"[0-9]+", "job id", "digits only, like 667754679146345 (databricks jobs list)", 32))]  # fmt: skip

EnvironmentVersion = Annotated[str, AfterValidator(_matching(r"[1-9][0-9]?", "serverless environment version", "a whole number such as 2, 3 or 4", 2))]  # fmt: skip

SparkVersion = Annotated[str, AfterValidator(_matching(r"\d+\.\d+\.x-[a-z0-9.-]+", "Databricks runtime version", "a runtime key like 15.4.x-scala2.12 or 14.3.x-cpu-ml-scala2.12", 64))]  # fmt: skip

NodeTypeId = Annotated[str, AfterValidator(_matching(r"[A-Za-z0-9][A-Za-z0-9_.-]*", "node type", "a cloud instance type like i3.xlarge, Standard_DS3_v2 or n2-highmem-4", 64))]  # fmt: skip

ServingEndpointName = Annotated[str, AfterValidator(_matching(r"[A-Za-z0-9][A-Za-z0-9_-]*", "serving endpoint name", "letters, digits, hyphens and underscores, at most 63 characters", 63))]  # fmt: skip

ModelIdentifier = Annotated[str, AfterValidator(_matching(r"[A-Za-z0-9][A-Za-z0-9_.-]*", "model name", "letters, digits, dots, hyphens and underscores, like databricks-claude-sonnet-4", 128))]  # fmt: skip

MetricName = Annotated[str, AfterValidator(_matching(r"[a-z][a-z0-9_]*/(mean|min|max|p50|p90|p95|p99)", "evaluation metric name", "<scorer>/<aggregate> in lowercase, like relevance/mean or safety/p90", 128))]  # fmt: skip

# An MLflow experiment's workspace path. Absolute, no '..' or empty segments, no characters a path in the
# workspace file tree cannot hold.
WorkspacePath = Annotated[str, AfterValidator(_matching(r"(/[A-Za-z0-9_@.+ -]*[A-Za-z0-9_@+-][A-Za-z0-9_@.+ -]*)+", "workspace path", "an absolute path like /Shared/agent-platform/health-monitor (letters, digits, spaces and _ @ . + -; no empty or '..' segments)", 1000))]  # fmt: skip

# Tag keys are shared by Unity Catalog tags (which refuse . , - = / : in keys) and job tags.
TagKey = Annotated[str, AfterValidator(_matching(r"[A-Za-z_][A-Za-z0-9_]*", "tag key", "letters, digits and underscores, starting with a letter or underscore, at most 127 characters", 127))]  # fmt: skip

TagValue = Annotated[str, AfterValidator(_matching(r"[A-Za-z0-9 _.:/=+@-]*", "tag value", "letters, digits, spaces and _ . : / = + @ -, at most 255 characters", 255))]  # fmt: skip


def _email(value: str) -> str:
    return _matching(
        r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}",
        "email address",
        "an address like oncall@example.com",
        254,
    )(value)


EmailAddress = Annotated[str, AfterValidator(_email)]

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")

PrincipalKind = Literal["user", "service_principal", "group"]


def principal_kind(principal: str) -> PrincipalKind:
    """How Databricks addresses a principal: a user by email, a service principal by its application id
    (a UUID), anything else is a group name."""
    if _EMAIL.fullmatch(principal):
        return "user"
    if _UUID.fullmatch(principal):
        return "service_principal"
    return "group"


Principal = Annotated[str, AfterValidator(_matching(r"\S(.*\S)?", "principal", "a user's email, a service principal's application id (a UUID) or a group name, without leading or trailing spaces, at most 255 characters", 255))]  # fmt: skip


def _runnable_principal(value: str) -> str:
    if principal_kind(value) == "group":
        raise PydanticCustomError(
            "invalid_value",
            "cannot run jobs; allowed: a user's email or a service principal's application id (a UUID)",
        )
    return value


RunAsPrincipal = Annotated[Principal, AfterValidator(_runnable_principal)]


def _workspace_url(value: str) -> str:
    value = value.rstrip("/")
    return _matching(
        r"https://[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+",
        "workspace URL",
        "https:// followed by the workspace host only, like https://dbc-1234abcd-5678.cloud.databricks.com",
        255,
    )(value)


WorkspaceUrl = Annotated[str, AfterValidator(_workspace_url)]

StorageUrl = Annotated[str, AfterValidator(_matching(r"(s3|abfss|gs|r2)://\S+", "storage location", "a cloud storage URL inside an external location, like s3://bucket/path or abfss://container@account.dfs.core.windows.net/path", 1024))]  # fmt: skip


def _not_bool(value: object) -> object:
    if isinstance(value, bool):
        raise PydanticCustomError("invalid_value", "is a boolean; allowed: a number from 0 to 1")
    return value


def _threshold(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise PydanticCustomError("invalid_value", "is out of range; allowed: a number from 0 to 1")
    return value


Threshold = Annotated[float, BeforeValidator(_not_bool), AfterValidator(_threshold)]


def _timezone(value: str) -> str:
    if value != "UTC" and value not in zoneinfo.available_timezones():
        raise PydanticCustomError(
            "invalid_value",
            "is not a known time zone; allowed: an IANA time zone id like UTC, Europe/Berlin or America/New_York",
        )
    return value


TimezoneId = Annotated[str, AfterValidator(_timezone)]

# Quartz cron: seconds minutes hours day-of-month month day-of-week [year].


def _strip_str(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _visible_text(value: str) -> str:
    no_hidden(value, "text without control characters (line breaks and tabs included) or bidirectional controls")
    return value


FreeText = Annotated[str, BeforeValidator(_strip_str), AfterValidator(_visible_text)]


def _yaml_bool(value: object) -> object:
    # What the CLI passes for a YAML boolean: JSON true/false inside an object, the text true/false at the top.
    # pydantic would also take 1, "yes", "on" or "t", which YAML (1.2, and yaml.v3) reads as numbers and text.
    if isinstance(value, bool) or (isinstance(value, str) and value in ("true", "false")):
        return value
    raise PydanticCustomError(
        "invalid_value", "is not a boolean; allowed: true or false, unquoted (yes/no, on/off and 1/0 are not booleans)"
    )


Flag = Annotated[bool, BeforeValidator(_yaml_bool)]


def _whole_number(value: object) -> object:
    if isinstance(value, bool):  # pydantic would count true as 1
        raise PydanticCustomError("invalid_value", "is a boolean; allowed: a whole number")
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
