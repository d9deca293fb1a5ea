"""Logging for job output (seed 000 step 5: logging, not print).

One line per event with a UTC timestamp, the level and the component, which reads well in the Databricks
job run output and in a local terminal alike.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from agent_jobs.redact import RedactingFormatter

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_HANDLER_NAME = "agent_jobs.console"


def formatter() -> logging.Formatter:
    """Every line redacted (agent_jobs.redact): no secret a job read reaches its output or a session log."""
    fmt = RedactingFormatter(FORMAT, datefmt="%Y-%m-%dT%H:%M:%SZ")
    fmt.converter = time.gmtime
    return fmt


def setup(level: int = logging.INFO) -> None:
    """Log to stdout (job output). Idempotent: Databricks may call an entry point twice in one process."""
    root = logging.getLogger()
    root.setLevel(level)
    if not any(h.get_name() == _HANDLER_NAME for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(formatter())
        root.addHandler(handler)
    for noisy in ("httpx", "httpcore", "urllib3", "alembic", "mlflow.store.db.utils"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def add_file(path: Path) -> logging.Handler:
    """Also write the log to `path` (a session's log); remove the handler with `remove`."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(formatter())
    logging.getLogger().addHandler(handler)
    return handler


def remove(handler: logging.Handler) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()
