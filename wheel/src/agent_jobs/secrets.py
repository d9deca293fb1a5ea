"""Read a Databricks secret at run time, given a '<scope>/<key>' reference (never a value in a job).

A reference is checked against Databricks' naming rules for scopes and keys (letters, digits, '-', '_', '.',
at most 128 characters each). Something else given where a reference belongs is refused without being
echoed: the usual mistake is pasting the secret's value itself, which must not reach a log. Every value read
is registered with the redactor, so nothing the job records can contain it.
"""

from __future__ import annotations

import argparse
import logging
import re
from typing import Any

from agent_jobs.errors import JobError
from agent_jobs.redact import REDACTOR

log = logging.getLogger(__name__)

_NAME = r"[A-Za-z0-9._-]{1,128}"
_REFERENCE = re.compile(rf"({_NAME})/({_NAME})")
REFERENCE_RULE = (
    "a secret reference must be <scope>/<key> (letters, digits, '-', '_' and '.', at most 128 each); "
    "what was given is not shown, in case it is the secret itself"
)


def parse_reference(reference: str) -> tuple[str, str]:
    match = _REFERENCE.fullmatch(reference) if isinstance(reference, str) else None
    if match is None:
        raise JobError(REFERENCE_RULE)
    return match.group(1), match.group(2)


def reference_argument(text: str) -> str:
    """An argparse type: a '<scope>/<key>' reference (argparse makes a refusal a usage error, exit 2)."""
    try:
        parse_reference(text)
    except JobError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def read_secret(reference: str, client: Any = None, *, sensitive: bool = True) -> str:
    """The secret's value, read with the job's own identity (dbutils inside Databricks, the Secrets API
    elsewhere). The identity needs READ on the scope. `sensitive=False` for a value kept in a scope only for
    convenience (a workspace host): it is not redacted, so URLs built from it stay readable."""
    scope, key = parse_reference(reference)
    try:
        if client is None:
            from databricks.sdk import WorkspaceClient

            client = WorkspaceClient()
        value = str(client.dbutils.secrets.get(scope, key))
    except Exception as exc:  # the SDK raises many types (auth, permission, not found, network)
        raise JobError(f"cannot read secret {scope}/{key}: {exc}") from exc
    if sensitive:
        REDACTOR.add(value)
    log.info("read secret %s/%s", scope, key)
    return value
