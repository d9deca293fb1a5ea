"""SQL on a warehouse under a slow start (issue #11, "everywhere"): the real databricks-sdk against the
stand-in's Statement Execution API, on a fake clock. PENDING/RUNNING within the 50 s wait is polled, within a
bound; at the bound the statement is cancelled and the failure says so."""

from __future__ import annotations

import pytest
from faultkit import FakeClock, sdk_client

from agent_jobs.errors import JobError
from agent_jobs.sql import WarehouseSql
from standin import Fault, StandIn


def warehouse(standin: StandIn, clock: FakeClock, **bounds: float) -> WarehouseSql:
    return WarehouseSql(sdk_client(standin.url, clock), "wh1", sleep=clock.sleep, clock=clock.time, **bounds)


def test_a_pending_statement_is_polled_with_backoff_until_it_succeeds(standin: StandIn) -> None:
    """Three PENDING reads, then SUCCEEDED: no failure, waits doubling from 2 s."""
    standin.statement_polls = 3
    clock = FakeClock()
    warehouse(standin, clock).execute("SELECT :x", {"x": 1})
    (statement,) = standin.statements
    assert statement["wait_timeout"] == "50s" and statement["on_wait_timeout"] == "CONTINUE"
    assert clock.sleeps == [2, 4, 8, 16] and len(standin.calls("/api/2.0/sql/statements/s1")) == 4


def test_a_statement_that_never_ends_is_cancelled_at_the_bound(standin: StandIn) -> None:
    """A warehouse that never starts: polled until the bound, then cancelled, then a clear failure."""
    standin.statement_polls = 10**6
    clock = FakeClock()
    with pytest.raises(JobError, match=r"SQL statement still PENDING after 60 s on warehouse wh1 .*cancelled"):
        warehouse(standin, clock, timeout_seconds=60).execute("SELECT 1")
    assert sum(clock.sleeps) == 60 and standin.statement_state["s1"]["cancelled"]
    assert standin.posts("/api/2.0/sql/statements/s1/cancel")


def test_a_failed_statement_names_its_error(standin: StandIn) -> None:
    standin.statement_error = "TABLE_OR_VIEW_NOT_FOUND: main.a.telemetry"
    with pytest.raises(JobError, match="SQL statement FAILED: TABLE_OR_VIEW_NOT_FOUND"):
        warehouse(standin, FakeClock()).execute("INSERT INTO main.a.telemetry SELECT 1")


def test_a_lost_poll_is_retried_by_the_sdk(standin: StandIn) -> None:
    """A status read whose connection is reset is retried (by the SDK, on the same fake clock)."""
    standin.statement_polls = 1
    standin.fault("GET", "/api/2.0/sql/statements/s1", Fault("reset"))
    clock = FakeClock()
    warehouse(standin, clock).execute("SELECT 1")
    assert len(standin.faults_taken) == 1 and len(standin.calls("/api/2.0/sql/statements/s1")) == 3
