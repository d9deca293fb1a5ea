"""Seed 001's online path (infra.systems.serving_platform) under the recording mocks: every resource and its
inputs, the generated app.yaml against the App's resources, retained and protected data, Databricks' own strict
models (databricks-bundles) for the App and the serving endpoint, and the settings' errors."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi_databricks as db
import pytest
import yaml
from databricks.bundles.apps import App as BundleApp
from databricks.bundles.model_serving_endpoints import ModelServingEndpoint as BundleEndpoint
from pydantic import ValidationError

from infra.components.wheel import SOURCE, BuiltWheel, build_wheel
from infra.systems.serving_platform.app_code import RESOURCE_KEYS
from infra.systems.serving_platform.settings import DEV_LLM_ENDPOINT, ServingPlatformSettings
from infra.systems.serving_platform.system import ServingPlatform, ServingPlatformArgs, serving_names
from infra.tools.mocks import digest
from infra.tools.offline import Plan, Recorded, run_program, unwrap
from policy.rules import DATA_TYPES, PROTECTED_IN_PRODUCTION
from tests.conftest import PROJECT
from tests.jobs_api import to_jobs_api

VOLUME = "/Volumes/main/agents_dev/serving_prompts"
HOST = "https://dbc-1234abcd-5678.cloud.databricks.com"


@pytest.fixture(scope="module")
def wheel() -> BuiltWheel:
    return build_wheel()


def plan_for(
    wheel: BuiltWheel,
    settings: Mapping[str, Any] | None = None,
    production: bool = False,
    extra_env: Mapping[str, pulumi.Input[str]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Plan:
    s = ServingPlatformSettings.model_validate({"enabled": True, **(settings or {})})
    environment = "prod" if production else "dev"
    names = serving_names(s, environment=environment, project=PROJECT, user=None, production=production)

    def program() -> None:
        provider = db.Provider("workspace", host=HOST)
        platform = ServingPlatform(
            "serving-platform",
            ServingPlatformArgs(
                settings=s,
                names=names,
                production=production,
                protect=production,
                catalog="main",
                schema=f"agents_{environment}",
                prompts_volume_path=VOLUME,
                wheel=wheel,
                wheel_source=SOURCE,
                host=HOST,
                profile=None,
                tags={"project": PROJECT, "environment": environment},
                extra_env=extra_env or {},
                **(extra or {}),
            ),
            pulumi.ResourceOptions(provider=provider),
        )
        for key, value in platform.outputs().items():
            pulumi.export(key, value)

    return run_program(program, PROJECT, environment, {}, frozenset())


def inputs(r: Recorded) -> dict[str, Any]:
    return unwrap(r.inputs)  # type: ignore[no-any-return]


def app_yaml_of(plan: Plan) -> dict[str, Any]:
    text = base64.b64decode(inputs(plan.one("WorkspaceFile", "app-code-app-yaml"))["contentBase64"]).decode()
    return yaml.safe_load(text)  # type: ignore[no-any-return]


def test_a_development_stack_queries_a_pay_per_token_endpoint_and_lets_lakebase_suspend(wheel: BuiltWheel) -> None:
    """Cost: no provisioned endpoint in development, and a compute that suspends when idle."""
    plan = plan_for(wheel)
    assert plan.all("ModelServing") == []
    app = inputs(plan.one("App"))
    resources = {r["name"]: r for r in app["resources"]}
    assert resources["llm-endpoint"]["servingEndpoint"] == {"name": DEV_LLM_ENDPOINT, "permission": "CAN_QUERY"}
    assert resources["embeddings-endpoint"]["servingEndpoint"]["name"] == "databricks-gte-large-en"
    assert app["name"] == "dev-agent-serving" and app["computeSize"] == "MEDIUM"
    assert "computeMinInstances" not in app and "computeMaxInstances" not in app
    endpoint = inputs(plan.one("PostgresEndpoint"))["spec"]
    assert endpoint["suspendTimeoutDuration"] == "300s" and "noSuspension" not in endpoint
    assert plan.all("Permissions") == []  # nothing listed: nobody's access is touched
    assert plan.outputs["serving_llm_endpoint"] == (DEV_LLM_ENDPOINT, False)


def test_production_gets_an_always_on_provisioned_endpoint_with_ai_gateway(wheel: BuiltWheel) -> None:
    plan = plan_for(wheel, {"instances": 2, "permissions": {"users": "CAN_USE", "ops@example.com": "CAN_MANAGE"}},
                    production=True)  # fmt: skip
    serving = inputs(plan.one("ModelServing"))
    assert serving["name"] == f"prod-{PROJECT}-llm"
    (entity,) = serving["config"]["servedEntities"]
    assert entity == {
        "name": "llama-4-maverick",
        "entityName": "system.ai.llama-4-maverick",
        "entityVersion": "1",
        "provisionedModelUnits": 50,
        "scaleToZeroEnabled": False,
    }
    assert serving["config"]["trafficConfig"]["routes"] == [
        {"servedEntityName": "llama-4-maverick", "trafficPercentage": 100}
    ]
    assert serving["aiGateway"] == {
        "usageTrackingConfig": {"enabled": True},
        "inferenceTableConfig": {"enabled": True, "catalogName": "main", "schemaName": "agents_prod",
                                 "tableNamePrefix": "serving_llm"},
    }  # fmt: skip
    app = inputs(plan.one("App"))
    assert (app["computeMinInstances"], app["computeMaxInstances"]) == (2, 2)
    llm = next(r for r in app["resources"] if r["name"] == "llm-endpoint")
    assert llm["servingEndpoint"]["name"] == f"prod-{PROJECT}-llm"
    perms = inputs(plan.one("Permissions"))
    assert perms["appName"] == "prod-agent-serving"
    assert perms["accessControls"] == [
        {"userName": "ops@example.com", "permissionLevel": "CAN_MANAGE"},
        {"groupName": "users", "permissionLevel": "CAN_USE"},
    ]
    endpoint = inputs(plan.one("PostgresEndpoint"))["spec"]
    assert endpoint["noSuspension"] is True and "suspendTimeoutDuration" not in endpoint
    assert inputs(plan.one("PostgresProject"))["spec"]["defaultEndpointSettings"]["noSuspension"] is True
    assert inputs(plan.one("PostgresBranch"))["spec"] == {"noExpiry": True, "isProtected": True}


def test_lakebase_is_one_project_database_role_and_uc_catalog(wheel: BuiltWheel) -> None:
    plan = plan_for(wheel)
    project = inputs(plan.one("PostgresProject"))
    assert project["projectId"] == f"dev-{PROJECT}-memory" and project["purgeOnDelete"] is False
    assert project["spec"]["pgVersion"] == 17
    assert {"key": "environment", "value": "dev"} in project["spec"]["customTags"]
    branch = plan.one("PostgresBranch")
    assert inputs(branch)["parent"] == f"projects/dev-{PROJECT}-memory"
    assert inputs(branch)["branchId"] == "production" and inputs(branch)["replaceExisting"] is True
    database = inputs(plan.one("PostgresDatabase"))
    owner = plan.one("PostgresRole", "memory-owner")
    assert inputs(owner)["spec"] == {"postgresRole": "agent_memory_owner"} and inputs(owner)["parent"] == branch.id
    assert database["parent"] == branch.id
    assert database["spec"] == {"postgresDatabase": "agent_memory", "role": owner.id}
    catalog = inputs(plan.one("PostgresCatalog"))
    assert catalog == {
        "catalogId": "dev_agent_memory",
        "spec": {"branch": branch.id, "postgresDatabase": "agent_memory"},
    }
    client_id = plan.outputs["serving_app_service_principal"][0]
    role = inputs(plan.one("PostgresRole", "app-role"))
    assert role["roleId"] == f"sp-{client_id}" and role["replaceExisting"] is True
    assert role["spec"] == {"identityType": "SERVICE_PRINCIPAL", "postgresRole": client_id,
                            "authMethod": "LAKEBASE_OAUTH_V1"}  # fmt: skip
    app = inputs(plan.one("App"))
    postgres = next(r for r in app["resources"] if r["name"] == "postgres")["postgres"]
    assert postgres == {"branch": branch.id, "database": plan.one("PostgresDatabase").id,
                        "permission": "CAN_CONNECT_AND_CREATE"}  # fmt: skip
    assert plan.outputs["serving_memory_catalog"] == ("dev_agent_memory", False)
    assert plan.outputs["serving_memory_database"][0] == f"{branch.id}/databases/agent-memory"


@pytest.mark.parametrize("production", [False, True])
def test_data_is_retained_always_and_protected_in_production(wheel: BuiltWheel, production: bool) -> None:
    plan = plan_for(wheel, production=production)
    held = [r for r in plan.resources if r.type in DATA_TYPES]
    assert {r.type.rsplit(":", 1)[-1] for r in held} == {
        "PostgresProject", "PostgresBranch", "PostgresDatabase", "PostgresRole", "PostgresCatalog", "File",
    }  # fmt: skip
    assert all(r.retain_on_delete for r in held)
    assert all(r.protect == production for r in held if r.type in PROTECTED_IN_PRODUCTION)
    # Not data: the app, its code, the endpoint are replaceable (the code is content-addressed).
    assert not any(r.protect for r in plan.resources if r.type not in DATA_TYPES)


def test_app_yaml_takes_each_setting_from_the_resource_the_app_has(wheel: BuiltWheel) -> None:
    """Every valueFrom names a resource key of the App, and the app's settings model accepts the rest."""
    plan = plan_for(wheel, {"prompts_refresh_seconds": 120}, extra_env={"OTEL_SERVICE_NAME": "agent-serving"})
    spec = app_yaml_of(plan)
    assert spec["command"] == ["python", "-m", "agent_jobs.serving"]
    keys = {r["name"] for r in inputs(plan.one("App"))["resources"]}
    from_resources = {e["name"]: e["valueFrom"] for e in spec["env"] if "valueFrom" in e}
    assert from_resources == {
        "SERVING_LLM_ENDPOINT": "llm-endpoint",
        "SERVING_EMBEDDINGS_ENDPOINT": "embeddings-endpoint",
        "LAKEBASE_ENDPOINT": "postgres",
        "SERVING_PROMPTS_VOLUME": "prompts-volume",
    }
    assert set(from_resources.values()) == keys == set(RESOURCE_KEYS.values())
    values = {e["name"]: e["value"] for e in spec["env"] if "value" in e}
    assert values == {"SERVING_EMBEDDING_DIM": "1024", "SERVING_MEMORY_SCHEMA": "agent_memory",
                      "SERVING_PROMPTS_REFRESH_S": "120", "OTEL_SERVICE_NAME": "agent-serving"}  # fmt: skip
    # What Databricks Apps would set, plus app.yaml's env: the app's own settings loader accepts it.
    from agent_jobs.serving.settings import load_settings

    env = {**{k: v for k, v in values.items() if k.startswith("SERVING_")}, "SERVING_LLM_ENDPOINT": DEV_LLM_ENDPOINT,
           "SERVING_EMBEDDINGS_ENDPOINT": "databricks-gte-large-en", "SERVING_PROMPTS_VOLUME": VOLUME,
           "LAKEBASE_ENDPOINT": f"projects/dev-{PROJECT}-memory/branches/production/endpoints/primary",
           "PGHOST": "instance-1.database.cloud.databricks.com", "PGUSER": "6f2c1e2a-0000", "PGDATABASE": "agent_memory",
           "DATABRICKS_APP_NAME": "dev-agent-serving", "DATABRICKS_APP_PORT": "8000"}  # fmt: skip
    loaded = load_settings(env)
    assert loaded.prompts_refresh_s == 120 and loaded.pg_credential == "lakebase"


