"""Content-versioned builds: the wheel's version is `<base-version>.dev<N>`, N being the first 12 hex digits of
the source hash read as a decimal number (0.1.0.dev93170147441946, say).

Why not a PEP 440 local label (`0.1.0+g<hash>`): the Files API stores a `+` in an uploaded path as a space
(pulumi-databricks#589), so the wheel would never arrive under the name the jobs install, and pip refuses a
file whose name's version differs from the version inside. A public version has only digits in its
segments, so the hash becomes a number. Its `.dev` segment says "a development build identified by content";
N orders nothing (a newer build may have a smaller N), which does not matter: clusters and serverless
environments install the wheel by path, and pip replaces an installed distribution whose version differs
from the wheel's in either direction, while it skips one whose version is the same. So every change of the
sources must change the version, which the hash does (48 bits: two different sources sharing a version is a
one-in-10^14 event).

The hash covers exactly what goes into the wheel (pyproject.toml, this file, everything under src/ except
caches), by relative path and content, never by time: the same sources give the same version, and with
hatchling's reproducible builds the same bytes. infra/wheel.py imports `source_hash` from this file, so the
program and the build agree on the version without building.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hatchling.metadata.plugin.interface import MetadataHookInterface

HASH_LENGTH = 12  # hex digits of the source hash in the version (as a decimal)
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
    """'<base>.dev<N>': only digits and dots after the base, so the file name survives the Files API."""
    return f"{base}.dev{int(source_hash(root)[:HASH_LENGTH], 16)}"


class ContentVersionHook(MetadataHookInterface):
    """Sets the dynamic version from the sources (configured by [tool.hatch.metadata.hooks.custom])."""

    PLUGIN_NAME = "custom"

    def update(self, metadata: dict) -> None:
        metadata["version"] = local_version(self.config["base-version"], Path(self.root))
