"""Run SQL where the job runs: through a SQL warehouse (the Statement Execution API) when one is configured,
else through the job's Spark session. Values always travel as named parameters, never spliced into SQL."""

from __future__ import annotations

import os
from typing import Any, Protocol

from agent_jobs.errors import JobError


class SqlRunner(Protocol):
    def execute(self, statement: str, parameters: dict[str, Any] | None = None) -> None: ...


class WarehouseSql:
    def __init__(self, client: Any, warehouse_id: str) -> None:
        self.client, self.warehouse_id = client, warehouse_id

    def execute(self, statement: str, parameters: dict[str, Any] | None = None) -> None:
        from databricks.sdk.service.sql import StatementParameterListItem

        items = [
            StatementParameterListItem(name=k, value=None if v is None else str(v))
            for k, v in (parameters or {}).items()
        ]
        response = self.client.statement_execution.execute_statement(
            statement=statement, warehouse_id=self.warehouse_id, parameters=items or None, wait_timeout="30s"
        )
        state = getattr(getattr(response.status, "state", None), "value", None)
        if state != "SUCCEEDED":
            error = getattr(response.status, "error", None)
            raise JobError(f"SQL statement {state}: {getattr(error, 'message', error)}: {statement[:120]}")


class SparkSql:
    def __init__(self, spark: Any) -> None:
        self.spark = spark

    def execute(self, statement: str, parameters: dict[str, Any] | None = None) -> None:
        self.spark.sql(statement, args=parameters or None)


def active_spark() -> Any:
    """The job's Spark session on Databricks compute; None elsewhere (never starts a local Spark)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return None
    session = SparkSession.getActiveSession()
    if session is None and os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        session = SparkSession.builder.getOrCreate()
    return session


def runner(warehouse_id: str | None, client: Any = None) -> SqlRunner | None:
    """A warehouse runner when one is named, else Spark on Databricks compute, else None (a local run)."""
    if warehouse_id:
        if client is None:
            from databricks.sdk import WorkspaceClient

            client = WorkspaceClient()
        return WarehouseSql(client, warehouse_id)
    spark = active_spark()
    return SparkSql(spark) if spark is not None else None
