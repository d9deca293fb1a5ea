"""A local stand-in of the workspace APIs the serving app calls, as a real HTTP server (Starlette under uvicorn),
driven by the app's real clients (httpx, databricks-sdk). Used by the serving tests and `make bench-app`.

- POST /serving-endpoints/<chat>/invocations: OpenAI-compatible chat completions; the default answer is a
  fraud assessment derived from the transaction in the last user message (`chat_answer` replaces it);
  `llm_delay_s` is a fixed latency (the benchmark's 20 ms), `llm_status` an error status to answer with,
  `llm_hang_s` a delay that outlasts the client's timeout;
- POST /serving-endpoints/<embeddings>/invocations: deterministic embeddings of `dim` dimensions (hashed
  words, normalised: texts sharing words are similar); `embeddings_status` an error status;
- GET /api/2.0/fs/files/<path>: the Files API's download of `files[path]` (404 when absent;
  `files_status` answers every download with that status);
- POST /api/2.0/postgres/credentials and /api/2.0/database/credentials: Lakebase OAuth credentials, a new
  token each call, valid for `token_lifetime_s`; `on_token(token)` runs first (the tests make it the
  Postgres role's password, so only the current token logs in);
- GET /.well-known/databricks-config: what databricks-sdk reads when it starts;
- POST /oidc/v1/token (OAuth client credentials: the app's service principal's token for Zerobus Ingest) and
  POST /v1/traces, /v1/metrics (Zerobus Ingest's OTLP/HTTP): exports need a token issued here, are decoded and
  counted (`otlp_counts`, also GET /standin/otlp) and, when recording, kept in `otlp` with their table header.

`python serving_standin.py --port N [--llm-delay-s 0.02]` runs it alone (the benchmark's subprocess).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CHAT = "chat-llm"
EMBEDDINGS = "embed-model"
TOKEN = "dapi-standin-token"


def embed(text: str, dim: int) -> list[float]:
    """A deterministic bag-of-words vector: each word adds +-1 at a hashed position; normalised."""
    vector = [0.0] * dim
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        vector[int.from_bytes(digest[:4], "big") % dim] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector] if any(vector) else [1.0 / math.sqrt(dim)] * dim


def default_assessment(messages: list[dict[str, Any]]) -> str:
    """An assessment from the transaction's amount, the way a cautious analyst would answer."""
    try:
        question = json.loads(messages[-1]["content"])
        amount = float(question["transaction"]["amount"])
        similar = len(question.get("similar_cases", []))
    except (KeyError, ValueError, TypeError, IndexError):
        return '{"decision": "review", "risk_score": 0.5, "reasons": ["could not read the transaction"]}'
    decision, risk = ("decline", 0.9) if amount > 10_000 else ("review", 0.6) if amount > 1_000 else ("approve", 0.1)
    reasons = [f"amount {amount:.2f} is {'high' if amount > 1000 else 'ordinary'}", f"{similar} similar cases seen"]
    return json.dumps({"decision": decision, "risk_score": risk, "reasons": reasons})


