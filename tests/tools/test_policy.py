"""Policy rules (infra/policy.py): the committed stacks satisfy every rule, each rule catches what breaks it, and
both runners use them: `python -m infra preview` (violations listed, exit status 3 with --strict) and the Pulumi
policy pack in policy/ (called directly, and served over gRPC as `pulumi preview --policy-pack policy` runs it)."""

from __future__ import annotations

import copy
import importlib
import json
import os
import select
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from infra.settings import WheelSettings
from infra.tools.cli import main
from infra.tools.offline import SECRET_SIG, Plan, Recorded, read_stack_config, unwrap
from inprocess import Result, call
from policy import rules
from policy.rules import Violation, check, check_plan, looks_secret, plan_wheels_volume, stack_facts
from tests.conftest import BASE, PROJECT, ROOT, parse, program_plan, stack_plan, stack_preview

STACKS = ("dev", "prod")
DAPI = "dapi" + "0123456789abcdef" * 2
GHP = "ghp_" + "A1b2C3d4E5f6G7h8I9j0" * 2
WRAPPED = {SECRET_SIG: "1b47061264138c4ac30d75fd1eb44270", "value": "s3cr3t-value"}


@pytest.fixture(scope="module")
def plans() -> dict[str, tuple[Plan, bool]]:
    """Each committed stack's offline plan and whether it is production."""
    out = {}
    for stack in STACKS:
        plan, loaded = stack_preview(stack)
        out[stack] = (plan, loaded.settings.production)
    return out


@pytest.fixture
def prod(plans: dict[str, tuple[Plan, bool]]) -> Plan:
    """A copy of the prod plan that a test may break."""
    return copy.deepcopy(plans["prod"][0])


def job(plan: Plan, name: str = "eval-agent") -> dict[str, Any]:
    return plan.one("Job", name).inputs


def rules_of(violations: list[Violation]) -> set[str]:
    return {v.rule for v in violations}


def only(violations: list[Violation], rule: str) -> list[Violation]:
    """Assert that every violation is of `rule` (and that there is one), return them."""
    assert violations and rules_of(violations) == {rule}, violations
    return violations


# --- the committed stacks


@pytest.mark.parametrize("stack", STACKS)
def test_committed_stacks_satisfy_every_rule(plans: dict[str, tuple[Plan, bool]], stack: str) -> None:
    """dev and prod render with zero violations, so `preview --strict` can gate a pull request."""
    plan, production = plans[stack]
    assert production is (stack == "prod")
    assert check_plan(plan, production=production) == []


@pytest.mark.parametrize("stack", STACKS)
def test_pack_learns_the_same_facts_from_the_stack_config(plans: dict[str, tuple[Plan, bool]], stack: str) -> None:
    """The policy pack cannot use the settings model: its reading of the stack config (production, wheels volume)
    agrees with the model and with the rendered plan."""
    config = read_stack_config(ROOT, stack)
    short = {k.split(":", 1)[1]: v for k, v in config.values.items()}
    plan, production = plans[stack]
    facts = stack_facts(short, stack)
    assert facts.production is production
    assert facts.wheels_volume == plan_wheels_volume(plan) == plan.outputs["volumes"][0]["wheels"]
    assert WheelSettings().volume == rules.DEFAULT_WHEELS_VOLUME


@pytest.mark.parametrize(
    ("overrides", "stack"),
    [
        ({"environment": "prod", "deployment": {"run_as": "6f1c2a4e-0b7d-4c1e-9a53-2f8e7d6c5b4a"}}, "x"),
        ({"environment": "prod", "deployment": {"mode": "development"}}, "prod"),
        (
            {
                "environment": "staging",
                "deployment": {"mode": "production", "run_as": "6f1c2a4e-0b7d-4c1e-9a53-2f8e7d6c5b4a"},
            },
            "x",
        ),
        ({"environment": "dev", "wheel": {"volume": "artifacts"}}, "dev"),
    ],
)
def test_stack_facts_follow_the_settings_model(overrides: dict[str, Any], stack: str) -> None:
    """deployment.mode wins over the environment name, as in StackSettings.production; wheel.volume is used."""
    settings = parse(overrides).settings
    config = {k: v if isinstance(v, str) else json.dumps(v) for k, v in {**BASE, **overrides}.items()}
    facts = stack_facts(config, stack)
    assert facts.production is settings.production
    assert facts.wheels_volume == f"/Volumes/main/agents_dev/{settings.wheel.volume}"


