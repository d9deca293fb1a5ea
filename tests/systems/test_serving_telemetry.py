"""Seed 001's offline path under the recording mocks: the Zerobus tables and their documented columns, the views'
SQL, the app's grants, the dashboard, the nightly optimiser job and its schedule, and the settings behind them.

A tiny program creates a provider and the two components, as infra.platform will; every assertion is on the
plan recorded after the run. The wheel's own code is the reference wherever it exists: the view SQL its Spark
tests ran, the dashboard it ships, the environment parser the app starts with, the optimiser's argparse.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pulumi_databricks as db
import pytest
from databricks.bundles.jobs import Job as BundleJob
from pydantic import ValidationError

from agent_jobs.prompt_optimizer.cli import parser as optimizer_parser
from agent_jobs.telemetry_otel import tables as wheel_tables
from agent_jobs.telemetry_otel.settings import TelemetrySettings as AppTelemetrySettings
from infra.components.jobs import JobCommon
from infra.components.wheel import SOURCE
from infra.settings import NotificationSettings
from infra.settings.messages import describe
from infra.systems.serving_platform.offline_settings import PromptOptimizerSettings, TelemetrySettings
from infra.systems.serving_platform.optimizer import PromptOptimizerJob, PromptOptimizerJobArgs
from infra.systems.serving_platform.telemetry import (
    CATALOG_PRIVILEGES,
    SCHEMA_PRIVILEGES,
    TelemetryTables,
    TelemetryTablesArgs,
    app_telemetry_env,
    load,
    table_names,
)
from infra.tools.offline import Plan, run_program, unwrap
from policy.rules import check_plan
from tests.jobs_api import job_api_shape

PROJECT = "agent-platform"
HOST = "https://dbc-1234abcd-5678.cloud.databricks.com"
APP_SP = "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
RUN_AS = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
WAREHOUSE = "1a2b3c4d5e6f7a8b"
ZEROBUS = "https://1234567890123456.zerobus.us-west-2.cloud.databricks.com"
WHEEL = "/Volumes/main/agents_dev/wheels/agent_jobs-0.1.0.dev7-py3-none-any.whl"
PROMPTS = "/Volumes/main/agents_dev/prompts"
ENABLED = {"zerobus_endpoint": ZEROBUS, "warehouse_id": WAREHOUSE}


def plan_of(
    telemetry: dict[str, Any] | None = None,
    optimizer: dict[str, Any] | None = None,
    *,
    production: bool = False,
    wheel_source: Path = SOURCE,
) -> Plan:
    tel = TelemetrySettings.model_validate({**ENABLED, **(telemetry or {})})
    opt = PromptOptimizerSettings.model_validate(optimizer or {})

    def program() -> None:
        provider = db.Provider("workspace", host=HOST)
        opts = pulumi.ResourceOptions(provider=provider)
        t = TelemetryTables(
            "telemetry",
            TelemetryTablesArgs(
                settings=tel, catalog="main", schema="agents_dev", app_principal=APP_SP,
                dashboard_name="Agent serving (agent-platform dev)", host=HOST, protect=production,
                wheel_source=wheel_source,
            ),
            opts,
        )  # fmt: skip
        common = JobCommon(
            tags={"project": PROJECT, "environment": "dev"}, run_as=RUN_AS if production else None,
            notifications=NotificationSettings(), permissions={}, development=not production,
        )  # fmt: skip
        job = PromptOptimizerJob(
            "prompt-optimizer",
            PromptOptimizerJobArgs(
                settings=opt, common=common, job_name="dev-agent-platform-prompt-optimizer", catalog="main",
                schema="agents_dev", wheel_path=WHEEL, prompts_volume_path=PROMPTS, serving_endpoint="agent-llm",
                experiment_path=opt.experiment_path or "/Shared/agent-platform/dev/prompt-optimizer",
                protect=production, wheel_source=wheel_source,
            ),
            opts,
        )  # fmt: skip
        pulumi.export("telemetry_tables", t.tables)
        pulumi.export("dashboard_url", t.dashboard_url)
        pulumi.export("app_env", app_telemetry_env(tel, t.tables))
        pulumi.export("static_names", table_names(tel, "main", "agents_dev"))
        pulumi.export("prompt_optimizer_job_id", job.job_id)
        pulumi.export("prompt_optimizer_job_url", job.job_url)

    return run_program(program, PROJECT, "test", {}, frozenset())


@pytest.fixture(scope="module")
def dev() -> Plan:
    return plan_of()


@pytest.fixture(scope="module")
def prod() -> Plan:
    return plan_of(production=True)


def inputs(plan: Plan, short: str, name: str) -> dict[str, Any]:
    return dict(unwrap(plan.one(short, name).inputs))


# --- tables, views, grants


@pytest.mark.parametrize("signal", ["spans", "metrics"])
def test_each_signal_table_has_the_documented_otlp_schema(dev: Plan, signal: str) -> None:
    """Zerobus never creates or alters a table: each must exist with Databricks' documented OTLP schema (v2),
    column for column and in order, clustered and with the properties the docs give, DDL run on the warehouse."""
    spec = load(SOURCE, "otlp_tables.json")["tables"][signal]
    table = inputs(dev, "SqlTable", f"telemetry-{signal}")
    assert table["name"] == f"agent_otel_{signal}" and (table["catalogName"], table["schemaName"]) == (
        "main",
        "agents_dev",
    )
    assert (table["tableType"], table["dataSourceFormat"], table["warehouseId"]) == ("MANAGED", "DELTA", WAREHOUSE)
    assert [(c["name"], c["type"], c["comment"]) for c in table["columns"]] == [
        (c["name"], c["type"], c["comment"]) for c in spec["columns"]
    ]
    assert table["clusterKeys"] == spec["cluster_keys"] and table["properties"]["otel.schemaVersion"] == "v2"
    assert table["properties"] == spec["properties"]


def test_no_logs_table_and_configured_names(dev: Plan) -> None:
    """Only the signals the app exports get tables (no logs); a renamed table is what the stack file says."""
    assert sorted(r.name for r in dev.all("SqlTable")) == [
        "telemetry-metrics", "telemetry-metrics-view", "telemetry-spans", "telemetry-traces-view",
    ]  # fmt: skip
    renamed = plan_of({"spans_table": "otel_spans", "metrics_table": "otel_metrics"})
    assert inputs(renamed, "SqlTable", "telemetry-spans")["name"] == "otel_spans"
    assert "`main`.`agents_dev`.`otel_spans`" in inputs(renamed, "SqlTable", "telemetry-traces-view")["viewDefinition"]


def test_views_are_the_sql_the_wheel_ran_over_exactly_these_tables(dev: Plan) -> None:
    """The views `traces` and `metrics` keep the seed's queries working: their SQL is the wheel's (run in its local
    Spark tests) over the stack's two tables, and `traces` has the columns the seed's queries read."""
    spans, metrics = "main.agents_dev.agent_otel_spans", "main.agents_dev.agent_otel_metrics"
    for view in ("traces", "metrics"):
        resource = inputs(dev, "SqlTable", f"telemetry-{view}-view")
        assert (resource["name"], resource["tableType"], resource["warehouseId"]) == (view, "VIEW", WAREHOUSE)
        assert resource["viewDefinition"] == wheel_tables.view_sql(view, spans, metrics)
        assert "columns" not in resource  # a view's columns come from its query
    traces = inputs(dev, "SqlTable", "telemetry-traces-view")["viewDefinition"]
    for column in ("AS timestamp", "AS agent_id", "AS duration_ms", "AS status"):
        assert column in traces
    assert dev.outputs["telemetry_tables"][0] == {
        "spans": spans, "metrics": metrics, "traces": "main.agents_dev.traces", "metrics_view": "main.agents_dev.metrics",
    }  # fmt: skip


def test_the_app_is_granted_exactly_what_ingestion_needs_on_exactly_the_two_tables(dev: Plan) -> None:
    """Zerobus writes as the app's service principal: MODIFY and SELECT on each table it writes, nothing on the
    views, nothing else; USE CATALOG / USE SCHEMA are named for the catalog's and schema's own grants."""
    grants = {r.name: unwrap(r.inputs) for r in dev.all("Grant")}
    assert grants == {
        f"telemetry-{signal}-app": {
            "table": f"main.agents_dev.agent_otel_{signal}", "principal": APP_SP, "privileges": ["MODIFY", "SELECT"],
        }
        for signal in ("spans", "metrics")
    }  # fmt: skip
    assert not dev.all("Grants")
    documented = load(SOURCE, "otlp_tables.json")["grants"]
    assert sorted(documented["table"]) == ["MODIFY", "SELECT"]
    assert [p.replace(" ", "_") for p in documented["schema"]] == list(SCHEMA_PRIVILEGES)
    assert [p.replace(" ", "_") for p in documented["catalog"]] == list(CATALOG_PRIVILEGES)


def test_tables_and_views_are_retained_and_protected_in_production(dev: Plan, prod: Plan) -> None:
    """Telemetry is data: never deleted with the program, protected in production (the policy agrees)."""
    for plan, protected in ((dev, False), (prod, True)):
        for table in plan.all("SqlTable"):
            assert table.retain_on_delete and table.protect is protected, table.name
    assert check_plan(prod, production=True) == [] and check_plan(dev, production=False) == []


def test_every_resource_uses_the_explicit_provider(dev: Plan) -> None:
    """A resource without the stack's provider would deploy with ambient credentials, maybe elsewhere."""
    for r in dev.resources:
        if r.custom and not r.type.startswith("pulumi:providers:"):
            assert r.provider and "::workspace::" in r.provider, r.name