class WorkspaceStandIn:
    def __init__(self, dim: int = 64) -> None:
        self.default_dim = dim
        self.reset()
        self.app = Starlette(routes=[
            Route("/.well-known/databricks-config", self._config, methods=["GET"]),
            Route("/serving-endpoints/{name}/invocations", self._invoke, methods=["POST"]),
            Route("/api/2.0/fs/files/{path:path}", self._download, methods=["GET", "HEAD"]),
            Route("/api/2.0/postgres/credentials", self._postgres_credential, methods=["POST"]),
            Route("/api/2.0/database/credentials", self._database_credential, methods=["POST"]),
            Route("/oidc/v1/token", self._oauth_token, methods=["POST"]),
            Route("/v1/traces", self._otlp, methods=["POST"]),
            Route("/v1/metrics", self._otlp, methods=["POST"]),
            Route("/standin/otlp", self._otlp_counts, methods=["GET"]),
        ])  # fmt: skip
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def reset(self) -> None:
        """Back to a healthy workspace with nothing recorded (a module's tests share one server)."""
        self.dim = self.default_dim
        self.requests: list[dict[str, Any]] = []
        self.llm_delay_s = 0.0
        self.llm_hang_s = 0.0
        self.llm_status: int | None = None
        self.chat_answer: Callable[[list[dict[str, Any]]], str] = default_assessment
        self.embeddings_status: int | None = None
        self.files: dict[str, bytes] = {}
        self.files_status: int | None = None
        self.token_lifetime_s = 3600.0
        self.clock: Callable[[], float] = time.time  # what "now" is for the tokens' expiry
        self.tokens: list[str] = []
        self.on_token: Callable[[str], None] | None = None
        self.record = True
        self.oauth_tokens: set[str] = set()
        self.otlp: list[dict[str, Any]] = []  # {"path", "table", "items"} per accepted export
        self.otlp_counts = {"exports": 0, "spans": 0, "data_points": 0, "refused": 0}

    # --- lifecycle: a uvicorn server in a thread of the test process

    def __enter__(self) -> WorkspaceStandIn:
        sock = socket.socket()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the stand-in did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(10)

    @property
    def endpoints_url(self) -> str:
        return f"{self.url}/serving-endpoints"

    def calls(self, path_start: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].startswith(path_start)]

    # --- routes

    def _note(self, request: Request, body: Any = None) -> None:
        if self.record:
            self.requests.append(
                {
                    "method": request.method,
                    "path": request.url.path,
                    "body": body,
                    "authorization": request.headers.get("authorization"),
                }
            )

    async def _config(self, request: Request) -> Response:
        return JSONResponse({"workspace_id": "1234567890123456"})

    async def _invoke(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = await request.json()
        self._note(request, body)
        if name == CHAT:
            if self.llm_hang_s:
                await asyncio.sleep(self.llm_hang_s)
            if self.llm_delay_s:
                await asyncio.sleep(self.llm_delay_s)
            if self.llm_status:
                return JSONResponse(
                    {"error_code": "STANDIN", "message": f"the stand-in answers {self.llm_status}"}, self.llm_status
                )
            answer = self.chat_answer(body["messages"])
            return JSONResponse(
                {
                    "object": "chat.completion",
                    "model": name,
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
                    ],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 30, "total_tokens": 130},
                }
            )
        if name == EMBEDDINGS:
            if self.embeddings_status:
                return JSONResponse({"error_code": "STANDIN", "message": "embeddings failing"}, self.embeddings_status)
            data = [
                {"object": "embedding", "index": i, "embedding": embed(t, self.dim)}
                for i, t in enumerate(body["input"])
            ]
            return JSONResponse({"object": "list", "data": data, "model": name})
        return JSONResponse(
            {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"endpoint {name} does not exist"}, 404
        )

    async def _download(self, request: Request) -> Response:
        path = "/" + request.path_params["path"]
        self._note(request)
        if self.files_status:
            return JSONResponse({"error_code": "PERMISSION_DENIED", "message": "no READ VOLUME"}, self.files_status)
        content = self.files.get(path)
        if content is None:
            return JSONResponse({"error_code": "NOT_FOUND", "message": f"{path} does not exist"}, 404)
        headers = {
            "content-length": str(len(content)),
            "content-type": "application/octet-stream",
            "last-modified": "Mon, 01 Jan 2024 00:00:00 GMT",
        }
        return Response(b"" if request.method == "HEAD" else content, headers=headers)

    def _issue(self) -> tuple[str, str]:
        token = secrets.token_urlsafe(24)
        if self.on_token is not None:
            self.on_token(token)  # before answering: the token works the moment the app has it
        self.tokens.append(token)
        expiry = datetime.fromtimestamp(self.clock() + self.token_lifetime_s, tz=timezone.utc)
        return token, expiry.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    async def _postgres_credential(self, request: Request) -> Response:
        body = await request.json()
        self._note(request, body)
        token, expiry = await asyncio.to_thread(self._issue)
        return JSONResponse({"token": token, "expire_time": expiry})

    async def _database_credential(self, request: Request) -> Response:
        body = await request.json()
        self._note(request, body)
        token, expiry = await asyncio.to_thread(self._issue)
        return JSONResponse({"token": token, "expiration_time": expiry})

    async def _oauth_token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        self._note(request, form)
        token = f"zb-{secrets.token_urlsafe(16)}"
        self.oauth_tokens.add(token)
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime_s})

    async def _otlp(self, request: Request) -> Response:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if bearer not in self.oauth_tokens:
            self.otlp_counts["refused"] += 1
            return JSONResponse({"error_code": "UNAUTHENTICATED", "message": "no valid token"}, 401)
        data = await request.body()
        items, reply = await asyncio.to_thread(self._decode, request.url.path, data)  # off the event loop
        self.otlp_counts["exports"] += 1
        if self.record:
            table = request.headers.get("x-databricks-zerobus-table-name")
            self.otlp.append({"path": request.url.path, "table": table, "items": items})
        return Response(reply, media_type="application/x-protobuf")

    def _decode(self, path: str, data: bytes) -> tuple[list[str], bytes]:
        """The names of the exported spans or metrics, and the OTLP answer."""
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as traces

        if path == "/v1/traces":
            spans = traces.ExportTraceServiceRequest.FromString(data)
            items = [s.name for rs in spans.resource_spans for ss in rs.scope_spans for s in ss.spans]
            self.otlp_counts["spans"] += len(items)
            reply = traces.ExportTraceServiceResponse().SerializeToString()
        else:
            points = metrics.ExportMetricsServiceRequest.FromString(data)
            items = [m.name for rm in points.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
            self.otlp_counts["data_points"] += len(items)
            reply = metrics.ExportMetricsServiceResponse().SerializeToString()
        return items, reply

    async def _otlp_counts(self, request: Request) -> Response:
        return JSONResponse(self.otlp_counts)


def main() -> None:
    parser = argparse.ArgumentParser(description="The workspace stand-in, alone (for the benchmark).")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--llm-delay-s", type=float, default=0.02)
    args = parser.parse_args()
    standin = WorkspaceStandIn(dim=args.dim)
    standin.llm_delay_s = args.llm_delay_s
    standin.record = False  # a benchmark's requests would only grow memory
    uvicorn.run(standin.app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
