"""Convert a Job's Pulumi wire inputs to the Jobs API shape, to check them with Databricks' own strict models.

Pulumi sends camelCase names and pluralises list blocks (dependsOns, onFailures); the Jobs API, databricks.yml
and databricks-bundles use snake_case singulars. Keys of user maps (tags, spark_conf, named parameters) stay.
"""

from __future__ import annotations

import re
from typing import Any

from infra.tools.offline import unwrap

# Blocks whose keys are user data, not field names.
USER_MAPS = {"tags", "named_parameters", "spark_env_vars", "spark_conf", "custom_tags", "base_parameters",
             "job_parameters"}  # fmt: skip
# Pulumi plural -> Jobs API name (PULUMI-DATABRICKS.md, section 11).
RENAMES = {
    "depends_ons": "depends_on", "on_failures": "on_failure", "on_successes": "on_success", "on_starts": "on_start",
    "on_duration_warning_threshold_exceededs": "on_duration_warning_threshold_exceeded",
    "on_streaming_backlog_exceededs": "on_streaming_backlog_exceeded",
}  # fmt: skip
SINGULARS = {api: pulumi for pulumi, api in RENAMES.items()}
PULUMI_ONLY = {"always_running", "control_run_state", "provider_config"}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def to_jobs_api(value: Any, key: str | None = None) -> Any:
    """Wire inputs (unwrapped) -> Jobs API JSON."""
    if isinstance(value, dict):
        if key in USER_MAPS:
            return dict(value)
        out = {}
        for k, v in value.items():
            # Pulumi sends camelCase and pluralised block names. Anything else came from a dict literal that
            # bypassed the Args classes, and the provider would drop it, even where the Jobs API spells it so.
            if "_" in k:
                raise ValueError(f"wire key {k!r} is not camelCase: a dict literal bypassed the Args classes")
            name = _snake(k)
            if name in SINGULARS:
                raise ValueError(f"wire key {k!r}: Pulumi names this block {SINGULARS[name]!r}")
            name = RENAMES.get(name, name)
            if name not in PULUMI_ONLY:
                out[name] = to_jobs_api(v, name)
        return out
    if isinstance(value, list):
        return [to_jobs_api(v, key) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # numbers come back from the wire as floats
    return value


def job_api_shape(inputs: dict[str, Any]) -> dict[str, Any]:
    return to_jobs_api(unwrap(inputs))
