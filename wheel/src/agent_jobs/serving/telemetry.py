"""The app's spans, through the OpenTelemetry API only (no SDK, no exporter: with none configured every call is
a no-op). The exporter (SDK, batching, Zerobus) is configured elsewhere, before the app starts; it sees:

- `HTTP <method> <route>` (SERVER), one per request, from `RequestSpanMiddleware`: `http.request.method`,
  `http.route`, `url.path`, `http.response.status_code`, `app.request_id` (set by the request middleware);
- `agent.execute` (INTERNAL), one per agent execution: `agent.name`, `agent.status` (`ok` / `error`),
  `agent.duration_ms`, `agent.transport` (`api`, `a2a`, `mcp`), `error.type` on failure;
- children of it: `memory.retrieve` / `memory.store` (`memory.agent_id`, `memory.top_k`, `memory.results`),
  `embeddings.embed` and `llm.chat` (CLIENT: `gen_ai.request.model` = the endpoint name, `http.response.
  status_code`, `gen_ai.usage.input_tokens` / `output_tokens` when the endpoint reports them);
- `prompts.refresh` (INTERNAL, in the background): `prompts.source`, `prompts.loaded`, `prompts.failed`.

No span carries a user's identity, a token, a prompt or an agent's data. The spans go to the global tracer
provider (`opentelemetry.trace.set_tracer_provider`), or to the one given to `use_provider`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

TRACER_NAME = "agent_jobs.serving"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Low-cardinality route names for span names: a path maps to the first prefix it starts with.
_ROUTES = (
    ("/health", "/health"),
    ("/api/execute", "/api/execute"),
    ("/api/agents", "/api/agents"),
    ("/a2a", "/a2a"),
    ("/mcp", "/mcp"),
)


_provider: trace.TracerProvider | None = None


def use_provider(provider: trace.TracerProvider | None) -> None:
    """Send the app's spans to `provider` instead of the global one (None: back to the global one). For an
    exporter that does not install itself globally, and for tests."""
    global _provider
    _provider = provider


def tracer() -> trace.Tracer:
    """The app's tracer: resolved on each call, so a provider configured after import still gets the spans."""
    return trace.get_tracer(TRACER_NAME, tracer_provider=_provider)


def route_of(path: str) -> str | None:
    for prefix, route in _ROUTES:
        if path == prefix or path.startswith(prefix + "/"):
            return route
    return None


class RequestSpanMiddleware:
    """One SERVER span around every HTTP request (pure ASGI: streaming responses and context variables work)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        path = scope.get("path", "")
        route = route_of(path)
        name = f"HTTP {method} {route}" if route else f"HTTP {method}"
        attributes: dict[str, Any] = {"http.request.method": method, "url.path": path}
        if route:
            attributes["http.route"] = route
        with tracer().start_as_current_span(name, kind=SpanKind.SERVER, attributes=attributes) as span:

            async def send_recording(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, send_recording)
