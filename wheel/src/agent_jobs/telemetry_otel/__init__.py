"""Seed 001's telemetry path: the serving app's OpenTelemetry spans and metrics exported to the workspace's
Zerobus Ingest endpoint over OTLP/HTTP (pipeline.py, auth.py, settings.py: needs the `telemetry` extra),
and the Delta tables, views and dashboard that receive and show them, as data (tables.py and its JSON files:
standard library only). See README.md.

    handle = install(TelemetrySettings.from_env(os.environ))   # a no-op handle when TELEMETRY_ENABLED is off
    serving.telemetry.use_provider(handle.tracer_provider)
    ...
    handle.shutdown()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent_jobs.telemetry_otel.pipeline import TelemetryHandle
    from agent_jobs.telemetry_otel.settings import TelemetrySettings


def install(settings: TelemetrySettings, **kwargs: Any) -> TelemetryHandle:
    """agent_jobs.telemetry_otel.pipeline.install (imported here lazily: tables.py needs no SDK)."""
    from agent_jobs.telemetry_otel.pipeline import install as _install

    return _install(settings, **kwargs)
