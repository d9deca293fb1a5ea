"""deps-wheelhouse process (seed 004) on the six shapes, offline; the wheelhouse in a fresh Python 3.10; the
cross-target build; the fixture generator; the CLI's contract; verify without Spark; cleanup's rule."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from wheelhouse_support import NATIVE_TAGS, Processed, offline, pip_env, read_json

from agent_jobs.errors import JobError
from agent_jobs.wheelhouse import cli, fixtures, manifest
from agent_jobs.wheelhouse import verify as verify_module
from agent_jobs.wheelhouse.archive import Limits, extract_zip
from agent_jobs.wheelhouse.build import process, run_pip
from agent_jobs.wheelhouse.cleanup import check_run_dir, cleanup
from agent_jobs.wheelhouse.shapes import SHAPES, detect
from agent_jobs.wheelhouse.verify import verify
from agent_jobs.wheelhouse.wheels import Target, default_platforms

pytest_plugins = ["wheelhouse_fixtures"]  # its session fixtures: find_links, fixture_zips, processed, ...
# Spark and the processed wheelhouses: one xdist worker runs this group (--dist loadgroup), so one JVM starts
# and the fixtures are processed once.
pytestmark = [pytest.mark.usefixtures("fresh_console_log"), pytest.mark.xdist_group("spark")]

PYTHON_310 = Path("/root/.pyenv/versions/3.10.13/bin/python")

EXPECTED_WHEELS = {
    "requirements": {("python-dateutil", "2.9.0.post0"), ("six", "1.17.0")},
    "packaged": {("wh-packaged", "1.0.0")},
    "existing_wheels": {("wh-wheel-alpha", "1.0.0"), ("wh-wheel-beta", "2.1.0")},
    "mixed": {("six", "1.17.0"), ("wh-mixed-app", "0.3.0")},
    "nested": {("wh-nested-core", "1.2.0"), ("wh-nested-util", "1.0.0")},
}


def test_fixtures_are_byte_identical_and_detected_as_their_shape(tmp_path: Path) -> None:
    """The format job uploads these: two builds give the same bytes (no needless re-upload, no drift), and
    each one is recognised as the shape it is named after."""
    first, second = fixtures.build_all(), fixtures.build_all()
    assert set(first) == set(SHAPES)
    for shape in SHAPES:
        assert first[shape].data == second[shape].data
        staged = tmp_path / shape
        staged.mkdir()
        (tmp_path / first[shape].filename).write_bytes(first[shape].data)
        extract_zip(tmp_path / first[shape].filename, staged, Limits())
        assert detect(staged).shape == shape
        with zipfile.ZipFile(tmp_path / first[shape].filename) as zf:
            assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in zf.infolist())
            assert zf.namelist() == sorted(zf.namelist())


@pytest.mark.parametrize("shape", SHAPES)
def test_each_shape_processes_offline_into_a_described_wheelhouse(processed: dict[str, Processed], shape: str) -> None:
    """Offline (--no-index, local find-links) every shape becomes wheelhouse.zip + manifest.json whose
    modules are exactly what the fixture's verify must import, each wheel with its true sha256."""
    result = processed[shape]
    data = manifest.load(result.output / manifest.MANIFEST)
    assert data["shape"] == shape
    assert data["target"]["python_version"] == "3.10" and data["target"]["abi"] == "cp310"
    assert data["target"]["platforms"] == list(default_platforms())
    assert data["modules"] == sorted(fixtures.MODULES[shape])
    if shape == "pure_python":  # loose code: one synthesized wheel named after its content
        (wheel,) = data["wheels"]
        assert wheel["name"].startswith("user-code-") and wheel["modules"] == ["wh_calculator", "wh_helpers"]
    else:
        assert {(w["name"], w["version"]) for w in data["wheels"]} == EXPECTED_WHEELS[shape]
    with zipfile.ZipFile(result.output / manifest.WHEELHOUSE) as zf:
        assert sorted(zf.namelist()) == sorted(w["file"] for w in data["wheels"])
        for wheel in data["wheels"]:
            assert hashlib.sha256(zf.read(wheel["file"])).hexdigest() == wheel["sha256"]
    assert data["wheelhouse"]["sha256"] == manifest.sha256(result.output / manifest.WHEELHOUSE)
    assert data["pyfiles"]["modules"] == data["modules"]  # all pure Python: everything can reach the workers
    with zipfile.ZipFile(result.output / manifest.PYFILES) as zf:
        assert {n.split("/")[0].removesuffix(".py") for n in zf.namelist() if ".dist-info" not in n} == set(
            data["modules"]
        )


