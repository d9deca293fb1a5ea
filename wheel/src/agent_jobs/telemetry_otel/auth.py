"""The bearer token Zerobus Ingest accepts: OAuth client credentials of the app's service principal against
the workspace's `<host>/oidc/v1/token`, scope `all-apis`, with `authorization_details` scoping the token to
exactly the telemetry tables (USE CATALOG, USE SCHEMA, SELECT and MODIFY on each table) and the Zerobus
`resource` of the workspace, as Databricks' own Zerobus SDKs request it.

The token is fetched lazily, in the exporter's thread (never on a request), cached, and renewed
`refresh_margin_s` before it expires; a 401/403 from Zerobus drops it so the next export fetches a new one.
The client secret and the token are never logged or put into an exception message.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import requests
from requests.auth import AuthBase

log = logging.getLogger("agent_jobs.telemetry_otel")


class TokenError(Exception):
    """The token endpoint refused or could not be reached (no secret in the message)."""


def authorization_details(tables: Sequence[str]) -> list[dict[str, Any]]:
    """USE CATALOG / USE SCHEMA on the tables' parents, SELECT and MODIFY on each table: what Zerobus needs."""
    details: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()

    def add(object_type: str, path: str, privileges: list[str]) -> None:
        if (object_type, path) not in seen:
            seen.add((object_type, path))
            details.append(
                {"type": "unity_catalog_privileges", "privileges": privileges,
                 "object_type": object_type, "object_full_path": path}
            )  # fmt: skip

    for table in tables:
        catalog, schema, _ = table.split(".")
        add("CATALOG", catalog, ["USE CATALOG"])
        add("SCHEMA", f"{catalog}.{schema}", ["USE SCHEMA"])
    for table in tables:
        add("TABLE", table, ["SELECT", "MODIFY"])
    return details


class ZerobusToken:
    """A cached OAuth token for the telemetry tables. `clock` is monotonic seconds (injectable for tests)."""

    def __init__(
        self,
        host: str,
        client_id: str,
        client_secret: str,
        tables: Sequence[str],
        *,
        workspace_id: str | None = None,
        refresh_margin_s: float = 300.0,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
    ) -> None:
        self.url = host.rstrip("/") + "/oidc/v1/token"
        self._client = (client_id, client_secret)
        self._form = {
            "grant_type": "client_credentials",
            "scope": "all-apis",
            "authorization_details": json.dumps(authorization_details(tables), separators=(",", ":")),
        }
        if workspace_id:
            self._form["resource"] = f"api://databricks/workspaces/{workspace_id}/zerobusDirectWriteApi"
        self._margin = refresh_margin_s
        self._timeout = timeout_s
        self._clock = clock
        self._session = session or requests.Session()
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self.fetches = 0
        self.failures = 0

    def token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at - self._margin:
                self._token, lifetime = self._fetch()
                self._expires_at = self._clock() + lifetime
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _fetch(self) -> tuple[str, float]:
        self.fetches += 1
        try:
            response = self._session.post(self.url, data=self._form, auth=self._client, timeout=self._timeout)
        except requests.RequestException as exc:
            self.failures += 1
            raise TokenError(f"token endpoint {self.url} unreachable: {type(exc).__name__}") from None
        if response.status_code != 200:
            self.failures += 1
            raise TokenError(f"token endpoint {self.url} answered {response.status_code}: {_reason(response)}")
        try:
            body = response.json()
            token = body["access_token"]
            lifetime = float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            self.failures += 1
            raise TokenError(f"token endpoint {self.url} answered without an access_token") from None
        if not isinstance(token, str) or not token or not lifetime > 0:
            self.failures += 1
            raise TokenError(f"token endpoint {self.url} answered an unusable token")
        log.info("telemetry: new Zerobus token, valid %.0f s", lifetime)
        return token, lifetime


def _reason(response: requests.Response) -> str:
    """The OAuth error fields only (never echo the whole body: it could hold what we sent)."""
    try:
        body = response.json()
    except ValueError:
        return response.reason or "no reason"
    if not isinstance(body, dict):
        return response.reason or "no reason"
    parts = [str(body.get(k))[:200] for k in ("error", "error_description") if body.get(k)]
    return ": ".join(parts) or response.reason or "no reason"


class BearerAuth(AuthBase):
    """requests auth: a current token on every export request; a refused one is dropped for the next."""

    def __init__(self, source: ZerobusToken) -> None:
        self.source = source

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.source.token()}"
        request.register_hook("response", self._on_response)
        return request

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        if response.status_code in (401, 403):
            self.source.invalidate()
        return response
