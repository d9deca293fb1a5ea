"""The serving app's settings: read once, from the environment (app.yaml `env`, the variables Databricks Apps
sets itself) and the command line, validated by pydantic, then immutable.

`SOURCES` is the one table of where each setting comes from: its environment variable, its command-line
option, and whether Databricks Apps sets it (platform) or an app resource provides it (`valueFrom`). The CLI's
options, the error messages and the generated app.yaml (`app_yaml.py`) are all derived from it.

An invalid value is one `SettingsError` naming the variable or option, what is allowed and (for non-secret
values) what was given; the CLI prints it and exits 2. Secret values (a DSN may hold a password) are never
echoed. The app's credentials (DATABRICKS_CLIENT_ID/SECRET, the Postgres OAuth token) never enter this model:
databricks-sdk reads the first from the environment itself, and the token is fetched at run time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, ValidationError, model_validator

MAX_VALUE_CHARS = 4096
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

EndpointName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]
HttpUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")]
LakebaseEndpoint = Annotated[str, StringConstraints(pattern=r"^projects/[^/\s]+/branches/[^/\s]+/endpoints/[^/\s]+$")]
HostName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.:\[\]_-]{1,253}$")]
# libpq's host: a name or address, or the directory of a local server's Unix socket.
PgHost = Annotated[str, StringConstraints(pattern=r"^(/[^\s]{0,253}|[A-Za-z0-9.:\[\]_-]{1,253})$")]
PgName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
# A volume as Databricks Apps' valueFrom gives it (/Volumes/<catalog>/<schema>/<volume>) or its full name.
VolumeRef = Annotated[
    str, StringConstraints(pattern=r"^(/Volumes/[^/\s.]+/[^/\s.]+/[^/\s.]+/?|[^/\s.]+\.[^/\s.]+\.[^/\s.]+)$")
]


@dataclass(frozen=True)
class Source:
    """Where one setting comes from."""

    field: str
    env: str
    flag: str | None
    description: str
    # Set by Databricks Apps itself in every app, or for an app resource (PG* for the first postgres resource).
    platform: bool = False
    # The app resource whose value app.yaml passes with `valueFrom` (a role name; app_yaml.py maps it to a key).
    resource: str | None = None
    secret: bool = False


SOURCES: tuple[Source, ...] = (
    Source("local", "SERVING_LOCAL", "--local",
           "Local mode: no Databricks identity headers needed (a fixed local identity, logged loudly); "
           "refused inside Databricks Apps."),
    Source("host", "SERVING_BIND_HOST", "--host", "Address to listen on (Databricks Apps needs 0.0.0.0)."),
    Source("port", "DATABRICKS_APP_PORT", "--port", "Port to listen on (Databricks Apps sets it).", platform=True),
    Source("app_name", "DATABRICKS_APP_NAME", None, "The app's name (Databricks Apps sets it).", platform=True),
    Source("databricks_host", "DATABRICKS_HOST", None,
           "The workspace URL (Databricks Apps sets it); serving endpoints are under <host>/serving-endpoints.",
           platform=True),
    Source("endpoints_url", "SERVING_ENDPOINTS_URL", "--endpoints-url",
           "Base URL of the serving endpoints, instead of <DATABRICKS_HOST>/serving-endpoints."),
    Source("llm_endpoint", "SERVING_LLM_ENDPOINT", "--llm-endpoint",
           "The chat LLM's serving endpoint name (OpenAI-compatible chat completions).", resource="llm-endpoint"),
    Source("embeddings_endpoint", "SERVING_EMBEDDINGS_ENDPOINT", "--embeddings-endpoint",
           "The embeddings serving endpoint name (OpenAI-compatible embeddings).", resource="embeddings-endpoint"),
    Source("embedding_dim", "SERVING_EMBEDDING_DIM", "--embedding-dim",
           "Dimensions of the embeddings endpoint's vectors (1024 for databricks-gte-large-en)."),
    Source("llm_timeout_s", "SERVING_LLM_TIMEOUT_S", None, "Timeout of one LLM call, seconds."),
    Source("embeddings_timeout_s", "SERVING_EMBEDDINGS_TIMEOUT_S", None, "Timeout of one embeddings call, seconds."),
    Source("llm_max_tokens", "SERVING_LLM_MAX_TOKENS", None, "max_tokens of one LLM call."),
    Source("pg_dsn", "SERVING_PG_DSN", "--pg-dsn",
           "A libpq connection string for memory (local runs); on Databricks the PG* variables are used.",
           secret=True),
    Source("pg_host", "PGHOST", None, "Postgres host (the app's postgres resource sets it).", platform=True),
    Source("pg_port", "PGPORT", None, "Postgres port (the postgres resource sets it).", platform=True),
    Source("pg_database", "PGDATABASE", None, "Postgres database (the postgres resource sets it).", platform=True),
    Source("pg_user", "PGUSER", None,
           "Postgres role: the app's service principal client id (the postgres resource sets it).", platform=True),
    Source("pg_sslmode", "PGSSLMODE", None, "Postgres SSL mode (the postgres resource sets it).", platform=True),
    Source("lakebase_endpoint", "LAKEBASE_ENDPOINT", None,
           "The Lakebase Autoscaling endpoint (projects/<p>/branches/<b>/endpoints/<e>) whose OAuth credential is "
           "the Postgres password (w.postgres.generate_database_credential).", resource="postgres"),
    Source("database_instance", "SERVING_DATABASE_INSTANCE", None,
           "A Lakebase Provisioned instance name instead (the older w.database.generate_database_credential)."),
    Source("memory_schema", "SERVING_MEMORY_SCHEMA", None, "Postgres schema of the memory tables (created on start)."),
    Source("pool_min_size", "SERVING_POOL_MIN_SIZE", None, "Connections the memory pool keeps open."),
    Source("pool_max_size", "SERVING_POOL_MAX_SIZE", None, "Connections the memory pool may open."),
    Source("pg_timeout_s", "SERVING_PG_TIMEOUT_S", None,
           "Seconds to wait for a database connection (then 503) and to log in."),
    Source("token_refresh_margin_s", "SERVING_TOKEN_REFRESH_MARGIN_S", None,
           "Fetch a new Postgres OAuth token this many seconds before the current one expires."),
    Source("prompts_volume", "SERVING_PROMPTS_VOLUME", None,
           "The prompts volume (/Volumes/<catalog>/<schema>/<volume>), read with the Files API.",
           resource="prompts-volume"),
    Source("prompts_dir", "SERVING_PROMPTS_DIR", "--prompts-dir",
           "A local directory with the prompts volume's layout, instead of the volume (local runs)."),
    Source("prompts_refresh_s", "SERVING_PROMPTS_REFRESH_S", None, "Seconds between two prompt refreshes."),
    Source("max_body_bytes", "SERVING_MAX_BODY_BYTES", None, "Largest request body accepted, bytes."),
    Source("log_level", "SERVING_LOG_LEVEL", "--log-level", "DEBUG, INFO, WARNING or ERROR."),
)  # fmt: skip
SOURCES_BY_FIELD = {s.field: s for s in SOURCES}


def _d(field: str) -> str:
    """The description of a setting (pydantic's Field description), from the table."""
    return SOURCES_BY_FIELD[field].description


class SettingsError(Exception):
    """One invalid or missing setting; the message names it and says what is allowed."""


class ServingSettings(BaseModel):
    """Validated settings of one app process. Build with `load_settings`."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, str_strip_whitespace=True)

    local: bool = Field(False, description=_d("local"))
    host: HostName = Field("0.0.0.0", description=_d("host"))
    port: int = Field(8000, ge=1, le=65535, description=_d("port"))
    app_name: PgName | None = Field(None, description=_d("app_name"))
    databricks_host: HostName | HttpUrl | None = Field(None, description=_d("databricks_host"))
    endpoints_url: HttpUrl | None = Field(None, description=_d("endpoints_url"))
    llm_endpoint: EndpointName = Field(description=_d("llm_endpoint"))
    embeddings_endpoint: EndpointName = Field(description=_d("embeddings_endpoint"))
    # HNSW indexes take at most 2000 dimensions (pgvector).
    embedding_dim: int = Field(1024, ge=1, le=2000, description=_d("embedding_dim"))
    llm_timeout_s: float = Field(30.0, gt=0, le=300, description=_d("llm_timeout_s"))
    embeddings_timeout_s: float = Field(10.0, gt=0, le=120, description=_d("embeddings_timeout_s"))
    llm_max_tokens: int = Field(512, ge=1, le=8192, description=_d("llm_max_tokens"))
    pg_dsn: SecretStr | None = Field(None, description=_d("pg_dsn"))
    pg_host: PgHost | None = Field(None, description=_d("pg_host"))
    pg_port: int = Field(5432, ge=1, le=65535, description=_d("pg_port"))
    pg_database: PgName | None = Field(None, description=_d("pg_database"))
    pg_user: PgName | None = Field(None, description=_d("pg_user"))
    pg_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = Field(
        None, description=_d("pg_sslmode")
    )
    lakebase_endpoint: LakebaseEndpoint | None = Field(None, description=_d("lakebase_endpoint"))
    database_instance: EndpointName | None = Field(None, description=_d("database_instance"))
    memory_schema: Identifier = Field("agent_memory", description=_d("memory_schema"))
    pool_min_size: int = Field(1, ge=0, le=50, description=_d("pool_min_size"))
    pool_max_size: int = Field(10, ge=1, le=100, description=_d("pool_max_size"))
    pg_timeout_s: float = Field(10.0, gt=0, le=120, description=_d("pg_timeout_s"))
    token_refresh_margin_s: float = Field(300.0, ge=30, le=1800, description=_d("token_refresh_margin_s"))
    prompts_volume: VolumeRef | None = Field(None, description=_d("prompts_volume"))
    prompts_dir: Path | None = Field(None, description=_d("prompts_dir"))
    prompts_refresh_s: float = Field(300.0, ge=5, le=86400, description=_d("prompts_refresh_s"))
    max_body_bytes: int = Field(1 << 20, ge=1024, le=16 << 20, description=_d("max_body_bytes"))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description=_d("log_level"))

    @model_validator(mode="after")
    def _consistent(self) -> ServingSettings:
        if self.local and self.app_name:
            raise _Rule(
                "local",
                "--local is refused inside Databricks Apps (DATABRICKS_APP_NAME is set): there the "
                "platform forwards each user's identity; drop --local / SERVING_LOCAL",
            )
        if self.pg_dsn is None and self.pg_host is None:
            raise _Rule(
                "pg_dsn",
                "memory needs a Postgres database: give --pg-dsn / SERVING_PG_DSN, or PGHOST "
                "(Databricks Apps sets it from the app's postgres resource)",
            )
        if self.pg_dsn is not None and self.pg_host is not None:
            raise _Rule("pg_dsn", "give either SERVING_PG_DSN or the PG* variables, not both")
        if self.lakebase_endpoint and self.database_instance:
            raise _Rule(
                "database_instance",
                "give either LAKEBASE_ENDPOINT (Lakebase Autoscaling) or "
                "SERVING_DATABASE_INSTANCE (Lakebase Provisioned), not both",
            )
        if (self.lakebase_endpoint or self.database_instance) and (self.pg_dsn is not None or not self.pg_user):
            raise _Rule(
                "pg_user",
                "an OAuth-token database needs PGHOST and PGUSER (the token is the password of "
                "that role), not SERVING_PG_DSN",
            )
        if self.pool_min_size > self.pool_max_size:
            raise _Rule("pool_min_size", f"must not exceed SERVING_POOL_MAX_SIZE ({self.pool_max_size})")
        if self.prompts_volume and self.prompts_dir:
            raise _Rule("prompts_dir", "give either SERVING_PROMPTS_VOLUME or --prompts-dir, not both")
        return self

    @property
    def endpoints_base(self) -> str | None:
        """Where `<name>/invocations` of each serving endpoint is; None: under the host databricks-sdk finds in
        its own configuration (a profile), resolved when the app is built."""
        if self.endpoints_url:
            return self.endpoints_url.rstrip("/")
        if self.databricks_host is None:
            return None
        host = str(self.databricks_host)
        host = host if host.startswith(("http://", "https://")) else f"https://{host}"
        return f"{host.rstrip('/')}/serving-endpoints"

    @property
    def pg_credential(self) -> Literal["lakebase", "database-instance", "static"]:
        """How the Postgres password is obtained: a Lakebase OAuth token (either API) or libpq's own sources."""
        if self.lakebase_endpoint:
            return "lakebase"
        if self.database_instance:
            return "database-instance"
        return "static"

    @property
    def prompts_volume_path(self) -> str | None:
        """The prompts volume as a /Volumes path (the Files API's form)."""
        if not self.prompts_volume:
            return None
        if self.prompts_volume.startswith("/Volumes/"):
            return self.prompts_volume.rstrip("/")
        return "/Volumes/" + self.prompts_volume.replace(".", "/")


class _Rule(ValueError):
    """A cross-field rule broken; `field` is the setting the message is reported against."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _where(source: Source, from_cli: bool) -> str:
    if from_cli and source.flag:
        return f"{source.flag} (command line)"
    where = f"{source.env} (environment)"
    return f"{where} / {source.flag}" if source.flag else where


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_raw(source: Source, value: Any, from_cli: bool) -> None:
    """Hostile values get a clear message before pydantic sees them."""
    if isinstance(value, str):
        if len(value) > MAX_VALUE_CHARS:
            raise SettingsError(f"{_where(source, from_cli)}: longer than {MAX_VALUE_CHARS} characters")
        if _CONTROL.search(value):
            raise SettingsError(f"{_where(source, from_cli)}: contains control characters")
    elif isinstance(value, float) and not math.isfinite(value):
        raise SettingsError(f"{_where(source, from_cli)}: must be a finite number")


def load_settings(env: Mapping[str, str], cli: Mapping[str, Any] | None = None) -> ServingSettings:
    """Settings from the environment, with command-line values (by field name, None = not given) winning."""
    cli = {k: v for k, v in (cli or {}).items() if v is not None}
    unknown = set(cli) - set(SOURCES_BY_FIELD)
    if unknown:
        raise SettingsError(f"unknown settings: {sorted(unknown)}")
    raw: dict[str, Any] = {}
    for source in SOURCES:
        value: Any = env.get(source.env)
        from_cli = source.field in cli
        if from_cli:
            value = cli[source.field]
        if value is None or (isinstance(value, str) and not value.strip()):
            continue  # unset and empty mean the default (app.yaml may pass "" for an unused resource)
        _check_raw(source, value, from_cli)
        if source.field == "local" and isinstance(value, str):
            if value.strip().lower() not in ("1", "true", "yes", "0", "false", "no"):
                raise SettingsError(f"{_where(source, from_cli)}: must be true or false (got {_shown(value)})")
            value = value.strip().lower() in ("1", "true", "yes")
        raw[source.field] = value
    try:
        return ServingSettings.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [str(part) for part in error.get("loc", ())]
        context = error.get("ctx", {}) or {}
        rule = context.get("error")
        if isinstance(rule, _Rule):
            ruled = SOURCES_BY_FIELD[rule.field]
            raise SettingsError(f"{_where(ruled, rule.field in cli)}: {rule}") from None
        field = loc[0] if loc else ""
        found = SOURCES_BY_FIELD.get(field)
        if found is None:
            raise SettingsError(f"invalid settings: {error['msg']}") from None
        message = f"{_where(found, field in cli)}: {_allowed(field, error)}"
        if error.get("type") != "missing" and not found.secret and field in raw:
            message += f" (got {_shown(raw[field])})"
        raise SettingsError(message) from None


def _allowed(field: str, error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "missing":
        return "is required"
    if kind == "string_pattern_mismatch":
        return {
            "llm_endpoint": "must be a serving endpoint name (letters, digits, '-', '_', '.'; at most 63)",
            "embeddings_endpoint": "must be a serving endpoint name (letters, digits, '-', '_', '.'; at most 63)",
            "database_instance": "must be a database instance name (letters, digits, '-', '_', '.'; at most 63)",
            "memory_schema": "must be a lower-case Postgres identifier ([a-z_][a-z0-9_]*, at most 63)",
            "lakebase_endpoint": "must be projects/<project>/branches/<branch>/endpoints/<endpoint>",
            "prompts_volume": "must be /Volumes/<catalog>/<schema>/<volume> or <catalog>.<schema>.<volume>",
            "endpoints_url": "must be an http(s) URL",
            "databricks_host": "must be a host name or an http(s) URL",
        }.get(field, "has a form that is not allowed")
    return str(error.get("msg", "is not allowed"))