def test_stack_name_stands_in_for_a_missing_environment() -> None:
    assert stack_facts({}, "prod") == rules.StackFacts(production=True, wheels_volume=None)
    assert stack_facts({}, "dev").production is False


def test_the_rules_module_needs_only_the_standard_library() -> None:
    """The policy pack's virtualenv has pulumi and pulumi-policy only: policy.rules must not pull in the program."""
    code = "import sys, policy.rules; print(sorted({m.split('.')[0] for m in sys.modules} & {'pulumi', 'pydantic', 'yaml', 'pulumi_databricks', 'infra.settings'}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr


# --- prod-job-run-as


def test_prod_job_without_run_as(prod: Plan) -> None:
    """A production job without run_as would run as whoever last ran `pulumi up`."""
    del job(prod, "rlm-executor")["runAs"]
    (v,) = only(check_plan(prod, production=True), rules.RUN_AS)
    assert (v.resource_type, v.name) == (rules.JOB, "rlm-executor") and "run_as" in v.message


def test_dev_jobs_need_no_run_as(plans: dict[str, tuple[Plan, bool]]) -> None:
    """The same dev plan breaks only the production rules, when judged as production: run-as once per job, and
    protection once per unprotected data resource (dev data is retained, not protected)."""
    dev = plans["dev"][0]
    violations = check_plan(dev, production=True)
    assert rules_of(violations) == {rules.RUN_AS, rules.PROTECTED}
    assert sorted(v.name for v in violations if v.rule == rules.RUN_AS) == sorted(r.name for r in dev.all("Job"))
    data = [r.name for r in dev.resources if r.type in rules.PROTECTED_IN_PRODUCTION]
    assert sorted(v.name for v in violations if v.rule == rules.PROTECTED) == sorted(data)


# --- no-plaintext-secrets


def _params(plan: Plan) -> list[Any]:
    params: list[Any] = job(plan)["tasks"][0]["pythonWheelTask"]["parameters"]
    return params


BREAKS: list[tuple[str, Callable[[Plan], None], str]] = [
    ("flag named like a secret", lambda p: _params(p).extend(["--api-key", "abc123"]), "named like a secret (--api-key)"),
    ("inline flag", lambda p: _params(p).append("--password=hunter2"), "named like a secret (--password)"),
    ("NAME=value argument", lambda p: _params(p).append("DB_PASSWORD=hunter2"), "named like a secret (DB_PASSWORD)"),
    ("token as a positional value", lambda p: _params(p).append(DAPI), "Databricks personal access token"),
    ("value given to a --*-secret flag", lambda p: _params(p).__setitem__(_params(p).index("--token-secret") + 1, DAPI),
     "--token-secret takes a secret reference"),
    ("job parameter default", lambda p: job(p)["parameters"].append({"name": "aws_key", "default": "AKIAIOSFODNN7EXAMPLE"}),
     "AWS access key id"),
    ("job tag named like a secret", lambda p: job(p)["tags"].update(ci_token="abc"), "tags.ci_token"),
    ("job tag value", lambda p: job(p)["tags"].update(owner=GHP), "GitHub token"),
    ("named parameter", lambda p: job(p)["tasks"][0]["pythonWheelTask"].update(namedParameters={"password": "hunter2"}),
     "namedParameters.password"),
    ("cluster environment variable", lambda p: job(p, "rlm-executor")["tasks"][0].update(
        newCluster={"sparkEnvVars": {"DATABRICKS_TOKEN": "abc"}}), "sparkEnvVars.DATABRICKS_TOKEN"),
    ("job environment variable", lambda p: job(p).update(environmentVariables=[
        {"environmentVariablesKey": "e", "spec": {"variables": {"OPENAI_API_KEY": "sk-" + "x1Y2" * 8}}}]), "OPENAI_API_KEY"),
    ("Spark setting with a URL password", lambda p: job(p, "rlm-executor")["tasks"][0].update(
        newCluster={"sparkConf": {"spark.jdbc.url": "jdbc:postgresql://db/x?user=a&password=hunter2"}}), "inline password"),
    ("a Pulumi secret in the job settings", lambda p: _params(p).extend(["--model", WRAPPED]), "holds a secret value"),
    ("a Pulumi secret as a parameter default", lambda p: job(p)["parameters"].append({"name": "x", "default": WRAPPED}),
     "parameters[1] x (default): holds a secret value"),
    ("a Pulumi secret as a whole map", lambda p: job(p).update(tags={**WRAPPED, "value": {"team": "x"}}), "tags: holds a secret value"),
    ("long random string", lambda p: _params(p).extend(["--seed", "xK9mP2vL8nQ4wR7tY1uZ3aB6cD5eF0gH"]), "long random string"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "brk", "expected"), BREAKS, ids=[b[0] for b in BREAKS])
