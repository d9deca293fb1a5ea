"""`prompt-optimizer` (agent_jobs.prompt_optimizer) end to end: the real DSPy (COPRO, Evaluate) and litellm
against a local OpenAI-compatible stand-in LM with deterministic answers, the real databricks-sdk against a
stand-in Statement Execution API holding the training table, a real sqlite MLflow store, and a prompts
volume in a temporary directory laid out as the serving app reads it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from optimizer_standin import ALWAYS, NAIVE, RULE, OptimizerStandIn

from agent_jobs.errors import JobError
from agent_jobs.prompt_optimizer import cli
from agent_jobs.prompt_optimizer.data import Columns, SparkReader, WarehouseReader, load, split
from agent_jobs.prompt_optimizer.optimize import Endpoint, check_endpoint, language_model
from conftest import Store

# Its Spark test: one xdist worker runs this group (--dist loadgroup, tests/conftest.py), so one JVM starts.
pytestmark = pytest.mark.xdist_group("spark")

TABLE = "main.agents.prompt_training"
TOKEN = "dapi-optimizer-token"
COLUMNS = ["agent_name", "input", "expected", "note"]


def fraud_rows(n: int = 24, agent: str = "fraud_detector") -> list[list[Any]]:
    """Transactions of 100 .. 100n; FRAUD above 1000 (the rule the better prompt states)."""
    return [
        [agent, json.dumps({"transaction_id": f"txn_{i}", "amount": 100 * i}), "FRAUD" if 100 * i > 1000 else "OK", ""]
        for i in range(1, n + 1)
    ]


def kyc_rows(n: int = 20) -> list[list[Any]]:
    return [["kyc_checker", json.dumps({"customer": f"c{i}", "amount": 10 * i}), "OK", ""] for i in range(n)]


@pytest.fixture(scope="module")
def server() -> Iterator[OptimizerStandIn]:
    with OptimizerStandIn() as s:
        yield s


@pytest.fixture
def lm_standin(server: OptimizerStandIn) -> OptimizerStandIn:
    server.reset()
    server.add_table(TABLE, 7, COLUMNS, fraud_rows() + kyc_rows())
    return server


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    root = tmp_path / "Volumes" / "main" / "agents" / "prompts"
    (root / "base").mkdir(parents=True)
    (root / "base" / "fraud_detector.md").write_text(NAIVE + "\n", encoding="utf-8")
    (root / "base" / "kyc_checker.md").write_text(NAIVE + "\n", encoding="utf-8")
    return root


@pytest.fixture
def workspace_env(
    monkeypatch: pytest.MonkeyPatch, clean_env: Path, lm_standin: OptimizerStandIn, mlflow_store: Store
) -> Iterator[OptimizerStandIn]:
    """The job's environment: workspace credentials (databricks-sdk) and the MLflow store (set explicitly:
    another test may have set MLflow's process-wide tracking URI, which wins over the variable)."""
    import mlflow

    monkeypatch.setenv("DATABRICKS_HOST", lm_standin.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store.uri)
    mlflow.set_tracking_uri(mlflow_store.uri)
    yield lm_standin
    mlflow.set_tracking_uri(None)


def argv(volume: Path, experiment: str, *extra: str, job: bool = True) -> list[str]:
    args = ["--table", TABLE, "--prompts-volume", str(volume), "--endpoint", "agents-llm", "--experiment", experiment,
            "--warehouse-id", "wh-123", "--breadth", "2", "--depth", "1", "--threads", "2", "--min-examples", "10",
            *extra]  # fmt: skip
    return [*args, "--job-id", "7", "--job-run-id", "9"] if job else args


def runs(store: Store, experiment: str) -> list[Any]:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=store.uri)
    found = client.get_experiment_by_name(experiment)
    return [] if found is None else client.search_runs([found.experiment_id])


