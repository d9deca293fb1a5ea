"""`cleanup`: remove one run's directory, the last task of every wheelhouse job (run_if ALL_DONE).

The rule, checked before anything is removed: the path is absolute, has no `..`, and lies strictly below a
directory named `runs` (`.../runs/<run id>` or deeper); under `/Volumes/<catalog>/<schema>/<volume>/` that
`runs` must be inside the volume. So `/`, a volume root, `runs/` itself and anything outside a runs tree are
refused, whatever a mistyped parameter says. A directory that is already gone is success (a retried or
repaired cleanup), and so is removing it.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path, PurePosixPath

from agent_jobs.errors import JobError

log = logging.getLogger("agent_jobs.wheelhouse.cleanup")

RULE = "it must be an absolute path without '..' strictly below a 'runs' directory (inside the volume on /Volumes)"


def check_run_dir(text: str) -> PurePosixPath:
    """The path to remove, or a JobError saying why this one may not be."""
    if not text or any(ord(ch) < 32 for ch in text):
        raise JobError(f"refusing to remove {text!r}: {RULE}")
    path = PurePosixPath(text)
    parts = path.parts
    if not path.is_absolute() or ".." in parts:
        raise JobError(f"refusing to remove {text}: {RULE}")
    # The lowest 'runs' that still has something below it; on /Volumes, one inside the volume.
    first_allowed = 5 if parts[:2] == ("/", "Volumes") else 1
    runs_at = [i for i, part in enumerate(parts) if part == "runs" and first_allowed <= i < len(parts) - 1]
    if not runs_at:
        raise JobError(f"refusing to remove {text}: {RULE}")
    return path


def cleanup(run_dir: str) -> bool:
    """Remove run_dir; True when it was there. Refuses symlinks (shutil.rmtree would not follow them)."""
    path = check_run_dir(run_dir)
    local = Path(str(path))
    if local.is_symlink():
        raise JobError(f"refusing to remove {path}: it is a symbolic link")
    if not local.exists():
        log.info("%s is already gone", path)
        return False
    if not local.is_dir():
        raise JobError(f"refusing to remove {path}: it is not a directory")
    shutil.rmtree(local)
    log.info("removed %s", path)
    return True
