"""A local HTTP stand-in for the Databricks endpoints the jobs call, driven by the real clients.

- POST <prefix>/v1/messages: the Anthropic Messages API of a serving endpoint (seed 000's
  https://<host>/serving-endpoints/anthropic);
- GET /api/2.0/secrets/get: the Secrets API that databricks-sdk's dbutils.secrets.get calls.

Every request is recorded; `behaviour` switches the messages endpoint to an HTTP error.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

TOKEN = "dapi-standin-token"


class StandIn:
    def __init__(self, secrets: dict[tuple[str, str], str] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.secrets = secrets or {}
        self.status = 200
        self.answer = "## Summary\nThe runs look healthy.\n## Findings\n- relevance is stable"
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                standin.requests.append({"method": "GET", "path": url.path, "headers": dict(self.headers)})
                if url.path == "/api/2.0/secrets/get":
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    value = standin.secrets.get((query.get("scope", ""), query.get("key", "")))
                    if value is None:
                        self._reply(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such secret"})
                    else:
                        self._reply(200, {"key": query["key"], "value": base64.b64encode(value.encode()).decode()})
                    return
                self._reply(404, {"error_code": "NOT_FOUND", "message": url.path})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                standin.requests.append(
                    {"method": "POST", "path": self.path, "headers": dict(self.headers), "body": body}
                )
                if not self.path.endswith("/v1/messages"):
                    self._reply(404, {"message": self.path})
                elif self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._reply(
                        401, {"type": "error", "error": {"type": "authentication_error", "message": "bad token"}}
                    )
                elif standin.status != 200:
                    self._reply(standin.status, {"type": "error", "error": {"type": "api_error", "message": "boom"}})
                else:
                    self._reply(200, {
                        "id": "msg_standin", "type": "message", "role": "assistant", "model": body["model"],
                        "content": [{"type": "text", "text": standin.answer}],
                        "stop_reason": "end_turn", "stop_sequence": None,
                        "usage": {"input_tokens": 321, "output_tokens": 42},
                    })  # fmt: skip

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def posts(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "POST"]