# --- dashboard


def test_dashboard_is_the_wheels_json_on_the_warehouse_over_the_views(dev: Plan) -> None:
    """The Lakeview dashboard is the wheel's JSON as stable text, its queries on the warehouse setting, its
    unqualified `FROM traces` resolved to the stack's schema; every widget reads a dataset that exists."""
    dashboard = inputs(dev, "Dashboard", "telemetry-dashboard")
    assert (dashboard["warehouseId"], dashboard["datasetCatalog"], dashboard["datasetSchema"]) == (
        WAREHOUSE, "main", "agents_dev",
    )  # fmt: skip
    assert (dashboard["parentPath"], dashboard["displayName"]) == ("/Shared", "Agent serving (agent-platform dev)")
    serialized = json.loads(dashboard["serializedDashboard"])
    assert serialized == wheel_tables.dashboard()
    datasets = {d["name"]: "".join(d["queryLines"]) for d in serialized["datasets"]}
    assert {"recent_executions", "error_rate_by_agent", "latency_by_agent"} <= set(datasets)
    assert "percentile_approx(duration_ms, 0.95)" in datasets["latency_by_agent"]
    assert "INTERVAL 1 DAY" in datasets["error_rate_by_agent"]
    for sql in datasets.values():
        assert "FROM traces\n" in sql or "FROM metrics\n" in sql
    used = {q["query"]["datasetName"] for p in serialized["pages"] for w in p["layout"] for q in w["widget"]["queries"]}
    assert used <= set(datasets) and used
    assert dev.outputs["dashboard_url"][0].startswith(f"{HOST}/dashboardsv3/")
    assert not dev.one("Dashboard").retain_on_delete


