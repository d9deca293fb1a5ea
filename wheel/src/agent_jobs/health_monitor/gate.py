"""The evaluation-gated deployment job (seed 002's deployment_job.py, MLflow 3's deployment-job pattern).

Load the given or latest version, evaluate it, check every threshold, and only if all pass create or update
the serving endpoint, wait for it (bounded) to be READY, and only then move the promotion alias to the version
(ALIAS_RULE): the alias always names a version the endpoint serves. An endpoint that fails or never gets ready
leaves the alias where it was. A failing threshold changes nothing. Modes: `enabled`; `dry_run` evaluates and
reports but changes nothing; `disabled` evaluates nothing and changes nothing (deployments switched off).
Every run ends with the seed's JSON summary, printed and logged to the MLflow run, and the job fails when the
gate does. `endpoint_created` is true only when the endpoint was created (or deleted and created again), not
when an existing one was updated.

The served entity carries what production monitoring needs, per Databricks' "custom CPU serving" tracing
setup: ENABLE_MLFLOW_TRACING=true and MLFLOW_EXPERIMENT_ID of the gate's experiment, the one the registered
scorers watch, so the endpoint's traces reach them.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from agent_jobs.errors import JobError
from agent_jobs.health_monitor.endpoints import Endpoints, EndpointSpec
from agent_jobs.health_monitor.evaluation import check_thresholds, evaluate

log = logging.getLogger(__name__)

Mode = Literal["disabled", "dry_run", "enabled"]
MODES: tuple[Mode, ...] = ("disabled", "dry_run", "enabled")
TARGETS = ("staging", "production")
ALIAS_RULE = "after_endpoint_ready"
"""Reported in every summary: the alias is moved only once the endpoint serves the version."""


@dataclass(frozen=True)
class GateConfig:
    model_name: str
    model_version: str  # "" = the latest version
    promotion_target: str
    mode: Mode
    thresholds: Mapping[str, float]
    experiment: str
    endpoint_name: str
    endpoint_permissions: Mapping[str, str] = field(default_factory=dict)
    inference_table: tuple[str, str] | None = None
    ready_timeout_minutes: float = 30


@dataclass
class GateResult:
    """The seed's summary (passed, promoted, endpoint_created, version, failures, metrics), plus the mode."""

    mode: Mode
    passed: bool = False
    promoted: bool = False
    endpoint_created: bool = False
    version: str | None = None
    failures: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    endpoint_action: str | None = None
    alias_rule: str = ALIAS_RULE

    def summary(self) -> dict[str, Any]:
        """As JSON allows: a metric that is not a finite number is null."""
        summary = asdict(self)
        summary["metrics"] = {k: v if math.isfinite(v) else None for k, v in self.metrics.items()}
        return summary


def resolve_version(client: Any, model_name: str, requested: str) -> str:
    """The requested version, checked to exist, or the highest one."""
    if requested:
        try:
            return str(client.get_model_version(model_name, requested).version)
        except Exception as exc:
            raise JobError(f"version {requested} of {model_name} not found: {exc}") from exc
    try:
        versions = client.search_model_versions(f"name='{model_name}'")
    except Exception as exc:
        raise JobError(f"model {model_name} not found: {exc} (seed 002: run the setup job first)") from exc
    if not versions:
        raise JobError(f"model {model_name} has no versions: run the setup job's log_agent_model task first")
    return str(max(int(v.version) for v in versions))


def run_gate(
    config: GateConfig,
    client: Any,
    endpoints: Callable[[], Endpoints],
    scorers: Sequence[Any],
    data: Any,
) -> GateResult:
    """The gate; `client` is an MlflowClient, `endpoints` builds the endpoint client only when it is needed,
    `data` is the evaluation dataset (or its records), or a function that loads it. Never raises: whatever
    goes wrong is a failure in the result, so that the run still ends with its summary (see finish)."""
    result = GateResult(mode=config.mode)
    try:
        _run(config, client, endpoints, scorers, data, result)
    except Exception as exc:  # a model that cannot load, an evaluation that crashes, an API refusing: all reported
        log.exception("deployment gate stopped")
        result.failures.append(str(exc) if isinstance(exc, JobError) else f"{type(exc).__name__}: {exc}")
    return result


