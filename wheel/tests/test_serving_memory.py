"""Agent memory against a real PostgreSQL 16 with pgvector (pgserver): similarity ranking, the tables the app
creates and owns, and the OAuth password: a Lakebase token fetched through the real databricks-sdk from the
stand-in, where Postgres accepts only the current token, expiring in the middle of the test."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from databricks.sdk import WorkspaceClient
from serving_pg import Database, cluster
from serving_standin import EMBEDDINGS, TOKEN, WorkspaceStandIn
from serving_support import DIM, new_schema, run

from agent_jobs.serving.credentials import (
    Credential,
    CredentialError,
    RefreshingPassword,
    database_instance_fetch,
    lakebase_fetch,
)
from agent_jobs.serving.endpoints import EmbeddingsClient, static_headers
from agent_jobs.serving.errors import InvalidRequest, Unavailable
from agent_jobs.serving.memory import MemoryStore

# The real PostgreSQL: one xdist worker runs this group (--dist loadgroup), so one server starts.
pytestmark = pytest.mark.xdist_group("postgres")

ENDPOINT = "projects/agents/branches/production/endpoints/primary"


@pytest.fixture(scope="module")
def workspace() -> Iterator[WorkspaceStandIn]:
    with WorkspaceStandIn(dim=DIM) as server:
        yield server


@pytest.fixture
def standin(workspace: WorkspaceStandIn) -> WorkspaceStandIn:
    workspace.reset()
    return workspace


@pytest.fixture(scope="module")
def database() -> Database:
    return cluster().new_database("serving_memory")


@pytest.fixture
def db(database: Database) -> Database:
    """A role of its own per test: the token tests rotate its password."""
    return cluster().new_role(database, f"mem_{secrets.token_hex(4)}")


def store_for(standin: WorkspaceStandIn, http: httpx.AsyncClient, conninfo: str, **kwargs: Any) -> MemoryStore:
    embeddings = EmbeddingsClient(http, standin.endpoints_url, EMBEDDINGS, static_headers(None), 5.0, dim=kwargs.pop("dim", DIM))  # fmt: skip
    return MemoryStore(conninfo=conninfo, embeddings=embeddings, schema=kwargs.pop("schema", new_schema()),
                       dim=embeddings.dim, **kwargs)  # fmt: skip


def test_retrieve_ranks_by_cosine_similarity_within_one_agent(standin: WorkspaceStandIn, db: Database) -> None:
    """retrieve returns the agent's most similar memories first, never another agent's, at most top_k."""

    async def scenario() -> tuple[list[Any], list[Any]]:
        async with httpx.AsyncClient() as http:
            memory = store_for(standin, http, db.dsn)
            await memory.start()
            try:
                for text in ("card used at electronics store abroad", "grocery store weekly shopping",
                             "electronics store large purchase", "fuel station small amount"):  # fmt: skip
                    await memory.store("fraud_detector", text, {"text": text}, created_by="ana@example.com")
                await memory.store("other_agent", "electronics store purchase", {})
                top = await memory.retrieve("electronics store purchase", "fraud_detector", top_k=2)
                every = await memory.retrieve("electronics store purchase", "fraud_detector", top_k=50)
                return top, every
            finally:
                await memory.close()

    top, every = run(scenario())
    assert [r.content for r in top] == ["electronics store large purchase", "card used at electronics store abroad"]
    assert len(every) == 4 and all(r.agent_id == "fraud_detector" for r in every)
    similarities = [r.similarity for r in every]
    assert similarities == sorted(similarities, reverse=True) and -1 <= similarities[-1] <= similarities[0] <= 1
    assert top[0].metadata == {"text": "electronics store large purchase"} and top[0].created_by == "ana@example.com"


def test_the_app_creates_its_tables_once_and_owns_them(standin: WorkspaceStandIn, db: Database) -> None:
    """Starting twice (two app instances) on the same schema works; the table and its HNSW cosine index exist
    and belong to the app's role."""
    schema = new_schema()

    async def scenario() -> None:
        async with httpx.AsyncClient() as http:
            stores = [store_for(standin, http, db.dsn, schema=schema) for _ in range(2)]
            await asyncio.gather(*(s.start() for s in stores))
            assert all(s.ready for s in stores), [s.error for s in stores]
            for s in stores:
                await s.close()

    run(scenario())
    with cluster().admin(db.name) as conn:
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE schemaname = %s AND tablename = 'memories'", (schema,)).fetchone()  # fmt: skip
        index = conn.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND indexname = 'memories_embedding_hnsw_idx'", (schema,)).fetchone()  # fmt: skip
    assert owner == (db.role,)
    assert index is not None and "hnsw" in index[0] and "vector_cosine_ops" in index[0]