def test_dashboard_warehouse_override_and_switch() -> None:
    """The dashboard can use another warehouse than the DDL, or be left out."""
    other = "0f0f0f0f0f0f0f0f"
    assert (
        inputs(plan_of({"dashboard": {"warehouse_id": other}}), "Dashboard", "telemetry-dashboard")["warehouseId"]
        == other
    )
    off = plan_of({"dashboard": {"enabled": False}})
    assert not off.all("Dashboard") and off.outputs["dashboard_url"][0] is None


# --- the app's environment


def test_app_env_is_what_the_wheels_telemetry_settings_read(dev: Plan) -> None:
    """The App's extra env, with what Databricks Apps adds itself, parses with the wheel's own reader into the
    stack's endpoint, tables, batching and sampling (the seed's 10 s / 1000 events / 0.1)."""
    env = dev.outputs["app_env"][0]
    apps_sets = {"DATABRICKS_HOST": "dbc-1234abcd-5678.cloud.databricks.com", "DATABRICKS_CLIENT_ID": APP_SP,
                 "DATABRICKS_CLIENT_SECRET": "s3cret", "DATABRICKS_APP_NAME": "agent-serving"}  # fmt: skip
    parsed = AppTelemetrySettings.from_env({**env, **apps_sets})
    assert parsed.enabled and parsed.endpoint == ZEROBUS
    assert parsed.tables == ("main.agents_dev.agent_otel_spans", "main.agents_dev.agent_otel_metrics")
    assert (parsed.batch_interval_s, parsed.batch_size, parsed.queue_size, parsed.sample_rate) == (10, 1000, 10000, 0.1)
    assert parsed.resolved_workspace_id == "1234567890123456"
    assert all(isinstance(v, str) for v in env.values())
    tables = dev.outputs["telemetry_tables"][0]
    assert dev.outputs["static_names"][0] == {"spans": tables["spans"], "metrics": tables["metrics"]}


def test_telemetry_is_on_when_configured_and_off_when_switched_off() -> None:
    """The endpoint is the workspace's own, so nothing defaults it: telemetry is on once it is set (then the
    warehouse is required too), off without it or with enabled: false; off, the app is told so and nothing else."""
    assert not TelemetrySettings().on and TelemetrySettings.model_validate(ENABLED).on
    for off in (TelemetrySettings(), TelemetrySettings.model_validate({**ENABLED, "enabled": False})):
        assert not off.on and app_telemetry_env(off, {}) == {"TELEMETRY_ENABLED": "false"}
        assert not AppTelemetrySettings.from_env(app_telemetry_env(off, {})).enabled


