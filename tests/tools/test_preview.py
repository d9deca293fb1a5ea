"""The offline preview CLI as users run it, `python -m infra preview --stack NAME [--json]`: called in this
process (`main(argv)`, what `python -m infra` calls), and once as a real `python -m infra` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.tools.cli import main
from infra.tools.preview import mermaid
from inprocess import Result, call
from tests.conftest import ROOT, STACK_FILES, stack_plan

STACKS = [f.removeprefix("Pulumi.").removesuffix(".yaml") for f in STACK_FILES]


def preview(*args: str) -> Result:
    """`python -m infra preview ARGS` in this process: exit status, stdout, stderr."""
    return call(main, ["preview", *args], cwd=ROOT)


@pytest.fixture(scope="module")
def prod_json() -> Result:
    return preview("--stack", "prod", "--json")


def test_json_shape(prod_json: Result) -> None:
    """The document has exactly the contract's keys, resources sorted, custom resources with distinct ids."""
    assert prod_json.returncode == 0, prod_json.stderr
    doc = json.loads(prod_json.stdout)
    assert list(doc) == ["project", "stack", "resources", "outputs", "secrets", "violations"]
    assert doc["violations"] == []  # prod satisfies every policy rule (tests/tools/test_policy.py)
    assert (doc["project"], doc["stack"]) == ("agent-platform", "prod")
    keys = ["type", "name", "id", "parent", "inputs", "protect", "retain_on_delete"]
    assert all(list(r) == keys for r in doc["resources"])
    order = [(r["type"], r["name"]) for r in doc["resources"]]
    assert order == sorted(order)
    ids = [r["id"] for r in doc["resources"] if r["type"].startswith("databricks:")]
    assert all(ids) and len(ids) == len(set(ids))
    schema = next(r for r in doc["resources"] if r["type"] == "databricks:index/schema:Schema")
    assert schema["inputs"]["catalogName"] == "main" and schema["protect"] and schema["retain_on_delete"]
    assert set(doc["outputs"]) >= {"catalog", "schema", "volumes", "secret_scope"}


