"""The deployment gate against a real MLflow (tracking and registry in a temporary sqlite store): registered
model versions answer with canned text, the seed's heuristic scorers score them, and the gate promotes or
refuses. The endpoint client is a recording fake of its interface (the real one is tested in
test_endpoints.py against the HTTP stand-in)."""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient

from agent_jobs.errors import JobError
from agent_jobs.health_monitor.endpoints import EndpointSpec
from agent_jobs.health_monitor.evaluation import check_thresholds
from agent_jobs.health_monitor.gate import GateConfig, GateResult, finish, run_gate
from agent_jobs.health_monitor.scorers import build_scorers

MODEL = "main.health_monitor_agent_dev.health_monitor_agent"
GOOD = (
    "The SQL warehouse cost rose 40% this week because the serverless cluster ran the nightly job twice; "
    "check the Unity Catalog audit table and the job's schedule in Databricks."
)
BAD = "Error: failed to query the system tables (exception: PERMISSION_DENIED)."
HEURISTIC_THRESHOLDS = {"response_length/mean": 0.1, "no_errors/mean": 0.3, "databricks_context/mean": 0.1}
RECORDS = [
    {"inputs": {"query": "Why did our Databricks costs spike this week?"}},
    {"inputs": {"query": "Which jobs failed most often in the last 7 days?"}},
    {"inputs": {"query": "Are there any clusters without Unity Catalog enabled?"}},
]
CANNED = textwrap.dedent(
    """
    import mlflow
    from mlflow.pyfunc import PythonModel


    class Canned(PythonModel):
        def load_context(self, context):
            self.answer = context.model_config["answer"]

        def predict(self, context, model_input, params=None):
            return [{"response": self.answer}]


    mlflow.models.set_model(Canned())
    """
)


@dataclass
class FakeEndpoints:
    """The gate's endpoint interface, recording every call; `fail_wait` makes the wait fail."""

    calls: list[tuple[str, Any]] = field(default_factory=list)
    fail_wait: bool = False

    def deploy(self, spec: EndpointSpec) -> str:
        self.calls.append(("deploy", spec))
        return "created"

    def wait_ready(self, name: str, timeout_seconds: float) -> None:
        self.calls.append(("wait_ready", (name, timeout_seconds)))
        if self.fail_wait:
            raise JobError(f"{name} not ready after {timeout_seconds:.0f}s (state NOT_READY)")

    def set_permissions(self, name: str, permissions: Mapping[str, str]) -> None:
        self.calls.append(("set_permissions", (name, dict(permissions))))


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_store: str) -> Iterator[MlflowClient]:
    monkeypatch.chdir(tmp_path)  # artifacts under tmp_path
    uri = fresh_store
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment(experiment_id="0")  # not the previous test's active experiment (another store)
    (tmp_path / "canned.py").write_text(CANNED)
    yield MlflowClient(tracking_uri=uri, registry_uri=uri)
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


def log_version(answer: str) -> str:
    with mlflow.start_run(run_name="log"):
        info = mlflow.pyfunc.log_model(
            name="agent",
            python_model="canned.py",
            model_config={"answer": answer},
            registered_model_name=MODEL,
            pip_requirements=["mlflow-skinny"],  # given: MLflow would infer them in a subprocess (seconds) per version
        )
    return str(info.registered_model_version)


def config(**overrides: Any) -> GateConfig:
    values: dict[str, Any] = {
        "model_name": MODEL,
        "model_version": "",
        "promotion_target": "staging",
        "mode": "enabled",
        "thresholds": HEURISTIC_THRESHOLDS,
        "experiment": "/Shared/agent-platform/test/health-monitor",
        "endpoint_name": "health-monitor-agent-test",
        "endpoint_permissions": {"agent-users": "CAN_QUERY"},
        "inference_table": ("main", "health_monitor_agent_dev"),
        "ready_timeout_minutes": 2,
    }
    return GateConfig(**{**values, **overrides})


