"""The prompts volume, as the serving app reads it (agent_jobs/serving/README.md, "Prompts"):

    <volume>/base/<agent>.md          the base prompt (Pulumi uploads it; never written here)
    <volume>/optimised/<agent>.json   {"version", "text", ...}: wins over the base in the app

The optimiser reads the current prompt (a valid optimised one, else the base), writes a promoted candidate
whole (history copy first, then the file the app reads, each atomically) and leaves a copy of every promoted
version under optimised/history/<agent>/ for a rollback. Jobs see the volume as a /Volumes path (FUSE), so
plain file I/O is used; agent names are checked before they become file names.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_jobs.errors import JobError
from agent_jobs.files import write_json
from agent_jobs.prompt_optimizer.data import AGENT

log = logging.getLogger("agent_jobs.prompt_optimizer")

VERSION = re.compile(r"^[\x21-\x7e][\x20-\x7e]{0,127}$")  # the app accepts 1-128 printable characters
MAX_PROMPT = 200_000


@dataclass(frozen=True)
class Prompt:
    agent: str
    text: str
    version: str
    source: str  # "optimised" or "base"


def _agent(agent: str) -> str:
    if not AGENT.match(agent):
        raise JobError(f"{agent!r} is not an agent name (a-z, 0-9, _; 64 characters at most)")
    return agent


def base_path(volume: Path, agent: str) -> Path:
    return volume / "base" / f"{_agent(agent)}.md"


def optimised_path(volume: Path, agent: str) -> Path:
    return volume / "optimised" / f"{_agent(agent)}.json"


def current(volume: Path, agent: str) -> Prompt:
    """What the app serves now: a valid optimised prompt, else the base one; neither is an error."""
    path = optimised_path(volume, agent)
    if path.exists():
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            text, version = record["text"], record["version"]
            if isinstance(text, str) and text.strip() and isinstance(version, str) and VERSION.match(version):
                return Prompt(agent, text, version, "optimised")
            log.warning("%s: not a usable optimised prompt (version or text); the app ignores it too", path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s: unreadable optimised prompt (%s); the app ignores it too", path, type(exc).__name__)
    base = base_path(volume, agent)
    try:
        text = base.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise JobError(f"agent {agent} has no prompt in the prompts volume: neither {path} nor {base}") from None
    if not text.strip():
        raise JobError(f"{base} is empty")
    return Prompt(agent, text, f"base-{hashlib.sha256(text.encode()).hexdigest()[:12]}", "base")


def new_version(text: str, now: str) -> str:
    """dspy-<UTC time>-<hash of the text>: printable, sortable, and different for a different text."""
    return f"dspy-{now}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def write_optimised(volume: Path, agent: str, record: dict[str, Any]) -> Path:
    """The history copy first, then the file the app reads, each written whole (never half a file)."""
    if not VERSION.match(record["version"]) or not record["text"].strip() or len(record["text"]) > MAX_PROMPT:
        raise JobError(f"refusing to write an unusable prompt for {agent} (version {record['version']!r})")
    history = volume / "optimised" / "history" / _agent(agent)
    history.mkdir(parents=True, exist_ok=True)
    write_json(history / (re.sub(r"[^A-Za-z0-9._-]", "_", record["version"]) + ".json"), record)
    path = optimised_path(volume, agent)
    write_json(path, record)
    return path
