"""`python -m infra diff BASE.json HEAD.json` on plans of the real program: what a reviewer reads in the PR,
replacements and data at risk first; hostile documents refused; document text kept inside its code spans, as
GitHub's own renderer (cmark-gfm) reads the comment."""

from __future__ import annotations

import base64
import copy
import hashlib
import html
import json
import re
import time
from pathlib import Path
from typing import Any

import cmarkgfm
import pytest
import yaml
from cmarkgfm.cmark import Options

from infra.systems.health_monitor import components as health_monitor
from infra.tools.cli import main
from infra.tools.diff import FORCE_NEW, IDENTITY, NAME_WIDTH, RENAMED_IN_PLACE, STRICT_EXIT, compare, diff_documents
from infra.tools.offline import preview_stack
from infra.tools.preview import plan_document, to_json
from policy.rules import DATA_TYPES
from tests.conftest import ROOT, program_plan, stack_preview

Doc = dict[str, Any]
CIPHERTEXTS = ("v1:q2Vt0f8nXk1=:Zm9vYmFyY2lwaGVydGV4dG9uZQ==", "v1:Jw5cR0c2mVo=:YmF6cXV4Y2lwaGVydGV4dHR3bw==")
PLAIN = "AIza-plaintext-never-shown-7"
SCHEMA, VOLUME, FILE = (f"databricks:index/{t}" for t in ("schema:Schema", "volume:Volume", "file:File"))


def diff(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`python -m infra diff ARGS` in this process: (exit status, stdout, stderr)."""
    code = main(["diff", *args])
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, **docs: Doc) -> list[str]:
    paths = []
    for name, doc in docs.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))
        paths.append(str(tmp_path / f"{name}.json"))
    return paths


def resource(doc: Doc, short_type: str, name: str) -> dict[str, Any]:
    (found,) = [r for r in doc["resources"] if r["type"].endswith(f":{short_type}") and r["name"] == name]
    return dict(found)


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
        return plan_document(program_plan(cached=False))  # another program: not the shared plan


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
    # What held data is warned about first: removed from the program, kept in the workspace, orphaned.
    caution = md.split("\n\n")[1]
    data = [line for line in removed if any(f"index/{t.split('/')[1]}`" in line for t in DATA_TYPES)]
    assert caution.startswith("> [!CAUTION]\n") and len(data) == 7, data
    for line in data:
        assert f"> {line}: **removed** from the program: `retain_on_delete` keeps the old one" in caution
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
        "### Offline preview diff: agent-platform / dev\n\n**0 added, 1 changed, 0 removed**; 1 replaced\n\n"
        "#### Replacements\nPulumi deletes and creates these anew:\n"
        "- `databricks:index/secret:Secret` **rlm-secrets-google-api-key**: `stringValue` changed\n\n"
        "#### Changed\n- `databricks:index/secret:Secret` **rlm-secrets-google-api-key**\n"
        "  - `stringValue`: [secret] -> [secret] (rotated)\n"
    )
    to_plain = diff_documents(head, plain)
    assert "  - `stringValue`: [secret] -> [secret] (encrypted -> plaintext)\n" in to_plain
    for secret in (*CIPHERTEXTS, *(c.split(":")[-1] for c in CIPHERTEXTS), PLAIN):
        assert all(secret not in text for text in (*rotated, md, to_plain))


def test_identical_plans_have_no_changes(full: Doc) -> None:
    """Two renders of the same program and config are byte-identical, and their diff says so in one line."""
    again = plan_document(program_plan(cached=False))
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


def test_cli_writes_the_markdown_and_reads_older_documents(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], without_evaluation: Doc, full: Doc
) -> None:
    """The command prints the same Markdown; a base made before the `secrets` key still diffs (exit 0)."""
    older = {k: v for k, v in without_evaluation.items() if k != "secrets"}
    code, out, err = diff(capsys, *write(tmp_path, base=older, head=full))
    assert code == 0, err
    assert out == diff_documents(older, full) and "**0 added, 1 changed, 0 removed**" in out


# --- replacements and data at risk ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema_renamed() -> Doc:
    """The issue's case: `schema.name` renamed in the stack file (everything else as `full`)."""
    return plan_document(program_plan({"schema": {"name": "agents_v2"}}))


def test_a_renamed_schema_is_a_replacement_with_a_loud_warning_and_strict_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], full: Doc, schema_renamed: Doc
) -> None:
    """Renaming `schema.name` reads as what it is: the schema and every volume in it replaced by new, empty ones
    (the old ones orphaned by retain_on_delete), a warning before anything else, and `--strict` exits 4. The
    wheel file, re-uploaded under the new path with the old one kept, is a replacement but not a warning."""
    result = compare(full, schema_renamed)
    md = result.markdown
    heading, caution = md.split("\n\n")[:2]
    assert heading == "### Offline preview diff: agent-platform / test" and caution.startswith("> [!CAUTION]\n")
    volumes = [
        r["name"] for r in full["resources"] if r["type"] == VOLUME and r["inputs"]["schemaName"] == "agents_dev"
    ]
    assert len(volumes) == 4 and len(result.data_at_risk) == 1 + len(volumes)
    assert result.data_at_risk[0] == (
        "- `databricks:index/schema:Schema` **platform** (`agents_v2`): **replaced** (`name` changed): a new, "
        "empty one is created; `retain_on_delete` keeps the old one in the workspace, orphaned (no longer managed), "
        "with its data"
    )
    for name in volumes:
        assert any(f"**{name}**" in line and "(`schemaName` changed)" in line for line in result.data_at_risk)
    assert f"> **{1 + len(volumes)} resources holding data would be replaced or removed.**" in caution
    replacements = md.split("#### Replacements\n", 1)[1].split("\n\n", 1)[0]
    assert "- `databricks:index/file:File` **wheel**: `path` changed" in replacements
    assert not any("file:File" in line for line in result.data_at_risk)
    # The summary says how many of the changed resources Pulumi replaces; the changes themselves stay listed.
    listed = replacements.splitlines()[1:]
    assert f"; {len(listed)} replaced; " in md and '  - `name`: `"agents_dev"` -> `"agents_v2"`' in md
    assert sum("entityTagAssignment" in line and "`entityName` changed" in line for line in listed) >= len(volumes)
    base, head = write(tmp_path, base=full, head=schema_renamed)
    assert diff(capsys, base, head)[0] == 0
    code, out, err = diff(capsys, base, head, "--strict")
    assert (code, out) == (STRICT_EXIT, md)
    assert err == f"error: {1 + len(volumes)} resource(s) holding data would be replaced or removed (--strict)\n"


