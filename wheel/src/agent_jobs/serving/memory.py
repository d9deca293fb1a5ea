"""Agent memory on Postgres with pgvector (Lakebase on Databricks, any Postgres 13+ with pgvector locally).

The app owns its tables and creates them on start when missing (one transaction, under an advisory lock so
several app instances starting together do not race):

    CREATE EXTENSION IF NOT EXISTS vector;
    CREATE SCHEMA IF NOT EXISTS <schema>;                       -- SERVING_MEMORY_SCHEMA, agent_memory
    CREATE TABLE IF NOT EXISTS <schema>.memories (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        agent_id    text NOT NULL,
        content     text NOT NULL,
        metadata    jsonb NOT NULL DEFAULT '{}',
        embedding   vector(<dim>) NOT NULL,                      -- SERVING_EMBEDDING_DIM
        created_by  text,                                        -- the forwarded user who stored it
        created_at  timestamptz NOT NULL DEFAULT now());
    CREATE INDEX IF NOT EXISTS memories_agent_created_idx ON <schema>.memories (agent_id, created_at DESC);
    CREATE INDEX IF NOT EXISTS memories_embedding_hnsw_idx ON <schema>.memories
        USING hnsw (embedding vector_cosine_ops);

An existing table whose vector dimension differs from the setting is an error at start (it would fail every
insert). `retrieve(query, agent_id, top_k)` ranks one agent's memories by cosine similarity (`<=>`, the HNSW
index's operator) to the query's embedding; `store` embeds and inserts.

Connections come from psycopg's async pool. Its `kwargs` callable asks the password provider for each new
connection (`credentials.RefreshingPassword` on Lakebase), connections are checked before use (a connection
the server closed is replaced, not handed out), and recycled after 45 minutes. Database failures are
`Unavailable` (503) with the SQLSTATE, never the query's parameters. When the database is down at start, the
app still starts (health says so) and keeps retrying the setup in the background.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from opentelemetry.trace import Status, StatusCode
from pgvector import Vector
from pgvector.psycopg import register_vector_async
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from agent_jobs.serving.endpoints import EmbeddingsClient
from agent_jobs.serving.errors import InvalidRequest, ServingError, Unavailable
from agent_jobs.serving.telemetry import tracer

log = logging.getLogger(__name__)

PasswordProvider = Callable[[], Awaitable[str]]
AGENT_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_TOP_K = 50
_LOCK_KEY = 7_324_001  # pg_advisory_xact_lock key of the schema setup (any constant shared by all instances)
_RETRY_SETUP_S = 10.0


class MemorySchemaError(Exception):
    """The existing tables do not fit the settings; retrying will not help."""


@dataclass(frozen=True)
class MemoryRecord:
    id: int
    agent_id: str
    content: str
    metadata: dict[str, Any]
    similarity: float
    created_by: str | None
    created_at: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent_id": self.agent_id,
            "content": self.content,
            "metadata": self.metadata,
            "similarity": round(self.similarity, 6),
            "created_by": self.created_by,
            "created_at": self.created_at,
        }


def ddl(schema: str, dim: int) -> list[sql.Composed]:
    """The statements that create the memory tables when missing."""
    s = sql.Identifier(schema)
    return [
        sql.SQL("CREATE EXTENSION IF NOT EXISTS vector").format(),
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.memories ("
            " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            " agent_id text NOT NULL, content text NOT NULL,"
            " metadata jsonb NOT NULL DEFAULT '{{}}'::jsonb,"
            " embedding vector({}) NOT NULL,"
            " created_by text, created_at timestamptz NOT NULL DEFAULT now())"
        ).format(s, sql.Literal(dim)),
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS memories_agent_created_idx ON {}.memories (agent_id, created_at DESC)"
        ).format(s),
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS memories_embedding_hnsw_idx ON {}.memories"
            " USING hnsw (embedding vector_cosine_ops)"
        ).format(s),
    ]


class MemoryStore:
    def __init__(
        self,
        *,
        conninfo: str,
        embeddings: EmbeddingsClient,
        schema: str,
        dim: int,
        password: PasswordProvider | None = None,
        min_size: int = 1,
        max_size: int = 10,
        timeout_s: float = 10.0,
        retry_setup_s: float = _RETRY_SETUP_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.embeddings = embeddings
        self.schema = schema
        self.dim = dim
        self._conninfo = conninfo
        self._password = password
        self._timeout = timeout_s
        self._retry_setup_s = retry_setup_s
        self._sleep = sleep
        self._table = sql.SQL("{}.memories").format(sql.Identifier(schema))
        self.pool = AsyncConnectionPool(
            conninfo,
            kwargs=self._connect_kwargs,
            min_size=min_size,
            max_size=max_size,
            open=False,
            configure=_configure,
            check=AsyncConnectionPool.check_connection,
            name="agent-memory",
            timeout=timeout_s,
            # Lakebase closes connections after 3 days; recycle well before, and before a token's hour is up.
            max_lifetime=45 * 60.0,
        )
        self.ready = False
        self.error: str | None = "not started"
        self._setup_task: asyncio.Task[None] | None = None

    async def _connect_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "connect_timeout": max(1, int(self._timeout)),
            "application_name": "agent-serving-app",
        }
        if self._password is not None:
            kwargs["password"] = await self._password()
        return kwargs

    # --- lifecycle

    async def start(self) -> None:
        """Create the tables and open the pool; on failure keep retrying in the background."""
        try:
            await self._setup()
        except MemorySchemaError as exc:
            self.error = str(exc)
            log.error("memory: %s", exc)
        except Exception as exc:
            self.error = _describe(exc)
            log.error("memory: setup failed, retrying every %.0f s: %s", self._retry_setup_s, self.error)
            self._setup_task = asyncio.create_task(self._retry_setup())

    async def _retry_setup(self) -> None:
        while not self.ready:
            await self._sleep(self._retry_setup_s)
            try:
                await self._setup()
            except MemorySchemaError as exc:
                self.error = str(exc)
                log.error("memory: %s", exc)
                return
            except Exception as exc:
                self.error = _describe(exc)
                log.warning("memory: setup failed again: %s", self.error)

    async def _setup(self) -> None:
        kwargs = await self._connect_kwargs()
        async with await psycopg.AsyncConnection.connect(self._conninfo, **kwargs) as conn:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                for statement in ddl(self.schema, self.dim):
                    try:
                        await conn.execute(statement)
                    except psycopg.errors.InsufficientPrivilege as exc:
                        raise MemorySchemaError(
                            f"the database role may not run {statement.as_string(conn)[:60]}...: have the database's "
                            "owner create the pgvector extension (CREATE EXTENSION vector) or grant CREATE"
                        ) from exc
            cur = await conn.execute(
                "SELECT atttypmod FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = 'embedding'",
                (f'"{self.schema}".memories',),
            )
            row = await cur.fetchone()
        if row is None or row[0] != self.dim:
            found = "missing" if row is None else f"vector({row[0]})"
            raise MemorySchemaError(
                f"{self.schema}.memories.embedding is {found}, but SERVING_EMBEDDING_DIM is {self.dim}: use the "
                "dimension of the table's existing vectors, or another SERVING_MEMORY_SCHEMA for the new model"
            )
        await self.pool.open(wait=True, timeout=self._timeout)
        self.ready = True
        self.error = None
        log.info("memory: tables ready in schema %s, pool open", self.schema)

    async def close(self) -> None:
        if self._setup_task is not None:
            self._setup_task.cancel()
        await self.pool.close()
        log.info("memory: pool closed")

    # --- queries

    async def _fetch(
        self, query: sql.Composed, params: Mapping[str, Any], *, write: bool = False
    ) -> list[dict[str, Any]]:
        if not self.ready:
            raise Unavailable(f"memory is not available: {self.error}", dependency="memory")
        try:
            async with self.pool.connection() as conn:
                cur = conn.cursor(row_factory=dict_row)
                await cur.execute(query, params)
                return await cur.fetchall()
        except PoolTimeout as exc:
            raise Unavailable(
                f"memory: no database connection within {self._timeout:g} s", dependency="memory"
            ) from exc
        except psycopg.Error as exc:
            log.warning("memory: %s failed: %s", "write" if write else "query", _describe(exc))
            raise Unavailable(
                f"memory: the database query failed ({_describe(exc, brief=True)})", dependency="memory"
            ) from exc

    async def retrieve(
        self, query: str, agent_id: str, top_k: int = 5, *, embedding: Sequence[float] | None = None
    ) -> list[MemoryRecord]:
        """The agent's `top_k` memories most similar (cosine) to `query`, most similar first."""
        _check_agent_id(agent_id)
        if not 1 <= top_k <= MAX_TOP_K:
            raise InvalidRequest(f"top_k must be between 1 and {MAX_TOP_K}")
        with tracer().start_as_current_span(
            "memory.retrieve", attributes={"memory.agent_id": agent_id, "memory.top_k": top_k}
        ) as span:
            try:
                vector = list(embedding) if embedding is not None else (await self.embeddings.embed([query]))[0]
                rows = await self._fetch(
                    sql.SQL(
                        "SELECT id, agent_id, content, metadata, created_by, created_at,"
                        " 1 - (embedding <=> %(v)s) AS similarity FROM {} WHERE agent_id = %(a)s"
                        " ORDER BY embedding <=> %(v)s LIMIT %(k)s"
                    ).format(self._table),
                    {"v": Vector(vector), "a": agent_id, "k": top_k},
                )
            except ServingError as exc:
                span.set_status(Status(StatusCode.ERROR, exc.code))
                raise
            span.set_attribute("memory.results", len(rows))
            return [_record(r) for r in rows]

    async def store(
        self,
        agent_id: str,
        content: str,
        metadata: Mapping[str, Any] | None = None,
        *,
        created_by: str | None = None,
        embedding: Sequence[float] | None = None,
    ) -> int:
        """Embed `content` (unless its embedding is given) and keep it as one of the agent's memories."""
        _check_agent_id(agent_id)
        with tracer().start_as_current_span("memory.store", attributes={"memory.agent_id": agent_id}) as span:
            try:
                vector = list(embedding) if embedding is not None else (await self.embeddings.embed([content]))[0]
                rows = await self._fetch(
                    sql.SQL(
                        "INSERT INTO {} (agent_id, content, metadata, embedding, created_by)"
                        " VALUES (%(a)s, %(c)s, %(m)s, %(v)s, %(u)s) RETURNING id"
                    ).format(self._table),
                    {
                        "a": agent_id,
                        "c": content,
                        "m": Jsonb(dict(metadata or {})),
                        "v": Vector(vector),
                        "u": created_by,
                    },
                    write=True,
                )
            except ServingError as exc:
                span.set_status(Status(StatusCode.ERROR, exc.code))
                raise
            return int(rows[0]["id"])

    async def health(self) -> tuple[str, str | None]:
        """("ok", latency) when a query answers within 2 s (or the pool timeout), ("down", why) otherwise."""
        if not self.ready:
            return "down", self.error
        started = time.monotonic()
        try:
            async with self.pool.connection(timeout=min(2.0, self._timeout)) as conn:
                await conn.execute("SELECT 1")
        except (PoolTimeout, psycopg.Error) as exc:
            return "down", _describe(exc, brief=True)
        return "ok", f"{(time.monotonic() - started) * 1000:.1f} ms"


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    """Each new connection: pgvector's types, and autocommit (every statement is its own transaction, which
    spares the BEGIN and COMMIT round trips of an implicit transaction)."""
    await register_vector_async(conn)
    await conn.set_autocommit(True)


def _check_agent_id(agent_id: str) -> None:
    if not AGENT_ID.match(agent_id):
        raise InvalidRequest("agent_id must be a lower-case agent name ([a-z][a-z0-9_]*, at most 64)")


def _record(row: Mapping[str, Any]) -> MemoryRecord:
    created = row["created_at"]
    return MemoryRecord(
        int(row["id"]),
        row["agent_id"],
        row["content"],
        dict(row["metadata"] or {}),
        float(row["similarity"]),
        row["created_by"],
        created.isoformat() if hasattr(created, "isoformat") else str(created),
    )


def _describe(exc: BaseException, brief: bool = False) -> str:
    """What went wrong, without parameters: the SQLSTATE and the server's primary message."""
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate or "no SQLSTATE"
        if brief:
            return f"{type(exc).__name__}, SQLSTATE {state}"
        primary = exc.diag.message_primary if exc.diag else None
        return f"{type(exc).__name__} (SQLSTATE {state}): {primary or str(exc).splitlines()[0] if str(exc) else ''}"
    if isinstance(exc, PoolTimeout):
        return "no connection from the pool in time"
    return f"{type(exc).__name__}: {exc}"
