"""The agent's tables in its Unity Catalog schema, and a check of its volumes (the seed's
`create_agent_infrastructure` task).

The schema and the volumes belong to Pulumi (it creates them, with retain_on_delete and, in prod, protect), so
a missing one is an error here rather than something to create: a volume this task created would be one
Pulumi does not know, and the next `pulumi up` would fail to create its own. The volumes are checked first,
before any SQL, so a stack that was not deployed fails with nothing done. Tables are created with CREATE TABLE
IF NOT EXISTS, so a rerun leaves existing data alone. Identifiers cannot be SQL parameters: they are checked
against a strict pattern and quoted with backticks, never spliced raw.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound

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


def volume_exists(client: Any, catalog: str, schema: str, name: str) -> bool:
    """Whether the volume catalog.schema.name exists (read, never created); JobError when it cannot be read."""
    for part, what in ((catalog, "catalog"), (schema, "schema"), (name, "volume")):
        identifier(part, what)
    full_name = f"{catalog}.{schema}.{name}"
    try:
        client.volumes.read(full_name)
    except NotFound:
        return False
    except DatabricksError as exc:
        raise JobError(f"cannot read volume {full_name}: {exc}") from exc
    log.info("volume %s exists", full_name)
    return True


def check_volumes(client: Any, catalog: str, schema: str, volumes: Sequence[str] = VOLUMES) -> list[str]:
    """Every volume of `volumes` in catalog.schema exists; JobError naming the missing ones otherwise.
    Returns one line per volume for the summary."""
    missing = [f"{catalog}.{schema}.{name}" for name in volumes if not volume_exists(client, catalog, schema, name)]
    if missing:
        which = ", ".join(missing)
        raise JobError(
            f"volume{'s' if len(missing) > 1 else ''} {which} not found: Pulumi creates the agent's volumes "
            "(run `pulumi up` for this stack, with health_monitor enabled); this task only checks them"
        )
    return [f"volume {catalog}.{schema}.{name}: exists" for name in volumes]


def create_infrastructure(
    client: Any, sql: SqlRunner, catalog: str, schema: str, volumes: Sequence[str] = VOLUMES
) -> list[str]:
    """Check the volumes in catalog.schema (Pulumi's), then create the inference log tables there. `client` is
    a databricks-sdk WorkspaceClient. Returns one line per object: 'volume <name>: exists', then
    'table <name>: ensured'."""
    checked = check_volumes(client, catalog, schema, volumes)
    return checked + create_tables(sql, catalog, schema)
