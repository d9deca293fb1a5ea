"""Seed 001's telemetry storage as data, for the program to create with pulumi-databricks: the Delta tables
Zerobus Ingest writes OTLP into (otlp_tables.json: Databricks' documented schema, one table per signal), the
views `traces` and `metrics` that keep the seed's queries working (views.json), and the Lakeview dashboard
(dashboard.lvdash.json). The JSON files are the source of truth; this module only reads and renders them,
and needs nothing beyond the standard library (the program can read the files directly too).
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

SIGNALS = ("spans", "logs", "metrics")
VIEWS = ("traces", "metrics")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,254}$")


@cache
def _load(name: str) -> Any:
    return json.loads(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))


def otlp_tables() -> dict[str, Any]:
    """otlp_tables.json: {"source", "tables": {signal: {"name_suffix", "columns", "cluster_keys", ...}}, "grants"}."""
    return dict(_load("otlp_tables.json"))


def columns(signal: str) -> list[dict[str, str]]:
    """[{"name", "type", "comment"}] of a signal's table, in the documented order (SqlTableColumnArgs)."""
    return [dict(c) for c in otlp_tables()["tables"][signal]["columns"]]


def quote(full_name: str) -> str:
    """`catalog`.`schema`.`table`, refusing anything that is not three plain identifiers."""
    parts = full_name.split(".")
    if len(parts) != 3 or not all(_IDENTIFIER.match(p) for p in parts):
        raise ValueError(f"{full_name!r} is not a table's full name (catalog.schema.table)")
    return ".".join(f"`{p}`" for p in parts)


def create_table_sql(signal: str, full_name: str) -> str:
    """The documented CREATE TABLE for one signal (what SqlTable amounts to; also for a manual setup)."""
    table = otlp_tables()["tables"][signal]
    body = ",\n".join(f"  `{c['name']}` {c['type']} COMMENT {literal(c['comment'])}" for c in table["columns"])
    cluster = ", ".join(f"`{k}`" for k in table["cluster_keys"])
    properties = ", ".join(f"{literal(k)} = {literal(v)}" for k, v in sorted(table["properties"].items()))
    return (
        f"CREATE TABLE IF NOT EXISTS {quote(full_name)} (\n{body}\n) USING DELTA\nCLUSTER BY ({cluster})\n"
        f"COMMENT {literal(table['comment'])}\nTBLPROPERTIES ({properties})"
    )


def view_sql(view: str, spans_table: str, metrics_table: str | None = None) -> str:
    """The SELECT of view `traces` (over the spans table) or `metrics` (over the metrics table)."""
    spec = _load("views.json")["views"][view]
    tables = {"spans_table": quote(spans_table)}
    if spec["source"] == "metrics":
        if not metrics_table:
            raise ValueError("the metrics view needs the metrics table")
        tables["metrics_table"] = quote(metrics_table)
    return str(spec["sql"]).format(**tables)


def view_comment(view: str) -> str:
    return str(_load("views.json")["views"][view]["comment"])


def dashboard() -> dict[str, Any]:
    """The Lakeview dashboard (datasets query the views unqualified: set the Dashboard's dataset_catalog
    and dataset_schema to where the views are)."""
    copy: dict[str, Any] = json.loads(json.dumps(_load("dashboard.lvdash.json")))
    return copy


def serialized_dashboard() -> str:
    """Dashboard(serialized_dashboard=...): stable text, so an unchanged dashboard is no diff."""
    return json.dumps(_load("dashboard.lvdash.json"), sort_keys=True, separators=(",", ":"))


def dataset_sql(name: str) -> str:
    for dataset in _load("dashboard.lvdash.json")["datasets"]:
        if dataset["name"] == name:
            return "".join(dataset["queryLines"])
    raise KeyError(name)


def literal(text: str) -> str:
    """A SQL string literal (backslash escapes, as Databricks and Spark read them)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
