"""The serving app in-process (httpx over ASGI, its lifespan running) against the workspace stand-in and a real
PostgreSQL with pgvector: the seed's request, every error status, health, identity, prompts and spans."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel
from serving_pg import Database, cluster
from serving_standin import CHAT, EMBEDDINGS, TOKEN, WorkspaceStandIn
from serving_support import TX, USER, run, serving, settings_for

from agent_jobs.serving import telemetry
from agent_jobs.serving.agents import Agent, AgentContext, discover
from agent_jobs.serving.app import build_services

# The real PostgreSQL: one xdist worker runs this group (--dist loadgroup), so one server starts.
pytestmark = pytest.mark.xdist_group("postgres")


@pytest.fixture(scope="module")
def db() -> Database:
    return cluster().new_database("serving_app")


@pytest.fixture(scope="module")
def workspace() -> Iterator[WorkspaceStandIn]:
    with WorkspaceStandIn(dim=64) as server:
        yield server


@pytest.fixture
def standin(workspace: WorkspaceStandIn) -> WorkspaceStandIn:
    workspace.reset()
    return workspace


def execute(data: dict[str, Any] | None = None, agent: str = "fraud_detector") -> dict[str, Any]:
    return {"agent_name": agent, "data": data if data is not None else TX}


def test_the_seeds_request_is_decided_with_similar_cases_and_remembered(
    standin: WorkspaceStandIn, db: Database
) -> None:
    """The seed's curl works end to end: the decision comes from the LLM, later requests see earlier ones as
    similar cases (pgvector retrieval), each transaction is embedded once, and memory records the user."""

    async def scenario() -> list[dict[str, Any]]:
        async with serving(settings_for(standin, db)) as (client, services):
            answers = []
            for i, amount in enumerate((5000, 5100, 20)):
                tx = {**TX, "transaction_id": f"txn_{i}", "amount": amount}
                answers.append((await client.post("/api/execute", json=execute(tx), headers=USER)).json())
            rows = await services.memory.retrieve("Electronics Store", "fraud_detector", 10)
            answers.append({"created_by": sorted({r.created_by for r in rows}), "count": len(rows)})
            return answers

    first, second, third, stored = run(scenario())
    assert first["result"]["decision"] == "review" and first["result"]["similar_cases"] == []
    assert third["result"]["decision"] == "approve"
    assert [c["memory_id"] for c in second["result"]["similar_cases"]] == [first["result"]["memory_id"]]
    assert second["result"]["similar_cases"][0]["similarity"] > 0.5
    assert first["result"]["reasons"] and first["result"]["prompt_version"].startswith("packaged-")
    assert stored == {"created_by": ["ana@example.com"], "count": 3}
    embedded = [c["body"]["input"] for c in standin.calls(f"/serving-endpoints/{EMBEDDINGS}/")]
    assert sum(1 for texts in embedded if texts[0].startswith("transaction ")) == 3  # once per transaction
    chat = standin.calls(f"/serving-endpoints/{CHAT}/")[1]["body"]
    assert chat["messages"][0]["content"] == discover()["fraud_detector"].packaged_prompt()
    question = json.loads(chat["messages"][1]["content"])
    assert question["transaction"]["transaction_id"] == "txn_1" and len(question["similar_cases"]) == 1


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (execute(), {}, 401, "UNAUTHENTICATED"),
        (execute(), {"X-Forwarded-User": "x" * 600}, 401, "UNAUTHENTICATED"),
        (execute(agent="no_such_agent"), USER, 404, "UNKNOWN_AGENT"),
        (b"", USER, 422, "INVALID_REQUEST"),
        (b"{not json", USER, 422, "INVALID_REQUEST"),
        (b'{"agent_name": "fraud_detector", "data": {"amount": NaN}}', USER, 422, "INVALID_REQUEST"),
        (b'{"agent_name": "fraud_detector", "data": {"amount": Infinity}}', USER, 422, "INVALID_REQUEST"),
        (
            b'{"agent_name": "fraud_detector", "data": ' + b'{"a": ' * 40 + b"1" + b"}" * 41,
            USER,
            422,
            "INVALID_REQUEST",
        ),
        (b"[" * 100_000 + b"]" * 100_000, USER, 413, "PAYLOAD_TOO_LARGE"),
        (b"[" * 1500 + b"]" * 1500, USER, 422, "INVALID_REQUEST"),
        (execute({**TX, "merchant": "Shop\u0000"}), USER, 422, "INVALID_REQUEST"),
        ({"agent_name": "fraud_detector"}, USER, 422, "INVALID_REQUEST"),
        ({"agent_name": "Fraud Detector!", "data": {}}, USER, 422, "INVALID_REQUEST"),
        ({"agent_name": "fraud_detector", "data": [1, 2]}, USER, 422, "INVALID_REQUEST"),
        ({**execute(), "extra": 1}, USER, 422, "INVALID_REQUEST"),
        (execute({**TX, "amount": -5}), USER, 422, "INVALID_REQUEST"),
        (execute({**TX, "amount": "5000"}), USER, 422, "INVALID_REQUEST"),
        (execute({"amount": 5}), USER, 422, "INVALID_REQUEST"),
        (b"x" * 5000, USER, 413, "PAYLOAD_TOO_LARGE"),
    ],
    ids=[
        "no-identity",
        "malformed-identity",
        "unknown-agent",
        "empty",
        "not-json",
        "nan",
        "infinity",
        "too-deep",
        "huge",
        "deep-brackets",
        "control-character",
        "no-data",
        "bad-agent-name",
        "data-not-object",
        "extra-key",
        "negative-amount",
        "amount-as-string",
        "missing-fields",
        "over-body-limit",
    ],
)
def test_bad_requests_get_their_status_and_a_json_error(
    standin: WorkspaceStandIn, db: Database, body: Any, headers: dict[str, str], status: int, code: str
) -> None:
    """Each client mistake has its own status and a JSON error body with a request id; nothing reaches the
    LLM, and no traceback or echo of a huge input comes back."""

    async def scenario() -> Any:
        async with serving(settings_for(standin, db, SERVING_MAX_BODY_BYTES="4096")) as (client, _):
            if isinstance(body, bytes):
                return await client.post("/api/execute", content=body, headers={**headers, "Content-Type": "application/json"})  # fmt: skip
            return await client.post("/api/execute", json=body, headers=headers)

    response = run(scenario())
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and error["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text and len(response.text) < 4000
    assert standin.calls(f"/serving-endpoints/{CHAT}/") == []
    if code == "UNKNOWN_AGENT":
        assert error["details"] == {"agents": ["fraud_detector"]}


def test_unknown_routes_and_methods_are_json_too(standin: WorkspaceStandIn, db: Database) -> None:
    """Errors the framework raises itself (no route, wrong method) keep the app's error shape."""

    async def scenario() -> tuple[Any, Any]:
        async with serving(settings_for(standin, db)) as (client, _):
            return await client.get("/nowhere", headers=USER), await client.get("/api/execute", headers=USER)

    missing, wrong_method = run(scenario())
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "NOT_FOUND")
    assert (wrong_method.status_code, wrong_method.json()["error"]["code"]) == (405, "METHOD_NOT_ALLOWED")


