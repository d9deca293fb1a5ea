"""The health monitor's setup tasks (seed 002): tables and volumes, prompts, scorers, the evaluation dataset and
the agent model, against a real MLflow store (sqlite, tracking and registry) and the real databricks-sdk
talking to the local stand-in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient

from agent_jobs.errors import JobError
from agent_jobs.health_monitor import datasets, infrastructure, model, prompt_registry, scorers
from agent_jobs.sql import WarehouseSql
from standin import TOKEN, StandIn


@pytest.fixture
def store(clean_env: Path, fresh_store: str) -> str:
    """A fresh sqlite tracking and registry store, the working directory a temporary one (artifacts). (The
    autouse `isolated_mlflow` unsets both URIs after the test: restoring `get_tracking_uri()` here pinned the
    default ./mlruns store for every later test.)"""
    import mlflow

    mlflow.set_tracking_uri(fresh_store)
    mlflow.set_registry_uri(fresh_store)
    return fresh_store


def workspace(standin: StandIn) -> WorkspaceClient:
    return WorkspaceClient(host=standin.url, token=TOKEN)


# --- infrastructure


def test_infrastructure_creates_the_tables_and_checks_pulumis_volumes(standin: StandIn) -> None:
    """The volumes are Pulumi's: read, never created; the tables are created if missing, on the warehouse."""
    for name in infrastructure.VOLUMES:
        standin.volumes[f"main.agent.{name}"] = {"full_name": f"main.agent.{name}", "volume_type": "MANAGED"}
    client = workspace(standin)

    done = infrastructure.create_infrastructure(client, WarehouseSql(client, "wh1"), "main", "agent")

    statements = [s["statement"] for s in standin.statements]
    assert len(statements) == 2
    assert statements[0].startswith("CREATE TABLE IF NOT EXISTS `main`.`agent`.`inference_request_logs` (")
    assert statements[1].startswith("CREATE TABLE IF NOT EXISTS `main`.`agent`.`inference_response_logs` (")
    assert "domains ARRAY<STRING>" in statements[1] and statements[1].endswith("USING DELTA")
    assert all("parameters" not in s and s["warehouse_id"] == "wh1" for s in standin.statements)
    assert not any("SCHEMA" in s for s in statements), "the schema is Pulumi's"
    assert standin.posts("/api/2.1/unity-catalog/volumes") == [], "the volumes are Pulumi's"
    assert done == [
        "volume main.agent.runbooks: exists",
        "volume main.agent.embeddings: exists",
        "volume main.agent.artifacts: exists",
        "table main.agent.inference_request_logs: ensured",
        "table main.agent.inference_response_logs: ensured",
    ]


def test_infrastructure_fails_naming_the_missing_volumes_before_any_sql(standin: StandIn) -> None:
    """A stack whose volumes are missing was not deployed (or not with the health monitor): the task says which
    volumes and that `pulumi up` creates them, creates none itself, and runs no SQL."""
    standin.volumes["main.agent.runbooks"] = {"full_name": "main.agent.runbooks", "volume_type": "MANAGED"}
    client = workspace(standin)
    with pytest.raises(JobError) as failure:
        infrastructure.create_infrastructure(client, WarehouseSql(client, "wh1"), "main", "agent")
    assert str(failure.value).startswith(
        "volumes main.agent.embeddings, main.agent.artifacts not found: Pulumi creates the agent's volumes "
        "(run `pulumi up` for this stack"
    )
    assert standin.posts("/api/2.1/unity-catalog/volumes") == [] and standin.statements == []
    assert set(standin.volumes) == {"main.agent.runbooks"}


@pytest.mark.parametrize(("catalog", "schema"), [("main`; DROP TABLE x; --", "agent"), ("main", "a.b"), ("", "x")])
def test_infrastructure_refuses_unsafe_identifiers_before_any_call(standin: StandIn, catalog: str, schema: str) -> None:
    client = workspace(standin)
    with pytest.raises(JobError, match=r"invalid (catalog|schema) name"):
        infrastructure.create_infrastructure(client, WarehouseSql(client, "wh1"), catalog, schema)
    assert standin.statements == []


