"""Who a request is served for: the user Databricks Apps forwards.

Databricks Apps' proxy authenticates every user and passes their identity to the app as headers:
`X-Forwarded-User` (the IdP's user id), `X-Forwarded-Email`, `X-Forwarded-Preferred-Username`, and, when user
authorization (on-behalf-of-user) is on, `X-Forwarded-Access-Token`, the user's own OAuth token with the app's
user API scopes. Only the proxy can reach the app's port, so a request without them did not come through it:
it is refused (401), unless the app was started in local mode, where a fixed local identity stands in (logged
loudly at start).

The forwarded token is kept for agents that call Databricks on the user's behalf; it is never logged, put in
a span, stored or shown (`repr` hides it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field

from agent_jobs.serving.errors import Unauthenticated

FORWARDED_USER = "x-forwarded-user"
FORWARDED_EMAIL = "x-forwarded-email"
FORWARDED_PREFERRED_USERNAME = "x-forwarded-preferred-username"
FORWARDED_ACCESS_TOKEN = "x-forwarded-access-token"
IDENTITY_HEADERS = (FORWARDED_USER, FORWARDED_EMAIL, FORWARDED_PREFERRED_USERNAME, FORWARDED_ACCESS_TOKEN)

_MAX_HEADER = 512
_MAX_TOKEN = 8192
_PRINTABLE = re.compile(r"^[\x20-\x7e]+$")


@dataclass(frozen=True)
class Identity:
    """The user a request is served for."""

    user: str
    email: str | None = None
    user_name: str | None = None
    access_token: str | None = field(default=None, repr=False, compare=False)
    local: bool = False

    @property
    def principal(self) -> str:
        """The name to record as the author of what the request stores: the email when there is one."""
        return self.email or self.user


LOCAL_IDENTITY = Identity(user="local-user", email="local-user@localhost", user_name="local-user", local=True)

_current: ContextVar[Identity | None] = ContextVar("agent_jobs.serving.identity", default=None)


def _value(headers: Mapping[str, str], name: str, limit: int) -> str | None:
    value = headers.get(name)
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > limit or not _PRINTABLE.match(value):
        raise Unauthenticated(f"the {name} header is malformed (at most {limit} printable characters)")
    return value


def identity_from_headers(headers: Mapping[str, str]) -> Identity | None:
    """The forwarded identity, None when there is none; malformed identity headers are refused."""
    user = _value(headers, FORWARDED_USER, _MAX_HEADER)
    email = _value(headers, FORWARDED_EMAIL, _MAX_HEADER)
    if user is None and email is None:
        return None
    return Identity(
        user=user or str(email),
        email=email,
        user_name=_value(headers, FORWARDED_PREFERRED_USERNAME, _MAX_HEADER),
        access_token=_value(headers, FORWARDED_ACCESS_TOKEN, _MAX_TOKEN),
    )


def set_current(identity: Identity | None) -> None:
    _current.set(identity)


def current_identity() -> Identity:
    """The identity of the request being served (set by the request middleware)."""
    identity = _current.get()
    if identity is None:
        raise Unauthenticated("no user identity: requests must come through Databricks Apps")
    return identity