def test_the_code_is_content_addressed_and_deployed_from_where_it_was_uploaded(wheel: BuiltWheel) -> None:
    first, again = plan_for(wheel), plan_for(wheel)
    changed = plan_for(wheel, {"prompts_refresh_seconds": 60})
    files = {r.name: inputs(r)["path"] for r in first.all("WorkspaceFile")}
    assert files == {r.name: inputs(r)["path"] for r in again.all("WorkspaceFile")}  # same sources, same paths
    directory = files["app-code-app-yaml"].rsplit("/", 1)[0]
    assert directory.startswith(f"/Shared/{PROJECT}/dev/apps/dev-agent-serving/")
    assert len(directory.rsplit("/", 1)[1]) == 16
    assert sorted(p.rsplit("/", 1)[1] for p in files.values()) == sorted(["app.yaml", "requirements.txt",
                                                                          wheel.filename])  # fmt: skip
    assert all(p.startswith(directory + "/") and "+" not in p and " " not in p for p in files.values())
    requirements = base64.b64decode(inputs(first.one("WorkspaceFile", "app-code-requirements"))["contentBase64"])
    assert requirements == f"./{wheel.filename}[serving]\n".encode()
    wheel_file = inputs(first.one("WorkspaceFile", "app-code-wheel"))
    assert wheel_file["md5"] == wheel.md5
    deployment = inputs(first.one("Resource", "app-deployment"))
    assert deployment["source_code_path"] == f"/Workspace{directory}"
    assert deployment["app_name"] == "dev-agent-serving" and deployment["timeout_seconds"] == 1200
    assert deployment["host"] == HOST
    moved = inputs(changed.one("Resource", "app-deployment"))
    assert moved["content_hash"] != deployment["content_hash"]
    assert moved["source_code_path"] != deployment["source_code_path"]
    assert deployment["content_hash"] == inputs(again.one("Resource", "app-deployment"))["content_hash"]


