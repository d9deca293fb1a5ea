"""Command lines called in this process, as their console script or `python -m` would run them.

A Python subprocess costs seconds here (pulumi_databricks alone takes over two to import); calling `main(argv)`
costs milliseconds. `call` gives what a subprocess would: the exit status, stdout and stderr, with this
environment and working directory, logging as unconfigured as in a fresh interpreter (warnings and worse to
stderr), an uncaught exception as its traceback on stderr and exit status 1. Everything is restored after.
A few tests still start real processes, where the process boundary is the promise (exit codes of
`python -m infra`, a console script, signals).
"""

from __future__ import annotations

import io
import logging
import os
import traceback
from collections.abc import Callable, Mapping, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Result:
    """What subprocess.run(..., capture_output=True, text=True) would give."""

    returncode: int
    stdout: str
    stderr: str


def _status(code: Any, err: io.StringIO) -> int:
    """sys.exit's convention: None is 0, an int is itself, anything else is printed and is 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=err)
    return 1


def call(
    main: Callable[[list[str]], Any],
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
) -> Result:
    """`main(argv)` with stdout and stderr captured; `env` replaces the whole environment while it runs."""
    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, list(root.handlers)
    for handler in saved_handlers:  # pytest's capture handlers: a fresh interpreter has none
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    try:
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        if cwd is not None:
            os.chdir(cwd)
        with redirect_stdout(out), redirect_stderr(err):
            try:
                returned = main(list(argv))
                code = returned if isinstance(returned, int) else 0
            except SystemExit as exited:
                code = _status(exited.code, err)
            except Exception:
                traceback.print_exc(file=err)
                code = 1
    finally:
        for handler in list(root.handlers):  # what the command configured (its console handler)
            root.removeHandler(handler)
            handler.close()
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return Result(code, out.getvalue(), err.getvalue())
