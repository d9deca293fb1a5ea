"""The `{catalog}.{schema}.telemetry` Delta table: one column definition (telemetry_columns.json, also read by
the Pulumi program when it creates the table), and where rows go.

- with a SQL warehouse: the Statement Execution API (CREATE TABLE IF NOT EXISTS, then a parameterised INSERT);
- on Databricks compute without one: Spark (the table is created on first write);
- elsewhere (a local run): a JSON Lines file, so local runs never need a workspace.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from agent_jobs.errors import JobError

log = logging.getLogger(__name__)

COLUMNS: list[dict[str, str]] = json.loads(
    resources.files(__package__).joinpath("telemetry_columns.json").read_text(encoding="utf-8")
)
TABLE = "telemetry"


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
        values = asdict(self)
        values["event_time"] = self.event_time or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        values["details"] = json.dumps(self.details, sort_keys=True) if self.details is not None else None
        return {c["name"]: values[c["name"]] for c in COLUMNS}


def table_name(catalog: str, schema: str) -> str:
    return f"{catalog}.{schema}.{TABLE}"


def create_table_sql(table: str) -> str:
    columns = ", ".join(f"{c['name']} {c['type']} COMMENT '{c['comment']}'" for c in COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {table} ({columns}) USING DELTA COMMENT 'RLM agent telemetry (seed 003)'"


class Sink(Protocol):
    def write(self, events: list[Event]) -> None: ...


class WarehouseSink:
    """Rows through the SQL Statement Execution API on a warehouse (values as parameters, never spliced)."""

    def __init__(self, client: Any, warehouse_id: str, table: str) -> None:
        self.client, self.warehouse_id, self.table = client, warehouse_id, table
        self._created = False

    def _execute(self, statement: str, parameters: list[Any] | None = None) -> None:
        response = self.client.statement_execution.execute_statement(
            statement=statement, warehouse_id=self.warehouse_id, parameters=parameters, wait_timeout="30s"
        )
        state = getattr(getattr(response.status, "state", None), "value", None)
        if state != "SUCCEEDED":
            error = getattr(response.status, "error", None)
            raise JobError(f"telemetry statement {state}: {getattr(error, 'message', error)}")

    def write(self, events: list[Event]) -> None:
        from databricks.sdk.service.sql import StatementParameterListItem

        if not self._created:
            self._execute(create_table_sql(self.table))
            self._created = True
        for event in events:
            row = event.row()
            markers = ", ".join(f"CAST(:{c['name']} AS {c['type']})" for c in COLUMNS)
            parameters = [
                StatementParameterListItem(name=name, value=None if value is None else str(value))
                for name, value in row.items()
            ]
            self._execute(f"INSERT INTO {self.table} ({', '.join(row)}) SELECT {markers}", parameters)


class SparkSink:
    """Rows through the job's Spark session (clusters and serverless)."""

    def __init__(self, spark: Any, table: str) -> None:
        self.spark, self.table = spark, table

    def write(self, events: list[Event]) -> None:
        self.spark.sql(create_table_sql(self.table))
        schema = ", ".join(f"{c['name']} STRING" for c in COLUMNS)
        rows = [tuple(None if v is None else str(v) for v in e.row().values()) for e in events]
        frame = self.spark.createDataFrame(rows, schema)
        casts = ", ".join(f"CAST({c['name']} AS {c['type']}) AS {c['name']}" for c in COLUMNS)
        frame.selectExpr(*casts.split(", ")).write.mode("append").saveAsTable(self.table)


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
    catalog: str | None, schema: str | None, warehouse_id: str | None, local_dir: Path, client: Any = None
) -> Sink:
    """Where this process's telemetry goes (see the module docstring)."""
    if catalog and schema and warehouse_id:
        if client is None:
            from databricks.sdk import WorkspaceClient

            client = WorkspaceClient()
        return WarehouseSink(client, warehouse_id, table_name(catalog, schema))
    spark = _active_spark()
    if catalog and schema and spark is not None:
        return SparkSink(spark, table_name(catalog, schema))
    path = local_dir / "telemetry.jsonl"
    log.info("no warehouse or Spark session: telemetry goes to %s", path)
    return FileSink(path)


def _active_spark() -> Any:
    """The job's Spark session on Databricks compute; None elsewhere (never starts a local Spark)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return None
    session = SparkSession.getActiveSession()
    if session is None and os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        session = SparkSession.builder.getOrCreate()
    return session
