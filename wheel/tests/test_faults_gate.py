"""`health-monitor deploy` (seed 002's gate) and the other console scripts under hostile input and serving faults
(issue #11): bad thresholds and options are usage errors before anything exists; the alias moves only once the
endpoint serves the version; `endpoint_created` is honest; the served entity carries MLflow tracing's
environment. The gate runs in-process against a sqlite MLflow and the stand-in's Serving Endpoints API."""

from __future__ import annotations

import json
import math
import textwrap
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
import pytest
from faultkit import run_main
from mlflow import MlflowClient

from agent_jobs import logs
from agent_jobs.errors import JobError
from agent_jobs.eval_agent import cli as eval_cli
from agent_jobs.health_monitor import cli, datasets, scorers
from agent_jobs.health_monitor.endpoints import EndpointSpec
from agent_jobs.health_monitor.evaluation import check_thresholds
from agent_jobs.health_monitor.gate import GateConfig, run_gate
from conftest import copy_store
from standin import TOKEN, Fault, StandIn

MODEL = "main.hm.health_monitor_agent"
ENDPOINT = "health-monitor-agent-test"
EXPERIMENT = "/Shared/test/health-monitor"
MODELS_EXPERIMENT = "/Shared/test/models"
BAD_EXPERIMENT = "/Shared/test/refused"  # what a refused run would have created: no test creates it
HEURISTICS = "response_length,no_errors,databricks_context"
THRESHOLDS = json.dumps({"response_length/mean": 0.1, "no_errors/mean": 0.3, "databricks_context/mean": 0.1})
GOOD = ("The SQL warehouse cost rose 40% this week because the serverless cluster ran the nightly job twice; "
        "check the Unity Catalog audit table and the job's schedule in Databricks.")  # fmt: skip
RECORDS = [{"inputs": {"query": "Why did our Databricks costs spike?"}},
           {"inputs": {"query": "Which jobs failed most often?"}}]  # fmt: skip
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


