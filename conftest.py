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
coverage.py is measuring it (its data is written by a handler that would run after)."""

from __future__ import annotations

import atexit
import gc
import os
import sys

import pytest

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
