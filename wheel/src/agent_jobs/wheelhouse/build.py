"""`process`: from a user's input to a wheelhouse for the target Python, offline when told to be.

Steps, all in a private work directory that is removed whatever happens:
1. stage the input (`archive`: checked extraction or copy; a bare `.txt` becomes `requirements.txt`),
   detect its shape (`shapes`) and check every requirements file (`reqfile`);
2. build local code into wheels: loose modules into one synthesized wheel (`user-code-<content hash>`,
   so two inputs never replace each other's installs on a shared driver), projects and sdists with
   `pip wheel --no-deps --no-build-isolation --no-index` (the cluster's own setuptools/wheel: no network);
3. resolve everything with one `pip download --only-binary=:all:` for the explicit target (`--python-version
   --implementation cp --abi --platform` for each tag), the built wheels found through `--find-links`;
4. check each wheel fits the target (`wheels.check_fits`), write `wheelhouse.zip`, `pyfiles.zip`,
   `manifest.json`, then copy them into the output directory.

pip runs with `PIP_CONFIG_FILE=/dev/null` and no `PIP_*` variables but the certificate ones: the machine's
pip configuration never changes what goes into a wheelhouse, so a laptop and a job given the same options
build the same wheels. SOURCE_DATE_EPOCH makes local builds byte-reproducible.

The output directory: one that does not exist is created and, on any failure, removed; an existing empty
one is filled and emptied again on failure; an existing non-empty one is refused before anything is done
(it is never half-overwritten).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_jobs.errors import JobError
from agent_jobs.wheelhouse import manifest, reqfile
from agent_jobs.wheelhouse.archive import SOURCE_DATE_EPOCH, Limits, copy_tree, extract_zip, tree_entries
from agent_jobs.wheelhouse.shapes import Detected, detect
from agent_jobs.wheelhouse.wheels import Target, WheelInfo, check_fits, inspect, write_wheel

log = logging.getLogger("agent_jobs.wheelhouse.build")

PIP_TIMEOUT_SECONDS = 1800
_KEPT_PIP_VARIABLES = {"PIP_CERT", "PIP_CLIENT_CERT"}
_MESSAGE_LIMIT = 600


@dataclass(frozen=True)
class Options:
    """Everything `process` takes besides the input and output paths (the CLI's options)."""

    target: Target = field(default_factory=Target)
    find_links: tuple[Path, ...] = ()
    index_url: str | None = None
    no_index: bool = False
    policy: reqfile.Policy = field(default_factory=reqfile.Policy)
    limits: Limits = field(default_factory=Limits)


class PipFailed(JobError):
    pass


def pip_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k in _KEPT_PIP_VARIABLES}
    env.update(PIP_CONFIG_FILE=os.devnull, SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH, PYTHONHASHSEED="0")
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PIP_PROGRESS_BAR="off", PIP_NO_COLOR="1")
    return env