def test_a_table_of_another_dimension_is_a_clear_error(standin: WorkspaceStandIn, db: Database) -> None:
    """An existing table whose vectors have another dimension than SERVING_EMBEDDING_DIM stops memory with a
    message saying what to change, instead of failing every insert later."""
    schema = new_schema()

    async def scenario() -> tuple[MemoryStore, Exception]:
        async with httpx.AsyncClient() as http:
            first = store_for(standin, http, db.dsn, schema=schema)
            await first.start()
            await first.close()
            standin.dim = 32
            second = store_for(standin, http, db.dsn, schema=schema, dim=32)
            await second.start()
            with pytest.raises(Unavailable) as failure:
                await second.retrieve("x", "fraud_detector")
            await second.close()
            return second, failure.value

    second, failure = run(scenario())
    assert not second.ready
    assert second.error is not None and "vector(64)" in second.error and "SERVING_EMBEDDING_DIM is 32" in second.error
    assert "memory is not available" in failure.message


def test_bad_agent_ids_and_top_k_are_refused_before_the_database(standin: WorkspaceStandIn, db: Database) -> None:
    """agent_id must be an agent name and top_k within 1..50: a caller's mistake is 422, not a query."""

    async def scenario() -> list[str]:
        async with httpx.AsyncClient() as http:
            memory = store_for(standin, http, db.dsn)
            await memory.start()
            messages = []
            for agent_id, top_k in (("Robert'); DROP TABLE", 5), ("fraud_detector", 0), ("fraud_detector", 51)):
                with pytest.raises(InvalidRequest) as refused:
                    await memory.retrieve("q", agent_id, top_k)
                messages.append(refused.value.message)
            await memory.close()
            return messages

    assert [m.split(" ")[0] for m in run(scenario())] == ["agent_id", "top_k", "top_k"]


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_lakebase_token_that_expires_mid_test_is_replaced_before_a_new_connection(standin: WorkspaceStandIn, db: Database) -> None:  # fmt: skip
    """The password is a Lakebase credential from w.postgres.generate_database_credential (real databricks-sdk,
    stand-in API) and Postgres accepts only the newest token. When the token expires and the server drops the
    app's connections, the next query opens a connection with a freshly fetched token and succeeds; a provider
    that kept the old token fails the same way (so the test can fail)."""
    pg = cluster()
    standin.on_token = lambda token: pg.set_password(db.role, token)  # only the current token logs in
    standin.token_lifetime_s = 3600
    workspace = WorkspaceClient(host=standin.url, token=TOKEN)
    clock = Clock()
    standin.clock = clock
    password = RefreshingPassword(lakebase_fetch(workspace, ENDPOINT), margin_s=300, clock=clock)
    stale: list[str] = []

    async def stale_password() -> str:
        return stale[0]

    async def scenario() -> tuple[int, int, Exception]:
        async with httpx.AsyncClient() as http:
            memory = store_for(standin, http, db.conninfo, password=password, min_size=1, max_size=2)
            keeper = store_for(standin, http, db.conninfo, password=stale_password, min_size=1, max_size=2, schema=memory.schema, timeout_s=0.3)  # fmt: skip
            await memory.start()
            stale.append(standin.tokens[-1])
            await keeper.start()
            assert memory.ready and keeper.ready, (memory.error, keeper.error)
            await memory.store("fraud_detector", "electronics store purchase", {})
            before = len(await memory.retrieve("electronics", "fraud_detector"))

            # An hour later the token has expired: Lakebase no longer accepts it and has closed the sessions.
            clock.now += 3601
            pg.set_password(db.role, secrets.token_urlsafe(16))
            pg.terminate(db.role)
            after = len(await memory.retrieve("electronics", "fraud_detector"))
            with pytest.raises(Unavailable) as refused:
                await keeper.retrieve("electronics", "fraud_detector")
            await memory.close()
            await keeper.close()
            return before, after, refused.value

    before, after, refused = run(scenario())
    assert (before, after) == (1, 1)
    assert password.fetches == 2 and len(standin.tokens) == 2  # the first token, and the one after expiry
    requests = standin.calls("/api/2.0/postgres/credentials")
    assert {r["body"]["endpoint"] for r in requests} == {ENDPOINT}
    assert all(r["authorization"] == f"Bearer {TOKEN}" for r in requests)
    assert refused.dependency == "memory" and "no database connection within 0.3 s" in refused.message
    assert all(token not in refused.message for token in standin.tokens)


