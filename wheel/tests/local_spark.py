"""One local Spark (pyspark 3.5, the Spark of DBR 14.3) for the tests that run SQL for real, and the one
translation Spark 3.5 needs: it has no VARIANT type (Spark 4 and Databricks do), so VARIANT columns become
STRING columns holding the same JSON, and `try_variant_get(col, '$["key"]', 'type')` becomes
`TRY_CAST(get_json_object(col, "$['key']") AS type)`; Delta's `USING DELTA CLUSTER BY (...)` becomes a JSON
table over the test's rows. Everything else in the SQL runs as written.
"""

from __future__ import annotations

import re
import tempfile
from functools import cache
from typing import Any

_VARIANT_GET = re.compile(r"""try_variant_get\(([\w.]+), '\$\["([^"]+)"\]', '(\w+)'\)""")
_DELTA = re.compile(r"USING DELTA\nCLUSTER BY \([^)]*\)")


@cache
def spark() -> Any:
    """getOrCreate: shares the JVM with any other local Spark of the test session. Interpreted expressions
    and a C1-only JVM: the data is tiny, so compiling costs more than it saves on this 2-core machine."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("agent-jobs-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", tempfile.mkdtemp(prefix="spark-warehouse-"))  # not ./spark-warehouse
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.sql.codegen.wholeStage", "false")
        .config("spark.sql.codegen.factoryMode", "NO_CODEGEN")
        .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def for_spark35(sql: str, location: str | None = None) -> str:
    """Databricks SQL of our tables and views -> the same statement for Spark 3.5 (see the module doc)."""
    sql = _VARIANT_GET.sub(lambda m: f"""TRY_CAST(get_json_object({m[1]}, "$['{m[2]}']") AS {m[3]})""", sql)
    if "try_variant_get" in sql:
        raise AssertionError(f"a VARIANT access this translation does not know: {sql}")
    sql = re.sub(r"\bVARIANT\b", "STRING", sql)
    if location is not None:
        sql = _DELTA.sub(f"USING json LOCATION '{location}'", sql)
    return sql
