"""Seed 003's job pair in the whole program: the orchestrator wired to the executor's id, compute, telemetry,
and job ids in the scope only when asked."""

from __future__ import annotations

from typing import Any

import pytest

from infra.components.wheel import SOURCE, extra_requirements
from infra.tools.offline import Plan, unwrap
from tests.conftest import ROOT, SECRETS, program_plan, stack_plan


def options(job: dict[str, Any]) -> dict[str, str]:
    (task,) = job["tasks"]
    params = task["pythonWheelTask"]["parameters"]
    return dict(zip(params[0::2], params[1::2], strict=True))


@pytest.fixture(scope="module")
def dev() -> Plan:
    return stack_plan("dev")


def test_orchestrator_gets_the_executor_job_id_from_the_executor(dev: Plan) -> None:
    """Done when: the orchestrator's inputs contain the executor job's id, wired, not looked up."""
    executor, orchestrator = dev.one("Job", "rlm-executor"), dev.one("Job", "rlm-orchestrator")
    assert options(unwrap(orchestrator.inputs))["--executor-job-id"] == executor.id
    assert dev.outputs["rlm_executor_job_id"] == (executor.id, False)
    assert dev.outputs["rlm_orchestrator_job_url"][0].endswith(f"/#job/{orchestrator.id}")


def test_nothing_writes_job_ids_into_a_scope_by_default(dev: Plan) -> None:
    """Done when: nothing writes job ids into a secret scope unless switched on."""
    assert {r.inputs["key"] for r in dev.all("Secret")} == {"databricks-token", "google-api-key"}
    plan = program_plan({"rlm": {"store_job_ids_in_scope": True}})
    stored = {unwrap(r.inputs)["key"]: unwrap(r.inputs)["stringValue"] for r in plan.all("Secret")}
    assert stored["rlm-orchestrator-job-id"] == plan.one("Job", "rlm-orchestrator").id
    assert stored["rlm-executor-job-id"] == plan.one("Job", "rlm-executor").id


def test_adk_settings_reach_the_jobs_as_parameters(dev: Plan) -> None:
    """The seed's ADK_* variables, on an existing cluster; GOOGLE_API_KEY only as a secret reference."""
    executor, orchestrator = (
        unwrap(dev.one("Job", "rlm-executor").inputs),
        unwrap(dev.one("Job", "rlm-orchestrator").inputs),
    )
    o = options(orchestrator)
    assert (o["--catalog"], o["--schema"]) == ("main", "agents_dev")
    assert o["--artifacts-path"] == "/Volumes/main/agents_dev/rlm_artifacts"
    assert o["--agent-code-path"] == "/Volumes/main/agents_dev/rlm_agent_code/agent_code_raw.py"
    e = options(executor)
    assert (
        e["--artifact-path"] == "{{job.parameters.artifact_path}}"
        and e["--env-secret"] == "GOOGLE_API_KEY=adk-secrets-dev/google-api-key"
    )
    for job in (executor, orchestrator):
        (task,) = job["tasks"]
        assert task["existingClusterId"] == "1115-120035-jyzgoasz"
        extra = [{"pypi": {"package": r}} for r in extra_requirements(SOURCE, "rlm")]
        assert task["libraries"] == [{"whl": dev.one("File", "wheel").inputs["path"]}, *extra]
    assert [p["name"] for p in executor["parameters"]] == ["artifact_path", "run_id", "iteration", "previous_result"]
    assert {"--token-secret", "--host-secret", "--telemetry-warehouse-id"}.isdisjoint(o)


def test_pat_fallback_is_passed_only_when_its_secrets_are_set() -> None:
    """The orchestrator learns where the fallback PAT and host are only if the stack set them."""
    fallback = {"rlm_databricks_token": "dapi-pat", "rlm_databricks_host": "https://x.cloud.databricks.com"}
    plan = program_plan(secrets={**SECRETS, **fallback})
    o = options(unwrap(plan.one("Job", "rlm-orchestrator").inputs))
    assert (o["--token-secret"], o["--host-secret"]) == (
        "adk-secrets-dev/databricks-token",
        "adk-secrets-dev/databricks-host",
    )
    assert "dapi-pat" not in repr(unwrap(plan.one("Job", "rlm-orchestrator").inputs))