@pytest.mark.parametrize(
    ("setup", "status", "dependency_message"),
    [
        ({"llm_status": 500}, 502, "the llm endpoint 'chat-llm' answered 500"),
        ({"llm_status": 400}, 502, "answered 400"),
        ({"llm_status": 429}, 503, "overloaded"),
        ({"llm_status": 503}, 503, "overloaded"),
        ({"llm_hang_s": 1.0}, 503, "did not answer within 0.3 s"),
        ({"chat_answer": lambda _: "I would approve it."}, 502, "no JSON object"),
        ({"chat_answer": lambda _: '{"decision": "maybe", "risk_score": 2, "reasons": []}'}, 502, "not the assessment"),
        ({"embeddings_status": 500}, 502, "the embeddings endpoint 'embed-model' answered 500"),
    ],
    ids=["llm-500", "llm-400", "llm-429", "llm-503", "llm-timeout", "llm-prose", "llm-wrong-json", "embeddings-500"],
)
def test_endpoint_failures_are_502_or_503_and_show_in_health(
    standin: WorkspaceStandIn, db: Database, setup: dict[str, Any], status: int, dependency_message: str
) -> None:
    """An endpoint that errs or answers unusably is 502, one that times out or is overloaded 503, both with a
    JSON error saying which endpoint; /health turns 503 (for a failing endpoint, not for an answer the agent
    cannot use) until a call succeeds again."""
    for name, value in setup.items():
        setattr(standin, name, value)

    async def scenario() -> tuple[Any, Any, Any, Any]:
        async with serving(settings_for(standin, db, SERVING_LLM_TIMEOUT_S="0.3")) as (client, _):
            failed = await client.post("/api/execute", json=execute(), headers=USER)
            unhealthy = await client.get("/health")
            for name in setup:  # the endpoint recovers
                setattr(standin, name, None if name != "chat_answer" else WorkspaceStandIn().chat_answer)
            standin.llm_hang_s = 0.0
            ok = await client.post("/api/execute", json=execute(), headers=USER)
            return failed, unhealthy, ok, await client.get("/health")

    failed, unhealthy, ok, healthy = run(scenario())
    assert failed.status_code == status, failed.text
    assert dependency_message in failed.json()["error"]["message"]
    assert failed.json()["error"]["code"] == ("UPSTREAM_ERROR" if status == 502 else "UNAVAILABLE")
    if "chat_answer" in setup:  # the endpoint works; the answer broke the agent's contract: health stays 200
        assert unhealthy.status_code == 200
    else:
        assert unhealthy.status_code == 503 and unhealthy.json()["status"] == "down"
    assert ok.status_code == 200 and healthy.status_code == 200


