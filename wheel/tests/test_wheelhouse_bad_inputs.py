"""deps-wheelhouse process on bad and hostile input: each case is one clear error line, exit status 1, a
result file saying failed, and nothing left behind (no output directory, no work directory)."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from wheelhouse_support import NATIVE_TAGS, offline, read_json, zip_bytes

from agent_jobs.errors import JobError
from agent_jobs.wheelhouse import build, cli
from agent_jobs.wheelhouse.wheels import write_wheel

pytest_plugins = ["wheelhouse_fixtures"]
# Spark and the processed wheelhouses: one xdist worker runs this group (--dist loadgroup), so one JVM starts
# and the fixtures are processed once.
pytestmark = [pytest.mark.usefixtures("fresh_console_log"), pytest.mark.xdist_group("spark")]

Make = Callable[[Path, Path], Path]  # (a fresh directory, the find-links directory) -> the input


def archive(entries: dict[str, bytes]) -> Make:
    def make(directory: Path, _links: Path) -> Path:
        path = directory / "input.zip"
        path.write_bytes(zip_bytes(entries))
        return path

    return make


def file(name: str, data: bytes) -> Make:
    def make(directory: Path, _links: Path) -> Path:
        (directory / name).write_bytes(data)
        return directory / name

    return make


def raw_zip(write: Callable[[zipfile.ZipFile], None]) -> Make:
    def make(directory: Path, _links: Path) -> Path:
        path = directory / "input.zip"
        with warnings.catch_warnings(), zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate name we write on purpose
            write(zf)
        return path

    return make


def requirements(text: str | bytes) -> Make:
    def make(directory: Path, _links: Path) -> Path:
        path = directory / "requirements.txt"
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return path

    return make


def tree(build_tree: Callable[[Path], None]) -> Make:
    def make(directory: Path, _links: Path) -> Path:
        root = directory / "deps"
        root.mkdir()
        (root / "ok.py").write_text("X = 1\n")
        build_tree(root)
        return root

    return make


def wheels(make_wheels: Callable[[Path, Path], None]) -> Make:
    def make(directory: Path, links: Path) -> Path:
        root = directory / "wheels"
        root.mkdir()
        make_wheels(root, links)
        return root

    return make


def _symlink_entry(zf: zipfile.ZipFile) -> None:
    info = zipfile.ZipInfo("link.py")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    zf.writestr(info, "/etc/passwd")


def encrypted() -> Make:
    """zipfile cannot write encrypted entries: set the 'encrypted' flag bit in both headers of a plain one."""

    def make(directory: Path, _links: Path) -> Path:
        path = directory / "input.zip"
        data = bytearray(zip_bytes({"secret.py": b"X = 1\n"}))
        data[6] |= 0x1  # local file header: general purpose flags at offset 6
        central = data.rfind(b"PK\x01\x02")
        data[central + 8] |= 0x1  # central directory header: flags at offset 8
        path.write_bytes(bytes(data))
        return path

    return make


def _zeros(megabytes: float) -> Callable[[zipfile.ZipFile], None]:
    def write(zf: zipfile.ZipFile) -> None:
        zf.writestr("big.py", bytes(int(megabytes * 1024 * 1024)), compress_type=zipfile.ZIP_DEFLATED)

    return write


def _twice(zf: zipfile.ZipFile) -> None:
    zf.writestr("a.py", b"X = 1\n")
    zf.writestr("a.py", b"X = 2\n")


def _bad_project(root: Path) -> None:
    (root / "pyproject.toml").write_text('[build-system]\nrequires = []\nbuild-backend = "no_such_backend"\n')


def _other_python(root: Path, links: Path) -> None:
    shutil.copy(links / f"wh_native-1.0-{NATIVE_TAGS[1]}.whl", root)


def _other_platform(root: Path, _links: Path) -> None:
    write_wheel(root, "wh-mac", "1.0", [("wh_mac.py", b"")], tag="cp310-cp310-macosx_11_0_arm64")


def _newer_python(root: Path, _links: Path) -> None:
    write_wheel(root, "wh-new", "1.0", [("wh_new.py", b"")], requires_python=">=3.11")


def _missing_dependency(root: Path, _links: Path) -> None:
    write_wheel(root, "wh-needy", "1.0", [("wh_needy.py", b"")], ("wh-absent>=2",))


# fmt: off
CASES = [
    pytest.param(archive({"README.md": b"hi", "data/x.csv": b"1"}), [], "unknown input shape", id="unknown-shape"),
    pytest.param(archive({"../evil.py": b""}), [], "points outside the archive root", id="dotdot"),
    pytest.param(archive({"pkg/../../evil.py": b""}), [], "points outside the archive root", id="dotdot-inside"),
    pytest.param(archive({"/etc/evil.py": b""}), [], "is an absolute path", id="absolute"),
    pytest.param(archive({"C:/evil.py": b""}), [], "is an absolute path", id="drive-letter"),
    pytest.param(archive({"..\\evil.py": b""}), [], "uses a backslash", id="backslash"),
    pytest.param(archive({"evil\x07.py": b""}), [], "control characters", id="control-character-name"),
    pytest.param(archive({"/".join(["d"] * 40) + "/x.py": b""}), [], "nested too deeply", id="too-deep"),
    pytest.param(archive({"x" * 2000 + ".py": b""}), [], "nested too deeply or too long", id="too-long"),
    pytest.param(raw_zip(_symlink_entry), [], "is a link or special file", id="zip-symlink"),
    pytest.param(encrypted(), [], "is encrypted", id="encrypted"),
    pytest.param(raw_zip(_twice), [], "appears twice", id="duplicate-entry"),
    pytest.param(raw_zip(_zeros(2)), [], "refusing it as a possible zip bomb", id="bomb-ratio"),
    pytest.param(raw_zip(_zeros(1.5)), ["--max-expanded-mb", "1", "--max-ratio", "1e9"], "expands to more than 1 MiB",
                 id="bomb-size"),
    pytest.param(archive({f"m{i}.py": b"" for i in range(11)}), ["--max-files", "10"], "more than the limit of 10",
                 id="bomb-count"),
    pytest.param(tree(lambda r: os.symlink("/etc/passwd", r / "b.py")), [], "is a symbolic link", id="dir-symlink"),
    pytest.param(tree(lambda r: os.link(r / "ok.py", r / "b.py")), [], "is a hard link", id="dir-hardlink"),
    pytest.param(requirements("# nothing\n"), [], "lists no requirement", id="empty-requirements"),
    pytest.param(requirements("--index-url https://evil.example/simple\nsix\n"), [], "--index-url changes where pip looks",
                 id="req-index-url"),
    pytest.param(requirements("--extra-index-url=https://x\n"), [], "--extra-index-url changes", id="req-extra-index"),
    pytest.param(requirements("-f /tmp\n"), [], "-f changes where pip looks", id="req-find-links"),
    pytest.param(requirements("-ihttps://x/simple\n"), [], "-i changes where pip looks", id="req-i-joined"),
    pytest.param(requirements("--trusted-host evil\n"), [], "--trusted-host changes", id="req-trusted-host"),
    pytest.param(requirements("git+https://github.com/x/y.git\n"), [], "installs from a VCS, URL or path", id="req-vcs"),
    pytest.param(requirements("wh @ https://x/wh.whl\n"), [], "installs from a VCS, URL or path", id="req-direct-url"),
    pytest.param(requirements("https://x/wh-1.0-py3-none-any.whl\n"), [], "installs from a VCS, URL or path", id="req-url"),
    pytest.param(requirements("-e .\n"), [], "editable requirements", id="req-editable"),
    pytest.param(archive({"requirements.txt": b"-r ../outside.txt\n"}), [], "is outside the input", id="req-include-out"),
    pytest.param(requirements("six\x00\n"), [], "control character", id="req-control-character"),
    pytest.param(requirements(b"\xff\xfesix\n"), [], "is not UTF-8", id="req-not-utf8"),
    pytest.param(requirements("six\n" * 300_000), [], "larger than 1024 KiB", id="req-huge"),
    pytest.param(requirements("six>=>=1\n"), [], "is not a valid requirement", id="req-invalid"),
    pytest.param(requirements("--global-option=x\n"), [], "option --global-option is not supported", id="req-option"),
    pytest.param(requirements("six --hash=sha256:00 --global-option=x\n"), [], "only --hash may follow a requirement",
                 id="req-line-option"),
    pytest.param(wheels(_other_python), [], f"has tags {NATIVE_TAGS[1]}, none of which runs on CPython 3.10",
                 id="wheel-other-python"),
    pytest.param(wheels(_other_platform), [], "has tags cp310-cp310-macosx_11_0_arm64, none of which runs",
                 id="wheel-other-platform"),
    pytest.param(wheels(_newer_python), [], "requires Python >=3.11, not the target's 3.10", id="wheel-requires-python"),
    pytest.param(archive({"notawheel.whl": b"x"}), [], "is not a valid wheel file name", id="wheel-bad-name"),
    pytest.param(requirements("wh-missing==1.0\n"), [], "dependency wh-missing==1.0 cannot be resolved offline",
                 id="unresolvable"),
    pytest.param(wheels(_missing_dependency), [], "dependency wh-absent>=2 cannot be resolved offline",
                 id="unresolvable-dependency"),
    pytest.param(tree(_bad_project), [], "building the input's project failed", id="build-fails"),
    pytest.param(lambda d, _l: d / "missing.zip", [], "does not exist", id="missing"),
    pytest.param(file("deps.tar.gz", b"x"), [], "is not a .zip, a directory or a requirements .txt file", id="wrong-type"),
    pytest.param(file("x.zip", b"not a zip"), [], "is not a valid zip archive", id="not-a-zip"),
]
# fmt: on


@pytest.mark.parametrize(("make", "args", "message"), CASES)
def test_bad_input_is_one_clear_error_and_leaves_nothing_behind(
    make: Make,
    args: list[str],
    message: str,
    find_links: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Unknown shapes, escaping or linked entries, zip bombs, index-changing or URL requirements, wheels for
    another Python or platform, unresolvable dependencies, failing builds: one line naming the problem;
    no output directory, no work directory, a result file that says failed and why."""
    work = tmp_path / "tmp"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    monkeypatch.delenv("DB_IS_JOB", raising=False)
    (tmp_path / "in").mkdir()
    source = make(tmp_path / "in", find_links)
    out = tmp_path / "runs" / "9" / "wheelhouse"
    argv = ["process", "--input", str(source), "--output", str(out), "--no-index", "--find-links", str(find_links)]
    with pytest.raises(SystemExit) as exc:
        cli.main(argv + args)
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()
    assert list(work.iterdir()) == []
    result = read_json(tmp_path / "runs" / "9" / "wheelhouse.result.json")
    assert result["status"] == "failed" and message in result["error"]