def gate(registry: MlflowClient, endpoints: FakeEndpoints, **overrides: Any) -> GateResult:
    scorers = build_scorers(["response_length", "no_errors", "databricks_context"])
    return run_gate(config(**overrides), registry, lambda: endpoints, scorers, RECORDS)


def aliases(registry: MlflowClient) -> dict[str, str]:
    return {alias: str(version) for alias, version in registry.get_registered_model(MODEL).aliases.items()}


def test_a_passing_model_is_promoted_and_deployed(registry: MlflowClient, capsys: pytest.CaptureFixture[str]) -> None:
    version = log_version(GOOD)
    endpoints = FakeEndpoints()
    result = gate(registry, endpoints)
    assert (result.passed, result.promoted, result.endpoint_created, result.failures) == (True, True, True, [])
    assert result.version == version and aliases(registry) == {"staging": version}
    assert result.metrics["no_errors/mean"] == 1.0 and result.metrics["databricks_context/mean"] > 0.1
    (_, spec), wait, permissions = endpoints.calls
    assert (spec.name, spec.model_name, spec.model_version) == ("health-monitor-agent-test", MODEL, version)
    experiment = mlflow.get_experiment_by_name("/Shared/agent-platform/test/health-monitor")
    assert experiment is not None  # the traces of the served version go to the experiment the scorers watch
    assert spec.environment_vars == {"ENABLE_MLFLOW_TRACING": "true", "MLFLOW_EXPERIMENT_ID": experiment.experiment_id}
    assert spec.inference_table == ("main", "health_monitor_agent_dev")
    assert wait == ("wait_ready", ("health-monitor-agent-test", 120))
    assert permissions == ("set_permissions", ("health-monitor-agent-test", {"agent-users": "CAN_QUERY"}))
    finish(result)  # does not raise
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {k: summary[k] for k in ("passed", "promoted", "endpoint_created", "version", "failures")} == {
        "passed": True, "promoted": True, "endpoint_created": True, "version": version, "failures": [],
    }  # fmt: skip
    (run,) = mlflow.search_runs(search_all_experiments=True, filter_string="tags.run_type = 'deployment'",
                                output_format="list")  # fmt: skip
    assert run.data.tags["gate_passed"] == "true" and run.data.params["model_version"] == version
    logged = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/deployment_summary.json")
    assert logged["promoted"] is True


def test_a_failing_model_is_not_promoted(registry: MlflowClient, capsys: pytest.CaptureFixture[str]) -> None:
    log_version(BAD)
    endpoints = FakeEndpoints()
    result = gate(registry, endpoints)
    assert (result.passed, result.promoted, result.endpoint_created) == (False, False, False)
    assert any(f.startswith("no_errors/mean: 0.00 < 0.3") for f in result.failures), result.failures
    assert aliases(registry) == {} and endpoints.calls == []
    with pytest.raises(JobError, match="deployment gate failed"):
        finish(result)
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["passed"] is False and summary["failures"] == result.failures


def test_a_missing_metric_fails_by_name(registry: MlflowClient) -> None:
    log_version(GOOD)
    endpoints = FakeEndpoints()
    result = gate(registry, endpoints, thresholds={**HEURISTIC_THRESHOLDS, "relevance/mean": 0.4})
    assert not result.passed and not result.promoted and endpoints.calls == []
    assert result.failures == ["relevance/mean: missing (no metric named relevance/mean or relevance_to_query/mean)"]
    assert aliases(registry) == {}


def test_the_given_version_is_evaluated_not_the_latest(registry: MlflowClient) -> None:
    bad, good = log_version(BAD), log_version(GOOD)
    assert gate(registry, FakeEndpoints()).version == good  # "" = latest
    result = gate(registry, FakeEndpoints(), model_version=bad, promotion_target="production")
    assert result.version == bad and not result.passed
    assert aliases(registry) == {"staging": good}  # the failing version did not take @production
    missing = gate(registry, FakeEndpoints(), model_version="9")
    assert not missing.passed and missing.failures[0].startswith(f"version 9 of {MODEL} not found")


