"""Settings of the test run itself, for tests/ and wheel/tests/ alike: the garbage collector.

A test process holds a large heap of long-lived objects (pulumi_databricks, MLflow, pandas and the rest, imported
at collection), and CPython's collector walks all of it on every older-generation pass, which cost a large share
of the suite's CPU (README, "Tests"). Young collections run less often here, and once the tests are collected
everything alive is frozen out of the collector's view (gc.freeze: never scanned, never freed). Garbage the tests
make is still collected."""

from __future__ import annotations

import gc

import pytest

gc.set_threshold(50_000, 20, 50)


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.collect()
    gc.freeze()
