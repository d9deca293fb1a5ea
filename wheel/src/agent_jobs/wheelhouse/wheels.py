"""Wheel files: what the cluster's Python can run, what a wheel holds, and writing small wheels reproducibly.

`Target` is the Python a wheelhouse is for: CPython `3.X` on a list of platform tags (by default the
manylinux tags of glibc 2.35 on x86_64, the Ubuntu 22.04 of DBR 13.3 to 15.4, each listed: pip does not
widen `--platform manylinux_2_17_x86_64` to older tags). A wheel fits when one of its tags is among the
target's (`packaging.tags`) and its Requires-Python admits the target version.

A wheel's importable top-level modules come from its RECORD (every path's first part that is a `.py`
module, an extension module or a directory holding Python code; `*.data/purelib|platlib/` counted as the
root), or from `top_level.txt` when a wheel has no RECORD.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from agent_jobs.errors import JobError
from agent_jobs.wheelhouse.archive import write_zip

PYTHON_VERSION_RE = re.compile(r"^3\.(?:[89]|1[0-9])$")
PLATFORM_RE = re.compile(r"^[a-z0-9_]{1,64}$")
_EXTENSION_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\..*\.(so|pyd)$|^([A-Za-z_][A-Za-z0-9_]*)\.(so|pyd)$")


def default_platforms(arch: str = "x86_64", glibc_minor: int = 35) -> tuple[str, ...]:
    """Every manylinux tag a glibc 2.<glibc_minor> system runs, newest first, with the legacy aliases."""
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(glibc_minor, 4, -1)]
    aliases = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    tags += [f"{alias}_{arch}" for minor, alias in aliases.items() if minor <= glibc_minor]
    return tuple(tags)


@dataclass(frozen=True)
class Target:
    """The Python the wheelhouse is for."""

    python_version: str = "3.10"
    platforms: tuple[str, ...] = default_platforms()

    def __post_init__(self) -> None:
        if not PYTHON_VERSION_RE.match(self.python_version):
            raise ValueError(f"python version {self.python_version!r} is not 3.8 to 3.19 (major.minor)")
        if not self.platforms or not all(PLATFORM_RE.match(p) for p in self.platforms):
            raise ValueError("platform tags are lower-case letters, digits and '_' (e.g. manylinux_2_17_x86_64)")

    @property
    def version_tuple(self) -> tuple[int, int]:
        major, minor = self.python_version.split(".")
        return int(major), int(minor)

    @property
    def abi(self) -> str:
        return "cp{}{}".format(*self.version_tuple)

    def supported_tags(self) -> frozenset[Tag]:
        version = self.version_tuple
        tags = list(cpython_tags(version, abis=[self.abi], platforms=list(self.platforms)))
        tags += compatible_tags(version, interpreter=self.abi, platforms=list(self.platforms))
        return frozenset(tags)

    def describe(self) -> str:
        shown = ", ".join(self.platforms[:3]) + (
            f" and {len(self.platforms) - 3} more" if len(self.platforms) > 3 else ""
        )
        return f"CPython {self.python_version} ({self.abi}) on {shown}"

    def pip_args(self) -> list[str]:
        """pip's cross-target options: binary wheels only, for this Python and these platforms, each listed."""
        args = ["--only-binary=:all:", "--python-version", self.python_version, "--implementation", "cp"]
        args += ["--abi", self.abi]
        for platform in self.platforms:
            args += ["--platform", platform]
        return args


@dataclass(frozen=True)
class WheelInfo:
    file: str
    name: str
    version: str
    sha256: str
    tags: tuple[str, ...]
    pure: bool
    requires_python: str | None
    requires_dist: tuple[str, ...]
    modules: tuple[str, ...]


def parse_name(filename: str) -> tuple[str, Version, frozenset[Tag]]:
    try:
        name, version, _build, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise JobError(f"{filename} is not a valid wheel file name: {exc}") from None
    return name, version, tags


