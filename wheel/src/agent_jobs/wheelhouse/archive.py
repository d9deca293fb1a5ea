"""Untrusted input in, reproducible zips out.

`stage` copies a user's `.zip` or directory into a fresh work directory, refusing before it writes a single
file: entry names outside the root (`..`, absolute paths, drive letters, backslashes, control characters),
links (symlink entries in a zip; symlinks, hardlinks and special files in a directory), duplicate or
encrypted entries, and anything past the `Limits` (total expanded size, file count, per-entry compression
ratio, path depth and length): a zip bomb is refused from its central directory, and sizes are counted
again while copying because headers can lie. Hidden entries (`.git/`, `.venv/`, `.DS_Store`), `__pycache__/`
and `__MACOSX/` are skipped (still counted against a zip's limits).

`write_zip` writes a zip whose bytes depend only on the (name, content) pairs: sorted entries, a fixed
timestamp, fixed permissions and no compression (zlib's output differs between builds of zlib).
"""

from __future__ import annotations

import math
import os
import re
import stat
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from agent_jobs.errors import JobError

MIB = 1024 * 1024
# 1980-01-01, the earliest time a zip can hold (also SOURCE_DATE_EPOCH for the builds in `build`).
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
SOURCE_DATE_EPOCH = "315532800"
# Small entries compress very well (a page of spaces) without being a bomb: the ratio applies above this.
RATIO_MIN_BYTES = MIB
_CHUNK = 256 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
_SKIPPED_NAMES = {"__pycache__", "__MACOSX"}


@dataclass(frozen=True)
class Limits:
    """How much an input may expand to. The CLI's --max-* options set these."""

    max_total_bytes: int = 1024 * MIB
    max_files: int = 20_000
    max_ratio: float = 200.0
    max_depth: int = 32
    max_path_length: int = 1024

    def __post_init__(self) -> None:
        if self.max_total_bytes < 1 or self.max_files < 1 or self.max_depth < 1 or self.max_path_length < 1:
            raise ValueError("limits must be positive")
        if not math.isfinite(self.max_ratio) or self.max_ratio < 1:
            raise ValueError("max_ratio must be a finite number of at least 1")


def skipped(parts: Iterable[str]) -> bool:
    """Entries that are never part of a user's dependencies: hidden files, caches, macOS resource forks."""
    return any(part.startswith(".") or part in _SKIPPED_NAMES for part in parts)


def safe_name(name: str, limits: Limits, where: str) -> PurePosixPath:
    """The entry's path relative to the root, or a JobError saying why it may not be extracted."""
    shown = ascii(name) if len(name) <= 200 else ascii(name[:200]) + "..."
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise JobError(f"{where}: entry {shown} has control characters in its name")
    if "\\" in name:
        raise JobError(f"{where}: entry {shown} uses a backslash; archive paths must use '/'")
    if name.startswith("/") or _DRIVE.match(name):
        raise JobError(f"{where}: entry {shown} is an absolute path; every entry must be relative to the root")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise JobError(f"{where}: entry {shown} points outside the archive root ('..')")
    if len(name) > limits.max_path_length or len(parts) > limits.max_depth:
        raise JobError(
            f"{where}: entry {shown} is nested too deeply or too long "
            f"(at most {limits.max_depth} levels and {limits.max_path_length} characters)"
        )
    if not parts:
        raise JobError(f"{where}: entry {shown} has an empty name")
    return PurePosixPath(*parts)


def _too_big(where: str, limits: Limits) -> JobError:
    return JobError(
        f"{where}: expands to more than {limits.max_total_bytes // MIB} MiB "
        f"(the limit, --max-expanded-mb); refusing it as a possible zip bomb"
    )