def test_secret_looking_values_in_plain_job_settings(
    prod: Plan, case: str, brk: Callable[[Plan], None], expected: str
) -> None:
    """Each way a secret can land in plain job settings is one violation, and the message never shows the value."""
    brk(prod)
    (v,) = only(check_plan(prod, production=True), rules.NO_SECRETS)
    assert expected in v.message, v.message
    for value in (
        "abc123",
        "hunter2",
        DAPI,
        GHP,
        "AKIAIOSFODNN7EXAMPLE",
        "s3cr3t-value",
        "xK9mP2vL8nQ4wR7tY1uZ3aB6cD5eF0gH",
    ):
        assert value not in v.message


ALLOWED: list[tuple[str, str | None, Any]] = [
    ("secret reference", "--token", "{{secrets/mlflow-eval/databricks-token}}"),
    ("job parameter template", "--api-key", "{{job.parameters.api_key}}"),
    ("reference in a longer value", "--auth-token", "Bearer {{secrets/scope/token}}"),
    ("scope/key given to a --*-secret flag", "--token-secret", "mlflow-eval/databricks-token"),
    ("NAME=scope/key given to a --*-secret flag", "--env-secret", "GOOGLE_API_KEY=adk-secrets/google-api-key"),
    ("a scope name", "--secret-scope", "mlflow-eval"),
    ("max tokens", "--max-tokens", "4096"),
    ("hashes and ids", "--commit", "0123456789abcdef0123456789abcdef01234567"),
    ("a UUID", "--principal", "6f1c2a4e-0b7d-4c1e-9a53-2f8e7d6c5b4a"),
    ("a TitleCase path", "--path", "s3://My-Bucket/Some/Path/To/File2024/Data01/X"),
    ("an empty value", "--token", ""),
]


@pytest.mark.parametrize(("case", "flag", "value"), ALLOWED, ids=[a[0] for a in ALLOWED])
def test_references_and_ordinary_values_pass(prod: Plan, case: str, flag: str, value: str) -> None:
    """References ({{secrets/...}}, {{job.parameters...}}, <scope>/<key> for --*-secret flags) and ordinary values
    (ids, hashes, paths, max-tokens) are not secrets."""
    _params(prod).extend([flag, value])
    assert check_plan(prod, production=True) == []


def test_tags_may_hold_references(prod: Plan) -> None:
    job(prod)["tags"].update(api_token="{{secrets/scope/token}}", max_tokens="4096", commit="0123456789abcdef" * 2)
    assert check_plan(prod, production=True) == []


def test_secret_tag_on_a_schema(prod: Plan) -> None:
    """Tags on Unity Catalog objects (EntityTagAssignment) are checked too."""
    tag = next(r for r in prod.resources if r.type == rules.ENTITY_TAG)
    tag.inputs.update(tagKey="api_token", tagValue="abc")
    (v,) = only(check_plan(prod, production=True), rules.NO_SECRETS)
    assert v.name == tag.name and "tag api_token" in v.message


def test_secret_tag_through_the_program() -> None:
    """A stack that tags everything with a secret-named plain value breaks the rule on every job and tag."""
    plan = program_plan({"deployment": {"tags": {"ci_token": "plain-value-123"}}})
    violations = only(check_plan(plan, production=False), rules.NO_SECRETS)
    assert {v.resource_type for v in violations} == {rules.JOB, rules.ENTITY_TAG}
    assert len([v for v in violations if v.resource_type == rules.JOB]) == len(plan.all("Job"))


