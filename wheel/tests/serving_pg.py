"""A real PostgreSQL 16 with pgvector for the serving tests and the benchmark (the pgserver package), started
once per process and stopped at exit.

Like Lakebase, the app connects as its own role owning its database, and the role's password is checked
(scram-sha-256; trust only for the test's superuser): `set_password` rotates it, so the tests can make
Postgres accept only the current OAuth token. pgvector 0.6 is not a trusted extension, so the
superuser creates it in each database (on Lakebase it is available to the database owner).
"""

from __future__ import annotations

import atexit
import functools
import logging
import secrets
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class Database:
    """A database and the login role the app uses there; `conninfo` has no password (`dsn` has the initial
    one)."""

    name: str
    role: str
    conninfo: str
    password: str

    @property
    def dsn(self) -> str:
        return f"{self.conninfo} password={self.password}"


@dataclass
class Cluster:
    server: object
    socket_dir: str

    def admin(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(f"host={self.socket_dir} dbname={dbname} user=postgres", autocommit=True)

    def set_password(self, role: str, password: str | None) -> None:
        """The role's password from now on (None: no password logs in); open sessions are not affected."""
        with self.admin() as conn:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))

    def new_database(self, name: str) -> Database:
        """A fresh database owned by a fresh login role `name`, with pgvector created in it."""
        password = secrets.token_urlsafe(16)
        ident = sql.Identifier(name)
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(ident, sql.Literal(password)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(ident, ident))
        with self.admin(name) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        return Database(name, name, f"host={self.socket_dir} dbname={name} user={name}", password)

    def new_role(self, db: Database, role: str) -> Database:
        """Another login role that may create schemas in `db` (much cheaper than a new database)."""
        password = secrets.token_urlsafe(16)
        ident = sql.Identifier(role)
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(ident, sql.Literal(password)))
            conn.execute(sql.SQL("GRANT CONNECT, CREATE ON DATABASE {} TO {}").format(sql.Identifier(db.name), ident))
        return Database(db.name, role, f"host={self.socket_dir} dbname={db.name} user={role}", password)

    def terminate(self, role: str) -> int:
        """Close every session of `role` (as a server restart or an idle timeout would)."""
        with self.admin() as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
            ).fetchall()
        return len(rows)


@functools.cache
def cluster() -> Cluster:
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # it logs every pg_ctl command it runs at INFO
    with warnings.catch_warnings():  # platformdirs: no XDG_RUNTIME_DIR here, it falls back to /tmp
        warnings.simplefilter("ignore")
        import pgserver

        root = Path(tempfile.mkdtemp(prefix="serving-pg-"))
        pgdata = root / "data"
        server = pgserver.get_server(pgdata, cleanup_mode="delete")
    atexit.register(shutil.rmtree, root, True)  # runs last: after the server stopped and deleted its data
    atexit.register(server.cleanup)
    socket_dir = server.get_uri().split("host=", 1)[1].split("&", 1)[0]
    # Every role but the test's superuser logs in with a password, checked (pgserver trusts everyone).
    hba = pgdata / "pg_hba.conf"
    rules = "local all postgres trust\nlocal all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n"
    hba.write_text(rules + hba.read_text())
    result = Cluster(server, socket_dir)
    with result.admin() as conn:
        conn.execute("SELECT pg_reload_conf()")
    return result
