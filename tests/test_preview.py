"""The offline preview CLI, run as users run it: `python -m infra preview --stack NAME [--json]`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.preview import mermaid
from tests.conftest import ROOT, STACK_FILES

STACKS = [f.removeprefix("Pulumi.").removesuffix(".yaml") for f in STACK_FILES]


def preview(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra", "preview", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def prod_json() -> subprocess.CompletedProcess[str]:
    return preview("--stack", "prod", "--json")


def test_json_shape(prod_json: subprocess.CompletedProcess[str]) -> None:
    """The document has exactly the contract's keys, resources sorted, custom resources with distinct ids."""
    assert prod_json.returncode == 0, prod_json.stderr
    doc = json.loads(prod_json.stdout)
    assert list(doc) == ["project", "stack", "resources", "outputs", "secrets", "violations"]
    assert doc["violations"] == []  # prod satisfies every policy rule (tests/test_policy.py)
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


def test_json_is_byte_identical_across_runs(prod_json: subprocess.CompletedProcess[str]) -> None:
    """Two runs of the same inputs give the same bytes, so plans can be diffed and hashed."""
    again = preview("--stack", "prod", "--json")
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
    doc = json.loads(preview("--stack", "tmp", "--config-file", str(path), "--json").stdout)
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


BAD_FILES: list[tuple[str, str]] = [
    ("  agent-platform:catlog: {name: main}\n", "agent-platform:catlog: is not a known setting (did you mean 'catalog'?)"),
    ("  agent-platform:catalog: [main\n", "is not valid YAML at line"),
    ("  agent-platform:schema: {name: other}\n", "the key 'agent-platform:schema' is given twice"),
    ("  agent-platform:deployment: {tags: {created: 2024-05-01}}\n", None),
    ("  agent-platform:deployment: {job_permissions: {1234: CAN_VIEW, admins: CAN_RUN}}\n", "deployment.job_permissions.admins = 'CAN_RUN'"),
    ("  5: x\n", "agent-platform:5: is not a known setting"),
    ("  agent-platform:deployment: {tags: {on: x}}\n", None),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "expected"), BAD_FILES)
def test_bad_config_exits_2_with_one_message(tmp_path: Path, extra: str, expected: str | None) -> None:
    """Bad config: exit status 2, a message naming the file and the key, no traceback, nothing rendered."""
    path = _temp_stack(tmp_path, extra)
    result = preview("--stack", "tmp", "--config-file", str(path), "--json")
    if expected is None:  # YAML 1.2 like the Pulumi CLI: `on` is a string, a date stays text: both valid
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {path}") and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"rlm": {"compute": {"kind": "existing_cluster"}}}, "agent-platform:rlm.compute.cluster_id: is required"),
        ({"environment": "PROD"}, "agent-platform:environment = 'PROD': is not a valid environment name"),
        ({"environment": None}, "agent-platform:environment: is required but not set"),
    ],
)
def test_bad_values_exit_2(tmp_path: Path, overrides: dict[str, object], expected: str) -> None:
    result = preview("--stack", "tmp", "--config-file", str(_stack_with(tmp_path, overrides)))
    assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_non_utf8_stack_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.tmp.yaml"
    path.write_bytes((ROOT / "Pulumi.dev.yaml").read_text().encode("utf-16"))
    result = preview("--stack", "tmp", "--config-file", str(path))
    assert result.returncode == 2 and "is not UTF-8 text" in result.stderr and "Traceback" not in result.stderr


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
