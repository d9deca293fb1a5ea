"""The OpenTelemetry SDK set up for the serving app: spans (and metrics) to Zerobus Ingest over OTLP/HTTP.

    span.end() ─> AgentMetricsProcessor (every recorded agent.execute -> duration histogram, counter)
              └─> BoundedSpanProcessor (sampled spans only) ─> BatchSpanProcessor ─> CountingSpanExporter
                      at most queue_size waiting; beyond: dropped, counted          POST <endpoint>/v1/traces

The request path only ever appends to a bounded queue: batching (every batch_interval_s or batch_size
spans, the seed's "10 s or 1000 events"), the OAuth token, HTTP, retries and their back-off all happen in
the SDK's worker threads. A failed or hanging export is logged (rate-limited) and counted, never raised;
while the receiver is slow the queue fills and further spans are dropped and counted instead of growing.

Sampling: TraceIdRatioBased(sample_rate) under ParentBased. With a metrics table, a trace that is not
sampled is still *recorded* (RECORD_ONLY), so the metrics count every execution while only the sampled
share is exported as spans.

This module owns the provider wiring and the counters; settings.py owns the configuration, auth.py the token.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, ObservableCounter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, StatusCode
from opentelemetry.util.types import Attributes

from agent_jobs.telemetry_otel.auth import BearerAuth, ZerobusToken
from agent_jobs.telemetry_otel.settings import TelemetrySettings

log = logging.getLogger("agent_jobs.telemetry_otel")

TABLE_HEADER = "x-databricks-zerobus-table-name"
AGENT_SPAN = "agent.execute"  # the serving app's span per agent execution (agent_jobs.serving.telemetry)
LOG_EVERY_S = 60.0  # at most one warning a minute per kind of trouble: a dead receiver must not flood the log


@dataclass
class TelemetryCounters:
    """What happened to the telemetry since `install` (thread-safe; `snapshot` for a consistent copy)."""

    spans_queued: int = 0  # accepted into the queue
    spans_dropped: int = 0  # refused because the queue was full
    spans_exported: int = 0  # acknowledged by Zerobus
    spans_failed: int = 0  # in batches that failed to export
    span_batches: int = 0
    span_export_failures: int = 0
    metric_exports: int = 0
    metric_export_failures: int = 0
    pending: int = 0  # queued, not yet handed to the exporter
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def try_enqueue(self, limit: int) -> bool:
        with self._lock:
            if self.pending >= limit:
                self.spans_dropped += 1
                return False
            self.pending += 1
            self.spans_queued += 1
            return True

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {k: v for k, v in vars(self).items() if not k.startswith("_")}


class _RateLimitedLog:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock, self._last = clock, -LOG_EVERY_S

    def warning(self, message: str, *args: Any) -> None:
        now = self._clock()
        if now - self._last >= LOG_EVERY_S:
            self._last = now
            log.warning(message, *args)


class CountingSpanExporter(OTLPSpanExporter):
    """The OTLP/HTTP span exporter, counting what it exports and what fails; it never raises."""

    def __init__(self, counters: TelemetryCounters, table: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.counters, self.table = counters, table
        self._trouble = _RateLimitedLog()
        self._dropped_logged = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        n = len(spans)
        self.counters.add(pending=-n, span_batches=1)
        try:
            result = super().export(spans)
        except Exception as exc:  # the SDK catches too; this keeps the counters right whatever happens
            log.debug("telemetry: span export raised", exc_info=True)
            result, reason = SpanExportResult.FAILURE, type(exc).__name__
        else:
            reason = "see the exporter's log above"
        if result is SpanExportResult.SUCCESS:
            self.counters.add(spans_exported=n)
        else:
            self.counters.add(spans_failed=n, span_export_failures=1)
            self._trouble.warning(
                "telemetry: exporting %d spans to %s failed (%s); %d failed batches so far",
                n, self.table, reason, self.counters.span_export_failures,
            )  # fmt: skip
        dropped = self.counters.spans_dropped
        if dropped > self._dropped_logged:
            self._dropped_logged = dropped
            self._trouble.warning("telemetry: %d spans dropped so far (export queue full)", dropped)
        return result


class CountingMetricExporter(OTLPMetricExporter):
    """The OTLP/HTTP metric exporter, counting exports and failures; it never raises."""

    def __init__(self, counters: TelemetryCounters, table: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.counters, self.table = counters, table
        self._trouble = _RateLimitedLog()

    def export(
        self, metrics_data: MetricsData, timeout_millis: float | None = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        try:
            result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception:
            log.debug("telemetry: metric export raised", exc_info=True)
            result = MetricExportResult.FAILURE
        if result is MetricExportResult.SUCCESS:
            self.counters.add(metric_exports=1)
        else:
            self.counters.add(metric_export_failures=1)
            self._trouble.warning("telemetry: exporting metrics to %s failed", self.table)
        return result


class BoundedSpanProcessor(SpanProcessor):
    """The SDK's BatchSpanProcessor behind a counted limit: a span is queued only while fewer than `limit`
    wait, otherwise dropped and counted here. The inner processor's own queue is larger than the limit, so it
    never drops on its own (and never logs a warning per dropped span on the request path)."""

    def __init__(
        self, exporter: CountingSpanExporter, counters: TelemetryCounters, settings: TelemetrySettings
    ) -> None:
        self.counters, self.limit = counters, settings.queue_size
        self._inner = BatchSpanProcessor(
            exporter,
            max_queue_size=settings.queue_size + settings.batch_size,
            schedule_delay_millis=settings.batch_interval_s * 1000,
            max_export_batch_size=settings.batch_size,
            export_timeout_millis=settings.export_timeout_s * 1000,
        )

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is None or not span.context.trace_flags.sampled:
            return  # recorded for the metrics only
        if self.counters.try_enqueue(self.limit):
            self._inner.on_end(span)

    def shutdown(self) -> None:
        self._inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class RecordUnsampled(Sampler):
    """ParentBased(TraceIdRatioBased(rate)), but a trace it does not sample is still recorded (not
    exported), so that processors see every span: the metrics then count all executions."""

    def __init__(self, rate: float) -> None:
        self._inner = ParentBased(TraceIdRatioBased(rate))

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        result = self._inner.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        if result.decision is Decision.DROP:
            return SamplingResult(Decision.RECORD_ONLY, result.attributes, result.trace_state)
        return result

    def get_description(self) -> str:
        return f"RecordUnsampled({self._inner.get_description()})"  # type: ignore[no-untyped-call]


class AgentMetricsProcessor(SpanProcessor):
    """Every recorded `agent.execute` span -> `agent.execution.duration` (ms histogram) and
    `agent.executions` (counter), by `agent.name` and `agent.status` (ok / error)."""

    def __init__(self, meter: metrics.Meter) -> None:
        self._duration = meter.create_histogram(
            "agent.execution.duration", unit="ms", description="Duration of agent executions"
        )
        self._count = meter.create_counter("agent.executions", unit="1", description="Agent executions")

    def on_end(self, span: ReadableSpan) -> None:
        if span.name != AGENT_SPAN or span.start_time is None or span.end_time is None:
            return
        name = (span.attributes or {}).get("agent.name")
        status = "error" if span.status.status_code is StatusCode.ERROR else "ok"
        attributes = {"agent.name": str(name) if name is not None else "unknown", "agent.status": status}
        self._duration.record((span.end_time - span.start_time) / 1e6, attributes)
        self._count.add(1, attributes)


class TelemetryHandle:
    """What `install` returns: the providers to give the app, the counters, and `shutdown`."""

    def __init__(
        self,
        enabled: bool,
        tracer_provider: trace.TracerProvider,
        meter_provider: metrics.MeterProvider | None,
        counters: TelemetryCounters,
        token: ZerobusToken | None,
    ) -> None:
        self.enabled = enabled
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.counters = counters
        self.token = token
        self._closed = False

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        """Export what waits now (blocking, up to `timeout_s`); for shutdown and tests, not for requests."""
        if not isinstance(self.tracer_provider, TracerProvider):
            return True
        done = self.tracer_provider.force_flush(int(timeout_s * 1000))
        if isinstance(self.meter_provider, MeterProvider):
            done = self.meter_provider.force_flush(int(timeout_s * 1000)) and done
        return done

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Flush and stop, returning within about `timeout_s` even while the receiver hangs (the SDK's own
        shutdown waits up to 30 s; it goes on in a daemon thread that dies with the process)."""
        if self._closed or not self.enabled:
            self._closed = True
            return
        self._closed = True
        providers: list[TracerProvider | MeterProvider] = [
            p for p in (self.tracer_provider, self.meter_provider) if isinstance(p, (TracerProvider, MeterProvider))
        ]

        def stop() -> None:
            for provider in providers:
                try:
                    provider.shutdown()
                except Exception:
                    log.debug("telemetry: shutdown failed", exc_info=True)

        worker = threading.Thread(target=stop, name="telemetry-shutdown", daemon=True)
        worker.start()
        worker.join(timeout_s)
        if worker.is_alive():
            log.warning("telemetry: shutdown did not finish within %.1f s; unsent telemetry is lost", timeout_s)
        log.info("telemetry: stopped; %s", self.counters.snapshot())