def test_telemetry_table_is_created_on_the_warehouse_when_named() -> None:
    """With a warehouse, Pulumi creates the Delta table from the same column file the jobs use; without
    one, no table resource (the jobs create it on first write)."""
    import json

    columns = json.loads((ROOT / "wheel/src/agent_jobs/rlm/telemetry_columns.json").read_text())
    plan = program_plan({"rlm": {"sql_warehouse_id": "1a2b3c4d5e6f7a8b"}})
    table = plan.one("SqlTable")
    inputs = unwrap(table.inputs)
    assert (inputs["catalogName"], inputs["schemaName"], inputs["name"]) == ("main", "agents_dev", "telemetry")
    assert (inputs["warehouseId"], inputs["tableType"], inputs["dataSourceFormat"]) == (
        "1a2b3c4d5e6f7a8b",
        "MANAGED",
        "DELTA",
    )
    assert inputs["columns"] == [{"name": c["name"], "type": c["type"], "comment": c["comment"]} for c in columns]
    assert table.retain_on_delete
    for job in ("rlm-executor", "rlm-orchestrator"):
        assert options(unwrap(plan.one("Job", job).inputs))["--telemetry-warehouse-id"] == "1a2b3c4d5e6f7a8b"
    assert not program_plan().all("SqlTable")


def test_agent_code_file_is_uploaded_when_configured() -> None:
    """rlm.agent_code_file puts a file of the repository where the orchestrator reads the agent's code."""
    plan = program_plan({"rlm": {"agent_code_file": "wheel/tests/standin.py"}})
    file = plan.one("File", "rlm-agent-code")
    assert file.inputs["path"] == "/Volumes/main/agents_dev/rlm_agent_code/agent_code_raw.py"
    assert [f.name for f in program_plan().all("File")] == ["wheel"]


def test_disabled_rlm_has_no_jobs() -> None:
    plan = program_plan({"rlm": {"enabled": False}})
    assert not [j.name for j in plan.all("Job") if j.name.startswith("rlm-")]
    assert "rlm_executor_job_id" not in plan.outputs and "rlm_orchestrator_job_id" not in plan.outputs


def test_the_orchestrator_waits_as_long_as_an_executor_run_may_last(dev: Plan) -> None:
    """Issue #11: the wait passed to the orchestrator covers the executor job's whole timeout (plus a margin
    for the queue), and the orchestrator job outlasts that wait in every iteration."""
    from infra.systems.rlm.components import RUN_WAIT_MARGIN_SECONDS

    executor, orchestrator = (
        unwrap(dev.one("Job", "rlm-executor").inputs),
        unwrap(dev.one("Job", "rlm-orchestrator").inputs),
    )
    wait = float(options(orchestrator)["--run-timeout-seconds"])
    assert wait == executor["timeoutSeconds"] + RUN_WAIT_MARGIN_SECONDS
    artifact = int(options(executor)["--timeout-seconds"])
    assert artifact < executor["timeoutSeconds"] < wait
    iterations = int(next(p["default"] for p in orchestrator["parameters"] if p["name"] == "max_iterations"))
    assert orchestrator["timeoutSeconds"] > wait * iterations


def test_a_longer_artifact_timeout_lengthens_the_wait() -> None:
    """The wait is derived, not a default: 120-minute artifacts (an 8100 s executor job) are waited for."""
    plan = program_plan({"rlm": {"artifact_timeout_minutes": 120}})
    executor = unwrap(plan.one("Job", "rlm-executor").inputs)
    assert executor["timeoutSeconds"] == 8100
    assert float(options(unwrap(plan.one("Job", "rlm-orchestrator").inputs))["--run-timeout-seconds"]) > 8100


def test_each_attempt_of_the_orchestrator_gets_fresh_idempotency_tokens(dev: Plan) -> None:
    """A repaired or retried orchestrator task must not get the old executor runs back: it is told its
    execution count, which the tokens include (beside the job run id)."""
    o = options(unwrap(dev.one("Job", "rlm-orchestrator").inputs))
    assert o["--attempt"] == "{{task.execution_count}}" and o["--job-run-id"] == "{{job.run_id}}"


def test_both_tasks_pass_what_the_wheels_parsers_accept(dev: Plan) -> None:
    """The job definitions and the entry points agree: every option is known and valid (numbers in range),
    with the references replaced by what a run resolves them to."""
    from agent_jobs.rlm import executor, orchestrator

    values = {"{{job.id}}": "11", "{{job.run_id}}": "22", "{{task.execution_count}}": "1",
              "{{job.parameters.artifact_path}}": "/Volumes/main/agents_dev/rlm_artifacts/s/iter-1/artifact.py",
              "{{job.parameters.run_id}}": "s", "{{job.parameters.iteration}}": "1",
              "{{job.parameters.previous_result}}": "", "{{job.parameters.max_iterations}}": "3",
              "{{job.parameters.session_id}}": ""}  # fmt: skip
    for name, parser in (("rlm-executor", executor.build_parser()), ("rlm-orchestrator", orchestrator.build_parser())):
        (task,) = unwrap(dev.one("Job", name).inputs)["tasks"]
        argv = [values.get(part, part) for part in task["pythonWheelTask"]["parameters"]]
        assert "{{" not in " ".join(argv), argv
        parser.parse_args(argv)  # SystemExit(2) on an unknown option or a bad value