def test_infrastructure_reports_an_unreadable_volume(standin: StandIn) -> None:
    class NoSql:
        def execute(self, statement: str, parameters: dict[str, Any] | None = None) -> None:
            pass

    standin.denied.add(TOKEN)
    with pytest.raises(JobError, match=r"cannot read volume main\.agent\.runbooks: token not allowed"):
        infrastructure.create_infrastructure(workspace(standin), NoSql(), "main", "agent")
    assert standin.posts("/api/2.1/unity-catalog/volumes") == []


# --- prompts


def prompt_versions(name: str) -> list[int]:
    import mlflow

    return sorted(int(v.version) for v in mlflow.MlflowClient().search_prompt_versions(name))


def test_prompts_are_registered_once_and_again_only_when_changed(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    first = prompt_registry.register_prompts("main", "agent", experiment="/Shared/health-monitor")
    assert first == {f"main.agent.{name}": 1 for name in prompt_registry.PROMPTS}
    assert mlflow.genai.load_prompt("main.agent.intent_classifier", version=1).template == prompt_registry.prompt_text(
        "intent_classifier"
    )

    assert prompt_registry.register_prompts("main", "agent") == first
    assert all(prompt_versions(name) == [1] for name in first), "a rerun adds no version"

    changed = prompt_registry.prompt_text("cost_worker") + "\nAlways show the top five SKUs.\n"
    original = prompt_registry.prompt_text
    monkeypatch.setattr(
        prompt_registry, "prompt_text", lambda name: changed if name == "cost_worker" else original(name)
    )
    third = prompt_registry.register_prompts("main", "agent")
    assert third == {**first, "main.agent.cost_worker": 2}
    assert mlflow.genai.load_prompt("main.agent.cost_worker", version=2).template == changed

    experiment = mlflow.get_experiment_by_name("/Shared/health-monitor")
    runs = mlflow.search_runs([experiment.experiment_id], filter_string="tags.run_type = 'prompt_registration'")
    assert len(runs) == 3
    assert sorted(runs["params.new_versions"]) == ["0", "1", "8"]


def test_prompt_texts_ship_in_the_wheel() -> None:
    for name in prompt_registry.PROMPTS:
        assert len(prompt_registry.prompt_text(name)) > 200, name
    assert "{{query}}" in prompt_registry.prompt_text("intent_classifier")
    assert "{{findings}}" in prompt_registry.prompt_text("response_synthesizer")
    with pytest.raises(JobError, match="known prompts: orchestrator_system"):
        prompt_registry.prompt_text("sales_worker")


# --- scorers

ANSWER = (
    "DBU spend in system.billing.usage rose 12% week over week; the nightly ETL job on an all-purpose cluster drove it."
)
SHAPES = [
    ANSWER,
    {"response": ANSWER},
    {"content": ANSWER},
    {"output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": ANSWER}]}]},
    {"choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}}]},
    json.dumps({"output": [{"content": [{"type": "output_text", "text": ANSWER}]}]}),
]


@pytest.mark.parametrize("outputs", SHAPES)
def test_extract_response_text_handles_every_output_shape(outputs: Any) -> None:
    assert scorers.extract_response_text(outputs) == ANSWER


@pytest.mark.parametrize("outputs", SHAPES)
def test_heuristics_score_every_shape_alike(outputs: Any) -> None:
    """The seed's lesson: scorers that only read one shape score 0.0 on the others."""
    built = scorers.build_scorers(["response_length", "no_errors", "databricks_context"])
    assert [s(outputs=outputs) for s in built] == [1.0, 1.0, 1.0]


