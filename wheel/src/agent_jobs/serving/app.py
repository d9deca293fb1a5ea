"""The serving app: one FastAPI application, one container (seed 001's `app.py`).

Routes:
- `GET /health`: 200 with each dependency's state (memory: a query; llm, embeddings: the last call's outcome;
  prompts: the last refresh), 503 when memory, the LLM or the embeddings endpoint is down; no identity needed;
- `GET /api/agents`: the registered agents, their descriptions and input schemas;
- `POST /api/execute`: `{"agent_name", "data"}` -> `{"agent_name", "request_id", "result", "duration_ms"}`;
- `/a2a` (`a2a_server.py`) and `/mcp` (`mcp_server.py`).

Every error is the JSON body of `errors.error_body` with its status (401, 404, 413, 422, 502, 503, and 500 for
a bug, which is logged with its traceback and answered without it). `create_app` builds everything from the
settings (or from `Services` a test or the benchmark gives); the lifespan starts the prompt refresher, the
memory pool (creating its tables) and MCP's session manager, and closes them on shutdown.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import httpx2 as httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent_jobs.serving import a2a_server, mcp_server
from agent_jobs.serving.agents import Agent, discover
from agent_jobs.serving.credentials import RefreshingPassword, database_instance_fetch, lakebase_fetch
from agent_jobs.serving.endpoints import (
    ChatClient,
    EmbeddingsClient,
    HeaderProvider,
    databricks_headers,
    static_headers,
)
from agent_jobs.serving.errors import InvalidRequest, ServingError, error_body
from agent_jobs.serving.execution import AgentRuntime, validation_details
from agent_jobs.serving.identity import LOCAL_IDENTITY, current_identity
from agent_jobs.serving.memory import MemoryStore
from agent_jobs.serving.middleware import RequestContextMiddleware
from agent_jobs.serving.prompts import LocalDirSource, PromptSource, PromptStore, VolumeSource
from agent_jobs.serving.settings import ServingSettings
from agent_jobs.serving.telemetry import RequestSpanMiddleware

log = logging.getLogger(__name__)

MAX_JSON_DEPTH = 32
_CONTROL = {chr(c) for c in range(32)} - {"\t", "\n", "\r"} | {"\x7f"}


def app_version() -> str:
    try:
        return metadata.version("agent_jobs")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@dataclass
class Services:
    """What the agents use; `create_app` closes them on shutdown."""

    memory: MemoryStore
    llm: ChatClient
    embeddings: EmbeddingsClient
    prompts: PromptStore
    http: httpx.AsyncClient


def _workspace() -> Any:
    from databricks.sdk import WorkspaceClient

    return WorkspaceClient()


def pg_conninfo(settings: ServingSettings) -> str:
    """libpq connection string from the DSN or the PG* settings (no password: it comes from the provider)."""
    if settings.pg_dsn is not None:
        return settings.pg_dsn.get_secret_value()
    parts = {
        "host": settings.pg_host,
        "port": settings.pg_port,
        "dbname": settings.pg_database,
        "user": settings.pg_user,
        "sslmode": settings.pg_sslmode,
    }
    from psycopg.conninfo import make_conninfo

    return make_conninfo("", **{k: v for k, v in parts.items() if v is not None})


def build_services(
    settings: ServingSettings,
    agents: Mapping[str, Agent],
    *,
    workspace: Any = None,
    endpoint_headers: HeaderProvider | None = None,
    http: httpx.AsyncClient | None = None,
) -> Services:
    """The services from the settings; `workspace` (a databricks-sdk WorkspaceClient) is created when needed."""
    http = http or httpx.AsyncClient(limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
    base = settings.endpoints_base
    if endpoint_headers is None:
        if settings.endpoints_url is not None and settings.databricks_host is None:
            endpoint_headers = static_headers(None)  # an endpoints URL without a workspace: a local stand-in
        else:
            workspace = workspace or _workspace()
            endpoint_headers = databricks_headers(workspace.config)
    if base is None:  # no DATABRICKS_HOST: the host of databricks-sdk's profile (local runs)
        workspace = workspace or _workspace()
        base = f"{str(workspace.config.host).rstrip('/')}/serving-endpoints"
    llm = ChatClient(
        http, base, settings.llm_endpoint, endpoint_headers, settings.llm_timeout_s, max_tokens=settings.llm_max_tokens
    )
    embeddings = EmbeddingsClient(
        http,
        base,
        settings.embeddings_endpoint,
        endpoint_headers,
        settings.embeddings_timeout_s,
        dim=settings.embedding_dim,
    )
    password = None
    if settings.lakebase_endpoint:
        workspace = workspace or _workspace()
        password = RefreshingPassword(
            lakebase_fetch(workspace, settings.lakebase_endpoint), margin_s=settings.token_refresh_margin_s
        )
    elif settings.database_instance:
        workspace = workspace or _workspace()
        password = RefreshingPassword(
            database_instance_fetch(workspace, settings.database_instance), margin_s=settings.token_refresh_margin_s
        )
    memory = MemoryStore(
        conninfo=pg_conninfo(settings),
        embeddings=embeddings,
        schema=settings.memory_schema,
        dim=settings.embedding_dim,
        password=password,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        timeout_s=settings.pg_timeout_s,
    )
    source: PromptSource | None = None
    if settings.prompts_volume_path:
        source = VolumeSource(workspace or _workspace(), settings.prompts_volume_path)
    elif settings.prompts_dir:
        source = LocalDirSource(settings.prompts_dir)
    prompts = PromptStore(
        source, {name: a.packaged_prompt() for name, a in agents.items()}, refresh_s=settings.prompts_refresh_s
    )
    return Services(memory, llm, embeddings, prompts, http)


class ExecuteRequest(BaseModel):
    """The seed's curl body."""

    model_config = ConfigDict(extra="forbid", strict=True)

    agent_name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="A registered agent's name.")
    data: dict[str, Any] = Field(description="The agent's input.")


