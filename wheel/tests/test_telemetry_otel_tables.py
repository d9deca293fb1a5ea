"""The telemetry tables, views and dashboard (agent_jobs.telemetry_otel.tables) run for real: spans and metrics
from the real SDK and exporter reach the local Zerobus stand-in, become rows as Zerobus documents them
(zerobus_rows), land in tables created from our schema in a local Spark 3.5 (VARIANT as JSON text: see
local_spark), and the views, seed 001's two queries and the dashboard's datasets run over them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from local_spark import for_spark35, spark
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from otlp_receiver import Receiver
from zerobus_rows import metric_rows, span_rows, write_json_lines

from agent_jobs.telemetry_otel import install, tables
from agent_jobs.telemetry_otel.settings import TelemetrySettings

# Spark and the processed wheelhouses: one xdist worker runs this group (--dist loadgroup), so one JVM starts
# and the fixtures are processed once.
pytestmark = pytest.mark.xdist_group("spark")

DB = "agents_test"
SPANS, METRICS = f"spark_catalog.{DB}.otel_spans", f"spark_catalog.{DB}.otel_metrics"
NOW_NS = time.time_ns()
MS = 1_000_000
# (agent, start offset before now in s, duration ms, failed): 10 + 5 in the last minutes, 3 two days ago
EXECUTIONS = (
    [("fraud_detector", 60 + i, 10.0 * (i + 1), i in (3, 7)) for i in range(10)]
    + [("kyc_checker", 30 + i, 5.0 + i, False) for i in range(5)]
    + [("fraud_detector", 2 * 86400 + i, 1000.0, True) for i in range(3)]
)

# Seed 001, "Monitoring": the two queries as the seed's README has them (only the table name differs).
SEED_RECENT = """
    SELECT
      timestamp,
      agent_id,
      duration_ms,
      status
    FROM main.agents.traces
    ORDER BY timestamp DESC
    LIMIT 20
  """
SEED_ERROR_RATE = """
    SELECT
      agent_id,
      COUNT(*) as total,
      SUM(CASE WHEN status = 'ERROR' THEN 1 ELSE 0 END) as errors,
      (errors * 100.0 / total) as error_rate_pct
    FROM main.agents.traces
    WHERE timestamp >= CURRENT_TIMESTAMP - INTERVAL 1 DAY
    GROUP BY agent_id
  """


def emit(handle: Any) -> None:
    """The serving app's spans with chosen times: HTTP SERVER span > agent.execute > llm.chat."""
    tracer = handle.tracer_provider.get_tracer("agent_jobs.serving")
    for agent, ago_s, duration_ms, failed in EXECUTIONS:
        start = NOW_NS - ago_s * 1_000_000_000
        end = start + int(duration_ms * MS)
        request = tracer.start_span("HTTP POST /api/execute", kind=SpanKind.SERVER, start_time=start)
        with trace.use_span(request, end_on_exit=False):
            span = tracer.start_span(
                "agent.execute", attributes={"agent.name": agent, "agent.transport": "api"}, start_time=start
            )
            with trace.use_span(span, end_on_exit=False):
                tracer.start_span("llm.chat", kind=SpanKind.CLIENT, start_time=start).end(end_time=end)
            span.set_attribute("agent.status", "error" if failed else "ok")
            if failed:
                span.set_attribute("error.type", "UPSTREAM_ERROR")
                span.set_status(Status(StatusCode.ERROR, "UPSTREAM_ERROR"))
            span.end(end_time=end)
        request.end(end_time=end)


@pytest.fixture(scope="module")
def sent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """What the exporter sent for EXECUTIONS, as Zerobus rows in JSON-lines directories."""
    root = tmp_path_factory.mktemp("zerobus")
    with Receiver() as rx:
        settings = TelemetrySettings.from_env({
            "TELEMETRY_ENABLED": "true", "TELEMETRY_ENDPOINT": rx.url, "TELEMETRY_SPANS_TABLE": "main.agents.otel_spans",
            "TELEMETRY_METRICS_TABLE": "main.agents.otel_metrics", "TELEMETRY_METRICS_INTERVAL_S": "3600",
            "DATABRICKS_HOST": rx.url, "DATABRICKS_CLIENT_ID": "sp", "DATABRICKS_CLIENT_SECRET": "s3cret",
            "DATABRICKS_APP_NAME": "agent-serving-test",
        })  # fmt: skip
        handle = install(settings)
        emit(handle)
        assert handle.force_flush(timeout_s=10)
        handle.shutdown()
        spans = span_rows([e.body for e in rx.traces()])
        points = metric_rows([e.body for e in rx.metrics()])
    return {"spans": spans, "metrics": points, "spans_dir": write_json_lines(spans, root / "spans"),
           "metrics_dir": write_json_lines(points, root / "metrics")}  # fmt: skip


