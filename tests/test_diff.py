"""`python -m infra diff BASE.json HEAD.json` on plans of the real program: what a reviewer reads in the PR."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.diff import diff_documents
from infra.jobs import health_monitor
from infra.offline import preview_stack
from infra.preview import plan_document, to_json
from tests.conftest import ROOT, program_plan

Doc = dict[str, Any]
CIPHERTEXTS = ("v1:q2Vt0f8nXk1=:Zm9vYmFyY2lwaGVydGV4dG9uZQ==", "v1:Jw5cR0c2mVo=:YmF6cXV4Y2lwaGVydGV4dHR3bw==")
PLAIN = "AIza-plaintext-never-shown-7"


def diff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra", "diff", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def full() -> Doc:
    """The whole program with its default settings (every system on)."""
    return plan_document(program_plan())


@pytest.fixture(scope="module")
def without_evaluation() -> Doc:
    """The same program before a change that adds the setup job's `run_evaluation` task."""
    tasks = tuple(t for t in health_monitor.SETUP_TASKS if t.key != "run_evaluation")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(health_monitor, "SETUP_TASKS", tasks)
        return plan_document(program_plan())


@pytest.fixture(scope="module")
def without_health_monitor() -> Doc:
    return plan_document(program_plan({"health_monitor": {"enabled": False}}))


def test_a_task_added_shows_its_path_and_the_new_dag(without_evaluation: Doc, full: Doc) -> None:
    """A task added to a job: one resource changed, the task named at its path, the job's new DAG as Mermaid,
    and no DAG for the jobs whose tasks did not change."""
    md = diff_documents(without_evaluation, full)
    assert md.startswith("### Offline preview diff: agent-platform / test\n\n**0 added, 1 changed, 0 removed**\n")
    assert "- `databricks:index/job:Job` **health-monitor-setup** (`dev-agent-platform-agent-setup`)\n" in md
    assert '  - `tasks[5]`: (none) -> `{"taskKey": "run_evaluation", …}`\n' in md
    dags = md.split("#### Job DAGs changed\n", 1)[1]
    assert dags.count("```mermaid") == 1 and dags.startswith("\n**health-monitor-setup**\n```mermaid\nflowchart TD\n")
    assert '    t5["run_evaluation"]\n' in dags and "    t1 --> t5\n    t2 --> t5\n```\n" in dags


