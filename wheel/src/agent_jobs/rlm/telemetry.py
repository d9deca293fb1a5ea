"""The `{catalog}.{schema}.telemetry` Delta table: one column definition (telemetry_columns.json, also read by
the Pulumi program when it creates the table), and where rows go.

- with a SQL warehouse: the Statement Execution API (CREATE TABLE IF NOT EXISTS, then a parameterised INSERT);
- on Databricks compute without one: Spark (the table is created on first write);
- elsewhere (a local run): a JSON Lines file, so local runs never need a workspace.

Every row is redacted (agent_jobs.redact) and its free-text fields capped (MAX_TEXT characters, `details` as
JSON at most MAX_DETAILS), so neither a secret nor a 20 MB line of an artifact's output reaches the table.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from agent_jobs.redact import REDACTOR
from agent_jobs.sql import SqlRunner, runner

log = logging.getLogger(__name__)

COLUMNS: list[dict[str, str]] = json.loads(
    resources.files(__package__).joinpath("telemetry_columns.json").read_text(encoding="utf-8")
)
TABLE = "telemetry"
MAX_TEXT = 4000
MAX_DETAILS = 70_000  # the executor's output (at most 64 KiB) and a few small fields


def _capped(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return f"{text[: limit - 40]}[... {len(text) - limit + 40} characters cut]"


@dataclass(frozen=True)
class Event:
    source: str
    event: str
    session_id: str
    iteration: int | None = None
    job_id: str | None = None
    job_run_id: str | None = None
    executor_run_id: str | None = None
    artifact_path: str | None = None
    status: str | None = None
    duration_ms: int | None = None
    error: str | None = None
    details: dict[str, Any] | None = None
    event_time: str = ""

    def row(self) -> dict[str, Any]:
        """Column -> value, in the table's column order."""
        values = REDACTOR.value(asdict(self))
        values["event_time"] = self.event_time or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for name in ("error", "artifact_path", "status", "session_id"):
            values[name] = _capped(values[name], MAX_TEXT)
        details = json.dumps(values["details"], sort_keys=True) if values["details"] is not None else None
        if details is not None and len(details) > MAX_DETAILS:
            details = json.dumps({"cut": f"details of {len(details)} characters, over {MAX_DETAILS}: not kept"})
        values["details"] = details
        return {c["name"]: values[c["name"]] for c in COLUMNS}


def table_name(catalog: str, schema: str) -> str:
    return f"{catalog}.{schema}.{TABLE}"


def create_table_sql(table: str) -> str:
    columns = ", ".join(f"{c['name']} {c['type']} COMMENT '{c['comment']}'" for c in COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {table} ({columns}) USING DELTA COMMENT 'RLM agent telemetry (seed 003)'"


class Sink(Protocol):
    def write(self, events: list[Event]) -> None: ...


class SqlSink:
    """Rows appended with SQL (a warehouse or Spark); the table is created on first write if missing."""

    def __init__(self, sql: SqlRunner, table: str) -> None:
        self.sql, self.table = sql, table
        self._created = False

    def write(self, events: list[Event]) -> None:
        if not self._created:
            self.sql.execute(create_table_sql(self.table))
            self._created = True
        names = [c["name"] for c in COLUMNS]
        markers = ", ".join(f"CAST(:{c['name']} AS {c['type']})" for c in COLUMNS)
        for event in events:
            self.sql.execute(f"INSERT INTO {self.table} ({', '.join(names)}) SELECT {markers}", event.row())


class FileSink:
    """Rows as JSON lines in a local file (local runs without a workspace)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, events: list[Event]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            for event in events:
                out.write(json.dumps(event.row()) + "\n")  # in the table's column order


def sink(
    catalog: str | None,
    schema: str | None,
    warehouse_id: str | None,
    local_dir: Path,
    client: Any = None,
    *,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
) -> Sink:
    """Where this process's telemetry goes (see the module docstring); `sleep`/`clock` pace the polling of a
    statement on a starting warehouse."""
    sql = runner(warehouse_id, client, sleep=sleep, clock=clock) if catalog and schema else None
    if sql is not None and catalog and schema:
        return SqlSink(sql, table_name(catalog, schema))
    path = local_dir / "telemetry.jsonl"
    log.info("no warehouse or Spark session: telemetry goes to %s", path)
    return FileSink(path)