@pytest.fixture(scope="module")
def warehouse(sent: dict[str, Any]) -> Iterator[Any]:
    """Our tables (their documented DDL) over the rows, our views over the tables, in database agents_test."""
    session = spark()
    session.sql(f"DROP DATABASE IF EXISTS {DB} CASCADE")
    session.sql(f"CREATE DATABASE {DB}")
    for signal, table in (("spans", SPANS), ("metrics", METRICS)):
        ddl = for_spark35(tables.create_table_sql(signal, table), location=str(sent[f"{signal}_dir"]))
        session.sql(ddl.replace("USING json ", "USING json OPTIONS (mode 'FAILFAST') "))
    for view in tables.VIEWS:
        sql = for_spark35(tables.view_sql(view, SPANS, METRICS))
        session.sql(f"CREATE VIEW {DB}.{view} COMMENT {tables.literal(tables.view_comment(view))} AS {sql}")
    yield session
    session.sql(f"DROP DATABASE IF EXISTS {DB} CASCADE")


def rows(session: Any, sql: str) -> list[dict[str, Any]]:
    return [r.asDict() for r in session.sql(sql).collect()]


def test_the_tables_follow_the_documented_schema() -> None:
    """One table per signal with Zerobus' four added columns first, the OTLP fields in the documented order,
    typed as Databricks SQL type text (nested STRUCT/ARRAY, attributes VARIANT), the documented clustering
    and schema version, and the grants the token asks for."""
    data = tables.otlp_tables()
    assert set(data["tables"]) == set(tables.SIGNALS)
    for _signal, spec in data["tables"].items():
        names = [c["name"] for c in spec["columns"]]
        assert names[:4] == ["record_id", "time", "date", "service_name"]
        assert len(names) == len(set(names)) and all(c["comment"] and c["type"] for c in spec["columns"])
        assert names[-4:-1] == ["resource", "resource_schema_url", "instrumentation_scope"]
        assert spec["properties"]["otel.schemaVersion"] == "v2"
        assert spec["cluster_keys"][:2] == ["time", "service_name"]
    spans = {c["name"]: c["type"] for c in data["tables"]["spans"]["columns"]}
    assert spans["attributes"] == "VARIANT" and spans["status"] == "STRUCT<message: STRING, code: STRING>"
    assert spans["start_time_unix_nano"] == "BIGINT" and spans["kind"] == "STRING"
    assert data["tables"]["spans"]["cluster_keys"] == ["time", "service_name", "trace_id"]
    assert data["grants"]["table"] == ["SELECT", "MODIFY"]
    assert "2026" in data["source"]["read_on"] and data["source"]["documents"]


def test_spark_takes_our_ddl_and_the_exporters_rows(warehouse: Any, sent: dict[str, Any]) -> None:
    """The CREATE TABLE text parses in Spark with our column types, and every row made from what the exporter
    sent reads back under that schema (FAILFAST: one mismatched field would fail the read)."""
    for signal, table in (("spans", SPANS), ("metrics", METRICS)):
        assert warehouse.table(table).columns == [c["name"] for c in tables.columns(signal)]
    (counts,) = rows(
        warehouse, f"SELECT (SELECT COUNT(*) FROM {SPANS}) AS spans, (SELECT COUNT(*) FROM {METRICS}) AS points"
    )
    assert counts["spans"] == len(sent["spans"]) == 3 * len(EXECUTIONS)
    assert counts["points"] == len(sent["metrics"]) > 0


def test_the_seeds_recent_executions_query(warehouse: Any) -> None:
    """Seed 001's first query, unchanged but for the table's name, lists agent executions newest first with
    their agent, duration in ms (from the span's times) and status OK / ERROR."""
    result = rows(warehouse, SEED_RECENT.replace("main.agents.traces", f"{DB}.traces"))
    expected = sorted(EXECUTIONS, key=lambda e: e[1])[:20]
    assert [r["agent_id"] for r in result] == [e[0] for e in expected]
    assert [round(r["duration_ms"], 3) for r in result] == [e[2] for e in expected]
    assert [r["status"] for r in result] == ["ERROR" if e[3] else "OK" for e in expected]
    assert list(result[0]) == ["timestamp", "agent_id", "duration_ms", "status"]


