"""What Zerobus Ingest writes into the Delta tables for an OTLP request, per its documented mapping (the
"OpenTelemetry table reference for Zerobus Ingest"): each span or data point becomes one flat row with the
resource and scope embedded; ids as lowercase hex; enums as their OTLP names (SPAN_KIND_SERVER,
STATUS_CODE_ERROR); attributes as objects (VARIANT there; JSON text in the local test tables); the added
record_id, time (from start_time_unix_nano or time_unix_nano, microseconds), date and service_name.

Test support only: it turns what the real exporter sent (decoded by otlp_receiver) into table rows, so the
views and dashboard queries run over data shaped like production's. Rows are written as JSON lines.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status


def value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind) if kind else None


def attrs(key_values: Any) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in key_values}


def _time(nanos: int) -> tuple[str, str]:
    moment = datetime.fromtimestamp(nanos // 1000 / 1e6, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), moment.strftime("%Y-%m-%d")


def _context(resource: Any, resource_url: str, scope: Any) -> dict[str, Any]:
    return {
        "resource": {"attributes": attrs(resource.attributes), "dropped_attributes_count": resource.dropped_attributes_count},
        "resource_schema_url": resource_url,
        "instrumentation_scope": {"name": scope.name, "version": scope.version, "attributes": attrs(scope.attributes),
                                  "dropped_attributes_count": scope.dropped_attributes_count},
    }  # fmt: skip


def span_rows(requests: list[Any]) -> list[dict[str, Any]]:
    rows = []
    for request in requests:
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for s in ss.spans:
                    when, day = _time(s.start_time_unix_nano)
                    rows.append({
                        "record_id": str(uuid.uuid4()), "time": when, "date": day,
                        "service_name": attrs(rs.resource.attributes).get("service.name"),
                        "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(), "trace_state": s.trace_state,
                        "parent_span_id": s.parent_span_id.hex(), "flags": s.flags, "name": s.name,
                        "kind": Span.SpanKind.Name(s.kind),
                        "start_time_unix_nano": s.start_time_unix_nano, "end_time_unix_nano": s.end_time_unix_nano,
                        "attributes": attrs(s.attributes), "dropped_attributes_count": s.dropped_attributes_count,
                        "events": [{"time_unix_nano": e.time_unix_nano, "name": e.name, "attributes": attrs(e.attributes),
                                    "dropped_attributes_count": e.dropped_attributes_count} for e in s.events],
                        "dropped_events_count": s.dropped_events_count,
                        "links": [{"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex(),
                                   "trace_state": link.trace_state, "attributes": attrs(link.attributes),
                                   "dropped_attributes_count": link.dropped_attributes_count, "flags": link.flags}
                                  for link in s.links],
                        "dropped_links_count": s.dropped_links_count,
                        "status": {"message": s.status.message, "code": Status.StatusCode.Name(s.status.code)},
                        **_context(rs.resource, rs.schema_url, ss.scope), "span_schema_url": ss.schema_url,
                    })  # fmt: skip
    return rows


def _temporality(t: int) -> str:
    return str(AggregationTemporality.Name(t))


def metric_rows(requests: list[Any]) -> list[dict[str, Any]]:
    rows = []
    for request in requests:
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    for p in getattr(m, kind).data_points:
                        when, day = _time(p.time_unix_nano)
                        row: dict[str, Any] = {
                            "record_id": str(uuid.uuid4()), "time": when, "date": day,
                            "service_name": attrs(rm.resource.attributes).get("service.name"),
                            "start_time_unix_nano": p.start_time_unix_nano, "time_unix_nano": p.time_unix_nano,
                            "name": m.name, "description": m.description, "unit": m.unit, "metric_type": kind,
                            "metadata": attrs(m.metadata),
                            **_context(rm.resource, rm.schema_url, sm.scope), "metric_schema_url": sm.schema_url,
                        }  # fmt: skip
                        if kind == "histogram":
                            row["histogram"] = {
                                "count": p.count, "sum": p.sum, "bucket_counts": list(p.bucket_counts),
                                "explicit_bounds": list(p.explicit_bounds), "exemplars": [],
                                "attributes": attrs(p.attributes), "flags": p.flags, "min": p.min, "max": p.max,
                                "aggregation_temporality": _temporality(m.histogram.aggregation_temporality),
                            }  # fmt: skip
                        elif kind in ("sum", "gauge"):
                            number = p.as_double if p.WhichOneof("value") == "as_double" else float(p.as_int)
                            row[kind] = {
                                "value": number,
                                "exemplars": [],
                                "attributes": attrs(p.attributes),
                                "flags": p.flags,
                            }
                            if kind == "sum":
                                row["sum"]["aggregation_temporality"] = _temporality(m.sum.aggregation_temporality)
                                row["sum"]["is_monotonic"] = m.sum.is_monotonic
                        rows.append(row)
    return rows


def write_json_lines(rows: list[dict[str, Any]], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "part-0.json").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return directory