def test_heuristics_tell_answers_from_failures() -> None:
    length, errors, context = scorers.build_scorers(["response_length", "no_errors", "databricks_context"])
    assert [length(outputs=o) for o in (None, "", "x" * 50, "x" * 6000)] == [0.0, 0.0, 0.5, 0.5]
    assert errors(outputs={"response": "3 jobs failed overnight: retry them with backoff."}) == 1.0
    assert errors(outputs="The ETL job failed with org.apache.spark.SparkException: Job aborted.") == 1.0
    assert errors(outputs="Error: the LLM endpoint returned HTTP 429") == 0.0
    assert errors(outputs={"response": "An error occurred: Traceback (most recent call last): ..."}) == 0.0
    assert errors(outputs={"output": []}) == 0.0
    assert context(outputs="The weather is nice today.") == 0.0
    assert context(outputs="Check the warehouse.") == pytest.approx(1 / 3)


def test_build_scorers_refuses_an_unknown_name_and_builds_every_judge() -> None:
    with pytest.raises(JobError, match=r"unknown scorer.*guidelines.*known scorers: response_length, no_errors"):
        scorers.build_scorers(["relevance", "guidelines"])
    for judge_model in (None, "databricks:/databricks-claude-sonnet-4"):
        built = scorers.build_scorers(list(scorers.JUDGES), judge_model)
        assert [s.name for s in built] == list(scorers.JUDGES)
        assert all(getattr(s, "model", judge_model) == judge_model for s in built)
    assert set(scorers.JUDGES) == {"relevance", "safety", "cost_accuracy", "security_compliance",
                                   "reliability_accuracy", "performance_accuracy", "quality_accuracy"}  # fmt: skip
    (cost,) = scorers.build_scorers(["cost_accuracy"])
    assert cost.guidelines[0].startswith("If the request is not about cost")


def test_heuristic_metrics_are_named_name_slash_mean(store: str) -> None:
    """What the gate's thresholds rely on: mlflow.genai.evaluate reports `<scorer>/mean`."""
    import mlflow

    mlflow.set_experiment("metric-names")
    records = [{"inputs": {"query": q}} for q in ("Which jobs failed?", "What drove spend?")]
    result = mlflow.genai.evaluate(
        data=records,
        predict_fn=lambda query: {"output": [{"content": [{"type": "output_text", "text": f"{ANSWER} ({query})"}]}]},
        scorers=scorers.build_scorers(["response_length", "no_errors", "databricks_context"]),
    )
    assert {k: float(v) for k, v in result.metrics.items()} == {
        "response_length/mean": 1.0,
        "no_errors/mean": 1.0,
        "databricks_context/mean": 1.0,
    }


def test_register_scorers_registers_the_judges_for_monitoring(store: str) -> None:
    import mlflow
    from mlflow.genai.scorers import list_scorers

    experiment_id = mlflow.set_experiment("monitoring").experiment_id
    names = ["response_length", "relevance", "safety", "cost_accuracy"]
    assert scorers.register_scorers(names, None, 0, experiment_id=experiment_id) == names[1:]
    assert sorted(s.name for s in list_scorers(experiment_id=experiment_id)) == ["cost_accuracy", "relevance", "safety"]
    with pytest.raises(JobError, match="between 0 and 1"):
        scorers.register_scorers(names, None, 1.5)
    # Outside Databricks, sampling needs an AI-gateway judge: the refusal names the scorer.
    with pytest.raises(JobError, match=r"cannot register scorer relevance: .*gateway"):
        scorers.register_scorers(["relevance"], None, 0.1, experiment_id=experiment_id)


# --- datasets


def test_evaluation_records_cover_every_domain() -> None:
    records = datasets.evaluation_records()
    assert len(records) >= 10
    assert {r["tags"]["domain"] for r in records} == set(datasets.DOMAINS)
    for record in records:
        assert list(record["inputs"]) == ["query"] and record["inputs"]["query"].endswith("?")
        assert record["expectations"]["expected_facts"] and record["expectations"]["guidelines"]
    assert len({r["inputs"]["query"] for r in records}) == len(records)


