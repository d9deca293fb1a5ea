"""`deps-wheelhouse` (seed 004): `process`, `verify` and `cleanup`, the three tasks of a wheelhouse job.

The entry-point contract of every script here (`agent_jobs.entry`): it returns on success and raises a
JobError with a clear message on failure, never `sys.exit()` in the job path; a usage error (an unknown
option, a number that is not one) exits 2 before anything runs. `process` always leaves its result file
(`--result-file`, by default `<output>.result.json` beside the output directory, which a failure removes)
saying what happened, and prints the wheelhouse path as its last line; `verify` leaves `verify.json` beside
the wheelhouse.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent_jobs import logs
from agent_jobs.entry import entry_point
from agent_jobs.errors import JobError
from agent_jobs.files import write_json
from agent_jobs.wheelhouse import manifest
from agent_jobs.wheelhouse.archive import MIB, Limits
from agent_jobs.wheelhouse.build import Options, process
from agent_jobs.wheelhouse.cleanup import cleanup
from agent_jobs.wheelhouse.reqfile import Policy
from agent_jobs.wheelhouse.verify import SPARK_MODES, verify
from agent_jobs.wheelhouse.wheels import PLATFORM_RE, PYTHON_VERSION_RE, Target, default_platforms

log = logging.getLogger("agent_jobs.wheelhouse.cli")

_URL = re.compile(r"^(https?|file)://[^\s]{1,2000}$")


def _whole(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not re.fullmatch(r"[0-9]{1,10}", text.strip()) or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number from {low} to {high}")
        return int(text)

    return parse


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 1 <= value <= 1e9:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a finite number from 1 to 1e9")
    return value


def _matching(pattern: re.Pattern[str], what: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not pattern.match(text):
            raise argparse.ArgumentTypeError(f"{text[:80]!r} is not {what}")
        return text

    return parse


def _module(text: str) -> str:
    if not all(part.isidentifier() for part in text.split(".")) or len(text) > 200:
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is not a module name")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deps-wheelhouse", description="Python dependencies as a wheelhouse for a cluster's Python."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("process", help="build DIR/wheelhouse.zip and DIR/manifest.json from an input")
    p.add_argument("--input", required=True, type=Path, help="a .zip, a directory or a requirements .txt file")
    p.add_argument("--output", required=True, type=Path, help="directory to create (or an empty one)")
    python_version = _matching(PYTHON_VERSION_RE, "a Python version 3.8 to 3.19 like 3.10")
    p.add_argument("--python-version", default="3.10", type=python_version,
                   help="the cluster's Python, major.minor (DBR 14.3 LTS: 3.10)")  # fmt: skip
    platform = _matching(PLATFORM_RE, "a platform tag like manylinux_2_17_x86_64")
    p.add_argument("--platform", action="append", type=platform,
                   help="a platform tag the cluster runs; repeat for each "
                        "(default: the manylinux tags of glibc 2.35, x86_64)")  # fmt: skip
    p.add_argument("--find-links", action="append", default=[], type=Path, help="a directory of wheels to resolve from")
    p.add_argument(
        "--index-url", type=_matching(_URL, "an http(s):// or file:// URL"), help="the package index (default PyPI)"
    )
    p.add_argument("--no-index", action="store_true", help="resolve only from --find-links and the input (offline)")
    p.add_argument(
        "--allow-index-options",
        action="store_true",
        help="let requirements files set -i/--extra-index-url/-f/--trusted-host",
    )
    p.add_argument(
        "--allow-url-requirements", action="store_true", help="let requirements files install from VCS, URLs or paths"
    )
    p.add_argument(
        "--max-expanded-mb", type=_whole(1, 1024 * 1024), default=1024, help="limit on the input's expanded size"
    )
    p.add_argument("--max-files", type=_whole(1, 10_000_000), default=20_000, help="limit on the input's file count")
    p.add_argument(
        "--max-ratio", type=_ratio, default=200.0, help="limit on an entry's compression ratio (above 1 MiB)"
    )
    p.add_argument("--result-file", type=Path, help="where to say what happened (default: <output>.result.json)")
    _job_ids(p)

    v = commands.add_parser("verify", help="install a wheelhouse and import its modules on the driver and workers")
    v.add_argument("--wheelhouse", required=True, type=Path, help="DIR/wheelhouse.zip (or DIR) written by process")
    v.add_argument("--workers", type=_whole(1, 1000), default=4, help="Spark tasks that import the modules")
    v.add_argument("--spark", choices=SPARK_MODES, default="auto",
                   help="auto: the active session (getOrCreate on Databricks); require; off: driver only")  # fmt: skip
    v.add_argument("--target", type=Path, help="pip install --target this directory instead of the running Python")
    v.add_argument("--expect", action="append", default=[], type=_module, help="a module the manifest must list")
    _job_ids(v)

    c = commands.add_parser("cleanup", help="remove a run's directory (succeeds when already gone)")
    c.add_argument("--run-dir", required=True, help="an absolute path below a runs/ directory")
    _job_ids(c)
    return parser


def _job_ids(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--job-id", help="{{job.id}}")
    parser.add_argument("--job-run-id", help="{{job.run_id}}")


def result_path(args: argparse.Namespace) -> Path:
    output = Path(args.output).absolute()
    if args.result_file:
        return Path(args.result_file)
    if not output.name:
        raise JobError(f"output {args.output} is a filesystem root")
    return output.with_name(output.name + ".result.json")


def run_process(args: argparse.Namespace) -> None:
    target = Target(args.python_version, tuple(args.platform) if args.platform else default_platforms())
    options = Options(
        target=target,
        find_links=tuple(Path(link).absolute() for link in args.find_links),
        index_url=args.index_url,
        no_index=args.no_index,
        policy=Policy(args.allow_index_options, args.allow_url_requirements),
        limits=Limits(max_total_bytes=args.max_expanded_mb * MIB, max_files=args.max_files, max_ratio=args.max_ratio),
    )
    for link in options.find_links:
        if not link.is_dir():
            raise JobError(f"--find-links {link} is not a directory")
    result: dict[str, Any] = {
        "command": "process",
        "input": str(args.input),
        "output": str(args.output),
        "status": "failed",
    }
    path = result_path(args)
    house = Path(args.output) / manifest.WHEELHOUSE
    try:
        data = process(Path(args.input), Path(args.output), options)
        result.update(
            status="succeeded", shape=data["shape"], wheelhouse=str(house), wheels=[w["file"] for w in data["wheels"]]
        )
        log.info("wheelhouse of %d wheel(s), shape %s: %s", len(data["wheels"]), data["shape"], house)
    except BaseException as exc:
        result["error"] = str(exc) if isinstance(exc, JobError) else f"{type(exc).__name__}: {exc}"
        raise
    finally:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, result)
    print(house, flush=True)  # the last line: the wheelhouse path, for whoever runs this next


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "process":
        if args.no_index and args.index_url:
            parser.error("--no-index and --index-url contradict each other; pass one")
        if args.result_file and Path(args.result_file).absolute().is_relative_to(Path(args.output).absolute()):
            parser.error("--result-file must not be inside --output (a failure removes the output directory)")
    logs.setup()
    actions: dict[str, Callable[[], object]] = {
        "process": lambda: run_process(args),
        "verify": lambda: verify(args.wheelhouse, args.workers, args.spark, args.target, tuple(args.expect)),
        "cleanup": lambda: cleanup(args.run_dir),
    }
    entry_point("deps-wheelhouse", actions[args.command], args.job_id, args.job_run_id)
