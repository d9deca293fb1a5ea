"""The serving app's expected failures and the one JSON body every error response has.

Each failure carries its HTTP status and a stable code, so `/api/execute`, A2A and MCP report the same thing
the same way. Messages are written for the caller: they never hold a traceback, a token, a password, a DSN or
SQL parameters.
"""

from __future__ import annotations

from typing import Any


class ServingError(Exception):
    """A failure with a status and a code the client can act on."""

    status = 500
    code = "INTERNAL"

    def __init__(self, message: str, *, details: Any = None, dependency: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.dependency = dependency

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        return error_body(self.code, self.message, request_id=request_id, details=self.details)


class Unauthenticated(ServingError):
    """No identity: Databricks Apps forwards the user's identity headers, so their absence means the request
    did not come through the platform's proxy."""

    status = 401
    code = "UNAUTHENTICATED"


class UnknownAgent(ServingError):
    status = 404
    code = "UNKNOWN_AGENT"


class PayloadTooLarge(ServingError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


class InvalidRequest(ServingError):
    """A body that is not JSON, not of the request's shape, or data the agent cannot take."""

    status = 422
    code = "INVALID_REQUEST"


class UpstreamError(ServingError):
    """A dependency answered, but with an error or an answer the app cannot use (e.g. an LLM reply that is not
    the JSON the agent asked for)."""

    status = 502
    code = "UPSTREAM_ERROR"


class Unavailable(ServingError):
    """A dependency did not answer in time, refused the connection, or said it is overloaded: retrying later
    may work."""

    status = 503
    code = "UNAVAILABLE"


def error_body(code: str, message: str, *, request_id: str | None = None, details: Any = None) -> dict[str, Any]:
    """{"error": {"code", "message", "request_id"?, "details"?}}: the shape of every error response."""
    error: dict[str, Any] = {"code": code, "message": message}
    if request_id:
        error["request_id"] = request_id
    if details is not None:
        error["details"] = details
    return {"error": error}