def test_looks_secret_catches_random_tokens() -> None:
    """Most long random tokens are caught by their shape alone; hex, UUIDs and CamelCase words are not."""
    import secrets

    caught = sum(looks_secret(secrets.token_urlsafe(32)) is not None for _ in range(200))
    assert caught >= 180
    for text in ("HealthMonitorAgentProductionDeployment2024v2", "agent_jobs-0.1.0+gf9c89021-py3-none-any.whl"):
        assert looks_secret(text) is None


# --- data-retained


@pytest.mark.parametrize("short", ["Schema", "Volume"])
def test_schema_or_volume_not_retained(prod: Plan, short: str) -> None:
    """A schema or volume without retain_on_delete would be deleted with its data when dropped from the program."""
    victim = prod.all(short)[0]
    victim.retain_on_delete = False
    (v,) = only(check_plan(prod, production=True), rules.RETAINED)
    assert (v.resource_type, v.name) == (victim.type, victim.name)


def test_unknown_retain_on_delete_is_not_judged() -> None:
    """`retain_on_delete=None` (the policy pack cannot see it) reports nothing rather than guessing."""
    assert check(rules.SCHEMA, "s", {"name": "s"}, retain_on_delete=None, production=True, wheels_volume=None) == []


# --- job-tags-and-limits


@pytest.mark.parametrize(
    ("key", "expected"),
    [("tags", "without tags"), ("timeoutSeconds", "timeout_seconds"), ("maxConcurrentRuns", "max_concurrent_runs")],
)
def test_job_without_tags_or_limits(prod: Plan, key: str, expected: str) -> None:
    """Every job is tagged (cost attribution), times out, and bounds its concurrent runs."""
    del job(prod, "health-monitor-setup")[key]
    (v,) = only(check_plan(prod, production=True), rules.JOB_LIMITS)
    assert v.name == "health-monitor-setup" and expected in v.message


def test_zero_limits_count_as_missing(prod: Plan) -> None:
    job(prod).update(timeoutSeconds=0.0, maxConcurrentRuns=0.0, tags={})
    assert len(only(check_plan(prod, production=True), rules.JOB_LIMITS)) == 3


# --- wheels-from-volume


def _environment_wheel(plan: Plan, path: str) -> None:
    job(plan, "health-monitor-deployment")["environments"][0]["spec"]["dependencies"].append(path)


def _library_wheel(plan: Plan, path: str) -> None:
    job(plan, "rlm-orchestrator")["tasks"][0]["libraries"] = [{"whl": path}]


@pytest.mark.parametrize(
    ("place", "path"),
    [
        (_environment_wheel, "/Volumes/main/agents_dev/wheels/agent_jobs-0.1.0-py3-none-any.whl"),  # dev's volume
        (_environment_wheel, "https://user:pw@example.com/simple/x-1.0-py3-none-any.whl"),
        (_library_wheel, "dbfs:/FileStore/wheels/agent_jobs-0.1.0-py3-none-any.whl"),
        (_library_wheel, "/Volumes/main/agents/wheels/../other/agent_jobs-0.1.0-py3-none-any.whl"),
        (_library_wheel, "/Volumes/main/agents/wheels_old/agent_jobs-0.1.0-py3-none-any.whl"),
    ],
)
def test_wheel_outside_the_wheels_volume(prod: Plan, place: Callable[[Plan, str], None], path: str) -> None:
    """A wheel from anywhere but the stack's wheels volume (another stack's, DBFS, a URL, a `..` escape) is code
    the program did not build."""
    place(prod, path)
    (v,) = [v for v in check_plan(prod, production=True) if v.rule == rules.WHEELS]
    assert "/Volumes/main/agents/wheels/" in v.message and "pw@" not in v.message


def test_wheels_volume_falls_back_to_the_volumes_output(prod: Plan) -> None:
    prod.resources = [r for r in prod.resources if not (r.type == rules.FILE and r.name == "wheel")]
    assert plan_wheels_volume(prod) == "/Volumes/main/agents/wheels"
    prod.outputs.pop("volumes")
    assert plan_wheels_volume(prod) is None
    _library_wheel(prod, "dbfs:/x.whl")
    assert check_plan(prod, production=True) == []  # unknown volume: not judged


