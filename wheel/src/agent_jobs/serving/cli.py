"""`serving-app` (and `python -m agent_jobs.serving`): read the settings, build the app, run it under uvicorn.

    serving-app                          # on Databricks Apps: everything from the environment (app.yaml)
    serving-app --local --pgserver .pg   # locally: a PostgreSQL with pgvector in .pg (pip install pgserver),
                                         # serving endpoints of the workspace your databricks-sdk profile names
    serving-app --local --pg-dsn postgresql://... --endpoints-url http://127.0.0.1:9000/serving-endpoints

An invalid setting is one line naming it on stderr and exit status 2. The app runs until stopped (SIGINT or
SIGTERM, as Databricks Apps stops it), then closes its pool and background tasks; exit status 0.

Telemetry (seed 001's OTEL -> Zerobus -> Delta): with TELEMETRY_ENABLED=true in the environment (the program sets
the TELEMETRY_* variables in app.yaml), the app's spans and metrics are exported by agent_jobs.telemetry_otel
(the `telemetry` extra) and flushed, within a bound, when the app stops. A bad TELEMETRY_* value is exit status 2
like any other setting; telemetry off imports nothing of the OpenTelemetry SDK.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agent_jobs import logs
from agent_jobs.serving import telemetry
from agent_jobs.serving.settings import SOURCES, SettingsError, load_settings

if TYPE_CHECKING:
    from agent_jobs.telemetry_otel.pipeline import TelemetryHandle

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
        handle = start_telemetry(os.environ)
    except TelemetryConfigError as exc:
        print(f"serving-app: {exc}", file=sys.stderr)
        return 2
    try:
        try:
            app = create_app(settings)
        except Exception as exc:  # databricks-sdk cannot authenticate, a broken agent module
            print(f"serving-app: could not build the app: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        if handle is not None:
            # uvicorn ends a graceful shutdown by re-raising the signal that stopped it, under the handler it found
            # at start: with the default one the process would die there, before the queued spans are flushed.
            for stop in (signal.SIGTERM, signal.SIGINT):
                signal.signal(stop, _stopped)
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
    finally:
        if handle is not None:
            handle.shutdown(timeout_s=TELEMETRY_SHUTDOWN_S)
            telemetry.use_provider(None)


def _stopped(signum: int, frame: object) -> None:
    """The handler uvicorn re-raises its stop signal under, once the app has shut down: return, so that `main`
    flushes the telemetry and exits 0."""


TELEMETRY_SHUTDOWN_S = 5.0  # Databricks Apps waits a little after SIGTERM; a hanging Zerobus must not hold the exit


class TelemetryConfigError(Exception):
    """TELEMETRY_* cannot be used: a bad value (the message names the variable), or the extra is missing."""


def start_telemetry(env: Mapping[str, str]) -> TelemetryHandle | None:
    """Export the app's spans and metrics when TELEMETRY_ENABLED is true (agent_jobs.telemetry_otel); None when
    off. Without TELEMETRY_ENABLED nothing of the telemetry's environment is read and nothing imported: the
    `telemetry` extra is installed beside `serving` only where the app exports (`agent_jobs[serving,telemetry]`)."""
    if not env.get("TELEMETRY_ENABLED"):
        return None
    try:
        from agent_jobs.telemetry_otel.pipeline import install
        from agent_jobs.telemetry_otel.settings import TelemetrySettings, TelemetrySettingsError
    except ImportError as exc:
        raise TelemetryConfigError(
            f"TELEMETRY_ENABLED is set, but the telemetry extra is not installed: pip install "
            f"'agent_jobs[serving,telemetry]' ({exc})"
        ) from None
    try:
        settings = TelemetrySettings.from_env(env)
    except TelemetrySettingsError as exc:
        raise TelemetryConfigError(str(exc)) from None
    if not settings.enabled:
        return None
    handle = install(settings)
    telemetry.use_provider(handle.tracer_provider)
    return handle