def shorten(output: str) -> str:
    """pip's error lines, without the noise, at most a few hundred characters."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("ERROR:", "error:"))] or lines[-3:]
    text = " ".join(dict.fromkeys(errors))
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 3] + "..."


def run_pip(args: list[str], cwd: Path) -> str:
    command = [sys.executable, "-m", "pip", *args]
    log.info("pip %s", " ".join(args[:1] + [a for a in args[1:] if not a.startswith("/")][:12]))
    try:
        done = subprocess.run(
            command, cwd=cwd, env=pip_env(), capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise PipFailed(f"pip {args[0]} did not finish within {PIP_TIMEOUT_SECONDS} s") from None
    if done.returncode != 0:
        raise PipFailed(shorten(done.stderr + "\n" + done.stdout))
    return done.stdout


def stage(source: Path, dest: Path, limits: Limits) -> None:
    """The input, checked, as files under dest."""
    if source.is_dir():
        copy_tree(source, dest, limits)
    elif source.suffix.lower() == ".zip":
        extract_zip(source, dest, limits)
    elif source.suffix.lower() == ".txt":
        if source.stat().st_size > reqfile.MAX_BYTES:
            raise JobError(
                f"{source.name} is larger than {reqfile.MAX_BYTES // 1024} KiB; a requirements file is a short list"
            )
        shutil.copyfile(source, dest / "requirements.txt")
    else:
        raise JobError(f"input {source} is not a .zip, a directory or a requirements .txt file")


def _synthesize(code: tuple[Path, ...], root: Path, out: Path) -> Path:
    """One pure-Python wheel of the loose modules and packages, named after their content."""
    files: list[tuple[str, bytes]] = []
    for item in code:
        if item.is_file():
            files.append((item.name, item.read_bytes()))
        else:
            files += tree_entries(item, prefix=item.relative_to(root).as_posix() + "/")
    digest = hashlib.sha256()
    for name, data in sorted(files):
        digest.update(name.encode() + b"\0" + data + b"\0")
    return write_wheel(out, f"user-code-{digest.hexdigest()[:10]}", "0.0.0", files)


def _shown(source: Path, root: Path) -> str:
    return source.relative_to(root).as_posix() if source != root else "the input's project"


def _pip_wheel(sources: list[Path], root: Path, out: Path) -> None:
    run_pip(
        ["wheel", "--no-deps", "--no-build-isolation", "--no-index", "--wheel-dir", str(out), *map(str, sources)], root
    )


def _build_local(detected: Detected, out: Path) -> list[Path]:
    """Wheels of the input's own code: synthesized, or built by pip without network or build isolation."""
    built: list[Path] = []
    if detected.code:
        built.append(_synthesize(detected.code, detected.root, out))
    sources = [*([detected.project] if detected.project else []), *detected.subprojects]
    sources += [d for d in detected.distributions if d.name.endswith(".tar.gz")]
    if not sources:
        return built
    # One pip for all of them (pip's start-up dominates small builds); on failure, one at a time to name
    # the source at fault.
    try:
        _pip_wheel(sources, detected.root, out)
    except PipFailed as exc:
        failure, at_fault = exc, sources
        for source in sources if len(sources) > 1 else []:
            try:
                _pip_wheel([source], detected.root, out)
            except PipFailed as single:
                failure, at_fault = single, [source]
                break
        shown = _shown(at_fault[0], detected.root) if len(at_fault) == 1 else "the input's projects"
        hint = ""
        if "bdist_wheel" in str(failure):  # setuptools < 70.1 builds wheels only with the `wheel` package
            hint = "; install the `wheel` package beside setuptools>=61 (seed 004's cluster libraries)"
        raise JobError(
            f"building {shown} failed (built with this Python's setuptools/wheel, no build isolation): {failure}{hint}"
        ) from None
    new = sorted(out.glob("*.whl"))
    if len(new) != len(built) + len(sources):
        raise JobError(f"building {len(sources)} project(s) and sdist(s) gave {len(new) - len(built)} wheels")
    return new


def _resolution_message(exc: PipFailed, options: Options) -> str:
    text = str(exc)
    match = re.search(r"No matching distribution found for (\S+)", text) or re.search(
        r"Could not find a version that satisfies the requirement (\S+)", text
    )
    where = "offline (--no-index)" if options.no_index else "from the index"
    if options.find_links:
        where += " or the --find-links directories"
    if match:
        return f"dependency {match.group(1)} cannot be resolved {where} for {options.target.describe()}: pip: {text}"
    return f"resolving the dependencies failed for {options.target.describe()}: pip: {text}"


def _resolve(detected: Detected, local: list[Path], requirements: list[str], options: Options, out: Path) -> list[Path]:
    args = ["download", "--dest", str(out), *options.target.pip_args()]
    if options.no_index:
        args.append("--no-index")
    if options.index_url:
        args += ["--index-url", options.index_url]
    for link in (*options.find_links, *sorted({w.parent for w in local})):
        args += ["--find-links", str(link.absolute())]  # pip runs in the staged input, not here
    if requirements and detected.requirements:
        args += ["--requirement", str(detected.requirements)]
    args += [str(w) for w in local]
    if not requirements and not local:
        return []
    if not requirements and not any(inspect(w).requires_dist for w in local):
        # Nothing to resolve: the input's own wheels depend on nothing (pip would only copy them).
        for wheel in local:
            shutil.copyfile(wheel, out / wheel.name)
        return sorted(out.glob("*.whl"))
    try:
        run_pip(args, detected.root)
    except PipFailed as exc:
        raise JobError(_resolution_message(exc, options)) from None
    others = sorted(p.name for p in out.iterdir() if not p.name.endswith(".whl"))
    if others:
        raise JobError(f"pip downloaded files that are not wheels: {', '.join(others)}")
    return sorted(out.glob("*.whl"))


