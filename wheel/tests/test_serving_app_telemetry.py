"""The app's telemetry wiring (seed 001's OTEL -> Zerobus): `python -m agent_jobs.serving` started with the
TELEMETRY_* variables the program puts in app.yaml exports its spans and metrics to Zerobus Ingest (the
workspace stand-in's OTLP/HTTP receiver), with the table header per signal and a bearer token it got for the
app's service principal; it flushes what is queued when Databricks Apps stops it; a bad TELEMETRY_* value stops
it before it serves, exit status 2."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from serving_pg import Database, cluster
from serving_standin import CHAT, EMBEDDINGS, TOKEN, WorkspaceStandIn
from serving_support import DIM, TX, USER

from agent_jobs.serving import cli

SPANS = "main.agents.agent_otel_spans"
METRICS = "main.agents.agent_otel_metrics"
CLIENT_ID = "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
CLIENT_SECRET = "app-sp-secret-value"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(standin: WorkspaceStandIn, db: Database, **telemetry: str) -> tuple[str, subprocess.Popen[str]]:
    """The app as Databricks Apps runs it: databricks-sdk as a token (DATABRICKS_AUTH_TYPE=pat), the app's
    service principal's client credentials beside it (Apps sets them; the telemetry export uses them)."""
    port = _free_port()
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR", "PYTHONPATH") if k in os.environ}
    env.update({
        "DATABRICKS_HOST": standin.url, "DATABRICKS_TOKEN": TOKEN, "DATABRICKS_AUTH_TYPE": "pat",
        "DATABRICKS_CLIENT_ID": CLIENT_ID, "DATABRICKS_CLIENT_SECRET": CLIENT_SECRET,
        "DATABRICKS_APP_NAME": "agent-serving-test", "DATABRICKS_APP_PORT": str(port), "SERVING_BIND_HOST": "127.0.0.1",
        "SERVING_LLM_ENDPOINT": CHAT, "SERVING_EMBEDDINGS_ENDPOINT": EMBEDDINGS, "SERVING_EMBEDDING_DIM": str(DIM),
        "SERVING_PG_DSN": db.dsn,
        "TELEMETRY_ENABLED": "true", "TELEMETRY_ENDPOINT": standin.url, "TELEMETRY_SPANS_TABLE": SPANS,
        "TELEMETRY_METRICS_TABLE": METRICS, "TELEMETRY_SAMPLE_RATE": "1", "TELEMETRY_WORKSPACE_ID": "1234567890123456",
        **telemetry,
    })  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "agent_jobs.serving"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return url, process
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the app did not start:\n{process.communicate()[0]}")
        time.sleep(0.1)


