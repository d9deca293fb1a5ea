"""The agent's tables and volumes in its Unity Catalog schema (the seed's `create_agent_infrastructure` task).

The schema itself belongs to Pulumi, so a missing schema is an error here rather than something to create.
Tables are created with CREATE TABLE IF NOT EXISTS, so a rerun leaves existing data alone; volumes are read
first and only the missing ones are created, so the task's log says what it changed. Identifiers cannot be
SQL parameters: they are checked against a strict pattern and quoted with backticks, never spliced raw.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound
from databricks.sdk.service.catalog import VolumeType

from agent_jobs.errors import JobError
from agent_jobs.sql import SqlRunner

log = logging.getLogger(__name__)

VOLUMES: tuple[str, ...] = ("runbooks", "embeddings", "artifacts")

# The seed's inference log tables: what each request asked and what the agent answered.
TABLES: dict[str, str] = {
    "inference_request_logs": """(
    request_id STRING,
    user_id STRING,
    query STRING,
    timestamp TIMESTAMP,
    thread_id STRING
) USING DELTA""",
    "inference_response_logs": """(
    request_id STRING,
    response STRING,
    confidence DOUBLE,
    domains ARRAY<STRING>,
    latency_ms DOUBLE,
    timestamp TIMESTAMP
) USING DELTA""",
}

_IDENTIFIER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,254}")


def identifier(name: str, what: str) -> str:
    """`name` checked (letters, digits, underscores, hyphens) and quoted with backticks for SQL."""
    if not _IDENTIFIER.fullmatch(name):
        raise JobError(f"invalid {what} name {name!r}: use letters, digits, underscores and hyphens only")
    return f"`{name}`"


def create_tables(sql: SqlRunner, catalog: str, schema: str) -> list[str]:
    """CREATE TABLE IF NOT EXISTS for each inference log table; one line per table for the summary."""
    prefix = f"{identifier(catalog, 'catalog')}.{identifier(schema, 'schema')}"
    done = []
    for table, columns in TABLES.items():
        full_name = f"{catalog}.{schema}.{table}"
        try:
            sql.execute(f"CREATE TABLE IF NOT EXISTS {prefix}.{identifier(table, 'table')} {columns}")
        except JobError:
            raise
        except Exception as exc:  # Spark raises its own types (AnalysisException, ...)
            raise JobError(f"cannot create table {full_name}: {exc}") from exc
        log.info("table %s is in place (created if it was missing)", full_name)
        done.append(f"table {full_name}: ensured")
    return done


def ensure_volume(client: Any, catalog: str, schema: str, name: str) -> bool:
    """Create the managed volume catalog.schema.name unless it exists; True when it was created."""
    for part, what in ((catalog, "catalog"), (schema, "schema"), (name, "volume")):
        identifier(part, what)
    full_name = f"{catalog}.{schema}.{name}"
    try:
        client.volumes.read(full_name)
        log.info("volume %s already exists", full_name)
        return False
    except NotFound:
        pass
    except DatabricksError as exc:
        raise JobError(f"cannot read volume {full_name}: {exc}") from exc
    try:
        client.volumes.create(catalog_name=catalog, schema_name=schema, name=name, volume_type=VolumeType.MANAGED)
    except DatabricksError as exc:
        hint = " (does the schema exist? Pulumi creates it)" if isinstance(exc, NotFound) else ""
        raise JobError(f"cannot create volume {full_name}: {exc}{hint}") from exc
    log.info("created volume %s", full_name)
    return True


def create_infrastructure(
    client: Any, sql: SqlRunner, catalog: str, schema: str, volumes: Sequence[str] = VOLUMES
) -> list[str]:
    """The inference log tables and the volumes in catalog.schema. `client` is a databricks-sdk
    WorkspaceClient. Returns one line per object: 'table <name>: ensured', 'volume <name>: created' or
    'volume <name>: exists'."""
    done = create_tables(sql, catalog, schema)
    for name in volumes:
        created = ensure_volume(client, catalog, schema, name)
        done.append(f"volume {catalog}.{schema}.{name}: {'created' if created else 'exists'}")
    return done