def test_a_better_candidate_is_promoted_with_its_version_metrics_and_data(
    workspace_env: OptimizerStandIn, volume: Path, mlflow_store: Store
) -> None:
    """The nightly run: fraud_detector's base prompt gets ~40 % of the holdout right, DSPy's candidate (stating
    the rule) 100 %: it is written to optimised/fraud_detector.json (and a history copy) with its version, its
    holdout metrics, the table, Delta version and row hash it was trained on, and its MLflow run; kyc_checker,
    already perfect, keeps its prompt and says why. Everything is logged to the experiment, the result file
    says succeeded, and every LM call went to the named endpoint with the workspace's token."""
    cli.main(argv(volume, "/Shared/optimizer-better"))

    record = json.loads((volume / "optimised" / "fraud_detector.json").read_text())
    assert record["text"] == RULE
    assert record["version"].startswith("dspy-") and record["previous_version"].startswith("base-")
    assert record["metrics"]["holdout_accuracy"] == 1.0 and record["metrics"]["previous_holdout_accuracy"] < 0.7
    trained = record["trained_on"]
    assert (trained["table"], trained["version"], len(trained["rows_sha256"])) == (TABLE, 7, 64)
    assert trained["train"] + trained["holdout"] == 24 and trained["holdout"] >= 1
    history = volume / "optimised" / "history" / "fraud_detector" / f"{record['version']}.json"
    assert json.loads(history.read_text()) == record
    assert not (volume / "optimised" / "kyc_checker.json").exists()

    result = json.loads((volume / "optimiser" / "last_run.json").read_text())
    assert result["status"] == "succeeded" and result["data"]["version"] == 7
    assert result["agents"]["fraud_detector"]["outcome"] == "promoted"
    kept = result["agents"]["kyc_checker"]
    assert kept["outcome"] == "kept" and (
        "against the current 1.000" in kept["reason"] or "no instructions" in kept["reason"]
    )

    found = {r.data.tags.get("mlflow.runName"): r for r in runs(mlflow_store, "/Shared/optimizer-better")}
    child = found["fraud_detector"]
    assert child.data.tags["outcome"] == "promoted" and child.data.tags["version"] == record["version"]
    assert child.data.params["table_version"] == "7" and child.data.params["rows_sha256"] == trained["rows_sha256"]
    assert child.data.metrics["candidate_score"] == 1.0 and child.data.metrics["current_score"] < 0.7
    assert child.info.run_id == record["mlflow_run_id"]
    assert found["kyc_checker"].data.tags["outcome"] == "kept"
    assert any(name.startswith("prompt-optimizer-") for name in found)

    assert any("VERSION AS OF 7" in s for s in workspace_env.statements)
    calls = workspace_env.chat
    assert calls and {c["model"] for c in calls} == {"agents-llm"} and {c["authorization"] for c in calls} == {TOKEN}


def test_a_candidate_that_is_not_better_by_the_margin_is_not_written(
    workspace_env: OptimizerStandIn, volume: Path, mlflow_store: Store
) -> None:
    """With a margin of 0.9, even a candidate that is right where the base is wrong half the time does not
    beat it by enough: nothing is written, the result file and the MLflow run say kept and give the scores."""
    cli.main(argv(volume, "/Shared/optimizer-margin", "--margin", "0.9", "--agents", "fraud_detector"))
    assert not (volume / "optimised").exists()
    agent = json.loads((volume / "optimiser" / "last_run.json").read_text())["agents"]["fraud_detector"]
    assert agent["outcome"] == "kept" and "promotion needs at least +0.900" in agent["reason"]
    assert agent["metrics"]["candidate_score"] == 1.0
    (child,) = [
        r
        for r in runs(mlflow_store, "/Shared/optimizer-margin")
        if r.data.tags.get("mlflow.runName") == "fraud_detector"
    ]
    assert child.data.tags["outcome"] == "kept"