def test_the_same_input_gives_the_same_manifest(
    processed: dict[str, Processed], fixture_zips: dict[str, Path], find_links: Path, tmp_path: Path
) -> None:
    """Deterministic: building again (a project built by setuptools, so timestamps matter) gives the same
    manifest and the same wheelhouse bytes; a user's local run matches the job's."""
    again = process(fixture_zips["packaged"], tmp_path / "again", offline(find_links))
    before = processed["packaged"].output
    assert (tmp_path / "again" / manifest.MANIFEST).read_bytes() == (before / manifest.MANIFEST).read_bytes()
    assert again == read_json(before / manifest.MANIFEST)


def test_the_wheelhouses_install_into_a_fresh_python_310_and_import(
    processed: dict[str, Processed], tmp_path: Path
) -> None:
    """What the cluster's Python (3.10) does with a wheelhouse built here on 3.11: pip installs every wheel
    offline from it, and every module imports and works."""
    assert PYTHON_310.exists(), "pyenv's Python 3.10 is part of this machine"
    venv = tmp_path / "py310"
    subprocess.run([PYTHON_310, "-m", "venv", "--without-pip", venv], check=True)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for result in processed.values():
        with zipfile.ZipFile(result.output / manifest.WHEELHOUSE) as zf:
            zf.extractall(wheels)
    install = [sys.executable, "-m", "pip", "--python", str(venv / "bin/python"), "install", "--no-index"]
    install += ["--find-links", str(wheels), *sorted(str(w) for w in wheels.glob("*.whl"))]
    subprocess.run(install, check=True, capture_output=True, env=pip_env())
    modules = sorted({m for r in processed.values() for m in r.manifest["modules"]})
    script = (
        f"import importlib, sys; [importlib.import_module(m) for m in {modules!r}]; assert sys.version_info[:2] == (3, 10)\n"
        "import wh_calculator, wh_helpers, wh_packaged, wh_wheel_beta, wh_mixed_app, wh_nested_util\n"
        "print(wh_calculator.add(2, 3), wh_helpers.shout('hi'), wh_packaged.greet('x'), wh_wheel_beta.answer(),\n"
        "      wh_mixed_app.six_version(), wh_nested_util.quadruple(2))\n"
    )
    done = subprocess.run([venv / "bin/python", "-c", script], check=True, capture_output=True, text=True)
    assert done.stdout.split() == ["5", "HI!", "hello,", "x", "42", "1.17.0", "8"]


def test_cross_target_build_picks_the_cp310_manylinux_wheel(find_links: Path, tmp_path: Path) -> None:
    """From this Python 3.11, a cp310 target gets the cp310 manylinux_2_17 wheel (found because the default
    list names manylinux_2_17 explicitly); targeting 3.11 gets the cp311 one; a platform list without
    2_17 finds nothing, because pip does not widen --platform tags."""
    assert sys.version_info[:2] != (3, 10)
    req = tmp_path / "requirements.txt"
    req.write_text("wh-native==1.0\n")
    for version, tag in (("3.10", NATIVE_TAGS[0]), ("3.11", NATIVE_TAGS[1])):
        data = process(req, tmp_path / version, offline(find_links, Target(version)))
        (wheel,) = data["wheels"]
        assert wheel["file"] == f"wh_native-1.0-{tag}.whl" and wheel["pure"] is False
        assert data["pyfiles"] is None  # nothing pure to ship to workers
    with pytest.raises(JobError, match=r"dependency wh-native==1\.0 cannot be resolved offline"):
        process(req, tmp_path / "narrow", offline(find_links, Target("3.10", ("manylinux_2_28_x86_64",))))
    assert not (tmp_path / "narrow").exists()