def test_health_reports_each_dependency(standin: WorkspaceStandIn, db: Database) -> None:
    """/health needs no identity and says the state of memory, both endpoints and the prompts."""

    async def scenario() -> Any:
        async with serving(settings_for(standin, db)) as (client, _):
            await client.post("/api/execute", json=execute(), headers=USER)
            return await client.get("/health")

    response = run(scenario())
    body = response.json()
    assert response.status_code == 200 and body["status"] == "ok" and body["agents"] == ["fraud_detector"]
    deps = body["dependencies"]
    assert {k: (v["state"], v["required"]) for k, v in deps.items()} == {
        "memory": ("ok", True), "llm": ("ok", True), "embeddings": ("ok", True), "prompts": ("ok", False)}  # fmt: skip
    assert deps["llm"]["endpoint"] == CHAT


def test_without_databricks_host_the_sdk_profile_names_the_workspace(standin: WorkspaceStandIn, db: Database) -> None:
    """Run locally with only a databricks-sdk profile (no DATABRICKS_HOST, no endpoints URL): the endpoints
    are under the profile's workspace, called with its credentials."""
    from databricks.sdk import WorkspaceClient

    settings = settings_for(standin, db, SERVING_ENDPOINTS_URL="")
    assert settings.endpoints_base is None
    agents = discover()
    services = build_services(settings, agents, workspace=WorkspaceClient(host=standin.url, token=TOKEN))

    async def scenario() -> Any:
        async with serving(settings, services) as (client, _):
            return await client.post("/api/execute", json=execute(), headers=USER)

    assert run(scenario()).status_code == 200
    assert standin.calls(f"/serving-endpoints/{CHAT}/")[0]["authorization"] == f"Bearer {TOKEN}"


