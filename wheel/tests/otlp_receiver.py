"""A local stand-in of the two endpoints the telemetry export talks to, on 127.0.0.1:

- POST /oidc/v1/token: the workspace's OAuth client-credentials endpoint; issues `tok-<n>` valid for
  `token_lifetime_s`, records the form and the Basic credentials; `token_status` != 200 refuses;
- POST /v1/traces and /v1/metrics: Zerobus Ingest's OTLP/HTTP (protobuf) receiver; requires a bearer token it
  issued and not `revoked`, records each request's headers and decoded body (ExportTraceServiceRequest /
  ExportMetricsServiceRequest); `mode` "ok", "fail" (HTTP 500) or "hang" (blocks until `release()`).
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass
class Export:
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any  # the decoded protobuf request
    at: float = field(default_factory=time.monotonic)

    @property
    def spans(self) -> list[Any]:
        return [s for rs in self.body.resource_spans for ss in rs.scope_spans for s in ss.spans]


class Receiver:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._release = threading.Event()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.exports: list[Export] = []
            self.token_requests: list[dict[str, Any]] = []
            self.refused: list[str] = []  # tokens answered with 401
            self.issued: list[str] = []
            self.revoked: set[str] = set()
            self.mode = "ok"
            self.token_status = 200
            self.token_lifetime_s = 3600
        self._release.set()  # let any request still hanging from a previous test finish
        self._release = threading.Event()

    def release(self) -> None:
        self._release.set()

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()

    def traces(self) -> list[Export]:
        with self.lock:
            return [e for e in self.exports if e.path == "/v1/traces"]

    def metrics(self) -> list[Export]:
        with self.lock:
            return [e for e in self.exports if e.path == "/v1/metrics"]

    def spans(self) -> list[Any]:
        return [s for e in self.traces() for s in e.spans]

    def wait_for(self, predicate: Any, timeout_s: float = 5.0) -> bool:
        """Poll (every 10 ms) until predicate() is true; the exporter's threads deliver asynchronously."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return bool(predicate())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == "/oidc/v1/token":
                    self._token(data)
                elif self.path in ("/v1/traces", "/v1/metrics"):
                    self._export(data)
                else:
                    self._reply(404, b"{}", "application/json")

            def _token(self, data: bytes) -> None:
                basic = (self.headers.get("Authorization") or "").removeprefix("Basic ")
                form = {k: v[0] for k, v in parse_qs(data.decode()).items()}
                with receiver.lock:
                    receiver.token_requests.append(
                        {"form": form, "basic": base64.b64decode(basic).decode() if basic else ""}
                    )
                    status, lifetime = receiver.token_status, receiver.token_lifetime_s
                    token = f"tok-{len(receiver.issued) + 1}"
                    if status == 200:
                        receiver.issued.append(token)
                if status != 200:
                    body = b'{"error": "invalid_client", "error_description": "Client authentication failed"}'
                    self._reply(status, body, "application/json")
                    return
                body = f'{{"access_token": "{token}", "token_type": "Bearer", "expires_in": {lifetime}}}'
                self._reply(200, body.encode(), "application/json")

            def _export(self, data: bytes) -> None:
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                with receiver.lock:
                    valid = token in receiver.issued and token not in receiver.revoked
                    if not valid:
                        receiver.refused.append(token)
                    mode, release = receiver.mode, receiver._release
                if not valid:
                    self._reply(401, b'{"error_code": "UNAUTHENTICATED"}', "application/json")
                    return
                traces = self.path == "/v1/traces"
                body = (ExportTraceServiceRequest if traces else ExportMetricsServiceRequest).FromString(data)
                with receiver.lock:
                    receiver.exports.append(Export(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if mode == "hang":
                    release.wait(30)
                if mode == "fail":
                    self._reply(500, b'{"error_code": "INTERNAL_ERROR"}', "application/json")
                    return
                reply = (ExportTraceServiceResponse if traces else ExportMetricsServiceResponse)()
                self._reply(200, reply.SerializeToString(), "application/x-protobuf")

        return Handler