def _run(
    config: GateConfig,
    client: Any,
    endpoints: Callable[[], Endpoints],
    scorers: Sequence[Any],
    data: Any,
    result: GateResult,
) -> None:
    import mlflow

    if config.mode not in MODES:
        raise JobError(f"unknown gate mode {config.mode!r}; allowed: {', '.join(MODES)}")
    if config.promotion_target not in TARGETS:
        raise JobError(f"unknown promotion target {config.promotion_target!r}; allowed: {', '.join(TARGETS)}")
    if config.mode == "disabled":
        log.info("gate disabled for this run: nothing evaluated, nothing promoted, no endpoint change")
        return
    if not config.thresholds:
        raise JobError("no thresholds: the gate would promote any model; give at least one")
    bad = sorted(k for k, v in config.thresholds.items() if not (isinstance(v, (int, float)) and 0 <= v <= 1))
    if bad:
        raise JobError(f"thresholds must be finite numbers in [0, 1]; not: {', '.join(bad)}")
    result.version = resolve_version(client, config.model_name, config.model_version)
    if callable(data):
        data = data()
    log.info("evaluating %s v%s for @%s (%s)", config.model_name, result.version, config.promotion_target, config.mode)
    experiment = mlflow.set_experiment(config.experiment)
    with mlflow.start_run(run_name=f"deployment_v{result.version}_{config.promotion_target}"):
        mlflow.set_tags({"run_type": "deployment", "gate_mode": config.mode})
        mlflow.log_params({"model_name": config.model_name, "model_version": result.version,
                           "promotion_target": config.promotion_target})  # fmt: skip
        try:
            result.metrics = evaluate(f"models:/{config.model_name}/{result.version}", data, scorers)
            result.failures = check_thresholds(result.metrics, config.thresholds)
            result.passed = not result.failures
            if result.passed and config.mode == "enabled":
                _promote(config, client, endpoints(), result, experiment.experiment_id)
            elif result.passed:
                log.info("dry run: would promote v%s to @%s and deploy %s", result.version,
                         config.promotion_target, config.endpoint_name)  # fmt: skip
            else:
                log.warning("evaluation failed: not promoting, no endpoint change (%s)", "; ".join(result.failures))
        finally:
            mlflow.set_tag("gate_passed", str(result.passed).lower())
            mlflow.log_dict(result.summary(), "deployment_summary.json")


def _promote(config: GateConfig, client: Any, endpoints: Endpoints, result: GateResult, experiment_id: str) -> None:
    """Deploy, wait for READY, then move the alias (ALIAS_RULE); permissions last."""
    assert result.version is not None
    spec = EndpointSpec(
        name=config.endpoint_name,
        model_name=config.model_name,
        model_version=result.version,
        inference_table=config.inference_table,
        tags={"model": config.model_name, "promotion_target": config.promotion_target},
        environment_vars={"ENABLE_MLFLOW_TRACING": "true", "MLFLOW_EXPERIMENT_ID": str(experiment_id)},
    )
    try:
        result.endpoint_action = endpoints.deploy(spec)
        result.endpoint_created = result.endpoint_action in ("created", "recreated")
        endpoints.wait_ready(config.endpoint_name, config.ready_timeout_minutes * 60)
    except JobError as exc:  # the summary still reports it, and the job fails in finish()
        result.failures.append(f"endpoint {config.endpoint_name}: {exc}; @{config.promotion_target} not moved")
        log.error("endpoint %s: %s; the alias @%s was not moved", config.endpoint_name, exc, config.promotion_target)
        return
    client.set_registered_model_alias(config.model_name, config.promotion_target, result.version)
    result.promoted = True
    log.info("%s serves v%s: moved @%s to it", config.endpoint_name, result.version, config.promotion_target)
    if config.endpoint_permissions:
        try:
            endpoints.set_permissions(config.endpoint_name, config.endpoint_permissions)
        except JobError as exc:
            result.failures.append(f"endpoint {config.endpoint_name} permissions: {exc}")
            log.error("endpoint %s: %s", config.endpoint_name, exc)


def finish(result: GateResult) -> None:
    """Print the summary (the job's output ends with it) and fail the job when the gate failed."""
    print(json.dumps(result.summary(), sort_keys=True))
    if result.failures:
        raise JobError(f"deployment gate failed ({result.mode}): " + "; ".join(result.failures))