def test_pip_reads_the_requirements_file_as_the_wheel_with_its_serving_extra(wheel: BuiltWheel, tmp_path: Path) -> None:
    """Databricks Apps runs `pip install -r requirements.txt` in the source directory."""
    (tmp_path / wheel.filename).write_bytes(wheel.path.read_bytes())
    (tmp_path / "requirements.txt").write_text(f"./{wheel.filename}[serving]\n")
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-index", "--quiet",
         "--report", str(report), "-r", "requirements.txt"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (install,) = json.loads(report.read_text())["install"]
    assert install["metadata"]["name"] == "agent_jobs" and install["requested_extras"] == ["serving"]
    assert any("fastapi" in r for r in install["metadata"]["requires_dist"])


def test_the_base_prompts_are_uploaded_under_base(wheel: BuiltWheel) -> None:
    plan = plan_for(wheel)
    prompt = inputs(plan.one("File", "prompts-fraud-detector"))
    assert prompt["path"] == f"{VOLUME}/base/fraud_detector.md"
    packaged = (SOURCE / "src/agent_jobs/serving/agents/fraud_detector.md").read_bytes()
    assert base64.b64decode(prompt["contentBase64"]) == packaged
    volume = next(r for r in inputs(plan.one("App"))["resources"] if r["name"] == "prompts-volume")
    assert volume["ucSecurable"] == {"securableType": "VOLUME", "securableFullName": "main.agents_dev.serving_prompts",
                                     "permission": "READ_VOLUME"}  # fmt: skip


