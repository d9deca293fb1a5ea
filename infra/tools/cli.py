"""Command line of the platform's tools.

  python -m infra preview --stack NAME [--json] [--strict]   render a stack offline, then the policy checks
  python -m infra run JOB --stack NAME [--wait] [--param k=v]   start (and follow) a run of a deployed job
  python -m infra verify --stack NAME [--outputs FILE]   after `pulumi up`: read back what the plan says exists
  python -m infra config-reference [--write]            the README's configuration reference
  python -m infra diff BASE.json HEAD.json [--strict]   two `preview --json` plans compared, as a PR comment

Exit status: 0 done, 1 a run failed (run) or a check failed (verify), 2 bad configuration or arguments (one
message, no traceback), 3 policy violations with `preview --strict`, 4 data replaced or removed with
`diff --strict`.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from infra.settings import SettingsError
from infra.systems import SYSTEMS

TIMEOUT_HELP = (
    "longest time one call to the workspace may take, retries included, before the command gives up naming the "
    "host (120; each attempt at most 30)"
)
JOBS = tuple(job.key for system in SYSTEMS for job in system.jobs)

ROOT = Path(__file__).resolve().parents[2]


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds greater than 0 (argparse exits 2 naming the option)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text[:40]!r}: allowed: a number of seconds greater than 0, like 30")
    return value


def main(argv: list[str] | None = None, *, clock: Any = None) -> int:
    """`clock` (time() and sleep()): what the workspace commands wait with, for tests."""
    parser = argparse.ArgumentParser(prog="python -m infra", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    preview = commands.add_parser(
        "preview",
        help="render a stack offline: the real program under Pulumi's mock engine, no workspace or credentials",
    )
    preview.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    preview.add_argument("--json", action="store_true", help="one JSON document (stable, secrets masked)")
    preview.add_argument(
        "--config-file", type=Path, help="use this stack file instead of Pulumi.<stack>.yaml (like pulumi's flag)"
    )
    preview.add_argument("--strict", action="store_true", help="exit status 3 when a policy rule is violated")
    run = commands.add_parser("run", help="start a run of a deployed job (starting its cluster first)")
    run.add_argument("job", choices=JOBS, help="the job, named as in the stack outputs <job>_job_id")
    run.add_argument("--stack", required=True, help="stack name: its settings and outputs")
    run.add_argument("--wait", action="store_true", help="follow the run to its end; its result is the exit status")
    run.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a job parameter (repeatable)")
    run.add_argument("--outputs", type=Path, help="stack outputs JSON (default: `pulumi stack output --json`)")
    run.add_argument("--config-file", type=Path, help="use this stack file instead of Pulumi.<stack>.yaml")
    run.add_argument("--host", help="workspace URL to call instead of the stack's workspace.host")
    run.add_argument("--poll-seconds", type=seconds, default=10.0, help="seconds between status checks (10)")
    run.add_argument(
        "--cluster-timeout-seconds", type=seconds, default=600.0, help="longest wait for the cluster (600)"
    )
    run.add_argument("--run-timeout-seconds", type=seconds, help="stop following the run after this long")
    run.add_argument("--timeout-seconds", type=seconds, default=120.0, help=TIMEOUT_HELP)
    verify = commands.add_parser(
        "verify", help="after `pulumi up`: check through databricks-sdk that what the plan says exists does"
    )
    verify.add_argument("--stack", required=True, help="stack name: its plan (offline), settings and outputs")
    verify.add_argument("--outputs", type=Path, help="stack outputs JSON (default: `pulumi stack output --json`)")
    verify.add_argument("--config-file", type=Path, help="use this stack file instead of Pulumi.<stack>.yaml")
    verify.add_argument("--host", help="workspace URL to call instead of the stack's workspace.host")
    verify.add_argument("--timeout-seconds", type=seconds, default=120.0, help=TIMEOUT_HELP)
    reference = commands.add_parser("config-reference", help="print the README's configuration reference")
    reference.add_argument("--write", action="store_true", help="update README.md in place")
    diff = commands.add_parser("diff", help="compare two `preview --json` documents: Markdown for a PR comment")
    diff.add_argument("base", type=Path, help="the base branch's document (python -m infra preview --json)")
    diff.add_argument("head", type=Path, help="the pull request's document")
    diff.add_argument(
        "--strict", action="store_true", help="exit status 4 when a resource that holds data is replaced or removed"
    )
    args = parser.parse_args(argv)

    if args.command == "config-reference":
        from infra.tools.docs import config_reference, update_readme

        if args.write:
            print("README.md updated" if update_readme(ROOT / "README.md") else "README.md already current")
        else:
            print(config_reference())
        return 0

    if args.command == "diff":
        from infra.tools.diff import STRICT_EXIT, DocumentError, compare_files

        try:
            comparison = compare_files(args.base, args.head)
        except DocumentError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        sys.stdout.write(comparison.markdown)
        if args.strict and comparison.data_at_risk:
            n = len(comparison.data_at_risk)
            print(f"error: {n} resource(s) holding data would be replaced or removed (--strict)", file=sys.stderr)
            return STRICT_EXIT
        return 0

    if args.command in ("run", "verify"):
        from infra.tools import run as runner
        from infra.tools import verify as verifier

        try:
            return (runner.main if args.command == "run" else verifier.main)(args, ROOT, clock)
        except SettingsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    # Imported here so that `--help` and argument errors stay fast (pulumi_databricks takes a second to load).
    import pulumi

    from infra.tools.offline import preview_stack
    from infra.tools.preview import to_json, to_text
    from policy.rules import check_plan, format_violations

    try:
        plan, loaded = preview_stack(ROOT, args.stack, args.config_file)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except pulumi.RunError as exc:  # the program stopped itself with a message (a wheel that does not build)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    violations = check_plan(plan, production=loaded.settings.production)
    if args.json:
        sys.stdout.write(to_json(plan, violations))
        for item in plan.prerequisites:
            print(f"prerequisite: {item}", file=sys.stderr)
        for note in plan.notes:
            print(f"note: {note}", file=sys.stderr)
    else:
        sys.stdout.write(to_text(plan) + format_violations(violations))
    if args.strict and violations:
        print(f"error: {len(violations)} policy violation(s) (--strict)", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