def test_a_worse_candidate_never_replaces_the_current_optimised_prompt(
    workspace_env: OptimizerStandIn, volume: Path
) -> None:
    """The current prompt is an optimised one that states the rule (100 %); DSPy only proposes 'always FRAUD'
    (worse): the optimised file is left byte for byte as it was."""
    (volume / "optimised").mkdir()
    current = {"version": "dspy-20261130T020000Z-aaaaaaaaaaaa", "text": RULE}
    (volume / "optimised" / "fraud_detector.json").write_text(json.dumps(current))
    before = (volume / "optimised" / "fraud_detector.json").read_bytes()
    workspace_env.proposals = [ALWAYS]
    cli.main(argv(volume, "/Shared/optimizer-worse", "--agents", "fraud_detector"))
    assert (volume / "optimised" / "fraud_detector.json").read_bytes() == before
    assert list((volume / "optimised").iterdir()) == [volume / "optimised" / "fraud_detector.json"]
    agent = json.loads((volume / "optimiser" / "last_run.json").read_text())["agents"]["fraud_detector"]
    assert agent["outcome"] == "kept" and agent["current_version"] == current["version"]
    assert agent["metrics"]["current_score"] == 1.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("missing_column", "lacks the column(s) expected; it needs agent_name, input, expected"),
        ("empty", "is empty"),
        (
            "too_few",
            "too few examples in main.agents.prompt_training (at least 10 per agent are needed): fraud_detector: 6",
        ),
        ("bad_agent", "agent '../../etc/passwd' is not an agent name"),
        ("null_value", "row 3: an empty agent_name, input or expected"),
        (
            "no_table",
            "cannot read the training table main.agents.prompt_training: SQL statement FAILED: [TABLE_OR_VIEW_NOT_FOUND]",
        ),
        ("unknown_agent", "no examples in main.agents.prompt_training for agent(s) loan_advisor"),
        ("no_prompt", "agent kyc_checker has no prompt in the prompts volume"),
    ],
)
def test_bad_data_is_a_clear_failure_that_changes_nothing(
    workspace_env: OptimizerStandIn, volume: Path, mlflow_store: Store, change: str, message: str
) -> None:
    """Unusable training data (or an agent without a prompt) fails the job with one message saying what is
    wrong, before any LM call: no prompt written, no MLflow run, and the result file says failed and why."""
    rows = fraud_rows() + kyc_rows()
    extra: list[str] = []
    if change == "missing_column":
        workspace_env.add_table(TABLE, 7, ["agent_name", "input", "label"], [r[:3] for r in rows])
    elif change == "empty":
        workspace_env.add_table(TABLE, 7, COLUMNS, [])
    elif change == "too_few":
        workspace_env.add_table(TABLE, 7, COLUMNS, fraud_rows(6) + kyc_rows())
    elif change == "bad_agent":
        workspace_env.add_table(TABLE, 7, COLUMNS, [*rows, ["../../etc/passwd", "{}", "OK", ""]])
    elif change == "null_value":
        rows[2][2] = None
        workspace_env.add_table(TABLE, 7, COLUMNS, rows)
    elif change == "no_table":
        workspace_env.tables.clear()
    elif change == "unknown_agent":
        extra = ["--agents", "fraud_detector,loan_advisor"]
    elif change == "no_prompt":
        (volume / "base" / "kyc_checker.md").unlink()
    experiment = f"/Shared/optimizer-bad-{change}"
    with pytest.raises(JobError) as caught:
        cli.main(argv(volume, experiment, *extra))
    assert message in str(caught.value)
    assert not (volume / "optimised").exists()
    assert runs(mlflow_store, experiment) == []
    assert workspace_env.chat == []
    result = json.loads((volume / "optimiser" / "last_run.json").read_text())
    assert result["status"] == "failed" and message in result["error"]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--margin", "nan"),
        ("--margin", "1.5"),
        ("--margin", "-0.1"),
        ("--holdout-fraction", "0"),
        ("--holdout-fraction", "inf"),
        ("--breadth", "1"),
        ("--depth", "0"),
        ("--threads", "1e3"),
        ("--min-examples", "3"),
        ("--max-examples", "99999999999"),
        ("--table", "main.agents"),
        ("--table", "main.agents.t;DROP"),
        ("--agents", "Fraud-Detector"),
        ("--input-column", "in put"),
        ("--prompts-volume", "/Volumes/../etc"),
        ("--serving-url", "ftp://x"),
    ],
)
def test_usage_errors_exit_2_before_anything_runs(
    option: str, value: str, volume: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every numeric option is checked when parsed (finite, in range), names and paths too: a bad one is a
    usage message naming the option, exit status 2, and nothing runs (no result file)."""
    args = argv(volume, "/Shared/x", job=False)
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    with pytest.raises(SystemExit) as caught:
        cli.main(args)
    assert caught.value.code == 2
    assert option in capsys.readouterr().err
    assert not (volume / "optimiser").exists()


def test_locally_a_failure_is_one_line_and_exit_status_1(
    workspace_env: OptimizerStandIn, volume: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Outside a job the same failure is one line on stderr and exit status 1, not a traceback."""
    workspace_env.add_table(TABLE, 7, COLUMNS, [])
    with pytest.raises(SystemExit) as caught:
        cli.main(argv(volume, "/Shared/optimizer-local", job=False))
    assert caught.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("prompt-optimizer: error: training table main.agents.prompt_training is empty")
    assert "Traceback" not in err


def test_an_unreachable_endpoint_fails_the_run_without_changing_prompts(
    workspace_env: OptimizerStandIn, volume: Path
) -> None:
    """A serving endpoint that answers 503 (or refuses the token) fails the run before any scoring, naming
    the endpoint; the token is not in the message; no prompt is written."""
    workspace_env.llm_down = True
    with pytest.raises(JobError) as caught:
        cli.main(argv(volume, "/Shared/optimizer-down", "--lm-retries", "0"))
    assert "serving endpoint agents-llm" in str(caught.value) and TOKEN not in str(caught.value)
    assert not (volume / "optimised").exists()


def test_the_endpoint_token_is_fetched_for_every_call(lm_standin: OptimizerStandIn) -> None:
    """The bearer token is asked for before each LM call (databricks-sdk renews it), so a run longer than a
    token's life never sends an expired one: rotating tokens all reach the endpoint, in order."""
    issued: list[str] = []

    def token() -> str:
        issued.append(f"tok-{len(issued) // 3}")  # a new token every third call
        return issued[-1]

    lm_standin.tokens = {f"tok-{i}" for i in range(100)}
    endpoint = Endpoint("agents-llm", f"{lm_standin.url}/serving-endpoints", token)
    lm = language_model(endpoint, retries=0)
    for _ in range(7):
        check_endpoint(lm, endpoint)
    used = [c["authorization"] for c in lm_standin.chat]
    assert len(used) == 7 and used == issued[1:8] and len(set(used)) >= 3


def test_the_warehouse_reader_waits_for_a_slow_statement_and_reads_every_chunk(lm_standin: OptimizerStandIn) -> None:
    """Through the real databricks-sdk: a statement that is PENDING/RUNNING is polled (the injected sleep
    records the waits, none real) and a result in several chunks is read whole."""
    from databricks.sdk import WorkspaceClient

    lm_standin.pending_polls = 2
    lm_standin.chunk_rows = 10
    waits: list[float] = []
    reader = WarehouseReader(WorkspaceClient(host=lm_standin.url, token=TOKEN), "wh-1", poll_s=3, sleep=waits.append)
    data = load(reader, TABLE, Columns(), max_rows=100)
    assert data.version == 7 and sum(len(v) for v in data.examples.values()) == 44
    assert waits == [3, 3, 3, 3]  # two polls for DESCRIBE HISTORY, two for the SELECT


def test_the_split_is_deterministic_and_stable() -> None:
    """The same examples always give the same holdout, a new example does not move any other, and both sides
    are never empty."""
    rows = fraud_rows(40)
    data = [load_row(r) for r in rows]
    train, holdout = split(data, 0.3)
    assert (train, holdout) == split(list(reversed(data)), 0.3)
    assert 0 < len(holdout) < 40
    _train2, holdout2 = split([*data, load_row(fraud_rows(41)[-1])], 0.3)
    assert set(e.key for e in holdout) <= set(e.key for e in holdout2)
    assert split(data[:2], 0.05)[1] and split(data[:2], 0.9)[0]


def load_row(row: list[Any]) -> Any:
    from agent_jobs.prompt_optimizer.data import Example

    return Example(row[0], row[1], row[2])


def test_the_jobs_spark_reads_the_table_and_a_table_without_history_is_identified_by_its_rows(tmp_path: Path) -> None:
    """Without a warehouse the job's Spark session reads the table (real local Spark SQL); a table that is not
    Delta (no DESCRIBE HISTORY) is still usable and is identified by the rows' SHA-256, which does not depend
    on the rows' order."""
    from local_spark import spark

    session = spark()
    path = tmp_path / "training"
    path.mkdir()
    rows = fraud_rows(12)
    (path / "part-0.json").write_text("".join(json.dumps(dict(zip(COLUMNS, r, strict=True))) + "\n" for r in rows))
    session.sql("CREATE DATABASE IF NOT EXISTS optimizer_test")
    session.sql("DROP TABLE IF EXISTS optimizer_test.training")
    session.sql(
        f"CREATE TABLE optimizer_test.training ({', '.join(f'{c} STRING' for c in COLUMNS)}) USING json LOCATION '{path}'"
    )
    data = load(SparkReader(session), "spark_catalog.optimizer_test.training", Columns(), max_rows=50)
    assert data.version is None and len(data.examples["fraud_detector"]) == 12
    (path / "part-0.json").write_text(
        "".join(json.dumps(dict(zip(COLUMNS, r, strict=True))) + "\n" for r in reversed(rows))
    )
    session.sql("REFRESH TABLE optimizer_test.training")
    assert (
        load(SparkReader(session), "spark_catalog.optimizer_test.training", Columns(), 50).rows_sha256
        == data.rows_sha256
    )
    session.sql("DROP DATABASE optimizer_test CASCADE")