# --- the optimiser job


def _job(plan: Plan) -> dict[str, Any]:
    return job_api_shape(plan.one("Job", "prompt-optimizer").inputs)


def test_job_runs_prompt_optimizer_on_serverless_with_the_optimizer_extra(dev: Plan) -> None:
    """One python_wheel_task of the platform's wheel, on serverless, whose environment installs the wheel and the
    libraries of its `optimizer` extra (DSPy is not in the serverless image)."""
    job = _job(dev)
    assert job["name"] == "dev-agent-platform-prompt-optimizer" and job["timeout_seconds"] == 180 * 60
    (task,) = job["tasks"]
    assert task["task_key"] == "optimize_prompts" and task["environment_key"] == "optimizer_env"
    wheel = task["python_wheel_task"]
    assert (wheel["package_name"], wheel["entry_point"]) == ("agent_jobs", "prompt-optimizer")
    (environment,) = job["environments"]
    spec = environment["spec"]
    assert spec["environment_version"] == "4" and spec["dependencies"][0] == WHEEL  # the wheel, then its extra
    names = {d.split(">")[0].split("=")[0] for d in spec["dependencies"][1:]}
    assert names == {"dspy", "mlflow-skinny", "databricks-sdk"}
    params = wheel["parameters"]
    assert params[params.index("--table") + 1] == "main.agents_dev.prompt_training"
    assert params[params.index("--prompts-volume") + 1] == PROMPTS
    assert params[params.index("--experiment") + 1] == "/Shared/agent-platform/dev/prompt-optimizer"
    assert dev.one("Directory").retain_on_delete and dev.one("MlflowExperiment").retain_on_delete
    assert dev.outputs["prompt_optimizer_job_url"][0] == f"{HOST}/#job/{dev.outputs['prompt_optimizer_job_id'][0]}"


def test_schedule_is_nightly_at_two_paused_in_development(dev: Plan, prod: Plan) -> None:
    """The seed's 'nightly at 2am': paused in development stacks (like DABs), running in production."""
    for plan, status in ((dev, "PAUSED"), (prod, "UNPAUSED")):
        assert _job(plan)["schedule"] == {
            "quartz_cron_expression": "0 0 2 * * ?", "timezone_id": "UTC", "pause_status": status,
        }  # fmt: skip
    paused = plan_of(optimizer={"schedule": {"cron": "0 30 3 * * ?", "timezone": "Europe/Berlin", "paused": True}},
                     production=True)  # fmt: skip
    assert _job(paused)["schedule"]["pause_status"] == "PAUSED"
    assert _job(paused)["schedule"]["timezone_id"] == "Europe/Berlin"
    assert _job(prod)["run_as"] == {"service_principal_name": RUN_AS}


@pytest.mark.parametrize(
    "optimizer",
    [
        {},
        {"margin": 0, "holdout_fraction": 0.05, "min_examples": 4, "agents": ["fraud_detector", "kyc_v2"],
         "warehouse_id": WAREHOUSE, "training_table": "other.data.examples"},
        {"margin": 1, "holdout_fraction": 0.9, "min_examples": 1_000_000},
    ],
)  # fmt: skip
def test_job_parses_strictly_and_its_parameters_satisfy_the_entry_points_argparse(optimizer: dict[str, Any]) -> None:
    """databricks-bundles' strict Job model accepts the job, and `prompt-optimizer`'s own parser accepts the
    task's parameters at the settings' extremes: no value the stack file allows makes the job exit 2."""
    plan = plan_of(optimizer=optimizer)
    job = _job(plan)
    BundleJob.from_dict(job)  # raises on an unknown field or a bad enum
    for task in job["tasks"]:
        if "python_wheel_task" in task:
            args = optimizer_parser().parse_args(task["python_wheel_task"]["parameters"])
            settings = PromptOptimizerSettings.model_validate(optimizer)
            assert (args.margin, args.holdout_fraction, args.min_examples) == (
                settings.margin, settings.holdout_fraction, settings.min_examples,
            )  # fmt: skip
            assert args.agents == (list(settings.agents) or None) and args.warehouse_id == settings.warehouse_id
            assert args.job_id == "{{job.id}}" and args.job_run_id == "{{job.run_id}}"


# --- settings


