"""A real PostgreSQL 16 with pgvector for the serving tests and the benchmark (the pgserver package), started
once per process and stopped at exit.

Like Lakebase, the app connects as its own role (`app`) owning its database, and the role's password is
checked (scram-sha-256 for `app`, trust only for the test's superuser): `set_password` rotates it, so the
tests can make Postgres accept only the current OAuth token. pgvector 0.6 is not a trusted extension, so the
superuser creates it in each database (on Lakebase it is available to the database owner).
"""

from __future__ import annotations

import atexit
import functools
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

APP_ROLE = "app"


@dataclass
class Cluster:
    server: object
    socket_dir: str
    admin_uri: str

    def admin(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(f"host={self.socket_dir} dbname={dbname} user=postgres", autocommit=True)

    def set_password(self, password: str | None) -> None:
        with self.admin() as conn:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(APP_ROLE), sql.Literal(password)))

    def new_database(self, name: str) -> str:
        """A fresh database owned by the app role, with pgvector; returns the app's conninfo (no password)."""
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(APP_ROLE)))
        with self.admin(name) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        return self.conninfo(name)

    def conninfo(self, dbname: str) -> str:
        return f"host={self.socket_dir} dbname={dbname} user={APP_ROLE}"

    def terminate_app_connections(self) -> int:
        with self.admin() as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (APP_ROLE,)
            ).fetchall()
        return len(rows)


@functools.cache
def cluster() -> Cluster:
    import pgserver

    root = Path(tempfile.mkdtemp(prefix="serving-pg-"))
    server = pgserver.get_server(root / "data", cleanup_mode="delete")
    atexit.register(server.cleanup)
    uri = server.get_uri()
    socket_dir = uri.split("host=", 1)[1].split("&", 1)[0]
    pgdata = root / "data"
    # The app role logs in with a password, checked; the superuser keeps trust (the test's admin connection).
    hba = pgdata / "pg_hba.conf"
    rules = f"local all {APP_ROLE} scram-sha-256\nhost all {APP_ROLE} 127.0.0.1/32 scram-sha-256\n"
    hba.write_text(rules + hba.read_text())
    result = Cluster(server, socket_dir, uri)
    with result.admin() as conn:
        conn.execute("SELECT pg_reload_conf()")
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(APP_ROLE), sql.Literal(secrets.token_urlsafe(16))
            )
        )
    return result
