"""The agents and memory retrieval as MCP tools, over streamable HTTP at `/mcp` (mcp 2.x `MCPServer`).

Tools: one per registered agent (named like the agent, its input schema the agent's input model, taking the
agent's `data` as the `data` argument, returning the agent's result), and `retrieve_memory(query, agent_id,
top_k)` returning the memories most similar to the query. The server is stateless with JSON responses (no
session to keep, so any app instance answers any request). DNS-rebinding protection is off: the app is only
reachable through the Databricks Apps proxy, which authenticates the user, and the request middleware refuses
requests without the identity it forwards. A failure is a tool error whose text ends with the app's JSON
error body (mcp prefixes "Error executing tool <name>: ").
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from fastapi import FastAPI
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from agent_jobs.serving.agents import Agent
from agent_jobs.serving.errors import ServingError
from agent_jobs.serving.execution import AgentRuntime
from agent_jobs.serving.identity import current_identity
from agent_jobs.serving.memory import MAX_TOP_K
from agent_jobs.serving.middleware import current_request_id

PATH = "/mcp"


def _tool_error(exc: ServingError) -> ToolError:
    return ToolError(json.dumps(exc.body(current_request_id() or None), sort_keys=True))


def _agent_tool(runtime: AgentRuntime, agent: Agent) -> Any:
    async def tool(data: Any) -> dict[str, Any]:
        payload = data.model_dump(mode="json") if hasattr(data, "model_dump") else data
        try:
            return await runtime.execute(
                agent.name, payload, identity=current_identity(), request_id=current_request_id(), transport="mcp"
            )
        except ServingError as exc:
            raise _tool_error(exc) from None

    # The tool's input schema is the agent's input model: MCP derives it from the signature.
    tool.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("data", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=agent.input_model)],
        return_annotation=dict[str, Any],
    )
    tool.__name__ = agent.name
    return tool


def build(runtime: AgentRuntime, version: str) -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer(
        name="agent-serving-app",
        version=version,
        instructions="Each agent is a tool taking its input as `data`; retrieve_memory searches an agent's memory.",
    )
    for agent in runtime.agents.values():
        server.add_tool(_agent_tool(runtime, agent), name=agent.name, description=agent.description)

    async def retrieve_memory(query: str, agent_id: str, top_k: int = 5) -> dict[str, Any]:
        """The agent's memories most similar to the query (cosine similarity), most similar first."""
        current_identity()
        if not 1 <= top_k <= MAX_TOP_K:
            raise ToolError(f"top_k must be between 1 and {MAX_TOP_K}")
        try:
            records = await runtime.memory.retrieve(query, agent_id, top_k)
        except ServingError as exc:
            raise _tool_error(exc) from None
        return {"memories": [r.as_dict() for r in records]}

    server.add_tool(retrieve_memory, name="retrieve_memory")
    return server


def mount(app: FastAPI, server: MCPServer[Any]) -> StreamableHTTPSessionManager:
    """Add the server's route to `app`; the caller runs the returned session manager in its lifespan."""
    sub = server.streamable_http_app(
        streamable_http_path=PATH,
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    app.router.routes.extend(sub.routes)
    return server.session_manager