def test_evaluation_dataset_is_created_once_and_merging_again_adds_no_duplicates(store: str) -> None:
    import mlflow
    from mlflow.genai.datasets import get_dataset, search_datasets

    experiment_id = mlflow.set_experiment("datasets").experiment_id
    first = datasets.create_evaluation_dataset("main.agent.evaluation_dataset", experiment_id)
    second = datasets.create_evaluation_dataset("main.agent.evaluation_dataset", experiment_id)

    assert first == second
    assert len(search_datasets(filter_string="name = 'main.agent.evaluation_dataset'")) == 1
    frame = get_dataset(dataset_id=first).to_df()
    assert len(frame) == len(datasets.evaluation_records())
    assert sorted(i["query"] for i in frame["inputs"]) == sorted(
        r["inputs"]["query"] for r in datasets.evaluation_records()
    )


def test_an_ambiguous_dataset_name_is_an_error_not_a_third_dataset(store: str) -> None:
    import mlflow
    from mlflow.genai.datasets import create_dataset, search_datasets

    experiment_id = mlflow.set_experiment("datasets").experiment_id
    for _ in range(2):
        create_dataset(name="evaluation_dataset", experiment_id=experiment_id)
    with pytest.raises(JobError, match="cannot read evaluation dataset evaluation_dataset: Multiple datasets"):
        datasets.create_evaluation_dataset("evaluation_dataset", experiment_id)
    assert len(search_datasets(filter_string="name = 'evaluation_dataset'")) == 2


# --- the agent model


def test_log_agent_model_registers_a_version_without_alias_that_answers(
    store: str, standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    name = "main.agent.health_monitor_agent"
    assert model.log_agent_model(name, "databricks-claude-sonnet-4", "/Shared/health-monitor") == "1"
    assert model.log_agent_model(name, "databricks-claude-sonnet-4", "/Shared/health-monitor") == "2"

    client = mlflow.MlflowClient()
    assert client.get_registered_model(name).aliases == {}
    version = client.get_model_version(name, "2")
    assert client.get_run(version.run_id).data.tags["run_type"] == "model_logging"
    requirements = Path(mlflow.pyfunc.get_model_dependencies(f"models:/{name}/2")).read_text().split()
    assert requirements == ["mlflow", "databricks-sdk"], "no version pins (seed 002)"

    monkeypatch.setenv("DATABRICKS_HOST", standin.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/2")
    assert loaded.metadata.resources == {
        "api_version": "1",
        "databricks": {"serving_endpoint": [{"name": "databricks-claude-sonnet-4"}]},
    }
    question = {"messages": [{"role": "user", "content": "Which jobs failed last night?"}]}
    assert loaded.predict(question) == {"response": standin.chat_answer}

    (call,) = standin.posts("/serving-endpoints/databricks-claude-sonnet-4/invocations")
    assert call["headers"]["Authorization"] == f"Bearer {TOKEN}"
    system, user = call["body"]["messages"]
    assert system["role"] == "system" and "Databricks Health Monitor" in system["content"]
    assert "cost specialist" in system["content"] and "data quality specialist" in system["content"]
    assert user == {"role": "user", "content": "Which jobs failed last night?"}

    import pandas as pd

    standin.chat_answer = "Two jobs failed."
    batch = pd.DataFrame({"messages": [question["messages"], question["messages"]]})
    assert loaded.predict(batch) == [{"response": "Two jobs failed."}] * 2


def test_log_agent_model_refuses_a_name_outside_a_schema(store: str) -> None:
    with pytest.raises(JobError, match=r"<catalog>\.<schema>\.<model>"):
        model.log_agent_model("health_monitor_agent", "databricks-claude-sonnet-4", "/Shared/health-monitor")