# --- python -m infra preview


def preview(*args: str) -> Result:
    """`python -m infra preview ARGS` in this process: exit status, stdout, stderr."""
    return call(main, ["preview", *args], cwd=ROOT)


@pytest.fixture(scope="module")
def bad_stack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev stack file, plus a tag named like a secret (valid config, broken policy)."""
    doc = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    doc["config"][f"{PROJECT}:deployment"] = {"tags": {"ci_token": "plain-value-123"}}
    path = tmp_path_factory.mktemp("stack") / "Pulumi.tmp.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_strict_exits_3_on_a_violation(bad_stack: Path) -> None:
    """--strict: the document is still written, every violation listed in it, and the exit status is 3; a second
    run prints the same bytes. (That a real `python -m infra` process exits with main()'s status and prints the
    same bytes as this one is tests/tools/test_preview.py's subprocess test.)"""
    first = preview("--stack", "tmp", "--config-file", str(bad_stack), "--json", "--strict")
    assert first.returncode == 3, first.stderr
    assert "policy violation(s) (--strict)" in first.stderr and "plain-value-123" not in first.stderr
    doc = json.loads(first.stdout)
    assert "plain-value-123" not in json.dumps(doc["violations"])  # the value is in the inputs, never in a message
    assert list(doc)[:4] == ["project", "stack", "resources", "outputs"] and list(doc)[-1] == "violations"
    assert doc["violations"] and {v["rule"] for v in doc["violations"]} == {rules.NO_SECRETS}
    assert all(list(v) == ["rule", "resource_type", "name", "message"] for v in doc["violations"])
    again = preview("--stack", "tmp", "--config-file", str(bad_stack), "--json", "--strict")
    assert again.returncode == 3 and again.stdout == first.stdout  # byte-identical, violations included


def test_without_strict_violations_are_listed_and_exit_0(bad_stack: Path) -> None:
    result = preview("--stack", "tmp", "--config-file", str(bad_stack))
    assert result.returncode == 0, result.stderr
    section = result.stdout.split("\nPolicy violations (", 1)[1]
    assert "[no-plaintext-secrets] databricks:index/job:Job  eval-agent: tags.ci_token" in section
    assert result.stdout.index("\nOutputs\n") < result.stdout.index("\nPolicy violations (")


def test_strict_exits_0_on_a_clean_stack() -> None:
    result = preview("--stack", "prod", "--strict")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(f"Policy checks\n  all {len(rules.RULES)} rules pass ({', '.join(rules.RULES)})\n")


# --- the policy pack, called directly


@pytest.fixture(scope="module")
def pack() -> Any:
    """policy/__main__.py imported as a module: its policies, without starting the pack's server."""
    return importlib.import_module("policy.__main__")


class NotApplicable(Exception):
    pass


class Args(SimpleNamespace):
    """A minimal stand-in for pulumi_policy.ResourceValidationArgs."""

    def get_config(self) -> dict[str, Any]:
        return dict(self.config)

    def not_applicable(self, reason: str | None = None) -> None:
        raise NotApplicable(reason)


def through_pack(
    pack: Any, rule: str, resource: Recorded, config: dict[str, Any] | None = None, protect: bool = False
) -> list[str]:
    """Run one rule's policy on a resource as the engine would hand it over (inputs unwrapped); its messages."""
    (policy,) = [p for p in pack.POLICIES if p.name == rule]
    args = Args(resource_type=resource.type, props=unwrap(resource.inputs), name=resource.name,
                urn=f"urn:pulumi:prod::{PROJECT}::{resource.type}::{resource.name}",
                opts=SimpleNamespace(protect=protect), config=config or {})  # fmt: skip
    reported: list[str] = []
    policy.validate(args, lambda message, urn=None: reported.append(message))
    return reported


PROD_CONFIG = {"production": True}


def test_pack_has_one_mandatory_policy_per_rule(pack: Any) -> None:
    from pulumi_policy import EnforcementLevel

    assert [p.name for p in pack.POLICIES] == list(rules.RULES)
    assert all(p.enforcement_level == EnforcementLevel.MANDATORY for p in pack.POLICIES)
    assert [p.description for p in pack.POLICIES] == [r.description for r in rules.RULES.values()]


def test_pack_passes_the_prod_plan(pack: Any, plans: dict[str, tuple[Plan, bool]]) -> None:
    """Every policy, on every resource of the prod plan (schemas and volumes are protected there), reports nothing."""
    plan = plans["prod"][0]
    not_judged = []
    for policy in pack.POLICIES:
        for r in plan.resources:
            config = {"production": True, "wheels_volume": "/Volumes/main/agents/wheels"}
            try:
                assert through_pack(pack, policy.name, r, config, protect=r.protect) == [], (policy.name, r.name)
            except NotApplicable:
                not_judged.append((policy.name, r.type))
    # Only the wheel's file is unprotected data (content-addressed, replaced by design): the pack cannot see its
    # retain_on_delete, so it says the rule does not apply rather than guess.
    assert set(not_judged) == {(rules.RETAINED, rules.FILE)}


def test_pack_run_as(pack: Any, prod: Plan) -> None:
    eval_job = prod.one("Job", "eval-agent")
    del eval_job.inputs["runAs"]
    (message,) = through_pack(pack, rules.RUN_AS, eval_job, PROD_CONFIG)
    assert "without run_as" in message
    assert through_pack(pack, rules.RUN_AS, eval_job, {"production": False}) == []


def test_pack_secrets(pack: Any, prod: Plan) -> None:
    """In the pack the engine has already unwrapped secrets: the value's shape is what gives it away."""
    _params(prod).extend(["--seed", DAPI])
    (message,) = through_pack(pack, rules.NO_SECRETS, prod.one("Job", "eval-agent"))
    assert "Databricks personal access token" in message and DAPI not in message


def test_pack_retained(pack: Any, prod: Plan) -> None:
    """The engine does not tell a pack about retain_on_delete: protected data passes, unprotected data is not
    judged (not applicable, with the reason), never guessed."""
    volume = prod.all("Volume")[0]
    assert through_pack(pack, rules.RETAINED, volume, protect=True) == []
    with pytest.raises(NotApplicable, match="does not pass retain_on_delete"):
        through_pack(pack, rules.RETAINED, volume, protect=False)


def test_pack_retained_uses_the_option_when_the_engine_gives_it(pack: Any, prod: Plan) -> None:
    (policy,) = [p for p in pack.POLICIES if p.name == rules.RETAINED]
    volume = prod.all("Volume")[0]
    args = Args(resource_type=volume.type, props=unwrap(volume.inputs), name=volume.name, urn="u",
                opts=SimpleNamespace(protect=False, retain_on_delete=False), config={})  # fmt: skip
    reported: list[str] = []
    policy.validate(args, lambda message, urn=None: reported.append(message))
    assert len(reported) == 1 and "not retain_on_delete" in reported[0]


def test_pack_job_limits(pack: Any, prod: Plan) -> None:
    del job(prod)["timeoutSeconds"]
    (message,) = through_pack(pack, rules.JOB_LIMITS, prod.one("Job", "eval-agent"))
    assert "timeout_seconds" in message


def test_pack_wheels(pack: Any, prod: Plan) -> None:
    _library_wheel(prod, "dbfs:/FileStore/x-1.0-py3-none-any.whl")
    config = {"wheels_volume": "/Volumes/main/agents/wheels/"}
    (message,) = through_pack(pack, rules.WHEELS, prod.one("Job", "rlm-orchestrator"), config)
    assert "dbfs:/FileStore/x-1.0-py3-none-any.whl" in message


def test_pack_reads_production_and_wheels_volume_from_the_stack_config(
    pack: Any, prod: Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without policy config, the stack's own config decides; without either, the wheels rule is not applicable."""
    del job(prod, "rlm-orchestrator")["runAs"]
    _library_wheel(prod, "dbfs:/x-1.0-py3-none-any.whl")
    orchestrator = prod.one("Job", "rlm-orchestrator")
    monkeypatch.setattr(
        pack,
        "stack_config",
        lambda: {"environment": "prod", "catalog": '{"name":"main"}', "schema": '{"name":"agents"}'},
    )
    assert len(through_pack(pack, rules.RUN_AS, orchestrator)) == 1
    assert len(through_pack(pack, rules.WHEELS, orchestrator)) == 1
    monkeypatch.setattr(pack, "stack_config", lambda: {"environment": "dev"})
    assert through_pack(pack, rules.RUN_AS, orchestrator) == []
    with pytest.raises(NotApplicable, match="wheels volume is unknown"):
        through_pack(pack, rules.WHEELS, orchestrator)


# --- the policy pack, served as the Pulumi CLI runs it


@pytest.fixture
def served_pack(tmp_path: Path) -> Iterator[Any]:
    """`python -m pulumi.policy <engine> policy` (what the CLI's Python analyzer runs), with a prod stack's config
    in PULUMI_CONFIG as the CLI passes it, from another working directory; a gRPC stub to it."""
    import grpc
    from pulumi.runtime.proto import analyzer_pb2_grpc

    config = {
        f"{PROJECT}:environment": "prod",
        f"{PROJECT}:catalog": '{"name":"main"}',
        f"{PROJECT}:schema": '{"name":"agents"}',
    }
    env = {**os.environ, "PULUMI_CONFIG": json.dumps(config), "PULUMI_PROJECT": PROJECT, "PULUMI_STACK": "prod",
           "PULUMI_DRY_RUN": "true"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(ROOT / "policy")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)  # the pack prints its port once it serves
        port = proc.stdout.readline().strip() if ready else ""
        assert port.isdigit(), proc.stderr.read() if proc.stderr else ""
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_served_pack_reports_mandatory_violations(served_pack: Any, prod: Plan) -> None:
    """Over the analyzer protocol: the pack's policies are mandatory, and a prod job without run_as and with a
    wheel from DBFS is reported by exactly those two rules, the production flag and the wheels volume coming from
    the stack config."""
    from google.protobuf import empty_pb2, struct_pb2
    from pulumi.runtime.proto import analyzer_pb2

    info = served_pack.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    assert info.name == "agent-platform-policies"
    assert [(p.name, p.enforcementLevel) for p in info.policies] == [(r, analyzer_pb2.MANDATORY) for r in rules.RULES]

    orchestrator = prod.one("Job", "rlm-orchestrator")
    del orchestrator.inputs["runAs"]
    _library_wheel(prod, "dbfs:/FileStore/x-1.0-py3-none-any.whl")
    props = struct_pb2.Struct()
    props.update(unwrap(orchestrator.inputs))
    request = analyzer_pb2.AnalyzeRequest(
        type=orchestrator.type, properties=props, name=orchestrator.name, urn=f"urn:pulumi:prod::{PROJECT}::x",
        options=analyzer_pb2.AnalyzerResourceOptions(),
    )  # fmt: skip
    response = served_pack.Analyze(request, timeout=30)
    assert sorted(d.policyName for d in response.diagnostics) == sorted([rules.RUN_AS, rules.WHEELS])
    assert all(d.enforcementLevel == analyzer_pb2.MANDATORY for d in response.diagnostics)


@pytest.mark.parametrize("resource_type", sorted(rules.NAMED_TYPES))
def test_a_resource_without_its_name_is_refused(resource_type: str) -> None:
    """ARCHITECTURE 4: `name=` on every Databricks resource that has one, or the provider invents it."""

    def named(inputs: dict[str, str]) -> list[str]:
        found = rules.check(resource_type, "x", inputs, retain_on_delete=True, protect=True, production=False,
                            wheels_volume=None, rules=(rules.NAMED,))  # fmt: skip
        return [v.message for v in found]

    assert named({}) and "has no name" in named({})[0]
    assert named({"name": ""})
    assert not named({"name": "dev-agent-platform-x"})


def test_every_named_type_of_the_plans_is_named() -> None:
    """The rule sees every type the program creates with a name input (a new such type joins NAMED_TYPES)."""
    import inspect

    import pulumi_databricks as db

    for stack in ("dev", "prod"):
        plan = stack_plan(stack)
        for r in plan.resources:
            if not r.type.startswith("databricks:index/"):
                continue
            cls = getattr(db, r.type.rsplit(":", 1)[-1] + "Args", None)
            if cls is not None and "name" in inspect.signature(cls.__init__).parameters:
                assert r.type in rules.NAMED_TYPES, r.type