def test_json_is_byte_identical_across_runs(prod_json: Result) -> None:
    """Two runs of the same inputs give the same bytes, so plans can be diffed and hashed: a real
    `python -m infra` process (its own hash seed, nothing cached) prints what this process printed."""
    again = subprocess.run(
        [sys.executable, "-m", "infra", "preview", "--stack", "prod", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONHASHSEED": "random"},
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stdout == prod_json.stdout


@pytest.mark.parametrize("stack", STACKS)
def test_human_preview(stack: str) -> None:
    """The human output lists resources with their key properties, the job DAGs section and the outputs."""
    result = preview("--stack", stack)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for section in ("Resources", "Job DAGs", "Outputs", "Notes"):
        assert f"\n{section}\n" in out
    assert "databricks:index/schema:Schema  platform" in out and "[secret]" in out
    assert "pulumi config set --secret agent-platform:eval_agent_databricks_token" in out


def _temp_stack(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "Pulumi.tmp.yaml"
    path.write_text((ROOT / "Pulumi.dev.yaml").read_text() + extra)
    return path


def test_plaintext_secret_in_a_stack_file_stays_masked(tmp_path: Path) -> None:
    """Even a secret committed in plain text never appears in the preview, human or JSON, stdout or stderr."""
    value = "dapi-PLAINTEXT-do-not-print-42"
    path = _temp_stack(tmp_path, f"  agent-platform:eval_agent_databricks_token: {value}\n")
    for args in ((), ("--json",)):
        result = preview("--stack", "tmp", "--config-file", str(path), *args)
        assert result.returncode == 0, result.stderr
        assert value not in result.stdout + result.stderr
        assert "stored in plain text" in result.stdout + result.stderr
    doc = json.loads(result.stdout)  # the --json run's
    secret = next(r for r in doc["resources"] if r["name"] == "eval-agent-secrets-databricks-token")
    assert secret["inputs"]["stringValue"] == "[secret]"


def test_encrypted_secret_is_shown_masked_with_a_note(tmp_path: Path) -> None:
    """A `secure:` value cannot be decrypted offline: it renders masked, with a note."""
    path = _temp_stack(tmp_path, "  agent-platform:rlm_google_api_key:\n    secure: v1:abc:def\n")
    result = preview("--stack", "tmp", "--config-file", str(path))
    assert result.returncode == 0, result.stderr
    assert "rlm_google_api_key is encrypted" in result.stdout
    assert "adk-secrets-dev/google-api-key = [secret]" in result.stdout


def _stack_with(tmp_path: Path, overrides: dict[str, object]) -> Path:
    """The dev stack file with some keys replaced (no key given twice)."""
    doc = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    doc["config"].update({f"agent-platform:{k}": v for k, v in overrides.items()})
    path = tmp_path / "Pulumi.tmp.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`python -m infra preview ARGS`, run in this process (no interpreter start-up): status, stdout, stderr."""
    status = main(["preview", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


BAD_FILES: list[tuple[str, str | None]] = [
    ("  agent-platform:catlog: {name: main}\n", "agent-platform:catlog: is not a known setting (did you mean 'catalog'?)"),
    ("  agent-platform:catalog: [main\n", "is not valid YAML at line"),
    ("  agent-platform:schema: {name: other}\n", "the key 'agent-platform:schema' is given twice"),
    ("  agent-platform:deployment: {job_permissions: {1234: CAN_VIEW, admins: CAN_RUN}}\n", "deployment.job_permissions.admins = 'CAN_RUN'"),
    ("  5: x\n", "config: has the key '5', which is not text"),
    ("  agent-platform:deployment: {tags: {on: x, created: '2024-05-01'}}\n", None),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "expected"), BAD_FILES)
def test_bad_config_exits_2_with_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str, expected: str | None
) -> None:
    """Bad config: exit status 2, a message naming the file and the key, no traceback, nothing rendered."""
    path = _temp_stack(tmp_path, extra)
    status, out, err = cli(capsys, "--stack", "tmp", "--config-file", str(path), "--json")
    if expected is None:  # as the Pulumi CLI reads YAML: `on` is text; a quoted date stays text; both valid
        assert status == 0, err
        tags = next(r for r in json.loads(out)["resources"] if r["type"] == "databricks:index/job:Job")["inputs"][
            "tags"
        ]
        assert tags["on"] == "x" and tags["created"] == "2024-05-01"
        return
    assert status == 2 and out == "", err
    assert err.startswith(f"error: {path}") and expected in err, err
    assert "Traceback" not in err


def test_a_date_becomes_gos_time_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unquoted date reaches the program as Go's time text, as `pulumi up` passes it (not the date)."""
    path = _temp_stack(tmp_path, "  agent-platform:deployment: {tags: {created: 2024-05-01}}\n")
    status, out, err = cli(capsys, "--stack", "tmp", "--config-file", str(path), "--json")
    assert status == 0, err
    tags = next(r for r in json.loads(out)["resources"] if r["type"] == "databricks:index/job:Job")["inputs"]["tags"]
    assert tags["created"] == "2024-05-01 00:00:00 +0000 UTC"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"rlm": {"compute": {"kind": "existing_cluster"}}}, "agent-platform:rlm.compute.cluster_id: is required"),
        ({"environment": "PROD"}, "agent-platform:environment = 'PROD': is not a valid environment name"),
        ({"environment": None}, "agent-platform:environment: is required but not set"),
    ],
)
def test_bad_values_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], overrides: dict[str, object], expected: str
) -> None:
    """A bad value, or a key with nothing after it that must be set, is exit status 2 naming the key."""
    status, _, err = cli(capsys, "--stack", "tmp", "--config-file", str(_stack_with(tmp_path, overrides)))
    assert status == 2 and expected in err and "Traceback" not in err, err