def test_strict_passes_a_change_that_replaces_no_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], without_evaluation: Doc, full: Doc
) -> None:
    """`--strict` fails only for data: a task added to a job (an update in place) exits 0, no warning."""
    code, out, _ = diff(capsys, *write(tmp_path, base=without_evaluation, head=full), "--strict")
    assert code == 0 and "[!CAUTION]" not in out and "#### Replacements" not in out


def test_what_happens_to_replaced_data_follows_the_base_options(full: Doc) -> None:
    """The warning says what Pulumi will do with the old object, from the base's options: protect makes the
    update fail, retain_on_delete orphans it, neither deletes it; a wheel file not retained is a warning too."""
    fates = {
        (True, True): "it is `protect`ed, so `pulumi up` fails until the protection is lifted or the change reverted",
        (
            False,
            True,
        ): "`retain_on_delete` keeps the old one in the workspace, orphaned (no longer managed), with its data",
        (False, False): "**the old one is deleted with its data** (it is not `retain_on_delete`)",
    }
    for (protect, retain), fate in fates.items():
        base, head = copy.deepcopy(full), copy.deepcopy(full)
        for doc in (base, head):
            for r in doc["resources"]:
                if r["type"] in (SCHEMA, FILE):
                    r.update(protect=protect, retain_on_delete=retain)
        resource_ = next(r for r in head["resources"] if r["type"] == SCHEMA and r["name"] == "agent")
        resource_["inputs"]["storageRoot"] = "s3://bucket/agent"
        next(r for r in head["resources"] if r["type"] == FILE)["inputs"]["path"] += ".new"
        risks = compare(base, head).data_at_risk
        assert (
            "- `databricks:index/schema:Schema` **agent** (`health_monitor_agent_dev`): **replaced** (`storageRoot` "
            "changed): a new, empty one is created under the same name, which Databricks refuses while the old one "
            f"exists; {fate}"
        ) in risks, risks
        assert any("file:File" in line for line in risks) == (protect or not retain), risks