def test_dry_run_evaluates_but_changes_nothing(registry: MlflowClient) -> None:
    log_version(GOOD)
    endpoints = FakeEndpoints()
    result = gate(registry, endpoints, mode="dry_run")
    assert result.passed and not result.promoted and not result.endpoint_created
    assert aliases(registry) == {} and endpoints.calls == []
    finish(result)


def test_disabled_evaluates_nothing(registry: MlflowClient) -> None:
    log_version(GOOD)
    endpoints = FakeEndpoints()
    result = gate(registry, endpoints, mode="disabled")
    assert (result.version, result.metrics, result.passed, result.promoted) == (None, {}, False, False)
    assert aliases(registry) == {} and endpoints.calls == []
    assert not mlflow.search_runs(search_all_experiments=True, filter_string="tags.run_type = 'deployment'",
                                  output_format="list")  # fmt: skip
    finish(result)  # a switched-off gate is not a failed job


def test_an_endpoint_that_never_gets_ready_fails_the_job_and_keeps_the_alias(registry: MlflowClient) -> None:
    """The alias names a version the endpoint serves: an endpoint that never gets ready does not move it."""
    log_version(GOOD)
    result = gate(registry, FakeEndpoints(fail_wait=True))
    assert result.passed and not result.promoted and result.endpoint_created
    assert result.failures == ["endpoint health-monitor-agent-test: health-monitor-agent-test not ready after 120s "
                               "(state NOT_READY); @staging not moved"]  # fmt: skip
    assert aliases(registry) == {}
    with pytest.raises(JobError, match="not ready"):
        finish(result)


def test_whatever_stops_the_gate_still_ends_with_the_summary(
    registry: MlflowClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """No versions, an evaluation that crashes, no thresholds: a failed summary, never a bare traceback."""
    registry.create_registered_model(MODEL)
    result = gate(registry, FakeEndpoints())
    assert result.failures == [f"model {MODEL} has no versions: run the setup job's log_agent_model task first"]
    with pytest.raises(JobError):
        finish(result)
    assert json.loads(capsys.readouterr().out)["failures"] == result.failures
    log_version(GOOD)
    crashing = run_gate(config(), registry, FakeEndpoints, [object()], RECORDS)  # not a scorer
    assert not crashing.passed and not crashing.promoted and crashing.failures
    empty = gate(registry, FakeEndpoints(), thresholds={})
    assert empty.failures == ["no thresholds: the gate would promote any model; give at least one"]
    assert aliases(registry) == {}


def test_a_metric_that_is_not_a_number_is_null_in_the_summary() -> None:
    result = GateResult(mode="enabled", metrics={"relevance/mean": math.nan, "safety/mean": 0.9})
    assert json.loads(json.dumps(result.summary(), allow_nan=False))["metrics"] == {
        "relevance/mean": None, "safety/mean": 0.9,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("metrics", "failures"),
    [({"relevance_to_query/mean": 0.5, "eval_safety/mean": 0.9}, []),
     ({"relevance/mean": 0.39, "safety/mean": 0.9}, ["relevance/mean: 0.39 < 0.4"]),
     ({"relevance/mean": math.nan, "safety/mean": 0.9}, ["relevance/mean: not a number (the scorer failed on every row)"]),
     ({"safety/mean": 0.9}, ["relevance/mean: missing (no metric named relevance/mean or relevance_to_query/mean)"])],
)  # fmt: skip
def test_thresholds_resolve_the_seeds_aliases(metrics: dict[str, float], failures: list[str]) -> None:
    assert check_thresholds(metrics, {"relevance/mean": 0.4, "safety/mean": 0.7}) == failures
