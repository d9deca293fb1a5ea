"""The wheelhouse's three files and the manifest that describes them.

- `wheelhouse.zip`: every wheel, at the zip's root, sorted by file name.
- `pyfiles.zip` (only when some wheels are pure Python): the contents of the pure-Python wheels merged into
  one importable tree (`*.data/purelib|platlib` moved to the root, other `*.data` dropped), which Spark ships
  to workers (`addPyFile` / `addArtifacts(pyfile=True)` take `.zip` files; a `.whl` is not importable there).
- `manifest.json`: `format`, `shape`, `target` (python_version, implementation, abi, platforms), `wheels`
  (file, name, version, sha256, tags, pure, requires_python, requires_dist, modules), the union of `modules`, and the
  sha256 of the zips. No paths, times or host names: the same input gives the same manifest.

`load` reads a manifest back for `verify`, refusing one that is not ours or is malformed.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import asdict
from pathlib import Path, PurePosixPath
from typing import Any

from agent_jobs.errors import JobError
from agent_jobs.wheelhouse.archive import write_zip
from agent_jobs.wheelhouse.wheels import Target, WheelInfo

FORMAT = "agent-jobs-wheelhouse/1"
WHEELHOUSE = "wheelhouse.zip"
PYFILES = "pyfiles.zip"
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 16 * 1024 * 1024


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def write_wheelhouse(out: Path, wheels: list[Path]) -> Path:
    path = out / WHEELHOUSE
    write_zip(path, [(w.name, w.read_bytes()) for w in sorted(wheels, key=lambda w: w.name)])
    return path


def write_pyfiles(out: Path, wheels: list[Path], infos: list[WheelInfo]) -> Path | None:
    """The pure-Python wheels' files as one zip; None when there are none. Two wheels writing one path fail."""
    owners: dict[str, str] = {}
    entries: list[tuple[str, bytes]] = []
    by_file = {info.file: info for info in infos}
    for wheel in sorted(wheels, key=lambda w: w.name):
        if not by_file[wheel.name].pure:
            continue
        with zipfile.ZipFile(wheel) as zf:
            for original in sorted(zf.namelist()):
                if original.endswith("/"):
                    continue
                name = original
                parts = PurePosixPath(name).parts
                if parts[0].endswith(".data"):
                    if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                        continue  # scripts, headers, data files: not importable code
                    name = "/".join(parts[2:])
                if name in owners:
                    raise JobError(
                        f"wheels {owners[name]} and {wheel.name} both contain {name}; they cannot share one environment"
                    )
                owners[name] = wheel.name
                entries.append((name, zf.read(original)))
    if not entries:
        return None
    path = out / PYFILES
    write_zip(path, sorted(entries))
    return path


def build(shape: str, target: Target, infos: list[WheelInfo], wheelhouse: Path, pyfiles: Path | None) -> dict[str, Any]:
    wheels = [asdict(info) for info in sorted(infos, key=lambda i: i.file)]
    for wheel in wheels:
        wheel["tags"] = list(wheel["tags"])
        wheel["modules"] = list(wheel["modules"])
        wheel["requires_dist"] = list(wheel["requires_dist"])
    pure_modules = sorted({m for info in infos if info.pure for m in info.modules})
    return {
        "format": FORMAT,
        "shape": shape,
        "target": {
            "python_version": target.python_version,
            "implementation": "cp",
            "abi": target.abi,
            "platforms": list(target.platforms),
        },
        "wheels": wheels,
        "modules": sorted({m for info in infos for m in info.modules}),
        "wheelhouse": {"file": WHEELHOUSE, "sha256": sha256(wheelhouse)},
        "pyfiles": {"file": PYFILES, "sha256": sha256(pyfiles), "modules": pure_modules} if pyfiles else None,
    }


def dumps(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"


def _fail(path: Path, what: str) -> JobError:
    return JobError(f"{path} is not a deps-wheelhouse manifest: {what}")


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.isprintable() and len(v) < 300 for v in value)


def load(path: Path) -> dict[str, Any]:
    """The manifest at path, checked field by field (verify trusts nothing it did not check)."""
    if not path.is_file():
        raise JobError(f"{path} does not exist; `deps-wheelhouse process` writes it beside {WHEELHOUSE}")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise _fail(path, f"larger than {MAX_MANIFEST_BYTES // (1024 * 1024)} MiB")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _fail(path, f"not JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _fail(path, f"its format is not {FORMAT!r}")
    wheels = data.get("wheels")
    if not isinstance(wheels, list) or not all(isinstance(w, dict) for w in wheels):
        raise _fail(path, "'wheels' is not a list of objects")
    for wheel in wheels:
        if (
            not isinstance(wheel.get("file"), str)
            or not isinstance(wheel.get("pure"), bool)
            or not _strings(wheel.get("modules"))
        ):
            raise _fail(path, "a wheel entry lacks file, pure or modules")
    if not _strings(data.get("modules")) or not all(m.isidentifier() for m in data["modules"]):
        raise _fail(path, "'modules' is not a list of module names")
    house = data.get("wheelhouse")
    if not isinstance(house, dict) or not isinstance(house.get("sha256"), str):
        raise _fail(path, "'wheelhouse' lacks its sha256")
    pyfiles = data.get("pyfiles")
    if pyfiles is not None and (not isinstance(pyfiles, dict) or not isinstance(pyfiles.get("sha256"), str)):
        raise _fail(path, "'pyfiles' lacks its sha256")
    return data
