"""The platform's wheel: built from wheel/ while the program runs, cached by source hash, uploaded to a volume.

- Reproducible: hatchling builds with fixed timestamps (SOURCE_DATE_EPOCH is cleared so a CI variable cannot
  change the bytes), so the same sources give the same file, a preview with unchanged sources shows no change,
  and a cached build is reused instead of rebuilt.
- Content-versioned: the version is `0.1.0.dev<N>` (wheel/hatch_build.py, whose `source_hash`
  this module uses too), so any change gives a new version and a new file name under the wheels volume.
- Uploaded as content (`content_base64`) with an explicit `md5`: the plan depends on the sources only, not on
  where the checkout lives (a `source` path would differ between machines and show as a change).
- Runs in flight keep their wheel: each version is a new file (the path changes, so the `File` is replaced) and
  the old one is `retain_on_delete`, so replacing it leaves it in the volume. README: cleaning up old versions.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pulumi
import pulumi_databricks as db

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "wheel"
CACHE = ROOT / ".wheel-cache"
PACKAGE = "agent_jobs"
"""The distribution name: python_wheel_task.package_name of every job."""


@functools.cache
def _extras(pyproject: Path) -> dict[str, list[str]]:
    """The wheel's extras, read once per program run (every system's jobs ask)."""
    found: dict[str, list[str]] = tomllib.loads(pyproject.read_text())["project"].get("optional-dependencies", {})
    return found


def extra_requirements(source: Path, extra: str) -> tuple[str, ...]:
    """The requirements of one of the wheel's extras (its `[project.optional-dependencies]`), as written there.
    Each system's jobs install these beside the wheel, so no system gets another system's libraries."""
    extras = _extras(source / "pyproject.toml")
    if extra not in extras:
        raise WheelBuildError(
            f"{source / 'pyproject.toml'} has no extra {extra!r}; it has: {', '.join(sorted(extras))}"
        )
    return tuple(extras[extra])


class WheelBuildError(Exception):
    """The wheel could not be built (the message carries the builder's output)."""


@dataclass(frozen=True)
class BuiltWheel:
    path: Path
    version: str
    md5: str
    sha256: str

    @property
    def filename(self) -> str:
        return self.path.name

    def content_base64(self) -> str:
        return base64.b64encode(self.path.read_bytes()).decode()


def _hook(source: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("agent_jobs_hatch_build", source / "hatch_build.py")
    if spec is None or spec.loader is None:
        raise WheelBuildError(f"{source / 'hatch_build.py'} cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_wheel(source: Path = SOURCE, cache: Path = CACHE) -> BuiltWheel:
    """The wheel for the current sources: from the cache when these sources were built before."""
    digest = _hook(source).source_hash(source)
    target = cache / digest[:16]
    if not list(target.glob("*.whl")):
        _build_into(source, cache, target)
    (wheel,) = target.glob("*.whl")
    data = wheel.read_bytes()
    version = wheel.name.split("-")[1]
    return BuiltWheel(wheel, version, hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest())


def _build_into(source: Path, cache: Path, target: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=".build-"))
    try:
        env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
        result = subprocess.run(
            [sys.executable, "-m", "hatchling", "build", "--target", "wheel", "--directory", str(tmp)],
            cwd=source,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip().splitlines()[-15:]
            raise WheelBuildError(f"building the wheel in {source} failed:\n" + "\n".join(output))
        try:
            tmp.rename(target)  # atomic: a concurrent build of the same sources wins or loses as a whole
        except OSError:
            if not list(target.glob("*.whl")):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass(frozen=True)
class WheelArtifactArgs:
    wheel: BuiltWheel
    volume_path: pulumi.Input[str]
    """'/Volumes/<catalog>/<schema>/<wheels volume>'."""


class WheelArtifact(pulumi.ComponentResource):
    """Children: `File` <name> holding the wheel at <volume>/<wheel file name>, retain_on_delete (older
    versions stay for runs in flight). A new version changes the path and so replaces the File."""

    path: pulumi.Output[str]
    """The uploaded wheel's path; jobs take it from here, so they depend on the upload."""
    version: str

    def __init__(self, name: str, args: WheelArtifactArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:wheel:WheelArtifact", name, None, opts)
        wheel = args.wheel
        uploaded = db.File(
            name,
            path=pulumi.Output.concat(args.volume_path, "/", wheel.filename),
            content_base64=wheel.content_base64(),
            md5=wheel.md5,
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )
        self.path = uploaded.path
        self.version = wheel.version
        self.register_outputs({"path": self.path, "version": self.version})
