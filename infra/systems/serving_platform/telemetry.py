"""Seed 001's telemetry storage: the Delta tables Zerobus Ingest writes the app's OTLP spans and metrics into,
the views `traces` and `metrics` the seed's queries read, the app's grants on the tables, and the dashboard.

Everything comes from the wheel's data files (wheel/src/agent_jobs/telemetry_otel/): `otlp_tables.json` holds the
schema Databricks documents for Zerobus Ingest OTLP, **schema version v2** (the tables' `otel.schemaVersion`
property; "OpenTelemetry table reference for Zerobus Ingest", Beta, read on 2026-12-01), `views.json` the views'
SQL, `dashboard.lvdash.json` the Lakeview dashboard. They are read by path, so the program never imports the
wheel's code, and the wheel's own tests run the same SQL in a local Spark.

Zerobus never creates or alters a table: they must exist, with exactly that schema, before the app sends. The
logs table of the documented set is not created: the app exports no logs (the Python OTel logs SDK is still
experimental). This module reads no config and exports nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_databricks as db

from infra.components.wheel import SOURCE
from infra.systems.serving_platform.offline_settings import VIEWS, TelemetrySettings

DATA = Path("src/agent_jobs/telemetry_otel")
SIGNALS = ("spans", "metrics")
# What Zerobus needs to write one table (Databricks' Zerobus Ingest setup: USE CATALOG, USE SCHEMA, then MODIFY
# and SELECT on the table; the app's OAuth token asks for exactly these in its authorization_details).
TABLE_PRIVILEGES = ("MODIFY", "SELECT")
SCHEMA_PRIVILEGES = ("USE_SCHEMA",)
CATALOG_PRIVILEGES = ("USE_CATALOG",)


def load(wheel_source: Path, name: str) -> Any:
    """One of the wheel's telemetry data files (otlp_tables.json, views.json, dashboard.lvdash.json)."""
    return json.loads((wheel_source / DATA / name).read_text(encoding="utf-8"))


def quoted(catalog: str, schema: str, table: str) -> str:
    """`catalog`.`schema`.`table` (the names are UC names already; the backquotes keep any keyword harmless)."""
    return ".".join(f"`{part}`" for part in (catalog, schema, table))


@dataclass(frozen=True)
class TelemetryTablesArgs:
    settings: TelemetrySettings
    catalog: pulumi.Input[str]
    schema: pulumi.Input[str]
    """The schema's name (not its full name); the tables and views are created there."""
    app_principal: pulumi.Input[str]
    """The app's service principal (its application id, App.service_principal_client_id): granted
    TABLE_PRIVILEGES on the two tables. It also needs CATALOG_PRIVILEGES and SCHEMA_PRIVILEGES, which the
    catalog's and schema's own grants must carry (an authoritative `Grants` there would revoke a second grant)."""
    dashboard_name: str
    host: str
    """The workspace URL, for the dashboard's URL."""
    protect: bool
    wheel_source: Path = SOURCE