def extract_zip(archive: Path, dest: Path, limits: Limits) -> None:
    """Extract a zip into dest (which must exist and be empty) after checking every entry."""
    where = archive.name
    if archive.stat().st_size > limits.max_total_bytes:
        raise _too_big(where, limits)
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            _check_zip_entries(infos, where, limits)
            total = 0
            for info in infos:
                rel = safe_name(info.filename, limits, where)
                if skipped(rel.parts):
                    continue
                target = dest.joinpath(*rel.parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                written = 0
                with zf.open(info) as src, open(target, "xb") as out:
                    while chunk := src.read(_CHUNK):
                        written += len(chunk)
                        total += len(chunk)
                        if written > info.file_size:
                            raise JobError(f"{where}: entry {info.filename!r} is larger than its header says")
                        if total > limits.max_total_bytes:
                            raise _too_big(where, limits)
                        out.write(chunk)
                os.chmod(target, 0o644)
    except zipfile.BadZipFile as exc:
        raise JobError(f"{where} is not a valid zip archive: {exc}") from None
    except FileExistsError as exc:
        raise JobError(f"{where}: entry {exc.filename} conflicts with another entry of the same path") from None
    except NotADirectoryError as exc:
        raise JobError(f"{where}: an entry is both a file and a directory ({exc.filename})") from None


def _check_zip_entries(infos: list[zipfile.ZipInfo], where: str, limits: Limits) -> None:
    """Everything that can be decided from the central directory, before a byte is written."""
    if len(infos) > limits.max_files:
        raise JobError(
            f"{where}: {len(infos)} entries, more than the limit of {limits.max_files} (--max-files); "
            "refusing it as a possible zip bomb"
        )
    seen: set[PurePosixPath] = set()
    total = 0
    for info in infos:
        rel = safe_name(info.filename, limits, where)
        # Unix zips keep the file type in the high bits of external_attr; tools that set no type write 0.
        kind = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise JobError(
                f"{where}: entry {info.filename!r} is a link or special file; only files and directories are allowed"
            )
        if info.flag_bits & 0x1:
            raise JobError(f"{where}: entry {info.filename!r} is encrypted")
        if rel in seen and not info.is_dir():
            raise JobError(f"{where}: entry {info.filename!r} appears twice")
        seen.add(rel)
        total += info.file_size
        if total > limits.max_total_bytes:
            raise _too_big(where, limits)
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_MIN_BYTES and ratio > limits.max_ratio:
            raise JobError(
                f"{where}: entry {info.filename!r} expands {ratio:.0f} times (limit {limits.max_ratio:g}, "
                "--max-ratio); refusing it as a possible zip bomb"
            )


def copy_tree(src: Path, dest: Path, limits: Limits) -> None:
    """Copy a directory's regular files into dest, refusing links, special files and the limits' excess."""
    where = str(src)
    count = 0
    total = 0
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        here = Path(dirpath)
        rel_dir = here.relative_to(src)
        dirnames[:] = sorted(d for d in dirnames if not skipped([d]))
        for name in dirnames + sorted(f for f in filenames if not skipped([f])):
            path = here / name
            rel = safe_name((rel_dir / name).as_posix(), limits, where)
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                raise JobError(f"{where}: {rel} is a symbolic link; only files and directories are allowed")
            if stat.S_ISDIR(info.st_mode):
                continue
            if not stat.S_ISREG(info.st_mode):
                raise JobError(f"{where}: {rel} is not a regular file")
            if info.st_nlink > 1:
                raise JobError(f"{where}: {rel} is a hard link ({info.st_nlink} names); copy it as a plain file")
            count += 1
            total += info.st_size
            if count > limits.max_files:
                raise JobError(f"{where}: more than {limits.max_files} files (the limit, --max-files)")
            if total > limits.max_total_bytes:
                raise _too_big(where, limits)
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "rb") as fin, open(target, "xb") as fout:
                while chunk := fin.read(_CHUNK):
                    fout.write(chunk)
            os.chmod(target, 0o644)


def write_zip(path: Path | BinaryIO, entries: Iterable[tuple[str, bytes]]) -> None:
    """A zip whose bytes depend only on the entries (see the module docstring); entries in the given order."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.create_system = 3  # unix, wherever it is written, so the permission bits mean the same
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_STORED
            zf.writestr(info, data)


def tree_entries(root: Path, prefix: str = "") -> list[tuple[str, bytes]]:
    """Every file below root (skipping what `skipped` skips) as (posix path, content), sorted by path."""
    entries = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not skipped(rel.parts) and path.suffix not in (".pyc", ".pyo"):
            entries.append((prefix + rel.as_posix(), path.read_bytes()))
    return entries