def test_memory_down_at_start_is_503_not_a_crash(standin: WorkspaceStandIn, tmp_path: Path) -> None:
    """With the database unreachable the app still starts: /health and /api/execute answer 503 with the
    reason, instead of a process that will not start or a 500."""
    unreachable = Database("gone", "gone", f"host={tmp_path} dbname=gone user=gone", "pw")

    async def scenario() -> tuple[Any, Any]:
        async with serving(settings_for(standin, unreachable)) as (client, _):
            return await client.get("/health"), await client.post("/api/execute", json=execute(), headers=USER)

    health, failed = run(scenario())
    assert health.status_code == 503 and health.json()["dependencies"]["memory"]["state"] == "down"
    assert failed.status_code == 503 and failed.json()["error"]["code"] == "UNAVAILABLE"
    assert "memory is not available" in failed.json()["error"]["message"]
    assert "pw" not in failed.text


def test_memory_failing_while_serving_is_503_and_health_says_so(standin: WorkspaceStandIn, db: Database) -> None:
    """When the database stops accepting the app mid-run (sessions dropped, the login refused), requests are
    503 with a JSON error naming memory and no credentials, /health turns 503, and no LLM call is made."""
    pg = cluster()
    own = pg.new_role(db, "serving_app_down")

    async def scenario() -> tuple[Any, Any, Any, int]:
        async with serving(settings_for(standin, own, SERVING_PG_TIMEOUT_S="0.5")) as (client, _):
            ok = await client.post("/api/execute", json=execute(), headers=USER)
            chats = len(standin.calls(f"/serving-endpoints/{CHAT}/"))
            pg.set_password(own.role, "rotated-away")
            pg.terminate(own.role)
            failed = await client.post("/api/execute", json=execute(), headers=USER)
            health = await client.get("/health")
            return ok, failed, health, len(standin.calls(f"/serving-endpoints/{CHAT}/")) - chats

    ok, failed, health, chats_after = run(scenario())
    assert ok.status_code == 200
    assert failed.status_code == 503 and failed.json()["error"]["code"] == "UNAVAILABLE"
    assert failed.json()["error"]["message"].startswith("memory: ")
    assert own.password not in failed.text and "rotated-away" not in failed.text
    assert health.status_code == 503 and health.json()["dependencies"]["memory"]["state"] == "down"
    assert chats_after == 0  # retrieval failed before the LLM was asked


class _Broken(BaseModel):
    pass


class BrokenAgent(Agent):
    name = "broken"
    description = "raises a bug"
    input_model = _Broken

    def packaged_prompt(self) -> str:
        return "none"

    async def run(self, data: Any, ctx: AgentContext) -> dict[str, Any]:
        raise RuntimeError("secret internals at /srv/app.py line 3")


