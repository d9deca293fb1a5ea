"""Helpers of the serving tests: settings pointed at the stand-in and a real Postgres, and the app run
in-process (its lifespan included) behind an httpx client."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Coroutine, Mapping
from typing import Any, TypeVar

import httpx2 as httpx
from serving_pg import Database
from serving_standin import CHAT, EMBEDDINGS, WorkspaceStandIn

from agent_jobs.serving.agents import discover
from agent_jobs.serving.app import Services, build_services, create_app
from agent_jobs.serving.settings import ServingSettings, load_settings

T = TypeVar("T")
DIM = 64
USER = {"X-Forwarded-User": "4567", "X-Forwarded-Email": "ana@example.com", "X-Forwarded-Preferred-Username": "ana"}
TX = {"transaction_id": "txn_12345", "amount": 5000, "merchant": "Electronics Store"}
_schemas = itertools.count()


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def new_schema() -> str:
    """A memory schema no other test uses (cheaper than a database per test)."""
    return f"mem_{next(_schemas)}"


def env_for(standin: WorkspaceStandIn, db: Database, **extra: str) -> dict[str, str]:
    env = {
        "SERVING_ENDPOINTS_URL": standin.endpoints_url,
        "SERVING_LLM_ENDPOINT": CHAT,
        "SERVING_EMBEDDINGS_ENDPOINT": EMBEDDINGS,
        "SERVING_EMBEDDING_DIM": str(DIM),
        "SERVING_PG_DSN": db.dsn,
        "SERVING_MEMORY_SCHEMA": new_schema(),
        "SERVING_LLM_TIMEOUT_S": "2",
    }
    env.update(extra)
    return env


def settings_for(standin: WorkspaceStandIn, db: Database, cli: Mapping[str, Any] | None = None, **extra: str) -> ServingSettings:  # fmt: skip
    return load_settings(env_for(standin, db, **extra), cli)


@contextlib.asynccontextmanager
async def serving(settings: ServingSettings, services: Services | None = None) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:  # fmt: skip
    """The app with its lifespan running, and a client that reaches it in-process."""
    agents = discover()
    services = services or build_services(settings, agents)
    app = create_app(settings, services=services, agents=agents)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app.local", timeout=30) as client:
            yield client, services
