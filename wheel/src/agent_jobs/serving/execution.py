"""Running an agent, the same way for every transport (`/api/execute`, A2A, MCP): look it up (404 when
unknown), validate its data against its input model (422), run it inside an `agent.execute` span that records
the agent, the transport, the duration and the outcome.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import Status, StatusCode
from pydantic import BaseModel, ValidationError

from agent_jobs.serving.agents import Agent, AgentContext
from agent_jobs.serving.endpoints import ChatClient
from agent_jobs.serving.errors import InvalidRequest, ServingError, UnknownAgent
from agent_jobs.serving.identity import Identity
from agent_jobs.serving.memory import MemoryStore
from agent_jobs.serving.prompts import PromptStore
from agent_jobs.serving.telemetry import tracer

log = logging.getLogger(__name__)


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors without the offending input (it may be huge, or data the caller should not see echoed)."""
    return [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()[:20]
    ]


class AgentRuntime:
    def __init__(
        self, agents: Mapping[str, Agent], *, memory: MemoryStore, llm: ChatClient, prompts: PromptStore
    ) -> None:
        self.agents = dict(agents)
        self.memory = memory
        self.llm = llm
        self.prompts = prompts

    def agent(self, name: str) -> Agent:
        agent = self.agents.get(name)
        if agent is None:
            raise UnknownAgent(f"no agent named {name!r}", details={"agents": sorted(self.agents)})
        return agent

    def validate(self, agent: Agent, data: Any) -> BaseModel:
        try:
            return agent.input_model.model_validate(data)
        except ValidationError as exc:
            raise InvalidRequest(
                f"the data does not fit the {agent.name} agent's input", details=validation_details(exc)
            ) from None

    async def execute(
        self, name: str, data: Any, *, identity: Identity, request_id: str, transport: str
    ) -> dict[str, Any]:
        agent = self.agent(name)
        validated = self.validate(agent, data)
        context = AgentContext(self.memory, self.llm, self.prompts, identity, request_id)
        attributes = {"agent.name": agent.name, "agent.transport": transport}
        with tracer().start_as_current_span(
            "agent.execute", attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:
            started = time.perf_counter()
            status = "error"
            try:
                result = await agent.run(validated, context)
                status = "ok"
                return result
            except ServingError as exc:
                span.set_attribute("error.type", exc.code)
                span.set_status(Status(StatusCode.ERROR, exc.code))
                raise
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            finally:
                duration_ms = (time.perf_counter() - started) * 1000
                span.set_attribute("agent.status", status)
                span.set_attribute("agent.duration_ms", round(duration_ms, 3))
                log.info(
                    "agent %s via %s: %s in %.1f ms (request %s)",
                    agent.name,
                    transport,
                    status,
                    duration_ms,
                    request_id,
                )