def _check(wheels: list[Path], target: Target) -> list[WheelInfo]:
    supported = target.supported_tags()
    infos = [inspect(w) for w in wheels]
    seen: dict[str, str] = {}
    for info in infos:
        check_fits(info, target, supported)
        if info.name in seen:
            raise JobError(f"two versions of {info.name} in the wheelhouse: {seen[info.name]} and {info.file}")
        seen[info.name] = info.file
    return infos


def build_into(source: Path, out: Path, work: Path, options: Options) -> dict[str, Any]:
    """Steps 1-4 of the module docstring; the wheelhouse files end up in `out` (an empty directory)."""
    staged = work / "input"
    staged.mkdir()
    stage(source, staged, options.limits)
    detected = detect(staged)
    log.info("input %s: shape %s", source.name, detected.shape)
    requirements = reqfile.check(detected.requirements, detected.root, options.policy) if detected.requirements else []
    local_dir = work / "local"
    local_dir.mkdir()
    local = _build_local(detected, local_dir)
    for wheel in [*local, *(d for d in detected.distributions if d.name.endswith(".whl"))]:
        check_fits(inspect(wheel), options.target)
    existing = [d for d in detected.distributions if d.name.endswith(".whl")]
    for wheel in existing:  # beside the built ones, so one --find-links directory serves them all
        shutil.copyfile(wheel, local_dir / wheel.name)
    resolved_dir = work / "resolved"
    resolved_dir.mkdir()
    wheels = _resolve(detected, sorted(local_dir.glob("*.whl")), requirements, options, resolved_dir)
    if not wheels:
        raise JobError(f"the input ({detected.shape}) gave no wheels: its requirements.txt lists no requirement")
    infos = _check(wheels, options.target)
    house = manifest.write_wheelhouse(out, wheels)
    pyfiles = manifest.write_pyfiles(out, wheels, infos)
    data = manifest.build(detected.shape, options.target, infos, house, pyfiles)
    (out / manifest.MANIFEST).write_text(manifest.dumps(data), encoding="utf-8")
    return data


def _check_output(output: Path) -> bool:
    """Whether output exists (and is empty); a JobError when it cannot be used."""
    if output.is_symlink() or (output.exists() and not output.is_dir()):
        raise JobError(f"output {output} exists and is not a directory")
    if output.is_dir():
        if any(output.iterdir()):
            raise JobError(
                f"output {output} already exists and is not empty; "
                "remove it (deps-wheelhouse cleanup) or choose another"
            )
        return True
    return False


def process(source: Path, output: Path, options: Options) -> dict[str, Any]:
    """Build the wheelhouse of `source` into `output`; its manifest. Leaves nothing behind on failure."""
    if not source.exists():
        raise JobError(f"input {source} does not exist")
    existed = _check_output(output)
    work = Path(tempfile.mkdtemp(prefix="deps-wheelhouse-"))
    written: list[Path] = []
    try:
        out = work / "out"
        out.mkdir()
        data = build_into(source, out, work, options)
        output.mkdir(parents=True, exist_ok=True)
        # The manifest last: a reader that finds it finds the zips it describes.
        for name in (manifest.WHEELHOUSE, manifest.PYFILES, manifest.MANIFEST):
            if (out / name).exists():
                written.append(output / name)
                shutil.copyfile(out / name, output / name)
        return data
    except BaseException:
        if existed:
            for path in written:
                path.unlink(missing_ok=True)
        else:
            shutil.rmtree(output, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
