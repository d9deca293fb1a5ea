"""Session fixtures of the deps-wheelhouse tests (loaded with `pytest_plugins`): a local --find-links
directory of wheels built in the session (stand-ins for the fixtures' PyPI pins, and platform-tagged wheels
for the cross-target build), the six format fixtures, each processed once offline, and import isolation."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from wheelhouse_support import NATIVE_TAGS, TEST_MODULE_PREFIXES, Processed, offline

from agent_jobs.wheelhouse import fixtures
from agent_jobs.wheelhouse.build import process
from agent_jobs.wheelhouse.wheels import write_wheel


@pytest.fixture(scope="session")
def find_links(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels the offline runs resolve from: what PyPI would give the cluster, made here."""
    links = tmp_path_factory.mktemp("find-links")
    write_wheel(links, "six", "1.17.0", [("six.py", b"__version__ = '1.17.0'\n")])
    dateutil = [("dateutil/__init__.py", b"__version__ = '2.9.0.post0'\n"), ("dateutil/parser.py", b"import six\n")]
    write_wheel(links, "python-dateutil", "2.9.0.post0", dateutil, ("six>=1.5",))
    for tag in NATIVE_TAGS:  # pure code, but tagged like a compiled extension: what the tag check sees
        write_wheel(links, "wh-native", "1.0", [("wh_native.py", f"TAG = {tag!r}\n".encode())], tag=tag)
    return links


@pytest.fixture(scope="session")
def fixture_zips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return fixtures.write_all(tmp_path_factory.mktemp("fixtures"))


@pytest.fixture(scope="session")
def processed(
    tmp_path_factory: pytest.TempPathFactory, fixture_zips: dict[str, Path], find_links: Path
) -> dict[str, Processed]:
    """Every fixture processed once, offline, for Python 3.10 (two at a time: pip is mostly start-up)."""
    root = tmp_path_factory.mktemp("processed")

    def one(shape: str) -> tuple[str, Processed]:
        out = root / "runs" / "1" / shape
        return shape, Processed(out, process(fixture_zips[shape], out, offline(find_links)))

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, fixtures.MODULES))


@pytest.fixture
def isolated_imports() -> Iterator[None]:
    """verify imports the fixtures' modules and extends sys.path in this process; undo that after each test."""
    path = list(sys.path)
    yield
    sys.path[:] = path
    for name in [m for m in sys.modules if m.split(".")[0].startswith(TEST_MODULE_PREFIXES)]:
        del sys.modules[name]


@pytest.fixture
def fresh_console_log() -> Iterator[None]:
    """logs.setup() binds its handler to the sys.stdout of the first call; under capsys that stream is
    closed by the next test, so drop the handler after each test that runs a CLI."""
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "agent_jobs.console"]:
        root.removeHandler(handler)