def test_every_resource_goes_through_the_explicit_provider_and_has_its_outputs(wheel: BuiltWheel) -> None:
    plan = plan_for(wheel, production=True)
    # (The deployment is a dynamic resource: its own provider, with the stack's host.)
    assert all(r.provider and "workspace" in r.provider for r in plan.resources if r.custom and
               not r.type.startswith(("pulumi:providers:", "pulumi-python:dynamic:")))  # fmt: skip
    outputs = {k: v for k, (v, _) in plan.outputs.items()}
    assert outputs["serving_app_url"].startswith("https://prod-agent-serving-")
    assert outputs["serving_memory_project"] == f"projects/prod-{PROJECT}-memory"
    assert all(outputs.values()) and not any(secret for _, secret in plan.outputs.values())


@pytest.mark.parametrize("production", [False, True])
def test_the_app_and_the_endpoint_parse_with_databricks_own_strict_models(wheel: BuiltWheel, production: bool) -> None:
    plan = plan_for(wheel, {"instances": 2, "user_api_scopes": ["serving.serving-endpoints"]}, production=production)
    app = BundleApp.from_dict(to_jobs_api(plan.one("App").inputs))
    assert [r.name for r in app.resources] == list(RESOURCE_KEYS.values())
    assert app.user_api_scopes == ["serving.serving-endpoints"]
    for serving in plan.all("ModelServing"):
        parsed = BundleEndpoint.from_dict(to_jobs_api(serving.inputs))
        assert parsed.config is not None and parsed.config.served_entities[0].scale_to_zero_enabled is False


