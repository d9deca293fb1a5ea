"""What a user's requirements file may ask pip for, checked before pip reads it.

A requirements file is input like any other: it could point pip at another index (`-i`, `--index-url`,
`--extra-index-url`, `-f`/`--find-links`, `--trusted-host`, `--no-index`) or install code from a VCS, a URL
or a local path (`git+https://...`, `pkg @ https://...`, `-e`). Those are refused unless the run allows
them (`--allow-index-options`, `--allow-url-requirements`); editable requirements are always refused (a
wheelhouse holds wheels). `-r`/`-c` includes must stay inside the input and are checked the same way. The
file must be UTF-8 without control characters, at most 1 MiB and 5,000 lines.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from agent_jobs.errors import JobError

MAX_BYTES = 1024 * 1024
MAX_LINES = 5000
MAX_INCLUDE_DEPTH = 5
INDEX_OPTIONS = {"-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--trusted-host", "--no-index"}
INCLUDE_OPTIONS = {"-r", "--requirement", "-c", "--constraint"}
HARMLESS_OPTIONS = {"--pre", "--prefer-binary", "--require-hashes", "--only-binary", "--no-binary"}
_VCS = re.compile(r"^(git|hg|svn|bzr)\+", re.IGNORECASE)
_URLISH = re.compile(r"^[a-z][a-z0-9+.-]*://|^file:", re.IGNORECASE)


@dataclass(frozen=True)
class Policy:
    allow_index_options: bool = False
    allow_url_requirements: bool = False


def _lines(path: Path, shown: str) -> list[tuple[int, str]]:
    """(line number, logical line) with continuations joined and comments removed."""
    if path.stat().st_size > MAX_BYTES:
        raise JobError(f"{shown} is larger than {MAX_BYTES // 1024} KiB; a requirements file is a short list")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JobError(f"{shown} is not UTF-8 text (byte {exc.start})") from None
    raw = text.splitlines()
    if len(raw) > MAX_LINES:
        raise JobError(f"{shown} has {len(raw)} lines, more than {MAX_LINES}")
    logical: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, line in enumerate(raw, 1):
        bad = next((ch for ch in line if (ord(ch) < 32 and ch != "\t") or ord(ch) == 127), None)
        if bad is not None:
            raise JobError(f"{shown} line {number}: control character {bad!r} is not allowed")
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        line = pending + line
        pending = ""
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            logical.append((start, line))
    if pending.strip():
        logical.append((start, pending.strip()))
    return logical


def check(path: Path, root: Path, policy: Policy, depth: int = 0) -> list[str]:
    """The requirement strings of the file (and its includes), or a JobError naming the line at fault."""
    shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    if depth > MAX_INCLUDE_DEPTH:
        raise JobError(f"{shown}: -r/-c includes nest deeper than {MAX_INCLUDE_DEPTH} levels")
    requirements: list[str] = []
    for number, line in _lines(path, shown):
        where = f"{shown} line {number}"
        if line.startswith("-"):
            requirements += _option(line, where, path, root, policy, depth)
        else:
            requirements.append(_requirement(line, where, policy))
    return requirements


def _option(line: str, where: str, path: Path, root: Path, policy: Policy, depth: int) -> list[str]:
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise JobError(f"{where}: cannot read {line[:80]!r}: {exc}") from None
    option, _, inline = words[0].partition("=")
    value = inline or (words[1] if len(words) > 1 else "")
    if option.startswith("-") and not option.startswith("--") and len(option) > 2:
        option, value = option[:2], option[2:]  # -rfile, -ihttps://...
    if option in INDEX_OPTIONS:
        if not policy.allow_index_options:
            raise JobError(
                f"{where}: {option} changes where pip looks for packages; that is not allowed here "
                "(pass --index-url/--find-links to deps-wheelhouse, or --allow-index-options to permit it)"
            )
        return []
    if option in ("-e", "--editable"):
        raise JobError(
            f"{where}: editable requirements ({option}) cannot go into a wheelhouse; "
            "list the package or add its project to the input"
        )
    if option in INCLUDE_OPTIONS:
        if not value:
            raise JobError(f"{where}: {option} needs a file name")
        included = (path.parent / value).resolve()
        if not included.is_relative_to(root.resolve()):
            raise JobError(f"{where}: {option} {value} is outside the input; includes must be files of the input")
        if not included.is_file():
            raise JobError(f"{where}: {option} {value}: no such file in the input")
        return check(included, root.resolve(), policy, depth + 1)
    if option in HARMLESS_OPTIONS:
        return []
    raise JobError(f"{where}: option {option} is not supported in a wheelhouse requirements file")


def _requirement(line: str, where: str, policy: Policy) -> str:
    # A requirement line may carry per-requirement options; only --hash is accepted.
    text, _, options = line.partition(" --")
    if options and set(re.findall(r"(?:^|\s)--([A-Za-z-]+)", "--" + options)) - {"hash"}:
        raise JobError(f"{where}: only --hash may follow a requirement, got {line[:120]!r}")
    text = text.strip()
    if _VCS.match(text) or _URLISH.match(text) or text.startswith((".", "/", "~")):
        return _url(text, where, policy)
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "unreadable"
        raise JobError(f"{where}: {text[:120]!r} is not a valid requirement ({reason})") from None
    if requirement.url:
        return _url(text, where, policy)
    return text


def _url(text: str, where: str, policy: Policy) -> str:
    if not policy.allow_url_requirements:
        raise JobError(
            f"{where}: {text[:120]!r} installs from a VCS, URL or path; that is not allowed here "
            "(name a package from the index, put the project or wheel in the input, or pass --allow-url-requirements)"
        )
    return text
