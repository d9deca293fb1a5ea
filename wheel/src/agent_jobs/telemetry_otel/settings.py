"""The telemetry export's settings: read once from the app's environment (app.yaml `env`, or the variables
Databricks Apps sets) into a frozen pydantic model. Every invalid value is one `TelemetrySettingsError` naming
the variable, the value and what is allowed; the app turns it into exit status 2. Secrets (the service
principal's client secret) stay `SecretStr` and are never part of a message.

This module owns the names and defaults of the `TELEMETRY_*` variables; it does not read anything else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

# A Unity Catalog table's full name, as Zerobus expects it in the table header: catalog.schema.table with
# plain identifiers (letters, digits, underscores, hyphens in catalog names); no quoting, no control characters.
_UC_PART = r"[A-Za-z_][A-Za-z0-9_-]{0,254}"
UC_TABLE = re.compile(rf"^{_UC_PART}\.{_UC_PART}\.{_UC_PART}$")
_MAX_TEXT = 2048


class TelemetrySettingsError(ValueError):
    """One readable message: the variable, the bad value and what is allowed."""


# field name -> (environment variable, what is allowed)
ENV: dict[str, tuple[str, str]] = {
    "enabled": ("TELEMETRY_ENABLED", "true or false"),
    "endpoint": (
        "TELEMETRY_ENDPOINT",
        "the workspace's Zerobus Ingest URL, https://<workspace-id>.zerobus.<region>.cloud.databricks.com",
    ),
    "spans_table": ("TELEMETRY_SPANS_TABLE", "a table's full name, catalog.schema.table"),
    "metrics_table": ("TELEMETRY_METRICS_TABLE", "a table's full name, catalog.schema.table, or empty (no metrics)"),
    "sample_rate": ("TELEMETRY_SAMPLE_RATE", "a number from 0 to 1 (the share of traces exported)"),
    "batch_interval_s": ("TELEMETRY_BATCH_INTERVAL_S", "seconds between exports, from 0.001 to 3600"),
    "batch_size": ("TELEMETRY_BATCH_SIZE", "spans per export, a whole number from 1 to 100000"),
    "queue_size": (
        "TELEMETRY_QUEUE_SIZE",
        "spans waiting for export, a whole number from 1 to 1000000 and at least TELEMETRY_BATCH_SIZE",
    ),
    "export_timeout_s": ("TELEMETRY_EXPORT_TIMEOUT_S", "seconds one export may take, from 0.05 to 300"),
    "metrics_interval_s": ("TELEMETRY_METRICS_INTERVAL_S", "seconds between metric exports, from 0.01 to 86400"),
    "token_refresh_margin_s": (
        "TELEMETRY_TOKEN_REFRESH_MARGIN_S",
        "seconds before expiry a token is renewed, from 0 to 3000",
    ),
    "service_name": ("TELEMETRY_SERVICE_NAME", "1 to 255 printable characters"),
    "workspace_id": (
        "TELEMETRY_WORKSPACE_ID",
        "the workspace's numeric id (default: the first label of TELEMETRY_ENDPOINT)",
    ),
    "host": ("DATABRICKS_HOST", "the workspace URL, like https://dbc-1234abcd-5678.cloud.databricks.com"),
    "client_id": ("DATABRICKS_CLIENT_ID", "the app's service principal's client id"),
    "client_secret": ("DATABRICKS_CLIENT_SECRET", "the app's service principal's OAuth secret"),
}


Seconds = Annotated[float, Field(allow_inf_nan=False)]


class TelemetrySettings(BaseModel):
    """Where and how the app's spans and metrics go. With `enabled` false nothing else is required and
    `install` returns a handle that does nothing."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    enabled: bool = Field(False, description="Export spans (and metrics) to Zerobus Ingest.")
    endpoint: str | None = Field(None, description="Zerobus Ingest base URL; /v1/traces and /v1/metrics are appended.")
    spans_table: str | None = Field(None, description="The spans table (table header of traces).")
    metrics_table: str | None = Field(None, description="The metrics table; unset: no metrics are exported.")
    sample_rate: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = Field(
        1.0, description="Share of traces exported (TELEMETRY_SAMPLE_RATE of seed 001); metrics count every one."
    )
    batch_interval_s: Annotated[Seconds, Field(ge=0.001, le=3600)] = Field(10.0, description="Export this often.")
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = Field(1000, description="Export as soon as this many wait.")
    queue_size: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        10_000, description="At most this many spans wait; beyond, new spans are dropped and counted."
    )
    export_timeout_s: Annotated[Seconds, Field(ge=0.05, le=300)] = Field(10.0, description="Bound of one export.")
    metrics_interval_s: Annotated[Seconds, Field(ge=0.01, le=86400)] = Field(60.0, description="Metric export period.")
    token_refresh_margin_s: Annotated[Seconds, Field(ge=0, le=3000)] = Field(
        300.0, description="Renew the OAuth token this long before it expires."
    )
    service_name: str = Field("agent-serving", min_length=1, max_length=255, description="OTel service.name.")
    workspace_id: str | None = Field(None, pattern=r"^[0-9]{1,32}$", description="For the token's resource.")
    host: str | None = Field(None, description="Workspace URL: the token endpoint is <host>/oidc/v1/token.")
    client_id: str | None = Field(None, max_length=256, description="The app's service principal (client id).")
    client_secret: SecretStr | None = Field(None, description="Its OAuth secret.")

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        if isinstance(value, str):
            if len(value) > _MAX_TEXT:
                raise ValueError(f"longer than {_MAX_TEXT} characters")
            if any(ord(c) < 32 or ord(c) == 127 for c in value):
                raise ValueError("contains control characters")
        return value

    @field_validator("spans_table", "metrics_table")
    @classmethod
    def _table(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not UC_TABLE.match(value):
            raise ValueError("not a table's full name")
        return value

    @field_validator("endpoint", "host")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        # Databricks Apps may give DATABRICKS_HOST without a scheme.
        url = value if "://" in value else f"https://{value}"
        parts = urlsplit(url)
        local = parts.hostname in ("127.0.0.1", "localhost")
        if parts.scheme != "https" and not (parts.scheme == "http" and local):
            raise ValueError("must be an https URL (http only for 127.0.0.1 or localhost)")
        if not parts.hostname or parts.query or parts.fragment or parts.username:
            raise ValueError("must be a plain URL: scheme, host, optional port and path")
        return url.rstrip("/")

    @model_validator(mode="after")
    def _complete(self) -> TelemetrySettings:
        if self.queue_size < self.batch_size:
            raise ValueError("queue_size: must be at least TELEMETRY_BATCH_SIZE")
        if not self.enabled:
            return self
        missing = [
            name
            for name in ("endpoint", "spans_table", "host", "client_id", "client_secret")
            if getattr(self, name) in (None, "")
        ]
        if missing:
            raise ValueError(f"{missing[0]}: is required when TELEMETRY_ENABLED is true")
        return self

    @property
    def tables(self) -> tuple[str, ...]:
        """The tables the OAuth token must cover, in a stable order."""
        return tuple(t for t in (self.spans_table, self.metrics_table) if t)

    @property
    def resolved_workspace_id(self) -> str | None:
        """TELEMETRY_WORKSPACE_ID, else the endpoint's first label when it is numeric (<workspace-id>.zerobus...)."""
        if self.workspace_id:
            return self.workspace_id
        label = (urlsplit(self.endpoint).hostname or "").split(".")[0] if self.endpoint else ""
        return label if label.isdigit() else None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TelemetrySettings:
        """Parse the environment; raise TelemetrySettingsError (one line) on the first bad variable."""
        raw: dict[str, Any] = {}
        for field, (variable, _) in ENV.items():
            if variable in env:
                raw[field] = env[variable]
        if "service_name" not in raw and env.get("DATABRICKS_APP_NAME"):
            raw["service_name"] = env["DATABRICKS_APP_NAME"]
        if isinstance(raw.get("enabled"), str):
            flag = raw["enabled"].strip().lower()
            if flag not in ("true", "false", ""):
                raise TelemetrySettingsError(_message("enabled", raw["enabled"]))
            raw["enabled"] = flag == "true"
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0]) if error["loc"] else ""
            detail = str(error["msg"]).removeprefix("Value error, ")
            if ":" in detail and detail.split(":", 1)[0] in ENV:  # a cross-field rule names its own field
                field, detail = detail.split(":", 1)
            raise TelemetrySettingsError(_message(field, raw.get(field), detail.strip())) from None


def _message(field: str, value: Any, detail: str = "") -> str:
    variable, allowed = ENV.get(field, (field, "see the README"))
    reason = f" ({detail})" if detail else ""
    if value is None:
        return f"{variable}: unset{reason}; allowed: {allowed}"
    shown = "[secret]" if field == "client_secret" else repr(value[:80] if isinstance(value, str) else value)
    return f"{variable}: {shown} is not allowed{reason}; allowed: {allowed}"
