"""Whole-file writes that also work on Unity Catalog volumes (FUSE: no appends, no random writes)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json(path: Path, data: Any) -> None:
    """Write JSON so that a reader sees the old file or the new one, never half of one: a new temporary file
    in the same directory (created exclusively, so a planted file or link of that name is never written
    through), then a rename. Where a filesystem cannot rename over a file, write it directly."""
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        try:
            os.replace(tmp, path)
        except OSError:
            if path.is_dir():
                raise
            path.write_text(text, encoding="utf-8")
    finally:
        tmp.unlink(missing_ok=True)
