"""Which of seed 004's six shapes an input is, decided from its files alone.

The input (a `.zip` or a directory, already staged by `archive`) is first unwrapped: while its root holds
exactly one directory and nothing else, and that directory is not itself Python code, the root moves into
it (a zip made from a folder). A bare `.txt` file input is a requirements file. Then, at the root:

- PROJECT: `pyproject.toml` or `setup.py`;
- REQUIREMENTS: `requirements.txt` (only at the root; one in a sub-directory is a project's own file);
- DISTRIBUTIONS: `*.whl` and sdists `*.tar.gz`, at the root, or (when the root is not a project) in any
  sub-directory that is neither a project nor Python code;
- CODE (when the root is not a project): `*.py` files, and directories that hold `*.py` files directly
  and are not projects (packages, `__init__.py` or not);
- SUBPROJECTS (when the root is not a project): directories up to four levels down holding
  `pyproject.toml` or `setup.py` (not looked into further).

In this order: a root PROJECT alone is `packaged`, with REQUIREMENTS or DISTRIBUTIONS `mixed`. Otherwise
exactly one kind found gives `requirements`, `pure_python`, `existing_wheels` or `nested` (SUBPROJECTS),
two or more give `mixed`, none is an error naming what the root holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from agent_jobs.errors import JobError
from agent_jobs.wheelhouse.archive import skipped

SHAPES = ("requirements", "pure_python", "packaged", "existing_wheels", "mixed", "nested")
PROJECT_FILES = ("pyproject.toml", "setup.py")
MAX_UNWRAP = 4
MAX_SUBPROJECT_DEPTH = 4


@dataclass(frozen=True)
class Detected:
    """The shape and where each part of the input is (absolute paths inside the staged input)."""

    shape: str
    root: Path
    requirements: Path | None = None
    project: Path | None = None
    distributions: tuple[Path, ...] = ()
    code: tuple[Path, ...] = ()
    subprojects: tuple[Path, ...] = field(default_factory=tuple)


def _entries(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if not skipped([p.name]))


def _is_project(directory: Path) -> bool:
    return any((directory / name).is_file() for name in PROJECT_FILES)


def _is_code_dir(directory: Path) -> bool:
    """A directory of Python code (a package, or a namespace package's part); a project is not code."""
    return not _is_project(directory) and any(p.suffix == ".py" and p.is_file() for p in directory.iterdir())


def _is_distribution(path: Path) -> bool:
    return path.is_file() and (path.name.endswith(".whl") or path.name.endswith(".tar.gz"))


def unwrap(root: Path) -> Path:
    for _ in range(MAX_UNWRAP):
        entries = _entries(root)
        if len(entries) == 1 and entries[0].is_dir() and not _is_code_dir(entries[0]):
            root = entries[0]
        else:
            break
    return root


def _below(root: Path) -> tuple[list[Path], list[Path]]:
    """(sub-projects, distributions) in the directories below root, skipping code and project contents."""
    projects: list[Path] = []
    dists: list[Path] = []
    frontier = [d for d in _entries(root) if d.is_dir() and not _is_code_dir(d)]
    for depth in range(MAX_SUBPROJECT_DEPTH):
        following: list[Path] = []
        for directory in frontier:
            if _is_project(directory):
                projects.append(directory)
                continue
            for entry in _entries(directory):
                if _is_distribution(entry):
                    dists.append(entry)
                elif entry.is_dir() and not _is_code_dir(entry) and depth + 1 < MAX_SUBPROJECT_DEPTH:
                    following.append(entry)
        frontier = following
    return projects, dists


def detect(staged: Path) -> Detected:
    root = unwrap(staged)
    entries = _entries(root)
    requirements = root / "requirements.txt" if (root / "requirements.txt").is_file() else None
    dists = [p for p in entries if _is_distribution(p)]
    if _is_project(root):
        shape = "mixed" if requirements or dists else "packaged"
        return Detected(shape, root, requirements, root, tuple(dists))
    code = [p for p in entries if (p.is_file() and p.suffix == ".py") or (p.is_dir() and _is_code_dir(p))]
    subprojects, deeper = _below(root)
    dists += deeper
    kinds = {
        "requirements": requirements is not None,
        "pure_python": bool(code),
        "existing_wheels": bool(dists),
        "nested": bool(subprojects),
    }
    found = [kind for kind, present in kinds.items() if present]
    if not found:
        shown = ", ".join(p.name + ("/" if p.is_dir() else "") for p in entries[:10]) or "nothing"
        more = f" and {len(entries) - 10} more" if len(entries) > 10 else ""
        raise JobError(
            "unknown input shape: found no requirements.txt, pyproject.toml or setup.py, *.py modules or "
            f"packages, *.whl or *.tar.gz files, or projects in sub-directories; the input holds {shown}{more}"
        )
    shape = found[0] if len(found) == 1 else "mixed"
    return Detected(shape, root, requirements, None, tuple(sorted(dists)), tuple(code), tuple(subprojects))