def _dist_info(names: list[str], filename: str) -> str:
    dirs = sorted({n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info")})
    if len(dirs) != 1:
        raise JobError(f"{filename} is not a valid wheel: it has {len(dirs)} .dist-info directories")
    return dirs[0]


def _module_of(parts: tuple[str, ...]) -> str | None:
    """The importable top-level name a wheel path belongs to, if any."""
    if parts[0].endswith(".data"):
        if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
            return None
        parts = parts[2:]
    if parts[0].endswith(".dist-info") or parts[0] == "__pycache__":
        return None
    if len(parts) == 1:
        name = parts[0]
        if name.endswith(".py"):
            stem = name[:-3]
            return stem if stem.isidentifier() else None
        match = _EXTENSION_RE.match(name)
        return (match.group(1) or match.group(3)) if match else None
    top = parts[0]
    is_code = parts[-1].endswith((".py", ".so", ".pyd"))
    return top if top.isidentifier() and is_code else None


def inspect(path: Path) -> WheelInfo:
    """Name, version, tags, sha256, purity, Requires-Python and top-level modules of one wheel file."""
    name, version, tags = parse_name(path.name)
    data = path.read_bytes()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
            dist_info = _dist_info(names, path.name)
            metadata = HeaderParser().parsestr(zf.read(f"{dist_info}/METADATA").decode("utf-8", "replace"))
            if f"{dist_info}/RECORD" in names:
                record = zf.read(f"{dist_info}/RECORD").decode("utf-8", "replace")
                paths = [row[0] for row in csv.reader(io.StringIO(record)) if row]
            elif f"{dist_info}/top_level.txt" in names:
                paths = [
                    f"{line.strip()}/__init__.py" for line in zf.read(f"{dist_info}/top_level.txt").decode().split()
                ]
            else:
                paths = names
    except (zipfile.BadZipFile, KeyError) as exc:
        raise JobError(f"{path.name} is not a valid wheel: {exc}") from None
    modules = set()
    for entry in paths:
        parts = PurePosixPath(entry).parts
        if parts and (module := _module_of(parts)):
            modules.add(module)
    return WheelInfo(
        file=path.name,
        name=canonicalize_name(metadata.get("Name") or name),
        version=str(version),
        sha256=hashlib.sha256(data).hexdigest(),
        tags=tuple(sorted(str(tag) for tag in tags)),
        pure=all(tag.abi == "none" and tag.platform == "any" for tag in tags),
        requires_python=metadata.get("Requires-Python"),
        requires_dist=tuple(metadata.get_all("Requires-Dist") or ()),
        modules=tuple(sorted(modules)),
    )


def check_fits(info: WheelInfo, target: Target, supported: frozenset[Tag] | None = None) -> None:
    """A JobError naming the wheel and its tags when it cannot run on the target."""
    supported = target.supported_tags() if supported is None else supported
    _, _, tags = parse_name(info.file)
    if not tags & supported:
        raise JobError(
            f"wheel {info.file} has tags {', '.join(info.tags)}, none of which runs on {target.describe()}; "
            "provide a wheel built for that Python and platform (or pass --python-version/--platform)"
        )
    if info.requires_python:
        try:
            spec = SpecifierSet(info.requires_python)
        except InvalidSpecifier:
            raise JobError(f"wheel {info.file} has an invalid Requires-Python {info.requires_python!r}") from None
        if not spec.contains(target.python_version + ".0", prereleases=True):
            raise JobError(
                f"wheel {info.file} requires Python {info.requires_python}, not the target's {target.python_version}"
            )


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_wheel(
    directory: Path,
    name: str,
    version: str,
    files: list[tuple[str, bytes]],
    requires: tuple[str, ...] = (),
    tag: str = "py3-none-any",
    requires_python: str | None = ">=3.8",
) -> Path:
    """Write a wheel of these (path, content) files; the same arguments give the same bytes."""
    dist = canonicalize_name(name).replace("-", "_")
    dist_info = f"{dist}-{version}.dist-info"
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python:
        metadata.append(f"Requires-Python: {requires_python}")
    metadata += [f"Requires-Dist: {req}" for req in requires]
    pure = tag.endswith("-none-any")
    wheel_meta = [
        "Wheel-Version: 1.0",
        "Generator: agent_jobs.wheelhouse",
        f"Root-Is-Purelib: {'true' if pure else 'false'}",
        f"Tag: {tag}",
    ]
    entries = sorted(files)
    entries.append((f"{dist_info}/METADATA", ("\n".join(metadata) + "\n").encode()))
    entries.append((f"{dist_info}/WHEEL", ("\n".join(wheel_meta) + "\n").encode()))
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for path, data in entries:
        writer.writerow([path, _record_hash(data), str(len(data))])
    writer.writerow([f"{dist_info}/RECORD", "", ""])
    entries.append((f"{dist_info}/RECORD", record.getvalue().encode()))
    out = directory / f"{dist}-{version}-{tag}.whl"
    write_zip(out, entries)
    return out