def test_a_changed_logical_name_or_parent_is_a_replacement(full: Doc) -> None:
    """A resource whose logical name changed (same physical object) is removed and added: Pulumi deletes and
    creates it unless the program gives it an alias, which is said, and warned about for data; a new parent is
    a new URN, so the same. A removed and an added resource that are different objects are neither."""
    head = copy.deepcopy(full)
    volume = next(r for r in head["resources"] if r["type"] == VOLUME and r["name"] == "platform-wheels")
    volume["name"] = "wheels-volume"
    acl_parent = next(r for r in head["resources"] if r["type"].endswith(":Secret"))
    acl_parent["parent"] = "agent-platform:catalog:UnityCatalog::unity-catalog"
    result = compare(full, head)
    md = result.markdown
    assert (
        "- `databricks:index/volume:Volume` **wheels-volume** (`wheels`): its logical name changed (was "
        "**platform-wheels**, same physical object): without an `aliases` option naming the old one, Pulumi "
        "deletes **platform-wheels** and creates this one" in md
    )
    assert f"**{acl_parent['name']}**: its parent changed (a new URN" in md
    (risk,) = result.data_at_risk
    assert "**wheels-volume**" in risk and "which Databricks refuses while the old one exists" in risk
    assert "#### Added\n- `databricks:index/volume:Volume` **wheels-volume**" in md
    assert "#### Removed\n- `databricks:index/volume:Volume` **platform-wheels**" in md
    # Another volume under a new logical name is an addition and a removal, not a rename.
    volume["inputs"]["name"] = "other"
    result = compare(full, head)
    assert "logical name changed" not in result.markdown
    (risk,) = result.data_at_risk
    assert "**platform-wheels** (`wheels`): **removed** from the program" in risk


def test_a_renamed_volume_is_renamed_in_place_and_a_non_data_replacement_is_no_warning(full: Doc) -> None:
    """The provider renames a volume in place (its data stays): listed, not a warning. A replaced SecretAcl or
    grant is a replacement, but holds no data."""
    head = copy.deepcopy(full)
    next(r for r in head["resources"] if r["type"] == VOLUME and r["name"] == "platform-eval-sessions")["inputs"][
        "name"
    ] = "s2"
    entity = next(r for r in head["resources"] if r["type"].endswith(":EntityTagAssignment"))
    entity["inputs"]["tagKey"] = "owner"
    result = compare(full, head)
    assert result.data_at_risk == []
    assert (
        "- `databricks:index/volume:Volume` **platform-eval-sessions** (`s2`): renamed in place (`name`), not replaced: its "
        "data stays; every path or reference to the old name must follow" in result.markdown
    )
    assert f"**{entity['name']}**: `tagKey` changed" in result.markdown


def test_every_type_the_program_creates_is_in_the_force_new_table() -> None:
    """A new resource type must be looked up in the provider before its replacements can be seen: every type in
    the committed stacks' plans (and every data type) has an entry, and the identity and in-place tables name
    only known types."""
    types = set(DATA_TYPES)
    for stack in ("dev", "prod"):
        plan, _ = stack_preview(stack)
        types |= {r.type for r in plan.resources if r.custom and not r.type.startswith("pulumi:providers:")}
    assert types <= FORCE_NEW.keys(), sorted(types - FORCE_NEW.keys())
    assert IDENTITY.keys() <= FORCE_NEW.keys() and RENAMED_IN_PLACE.keys() <= FORCE_NEW.keys()


# --- Markdown that document text cannot break ----------------------------------------------------------------------

