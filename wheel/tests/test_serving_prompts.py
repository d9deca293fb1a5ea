"""Prompts from the prompts volume through the Files API (the real databricks-sdk against the stand-in) or a
local directory: the optimised prompt wins, a failed refresh keeps the last good one, and the background
refresher runs on its interval (an injected sleep, no real waiting)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient
from serving_standin import TOKEN, WorkspaceStandIn
from serving_support import run

from agent_jobs.serving.prompts import LocalDirSource, PromptStore, VolumeSource

VOLUME = "/Volumes/main/agents/prompts"
PACKAGED = {"fraud_detector": "PACKAGED", "other_agent": "OTHER PACKAGED"}


@pytest.fixture(scope="module")
def workspace() -> Iterator[WorkspaceStandIn]:
    with WorkspaceStandIn() as server:
        yield server


@pytest.fixture
def standin(workspace: WorkspaceStandIn) -> WorkspaceStandIn:
    workspace.reset()
    return workspace


def volume_store(standin: WorkspaceStandIn) -> PromptStore:
    source = VolumeSource(WorkspaceClient(host=standin.url, token=TOKEN), VOLUME)
    return PromptStore(source, PACKAGED, refresh_s=300)


def optimised(version: str, text: str) -> bytes:
    return json.dumps({"version": version, "text": text, "score": 0.91}).encode()


def test_volume_prompts_base_then_optimised_then_a_failed_refresh_keeps_the_last_good(standin: WorkspaceStandIn) -> None:  # fmt: skip
    """Through the Files API: the base prompt replaces the packaged one, an optimised prompt replaces the
    base, and when the volume cannot be read the agents keep what they had (health says degraded)."""
    store = volume_store(standin)

    async def scenario() -> list[tuple[str, str, str]]:
        seen = []
        await store.refresh()
        seen.append((store.get("fraud_detector").text, store.get("fraud_detector").origin, store.health()[0]))
        standin.files[f"{VOLUME}/base/fraud_detector.md"] = b"BASE v1"
        await store.refresh()
        seen.append((store.get("fraud_detector").text, store.get("fraud_detector").version, store.health()[0]))
        standin.files[f"{VOLUME}/optimised/fraud_detector.json"] = optimised("dspy-001", "OPTIMISED 1")
        await store.refresh()
        seen.append((store.get("fraud_detector").text, store.get("fraud_detector").version, store.health()[0]))
        standin.files_status = 403  # READ VOLUME revoked
        await store.refresh()
        seen.append((store.get("fraud_detector").text, store.get("fraud_detector").version, store.health()[0]))
        standin.files_status = None
        await store.refresh()
        seen.append((store.get("fraud_detector").text, store.get("fraud_detector").version, store.health()[0]))
        return seen

    packaged, base, best, kept, recovered = run(scenario())
    assert packaged == ("PACKAGED", "packaged", "ok")
    assert base[0] == "BASE v1" and base[1].startswith("base-") and base[2] == "ok"
    assert best == ("OPTIMISED 1", "dspy-001", "ok")
    assert kept == ("OPTIMISED 1", "dspy-001", "degraded")
    assert recovered == best
    assert store.get("other_agent").text == "OTHER PACKAGED"
    downloads = {r["path"] for r in standin.calls("/api/2.0/fs/files/")}
    assert f"/api/2.0/fs/files{VOLUME}/optimised/fraud_detector.json" in downloads


@pytest.mark.parametrize(
    "content",
    [b"not json", b"[1, 2]", json.dumps({"text": "no version"}).encode(),
     json.dumps({"version": "has space", "text": "x"}).encode(), json.dumps({"version": "v1", "text": "  "}).encode()],
    ids=["not-json", "not-object", "no-version", "bad-version", "empty-text"],
)  # fmt: skip
def test_a_malformed_optimised_prompt_is_ignored_for_the_base(standin: WorkspaceStandIn, content: bytes, caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    """An optimised file the optimiser got wrong never reaches the LLM: the base is used, with a warning."""
    standin.files[f"{VOLUME}/base/fraud_detector.md"] = b"BASE"
    standin.files[f"{VOLUME}/optimised/fraud_detector.json"] = content
    store = volume_store(standin)
    run(store.refresh())
    assert store.get("fraud_detector").text == "BASE"
    assert any("optimised/fraud_detector.json" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_the_refresher_runs_every_interval_and_survives_failures(tmp_path: Path) -> None:
    """start() loads once, then refreshes after each interval (300 s by default) in the background; a failing
    round does not stop later rounds. The sleep is injected: the test does not wait 300 s."""
    (tmp_path / "base").mkdir()
    prompt = tmp_path / "base" / "fraud_detector.md"
    prompt.write_text("ONE")
    slept: list[float] = []
    wake: asyncio.Queue[None] = asyncio.Queue()

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await wake.get()

    async def scenario() -> list[str]:
        store = PromptStore(LocalDirSource(tmp_path), PACKAGED, refresh_s=300, sleep=sleep)
        await store.start()
        texts = [store.get("fraud_detector").text]
        for change in ("TWO", None, "THREE"):
            if change is None:
                prompt.write_bytes(b"\xff\xfe not utf-8")  # a round that cannot read the file
            else:
                prompt.write_text(change)
            before = store.refreshes
            await wake.put(None)
            while store.refreshes == before:
                await asyncio.sleep(0)
            texts.append(store.get("fraud_detector").text)
        await store.close()
        return texts

    assert run(scenario()) == ["ONE", "TWO", "TWO", "THREE"]
    assert slept[:3] == [300, 300, 300]


def test_without_a_source_the_packaged_prompts_serve() -> None:
    """Before anything is uploaded (or with no volume configured) each agent has its packaged prompt."""
    store = PromptStore(None, PACKAGED, refresh_s=300)
    run(store.start())
    assert store.get("fraud_detector").origin == "packaged" and store.health()[0] == "ok"