def wait_for(predicate: Any, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


@pytest.fixture(scope="module")
def standin() -> Iterator[WorkspaceStandIn]:
    with WorkspaceStandIn(dim=DIM) as s:
        yield s


def stop(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[0]


def test_spans_and_metrics_reach_zerobus_with_the_table_header_and_the_apps_token(standin: WorkspaceStandIn) -> None:
    """Each request's spans (the request, agent.execute, its LLM and memory calls) and the derived metrics arrive
    at Zerobus' OTLP paths, each with its table's header, authorised by a client-credentials token of the app's
    service principal; the secret never shows in the app's output."""
    standin.reset()
    db = cluster().new_database("telemetry_wiring")
    url, process = start(standin, db, TELEMETRY_BATCH_INTERVAL_S="0.2", TELEMETRY_METRICS_INTERVAL_S="0.3")
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            for _ in range(3):
                response = client.post("/api/execute", json={"agent_name": "fraud_detector", "data": TX}, headers=USER)
                assert response.status_code == 200
        exported = wait_for(lambda: sum(e["items"].count("agent.execute") for e in standin.otlp) >= 3)
        exported = exported and wait_for(lambda: any(e["path"] == "/v1/metrics" for e in standin.otlp))
    finally:
        output = stop(process)
    assert exported, (output, standin.otlp_counts, [r["path"] for r in standin.requests])
    traces = [e for e in standin.otlp if e["path"] == "/v1/traces"]
    assert {e["table"] for e in traces} == {SPANS}
    assert {e["table"] for e in standin.otlp if e["path"] == "/v1/metrics"} == {METRICS}
    names = {name for e in traces for name in e["items"]}
    assert {"HTTP POST /api/execute", "agent.execute", "llm.chat", "memory.retrieve"} <= names
    (token_request, *_) = standin.calls("/oidc/v1/token")
    assert token_request["body"]["grant_type"] == "client_credentials" and token_request["body"]["scope"] == "all-apis"
    assert token_request["authorization"].startswith("Basic ") and standin.otlp_counts["refused"] == 0
    assert CLIENT_SECRET not in output


def test_queued_spans_are_flushed_when_the_app_is_stopped(standin: WorkspaceStandIn) -> None:
    """With a batch interval far longer than the run, the spans still reach Zerobus: SIGTERM (how Databricks Apps
    stops an app) flushes the queue within a bound, and the app exits 0."""
    standin.reset()
    db = cluster().new_database("telemetry_flush")
    url, process = start(standin, db, TELEMETRY_BATCH_INTERVAL_S="3600", TELEMETRY_METRICS_INTERVAL_S="3600")
    try:
        response = httpx.post(f"{url}/api/execute", json={"agent_name": "fraud_detector", "data": TX}, headers=USER,
                              timeout=30)  # fmt: skip
        assert response.status_code == 200
        time.sleep(0.5)
        assert standin.otlp == []  # nothing sent yet: the batch waits for its interval or its size
    finally:
        output = stop(process)
    assert process.returncode == 0, output
    assert any("agent.execute" in e["items"] for e in standin.otlp if e["table"] == SPANS)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("TELEMETRY_SAMPLE_RATE", "nan"), ("TELEMETRY_ENDPOINT", "http://zerobus.example.com"),
     ("TELEMETRY_SPANS_TABLE", "spans")],
)  # fmt: skip
def test_a_bad_telemetry_setting_stops_the_app_before_it_serves(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str
) -> None:
    """Like every other setting: one line naming the variable, exit status 2, nothing started."""
    for key in [k for k in os.environ if k.startswith(("TELEMETRY_", "SERVING_", "DATABRICKS_"))]:
        monkeypatch.delenv(key)
    good = {"SERVING_LOCAL": "true", "SERVING_ENDPOINTS_URL": "http://127.0.0.1:9/serving-endpoints",
            "SERVING_LLM_ENDPOINT": CHAT, "SERVING_EMBEDDINGS_ENDPOINT": EMBEDDINGS,
            "SERVING_PG_DSN": "postgresql://127.0.0.1:9/none", "TELEMETRY_ENABLED": "true",
            "TELEMETRY_ENDPOINT": "https://1.zerobus.us-west-2.cloud.databricks.com", "TELEMETRY_SPANS_TABLE": SPANS,
            "DATABRICKS_HOST": "https://dbc-1.cloud.databricks.com", "DATABRICKS_CLIENT_ID": CLIENT_ID,
            "DATABRICKS_CLIENT_SECRET": CLIENT_SECRET}  # fmt: skip
    for key, text in {**good, variable: value}.items():
        monkeypatch.setenv(key, text)
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"serving-app: {variable}") and err.count("\n") == 1, err
    assert CLIENT_SECRET not in err


def test_telemetry_without_its_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The `telemetry` extra is installed beside `serving` only where the app exports: asked to export without
    it, the app says what to install (exit status 2); without TELEMETRY_ENABLED it never imports it."""
    monkeypatch.setitem(sys.modules, "agent_jobs.telemetry_otel.pipeline", None)  # importing it raises ImportError
    assert cli.start_telemetry({}) is None
    with pytest.raises(cli.TelemetryConfigError, match=r"pip install 'agent_jobs\[serving,telemetry\]'"):
        cli.start_telemetry({"TELEMETRY_ENABLED": "true"})
