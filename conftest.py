"""Settings of the test run itself, for tests/ and wheel/tests/ alike: the garbage collector, and how a worker
process ends.

A test process holds a large heap of long-lived objects (pulumi_databricks, MLflow, pandas and the rest, imported
at collection), and CPython's collector walks all of it on every older-generation pass, which cost a large share
of the suite's CPU (README, "Tests"). Young collections run less often here, and once the tests are collected
everything alive is frozen out of the collector's view (gc.freeze: never scanned, never freed). Garbage the tests
make is still collected.

The same heap is why an xdist worker took about two seconds to exit after its last test: the interpreter frees
every object one by one, and the run waits for the slowest worker. A worker ends with `os._exit` once every other
exit handler has run (the PostgreSQL and Spark the tests started are stopped by theirs, which run first), unless
coverage.py is measuring it (its data is written by a handler that would run after).

`--dist loadgroup` is scheduled here (see pytest_xdist_make_scheduler), longest work first: the run ends when
its slowest worker does, and the four-second tests handed out last kept one worker busy while the other idled.
How long each test takes comes from tests/durations.json, which `make durations` rewrites from a full run; a
test it does not list counts as a fast one."""

from __future__ import annotations

import atexit
import functools
import gc
import json
import os
import re
import sys
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent
DURATIONS = ROOT / "tests" / "durations.json"
# A test durations.json does not list (new, renamed, or under its threshold).
FAST_TEST_SECONDS = 0.05
# Only tests at least this slow are recorded: the rest are all alike to the scheduler.
RECORDED_SECONDS = 0.2

gc.set_threshold(50_000, 20, 50)


def _end_worker_without_teardown() -> None:
    coverage = sys.modules.get("coverage")
    if coverage is not None and coverage.Coverage.current() is not None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # an xdist worker's status is always 0: its results went to the controller over its channel


# Registered at import, before any test's handler: exit handlers run last-registered first, so this one runs
# after them. Only in xdist workers; the controller's exit status is the run's.
if os.environ.get("PYTEST_XDIST_WORKER"):
    atexit.register(_end_worker_without_teardown)


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.collect()
    gc.freeze()


_GROUP = re.compile(r"""^pytestmark = .*pytest\.mark\.xdist_group\("(\w+)"\)""", re.MULTILINE)


@functools.cache
def _xdist_group(path: str) -> str | None:
    """The xdist_group a test file's `pytestmark` names, if any."""
    file = ROOT / path
    found = _GROUP.search(file.read_text()) if file.suffix == ".py" and file.is_file() else None
    return found[1] if found else None


def longest_first(units: Mapping[str, Mapping[str, bool]], durations: Mapping[str, float]) -> list[str]:
    """The work units' scopes (a unit: its tests' node ids, in collection order) with the test files expected to
    take longest first; a group counts as one file. A file's tests stay together and in their order: a worker
    given one test of another file between two of them would tear down their module fixtures and set them up
    again."""

    def file_of(scope: str) -> str:
        return scope.split("::", 1)[0]

    files: defaultdict[str, float] = defaultdict(float)
    for scope, nodeids in units.items():
        files[file_of(scope)] += sum(durations.get(nodeid, FAST_TEST_SECONDS) for nodeid in nodeids)
    return sorted(units, key=lambda scope: -files[file_of(scope)])  # stable: collection order within a file


def _recorded_durations() -> dict[str, float]:
    try:
        data = json.loads(DURATIONS.read_text())
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, int | float)} if isinstance(data, dict) else {}


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup` that works with pytest 9: pytest-xdist 3.8 marks a test's group by rewriting
    `Item._nodeid`, which pytest 9 no longer reads, so every group was spread over the workers (two JVMs, two
    PostgreSQL servers). Here the test files whose `pytestmark` names an xdist_group run on one worker per
    group, every other test is scheduled on its own, as `--dist load` does, and the units are handed out
    longest first."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    durations = _recorded_durations()

    class GroupScheduling(LoadScopeScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            return _xdist_group(nodeid.split("::", 1)[0]) or nodeid

        def _assign_work_unit(self, node: Any) -> None:
            if not self.ordered:  # the first call: the whole work queue is built
                units = dict(self.workqueue)
                self.workqueue.clear()
                self.workqueue.update((scope, units[scope]) for scope in longest_first(units, durations))
                self.ordered = True
            super()._assign_work_unit(node)

    return GroupScheduling(config, log)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-durations",
        action="store_true",
        help=f"after a passing run, rewrite {DURATIONS.relative_to(ROOT)} (the scheduler's expected durations)",
    )


_durations: defaultdict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _durations[report.nodeid] += report.duration  # setup, call and teardown


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if not config.getoption("record_durations") or hasattr(config, "workerinput") or exitstatus != 0:
        return
    slow = {k: round(v, 1) for k, v in sorted(_durations.items()) if v >= RECORDED_SECONDS}
    DURATIONS.write_text(json.dumps(slow, indent=0) + "\n")