def test_a_system_switched_off_lists_its_resources_as_removed(full: Doc, without_health_monitor: Doc) -> None:
    """Removed resources are listed by type and logical name, their outputs as removed, and no DAG is drawn
    for a job that no longer exists."""
    md = diff_documents(full, without_health_monitor)
    removed = md.split("#### Removed\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert "- `databricks:index/job:Job` **health-monitor-setup** (`dev-agent-platform-agent-setup`)" in removed
    assert "- `databricks:index/schema:Schema` **agent** (`health_monitor_agent_dev`)" in removed
    assert f"**0 added, 0 changed, {len(removed)} removed**; 7 stack outputs changed" in md
    assert '- `agent_setup_job_id`: `"' in md and "` -> (none)\n" in md
    assert "#### Added" not in md and "#### Changed" not in md and "```mermaid" not in md
    # The other way round the jobs are new, each with its whole DAG.
    back = diff_documents(without_health_monitor, full)
    assert f"**{len(removed)} added, 0 changed, 0 removed**" in back
    assert "**health-monitor-setup** (new job)\n```mermaid" in back
    assert "**health-monitor-deployment** (new job)\n```mermaid" in back


def _stack_file(tmp_path: Path, name: str, secret: object) -> Path:
    doc = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    doc["config"]["agent-platform:rlm_google_api_key"] = secret
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """The dev stack's JSON with the Google API key encrypted twice (a rotation), then in plain text."""
    tmp = tmp_path_factory.mktemp("stacks")
    secrets: list[object] = [{"secure": c} for c in CIPHERTEXTS] + [PLAIN]
    texts = []
    for i, secret in enumerate(secrets):
        plan, _ = preview_stack(ROOT, "dev", _stack_file(tmp, f"s{i}", secret))
        texts.append(to_json(plan))
    return texts[0], texts[1], texts[2]


def test_a_rotated_secret_shows_as_changed_and_stays_masked(rotated: tuple[str, str, str]) -> None:
    """The JSON fingerprints each secret by a short hash of its committed ciphertext, so a rotation shows as a
    changed Secret whose value stays masked; no ciphertext or plain-text value reaches the JSON or the diff."""
    base, head, plain = (json.loads(t) for t in rotated)
    assert list(head) == ["project", "stack", "resources", "outputs", "secrets"]
    assert head["secrets"] == {
        "eval_agent_databricks_token": "unset",
        "rlm_databricks_host": "unset",
        "rlm_databricks_token": "unset",
        "rlm_google_api_key": hashlib.sha256(CIPHERTEXTS[1].encode()).hexdigest()[:12],
    }
    assert plain["secrets"]["rlm_google_api_key"] == "plaintext"
    md = diff_documents(base, head)
    assert md == (
        "### Offline preview diff: agent-platform / dev\n\n**0 added, 1 changed, 0 removed**\n\n#### Changed\n"
        "- `databricks:index/secret:Secret` **rlm-secrets-google-api-key**\n"
        "  - `stringValue`: [secret] -> [secret] (rotated)\n"
    )
    to_plain = diff_documents(head, plain)
    assert "  - `stringValue`: [secret] -> [secret] (encrypted -> plaintext)\n" in to_plain
    for secret in (*CIPHERTEXTS, *(c.split(":")[-1] for c in CIPHERTEXTS), PLAIN):
        assert all(secret not in text for text in (*rotated, md, to_plain))


def test_identical_plans_have_no_changes(full: Doc) -> None:
    """Two renders of the same program and config are byte-identical, and their diff says so in one line."""
    again = plan_document(program_plan())
    assert json.dumps(again) == json.dumps(full)
    assert diff_documents(full, again) == (
        "### Offline preview diff: agent-platform / test\n\n"
        "No changes: the head renders the same resources and outputs as the base.\n"
    )


def test_long_values_are_summarised(full: Doc) -> None:
    """A new wheel (~30 KB of base64) shows as its size, never its content; other long values are shortened."""
    head = copy.deepcopy(full)
    (wheel,) = [r for r in head["resources"] if r["type"] == "databricks:index/file:File"]
    old_size = len(base64.b64decode(wheel["inputs"]["contentBase64"]))
    content = base64.b64encode(b"a rebuilt wheel " * 2000).decode()
    wheel["inputs"].update(contentBase64=content, md5="0" * 32)
    md = diff_documents(full, head)
    assert f"  - `contentBase64`: changed ({old_size} bytes -> 32000 bytes)\n" in md
    assert content[:100] not in md and all(len(line) < 240 for line in md.splitlines())


def test_cli_writes_the_markdown_and_reads_older_documents(tmp_path: Path, without_evaluation: Doc, full: Doc) -> None:
    """The command prints the same Markdown; a base made before the `secrets` key still diffs (exit 0)."""
    base, head = tmp_path / "base.json", tmp_path / "head.json"
    older = {k: v for k, v in without_evaluation.items() if k != "secrets"}
    base.write_text(json.dumps(older))
    head.write_text(json.dumps(full))
    result = diff(str(base), str(head))
    assert result.returncode == 0, result.stderr
    assert result.stdout == diff_documents(older, full) and "**0 added, 1 changed, 0 removed**" in result.stdout


BAD_INPUTS: list[tuple[str | None, str]] = [
    (None, "no such file"),
    ('{"project": "agent-platform",', "is not valid JSON (line 1, column 30"),
    ("[]", "is not an offline preview document (project, stack, resources, outputs missing"),
    ('{"project": "p", "stack": "s", "outputs": {}}', "is not an offline preview document (resources missing"),
    ('{"project": "p", "stack": "s", "outputs": {}, "resources": [{"type": "t", "name": "n"}]}',
     "(resources[].type/name/inputs missing or not of the expected type)"),
]  # fmt: skip


@pytest.mark.parametrize(("content", "expected"), BAD_INPUTS)
def test_bad_input_exits_2_with_one_message(tmp_path: Path, content: str | None, expected: str) -> None:
    """A missing file, invalid JSON or a document that is not a preview: exit 2, one line naming the file."""
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps({"project": "p", "stack": "s", "resources": [], "outputs": {}}))
    if content is not None:
        bad.write_text(content)
    result = diff(str(good), str(bad))
    assert result.returncode == 2 and result.stdout == "", result.stdout
    assert result.stderr.startswith(f"error: {bad}: ") and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