def test_the_token_is_refreshed_inside_the_margin_not_only_after_expiry() -> None:
    """A cached token with less than the margin left is replaced, so a connection opened just before expiry
    does not log in with a token about to lapse; one with more left is reused (no fetch per connection)."""
    clock = Clock()
    issued: list[Credential] = []

    def fetch() -> Credential:
        issued.append(Credential(f"token-{len(issued)}", clock.now + 900))
        return issued[-1]

    password = RefreshingPassword(fetch, margin_s=300, clock=clock)

    async def scenario() -> list[str]:
        tokens = [await password(), await password()]
        clock.now += 599  # 301 s left: still good
        tokens.append(await password())
        clock.now += 2  # 299 s left: inside the margin
        tokens.append(await password())
        return tokens

    assert run(scenario()) == ["token-0", "token-0", "token-0", "token-1"]


def test_a_failed_or_expired_credential_is_a_clear_error() -> None:
    """An API error, an answer without a token, or a token already expired is a CredentialError saying so."""

    def failing() -> Credential:
        raise PermissionError("PERMISSION_DENIED: not allowed")

    def expired() -> Credential:
        return Credential("t", time.time() - 1)

    async def scenario() -> list[str]:
        messages = []
        for fetch in (failing, expired):
            with pytest.raises(CredentialError) as err:
                await RefreshingPassword(fetch, margin_s=60)()
            messages.append(str(err.value))
        return messages

    failed, stale = run(scenario())
    assert "could not get a postgres credential" in failed and "PERMISSION_DENIED" in failed
    assert "already expired" in stale


def test_the_lakebase_provisioned_api_gives_a_credential_too(standin: WorkspaceStandIn) -> None:
    """w.database.generate_database_credential (Lakebase Provisioned) through the real SDK: the token and its
    expiration_time are read, the instance is named in the request."""
    standin.token_lifetime_s = 1200
    credential = database_instance_fetch(WorkspaceClient(host=standin.url, token=TOKEN), "agents-memory")()
    assert credential.token == standin.tokens[-1]
    assert abs(credential.expires_at - (time.time() + 1200)) < 5
    assert standin.calls("/api/2.0/database/credentials")[0]["body"]["instance_names"] == ["agents-memory"]


def test_memory_keeps_retrying_its_setup_until_the_database_lets_it_in(standin: WorkspaceStandIn, db: Database) -> None:  # fmt: skip
    """With a wrong password at start the store is not ready (health says why) and retries in the background;
    once the database accepts the app, the tables are created and queries work, without a restart."""
    wakeups: asyncio.Queue[None] = asyncio.Queue()
    slept: list[float] = []
    password = ["wrong"]

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await wakeups.get()

    async def current() -> str:
        return password[0]

    async def scenario() -> tuple[str | None, bool, int]:
        async with httpx.AsyncClient() as http:
            memory = store_for(standin, http, db.conninfo, password=current, sleep=sleep, retry_setup_s=10)
            await memory.start()
            error, _ = memory.error, await memory.health()
            await wakeups.put(None)  # a retry while the password is still wrong
            while len(slept) < 2:
                await asyncio.sleep(0)
            password[0] = db.password
            await wakeups.put(None)
            for _ in range(500):
                if memory.ready:
                    break
                await asyncio.sleep(0.01)
            stored = await memory.store("fraud_detector", "now it works", {})
            await memory.close()
            return error, memory.ready, stored

    error, ready, stored = run(scenario())
    assert error is not None and "OperationalError" in error and "wrong" not in error
    assert ready and stored >= 1 and slept[:2] == [10, 10]
