"""How every entry point ends: a python_wheel_task calls the entry point itself, so it must return on success
and raise on failure (a returned code is ignored there, and sys.exit(0) can be reported as a failure). As a
console script on a laptop, an expected failure is one line on stderr and exit status 1 instead of a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from agent_jobs.errors import JobError
from agent_jobs.runtime import detect_runtime


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= minimum (argparse turns the error into a usage message)."""

    def parse(text: str) -> int:
        if not text.strip().isdigit() or int(text) < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least {minimum}")
        return int(text)

    return parse


def entry_point(name: str, run: Callable[[], object], job_id: str | None = None, job_run_id: str | None = None) -> None:
    runtime = detect_runtime(os.environ, job_id, job_run_id)
    try:
        run()
    except JobError as exc:
        if runtime.in_job:
            raise  # the task fails with this message in the run's output
        print(f"{name}: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
