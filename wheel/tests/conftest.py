"""Fixtures: a real MLflow tracking store (sqlite) holding an experiment, and the HTTP stand-in."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from standin import StandIn


@dataclass(frozen=True)
class Store:
    uri: str
    experiment_id: str
    experiment_name: str


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """An sqlite tracking store with one experiment of three evaluated runs."""
    import mlflow

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root}/mlflow.db"
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("agent-quality", artifact_location=str(root / "artifacts"))
    for name, relevance, safety in (("baseline", 0.62, 0.91), ("prompt-v2", 0.71, 0.88), ("prompt-v3", 0.55, 0.97)):
        run = client.create_run(experiment_id, run_name=name)
        client.log_param(run.info.run_id, "prompt_version", name)
        client.log_metric(run.info.run_id, "relevance/mean", relevance)
        client.log_metric(run.info.run_id, "safety/mean", safety)
        client.set_terminated(run.info.run_id)
    return Store(uri, experiment_id, "agent-quality")


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn(secrets={("mlflow-eval", "databricks-token"): "dapi-standin-token"}) as server:
        yield server


@pytest.fixture
def closed_port_url() -> str:
    """A URL nothing listens on (the port was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/serving-endpoints/anthropic"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No job or agent variables from the outer environment; cwd in a temporary directory."""
    for name in ("DB_IS_JOB", "DB_JOB_ID", "DB_JOB_RUN_ID", "MLFLOW_AGENT_VOLUME_PATH", "SESSION_ID",
                 "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY", "DABS_MODEL",
                 "MLFLOW_EXPERIMENT_ID", "DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CONFIG_PROFILE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path
