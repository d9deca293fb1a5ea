"""The agents' system prompts: read from the prompts volume (or a local directory) and refreshed in the
background, the last good version kept when a refresh fails.

Layout of the prompts volume (the same under a local `--prompts-dir`):

    <volume>/base/<agent>.md          the base prompt: Pulumi uploads the one packaged with the agent
    <volume>/optimised/<agent>.json   written by the nightly prompt optimisation job, beside the base, never
                                      over it: {"version": "<id>", "text": "<prompt>", ...any other keys}

For each agent, a valid `optimised/<agent>.json` wins over `base/<agent>.md`, which wins over the prompt
packaged with the agent's module (so the app works before anything is uploaded). A missing file is normal;
an optimised file that is not of that shape is ignored with a warning (the base is used). When a file cannot
be read (the volume unreachable, a permission revoked), that agent keeps the prompt it had: a failed refresh
never replaces a good prompt with an older one. Versions: the optimised file's `version`, or `base-<sha256
prefix>` / `packaged-<sha256 prefix>` of the text.

On Databricks the app has no /Volumes mount: the volume is read with the Files API (databricks-sdk
`w.files.download`) as the app's service principal (the app's volume resource grants READ VOLUME).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from agent_jobs.serving.telemetry import tracer

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 256 * 1024
MAX_PROMPT_BYTES = 4 * MAX_PROMPT_CHARS
_VERSION = re.compile(r"^[\x21-\x7e]{1,128}$")
Sleep = Callable[[float], Awaitable[None]]


class PromptSourceError(Exception):
    """A prompt file exists (or may exist) but could not be read."""


class PromptSource(Protocol):
    description: str

    async def read(self, relative: str) -> str | None:
        """The file's text, None when it does not exist; PromptSourceError when it cannot be read."""
        ...


class LocalDirSource:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = f"directory {root}"

    async def read(self, relative: str) -> str | None:
        path = self.root / relative
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise PromptSourceError(f"{path}: {type(exc).__name__}: {exc}") from exc


class VolumeSource:
    """A UC volume through the Files API (blocking SDK calls, run in a worker thread)."""

    def __init__(self, workspace: Any, volume_path: str) -> None:
        self.workspace = workspace
        self.root = volume_path.rstrip("/")
        self.description = f"volume {self.root}"

    def _download(self, path: str) -> str | None:
        from databricks.sdk.errors import NotFound

        try:
            response = self.workspace.files.download(path)
            data = response.contents.read(MAX_PROMPT_BYTES + 1)
        except NotFound:
            return None
        except Exception as exc:  # permission, network, throttling: keep what we have
            raise PromptSourceError(f"{path}: {type(exc).__name__}: {exc}") from exc
        if len(data) > MAX_PROMPT_BYTES:
            raise PromptSourceError(f"{path}: larger than {MAX_PROMPT_BYTES} bytes")
        try:
            return bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PromptSourceError(f"{path}: not UTF-8 text") from exc

    async def read(self, relative: str) -> str | None:
        return await asyncio.to_thread(self._download, f"{self.root}/{relative}")


@dataclass(frozen=True)
class Prompt:
    name: str
    text: str
    version: str
    origin: Literal["optimised", "base", "packaged"]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _optimised(name: str, raw: str) -> Prompt | None:
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        log.warning("prompts: optimised/%s.json is not a JSON object; using the base prompt", name)
        return None
    version, text = data.get("version"), data.get("text")
    if not isinstance(version, str) or not _VERSION.match(version):
        log.warning(
            "prompts: optimised/%s.json has no valid version (1-128 printable characters); using the base", name
        )
        return None
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_PROMPT_CHARS:
        log.warning("prompts: optimised/%s.json has no usable text; using the base prompt", name)
        return None
    return Prompt(name, text, version, "optimised")


class PromptStore:
    """The current prompt of each agent, refreshed every `refresh_s` seconds by `start()`'s background task."""

    def __init__(
        self,
        source: PromptSource | None,
        packaged: Mapping[str, str],
        *,
        refresh_s: float,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.refresh_s = refresh_s
        self._sleep = sleep
        self._clock = clock
        self._prompts = {n: Prompt(n, t, f"packaged-{_digest(t)}", "packaged") for n, t in packaged.items()}
        self.refreshes = 0
        self.last_refresh_at: float | None = None
        self.failed: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def names(self) -> Sequence[str]:
        return sorted(self._prompts)

    def get(self, name: str) -> Prompt:
        return self._prompts[name]

    async def _load(self, name: str) -> Prompt | None:
        assert self.source is not None
        raw = await self.source.read(f"optimised/{name}.json")
        if raw is not None and (prompt := _optimised(name, raw)) is not None:
            return prompt
        text = await self.source.read(f"base/{name}.md")
        if text is None or not text.strip():
            return None
        if len(text) > MAX_PROMPT_CHARS:
            raise PromptSourceError(f"base/{name}.md is longer than {MAX_PROMPT_CHARS} characters")
        return Prompt(name, text, f"base-{_digest(text)}", "base")

    async def refresh(self) -> None:
        """Read every agent's prompt once; a prompt that cannot be read keeps its current version."""
        if self.source is None:
            return
        attributes = {"prompts.source": self.source.description}
        with tracer().start_as_current_span("prompts.refresh", attributes=attributes) as span:
            failed: dict[str, str] = {}
            for name in self.names:
                try:
                    prompt = await self._load(name)
                except PromptSourceError as exc:
                    failed[name] = str(exc)
                    log.warning("prompts: kept %s %s: %s", name, self._prompts[name].version, exc)
                    continue
                if prompt is None:  # nothing uploaded: the packaged prompt
                    continue
                if prompt.version != self._prompts[name].version:
                    log.info("prompts: %s is now %s (%s)", name, prompt.version, prompt.origin)
                self._prompts[name] = prompt
            self.failed = failed
            self.refreshes += 1
            self.last_refresh_at = self._clock()
            span.set_attribute("prompts.loaded", len(self.names) - len(failed))
            span.set_attribute("prompts.failed", len(failed))

    async def start(self) -> None:
        await self.refresh()
        if self.source is not None:
            self._task = asyncio.create_task(self._loop(), name="prompts-refresh")

    async def _loop(self) -> None:
        while True:
            await self._sleep(self.refresh_s)
            try:
                await self.refresh()
            except Exception:  # never let the refresher die: the next round may work
                log.exception("prompts: refresh failed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def health(self) -> tuple[str, str]:
        """Prompts never block serving (a packaged prompt always exists): `ok` or `degraded` with why."""
        versions = ", ".join(f"{p.name}={p.version}" for p in self._prompts.values())
        if self.source is None:
            return "ok", f"packaged prompts only ({versions})"
        if self.failed:
            return "degraded", f"last refresh could not read {sorted(self.failed)}; kept {versions}"
        if self.refreshes == 0:
            return "degraded", "not refreshed yet"
        return "ok", f"from {self.source.description}: {versions}"
