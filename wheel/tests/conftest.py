"""Fixtures: a real MLflow tracking store (sqlite) holding an experiment, and the HTTP stand-in."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
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


@pytest.fixture(autouse=True)
def isolated_mlflow(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """MLflow's process-wide state is each test's own: no tracking or registry URI, active run or experiment
    left for a later test (a URI set with mlflow.set_tracking_uri wins over MLFLOW_TRACKING_URI: one test's store
    used to become every later test's), none taken from the outer environment."""
    import mlflow
    from mlflow.tracking import fluent

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")
    for name in names:
        monkeypatch.delenv(name, raising=False)

    def reset() -> None:
        for name in names:  # mlflow.set_experiment sets MLFLOW_EXPERIMENT_ID (for subprocesses)
            os.environ.pop(name, None)
        while mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        fluent._active_experiment_id = None

    reset()
    yield
    reset()


def _migrate(root: Path) -> Path:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    path = root / "mlflow.db"
    SqlAlchemyStore(f"sqlite:///{path}", str(root / "artifacts")).engine.dispose()
    return path


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty sqlite tracking and registry store with MLflow's migrations applied (seconds): made once per
    session, by whichever xdist worker needs it first (the others wait for it), copied by `fresh_store`."""
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the session's directory, above each worker's own
    template = shared / "mlflow-template"
    with FileLock(str(shared / "mlflow-template.lock")):
        if not (template / "mlflow.db").exists():
            template.mkdir(exist_ok=True)
            _migrate(template)
    return template / "mlflow.db"


def copy_store(template: Path, directory: Path) -> str:
    """A copy of the migrated store in `directory`, its default experiment's artifacts under it too."""
    path = directory / "mlflow.db"
    shutil.copyfile(template, path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0", [str(directory / "mlruns")])
    db.close()
    return f"sqlite:///{path}"


@pytest.fixture
def fresh_store(migrated_db: Path, tmp_path: Path) -> str:
    """A new, empty sqlite tracking and registry store of this test (its URI), in tmp_path."""
    return copy_store(migrated_db, tmp_path)


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory, migrated_db: Path) -> Store:
    """An sqlite tracking store with one experiment of three evaluated runs. Experiments the tests create in it
    keep their artifacts beside it (MLflow resolves its default ./mlruns against the working directory)."""
    import mlflow

    root = tmp_path_factory.mktemp("mlflow")
    uri = copy_store(migrated_db, root)
    cwd = os.getcwd()
    os.chdir(root)  # the store's default artifact root: ./mlruns here, not in the repository
    try:
        client = mlflow.MlflowClient(tracking_uri=uri)
        client.search_experiments()
    finally:
        os.chdir(cwd)
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
