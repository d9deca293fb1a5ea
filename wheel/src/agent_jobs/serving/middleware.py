"""Per-request guards, as one pure ASGI middleware in front of every route (the API, A2A and MCP alike):

- a request id: the proxy's `X-Request-Id` when it is well-formed, a new one otherwise; echoed in the response
  and put on the request's span;
- the body limit: a declared `Content-Length` over the limit is 413 at once, a streamed body over it fails
  when read;
- the identity (`identity.py`): 401 without forwarded identity headers, except for `/health` and in local mode.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from agent_jobs.serving import identity
from agent_jobs.serving.errors import PayloadTooLarge, ServingError, Unauthenticated
from agent_jobs.serving.telemetry import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
OPEN_PATHS = frozenset({"/health"})

_request_id: ContextVar[str] = ContextVar("agent_jobs.serving.request_id", default="")


def current_request_id() -> str:
    """The id of the request being served ("" outside a request)."""
    return _request_id.get()


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, local: bool, max_body_bytes: int) -> None:
        self.app = app
        self.local = local
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        given = headers.get(REQUEST_ID_HEADER, "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        trace.get_current_span().set_attribute("app.request_id", request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            self._check_length(headers)
            who = None if scope.get("path") in OPEN_PATHS else self._identity(headers)
        except ServingError as exc:
            await JSONResponse(exc.body(request_id), status_code=exc.status)(scope, receive, send_with_id)
            return
        scope["state"]["identity"] = who
        identity.set_current(who)
        _request_id.set(request_id)
        await self.app(scope, self._limited(receive), send_with_id)

    def _check_length(self, headers: Headers) -> None:
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            raise PayloadTooLarge(f"the request body is larger than {self.max_body_bytes} bytes")

    def _identity(self, headers: Headers) -> identity.Identity:
        who = identity.identity_from_headers(headers)
        if who is not None:
            return who
        if self.local:
            return identity.LOCAL_IDENTITY
        raise Unauthenticated(
            "no user identity: requests must come through Databricks Apps, which forwards X-Forwarded-User / "
            "X-Forwarded-Email (start the app with --local to run it without them)"
        )

    def _limited(self, receive: Receive) -> Receive:
        received = 0
        limit = self.max_body_bytes

        async def limited() -> Message:
            nonlocal received
            message: dict[str, Any] | Message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
            return message

        return limited
