"""The agents over A2A (a2a-sdk 1.x, protocol 1.0), under `/a2a`:

- `GET /a2a/.well-known/agent-card.json`: one agent card for the app, a skill per registered agent, its
  JSON-RPC interface at `<app URL>/a2a/` (the URL from the request, as the platform's proxy forwarded it);
- `POST /a2a/`: a2a-sdk's JSON-RPC endpoint (`SendMessage`, `GetTask`, ...) with its default request handler
  and an in-memory task store.

A message names its agent and data like `/api/execute`'s body: a data part `{"agent_name", "data"}` (or a
text part holding that JSON). The answer is one agent message with a data part `{"agent_name", "result"}`.
An unknown agent or bad data is a task in state REJECTED, a failing dependency one in state FAILED, its
status message a data part holding the app's JSON error (`{"error": {"code", "message", ...}}`). The
caller's identity reaches the agent from the request middleware; the identity headers are not copied into
A2A's call state (they hold the user's token).
"""

from __future__ import annotations

import json
from typing import Any

from a2a.extensions.common import HTTP_EXTENSION_HEADER, get_requested_extensions
from a2a.helpers import get_data_parts, get_text_parts, new_data_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.context import ServerCallContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.server.routes import ServerCallContextBuilder, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore
from a2a.types.a2a_pb2 import AgentCapabilities, AgentCard, AgentInterface, AgentSkill, Task, TaskState, TaskStatus
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH, PROTOCOL_VERSION_1_0
from a2a.utils.errors import InternalError
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agent_jobs.serving.errors import InvalidRequest, ServingError
from agent_jobs.serving.execution import AgentRuntime
from agent_jobs.serving.identity import IDENTITY_HEADERS, LOCAL_IDENTITY, Identity

PREFIX = "/a2a"
CARD_PATH = PREFIX + AGENT_CARD_WELL_KNOWN_PATH


def _request_of(parts: Any) -> tuple[str, Any]:
    """(agent_name, data) from a message's parts."""
    candidates: list[Any] = list(get_data_parts(parts))
    for text in get_text_parts(parts):
        try:
            candidates.append(json.loads(text))
        except ValueError:
            continue
    for candidate in candidates:
        if isinstance(candidate, dict) and isinstance(candidate.get("agent_name"), str):
            return candidate["agent_name"], candidate.get("data")
    raise InvalidRequest('the message needs a data part {"agent_name": ..., "data": {...}}')


class AgentsExecutor(AgentExecutor):
    """Runs the agent a message names and answers with one message; a failure is a task in a final state."""

    def __init__(self, runtime: AgentRuntime) -> None:
        self.runtime = runtime

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        state = context.call_context.state
        request_id = state.get("request_id", "")
        try:
            if context.message is None:
                raise InvalidRequest("no message")
            name, data = _request_of(context.message.parts)
            identity = state.get("identity") or LOCAL_IDENTITY
            result = await self.runtime.execute(name, data, identity=identity, request_id=request_id, transport="a2a")
        except ServingError as exc:
            # The caller's mistake is a rejected task, a dependency's failure a failed one; both carry the app's
            # JSON error as a data part (raising would make a2a-sdk log a traceback for an expected outcome).
            final = TaskState.TASK_STATE_REJECTED if exc.status < 500 else TaskState.TASK_STATE_FAILED
            reply = new_data_message(exc.body(request_id), context_id=context.context_id, task_id=context.task_id)
            status = TaskStatus(state=final, message=reply)
            await event_queue.enqueue_event(Task(id=context.task_id, context_id=context.context_id, status=status))
            return
        answer = new_data_message({"agent_name": name, "result": result}, context_id=context.context_id)
        await event_queue.enqueue_event(answer)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise InternalError(message="executions are not cancellable: they finish within one request")


_PRIVATE_HEADERS = frozenset({*IDENTITY_HEADERS, "authorization", "cookie"})


class IdentityContextBuilder(ServerCallContextBuilder):
    """A2A call state: the identity and request id the middleware set, and the request's headers (a2a-sdk
    reads A2A-Version and extensions there) without the identity, token and cookie headers."""

    def build(self, request: Request) -> ServerCallContext:
        state: dict[str, Any] = {
            "identity": getattr(request.state, "identity", None),
            "request_id": getattr(request.state, "request_id", ""),
            "headers": {k: v for k, v in request.headers.items() if k.lower() not in _PRIVATE_HEADERS},
        }
        extensions = get_requested_extensions(request.headers.getlist(HTTP_EXTENSION_HEADER))
        return ServerCallContext(state=state, requested_extensions=extensions)


def agent_card(runtime: AgentRuntime, base_url: str, version: str) -> AgentCard:
    skills = [
        AgentSkill(
            id=a.name,
            name=a.name,
            description=a.description,
            tags=["agent"],
            examples=list(a.examples),
            input_modes=["application/json"],
            output_modes=["application/json"],
        )
        for a in runtime.agents.values()
    ]
    return AgentCard(
        name="agent-serving-app",
        description='The platform\'s online agents (seed 001): send a data part {"agent_name", "data"}.',
        supported_interfaces=[
            AgentInterface(
                url=f"{base_url}{PREFIX}/", protocol_binding="JSONRPC", protocol_version=PROTOCOL_VERSION_1_0
            )
        ],
        version=version,
        capabilities=AgentCapabilities(streaming=False, push_notifications=False),
        default_input_modes=["application/json"],
        default_output_modes=["application/json"],
        skills=skills,
    )


def public_base_url(request: Request) -> str:
    """The app's URL as the client sees it: Databricks Apps' proxy sets X-Forwarded-Host (and serves https)."""
    host = request.headers.get("x-forwarded-host")
    if host and all(c.isalnum() or c in ".-:" for c in host):
        proto = request.headers.get("x-forwarded-proto", "https")
        return f"{'http' if proto == 'http' else 'https'}://{host}"
    return str(request.base_url).rstrip("/")


def mount(app: FastAPI, runtime: AgentRuntime, version: str) -> None:
    handler = DefaultRequestHandler(
        agent_executor=AgentsExecutor(runtime),
        task_store=InMemoryTaskStore(),
        agent_card=agent_card(runtime, "http://localhost", version),
    )

    async def card(request: Request) -> Response:
        return JSONResponse(agent_card_to_dict(agent_card(runtime, public_base_url(request), version)))

    app.router.routes.append(Route(CARD_PATH, card, methods=["GET"]))
    app.router.routes.extend(
        create_jsonrpc_routes(handler, rpc_url=f"{PREFIX}/", context_builder=IdentityContextBuilder())
    )


__all__ = ["CARD_PATH", "PREFIX", "AgentsExecutor", "Identity", "agent_card", "mount"]