def _reject_constant(name: str) -> Any:
    raise InvalidRequest(f"the body holds {name}, which is not JSON (numbers must be finite)")


def _check_tree(value: Any) -> None:
    """Depth and strings of parsed JSON, iteratively (a deep document must not exhaust the stack)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InvalidRequest(f"the body is nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, str):
            if _CONTROL.intersection(item):
                raise InvalidRequest("a string in the body holds control characters (other than tab and newlines)")
        elif isinstance(item, dict):
            stack.extend((k, depth) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def parse_body(body: bytes) -> ExecuteRequest:
    if not body.strip():
        raise InvalidRequest('the body is empty: send {"agent_name": ..., "data": {...}}')
    try:
        parsed = json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise InvalidRequest(f"the body is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, ServingError):
            raise
        raise InvalidRequest(f"the body is not JSON: {exc}") from None
    _check_tree(parsed)
    try:
        return ExecuteRequest.model_validate(parsed)
    except ValidationError as exc:
        raise InvalidRequest(
            'the body must be {"agent_name": "<agent>", "data": {...}}', details=validation_details(exc)
        ) from None


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "")


def create_app(
    settings: ServingSettings, *, services: Services | None = None, agents: Mapping[str, Agent] | None = None
) -> FastAPI:
    agents = dict(agents) if agents is not None else discover()
    services = services or build_services(settings, agents)
    runtime = AgentRuntime(agents, memory=services.memory, llm=services.llm, prompts=services.prompts)
    version = app_version()
    mcp = mcp_server.build(runtime, version)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.local:
            log.warning(
                "LOCAL MODE: requests without Databricks identity headers are served as %s. Never expose "
                "this port beyond your machine.",
                LOCAL_IDENTITY.principal,
            )
        await services.prompts.start()
        await services.memory.start()
        try:
            async with session_manager.run():
                log.info("serving %s agents: %s", len(agents), ", ".join(agents))
                yield
        finally:
            await services.prompts.close()
            await services.memory.close()
            await services.http.aclose()

    app = FastAPI(title="agent-serving-app", version=version, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.runtime = runtime
    app.state.services = services
    app.add_middleware(RequestContextMiddleware, local=settings.local, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestSpanMiddleware)  # added last: outermost, so its span covers the request context

    @app.exception_handler(ServingError)
    async def serving_error(request: Request, exc: ServingError) -> JSONResponse:
        if exc.status >= 500:
            log.warning(
                "%s %s: %s %s (request %s)",
                request.method,
                request.url.path,
                exc.status,
                exc.message,
                _request_id(request),
            )
        return JSONResponse(exc.body(_request_id(request)), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "")} for e in exc.errors()[:20]]
        return JSONResponse(
            error_body("INVALID_REQUEST", "the request is not valid", request_id=_request_id(request), details=details),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        return JSONResponse(
            error_body(code, str(exc.detail), request_id=_request_id(request)), status_code=exc.status_code
        )

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed (request %s)", request.method, request.url.path, _request_id(request), exc_info=exc)
        return JSONResponse(
            error_body("INTERNAL", "internal error; the app's log has the details", request_id=_request_id(request)),
            status_code=500,
        )

    @app.get("/health")
    async def health() -> JSONResponse:
        memory_state, memory_detail = await services.memory.health()
        prompts_state, prompts_detail = services.prompts.health()
        dependencies: dict[str, dict[str, Any]] = {
            "memory": {"state": memory_state, "required": True, "detail": memory_detail},
            "llm": _endpoint_health(services.llm),
            "embeddings": _endpoint_health(services.embeddings),
            "prompts": {"state": prompts_state, "required": False, "detail": prompts_detail},
        }
        down = sorted(n for n, d in dependencies.items() if d["required"] and d["state"] in ("down", "failing"))
        status = (
            "down" if down else ("degraded" if any(d["state"] == "degraded" for d in dependencies.values()) else "ok")
        )
        body = {
            "status": status,
            "version": version,
            "local_mode": settings.local,
            "agents": sorted(agents),
            "dependencies": dependencies,
        }
        return JSONResponse(body, status_code=503 if down else 200)

    @app.get("/api/agents")
    async def list_agents() -> dict[str, Any]:
        current_identity()
        return {
            "agents": [
                {
                    "name": a.name,
                    "description": a.description,
                    "input_schema": a.input_model.model_json_schema(),
                    "prompt_version": services.prompts.get(a.name).version,
                }
                for a in agents.values()
            ]
        }

    @app.post("/api/execute")
    async def execute(request: Request) -> dict[str, Any]:
        body = parse_body(await request.body())
        started = time.perf_counter()
        result = await runtime.execute(
            body.agent_name, body.data, identity=current_identity(), request_id=_request_id(request), transport="api"
        )
        return {
            "agent_name": body.agent_name,
            "request_id": _request_id(request),
            "result": result,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        }

    a2a_server.mount(app, runtime, version)
    session_manager = mcp_server.mount(app, mcp)
    return app


def _endpoint_health(client: ChatClient | EmbeddingsClient) -> dict[str, Any]:
    outcome = client.outcome
    return {"state": outcome.state, "required": True, "endpoint": client.name, "detail": outcome.detail}