def test_a_provisioned_endpoint_can_be_shared_and_the_app_given_a_secret(wheel: BuiltWheel) -> None:
    """The telemetry helper's way in: a secret as an app resource, its variable valueFrom that resource."""
    secret = db.AppResourceArgs(
        name="zerobus-secret",
        secret=db.AppResourceSecretArgs(scope="serving-dev", key="zerobus_client_secret", permission="READ"),
    )
    llm = {"kind": "provisioned_throughput", "endpoint_permissions": {"data-scientists": "CAN_QUERY"}}
    plan = plan_for(wheel, {"llm": llm}, extra={"extra_resources": (secret,),
                    "extra_env_from": {"ZEROBUS_CLIENT_SECRET": "zerobus-secret"}, "extras": ("serving", "telemetry")})  # fmt: skip
    perms = inputs(plan.one("Permissions", "llm-permissions"))
    serving = plan.one("ModelServing")
    assert perms["servingEndpointId"] == digest(serving.type, serving.name)[:32]  # its id output, not its name
    assert perms["accessControls"] == [{"groupName": "data-scientists", "permissionLevel": "CAN_QUERY"}]
    resources = {r["name"]: r for r in inputs(plan.one("App"))["resources"]}
    assert resources["zerobus-secret"]["secret"]["key"] == "zerobus_client_secret"
    assert {"name": "ZEROBUS_CLIENT_SECRET", "valueFrom": "zerobus-secret"} in app_yaml_of(plan)["env"]
    requirements = base64.b64decode(inputs(plan.one("WorkspaceFile", "app-code-requirements"))["contentBase64"])
    assert requirements.decode().endswith("[serving,telemetry]\n")


def test_extra_variables_cannot_shadow_the_apps_or_the_platforms(wheel: BuiltWheel) -> None:
    for name, message in [("SERVING_LLM_ENDPOINT", "already set"), ("PGHOST", "Databricks Apps sets"),
                          ("lower", "upper-case")]:  # fmt: skip
        with pytest.raises(Exception, match=message):
            plan_for(wheel, extra_env={name: "x"})


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({"enabled": "yes"}, "is not a boolean"),
        ({"app_name_suffix": "Agent_Serving"}, "app name part"),
        ({"compute_size": "SMALL"}, "MEDIUM"),
        ({"instances": 0}, "greater than or equal to 1"),
        ({"permissions": {"users": "CAN_QUERY"}}, "CAN_USE"),
        ({"llm": {"kind": "provisioned_throughput", "entity_name": "databricks-dbrx-instruct"}}, "system.ai"),
        (
            {"llm": {"kind": "provisioned_throughput", "scale_to_zero_enabled": True}},
            "not a known setting; allowed here: end",
        ),
        ({"llm": {"kind": "autoscaling"}}, "provisioned_throughput"),
        ({"memory": {"min_cu": 8, "max_cu": 2}}, "min_cu <= max_cu"),
        ({"memory": {"database": "agent-memory"}}, "Postgres identifier"),
        ({"prompts_refresh_seconds": 1}, "greater than or equal to 5"),
        ({"hot_pool": {"min_instances": 2}}, "is not a known setting"),
    ],
)
def test_bad_settings_are_refused_with_what_is_allowed(values: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        ServingPlatformSettings.model_validate(values)


def test_defaults_follow_the_environment() -> None:
    s = ServingPlatformSettings()
    assert s.llm_for(False).kind == "existing_endpoint" and s.llm_for(True).kind == "provisioned_throughput"
    assert (s.memory.always_on_for(False), s.memory.always_on_for(True)) == (False, True)
    names = serving_names(s, environment="dev", project=PROJECT, user="alice", production=False)
    assert (names.app, names.uc_catalog) == ("dev-alice-agent-serving", "dev_alice_agent_memory")
    with pytest.raises(ValueError, match="more than 30 characters"):
        serving_names(ServingPlatformSettings(app_name_suffix="a-very-long-app-name"), environment="staging",
                      project=PROJECT, user="someone", production=False)  # fmt: skip


def test_a_secret_extra_variable_is_refused_rather_than_written_into_app_yaml(wheel: BuiltWheel) -> None:
    with pytest.raises(Exception, match=r"\['ZEROBUS_CLIENT_SECRET'\] are secret"):
        plan_for(wheel, extra_env={"ZEROBUS_CLIENT_SECRET": pulumi.Output.secret("s3cr3t")})


@pytest.mark.parametrize("production", [False, True])
def test_the_platforms_policy_finds_nothing_to_object_to(wheel: BuiltWheel, production: bool) -> None:
    """Retained and protected data, paths the Files API keeps, no plaintext secret: the same rules as preview."""
    from policy.rules import check_plan

    assert check_plan(plan_for(wheel, production=production), production=production) == []
