"""The whole program (`__main__.py`) for every stack file, under the same mock engine as the preview."""

from __future__ import annotations

import runpy
from pathlib import Path

import pulumi
import pytest

from infra.tools.offline import Plan, preview_stack, run_program, unwrap
from tests.conftest import PROJECT, ROOT, STACK_FILES, raw_config, stack_preview

STACKS = [f.removeprefix("Pulumi.").removesuffix(".yaml") for f in STACK_FILES]


@pytest.fixture(scope="module", params=STACKS)
def plan(request: pytest.FixtureRequest) -> Plan:
    result, _ = stack_preview(request.param)
    return result


def test_every_databricks_resource_uses_the_stack_workspace(plan: Plan) -> None:
    """One explicit provider, bound to the stack's host; no resource or lookup falls back to the default one."""
    provider = plan.one("databricks", "workspace")
    assert provider.inputs["host"].startswith("https://")
    custom = [r for r in plan.resources if r.custom and r is not provider]
    databricks = [r for r in custom if r.type.startswith("databricks:")]
    assert databricks and all((r.provider or "").split("::")[-2] == "workspace" for r in databricks)
    assert plan.invokes == [("databricks:index/getCatalog:getCatalog", databricks[0].provider)]
    # The resources outside the provider (the model's deployment-job link, the app's deployment) call the same
    # workspace.
    dynamic = [r for r in custom if r not in databricks]
    assert {r.name for r in dynamic} == {"health-monitor-deployment-link", "app-deployment"}
    assert all(
        r.type == "pulumi-python:dynamic:Resource" and r.inputs["host"] == provider.inputs["host"] for r in dynamic
    )


def test_data_is_retained_everywhere_and_protected_in_production(plan: Plan) -> None:
    """Schemas and volumes are always retain_on_delete; protect follows the stack (on in prod)."""
    data = plan.all("Schema") + plan.all("Volume")
    assert data and all(r.retain_on_delete for r in data)
    assert all(r.protect == (plan.stack == "prod") for r in data)


def test_every_uc_securable_is_tagged(plan: Plan) -> None:
    """project, environment, stack and managed_by label every schema and volume."""
    tagged: dict[str, set[str]] = {}
    for t in plan.all("EntityTagAssignment"):
        tagged.setdefault(t.inputs["entityName"], set()).add(t.inputs["tagKey"])
    names = {r.id for r in plan.all("Schema") + plan.all("Volume")}
    assert set(tagged) == names
    assert all({"project", "environment", "stack", "managed_by"} <= keys for keys in tagged.values())


def test_outputs_replace_the_shell_scripts(plan: Plan) -> None:
    """The outputs of ARCHITECTURE 3.3 that exist at this stage, with the stack's physical names."""
    outputs = {k: v for k, (v, secret) in plan.outputs.items() if not secret}
    schema = {"dev": "agents_dev", "prod": "agents"}[plan.stack]
    assert outputs["catalog"] == "main"
    assert outputs["schema"] == f"main.{schema}"
    assert outputs["volumes"]["wheels"] == f"/Volumes/main/{schema}/wheels"
    assert set(outputs["volumes"]) >= {"eval_sessions", "rlm_artifacts", "rlm_agent_code", "health_monitor_runbooks"}
    suffix = "" if plan.stack == "prod" else f"-{plan.stack}"  # development stacks never share a scope
    assert outputs["secret_scope"] == {"eval_agent": f"mlflow-eval{suffix}", "rlm": f"adk-secrets{suffix}"}
    assert not any(secret for _, secret in plan.outputs.values())


def test_seed_secrets_are_in_their_seed_scopes(plan: Plan) -> None:
    """Seed 000's token and seed 003's API key land in the seeds' scopes under the seeds' keys."""
    secrets = {(r.inputs["scope"], r.inputs["key"]) for r in plan.all("Secret")}
    suffix = "" if plan.stack == "prod" else f"-{plan.stack}"
    assert secrets == {(f"mlflow-eval{suffix}", "databricks-token"), (f"adk-secrets{suffix}", "google-api-key")}