def _session(token: ZerobusToken) -> requests.Session:
    session = requests.Session()
    session.auth = BearerAuth(token)
    return session


def install(settings: TelemetrySettings, *, token: ZerobusToken | None = None) -> TelemetryHandle:
    """Configure the SDK for the app's spans (and metrics); nothing global is set: give
    `handle.tracer_provider` to the app. With telemetry off, a handle whose providers do nothing."""
    counters = TelemetryCounters()
    if not settings.enabled:
        return TelemetryHandle(False, trace.NoOpTracerProvider(), None, counters, None)
    assert settings.endpoint and settings.spans_table and settings.host and settings.client_id
    assert settings.client_secret is not None
    token = token or ZerobusToken(
        settings.host,
        settings.client_id,
        settings.client_secret.get_secret_value(),
        settings.tables,
        workspace_id=settings.resolved_workspace_id,
        refresh_margin_s=settings.token_refresh_margin_s,
        timeout_s=settings.export_timeout_s,
    )
    resource = Resource.create({"service.name": settings.service_name})
    processors: list[SpanProcessor] = []
    meter_provider: MeterProvider | None = None
    if settings.metrics_table:
        metric_exporter = CountingMetricExporter(
            counters,
            settings.metrics_table,
            endpoint=f"{settings.endpoint}/v1/metrics",
            headers={TABLE_HEADER: settings.metrics_table},
            timeout=settings.export_timeout_s,
            session=_session(token),
            # Delta: each row of the metrics table is one interval's counts, so SQL can sum rows across
            # intervals and app instances (cumulative rows would have to be differenced per instance).
            preferred_temporality={
                Counter: AggregationTemporality.DELTA,
                Histogram: AggregationTemporality.DELTA,
                ObservableCounter: AggregationTemporality.DELTA,
            },
        )
        reader = PeriodicExportingMetricReader(
            metric_exporter,
            export_interval_millis=settings.metrics_interval_s * 1000,
            export_timeout_millis=settings.export_timeout_s * 1000,
        )
        meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
        meter = meter_provider.get_meter("agent_jobs.telemetry_otel")
        processors.append(AgentMetricsProcessor(meter))
        _observe_counters(meter, counters)
    span_exporter = CountingSpanExporter(
        counters,
        settings.spans_table,
        endpoint=f"{settings.endpoint}/v1/traces",
        headers={TABLE_HEADER: settings.spans_table},
        timeout=settings.export_timeout_s,
        session=_session(token),
    )
    processors.append(BoundedSpanProcessor(span_exporter, counters, settings))
    ratio = settings.sample_rate
    sampler = RecordUnsampled(ratio) if meter_provider else ParentBased(TraceIdRatioBased(ratio))
    tracer_provider = TracerProvider(resource=resource, sampler=sampler)
    for processor in processors:
        tracer_provider.add_span_processor(processor)
    log.info(
        "telemetry: spans to %s%s via %s, sample rate %s, batches every %s s or %d spans",
        settings.spans_table,
        f", metrics to {settings.metrics_table}" if settings.metrics_table else "",
        settings.endpoint, settings.sample_rate, settings.batch_interval_s, settings.batch_size,
    )  # fmt: skip
    return TelemetryHandle(True, tracer_provider, meter_provider, counters, token)


def _observe_counters(meter: metrics.Meter, counters: TelemetryCounters) -> None:
    """The telemetry's own health as metrics, so that drops and failures show in the metrics table too."""

    def reader(name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        return lambda _options: [Observation(getattr(counters, name))]

    for name in ("spans_dropped", "spans_exported", "spans_failed", "span_export_failures"):
        meter.create_observable_counter(f"telemetry.{name}", callbacks=[reader(name)], unit="1")