HOSTILE = [
    "x` **bold** [link](https://evil.example) `y",
    "``` closing fences ```` and ` single",
    "line one\n\n# a heading\n- a list item\n> quoted",
    "<img src=x onerror=alert(1)> <script>alert(2)</script> <!-- comment --> &amp; &lt;",
    "| a | table |\n|---|---|\n| injected | row |",
    "@someone #123 https://evil.example www.evil.example",
    "bidi \u202e reversed \u2066 isolate \u0007 bell \u2028 separator \x00 nul",
    "lone surrogate \ud800 here",
    " ` ",
    "*" * 3000 + "`" * 200,
]


def _tags(md: str) -> list[str]:
    """The element structure GitHub's renderer makes of the comment (raw HTML let through, to see it)."""
    rendered = cmarkgfm.github_flavored_markdown_to_html(md.encode("utf-8").decode(), options=Options.CMARK_OPT_UNSAFE)
    return re.findall(r"<(/?[a-zA-Z0-9]+)", rendered)


def _hostile_pair(full: Doc, text: str) -> tuple[Doc, Doc]:
    """`text` everywhere a document carries text into the comment: project and stack, a logical and a physical
    name, a type, a changed comment, a stack output, a task key (shortened to the Jobs API's 100 characters)."""
    base, head = copy.deepcopy(full), copy.deepcopy(full)
    for doc in (base, head):
        doc.update(project=text, stack=text)
    next(r for r in head["resources"] if r["type"] == SCHEMA)["inputs"]["comment"] = text
    head["resources"].append({"type": text, "name": text, "id": None, "parent": None, "inputs": {"name": text},
                              "protect": False, "retain_on_delete": False})  # fmt: skip
    head["outputs"]["catalog"] = text
    job = next(r for r in head["resources"] if r["type"].endswith(":Job"))
    job["inputs"]["tasks"][0]["taskKey"] = text[:100]
    return base, head


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_document_text_cannot_break_out_of_its_code_span(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], full: Doc, text: str
) -> None:
    """Rendered by cmark-gfm, a comment carrying hostile text has exactly the elements of one carrying plain text
    of the same length in the same places: no bold, link, image, HTML, heading, list or table comes from a document. Its
    control and bidi characters are shown escaped, and the comment is valid UTF-8 (through the command too)."""
    md = diff_documents(*_hostile_pair(full, text))
    plain = diff_documents(*_hostile_pair(full, ("plain text " * (len(text) // 11 + 1))[: max(len(text), 10)]))
    assert _tags(md) == _tags(plain)
    assert "*" * (NAME_WIDTH + 1) not in md and all(len(line) < 1200 for line in md.splitlines())
    for invisible in ("\u202e", "\u2066", "\u0007", "\u2028", "\x00", "\ud800"):
        assert invisible not in md
    if "\u202e" in text:
        assert "\\u202e reversed \\u2066 isolate \\u0007 bell \\u2028 separator \\u0000 nul" in md
    if "<img" in text:
        rendered = cmarkgfm.github_flavored_markdown_to_html(md, options=Options.CMARK_OPT_UNSAFE)
        assert f"<code>{html.escape(text, quote=False)}</code>" in rendered
    code, out, err = diff(
        capsys, *write(tmp_path, base=_hostile_pair(full, text)[0], head=_hostile_pair(full, text)[1])
    )
    assert (code, out) == (0, md), err


# --- documents that are not plans ----------------------------------------------------------------------------------

GOOD = {"project": "p", "stack": "s", "resources": [], "outputs": {}}


def _with(resources: list[Any], **extra: Any) -> str:
    return json.dumps({**GOOD, "resources": resources, **extra})


def _res(name: str = "n", **fields: Any) -> dict[str, Any]:
    return {"type": "t", "name": name, "inputs": {}, **fields}


def _job(tasks: Any) -> dict[str, Any]:
    return {"type": "databricks:index/job:Job", "name": "j", "inputs": {"tasks": tasks}}


BAD_INPUTS: list[tuple[str | None, str]] = [
    (None, "no such file"),
    ('{"project": "agent-platform",', "is not valid JSON (line 1, column 30"),
    ("[]", "is not an offline preview document (project, stack, resources, outputs missing"),
    ('{"project": "p", "stack": "s", "outputs": {}}', "is not an offline preview document (resources missing"),
    (_with([{"type": "t", "name": "n"}]), "(resources[0]: type/name/inputs missing or not of the expected type)"),
    (_with([], outputs={"x": float("nan")}).replace("NaN", "NaN"), "is not valid JSON (NaN is not a number JSON allows)"),
    ('{"project": "p", "project": "q"}', 'is not valid JSON (the key "project" is given twice)'),
    ("[" * 100_000 + "]" * 100_000, "is nested deeper than 64 levels"),
    (_with([_res(inputs={"a": json.loads("[" * 70 + "]" * 70)})]), "is nested deeper than 64 levels"),
    (_with([], secrets=["unset"]), "(secrets is not an object of texts)"),
    (_with([_res(protect="yes")]), "(resources[0].protect is not true or false)"),
    (_with([_res(parent=7)]), "(resources[0].parent is not a text or null)"),
    (_with([_res(), _res()]), "(the resource t::n is listed twice)"),
    (_with([_res(parent="agent-platform:x:Y::gone")]), "(t::n has the parent agent-platform:x:Y::gone, which is not in the document)"),
    (_with([_job([{"taskKey": "a", "dependsOns": [{"taskKey": "b"}]}])]), "(job j: task a depends on an unknown task b)"),
    (_with([_job([{"taskKey": "a"}, {"taskKey": "a"}])]), "(job j: two tasks have the same taskKey)"),
    (_with([_job([{"name": "no key"}])]), "(job j: a task's taskKey is missing, not a text or longer than 100 characters)"),
    (_with([_job("not a list")]), "(job j: tasks is not a list of objects)"),
    (json.dumps({**GOOD, "stack": "prod"}), "are plans of different stacks (p / s and p / prod); allowed: two plans of the same"),
]  # fmt: skip


@pytest.mark.parametrize(("content", "expected"), BAD_INPUTS, ids=range(len(BAD_INPUTS)))
def test_bad_input_exits_2_with_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, expected: str
) -> None:
    """A missing file, invalid JSON (NaN, a key twice, nested past any plan's depth), a document that is not a
    preview (wrong types, a resource twice, a parent or task dependency that is not there) or a plan of another
    stack: exit 2, nothing on stdout, one line naming the file and what is wrong, no traceback."""
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(GOOD))
    if content is not None:
        bad.write_text(content)
    code, out, err = diff(capsys, str(good), str(bad))
    assert code == 2 and out == "", out
    assert err.startswith(f"error: {good if 'different' in expected else bad}") and expected in err, err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_a_huge_or_binary_file_is_refused_without_reading_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file larger than any plan is refused by its size (a sparse file: nothing is read); bytes that are not
    UTF-8 are refused by name."""
    (tmp_path / "good.json").write_text(json.dumps(GOOD))
    with (tmp_path / "huge.json").open("wb") as f:
        f.truncate(64 * 1024 * 1024 + 1)
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe{}")
    for name, expected in (("huge", "is larger than 64 MiB"), ("binary", "is not UTF-8 text")):
        code, out, err = diff(capsys, str(tmp_path / "good.json"), str(tmp_path / f"{name}.json"))
        assert (code, out) == (2, "") and err == f"error: {tmp_path / name}.json: {expected}" + (
            ": not an offline preview document\n" if name == "huge" else "\n"
        )


def test_huge_lists_are_compared_in_linear_time(full: Doc) -> None:
    """A sequence diff is quadratic: two 30,000-item lists that differ at the end (the worst case for it) are
    compared item by item instead, in well under a second of work, and the comment stays short."""
    base, head = copy.deepcopy(full), copy.deepcopy(full)
    schema = next(r for r in base["resources"] if r["type"] == SCHEMA)
    schema["inputs"]["properties"] = ["same"] * 30_000
    changed = next(r for r in head["resources"] if r["type"] == SCHEMA and r["name"] == schema["name"])
    changed["inputs"]["properties"] = ["same"] * 29_999 + ["other"]
    started = time.process_time()
    md = diff_documents(base, head)
    assert time.process_time() - started < 5
    assert '  - `properties[29999]`: `"same"` -> `"other"`\n' in md and len(md) < 20_000
