"""Helpers of the fault-injection tests: a fake clock for the SDK and the orchestrator (no real back-off), a
databricks-sdk client bound to the stand-in and that clock, the job's own log as its formatter writes it, and
the checks every fault test ends with: no secret anywhere the run wrote, no process of the artifact alive."""

from __future__ import annotations

import base64
import io
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from databricks.sdk import WorkspaceClient
from databricks.sdk.clock import Clock
from databricks.sdk.core import Config

from agent_jobs import logs
from agent_jobs.rlm import orchestrator


class FakeClock(Clock):
    """Time that moves only when something sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def orchestrator_clock(self) -> orchestrator.Clock:
        return orchestrator.Clock(sleep=self.sleep, now=self.time)


def sdk_client(url: str, clock: FakeClock, token: str = "dapi-job-identity", **config: Any) -> WorkspaceClient:
    """The real SDK against the stand-in; its own retries (lost connections, timeouts) sleep on `clock`."""
    return WorkspaceClient(config=Config(host=url, token=token, clock=clock, **config))


def run_main(main: Callable[[list[str]], None], argv: list[str]) -> int:
    """An entry point called as a console script would be: its exit status (0 when it returns)."""
    try:
        main(argv)
    except SystemExit as exited:
        return int(exited.code or 0)
    return 0


@contextmanager
def job_log() -> Iterator[io.StringIO]:
    """What the job's log handler writes (the real formatter, redaction included) while the block runs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def variants(secret: str) -> list[str]:
    """The forms a secret is printed in: as is, URL-encoded, base64 (what the redactor promises to catch)."""
    return [secret, quote(secret, safe=""), quote_plus(secret), base64.b64encode(secret.encode()).decode().rstrip("=")]


def leaks(secret: str, root: Path, *texts: str) -> list[str]:
    """Where any form of `secret` appears: files under `root` (by path) and the given texts (by index)."""
    forms = [form.encode() for form in variants(secret)]
    found = [str(path) for path in root.rglob("*") if path.is_file() and any(f in path.read_bytes() for f in forms)]
    found += [f"text {i}" for i, text in enumerate(texts) if any(f.decode() in text for f in forms)]
    return found


def survivors(tag: str) -> list[int]:
    """Live processes (not zombies) whose environment says RLM_RUN_ID=`tag`: what an artifact of that run
    started and is still running (the executor passes RLM_RUN_ID to the artifact, and children inherit it)."""
    needle = f"RLM_RUN_ID={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if needle not in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                continue
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            found.append(int(entry))
    return found
