"""The format-validation job's inputs: one zip per shape, built from the wheel's fixture sources
(wheel/src/agent_jobs/wheelhouse/fixtures) while the program runs, cached by source hash.

The wheel's own builder (`agent_jobs.wheelhouse.fixtures.write_all`) makes them: sorted entries, fixed
timestamps, wheels written without pip, so the same sources give the same bytes on every machine and a preview
with unchanged sources shows no change. It runs in a subprocess with this checkout's wheel sources first on its
path: `pulumi up` does not install the wheel into the program's environment, and an installed copy from
another checkout must not decide what is uploaded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from infra.components.wheel import CACHE, SOURCE, WheelBuildError

BUILDER = "wheel/src/agent_jobs/wheelhouse"
"""What the fixtures are made from (sources and the code that zips them): its hash keys the cache."""
INDEX = "fixtures.json"
_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
from agent_jobs.wheelhouse import fixtures
from pathlib import Path
out = Path(sys.argv[2])
built = fixtures.build_all()
for fixture in built.values():
    (out / fixture.filename).write_bytes(fixture.data)
index = {s: {"file": f.filename, "modules": list(f.modules), "index_requirements": list(f.index_requirements)}
         for s, f in built.items()}
(out / "fixtures.json").write_text(json.dumps(index, sort_keys=True))
"""


@dataclass(frozen=True)
class BuiltFixture:
    """One shape's input zip, as the format job's process_<shape> task reads it."""

    shape: str
    path: Path
    modules: tuple[str, ...]
    """What verify_<shape> must import (deps-wheelhouse verify --expect)."""
    needs_index: bool
    """Whether processing it downloads from the package index (else it runs with --no-index)."""
    md5: str
    sha256: str

    @property
    def filename(self) -> str:
        """<shape>-<first 16 hex digits of its sha256>.zip: a new content is a new path, like the wheel's."""
        return f"{self.shape}-{self.sha256[:16]}.zip"

    def content_base64(self) -> str:
        return base64.b64encode(self.path.read_bytes()).decode()


def source_digest(builder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in builder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(builder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def build_fixtures(wheel_source: Path = SOURCE, cache: Path = CACHE) -> dict[str, BuiltFixture]:
    """Shape -> its fixture, for the current sources: from the cache when these sources were built before."""
    builder = wheel_source / "src" / "agent_jobs" / "wheelhouse"
    target = cache / f"fixtures-{source_digest(builder)[:16]}"
    if not (target / INDEX).is_file():
        _build_into(wheel_source / "src", cache, target)
    index = json.loads((target / INDEX).read_text())
    built = {}
    for shape, entry in index.items():
        data = (target / entry["file"]).read_bytes()
        built[shape] = BuiltFixture(
            shape=shape,
            path=target / entry["file"],
            modules=tuple(entry["modules"]),
            needs_index=bool(entry["index_requirements"]),
            md5=hashlib.md5(data).hexdigest(),
            sha256=hashlib.sha256(data).hexdigest(),
        )
    return built


def _build_into(src: Path, cache: Path, target: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=".fixtures-"))
    try:
        # -I: no PYTHONPATH, no user site, not the cwd; the checkout's wheel sources go first on the path.
        result = subprocess.run(
            [sys.executable, "-I", "-c", _SCRIPT, str(src), str(tmp)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip().splitlines()[-15:]
            raise WheelBuildError(f"building the wheelhouse fixtures from {src} failed:\n" + "\n".join(output))
        try:
            tmp.rename(target)  # atomic: a concurrent build of the same sources wins or loses as a whole
        except OSError:
            if not (target / INDEX).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
