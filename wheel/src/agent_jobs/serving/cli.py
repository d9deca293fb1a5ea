"""`serving-app` (and `python -m agent_jobs.serving`): read the settings, build the app, run it under uvicorn.

    serving-app                          # on Databricks Apps: everything from the environment (app.yaml)
    serving-app --local --pgserver .pg   # locally: a PostgreSQL with pgvector in .pg (pip install pgserver),
                                         # serving endpoints of the workspace your databricks-sdk profile names
    serving-app --local --pg-dsn postgresql://... --endpoints-url http://127.0.0.1:9000/serving-endpoints

An invalid setting is one line naming it on stderr and exit status 2. The app runs until stopped (SIGINT or
SIGTERM, as Databricks Apps stops it), then closes its pool and background tasks; exit status 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from agent_jobs import logs
from agent_jobs.serving.settings import SOURCES, SettingsError, load_settings

log = logging.getLogger(__name__)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="serving-app", description="The agent serving app (seed 001).")
    for source in SOURCES:
        if source.flag is None:
            continue
        if source.field == "local":
            p.add_argument(source.flag, dest=source.field, action="store_true", default=None, help=source.description)
        else:
            p.add_argument(
                source.flag, dest=source.field, metavar=source.env, help=f"{source.description} [{source.env}]"
            )
    p.add_argument(
        "--pgserver",
        metavar="DIR",
        help="Local mode only: start a PostgreSQL 16 with pgvector in DIR "
        "(the pgserver package) and keep memory there.",
    )
    return p


def _pgserver_dsn(directory: str) -> str:
    try:
        import pgserver
    except ImportError:
        raise SettingsError("--pgserver needs the pgserver package: pip install pgserver") from None
    server = pgserver.get_server(directory, cleanup_mode="stop")  # type: ignore[attr-defined]
    uri: str = server.get_uri()
    return uri


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    cli: dict[str, Any] = {k: v for k, v in vars(args).items() if k != "pgserver"}
    try:
        if args.pgserver:
            if not (args.local or os.environ.get("SERVING_LOCAL", "").lower() in ("1", "true", "yes")):
                raise SettingsError("--pgserver (command line): only with --local")
            if args.pg_dsn:
                raise SettingsError("--pgserver (command line): give either --pgserver or --pg-dsn")
            cli["pg_dsn"] = _pgserver_dsn(args.pgserver)
        settings = load_settings(os.environ, cli)
    except SettingsError as exc:
        print(f"serving-app: {exc}", file=sys.stderr)
        return 2
    logs.setup(getattr(logging, settings.log_level))

    import uvicorn

    from agent_jobs.serving.app import create_app

    try:
        app = create_app(settings)
    except Exception as exc:  # databricks-sdk cannot authenticate, a broken agent module
        print(f"serving-app: could not build the app: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    # proxy_headers: the Databricks Apps proxy sets X-Forwarded-Proto/-For; the app is reachable only through it.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        forwarded_allow_ips="*",
        access_log=False,
    )
    return 0
