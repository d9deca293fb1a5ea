"""Command line of the platform's tools.

  python -m infra preview --stack NAME [--json] [--strict]   render a stack offline, then the policy checks
  python -m infra run JOB --stack NAME [--wait] [--param k=v]   start (and follow) a run of a deployed job
  python -m infra config-reference [--write]            the README's configuration reference
  python -m infra diff BASE.json HEAD.json              two `preview --json` plans compared, as a PR comment

Exit status: 0 done, 1 a run failed (run), 2 bad configuration or arguments (one message, no traceback),
3 policy violations with `preview --strict`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.settings import SettingsError

JOBS = ("eval_agent", "rlm_orchestrator", "rlm_executor", "agent_setup", "agent_deployment")

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
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
    run.add_argument("--poll-seconds", type=float, default=10.0, help="seconds between status checks")
    run.add_argument("--cluster-timeout-seconds", type=float, default=600.0, help="longest wait for the cluster")
    run.add_argument("--run-timeout-seconds", type=float, help="stop following the run after this long")
    reference = commands.add_parser("config-reference", help="print the README's configuration reference")
    reference.add_argument("--write", action="store_true", help="update README.md in place")
    diff = commands.add_parser("diff", help="compare two `preview --json` documents: Markdown for a PR comment")
    diff.add_argument("base", type=Path, help="the base branch's document (python -m infra preview --json)")
    diff.add_argument("head", type=Path, help="the pull request's document")
    args = parser.parse_args(argv)

    if args.command == "config-reference":
        from infra.docs import config_reference, update_readme

        if args.write:
            print("README.md updated" if update_readme(ROOT / "README.md") else "README.md already current")
        else:
            print(config_reference())
        return 0

    if args.command == "diff":
        from infra.diff import DocumentError, diff_files

        try:
            sys.stdout.write(diff_files(args.base, args.head))
        except DocumentError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0

    if args.command == "run":
        from infra import run as runner

        try:
            return runner.main(args, ROOT)
        except SettingsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    # Imported here so that `--help` and argument errors stay fast (pulumi_databricks takes a second to load).
    import pulumi

    from infra.offline import preview_stack
    from infra.policy import check_plan, format_violations
    from infra.preview import to_json, to_text

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
