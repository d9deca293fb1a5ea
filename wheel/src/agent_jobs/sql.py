"""Run SQL where the job runs: through a SQL warehouse (the Statement Execution API) when one is configured,
else through the job's Spark session. Values always travel as named parameters, never spliced into SQL.

On a warehouse, a statement waits at most 50 s in the request (the API's limit); a warehouse that is still
starting answers PENDING or RUNNING, which is not a failure: the statement is polled (`get_statement`), backing
off, until it ends or `timeout_seconds` pass, and then it is cancelled and the run fails saying so.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any, Protocol

from agent_jobs.errors import JobError

log = logging.getLogger(__name__)

WAITING = ("PENDING", "RUNNING")


class Timing:
    """How runners wait between polls; replaced in tests so that nothing sleeps for real."""

    sleep: Callable[[float], None] = staticmethod(time.sleep)
    clock: Callable[[], float] = staticmethod(time.monotonic)


TIMING = Timing()


class SqlRunner(Protocol):
    def execute(self, statement: str, parameters: dict[str, Any] | None = None) -> None: ...


def _state(response: Any) -> str | None:
    return getattr(getattr(getattr(response, "status", None), "state", None), "value", None)


class WarehouseSql:
    def __init__(
        self,
        client: Any,
        warehouse_id: str,
        *,
        timeout_seconds: float = 900,
        poll_seconds: float = 2,
        max_poll_seconds: float = 30,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.client, self.warehouse_id = client, warehouse_id
        self.timeout_seconds, self.poll_seconds, self.max_poll_seconds = timeout_seconds, poll_seconds, max_poll_seconds
        self.sleep, self.clock = sleep or TIMING.sleep, clock or TIMING.clock

    def execute(self, statement: str, parameters: dict[str, Any] | None = None) -> None:
        from databricks.sdk.service.sql import ExecuteStatementRequestOnWaitTimeout, StatementParameterListItem

        items = [
            StatementParameterListItem(name=k, value=None if v is None else str(v))
            for k, v in (parameters or {}).items()
        ]
        api = self.client.statement_execution
        started = self.clock()
        response = api.execute_statement(
            statement=statement,
            warehouse_id=self.warehouse_id,
            parameters=items or None,
            wait_timeout="50s",
            on_wait_timeout=ExecuteStatementRequestOnWaitTimeout.CONTINUE,
        )
        state, delay = _state(response), self.poll_seconds
        while state in WAITING:
            elapsed = self.clock() - started
            if elapsed >= self.timeout_seconds:
                self._cancel(response.statement_id)
                raise JobError(
                    f"SQL statement still {state} after {elapsed:.0f} s on warehouse {self.warehouse_id} "
                    f"(limit {self.timeout_seconds:.0f} s); cancelled: {statement[:120]}"
                )
            log.info("SQL statement %s is %s (warehouse starting?); checking again in %g s",
                     response.statement_id, state, delay)  # fmt: skip
            self.sleep(min(delay, self.timeout_seconds - elapsed))
            delay = min(delay * 2, self.max_poll_seconds)
            response = api.get_statement(response.statement_id)
            state = _state(response)
        if state != "SUCCEEDED":
            error = getattr(response.status, "error", None)
            raise JobError(f"SQL statement {state}: {getattr(error, 'message', error)}: {statement[:120]}")

    def _cancel(self, statement_id: str | None) -> None:
        if not statement_id:
            return
        try:
            self.client.statement_execution.cancel_execution(statement_id)
        except Exception as exc:  # the run fails with the timeout either way; say that the cancel failed too
            log.warning("could not cancel SQL statement %s: %s", statement_id, exc)


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


def runner(
    warehouse_id: str | None,
    client: Any = None,
    *,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
) -> SqlRunner | None:
    """A warehouse runner when one is named, else Spark on Databricks compute, else None (a local run)."""
    if warehouse_id:
        if client is None:
            from databricks.sdk import WorkspaceClient

            client = WorkspaceClient()
        return WarehouseSql(client, warehouse_id, sleep=sleep, clock=clock)
    spark = active_spark()
    return SparkSql(spark) if spark is not None else None