def test_allowed_by_flag_index_options_and_url_requirements_work(find_links: Path, tmp_path: Path) -> None:
    """The refusals are policy, not inability: with --allow-index-options a requirements file may add a
    find-links directory, with --allow-url-requirements name a wheel by file URL."""
    wheel = find_links / "six-1.17.0-py3-none-any.whl"
    req = tmp_path / "requirements.txt"
    req.write_text(f"--find-links {find_links}\nwh-native==1.0\nsix @ {wheel.as_uri()}\n")
    options = build.Options(no_index=True, policy=build.reqfile.Policy(True, True))
    data = build.process(req, tmp_path / "out", options)
    assert sorted(w["name"] for w in data["wheels"]) == ["six", "wh-native"]


def test_a_failure_while_writing_the_output_removes_the_directory_it_created(
    fixture_zips: dict[str, Path], find_links: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even a failure after the first file was copied (a full volume) leaves no partial output directory."""
    real_copy = shutil.copyfile
    copied: list[str] = []

    def failing_copy(src: Path, dst: Path) -> object:
        if Path(dst).name == "manifest.json" and Path(dst).parent.name == "out":
            raise OSError(28, "No space left on device")
        copied.append(Path(dst).name)
        return real_copy(src, dst)

    monkeypatch.setattr(build.shutil, "copyfile", failing_copy)
    with pytest.raises(OSError, match="No space left"):
        build.process(fixture_zips["pure_python"], tmp_path / "runs" / "3" / "out", offline(find_links))
    assert "wheelhouse.zip" in copied
    assert not (tmp_path / "runs" / "3" / "out").exists()


def test_a_zip_whose_header_lies_about_its_size_is_refused(find_links: Path, tmp_path: Path) -> None:
    """A header that under-declares an entry's size does not get more bytes out: extraction stops at the
    declared size and fails (zipfile's CRC check, or our own count of the bytes copied)."""
    path = tmp_path / "liar.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.py", b"X = 1\n" * 1000)
    data = bytearray(path.read_bytes())
    # Patch the declared uncompressed size (local header offset 22, central directory offset 24) to 10.
    data[22:26] = (10).to_bytes(4, "little")
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(JobError, match=r"larger than its header says|not a valid zip"):
        build.process(path, tmp_path / "out", offline(find_links))
    assert not (tmp_path / "out").exists()
