"""The app as Databricks Apps runs it: `python -m agent_jobs.serving` in a subprocess under uvicorn, configured
only by the environment Databricks Apps would give it (DATABRICKS_HOST and the app's credentials, PG* and
LAKEBASE_ENDPOINT from the postgres resource, the endpoint names and the prompts volume through valueFrom),
against the workspace stand-in and a real Postgres, driven by httpx and by the real MCP and A2A clients.
One server for the module."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import pytest
from a2a.client import ClientConfig, create_client
from a2a.helpers import get_data_parts, new_data_part
from a2a.types.a2a_pb2 import Message, Role, SendMessageRequest, TaskState
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from serving_pg import Database, cluster
from serving_standin import CHAT, EMBEDDINGS, TOKEN, WorkspaceStandIn
from serving_support import DIM, TX, USER, run

# The real PostgreSQL: one xdist worker runs this group (--dist loadgroup), so one server starts.
pytestmark = pytest.mark.xdist_group("postgres")

VOLUME = "/Volumes/main/agents/prompts"
ENDPOINT = "projects/agents/branches/production/endpoints/primary"


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    standin: WorkspaceStandIn
    db: Database


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    pg = cluster()
    db = pg.new_database("serving_server")
    with WorkspaceStandIn(dim=DIM) as standin:
        standin.on_token = lambda token: pg.set_password(db.role, token)
        standin.files[f"{VOLUME}/base/fraud_detector.md"] = b"VOLUME BASE PROMPT: answer with the JSON assessment."
        port = _free_port()
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
        env.update({
            "DATABRICKS_HOST": standin.url, "DATABRICKS_TOKEN": TOKEN, "DATABRICKS_APP_PORT": str(port),
            "SERVING_BIND_HOST": "127.0.0.1", "SERVING_LLM_ENDPOINT": CHAT, "SERVING_EMBEDDINGS_ENDPOINT": EMBEDDINGS,
            "SERVING_EMBEDDING_DIM": str(DIM), "PGHOST": pg.socket_dir, "PGPORT": "5432", "PGDATABASE": db.name,
            "PGUSER": db.role, "LAKEBASE_ENDPOINT": ENDPOINT, "SERVING_PROMPTS_VOLUME": VOLUME,
        })  # fmt: skip
        process = subprocess.Popen([sys.executable, "-m", "agent_jobs.serving"], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"the app did not start:\n{process.communicate()[0]}")
            time.sleep(0.1)
        yield Server(url, process, standin, db)
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_health_shows_the_databricks_wiring(server: Server) -> None:
    """Started from the Databricks Apps environment alone: memory logged in with a Lakebase credential from
    the postgres API, the prompt came from the volume through the Files API."""
    body = httpx.get(f"{server.url}/health").json()
    assert body["status"] == "ok" and body["local_mode"] is False
    assert body["dependencies"]["memory"]["state"] == "ok"
    assert "volume /Volumes/main/agents/prompts" in body["dependencies"]["prompts"]["detail"]
    assert server.standin.calls("/api/2.0/postgres/credentials")[0]["body"] == {"endpoint": ENDPOINT}


def test_execute_over_http_with_and_without_the_forwarded_identity(server: Server) -> None:
    """The seed's curl through a real server: 200 with the forwarded headers, 401 without them (not in local
    mode); the app called the endpoints as itself (databricks-sdk's credentials), with the volume's prompt."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        ok = client.post("/api/execute", json={"agent_name": "fraud_detector", "data": TX}, headers=USER)
        refused = client.post("/api/execute", json={"agent_name": "fraud_detector", "data": TX})
    assert ok.status_code == 200 and ok.json()["result"]["decision"] == "review"
    assert ok.json()["result"]["prompt_version"].startswith("base-")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "UNAUTHENTICATED"
    chat = server.standin.calls(f"/serving-endpoints/{CHAT}/invocations")[-1]
    assert chat["authorization"] == f"Bearer {TOKEN}"
    assert chat["body"]["messages"][0]["content"].startswith("VOLUME BASE PROMPT")


def test_mcp_tools_through_the_real_client(server: Server) -> None:
    """mcp's streamable-HTTP client and ClientSession see a tool per agent and retrieve_memory; calling the
    agent returns its structured result, retrieval finds what it stored, data outside the tool's schema is a
    tool error, and a failing dependency is a tool error carrying the app's JSON error."""

    async def scenario() -> dict[str, Any]:
        async with (
            httpx2.AsyncClient(headers=USER, timeout=30) as http,
            streamable_http_client(f"{server.url}/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools = await session.list_tools()
            decided = await session.call_tool("fraud_detector", {"data": {**TX, "transaction_id": "mcp-1"}})
            found = await session.call_tool("retrieve_memory", {"query": "Electronics Store 5000", "agent_id": "fraud_detector", "top_k": 3})  # fmt: skip
            bad = await session.call_tool("fraud_detector", {"data": {"amount": -1}})
            server.standin.llm_status = 503
            try:
                failing = await session.call_tool("fraud_detector", {"data": TX})
            finally:
                server.standin.llm_status = None
            return {"tools": tools, "decided": decided, "found": found, "bad": bad, "failing": failing}

    result = run(scenario())
    tools = {t.name: t for t in result["tools"].tools}
    assert set(tools) == {"fraud_detector", "retrieve_memory"}
    assert "amount" in json.dumps(tools["fraud_detector"].input_schema)
    decided = result["decided"]
    assert not decided.is_error and decided.structured_content["decision"] == "review"
    memories = result["found"].structured_content["memories"]
    assert memories and memories[0]["agent_id"] == "fraud_detector"
    assert any(m["metadata"].get("transaction_id") == "mcp-1" for m in memories)
    assert result["bad"].is_error and "amount" in result["bad"].content[0].text  # MCP checks the input schema
    assert result["failing"].is_error
    text = result["failing"].content[0].text  # mcp prefixes "Error executing tool <name>: "
    error = json.loads(text[text.index("{") :])["error"]
    assert error["code"] == "UNAVAILABLE" and "the llm endpoint 'chat-llm' is overloaded" in error["message"]


def test_mcp_without_identity_is_refused(server: Server) -> None:
    """The MCP endpoint is behind the same identity check as the API."""
    response = httpx.post(f"{server.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                          headers={"Accept": "application/json, text/event-stream"})  # fmt: skip
    assert response.status_code == 401 and response.json()["error"]["code"] == "UNAUTHENTICATED"


def test_a2a_card_and_message_through_the_real_client(server: Server) -> None:
    """a2a-sdk's client resolves the card under /a2a (a skill per agent), sends a message with a data part
    naming the agent, and gets the result as a data part; an unknown agent is a rejected task carrying the
    app's JSON error."""

    async def scenario() -> tuple[list[Any], list[Any]]:
        async with httpx.AsyncClient(headers=USER, timeout=30) as http:
            client = await create_client(f"{server.url}/a2a", client_config=ClientConfig(httpx_client=http, streaming=False))  # fmt: skip
            message = Message(message_id="m-1", role=Role.ROLE_USER,
                              parts=[new_data_part({"agent_name": "fraud_detector", "data": {**TX, "transaction_id": "a2a-1"}})])  # fmt: skip
            events = [e async for e in client.send_message(SendMessageRequest(message=message))]
            bad = Message(message_id="m-2", role=Role.ROLE_USER, parts=[new_data_part({"agent_name": "nobody", "data": {}})])  # fmt: skip
            rejected = [e async for e in client.send_message(SendMessageRequest(message=bad))]
            await client.close()
            return events, rejected

    card_json = httpx.get(f"{server.url}/a2a/.well-known/agent-card.json", headers=USER).json()
    assert [s["id"] for s in card_json["skills"]] == ["fraud_detector"]
    assert card_json["supportedInterfaces"][0]["url"] == f"{server.url}/a2a/"
    events, rejected = run(scenario())
    messages = [e.message for e in events if e.HasField("message")]
    assert len(messages) == 1
    data = get_data_parts(messages[0].parts)[0]
    assert data["agent_name"] == "fraud_detector" and data["result"]["decision"] == "review"
    assert data["result"]["transaction_id"] == "a2a-1"
    tasks = [e.task for e in rejected if e.HasField("task")]
    assert len(tasks) == 1 and tasks[0].status.state == TaskState.TASK_STATE_REJECTED
    error = get_data_parts(tasks[0].status.message.parts)[0]["error"]
    assert error["code"] == "UNKNOWN_AGENT" and error["message"] == "no agent named 'nobody'"


def test_sigterm_stops_the_app_cleanly(server: Server) -> None:
    """Databricks Apps stops an app with SIGTERM: the app shuts down (its pool closed), without a traceback;
    uvicorn then ends by the same signal, as it does after a graceful shutdown. (Last in this module: it stops
    the module's server.)"""
    server.process.send_signal(signal.SIGTERM)
    output, _ = server.process.communicate(timeout=20)
    assert server.process.returncode in (0, -signal.SIGTERM), output
    assert "memory: pool closed" in output and "Application shutdown complete" in output
    assert "Traceback" not in output
    assert TOKEN not in output and all(token not in output for token in server.standin.tokens)
