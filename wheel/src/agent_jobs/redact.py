"""The one redactor: every secret value a job reads is registered here, and everything a job records (result
and state files, telemetry rows, its log, the error it fails with) passes through it first.

A registered value is replaced wherever it appears in the forms a program is likely to print it: as is,
URL-encoded (`quote`, `quote_plus`: a key in a query string), JSON-escaped, and base64-encoded (an HTTP basic
auth header). What it cannot catch: a value the artifact transforms (reversed, split, hashed, encrypted), or a
secret it was never told about. Values shorter than MIN_LENGTH are not redacted (replacing every "ab" would
destroy the record while hiding nothing); registering one logs a warning instead.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "[REDACTED]"
MIN_LENGTH = 6
# Environment variables whose values are credentials wherever they appear (the SDK's own, the PAT fallback).
CREDENTIAL_MARKERS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "API_KEY", "APIKEY", "PRIVATE_KEY")

log = logging.getLogger(__name__)


def is_credential_name(name: str) -> bool:
    """An environment variable name that, by convention, holds a credential."""
    upper = name.upper()
    return any(marker in upper for marker in CREDENTIAL_MARKERS)


def _variants(value: str) -> set[str]:
    forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    forms.add(base64.b64encode(value.encode()).decode().rstrip("="))
    return {form for form in forms if len(form) >= MIN_LENGTH}


class Redactor:
    """Registered secret values (and their variants), replaced by MASK in any text or JSON-like value."""

    def __init__(self) -> None:
        self._forms: list[str] = []  # longest first, so that a value's encoded form is masked whole
        self._lock = threading.Lock()

    def add(self, value: str | None) -> None:
        if not value:
            return
        if len(value) < MIN_LENGTH:
            log.warning("a secret of %d characters is too short to redact reliably from what is recorded", len(value))
            return
        with self._lock:
            self._forms = sorted(set(self._forms) | _variants(value), key=len, reverse=True)

    def add_environment(self, env: Mapping[str, str]) -> None:
        """Register the values of credential-named variables (DATABRICKS_TOKEN, ..._CLIENT_SECRET, ...)."""
        for name, value in env.items():
            if is_credential_name(name):
                self.add(value)

    @property
    def longest(self) -> int:
        """Length in UTF-8 bytes of the longest registered form (0 when nothing is registered)."""
        return max((len(form.encode()) for form in self._forms), default=0)

    def text(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def value(self, value: Any) -> Any:
        """`value` with every string in it (keys included) redacted; other types unchanged."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(item) for item in value]
        return value

    def found_in(self, texts: Iterable[str]) -> bool:
        return any(form in text for text in texts for form in self._forms)


REDACTOR = Redactor()
"""The process's redactor: secrets.read_secret registers every value it reads."""


def redact(value: Any) -> Any:
    return REDACTOR.value(value)


class RedactingFormatter(logging.Formatter):
    """Formats as usual (message, arguments, traceback), then redacts the whole line."""

    def format(self, record: logging.LogRecord) -> str:
        return REDACTOR.text(super().format(record))
