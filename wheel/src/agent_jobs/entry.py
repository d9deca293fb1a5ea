"""How every entry point starts and ends.

Start: numeric options are checked by argparse types (`at_least`, `number`) before anything else happens, so
NaN, infinities, negative or zero values where they make no sense and astronomically large values are usage
errors (exit status 2) rather than a crash or an overflow hours later.

End: a python_wheel_task calls the entry point itself, so it must return on success and raise on failure (a
returned code is ignored there, and sys.exit(0) can be reported as a failure). As a console script on a laptop,
an expected failure is one line on stderr and exit status 1 (or the error's own `exit_status`) instead of a
traceback. Either way the message is redacted first (agent_jobs.redact).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable

from agent_jobs.errors import JobError
from agent_jobs.redact import REDACTOR
from agent_jobs.runtime import detect_runtime

LARGEST = 10**9
"""The default upper bound of a whole-number option: far above any sensible count or duration, far below an
overflow."""


def at_least(minimum: int, maximum: int = LARGEST) -> Callable[[str], int]:
    """An argparse type: a whole number from minimum to maximum (argparse turns the error into a usage message)."""

    def parse(text: str) -> int:
        digits = text.strip()
        if not (digits.isascii() and digits.isdigit()) or int(digits) < minimum:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number of at least {minimum}")
        if len(digits) > 19 or int(digits) > maximum:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is too large: at most {maximum}")
        return int(digits)

    return parse


def number(minimum: float, maximum: float, *, above: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in [minimum, maximum] ((minimum, maximum] with `above`)."""
    low = "above" if above else "at least"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a finite number")
        if value < minimum or (above and value == minimum) or value > maximum:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} must be {low} {minimum:g} and at most {maximum:g}")
        return value

    return parse


def entry_point(name: str, run: Callable[[], object], job_id: str | None = None, job_run_id: str | None = None) -> None:
    runtime = detect_runtime(os.environ, job_id, job_run_id)
    try:
        run()
    except JobError as exc:
        message = REDACTOR.text(str(exc))
        if runtime.in_job:
            # The task fails with this message in the run's output; the chained causes are not shown, since
            # they may quote a secret the redactor has not seen in that form.
            raise JobError(message) from None
        print(f"{name}: error: {message}", file=sys.stderr)
        raise SystemExit(getattr(exc, "exit_status", 1)) from None