def test_the_seeds_error_rate_query(warehouse: Any) -> None:
    """Seed 001's second query gives each agent's executions, errors and error rate over the last day; the
    executions of two days ago are not counted."""
    result = {r["agent_id"]: r for r in rows(warehouse, SEED_ERROR_RATE.replace("main.agents.traces", f"{DB}.traces"))}
    assert {k: (r["total"], r["errors"], float(r["error_rate_pct"])) for k, r in result.items()} == {
        "fraud_detector": (10, 2, 20.0),
        "kyc_checker": (5, 0, 0.0),
    }


def test_the_metrics_view_counts_every_execution(warehouse: Any) -> None:
    """The metrics view flattens the data points: agent.execution.duration per agent and status with its
    count, sum, min and max in ms; agent.executions as values that sum to every execution."""
    durations = rows(
        warehouse,
        f"SELECT agent_id, status, SUM(sample_count) AS n, MIN(sample_min) AS lo, MAX(sample_max) AS hi "
        f"FROM {DB}.metrics WHERE metric_name = 'agent.execution.duration' GROUP BY agent_id, status",
    )
    assert {(r["agent_id"], r["status"]): (r["n"], round(r["lo"], 3), round(r["hi"], 3)) for r in durations} == {
        ("fraud_detector", "OK"): (8, 10.0, 100.0),
        ("fraud_detector", "ERROR"): (5, 40.0, 1000.0),
        ("kyc_checker", "OK"): (5, 5.0, 9.0),
    }


def test_the_dashboards_datasets_run_and_feed_their_widgets(warehouse: Any) -> None:
    """Every dataset of the dashboard runs against the views (unqualified names: the Dashboard's
    dataset_catalog/dataset_schema point at them), yields every field its widgets use, and gives the expected
    latency percentiles and hourly counts."""
    warehouse.sql(f"USE {DB}")
    board = tables.dashboard()
    results = {d["name"]: rows(warehouse, tables.dataset_sql(d["name"])) for d in board["datasets"]}
    for item in board["pages"][0]["layout"]:
        (query,) = item["widget"]["queries"]
        result = results[query["query"]["datasetName"]]
        assert result, query
        assert {f["name"] for f in query["query"]["fields"]} <= set(result[0])
    assert len(results["recent_executions"]) == 18
    latency = {r["agent_id"]: r for r in results["latency_by_agent"]}
    assert latency["fraud_detector"]["executions"] == 10
    assert round(latency["fraud_detector"]["p50_ms"]) == 50 and round(latency["fraud_detector"]["p99_ms"]) == 100
    assert round(latency["kyc_checker"]["max_ms"]) == 9
    hourly: dict[str, float] = {}
    for r in results["executions_by_hour"]:
        hourly[r["agent_id"]] = hourly.get(r["agent_id"], 0) + r["executions"]
    assert hourly == {"fraud_detector": 13, "kyc_checker": 5}


def test_the_dashboard_is_lakeview_json_over_known_datasets() -> None:
    """serialized_dashboard is stable JSON; every widget names a dataset that exists, fits the 6-column grid,
    and no dataset names a catalog (the Dashboard resource sets it)."""
    text = tables.serialized_dashboard()
    assert text == tables.serialized_dashboard() and json.loads(text) == tables.dashboard()
    board = tables.dashboard()
    names = {d["name"] for d in board["datasets"]}
    for item in board["pages"][0]["layout"]:
        widget, position = item["widget"], item["position"]
        assert widget["queries"][0]["query"]["datasetName"] in names
        assert position["x"] >= 0 and position["x"] + position["width"] <= 6
        assert widget["spec"]["widgetType"] in ("table", "bar", "line")
    assert not any("main." in "".join(d["queryLines"]) for d in board["datasets"])


def test_view_and_table_names_are_checked_before_they_reach_sql() -> None:
    """Table names are three plain identifiers, quoted; anything else is refused before SQL is built."""
    assert tables.quote("main.agents.otel_spans") == "`main`.`agents`.`otel_spans`"
    for bad in ("main.agents", "main.agents.x`; DROP TABLE y", "a.b.c.d", "main.agents.x y"):
        with pytest.raises(ValueError, match="not a table's full name"):
            tables.view_sql("traces", bad)
    with pytest.raises(ValueError, match="needs the metrics table"):
        tables.view_sql("metrics", "main.agents.otel_spans")