@pytest.mark.parametrize(
    ("model", "values", "key", "says"),
    [
        (TelemetrySettings, {"enabled": True}, "zerobus_endpoint", "required when telemetry is on"),
        (TelemetrySettings, {"zerobus_endpoint": ZEROBUS}, "warehouse_id", "required when telemetry is on"),
        (TelemetrySettings, {**ENABLED, "zerobus_endpoint": "http://1.zerobus.x.cloud.databricks.com"},
         "zerobus_endpoint", "not a Zerobus Ingest endpoint"),
        (TelemetrySettings, {**ENABLED, "sample_rate": 1.5}, "sample_rate", "0 to 1"),
        (TelemetrySettings, {**ENABLED, "sample_rate": float("nan")}, "sample_rate", "0 to 1"),
        (TelemetrySettings, {**ENABLED, "batch_interval_seconds": float("inf")}, "batch_interval_seconds", "3600"),
        (TelemetrySettings, {**ENABLED, "batch_interval_seconds": 0}, "batch_interval_seconds", "0.001"),
        (TelemetrySettings, {**ENABLED, "batch_interval_seconds": True}, "batch_interval_seconds", "boolean"),
        (TelemetrySettings, {**ENABLED, "batch_size": 0}, "batch_size", "at least 1"),
        (TelemetrySettings, {**ENABLED, "queue_size": 100}, "queue_size", "at least batch_size"),
        (TelemetrySettings, {**ENABLED, "metrics_table": "agent_otel_spans"}, "metrics_table", "one table per"),
        (TelemetrySettings, {**ENABLED, "spans_table": "traces"}, "spans_table", "name of a view"),
        (TelemetrySettings, {**ENABLED, "spans_table": "Spans-Table"}, "spans_table", "Unity Catalog name"),
        (TelemetrySettings, {**ENABLED, "sample_rte": 0.5}, "sample_rte", "did you mean 'sample_rate'"),
        (TelemetrySettings, {**ENABLED, "dashboard": {"warehouse_id": "abc"}}, "warehouse_id", "16 hexadecimal"),
        (PromptOptimizerSettings, {"margin": -0.1}, "margin", "0 to 1"),
        (PromptOptimizerSettings, {"holdout_fraction": 0.95}, "holdout_fraction", "0.9"),
        (PromptOptimizerSettings, {"min_examples": 3}, "min_examples", "4"),
        (PromptOptimizerSettings, {"training_table": "a.b"}, "training_table", "catalog.schema.table"),
        (PromptOptimizerSettings, {"agents": ["Fraud.Detector"]}, "agents", "not an agent name"),
        (PromptOptimizerSettings, {"schedule": {"cron": "0 0 2 * *"}}, "cron", "Quartz cron"),
        (PromptOptimizerSettings, {"environment_version": "x"}, "environment_version", "serverless environment"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_with_the_key_and_what_is_allowed(
    model: type[TelemetrySettings | PromptOptimizerSettings], values: dict[str, Any], key: str, says: str
) -> None:
    """Each bad value is one error naming its key and saying what is allowed, before anything is built (rendered
    the way the stack's loader renders it: '<project>:<key path> = <value>: <what is wrong; what is allowed>')."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(values)
    (error,) = caught.value.errors()
    text = describe(PROJECT, error)
    assert says in text and "allowed" in text, text
    assert text.split(" ")[0].split(":")[1].split(".")[-1].startswith(key), text


def test_every_setting_is_described() -> None:
    """The README's config reference is generated from the descriptions."""
    from infra.systems.serving_platform.offline_settings import DashboardSettings

    for model in (TelemetrySettings, DashboardSettings, PromptOptimizerSettings):
        assert model.__doc__
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name}"


def test_the_schema_comes_from_the_wheel_source_given(tmp_path: Path) -> None:
    """The component reads the schema from the wheel source it is given (the one the platform builds), so the
    tables follow the wheel's file, never a copy of it."""
    data = tmp_path / "src/agent_jobs/telemetry_otel"
    data.mkdir(parents=True)
    for name in ("otlp_tables.json", "views.json", "dashboard.lvdash.json"):
        (data / name).write_text((SOURCE / "src/agent_jobs/telemetry_otel" / name).read_text())
    spec = json.loads((data / "otlp_tables.json").read_text())
    spec["tables"]["spans"]["columns"].append({"name": "extra", "type": "STRING", "comment": "x"})
    (data / "otlp_tables.json").write_text(json.dumps(spec))
    (data.parents[2] / "pyproject.toml").write_text((SOURCE / "pyproject.toml").read_text())
    plan = plan_of(wheel_source=tmp_path)
    assert inputs(plan, "SqlTable", "telemetry-spans")["columns"][-1]["name"] == "extra"
