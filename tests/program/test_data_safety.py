"""Data safety on the rendered plan: everything that holds data is retained (one list of types, used by the
program and the policy alike), production data is protected, uploaded paths survive the Files API, and grants
on a catalog the stack does not own never take access away."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from infra.platform import prerequisites
from infra.tools.cli import main
from infra.tools.offline import Plan, unwrap
from policy.rules import DATA_TYPES, PATHS, PROTECTED, check_plan, path_problem
from tests.conftest import BASE, ROOT, parse, program_plan, stack_plan

STACKS = ("dev", "prod")
SP = "6f1c2a4e-0b7d-4c1e-9a53-2f8e7d6c5b4a"


@pytest.fixture(scope="module")
def stacks() -> dict[str, Plan]:
    return {stack: stack_plan(stack) for stack in STACKS}


@pytest.fixture(scope="module")
def everything() -> Plan:
    """A plan with the optional data too: the uploaded agent code, a telemetry table, an adopted scope."""
    return program_plan(
        {
            "rlm": {"agent_code_file": "policy/__init__.py", "sql_warehouse_id": "1a2b3c4d5e6f7a8b"},
            "adopt": {"secret_scopes": {"rlm": "adk-secrets-dev"}},
        }
    )


def test_every_resource_that_holds_data_is_retained(stacks: dict[str, Plan], everything: Plan) -> None:
    """Schemas, volumes, files (the wheel and the agent code), tables, the model, the experiment and its folder
    are all retain_on_delete in every stack, whichever component made them: `pulumi destroy` or a rename never
    deletes data."""
    for plan in [*stacks.values(), everything]:
        data = [r for r in plan.resources if r.type in DATA_TYPES]
        assert {r.type.rsplit(":", 1)[-1] for r in data} >= {"Schema", "Volume", "File", "RegisteredModel"}
        assert [r.name for r in data if not r.retain_on_delete] == []
    code = everything.one("File", "rlm-agent-code")
    assert code.retain_on_delete and everything.one("SqlTable").retain_on_delete


def test_an_adopted_secret_scope_is_retained_a_created_one_is_not(everything: Plan) -> None:
    """An adopted scope holds secrets this stack never managed: destroying the stack leaves it. A scope the
    stack created holds only values from the stack's config, so it goes with the stack."""
    adopted = everything.one("SecretScope", "rlm-secrets")
    created = everything.one("SecretScope", "eval-agent-secrets")
    assert (adopted.import_id, adopted.retain_on_delete) == ("adk-secrets-dev", True)
    assert (created.import_id, created.retain_on_delete) == (None, False)


def test_production_data_must_be_protected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`preview --strict` fails a production stack whose data is not protected (deployment.protect_data: false):
    a rename would otherwise replace a schema by an empty one without Pulumi objecting."""
    text = (ROOT / "Pulumi.prod.yaml").read_text()
    stack = tmp_path / "Pulumi.prod.yaml"
    stack.write_text(
        text.replace("  agent-platform:deployment:\n", "  agent-platform:deployment:\n    protect_data: false\n")
    )
    assert main(["preview", "--stack", "prod", "--config-file", str(stack), "--strict"]) == 3
    out = capsys.readouterr().out
    assert f"[{PROTECTED}] databricks:index/schema:Schema  platform" in out
    assert f"[{PROTECTED}] databricks:index/file:File" not in out  # content-addressed files are replaced by design
    assert main(["preview", "--stack", "prod", "--strict"]) == 0


def test_no_uploaded_or_installed_path_holds_a_plus_or_a_space(stacks: dict[str, Plan]) -> None:
    """Every File path and every wheel a job installs (task libraries, environment dependencies) is made only
    of characters the Files API keeps: it stores `+` as a space (pulumi-databricks#589), so a wheel named
    `...0.1.0+gabc...` never arrives under the name the jobs install."""
    paths = []
    for plan in stacks.values():
        paths += [unwrap(f.inputs)["path"] for f in plan.all("File")]
        for job in plan.all("Job"):
            inputs = unwrap(job.inputs)
            paths += [d for e in inputs.get("environments") or [] for d in e["spec"]["dependencies"] if ".whl" in d]
            paths += [lib["whl"] for t in inputs["tasks"] for lib in t.get("libraries") or [] if "whl" in lib]
    assert paths and all("+" not in p and " " not in p for p in paths), paths
    assert all(path_problem(p) is None for p in paths)


def test_the_path_rule_catches_a_local_version_label(stacks: dict[str, Plan]) -> None:
    """The policy (and so `preview --strict`) refuses the wheel name this program used before, with a `+`."""
    plan = copy.deepcopy(stacks["dev"])
    wheel = plan.one("File", "wheel")
    wheel.inputs["path"] = "/Volumes/main/agents_dev/wheels/agent_jobs-0.1.0+gf9c89021-py3-none-any.whl"
    found = [v for v in check_plan(plan, production=False) if v.rule == PATHS]
    assert [v.name for v in found] == ["wheel"] and "'+'" in found[0].message


def test_a_referenced_catalog_gets_grants_only_for_the_listed_principals(stacks: dict[str, Plan]) -> None:
    """On a catalog the stack does not own (main), a Grant is authoritative per principal: the stack manages
    only the principals the stack file lists, and never the jobs' identity implicitly (that would revoke its
    other privileges on main, and `pulumi destroy` all of them). What the jobs' identity needs there is listed
    as a prerequisite instead."""
    prod = stacks["prod"]
    grants = [unwrap(g.inputs) for g in prod.all("Grant") if "catalog" in unwrap(g.inputs)]
    assert grants == [{"catalog": "main", "principal": "agent-developers", "privileges": ["USE_CATALOG"]}]
    assert any(SP in item and "USE_CATALOG" in item and "main" in item for item in prod.prerequisites)
    assert not [g for g in stacks["dev"].all("Grant") if "catalog" in unwrap(g.inputs)]  # nothing managed on main
    assert any("CREATE_SCHEMA" in item for item in stacks["dev"].prerequisites)


def test_a_created_catalog_is_owned_and_grants_the_jobs_identity() -> None:
    """A catalog the stack creates is the stack's: authoritative Grants, the jobs' identity included, and no
    prerequisite on it."""
    plan = program_plan(
        {"catalog": {"name": "agents", "create": True, "grants": {"devs": ["USE_CATALOG"]}},
         "deployment": {"run_as": SP}, "environment": BASE["environment"]}
    )  # fmt: skip
    grants = unwrap(plan.one("Grants", "catalog-grants").inputs)["grants"]
    assert {g["principal"]: g["privileges"] for g in grants} == {"devs": ["USE_CATALOG"], SP: ["USE_CATALOG"]}
    assert not plan.all("Grant")
    assert prerequisites(parse({"catalog": {"name": "agents", "create": True}}).settings) == []
