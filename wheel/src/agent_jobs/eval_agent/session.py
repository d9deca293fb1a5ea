"""A session directory: state.json (status, progress, error), session.log, report.md.

Unity Catalog volumes (FUSE) do not support appends or random writes, so every file is written whole: the
log goes to a local temporary file and is copied into the session directory with each state update.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agent_jobs import logs

log = logging.getLogger(__name__)


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Session:
    """One run of the agent, recorded under `directory`."""

    def __init__(self, directory: Path, **fields: Any) -> None:
        self.directory = directory
        self.state: dict[str, Any] = {"status": "running", "started_at": utc_now(), **fields}
        self._local_log: Path | None = None
        directory.mkdir(parents=True, exist_ok=True)
        self._write_state()

    @property
    def state_path(self) -> Path:
        return self.directory / "state.json"

    @property
    def log_path(self) -> Path:
        return self.directory / "session.log"

    @property
    def report_path(self) -> Path:
        return self.directory / "report.md"

    def update(self, **fields: Any) -> None:
        self.state.update(fields)
        self._write_state()

    def finish(self, status: str, **fields: Any) -> None:
        self.update(status=status, finished_at=utc_now(), **fields)

    def write_report(self, text: str) -> None:
        self.report_path.write_text(text, encoding="utf-8")
        self.update(report=self.report_path.name)

    @contextmanager
    def capturing_log(self) -> Iterator[None]:
        """Everything logged inside the block also ends up in session.log."""
        with tempfile.TemporaryDirectory(prefix="agent-session-") as tmp:
            self._local_log = Path(tmp) / "session.log"
            handler = logs.add_file(self._local_log)
            try:
                yield
            finally:
                logs.remove(handler)
                self._sync_log()
                self._local_log = None

    def _write_state(self) -> None:
        self.state_path.write_text(json.dumps(self.state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        self._sync_log()

    def _sync_log(self) -> None:
        if self._local_log is not None and self._local_log.exists():
            shutil.copyfile(self._local_log, self.log_path)
