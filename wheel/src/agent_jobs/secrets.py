"""Read a Databricks secret at run time, given a '<scope>/<key>' reference (never a value in a job)."""

from __future__ import annotations

import logging
from typing import Any

from agent_jobs.errors import JobError

log = logging.getLogger(__name__)


def parse_reference(reference: str) -> tuple[str, str]:
    scope, _, key = reference.partition("/")
    if not scope or not key or "/" in key:
        raise JobError(f"a secret reference must be <scope>/<key>, got {reference!r}")
    return scope, key


def read_secret(reference: str, client: Any = None) -> str:
    """The secret's value, read with the job's own identity (dbutils inside Databricks, the Secrets API
    elsewhere). The identity needs READ on the scope."""
    scope, key = parse_reference(reference)
    try:
        if client is None:
            from databricks.sdk import WorkspaceClient

            client = WorkspaceClient()
        value = str(client.dbutils.secrets.get(scope, key))
    except Exception as exc:  # the SDK raises many types (auth, permission, not found, network)
        raise JobError(f"cannot read secret {scope}/{key}: {exc}") from exc
    log.info("read secret %s/%s", scope, key)
    return value