def test_a_bug_is_500_without_its_traceback(standin: WorkspaceStandIn, db: Database, caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    """An agent's bug is answered 500 INTERNAL with the request id only; the traceback goes to the log."""
    agents = {**discover(), "broken": BrokenAgent()}

    async def scenario() -> Any:
        settings = settings_for(standin, db)
        from agent_jobs.serving.app import create_app

        services = build_services(settings, agents)
        app = create_app(settings, services=services, agents=agents)
        import httpx

        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://app.local") as client:
                return await client.post("/api/execute", json={"agent_name": "broken", "data": {}}, headers=USER)

    response = run(scenario())
    assert response.status_code == 500 and response.json()["error"]["code"] == "INTERNAL"
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert any("secret internals" in r.getMessage() or (r.exc_info and "secret internals" in str(r.exc_info[1]))
               for r in caplog.records)  # fmt: skip


def test_local_mode_serves_without_identity_headers(standin: WorkspaceStandIn, db: Database, caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    """--local serves requests without forwarded headers as the fixed local user, and says so loudly."""

    async def scenario() -> tuple[Any, list[str | None]]:
        async with serving(settings_for(standin, db, cli={"local": True})) as (client, services):
            response = await client.post("/api/execute", json=execute(), headers={})
            rows = await services.memory.retrieve("Electronics", "fraud_detector", 50)
            return response, [r.created_by for r in rows]

    response, authors = run(scenario())
    assert response.status_code == 200
    assert "local-user@localhost" in authors
    assert any(r.levelname == "WARNING" and "LOCAL MODE" in r.getMessage() for r in caplog.records)


def test_prompts_dir_optimised_prompt_wins_over_the_base(standin: WorkspaceStandIn, db: Database, tmp_path: Path) -> None:  # fmt: skip
    """With base/ and optimised/ both present, the LLM gets the optimised text and the result names its
    version; /api/agents shows the same version."""
    (tmp_path / "base").mkdir()
    (tmp_path / "optimised").mkdir()
    (tmp_path / "base" / "fraud_detector.md").write_text("BASE PROMPT")
    (tmp_path / "optimised" / "fraud_detector.json").write_text(json.dumps({"version": "dspy-2026-01-02", "text": "OPTIMISED PROMPT"}))  # fmt: skip

    async def scenario() -> tuple[Any, Any]:
        async with serving(settings_for(standin, db, cli={"prompts_dir": str(tmp_path)})) as (client, _):
            return (await client.post("/api/execute", json=execute(), headers=USER),
                    await client.get("/api/agents", headers=USER))  # fmt: skip

    response, agents = run(scenario())
    assert response.json()["result"]["prompt_version"] == "dspy-2026-01-02"
    assert standin.calls(f"/serving-endpoints/{CHAT}/")[0]["body"]["messages"][0]["content"] == "OPTIMISED PROMPT"
    listed = agents.json()["agents"][0]
    assert listed["prompt_version"] == "dspy-2026-01-02" and "amount" in listed["input_schema"]["properties"]


def test_spans_cover_the_request_the_agent_and_its_calls(standin: WorkspaceStandIn, db: Database) -> None:
    """One SERVER span per request, an agent.execute child with agent, status and duration, and memory,
    embeddings and LLM spans under it; a failure marks agent.status error; no span holds the user."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.use_provider(provider)
    try:

        async def scenario() -> None:
            async with serving(settings_for(standin, db)) as (client, _):
                await client.post("/api/execute", json=execute(), headers={**USER, "X-Request-Id": "req-1"})
                standin.llm_status = 500
                await client.post("/api/execute", json=execute(), headers=USER)

        run(scenario())
    finally:
        telemetry.use_provider(None)
    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    requests = [s for s in spans if s.name == "HTTP POST /api/execute"]
    agents = [s for s in spans if s.name == "agent.execute"]
    assert len(requests) == 2 and len(agents) == 2
    assert requests[0].attributes["http.response.status_code"] == 200
    assert requests[0].attributes["app.request_id"] == "req-1"
    assert requests[1].attributes["http.response.status_code"] == 502
    ok, failed = agents
    assert ok.attributes["agent.name"] == "fraud_detector" and ok.attributes["agent.status"] == "ok"
    assert ok.attributes["agent.transport"] == "api" and ok.attributes["agent.duration_ms"] > 0
    assert ok.parent is not None and ok.parent.span_id == requests[0].context.span_id
    assert failed.attributes["agent.status"] == "error" and failed.attributes["error.type"] == "UPSTREAM_ERROR"
    children = sorted(s.name for s in spans if s.parent is not None and s.parent.span_id == ok.context.span_id)
    assert children == ["embeddings.embed", "llm.chat", "memory.retrieve", "memory.store"]
    llm = next(s for s in spans if s.name == "llm.chat" and by_id[s.parent.span_id] is ok)  # type: ignore[union-attr]
    assert llm.attributes["gen_ai.request.model"] == CHAT and llm.attributes["gen_ai.usage.input_tokens"] == 100
    values = " ".join(str(v) for s in spans for v in (s.attributes or {}).values())
    assert "ana@example.com" not in values and "4567" not in values and "Electronics" not in values
