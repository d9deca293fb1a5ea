"""Helpers shared by the deps-wheelhouse tests (their pytest fixtures are in wheelhouse_fixtures.py)."""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_jobs.wheelhouse.build import Options
from agent_jobs.wheelhouse.wheels import Target

TEST_MODULE_PREFIXES = ("wh_", "six", "dateutil")
NATIVE_TAGS = ("cp310-cp310-manylinux_2_17_x86_64", "cp311-cp311-manylinux_2_17_x86_64")


@dataclass(frozen=True)
class Processed:
    output: Path
    manifest: dict[str, Any]


def offline(find_links: Path, target: Target | None = None) -> Options:
    return Options(target=target or Target(), find_links=(find_links,), no_index=True)


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def pip_env() -> dict[str, str]:
    """No pip configuration of this machine (its index and find-links) in the tests' own pip runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