def test_cli_prints_the_wheelhouse_path_last_and_writes_its_result(
    fixture_zips: dict[str, Path], find_links: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The job's next task reads the last stdout line; the result file says what happened."""
    out = tmp_path / "runs" / "7" / "wheelhouse"
    cli.main(["process", "--input", str(fixture_zips["existing_wheels"]), "--output", str(out), "--no-index",
              "--find-links", str(find_links)])  # fmt: skip
    assert capsys.readouterr().out.splitlines()[-1] == str(out / "wheelhouse.zip")
    result = read_json(tmp_path / "runs" / "7" / "wheelhouse.result.json")
    assert result["status"] == "succeeded" and result["shape"] == "existing_wheels"
    assert result["wheels"] == ["wh_wheel_alpha-1.0.0-py3-none-any.whl", "wh_wheel_beta-2.1.0-py3-none-any.whl"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["process", "--input", "x", "--output", "y", "--max-ratio", "nan"], "not a finite number"),
        (["process", "--input", "x", "--output", "y", "--max-ratio", "inf"], "not a finite number"),
        (["process", "--input", "x", "--output", "y", "--max-files", "0"], "whole number from 1"),
        (["process", "--input", "x", "--output", "y", "--max-expanded-mb", "9" * 5000], "whole number from 1"),
        (["process", "--input", "x", "--output", "y", "--python-version", "2.7"], "not a Python version"),
        (["process", "--input", "x", "--output", "y", "--platform", "Many Linux"], "not a platform tag"),
        (["process", "--input", "x", "--output", "y", "--index-url", "ftp://x"], "not an http(s)"),
        (["process", "--input", "x", "--output", "y", "--no-index", "--index-url", "https://x"], "contradict"),
        (["process", "--input", "x", "--output", "y", "--result-file", "y/r.json"], "must not be inside"),
        (["verify", "--wheelhouse", "x", "--workers", "0"], "whole number from 1"),
        (["verify", "--wheelhouse", "x", "--expect", "not a module"], "not a module name"),
        (["cleanup"], "--run-dir"),
    ],
)
def test_usage_errors_exit_2_before_anything_runs(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad option value (non-finite, out of range, malformed) is a usage error: exit 2, one message naming it."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_failure_is_one_line_locally_and_raises_in_a_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entry-point contract: exit 1 with the message on a laptop; in a job the JobError itself (the
    task fails with it), never sys.exit; the result file says failed either way."""
    argv = ["process", "--input", str(tmp_path / "missing.zip"), "--output", str(tmp_path / "out")]
    monkeypatch.delenv("DB_IS_JOB", raising=False)
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 1
    assert "deps-wheelhouse: error: input" in capsys.readouterr().err
    monkeypatch.setenv("DB_IS_JOB", "TRUE")
    with pytest.raises(JobError, match="does not exist"):
        cli.main(argv)
    assert read_json(tmp_path / "out.result.json")["status"] == "failed"
    assert not (tmp_path / "out").exists()


def test_an_existing_output_is_never_half_overwritten(
    fixture_zips: dict[str, Path], find_links: Path, tmp_path: Path
) -> None:
    """A non-empty output directory is refused and left as it was; an empty one is used, and emptied again
    (not removed: it was not ours) when processing fails."""
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "manifest.json").write_text("theirs")
    with pytest.raises(JobError, match="already exists and is not empty"):
        process(fixture_zips["packaged"], busy, offline(find_links))
    assert [p.name for p in busy.iterdir()] == ["manifest.json"] and (busy / "manifest.json").read_text() == "theirs"
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = tmp_path / "bad.txt"
    bad.write_text("wh-missing==1.0\n")
    with pytest.raises(JobError, match="wh-missing"):
        process(bad, empty, offline(find_links))
    assert empty.is_dir() and list(empty.iterdir()) == []


def test_verify_without_spark_installs_and_imports_on_the_driver(
    processed: dict[str, Processed], tmp_path: Path, isolated_imports: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deps-wheelhouse verify --spark off, with relative paths: the wheelhouse installs into --target (here,
    not in pip's working directory) and every listed module imports; verify.json says so."""
    house = tmp_path / "wh"
    house.mkdir()
    for name in (manifest.WHEELHOUSE, manifest.MANIFEST, manifest.PYFILES):
        (house / name).write_bytes((processed["existing_wheels"].output / name).read_bytes())
    monkeypatch.chdir(tmp_path)
    pips: list[list[str]] = []

    def recorded(args: list[str], cwd: Path) -> str:
        pips.append(args)
        return run_pip(args, cwd)

    monkeypatch.setattr(verify_module, "run_pip", recorded)
    cli.main(["verify", "--wheelhouse", "wh/wheelhouse.zip", "--spark", "off", "--target", "site",
              "--expect", "wh_wheel_beta"])  # fmt: skip
    assert (tmp_path / "site" / "wh_wheel_beta.py").is_file()
    # pip's conflict check judges the running Python, which --target does not install into (and costs
    # seconds on a cluster's hundreds of distributions): verify turns it off
    [install] = pips
    assert install[0] == "install" and "--target" in install and "--no-warn-conflicts" in install
    result = read_json(house / "verify.json")
    assert result["status"] == "succeeded" and result["spark"] == "none"
    assert result["driver"] == {"wh_wheel_alpha": "ok", "wh_wheel_beta": "ok"}


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ("expect", "the manifest lists no module wh_absent"),
        ("zip", "does not match its manifest's sha256"),
        ("manifest", "is not a deps-wheelhouse manifest"),
    ],
)
def test_verify_refuses_a_wheelhouse_it_cannot_trust(
    processed: dict[str, Processed], tmp_path: Path, tamper: str, message: str
) -> None:
    """A replaced zip, a foreign manifest or a missing expected module fails before anything is installed,
    and verify.json records the reason."""
    house = tmp_path / "wh"
    house.mkdir()
    for name in (manifest.WHEELHOUSE, manifest.MANIFEST):
        (house / name).write_bytes((processed["packaged"].output / name).read_bytes())
    if tamper == "zip":
        (house / manifest.WHEELHOUSE).write_bytes(b"PK\x05\x06" + bytes(18))
    if tamper == "manifest":
        (house / manifest.MANIFEST).write_text('{"format": "something else"}')
    with pytest.raises(JobError, match=message):
        verify(house, spark_mode="off", target=tmp_path / "site", expect=("wh_absent",) if tamper == "expect" else ())
    assert not (tmp_path / "site").exists()
    assert message in read_json(house / "verify.json")["error"]