@pytest.fixture(scope="module")
def store(migrated_db: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """This module's sqlite MLflow (a copy of the session's migrated one: migrations cost seconds) with its
    experiments, their artifacts beside it. Its own, so setting it up again (a worker given another module's
    test between two of this one's tears module fixtures down) starts from an empty store."""
    root = tmp_path_factory.mktemp("gate")
    (root / "canned.py").write_text(CANNED)
    uri = copy_store(migrated_db, root)
    client = MlflowClient(tracking_uri=uri)
    for name in (EXPERIMENT, MODELS_EXPERIMENT):
        client.create_experiment(name, artifact_location=str(root / "artifacts" / name.rsplit("/", 1)[1]))
    return uri, root


@pytest.fixture
def workspace(store: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    """The session's MLflow, the stand-in's serving API, two evaluation records."""
    uri, directory = store
    for name in ("DB_IS_JOB", "DB_JOB_ID", "DB_JOB_RUN_ID", "DATABRICKS_CONFIG_PROFILE", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(directory)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.setenv(name, uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    monkeypatch.setattr(datasets, "evaluation_data", lambda name: RECORDS)
    with StandIn() as standin:
        monkeypatch.setenv("DATABRICKS_HOST", standin.url)
        monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
        yield standin
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    root = logging_root()
    for handler in [h for h in root.handlers if h.get_name() == logs._HANDLER_NAME]:
        root.removeHandler(handler)


def logging_root() -> Any:
    import logging

    return logging.getLogger()


@pytest.fixture
def model() -> str:
    """This test's own registered model (the store is shared by the session)."""
    return f"main.hm.agent_{uuid.uuid4().hex[:10]}"


def log_version(model: str) -> str:
    mlflow.set_experiment(MODELS_EXPERIMENT)
    with mlflow.start_run(run_name="log"):
        info = mlflow.pyfunc.log_model(
            name="agent",
            python_model="canned.py",
            model_config={"answer": GOOD},
            registered_model_name=model,
            pip_requirements=["mlflow-skinny"],  # given: MLflow would infer them in a subprocess (seconds) per version
        )
    return str(info.registered_model_version)


def deploy(model: str, *options: str) -> int:
    argv = ["deploy", "--catalog", "main", "--agent-schema", "hm", "--experiment", EXPERIMENT, "--model-name", model,
            "--promotion-target", "staging", "--mode", "enabled", "--thresholds", THRESHOLDS, "--scorers", HEURISTICS,
            "--endpoint-name", ENDPOINT, "--poll-seconds", "0.01", "--ready-timeout-minutes", "1", *options]  # fmt: skip
    return run_main(cli.main, argv)


def summary(out: str) -> dict[str, Any]:
    return dict(json.loads([line for line in out.splitlines() if line.startswith("{")][-1]))


def aliases(model: str) -> dict[str, str]:
    return {k: str(v) for k, v in MlflowClient().get_registered_model(model).aliases.items()}


def created(experiment: str = EXPERIMENT) -> bool:
    """Whether the gate's experiment exists in the module's store (a refused run must not create it)."""
    return mlflow.get_experiment_by_name(experiment) is not None


@pytest.mark.parametrize(
    ("options", "message"),
    [(("--thresholds", '{"no_errors/mean": NaN}'), "finite numbers in [0, 1]; not: no_errors/mean"),
     (("--thresholds", '{"no_errors/mean": -Infinity}'), "finite numbers in [0, 1]"),
     (("--thresholds", '{"no_errors/mean": -0.5}'), "finite numbers in [0, 1]"),
     (("--thresholds", '{"no_errors/mean": 1e999}'), "finite numbers in [0, 1]"),
     (("--thresholds", '{"no_errors/mean": 1' + "0" * 400 + "}"), "finite numbers in [0, 1]"),
     (("--thresholds", "[" * 100_000), "nested too deeply"),
     (("--thresholds", '{"\\u0007bell": 0.5}'), "printable metric names"),
     (("--scorers", "bogus"), "unknown scorer(s) 'bogus'"),
     (("--poll-seconds", "nan"), "is not a finite number"),
     (("--poll-seconds", "0"), "must be above 0"),
     (("--ready-timeout-minutes", "0"), "is not a whole number of at least 1"),
     (("--ready-timeout-minutes", "9" * 30), "is too large")],
)  # fmt: skip
def test_bad_deploy_options_exit_2_before_anything_exists(
    workspace: StandIn, capsys: pytest.CaptureFixture[str], options: tuple[str, ...], message: str
) -> None:
    """Today's NaN/-Infinity/negative threshold promoted a failing model; now any of these is a usage error
    before an experiment, an alias or an endpoint exists."""
    assert deploy("main.hm.never_registered", "--experiment", BAD_EXPERIMENT, *options) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not created(BAD_EXPERIMENT) and not workspace.serving and not workspace.requests


@pytest.mark.parametrize(
    ("command", "options", "message"),
    [("register-scorers", ("--scorers", "safety", "--sample-rate", "7"), "must be at least 0 and at most 1"),
     ("register-scorers", ("--scorers", "safety", "--sample-rate", "nan"), "is not a finite number"),
     ("register-scorers", ("--scorers", "bogus"), "unknown scorer(s) 'bogus'"),
     ("evaluate", ("--model-name", "main.hm.m", "--scorers", ""), "unknown scorer(s) none given")],
)  # fmt: skip
def test_bad_setup_options_exit_2_before_an_experiment_is_created(
    workspace: StandIn, capsys: pytest.CaptureFixture[str], command: str,
    options: tuple[str, ...], message: str,
) -> None:  # fmt: skip
    """`--sample-rate 7` and `--scorers bogus` used to create the experiment first, then fail."""
    argv = [command, "--catalog", "main", "--agent-schema", "hm", "--experiment", BAD_EXPERIMENT, *options]
    assert run_main(cli.main, argv) == 2
    assert message in capsys.readouterr().err and not created(BAD_EXPERIMENT)


def test_the_scorer_names_checked_up_front_are_the_ones_built() -> None:
    """The CLI checks names without importing MLflow; both lists must stay the same."""
    assert set(cli.SCORER_NAMES) == set(scorers.SCORERS)


def test_created_then_updated_endpoints_are_reported_as_such_and_carry_tracing(
    workspace: StandIn, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Created (endpoint_created), READY, then @staging moved; traces go to the gate's experiment. The next
    version updates the endpoint: endpoint_created is false."""
    version = log_version(model)
    assert deploy(model) == 0
    result = summary(capsys.readouterr().out)
    assert (result["promoted"], result["endpoint_created"], result["endpoint_action"]) == (True, True, "created")
    assert result["alias_rule"] == "after_endpoint_ready" and aliases(model) == {"staging": version}
    (entity,) = workspace.serving[ENDPOINT]["config"]["served_entities"]
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    assert entity["environment_vars"] == {"ENABLE_MLFLOW_TRACING": "true",
                                          "MLFLOW_EXPERIMENT_ID": experiment.experiment_id}  # fmt: skip
    newer = log_version(model)  # a second version: the same endpoint is updated, which is not "created"
    assert deploy(model) == 0
    result = summary(capsys.readouterr().out)
    assert (result["promoted"], result["endpoint_created"], result["endpoint_action"]) == (True, False, "updated")
    assert aliases(model) == {"staging": newer}


def test_a_failed_update_leaves_the_alias_on_the_version_still_served(
    workspace: StandIn, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing endpoint whose update fails keeps serving the old version, and the alias stays with it;
    the endpoint was updated, not created."""
    workspace.add_serving_endpoint(ENDPOINT, entity=model, update_fails=True)
    log_version(model)
    assert deploy(model) == 1
    out, err = capsys.readouterr()
    result = summary(out)
    assert (result["passed"], result["promoted"], result["endpoint_created"]) == (True, False, False)
    assert result["endpoint_action"] == "updated" and "UPDATE_FAILED" in result["failures"][0]
    assert "@staging not moved" in err and aliases(model) == {}


def test_a_serving_api_error_on_create_changes_nothing(
    workspace: StandIn, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 500 from the Serving Endpoints API: no endpoint, no alias, a failed summary (exit 1)."""
    workspace.fault("POST", "/api/2.0/serving-endpoints", Fault("error", 500))
    log_version(model)
    assert deploy(model) == 1
    result = summary(capsys.readouterr().out)
    assert (result["promoted"], result["endpoint_created"]) == (False, False) and aliases(model) == {}
    assert "Could not create serving endpoint" in result["failures"][0] and not workspace.serving


class Recorder:
    """The gate's endpoint interface and the registry's alias call, in one ordered list."""

    def __init__(self, client: MlflowClient) -> None:
        self.calls: list[str] = []
        self.client = client
        self.permission_error: str | None = None

    def deploy(self, spec: EndpointSpec) -> str:
        self.calls.append("deploy")
        return "created"

    def wait_ready(self, name: str, timeout_seconds: float) -> None:
        self.calls.append("ready")

    def set_permissions(self, name: str, permissions: Mapping[str, str]) -> None:
        self.calls.append("permissions")
        if self.permission_error:
            raise JobError(self.permission_error)

    def __getattr__(self, name: str) -> Any:  # the registry client's other methods
        return getattr(self.client, name)

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self.calls.append("alias")
        self.client.set_registered_model_alias(name, alias, version)


def test_the_alias_moves_only_after_the_endpoint_is_ready(workspace: StandIn, model: str) -> None:
    """The order the README promises: deploy, READY, alias, then permissions; a permissions failure fails
    the run but leaves the alias on the version the endpoint now serves."""
    version = log_version(model)
    recorder = Recorder(MlflowClient())
    recorder.permission_error = "PERMISSION_DENIED: cannot grant CAN_QUERY"
    config = GateConfig(model_name=model, model_version="", promotion_target="staging", mode="enabled",
                        thresholds=json.loads(THRESHOLDS), experiment=EXPERIMENT, endpoint_name=ENDPOINT,
                        endpoint_permissions={"agent-users": "CAN_QUERY"})  # fmt: skip
    built = scorers.build_scorers(HEURISTICS.split(","))
    result = run_gate(config, recorder, lambda: recorder, built, RECORDS)  # type: ignore[arg-type, return-value]
    assert result.promoted and recorder.calls == ["deploy", "ready", "alias", "permissions"]
    assert result.failures == [f"endpoint {ENDPOINT} permissions: PERMISSION_DENIED: cannot grant CAN_QUERY"]
    assert aliases(model) == {"staging": version}


@pytest.mark.parametrize("metric", [math.inf, -math.inf])
def test_a_non_finite_metric_fails_by_name(metric: float) -> None:
    """An infinite score is a failure named like a missing one, never a pass."""
    assert check_thresholds({"no_errors/mean": metric}, {"no_errors/mean": 0.3}) == [
        f"no_errors/mean: {metric} is not a finite number"
    ]


def test_thresholds_given_programmatically_are_checked_too() -> None:
    """run_gate refuses what the CLI refuses, whoever calls it."""
    config = GateConfig(model_name=MODEL, model_version="", promotion_target="staging", mode="enabled",
                        thresholds={"no_errors/mean": math.nan}, experiment=EXPERIMENT, endpoint_name=ENDPOINT)  # fmt: skip
    result = run_gate(config, object(), lambda: None, [], RECORDS)  # type: ignore[arg-type, return-value]
    assert result.failures == ["thresholds must be finite numbers in [0, 1]; not: no_errors/mean"]


@pytest.mark.parametrize(
    ("options", "message"),
    [(("--max-runs", "0"), "is not a whole number of at least 1"), (("--max-runs", "nan"), "is not a whole number"),
     (("--max-runs", "9" * 40), "is too large"), (("--token-secret", "noslash"), "must be <scope>/<key>")],
)  # fmt: skip
def test_mlflow_eval_usage_errors(capsys: pytest.CaptureFixture[str], options: tuple[str, ...], message: str) -> None:
    """`mlflow-eval --max-runs 0` and `--token-secret noslash` are usage errors, not tracebacks."""
    assert run_main(eval_cli.main, ["--autonomous", "--experiment-id", "1", *options]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "noslash" not in err.split("error:")[-1]


def test_a_job_error_message_is_redacted_on_the_way_out(capsys: pytest.CaptureFixture[str]) -> None:
    """Whatever an entry point fails with, a registered secret never reaches stderr."""
    from agent_jobs.entry import entry_point
    from agent_jobs.redact import REDACTOR

    REDACTOR.add("sk-entry-point-secret-0042")

    def fail() -> None:
        raise JobError("upstream said: bad key sk-entry-point-secret-0042")

    with pytest.raises(SystemExit):
        entry_point("x", fail)
    assert capsys.readouterr().err == "x: error: upstream said: bad key [REDACTED]\n"
