"""Content-versioned builds: the wheel's version is `<base-version>+g<first 8 hex digits of the source hash>`.

The hash covers exactly what goes into the wheel (pyproject.toml, this file, everything under src/ except
caches), by relative path and content, never by time: the same sources give the same version, and with
hatchling's reproducible builds the same bytes. infra/wheel.py imports `source_hash` from this file, so the
program and the build agree on the version without building.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hatchling.metadata.plugin.interface import MetadataHookInterface

HASH_LENGTH = 8
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}


def source_files(root: Path) -> list[Path]:
    """The files whose content defines the wheel, sorted by relative path."""
    files = [root / "pyproject.toml", root / "hatch_build.py"]
    for path in sorted((root / "src").rglob("*")):
        rel = path.relative_to(root)
        skipped = _SKIP_DIRS & set(rel.parts) or any(part.startswith(".") for part in rel.parts)
        if path.is_file() and not skipped and path.suffix not in _SKIP_SUFFIXES:
            files.append(path)
    return files


def source_hash(root: Path) -> str:
    """SHA-256 over (relative path, content) of every source file."""
    digest = hashlib.sha256()
    for path in source_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def local_version(base: str, root: Path) -> str:
    return f"{base}+g{source_hash(root)[:HASH_LENGTH]}"


class ContentVersionHook(MetadataHookInterface):
    """Sets the dynamic version from the sources (configured by [tool.hatch.metadata.hooks.custom])."""

    PLUGIN_NAME = "custom"

    def update(self, metadata: dict) -> None:
        metadata["version"] = local_version(self.config["base-version"], Path(self.root))