def test_prod_job_identity_can_read_scopes_and_use_schemas() -> None:
    """In prod the service principal the jobs run as gets READ on each scope and its privileges on the data."""
    plan, loaded = stack_preview("prod")
    sp = loaded.settings.deployment.run_as
    assert {a.inputs["scope"] for a in plan.all("SecretAcl") if a.inputs["principal"] == sp} == {
        "mlflow-eval",
        "adk-secrets",
    }
    grants = unwrap(plan.one("Grants", "platform-grants").inputs)["grants"]
    sp_privileges = next(g["privileges"] for g in grants if g["principal"] == sp)
    assert {"USE_SCHEMA", "READ_VOLUME", "WRITE_VOLUME"} <= set(sp_privileges)
    # main is shared, not the stack's: the identity's USE_CATALOG there is a prerequisite, never a Grant (which
    # would revoke its other privileges on main).
    assert not [g for g in plan.all("Grant") if g.inputs["principal"] == sp]
    assert any(sp in item and "USE_CATALOG" in item for item in plan.prerequisites)


def test_switching_systems_off_removes_their_resources(tmp_path: Path) -> None:
    """Each system can be switched off per stack: its volumes, schema and secret scope disappear."""
    stack = tmp_path / "Pulumi.lean.yaml"
    stack.write_text(
        "config:\n"
        "  agent-platform:environment: dev\n"
        "  agent-platform:workspace: {host: https://dbc-1.cloud.databricks.com}\n"
        "  agent-platform:catalog: {name: main}\n"
        "  agent-platform:schema: {name: agents_dev}\n"
        "  agent-platform:rlm: {enabled: false}\n"
        "  agent-platform:health_monitor: {enabled: false}\n"
    )
    plan, _ = preview_stack(ROOT, "lean", stack)
    assert sorted(r.inputs["name"] for r in plan.all("Volume")) == ["eval_sessions", "wheels"]
    assert [r.inputs["name"] for r in plan.all("Schema")] == ["agents_dev"]
    assert [r.inputs["name"] for r in plan.all("SecretScope")] == ["mlflow-eval-dev"]
    assert "agent_schema" not in plan.outputs


def test_program_refuses_to_deploy_without_required_secrets() -> None:
    """Under `pulumi up` (no placeholders), a missing secret ends the program with one clear message and
    before any resource is registered."""
    with pytest.raises(pulumi.RunError) as raised:
        run_program(
            lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"),
            PROJECT, "dev", raw_config(), frozenset(),
        )  # fmt: skip
    assert "Pulumi.dev.yaml" in str(raised.value) and "pulumi config set --secret" in str(raised.value)


def test_program_deploys_with_secrets_set() -> None:
    """With the secrets set (as the CLI passes them: secret keys listed), the program registers everything."""
    secret = frozenset({f"{PROJECT}:eval_agent_databricks_token", f"{PROJECT}:rlm_google_api_key"})
    plan = run_program(
        lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"),
        PROJECT, "dev", raw_config(eval_agent_databricks_token="tok", rlm_google_api_key="key"), secret,
    )  # fmt: skip
    values = {unwrap(s.inputs)["stringValue"] for s in plan.all("Secret")}
    assert values == {"tok", "key"}


def test_the_mock_engine_skips_source_positions_only_while_it_runs() -> None:
    """The offline engine stops Pulumi walking the Python stack at every registration (the mocks never read the
    source position) and gives the engine its own function back afterwards, whether the program fails or not."""
    from pulumi.runtime import resource

    engine_own = resource._get_stack_trace
    during: list[object] = []

    def program() -> None:
        during.append(resource._get_stack_trace)
        raise ValueError("the program fails")

    with pytest.raises(Exception, match="the program fails"):
        run_program(program, PROJECT, "dev", {}, frozenset())
    (replaced,) = during
    assert replaced is not engine_own and not replaced().frames  # type: ignore[operator]
    assert resource._get_stack_trace is engine_own


@pytest.mark.parametrize("leftover", ["none", "closed"])
def test_the_mock_engine_runs_after_asyncio_run_left_the_thread_without_a_loop(leftover: str) -> None:
    """`asyncio.run()` (the wheel's async code, a test before this one) leaves the thread with no current event
    loop; a closed one is as unusable. The offline engine, which Pulumi runs on the current loop, makes itself
    one instead of failing with "There is no current event loop"."""
    import asyncio

    async def nothing() -> None:
        return None

    asyncio.run(nothing())
    if leftover == "closed":
        loop = asyncio.new_event_loop()
        loop.close()
        asyncio.set_event_loop(loop)

    def program() -> None:
        pulumi.export("answer", 42)

    assert run_program(program, PROJECT, "dev", {}, frozenset()).outputs == {"answer": (42, False)}
