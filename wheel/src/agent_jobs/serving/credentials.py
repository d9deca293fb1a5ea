"""The Postgres password of the memory pool when it is a Databricks OAuth token (Lakebase).

Lakebase accepts a short-lived OAuth credential (about an hour) as the password of the app's role. The pool
asks `RefreshingPassword` for a password each time it opens a connection; it returns the cached token while
that token has more than `margin_s` left, and fetches a new one otherwise, so a new connection never uses an
expired token (open connections stay valid: Postgres checks the password only at login).

Two Databricks APIs issue the credential, both in databricks-sdk (0.156.0 is pinned):
- Lakebase Autoscaling: `w.postgres.generate_database_credential(endpoint="projects/.../endpoints/...")`,
  added in databricks-sdk 0.79.0; the app gets the endpoint from its postgres resource (`LAKEBASE_ENDPOINT`
  with `valueFrom`);
- Lakebase Provisioned (older): `w.database.generate_database_credential(instance_names=[...])`.

The fetch is a blocking SDK call, so it runs in a worker thread. Tokens are never logged or shown.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

log = logging.getLogger(__name__)

# When the API does not say when a credential expires, assume a quarter of the documented hour.
DEFAULT_LIFETIME_S = 900.0


class CredentialError(Exception):
    """No usable credential could be fetched."""


@dataclass(frozen=True)
class Credential:
    token: str = field(repr=False)
    expires_at: float  # seconds since the epoch


Fetch = Callable[[], Credential]
Clock = Callable[[], float]


class RefreshingPassword:
    """An async callable returning a password valid for at least `margin_s` more seconds."""

    def __init__(self, fetch: Fetch, *, margin_s: float, clock: Clock = time.time, name: str = "postgres") -> None:
        self._fetch = fetch
        self._margin = margin_s
        self._clock = clock
        self._name = name
        self._credential: Credential | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    @property
    def expires_in(self) -> float | None:
        """Seconds until the cached token expires (None before the first fetch)."""
        return None if self._credential is None else self._credential.expires_at - self._clock()

    async def __call__(self) -> str:
        async with self._lock:
            now = self._clock()
            if self._credential is None or self._credential.expires_at - self._margin <= now:
                try:
                    credential = await asyncio.to_thread(self._fetch)
                except CredentialError:
                    raise
                except Exception as exc:  # the SDK's errors: auth, permission, network
                    raise CredentialError(
                        f"could not get a {self._name} credential: {type(exc).__name__}: {exc}"
                    ) from exc
                if credential.expires_at <= now:
                    raise CredentialError(f"the {self._name} credential issued is already expired")
                if credential.expires_at - self._margin <= now:
                    log.warning("the %s credential lives less than the %.0f s refresh margin", self._name, self._margin)
                self._credential = credential
                self.fetches += 1
                log.info("fetched a %s credential, valid for %.0f s", self._name, credential.expires_at - now)
            return self._credential.token


def _epoch(value: Any, now: float) -> float:
    """An expiry as seconds since the epoch, from a protobuf Timestamp (the postgres API) or an RFC 3339 string."""
    if value is None or value == "":
        return now + DEFAULT_LIFETIME_S
    if hasattr(value, "seconds") and hasattr(value, "nanos"):
        return float(value.seconds) + float(value.nanos) / 1e9
    text = str(value).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CredentialError(f"the credential's expiry {value!r} is not a timestamp") from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()


def _credential(token: Any, expiry: Any) -> Credential:
    if not isinstance(token, str) or not token:
        raise CredentialError("the credential API answered without a token")
    return Credential(token, _epoch(expiry, time.time()))


def lakebase_fetch(workspace: Any, endpoint: str) -> Fetch:
    """Lakebase Autoscaling: a credential for `projects/<p>/branches/<b>/endpoints/<e>`."""

    def fetch() -> Credential:
        result = workspace.postgres.generate_database_credential(endpoint=endpoint)
        return _credential(result.token, result.expire_time)

    return fetch


def database_instance_fetch(workspace: Any, instance: str) -> Fetch:
    """Lakebase Provisioned: a credential for a database instance."""

    def fetch() -> Credential:
        result = workspace.database.generate_database_credential(
            instance_names=[instance], request_id=str(uuid.uuid4())
        )
        return _credential(result.token, result.expiration_time)

    return fetch
