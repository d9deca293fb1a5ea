"""The telemetry export (agent_jobs.telemetry_otel): spans and metrics from the real OpenTelemetry SDK and its
OTLP/HTTP exporters, received by a local stand-in of Zerobus Ingest and the workspace's token endpoint that
decodes the protobuf bodies. Short intervals are injected; no test sleeps for a back-off."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from otlp_receiver import Receiver

from agent_jobs.telemetry_otel import install
from agent_jobs.telemetry_otel.auth import ZerobusToken
from agent_jobs.telemetry_otel.pipeline import TelemetryHandle
from agent_jobs.telemetry_otel.settings import TelemetrySettings, TelemetrySettingsError

SECRET = "dose-secret-value-1234"
SPANS, METRICS = "main.agents.otel_spans", "main.agents.otel_metrics"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


@pytest.fixture
def rx(receiver: Receiver) -> Receiver:
    receiver.reset()
    return receiver


def env(receiver: Any, **overrides: str) -> dict[str, str]:
    values = {
        "TELEMETRY_ENABLED": "true",
        "TELEMETRY_ENDPOINT": receiver.url,
        "TELEMETRY_WORKSPACE_ID": "1234567890123456",
        "TELEMETRY_SPANS_TABLE": SPANS,
        "TELEMETRY_METRICS_TABLE": METRICS,
        "TELEMETRY_BATCH_INTERVAL_S": "0.05",
        "TELEMETRY_METRICS_INTERVAL_S": "3600",
        "TELEMETRY_EXPORT_TIMEOUT_S": "2",
        "DATABRICKS_HOST": receiver.url,
        "DATABRICKS_CLIENT_ID": "sp-client-id",
        "DATABRICKS_CLIENT_SECRET": SECRET,
        "DATABRICKS_APP_NAME": "agent-serving-dev",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v != "<unset>"}


@pytest.fixture
def started() -> Iterator[list[TelemetryHandle]]:
    """Handles started by a test, shut down after it (their threads must not outlive the test)."""
    handles: list[TelemetryHandle] = []
    yield handles
    for handle in handles:
        handle.shutdown(timeout_s=2)


def start(handles: list[TelemetryHandle], receiver: Receiver, **overrides: Any) -> TelemetryHandle:
    handle = install(TelemetrySettings.from_env(env(receiver, **overrides)), **overrides.pop("_kwargs", {}))
    handles.append(handle)
    return handle


def execute(handle: TelemetryHandle, agent: str = "fraud_detector", *, error: bool = False) -> None:
    """What the serving app does per request: a SERVER span around an agent.execute span with children."""
    tracer = handle.tracer_provider.get_tracer("agent_jobs.serving")
    with (
        tracer.start_as_current_span("HTTP POST /api/execute", kind=trace.SpanKind.SERVER),
        tracer.start_as_current_span("agent.execute", attributes={"agent.name": agent}) as span,
    ):
        with tracer.start_as_current_span("llm.chat", kind=trace.SpanKind.CLIENT):
            pass
        span.set_attribute("agent.status", "error" if error else "ok")
        if error:
            span.set_status(Status(StatusCode.ERROR, "UPSTREAM_ERROR"))


def attributes(span: Any) -> dict[str, Any]:
    return {a.key: a.value.string_value or a.value.double_value or a.value.int_value for a in span.attributes}


# --- settings


def test_settings_defaults_follow_the_seed() -> None:
    """Off unless asked; when on, the seed's batching (10 s or 1000 events) and sample rate 1 are the defaults,
    and the service name is the app's name."""
    assert TelemetrySettings.from_env({}).enabled is False
    s = TelemetrySettings.from_env(
        {
            "TELEMETRY_ENABLED": "true",
            "TELEMETRY_ENDPOINT": "https://1234567890123456.zerobus.us-west-2.cloud.databricks.com",
            "TELEMETRY_SPANS_TABLE": SPANS,
            "DATABRICKS_HOST": "dbc-1.cloud.databricks.com",
            "DATABRICKS_CLIENT_ID": "id",
            "DATABRICKS_CLIENT_SECRET": SECRET,
            "DATABRICKS_APP_NAME": "agent-serving-prod",
        }
    )
    assert (s.batch_interval_s, s.batch_size, s.sample_rate, s.metrics_table) == (10.0, 1000, 1.0, None)
    assert s.host == "https://dbc-1.cloud.databricks.com"
    assert s.resolved_workspace_id == "1234567890123456"
    assert s.service_name == "agent-serving-prod"
    assert SECRET not in repr(s)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("TELEMETRY_SAMPLE_RATE", "1.5", "TELEMETRY_SAMPLE_RATE: '1.5' is not allowed"),
        ("TELEMETRY_SAMPLE_RATE", "nan", "TELEMETRY_SAMPLE_RATE: 'nan'"),
        ("TELEMETRY_SAMPLE_RATE", "inf", "TELEMETRY_SAMPLE_RATE: 'inf'"),
        ("TELEMETRY_SAMPLE_RATE", "a lot", "TELEMETRY_SAMPLE_RATE: 'a lot'"),
        ("TELEMETRY_BATCH_SIZE", "0", "TELEMETRY_BATCH_SIZE: '0'"),
        ("TELEMETRY_BATCH_SIZE", "1e9", "TELEMETRY_BATCH_SIZE"),
        (
            "TELEMETRY_QUEUE_SIZE",
            "10",
            "TELEMETRY_QUEUE_SIZE: '10' is not allowed (must be at least TELEMETRY_BATCH_SIZE)",
        ),
        ("TELEMETRY_BATCH_INTERVAL_S", "-1", "TELEMETRY_BATCH_INTERVAL_S: '-1'"),
        (
            "TELEMETRY_SPANS_TABLE",
            "main.agents",
            "TELEMETRY_SPANS_TABLE: 'main.agents' is not allowed (not a table's full name)",
        ),
        ("TELEMETRY_SPANS_TABLE", "main.agents.spans\n", "TELEMETRY_SPANS_TABLE"),
        ("TELEMETRY_SPANS_TABLE", "main.agents.x\x07y", "contains control characters"),
        ("TELEMETRY_SPANS_TABLE", "x" * 5000, "longer than 2048 characters"),
        ("TELEMETRY_ENDPOINT", "http://zerobus.example.com", "must be an https URL"),
        ("TELEMETRY_ENDPOINT", "https://u:p@host.example.com", "must be a plain URL"),
        ("TELEMETRY_ENABLED", "yes", "TELEMETRY_ENABLED: 'yes' is not allowed; allowed: true or false"),
        (
            "DATABRICKS_CLIENT_SECRET",
            "<unset>",
            "DATABRICKS_CLIENT_SECRET: unset (is required when TELEMETRY_ENABLED is true)",
        ),
        ("TELEMETRY_SPANS_TABLE", "<unset>", "TELEMETRY_SPANS_TABLE: unset"),
        ("TELEMETRY_WORKSPACE_ID", "12ab", "TELEMETRY_WORKSPACE_ID: '12ab'"),
        ("TELEMETRY_NOT_A_SETTING", "1", None),
    ],
)
def test_a_bad_setting_is_one_message_naming_the_variable(variable: str, value: str, expected: str | None) -> None:
    """Every invalid value is one TelemetrySettingsError that names the variable and what is allowed (the app
    exits 2 with it); hostile values (NaN, control characters, huge text) are refused the same way; the
    secret never appears. Unknown TELEMETRY_ variables are not ours to refuse."""
    values = env(_FakeReceiver(), **{variable: value})
    if expected is None:
        assert TelemetrySettings.from_env(values).enabled
        return
    with pytest.raises(TelemetrySettingsError) as caught:
        TelemetrySettings.from_env(values)
    message = str(caught.value)
    assert expected in message
    assert "allowed" in message and "\n" not in message
    assert SECRET not in message