@pytest.mark.parametrize(
    "path",
    ["/", "/Volumes/main/agents/wheelhouse", "/Volumes/main/agents/runs/123", "/Volumes/main/agents/wheelhouse/runs",
     "/Volumes/main/agents/wheelhouse/data/123", "/Volumes/main/agents/wheelhouse/runs/../data", "runs/123", "",
     "/tmp/runs/1\n"],
)  # fmt: skip
def test_cleanup_refuses_anything_but_a_run_directory(path: str) -> None:
    """The root, a volume root, a volume named runs, runs/ itself, a path outside runs/, '..', a relative
    path: all refused with the rule, nothing removed."""
    with pytest.raises(JobError, match="strictly below a 'runs' directory"):
        check_run_dir(path)


def test_cleanup_removes_a_run_and_succeeds_when_it_is_gone(tmp_path: Path) -> None:
    """ALL_DONE cleanup may run twice (a repaired run): the second time is success too."""
    run = tmp_path / "runs" / "42"
    (run / "wheelhouse").mkdir(parents=True)
    (run / "wheelhouse" / "wheelhouse.zip").write_bytes(b"x")
    assert check_run_dir("/Volumes/main/agents/wheelhouse/runs/42") is not None
    assert cleanup(str(run)) is True
    assert not run.exists() and (tmp_path / "runs").is_dir()
    assert cleanup(str(run)) is False