def test_non_utf8_stack_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Latin-1 bytes are not text the CLI reads (UTF-16 with a byte-order mark is: tests/tools/test_stackfile.py)."""
    path = tmp_path / "Pulumi.tmp.yaml"
    path.write_bytes((ROOT / "Pulumi.dev.yaml").read_text().replace("dev", "d\xe9v").encode("latin-1"))
    status, _, err = cli(capsys, "--stack", "tmp", "--config-file", str(path))
    assert status == 2 and "is not UTF-8 text" in err and "Traceback" not in err, err


# A valid stack, to which each hostile row adds keys.
BASE_STACK = """config:
  agent-platform:environment: dev
  agent-platform:workspace: {host: https://e2-demo-field-eng.cloud.databricks.com}
  agent-platform:catalog: {name: main}
  agent-platform:schema: {name: agents_dev}
  agent-platform:health_monitor: {schema: {name: health_monitor_agent_dev}}
"""
LAUGHS = "  lol:l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"  lol:l{i + 1}: &l{i + 1} [{', '.join([f'*l{i}'] * 9)}]\n" for i in range(8)
)
DIGITS = "9" * 5000

# (what the row is, keys added to BASE_STACK or a whole file, Pulumi.yaml if not the project's, the message)
HOSTILE: list[tuple[str, str, str | None, str]] = [
    ("billion laughs (1 KB)", LAUGHS + "  agent-platform:deployment: {tags: {x: *l8}}\n", None, "the document contains excessive aliasing"),
    ("nested 10001 deep", "  agent-platform:deployment: {tags: " + "[" * 10001 + "]" * 10001 + "}\n", None, "exceeded max depth of 10000"),
    ("a megabyte of stack file", "  lol:x: " + "x" * (1 << 20) + "\n", None, "is larger than 1 MiB"),
    ("!!binary that is not base64", "  agent-platform:eval_agent: {experiment_id: !!binary 12345}\n", None, "agent-platform:eval_agent.experiment_id: is tagged !!binary but is not base64"),
    ("!!binary holding a NUL", "  agent-platform:eval_agent: {experiment_id: !!binary MTIzAA==}\n", None, "agent-platform:eval_agent.experiment_id = '123\\x00': contains U+0000"),
    ("!!set for a list", "  agent-platform:deployment: {secret_readers: !!set {admins, ops}}\n", None, "agent-platform:deployment.secret_readers: must be a list"),
    ("!!bool that is not one", "  agent-platform:rlm: {enabled: !!bool yes}\n", None, "agent-platform:rlm.enabled: is tagged !!bool"),
    ("a 5000-digit count", f"  agent-platform:rlm: {{max_iterations: {DIGITS}}}\n", None, "agent-platform:rlm.max_iterations = '9999"),
    ("a 5000-digit id", f"  agent-platform:eval_agent: {{experiment_id: {DIGITS}}}\n", None, "agent-platform:eval_agent.experiment_id = '9999"),
    ("an infinite count", "  agent-platform:rlm: {max_iterations: .inf}\n", None, "agent-platform:rlm.max_iterations: is .inf"),
    ("Pulumi.yaml config that is a list", "", "name: agent-platform\nconfig: [environment]\n", "Pulumi.yaml: config: must be a mapping of config keys to declarations"),
    ("Pulumi.yaml without a name", "", "runtime: python\nconfig: {}\n", "Pulumi.yaml: project is missing a 'name' attribute"),
    ("NUL in a principal", '  agent-platform:deployment: {secret_readers: ["admins\\0"]}\n', None, "agent-platform:deployment.secret_readers[0] = 'admins\\x00': contains U+0000"),
    ("bidi override in a principal", '  agent-platform:deployment: {job_permissions: {"ops\\u202e": CAN_VIEW}}\n', None, 'agent-platform:deployment.job_permissions["ops\\u202e"]'),
    ("control character in a run_as", '  agent-platform:deployment: {run_as: "a\\x1b@example.com"}\n', None, "agent-platform:deployment.run_as = 'a\\x1b@example.com': contains U+001B"),
    ("bidi isolate in a name", '  agent-platform:eval_agent: {sessions_volume: "sess\\u2066ions"}\n', None, "agent-platform:eval_agent.sessions_volume"),
    ("a boolean given as a count", "  agent-platform:rlm: {enabled: 1}\n", None, "agent-platform:rlm.enabled = 1: is not a boolean"),
    ("a boolean given as yes", "  agent-platform:eval_agent: {enabled: yes}\n", None, "agent-platform:eval_agent.enabled = 'yes': is not a boolean"),
    ("tag keys differing in case", "  agent-platform:deployment: {tags: {Team: a, team: b}}\n", None, "agent-platform:deployment.tags.team = 'b': differs from the tag key Team only in case"),
    ("a misspelt kind", "  agent-platform:rlm: {compute: {kindx: serverless}}\n", None, "agent-platform:rlm.compute.kindx: is not a known setting (did you mean 'kind'?)"),
    ("a key set twice through its namespace", "  environment: prod\n", None, "sets agent-platform:environment twice"),
    ("an alias to nothing", "  agent-platform:deployment: {tags: *nothing}\n", None, "uses the unknown anchor 'nothing'"),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "project", "expected"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_input_exits_2_with_one_message(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: str,
    project: str | None,
    expected: str,
) -> None:
    """Whatever a stack file or Pulumi.yaml holds: exit status 2 and one line naming the file and the key or
    argument, nothing on stdout, never a traceback, a recursion error or gigabytes of memory."""
    if project is not None:  # another project: only its Pulumi.yaml is read before the error
        (tmp_path / "Pulumi.yaml").write_text(project)
        monkeypatch.setattr("infra.tools.cli.ROOT", tmp_path)
    path = tmp_path / "Pulumi.tmp.yaml"
    path.write_text(BASE_STACK + extra)
    status, out, err = cli(capsys, "--stack", "tmp", "--config-file", str(path), "--json")
    assert (status, out) == (2, ""), err[:500]
    shown = "Pulumi.yaml" if project is not None else str(path)
    assert err.startswith(f"error: {shown}: ") and err.count("\n") == 1 and len(err) < 2000, err[:500]
    assert expected in err and "Traceback" not in err, err[:500]


def test_the_base_of_the_hostile_table_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each hostile row fails because of what it adds, not because of the stack it adds it to."""
    path = tmp_path / "Pulumi.tmp.yaml"
    path.write_text(BASE_STACK)
    status, _, err = cli(capsys, "--stack", "tmp", "--config-file", str(path), "--json")
    assert status == 0, err


def test_encrypted_optional_secret_is_kept_masked(tmp_path: Path) -> None:
    """An optional secret given encrypted is created (masked), with a note, as `pulumi up` would create it."""
    path = _temp_stack(tmp_path, "  agent-platform:rlm_databricks_token:\n    secure: v1:abc:def\n")
    result = preview("--stack", "tmp", "--config-file", str(path))
    assert result.returncode == 0, result.stderr
    assert "adk-secrets-dev/databricks-token = [secret]" in result.stdout
    assert "rlm_databricks_token is encrypted" in result.stdout


def test_plaintext_secret_of_a_disabled_system_is_noted(tmp_path: Path) -> None:
    path = _stack_with(tmp_path, {"rlm": {"enabled": False}, "rlm_google_api_key": "AIza-plain"})
    result = preview("--stack", "tmp", "--config-file", str(path))
    assert result.returncode == 0 and "AIza-plain" not in result.stdout + result.stderr
    assert "rlm_google_api_key is stored in plain text" in result.stdout and "switched off" in result.stdout


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    result = preview("--stack", "dev", "--config-file", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2 and "nope.yaml: no such file (given with --config-file)" in result.stderr


def test_unknown_stack_exits_2_listing_the_stacks() -> None:
    """A stack without a stack file is a usage error that says which stacks exist."""
    result = preview("--stack", "staging")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "Pulumi.staging.yaml: no such stack file; allowed: --stack dev | prod" in result.stderr


def test_mermaid_renders_a_task_dag() -> None:
    """Each job's DAG renders as a Mermaid flowchart with one edge per dependency."""
    job = {
        "tasks": [
            {"taskKey": "create", "dependsOns": []},
            {"taskKey": "register", "dependsOns": [{"taskKey": "create"}]},
            {"taskKey": "log", "dependsOns": [{"taskKey": "create"}, {"taskKey": "register"}]},
        ]
    }
    assert mermaid(job).splitlines() == [
        "flowchart TD",
        '    t0["create"]',
        '    t1["register"]',
        '    t2["log"]',
        "    t0 --> t1",
        "    t0 --> t2",
        "    t1 --> t2",
    ]


def test_the_mock_engine_refuses_a_type_it_has_no_outputs_for() -> None:
    """ARCHITECTURE 3.2: an unknown type is an error naming it, not outputs silently resolved to None."""
    import pulumi

    from infra.tools.mocks import ROWS
    from infra.tools.offline import run_program

    def program() -> None:
        pulumi.CustomResource("databricks:index/notebook:Notebook", "nb", {"path": "/Shared/x"})

    assert "databricks:index/notebook:Notebook" not in ROWS
    with pytest.raises(Exception, match="no mock outputs for databricks:index/notebook:Notebook"):
        run_program(program, "agent-platform", "dev", {}, frozenset())


def test_every_type_of_the_plans_has_plausible_computed_outputs() -> None:
    """The outputs the program reads are there: a volume's path, an App's URL and service principal, a Postgres
    branch's name, a job's URL (every type has its row; the ids are distinct)."""
    plan = stack_plan("prod")
    ids = [r.id for r in plan.resources if r.custom]
    assert len(ids) == len(set(ids))
    assert (
        plan.outputs["serving_app_url"][0].startswith("https://") and plan.outputs["serving_app_service_principal"][0]
    )
    assert (
        plan.outputs["serving_memory_database"][0].startswith("projects/")
        and "/branches/" in plan.outputs["serving_memory_database"][0]
    )
    assert all(v.startswith("/Volumes/") for v in plan.outputs["volumes"][0].values())
