"""The offline plan diff of a pull request, as one PR comment (the "Pull request" workflow runs this).

  python .github/scripts/plan_diff.py --base BASE_DIR --head HEAD_DIR --out OUT_DIR [--base-ref SHA] [--head-ref SHA]

Every stack file (`Pulumi.*.yaml`) of either checkout is rendered by that checkout's own program and virtualenv
(`DIR/.venv/bin/python -m infra preview --stack S --json`, run in DIR), so a base with other requirements renders
as it would on its own; each pair is compared by the head's `python -m infra diff` (the Python running this
script, in HEAD_DIR). A stack file that only one side has is compared with an empty plan.

Writes OUT_DIR/comment.md (Markdown; its first line is the hidden marker by which the comment is found and
updated) and OUT_DIR/plans/<stack>.<base|head>.json. Exit status 0, or 1 when a stack could not be rendered or
compared: the comment then says which, with the error, and the other stacks are still there.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

MARKER = "<!-- agent-platform:offline-plan-diff -->"
TIMEOUT = 900  # seconds for one preview (the first builds the wheel)
ERROR_LINES = 30  # last lines of a failing command's stderr shown in the comment


def stacks(directory: Path) -> set[str]:
    return {p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in directory.glob("Pulumi.*.yaml")}


def fenced(text: str) -> str:
    """A code block that the text cannot close early."""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    return f"{fence}text\n{text.rstrip()}\n{fence}"


def failure(what: str, result: subprocess.CompletedProcess[str] | str) -> str:
    if isinstance(result, str):
        return f":x: {what}: {result}"
    lines = (result.stderr or result.stdout).rstrip().splitlines()[-ERROR_LINES:]
    return f":x: {what}, exit status {result.returncode}:\n\n{fenced(chr(10).join(lines) or '(no output)')}"


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str] | str:
    """The finished command, or why it could not be run."""
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except FileNotFoundError:
        return f"`{command[0]}` does not exist (did `make install` fail there? see the job's log)"
    except subprocess.TimeoutExpired:
        return f"no answer within {TIMEOUT} seconds"


def render(python: Path, directory: Path, side: str, stack: str, out: Path) -> str | None:
    """Writes the stack's plan to `out`; returns None, or what went wrong."""
    result = run([str(python), "-m", "infra", "preview", "--stack", stack, "--json"], directory)
    if isinstance(result, str) or result.returncode != 0:
        return failure(f"The {side} does not render (`python -m infra preview --stack {stack} --json`)", result)
    out.write_text(result.stdout, encoding="utf-8")
    return None


def project(directory: Path) -> str:
    """The project's name in Pulumi.yaml, for the heading of a stack that has no plan to take it from."""
    path = directory / "Pulumi.yaml"
    found = re.search(r"^name:\s*(\S+)", path.read_text(encoding="utf-8"), re.MULTILINE) if path.exists() else None
    return found.group(1) if found else "?"


def section(heading: str, notes: list[str], body: str) -> str:
    """The stack's section: the diff's own heading (or one like it), the notes, then the rest."""
    first, _, rest = body.strip().partition("\n")
    if not first.startswith("### "):
        first, rest = heading, body.strip()
    return "\n\n".join([first, *notes, rest.strip()]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="checkout of the base branch, with its .venv")
    parser.add_argument("--head", type=Path, required=True, help="checkout of the pull request, with its .venv")
    parser.add_argument("--out", type=Path, required=True, help="where comment.md and plans/ are written")
    parser.add_argument("--base-ref", default="", help="the base commit, named in the comment")
    parser.add_argument("--head-ref", default="", help="the pull request's commit, named in the comment")
    parser.add_argument("--base-python", type=Path, help="default: BASE/.venv/bin/python")
    parser.add_argument("--head-python", type=Path, help="default: HEAD/.venv/bin/python")
    args = parser.parse_args(argv)
    base, head = args.base.resolve(), args.head.resolve()
    python = {  # absolute, not resolved: a venv's python is a symlink that must keep its path
        "base": (args.base_python or base / ".venv" / "bin" / "python").absolute(),
        "head": (args.head_python or head / ".venv" / "bin" / "python").absolute(),
    }
    out = args.out.absolute()  # the diff runs in HEAD_DIR
    plans = out / "plans"
    plans.mkdir(parents=True, exist_ok=True)

    on = {"base": stacks(base), "head": stacks(head)}
    names = sorted(on["base"] | on["head"])
    sections, failed = [], False
    for stack in names:
        notes, errors, paths = [], [], {}
        for side, directory in (("base", base), ("head", head)):
            paths[side] = plans / f"{stack}.{side}.json"
            if stack not in on[side]:
                notes.append(
                    f"_`Pulumi.{stack}.yaml` is {'new in' if side == 'base' else 'removed by'} this pull request: "
                    "compared with an empty plan._"
                )
                continue
            error = render(python[side], directory, side, stack, paths[side])
            if error:
                errors.append(error)
        heading = f"### Offline preview diff: {project(head)} / {stack}"
        if errors:
            failed = True
            sections.append(section(heading, notes, "\n\n".join(errors)))
            continue
        for side in ("base", "head"):  # the missing side: an empty plan of the same project and stack
            if stack not in on[side]:
                other = json.loads(paths["head" if side == "base" else "base"].read_text(encoding="utf-8"))
                empty = {"project": other["project"], "stack": stack, "resources": [], "outputs": {}}
                paths[side].write_text(json.dumps(empty, indent=2) + "\n", encoding="utf-8")
        result = run([sys.executable, "-m", "infra", "diff", str(paths["base"]), str(paths["head"])], head)
        if isinstance(result, str) or result.returncode != 0:
            failed = True
            sections.append(section(heading, notes, failure("`python -m infra diff` failed", result)))
        else:
            sections.append(section(heading, notes, result.stdout))

    refs = f" (base `{args.base_ref[:12]}`, head `{args.head_ref[:12]}`)" if args.base_ref and args.head_ref else ""
    header = [
        MARKER,
        "## Offline plan diff",
        "",
        f"Every stack file rendered offline on the base branch and on this pull request{refs}: "
        "`python -m infra preview --stack S --json` runs the real program under Pulumi's mock engine, "
        "without credentials, secrets masked; `python -m infra diff` compares the two plans. "
        "Provider-side changes (what the real `pulumi preview` shows) are not included.",
        "",
    ]
    if not names:
        sections = ["No stack files (`Pulumi.*.yaml`) on either side.\n"]
    (out / "comment.md").write_text("\n".join(header) + "\n" + "\n".join(sections), encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
