"""The wheel: reproducible, content-versioned, self-contained (prompts inside), runnable where installed."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

WHEEL_ROOT = Path(__file__).resolve().parent.parent


def _hook() -> object:
    spec = importlib.util.spec_from_file_location("hatch_build", WHEEL_ROOT / "hatch_build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(out: Path) -> Path:
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
        cwd=WHEEL_ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = out.glob("*.whl")
    return wheel


def fresh_venv(python: str, path: Path) -> Path:
    """A new virtualenv without pip (creating pip in it takes seconds); `pip_install` installs into it with this
    environment's pip (`pip --python`, what pip itself runs there). Its python."""
    subprocess.run([python, "-m", "venv", "--without-pip", str(path)], check=True)
    return path / "bin" / "python"


def pip_install(vpython: Path, wheel: Path) -> None:
    """Plain `pip install <path>`, as a cluster installs a library."""
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(vpython), "install", "--quiet", "--no-deps",
         "--disable-pip-version-check", str(wheel)],
        check=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("build"))


def test_two_builds_give_the_same_bytes(wheel: Path, tmp_path: Path) -> None:
    """Done when: building twice gives the same sha256 (a preview with unchanged sources shows no change)."""
    again = build(tmp_path)
    assert again.name == wheel.name
    assert hashlib.sha256(again.read_bytes()).hexdigest() == hashlib.sha256(wheel.read_bytes()).hexdigest()


def test_version_carries_the_source_hash_in_characters_the_files_api_keeps(wheel: Path) -> None:
    """The version is the sources' hash as a number (`0.1.0.dev<N>`), so pip on an existing cluster sees every
    change, and the file name holds only letters, digits, dots, dashes and underscores: no `+`, which the Files
    API would store as a space (pulumi-databricks#589)."""
    digest = _hook().source_hash(WHEEL_ROOT)  # type: ignore[attr-defined]
    assert wheel.name == f"agent_jobs-0.1.0.dev{int(digest[:12], 16)}-py3-none-any.whl"
    assert re.fullmatch(r"[A-Za-z0-9._-]+", wheel.name)


def test_wheel_is_pure_python_for_python_3_10_and_holds_the_prompts(wheel: Path) -> None:
    """py3-none-any with Requires-Python >=3.10 (DBR 14.3); each system's prompts are package data in its
    subpackage; dependencies come per system as extras; the console script is named like the seed's entry point."""
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry_points = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert {"agent_jobs/eval_agent/prompts/system.md", "agent_jobs/health_monitor/prompts/cost_worker.md"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert "Requires-Python: >=3.10" in metadata
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: ")]
    assert all("; extra == " in line for line in requires), "every dependency belongs to a system's extra"
    assert "Requires-Dist: anthropic>=0.39; extra == 'eval-agent'" in requires
    assert "Requires-Dist: mlflow-skinny>=3; extra == 'health-monitor'" in requires
    assert "mlflow-eval = agent_jobs.eval_agent.cli:main" in entry_points


def test_any_source_change_changes_the_version(tmp_path: Path) -> None:
    """Editing one prompt gives a new hash; caches and editor dotfiles do not count."""
    copy = tmp_path / "wheel"
    shutil.copytree(WHEEL_ROOT, copy, ignore=shutil.ignore_patterns("tests"))
    hook = _hook()
    before = hook.source_hash(copy)  # type: ignore[attr-defined]
    (copy / "src/agent_jobs/__pycache__").mkdir(exist_ok=True)
    (copy / "src/agent_jobs/__pycache__/x.pyc").write_bytes(b"cache")
    (copy / "src/agent_jobs/.notes.swp").write_text("editor")
    assert hook.source_hash(copy) == before  # type: ignore[attr-defined]
    prompt = copy / "src/agent_jobs/eval_agent/prompts/system.md"
    prompt.write_text(prompt.read_text() + "\nBe brief.\n")
    assert hook.source_hash(copy) != before  # type: ignore[attr-defined]


def _interpreters() -> list[str]:
    """This Python, and Python 3.10 (DBR 14.3's, the oldest the jobs run on) where it is installed."""
    found = [sys.executable]
    candidates = [shutil.which("python3.10"), *sorted(Path.home().glob(".pyenv/versions/3.10*/bin/python3.10"))]
    for candidate in filter(None, candidates):
        probe = subprocess.run([str(candidate), "--version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0 and probe.stdout.startswith("Python 3.10"):
            found.append(str(candidate))
            break
    return found


@pytest.mark.parametrize("python", _interpreters(), ids=lambda p: Path(p).name)
def test_installed_in_a_clean_virtualenv(wheel: Path, tmp_path: Path, python: str) -> None:
    """Done when: in a fresh virtualenv (nothing else installed), every console script answers --help and the
    prompts load from the installed package, not from a source checkout; under Python 3.10 too."""
    venv = tmp_path / "venv"
    vpython = fresh_venv(python, venv)
    pip_install(vpython, wheel)
    for script in ("mlflow-eval", "rlm-orchestrator", "rlm-executor", "health-monitor"):
        help_run = subprocess.run([str(venv / "bin" / script), "--help"], capture_output=True, text=True, cwd=tmp_path)
        assert help_run.returncode == 0, help_run.stderr
        assert help_run.stdout.startswith(f"usage: {script}")
    code = (
        "import json, agent_jobs.prompting as p, agent_jobs.rlm.telemetry as t; from importlib import resources; "
        "print(p.__file__); print(p.load('agent_jobs.eval_agent', 'system').splitlines()[0]); print(len(t.COLUMNS)); "
        "hm = resources.files('agent_jobs.health_monitor'); "
        "print(len(json.loads(hm.joinpath('evaluation_records.json').read_text()))); "
        "print(hm.joinpath('agent_model.py').is_file(), len(p.load('agent_jobs.health_monitor', 'orchestrator_system')) > 0)"
    )
    loaded = subprocess.run([str(vpython), "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    location, first_line, columns, records, packaged = loaded.stdout.splitlines()
    assert location.startswith(str(venv)) and first_line.startswith("You are the MLflow evaluation agent")
    assert int(columns) > 0 and int(records) >= 10  # seed 002's evaluation records ship with the wheel
    assert packaged == "True True"  # the agent's models-from-code file and its prompts too


def test_pip_replaces_an_installed_version_with_the_next_one(wheel: Path, tmp_path: Path) -> None:
    """Done when: installing version A, then version B of the wheel into one environment (what an existing
    cluster does when the job's library path changes) leaves B's code importable: the versions differ, so pip
    replaces A instead of saying 'already installed' (it would keep A if the sources changed but the version
    did not)."""
    changed = tmp_path / "wheel-b"
    shutil.copytree(WHEEL_ROOT, changed, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    init = changed / "src/agent_jobs/__init__.py"
    init.write_text(init.read_text() + '\nBUILD_MARK = "version-b"\n')
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path / "dist-b")],
        cwd=changed, env=env, check=True, capture_output=True,
    )  # fmt: skip
    (wheel_b,) = (tmp_path / "dist-b").glob("*.whl")
    assert wheel_b.name != wheel.name
    vpython = fresh_venv(sys.executable, tmp_path / "venv")
    for built in (wheel, wheel_b):
        pip_install(vpython, built)
    shown = subprocess.run(
        [str(vpython), "-c", "import agent_jobs; print(getattr(agent_jobs, 'BUILD_MARK', 'version-a'))"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    assert shown.stdout.strip() == "version-b"