class _FakeReceiver:
    url = "http://127.0.0.1:9"


# --- off: nothing at all


def test_telemetry_off_is_a_no_op(rx: Receiver, started: list[TelemetryHandle]) -> None:
    """With TELEMETRY_ENABLED unset the handle's provider records nothing and nothing is sent or fetched."""
    handle = install(TelemetrySettings.from_env({}))
    started.append(handle)
    execute(handle)
    assert not handle.enabled
    assert not handle.tracer_provider.get_tracer("x").start_span("s").is_recording()
    handle.shutdown()
    assert rx.exports == [] and rx.token_requests == []
    assert handle.counters.snapshot()["spans_queued"] == 0


# --- what is sent


def test_spans_and_metrics_reach_zerobus_with_table_header_and_a_scoped_token(
    rx: Receiver, started: list[TelemetryHandle]
) -> None:
    """Spans go to <endpoint>/v1/traces with x-databricks-zerobus-table-name = the spans table, metrics to
    /v1/metrics with the metrics table, both with a bearer token from client credentials (Basic client id and
    secret; scope all-apis; the Zerobus resource of the workspace; authorization_details for exactly the two
    tables: USE CATALOG, USE SCHEMA, SELECT + MODIFY). The agent metrics count executions by agent and status,
    as delta data points."""
    handle = start(started, rx)
    for agent, error in (("fraud_detector", False), ("fraud_detector", True), ("kyc_checker", False)):
        execute(handle, agent, error=error)
    assert handle.force_flush(timeout_s=5)

    spans = rx.spans()
    assert sorted(s.name for s in spans) == sorted(["HTTP POST /api/execute", "agent.execute", "llm.chat"] * 3)
    for export in rx.traces():
        assert export.headers["x-databricks-zerobus-table-name"] == SPANS
        assert export.headers["authorization"] == "Bearer tok-1"
        assert export.headers["content-type"] == "application/x-protobuf"
        resource = {a.key: a.value.string_value for a in export.body.resource_spans[0].resource.attributes}
        assert resource["service.name"] == "agent-serving-dev"
    failed = [s for s in spans if s.name == "agent.execute" and s.status.code == s.status.STATUS_CODE_ERROR]
    assert [attributes(s)["agent.name"] for s in failed] == ["fraud_detector"]

    (metrics_export,) = rx.metrics()
    assert metrics_export.headers["x-databricks-zerobus-table-name"] == METRICS
    assert metrics_export.headers["authorization"] == "Bearer tok-1"
    by_name = {m.name: m for rm in metrics_export.body.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    points = {
        (attributes(p)["agent.name"], attributes(p)["agent.status"]): p.count
        for p in by_name["agent.execution.duration"].histogram.data_points
    }
    assert points == {("fraud_detector", "ok"): 1, ("fraud_detector", "error"): 1, ("kyc_checker", "ok"): 1}
    assert by_name["agent.executions"].sum.aggregation_temporality == 1  # AGGREGATION_TEMPORALITY_DELTA
    assert "telemetry.spans_dropped" in by_name

    (request,) = rx.token_requests  # one token for both signals
    assert request["basic"] == f"sp-client-id:{SECRET}"
    form = request["form"]
    assert (form["grant_type"], form["scope"]) == ("client_credentials", "all-apis")
    assert form["resource"] == "api://databricks/workspaces/1234567890123456/zerobusDirectWriteApi"
    details = {
        (d["object_type"], d["object_full_path"]): d["privileges"] for d in json.loads(form["authorization_details"])
    }
    assert details == {
        ("CATALOG", "main"): ["USE CATALOG"],
        ("SCHEMA", "main.agents"): ["USE SCHEMA"],
        ("TABLE", SPANS): ["SELECT", "MODIFY"],
        ("TABLE", METRICS): ["SELECT", "MODIFY"],
    }
    counters = handle.counters.snapshot()
    assert (counters["spans_queued"], counters["spans_exported"], counters["spans_dropped"]) == (9, 9, 0)
    assert counters["pending"] == 0 and counters["metric_exports"] == 1


def test_the_token_is_renewed_before_it_expires_and_after_a_refusal(
    rx: Receiver, started: list[TelemetryHandle]
) -> None:
    """A token valid for 3600 s is reused until 300 s (the margin) before it expires, then renewed before the
    next export, never used expired; a token Zerobus refuses (401) is dropped and the next export gets a new one."""
    now = [1000.0]
    settings = TelemetrySettings.from_env(env(rx, TELEMETRY_METRICS_TABLE="", TELEMETRY_BATCH_INTERVAL_S="3600"))
    token = ZerobusToken(rx.url, "sp-client-id", SECRET, settings.tables, refresh_margin_s=300, clock=lambda: now[0])
    handle = install(settings, token=token)
    started.append(handle)

    def export_one() -> str:
        before = len(rx.traces())
        execute(handle)
        handle.force_flush(timeout_s=5)
        assert rx.wait_for(lambda: len(rx.traces()) > before or len(rx.refused) > 0)
        return rx.traces()[-1].headers["authorization"]

    assert export_one() == "Bearer tok-1"
    now[0] += 3299  # 301 s left: still inside the token's life minus the margin
    assert export_one() == "Bearer tok-1"
    now[0] += 2  # 299 s left: within the margin, renewed before use
    assert export_one() == "Bearer tok-2"
    assert len(rx.token_requests) == 2

    rx.revoked.add("tok-2")  # the workspace stops accepting it early
    execute(handle)
    handle.force_flush(timeout_s=5)
    assert rx.refused == ["tok-2"]
    assert export_one() == "Bearer tok-3"
    assert handle.counters.snapshot()["span_export_failures"] == 1


def test_batches_are_cut_by_size(rx: Receiver, started: list[TelemetryHandle]) -> None:
    """With batch size 5 and an hour between scheduled exports, 12 spans leave as two full batches of 5 right
    away (no flush, no waiting for the interval); the last 2 wait for the next export."""
    handle = start(started, rx, TELEMETRY_BATCH_SIZE="5", TELEMETRY_BATCH_INTERVAL_S="3600", TELEMETRY_METRICS_TABLE="")
    tracer = handle.tracer_provider.get_tracer("t")
    for i in range(12):
        tracer.start_span(f"s{i}").end()
    assert rx.wait_for(lambda: len(rx.traces()) == 2)
    time.sleep(0.1)  # would a third, partial batch go out early? (it must not)
    assert [len(e.spans) for e in rx.traces()] == [5, 5]
    handle.force_flush(timeout_s=5)
    assert [len(e.spans) for e in rx.traces()] == [5, 5, 2]


def test_batches_are_cut_by_time(rx: Receiver, started: list[TelemetryHandle]) -> None:
    """With the interval at 0.2 s and room for 1000, three spans leave together about 0.2 s after the first,
    without a flush."""
    handle = start(started, rx, TELEMETRY_BATCH_INTERVAL_S="0.2", TELEMETRY_METRICS_TABLE="")
    tracer = handle.tracer_provider.get_tracer("t")
    began = time.monotonic()
    for i in range(3):
        tracer.start_span(f"s{i}").end()
    assert rx.wait_for(lambda: len(rx.traces()) == 1)
    (export,) = rx.traces()
    assert len(export.spans) == 3
    assert 0.1 <= export.at - began < 2.0


@pytest.mark.parametrize(("rate", "low", "high"), [("0", 0, 0), ("1", 400, 400), ("0.5", 140, 260)])
def test_sampling_exports_the_share_of_traces_and_metrics_count_all(
    rx: Receiver, started: list[TelemetryHandle], rate: str, low: int, high: int
) -> None:
    """TELEMETRY_SAMPLE_RATE is the share of traces exported (whole traces: a trace's spans go together), while
    the metrics still count every execution (unsampled traces are recorded, not exported). 400 traces at 0.5:
    within 6 standard deviations of 200."""
    handle = start(started, rx, TELEMETRY_SAMPLE_RATE=rate, TELEMETRY_BATCH_SIZE="1000")
    for _ in range(400):
        execute(handle)
    handle.force_flush(timeout_s=10)
    agent_spans = [s for s in rx.spans() if s.name == "agent.execute"]
    assert low <= len(agent_spans) <= high
    exported_traces = {s.trace_id for s in rx.spans()}
    assert len(rx.spans()) == 3 * len(exported_traces)  # no trace exported in part
    (metrics_export,) = rx.metrics()
    counted = sum(
        p.as_int
        for rm in metrics_export.body.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "agent.executions"
        for p in m.sum.data_points
    )
    assert counted == 400


def test_a_failing_receiver_is_logged_and_counted_never_raised(
    rx: Receiver, started: list[TelemetryHandle], caplog: pytest.LogCaptureFixture
) -> None:
    """Zerobus answering 500: the request path is unaffected (no exception, span.end() fast), the failed
    batches are counted and logged (once a minute at most), and the secret is in no log line."""
    rx.mode = "fail"
    handle = start(started, rx, TELEMETRY_BATCH_SIZE="10", TELEMETRY_METRICS_TABLE="")
    caplog.set_level(logging.INFO)
    for _ in range(5):
        execute(handle)  # 15 spans
    handle.force_flush(timeout_s=5)
    counters = handle.counters.snapshot()
    assert counters["spans_failed"] == 15 and counters["spans_exported"] == 0
    assert counters["span_export_failures"] == 2
    warnings = [
        r.getMessage() for r in caplog.records if r.name == "agent_jobs.telemetry_otel" and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 1 and "failed" in warnings[0] and SPANS in warnings[0]
    assert all(SECRET not in r.getMessage() for r in caplog.records)


def test_a_hanging_receiver_never_slows_the_request_path(rx: Receiver, started: list[TelemetryHandle]) -> None:
    """Zerobus accepting the connection and never answering: span.end() still returns at once (the p99 of 600
    executions stays far below a millisecond budget of 5 ms), the queue stops at its bound and the surplus is
    dropped and counted (queued + dropped = all), and shutdown returns within its timeout."""
    rx.mode = "hang"
    handle = start(
        started, rx, TELEMETRY_BATCH_SIZE="20", TELEMETRY_QUEUE_SIZE="100",
        TELEMETRY_EXPORT_TIMEOUT_S="30", TELEMETRY_METRICS_TABLE="",
    )  # fmt: skip
    tracer = handle.tracer_provider.get_tracer("t")
    assert rx.wait_for(lambda: True)
    tracer.start_span("first").end()
    for _ in range(19):
        tracer.start_span("fill").end()  # the first batch of 20 goes out and hangs
    assert rx.wait_for(lambda: len(rx.traces()) == 1)
    durations = []
    for _ in range(600):
        span = tracer.start_span("agent.execute", attributes={"agent.name": "fraud_detector"})
        began = time.perf_counter()
        span.end()
        durations.append(time.perf_counter() - began)
    durations.sort()
    assert durations[int(len(durations) * 0.99)] < 0.005
    counters = handle.counters.snapshot()
    assert counters["spans_queued"] + counters["spans_dropped"] == 620
    assert counters["spans_dropped"] >= 600 - 100
    began = time.monotonic()
    handle.shutdown(timeout_s=1)
    assert time.monotonic() - began < 2.5
    rx.release()


def test_a_refused_token_request_fails_the_export_not_the_app(
    rx: Receiver, started: list[TelemetryHandle], caplog: pytest.LogCaptureFixture
) -> None:
    """The token endpoint refusing the client credentials: exports fail and are counted, nothing raises into
    the app, and neither the secret nor a token is logged."""
    rx.token_status = 401
    handle = start(started, rx, TELEMETRY_METRICS_TABLE="")
    caplog.set_level(logging.DEBUG)
    execute(handle)
    handle.force_flush(timeout_s=5)
    counters = handle.counters.snapshot()
    assert counters["spans_failed"] == 3 and counters["span_export_failures"] == 1
    assert rx.exports == []
    assert handle.token is not None and handle.token.failures == 1
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET not in text
    assert "invalid_client" in text  # the OAuth error, so an operator can act