class TelemetryTables(pulumi.ComponentResource):
    """Children: `SqlTable` <name>-spans and <name>-metrics (managed Delta, the documented columns, clustering and
    properties), `SqlTable` <name>-traces-view and <name>-metrics-view (VIEW), `Grant` <name>-<signal>-app (the
    app's service principal: MODIFY, SELECT; authoritative for that principal on that table), `Dashboard`
    <name>-dashboard when enabled. Tables and views are retain_on_delete and protect when asked: renaming a table
    replaces it with a new, empty one, which `protect` turns into an error. The dashboard holds no data (its
    definition is this code), so it is neither."""

    tables: dict[str, pulumi.Output[str]]
    """spans / metrics / traces / metrics_view -> full name catalog.schema.name."""
    dashboard_id: pulumi.Output[str] | None
    dashboard_url: pulumi.Output[str] | None

    def __init__(self, name: str, args: TelemetryTablesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:serving:TelemetryTables", name, None, opts)
        s = args.settings
        assert s.on and s.warehouse_id is not None, "create TelemetryTables only when settings.on"
        data = pulumi.ResourceOptions(parent=self, retain_on_delete=True, protect=args.protect)
        spec = load(args.wheel_source, "otlp_tables.json")["tables"]
        names = {"spans": s.spans_table, "metrics": s.metrics_table}
        created: dict[str, db.SqlTable] = {}
        for signal in SIGNALS:
            table = spec[signal]
            created[signal] = db.SqlTable(
                f"{name}-{signal}",
                catalog_name=args.catalog,
                schema_name=args.schema,
                name=names[signal],
                table_type="MANAGED",
                data_source_format="DELTA",
                warehouse_id=s.warehouse_id,
                comment=table["comment"],
                cluster_keys=list(table["cluster_keys"]),
                properties=dict(sorted(table["properties"].items())),
                columns=[
                    db.SqlTableColumnArgs(name=c["name"], type=c["type"], comment=c["comment"])
                    for c in table["columns"]
                ],
                opts=data,
            )
            db.Grant(
                f"{name}-{signal}-app",
                table=created[signal].id,
                principal=args.app_principal,
                privileges=list(TABLE_PRIVILEGES),
                opts=pulumi.ResourceOptions(parent=self),
            )
        views = load(args.wheel_source, "views.json")["views"]
        sources = {"spans": created["spans"], "metrics": created["metrics"]}
        self.tables = {signal: created[signal].id for signal in SIGNALS}
        made_views: list[db.SqlTable] = []
        for view in VIEWS:
            source = sources[views[view]["source"]]
            # Built from the source table's outputs: the view waits for the table, and its SQL names it exactly.
            sql = pulumi.Output.all(source.catalog_name, source.schema_name, source.name).apply(
                _view_sql(str(views[view]["sql"]), f"{views[view]['source']}_table")
            )
            resource = db.SqlTable(
                f"{name}-{view}-view",
                catalog_name=args.catalog,
                schema_name=args.schema,
                name=view,
                table_type="VIEW",
                view_definition=sql,
                warehouse_id=s.warehouse_id,
                comment=views[view]["comment"],
                opts=data,
            )
            self.tables["traces" if view == "traces" else "metrics_view"] = resource.id
            made_views.append(resource)
        self.dashboard_id = self.dashboard_url = None
        if s.dashboard.enabled:
            dashboard = db.Dashboard(
                f"{name}-dashboard",
                display_name=s.dashboard.display_name or args.dashboard_name,
                parent_path=s.dashboard.parent_path,
                warehouse_id=s.dashboard.warehouse_id or s.warehouse_id,
                # The datasets name the views unqualified (FROM traces): these say where they are.
                dataset_catalog=args.catalog,
                dataset_schema=args.schema,
                serialized_dashboard=serialized_dashboard(args.wheel_source),
                # After the views its datasets query (a query of a missing view would fail when first shown).
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*created.values(), *made_views]),
            )
            self.dashboard_id = dashboard.dashboard_id
            self.dashboard_url = pulumi.Output.concat(args.host.rstrip("/"), "/dashboardsv3/", dashboard.dashboard_id)
        self.register_outputs({"tables": self.tables, "dashboard_id": self.dashboard_id})


def _view_sql(template: str, placeholder: str) -> Callable[[list[str]], str]:
    """views.json's SQL with {spans_table} / {metrics_table} replaced by the quoted full name."""

    def render(parts: list[str]) -> str:
        return template.format(**{placeholder: quoted(*parts)})

    return render


def serialized_dashboard(wheel_source: Path = SOURCE) -> str:
    """The dashboard as stable text (sorted keys, no spaces), so an unchanged dashboard is no diff."""
    return json.dumps(load(wheel_source, "dashboard.lvdash.json"), sort_keys=True, separators=(",", ":"))


def table_names(
    settings: TelemetrySettings, catalog: pulumi.Input[str], schema: pulumi.Input[str]
) -> dict[str, pulumi.Output[str]]:
    """The two tables' full names from the settings alone (the same as TelemetryTables.tables' spans/metrics): for
    the app's environment, which must be known before the App exists while the grants need the App's service
    principal (create the tables after the App, and make the app's deployment wait for them)."""
    return {
        signal: pulumi.Output.concat(catalog, ".", schema, ".", name)
        for signal, name in (("spans", settings.spans_table), ("metrics", settings.metrics_table))
    }


def app_telemetry_env(
    settings: TelemetrySettings, tables: Mapping[str, pulumi.Input[str]]
) -> dict[str, pulumi.Input[str]]:
    """The app's TELEMETRY_* environment (app.yaml `env`, the App component's `extra_env`), named as the wheel's
    agent_jobs.telemetry_otel.settings reads them. DATABRICKS_HOST, DATABRICKS_CLIENT_ID and _SECRET (the app's
    service principal, for the OAuth token) are set by Databricks Apps itself. Off: only TELEMETRY_ENABLED."""
    if not settings.on:
        return {"TELEMETRY_ENABLED": "false"}
    assert settings.zerobus_endpoint is not None
    return {
        "TELEMETRY_ENABLED": "true",
        "TELEMETRY_ENDPOINT": settings.zerobus_endpoint,
        "TELEMETRY_SPANS_TABLE": tables["spans"],
        "TELEMETRY_METRICS_TABLE": tables["metrics"],
        "TELEMETRY_SAMPLE_RATE": _number(settings.sample_rate),
        "TELEMETRY_BATCH_INTERVAL_S": _number(settings.batch_interval_seconds),
        "TELEMETRY_BATCH_SIZE": str(settings.batch_size),
        "TELEMETRY_QUEUE_SIZE": str(settings.queue_size),
    }


def _number(value: float) -> str:
    """A float as the shortest text that reads back as the same value ('0.1', '10')."""
    return str(int(value)) if value == int(value) else repr(value)
