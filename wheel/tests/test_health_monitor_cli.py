"""Seed 002's two jobs end to end through the `health-monitor` entry point, as their tasks call it: a real
sqlite MLflow (tracking and registry), the real databricks-sdk against the stand-in (SQL warehouse, volumes, the
LLM endpoint the agent model asks, the serving endpoints the gate creates). Judges need a workspace, so the
scorers here are the seed's heuristics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient

from agent_jobs.health_monitor import cli
from standin import TOKEN, StandIn

MODEL = "main.hm.health_monitor_agent"
HEURISTICS = "response_length,no_errors,databricks_context"
THRESHOLDS = json.dumps({"response_length/mean": 0.1, "no_errors/mean": 0.3, "databricks_context/mean": 0.1})
GOOD = (
    "Your DBU spend rose 18% this week: the nightly cluster of job etl-orders ran twice after a retry, and the "
    "SQL warehouse stayed up over the weekend. Check system.billing.usage in the Databricks workspace."
)
BAD = "Error: an error occurred while querying the system tables. Traceback (most recent call last): ..."


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_store: str) -> Iterator[StandIn]:
    for name in ("DB_IS_JOB", "DB_JOB_ID", "DB_JOB_RUN_ID", "DATABRICKS_CONFIG_PROFILE", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    uri = fresh_store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    with StandIn() as standin:
        monkeypatch.setenv("DATABRICKS_HOST", standin.url)
        monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
        yield standin
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


def health_monitor(command: str, *options: str, experiment: bool = True) -> None:
    base = ["--catalog", "main", "--agent-schema", "hm"]
    cli.main([command, *base, *(["--experiment", "/Shared/test/health-monitor"] if experiment else []), *options])


def deploy(mode: str = "enabled") -> None:
    health_monitor(
        "deploy", "--model-name", MODEL, "--model-version", "", "--promotion-target", "staging", "--mode", mode,
        "--thresholds", THRESHOLDS, "--scorers", HEURISTICS, "--endpoint-name", "health-monitor-agent-test",
        "--endpoint-permissions", '{"agent-users": "CAN_QUERY"}', "--poll-seconds", "0.01",
        "--dataset", "health_monitor_eval",
    )  # fmt: skip


def last_json(out: str) -> dict[str, Any]:
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def test_setup_then_gate_promotes_and_serves_a_good_model_and_refuses_a_bad_one(
    workspace: StandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace.chat_answer = GOOD
    volumes = {"main.hm.runbooks", "main.hm.embeddings", "main.hm.artifacts"}  # Pulumi's
    workspace.volumes.update({name: {"full_name": name, "volume_type": "MANAGED"} for name in volumes})
    health_monitor("create-infrastructure", "--warehouse-id", "wh1", experiment=False)
    assert sum("CREATE TABLE IF NOT EXISTS" in s["statement"] for s in workspace.statements) == 2
    assert set(workspace.volumes) == volumes and not workspace.posts("/api/2.1/unity-catalog/volumes")
    health_monitor("register-prompts")
    health_monitor("create-datasets", "--dataset", "health_monitor_eval")
    health_monitor("log-model", "--model-name", MODEL, "--llm-endpoint", "databricks-claude-sonnet-4")
    health_monitor("evaluate", "--model-name", MODEL, "--scorers", HEURISTICS, "--dataset", "health_monitor_eval")
    client = MlflowClient()
    assert dict(client.get_registered_model(MODEL).aliases) == {}  # setup leaves promotion to the gate
    assert not workspace.serving  # and creates no endpoint

    deploy()
    summary = last_json(capsys.readouterr().out)
    assert (summary["passed"], summary["promoted"], summary["endpoint_created"], summary["version"]) == (
        True, True, True, "1",
    )  # fmt: skip
    assert {k: str(v) for k, v in client.get_registered_model(MODEL).aliases.items()} == {"staging": "1"}
    endpoint = workspace.serving["health-monitor-agent-test"]
    (entity,) = endpoint["config"]["served_entities"]
    assert (entity["entity_name"], entity["entity_version"]) == (MODEL, "1")
    assert {
        "group_name": "agent-users",
        "all_permissions": [{"permission_level": "CAN_QUERY", "inherited": False}],
    } in (endpoint["acl"])

    workspace.chat_answer = BAD  # a new version whose answers fail the gate
    health_monitor("log-model", "--model-name", MODEL, "--llm-endpoint", "databricks-claude-sonnet-4")
    with pytest.raises(SystemExit) as exited:
        deploy()
    assert exited.value.code == 1
    captured = capsys.readouterr()
    summary = last_json(captured.out)
    assert (summary["passed"], summary["promoted"], summary["version"]) == (False, False, "2")
    assert any(f.startswith("no_errors/mean") for f in summary["failures"])
    assert "deployment gate failed" in captured.err
    assert {k: str(v) for k, v in client.get_registered_model(MODEL).aliases.items()} == {"staging": "1"}
    (entity,) = workspace.serving["health-monitor-agent-test"]["config"]["served_entities"]
    assert entity["entity_version"] == "1"  # the endpoint still serves the good version


def test_bad_arguments_are_usage_errors(workspace: StandIn, capsys: pytest.CaptureFixture[str]) -> None:
    bad = (["--thresholds", '{"safety/mean": "high"}'], ["--thresholds", "[0.5]"], ["--mode", "on"],
           ["--endpoint-permissions", '{"agent-users": "CAN_RUN"}'])  # fmt: skip
    for options in bad:
        args = ["--model-name", MODEL, "--promotion-target", "staging", "--mode", "enabled", "--thresholds", "{}",
                "--scorers", HEURISTICS, "--endpoint-name", "e", *options]  # fmt: skip
        with pytest.raises(SystemExit) as exited:
            health_monitor("deploy", *args)
        assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "thresholds must be numbers; not: safety/mean" in err
    assert "permission of agent-users must be one of CAN_VIEW, CAN_QUERY, CAN_MANAGE" in err
