"""`prompt-optimizer`: seed 001's nightly prompt optimisation, a python_wheel_task entry point.

    load one snapshot of the training table -> check it (all agents, before anything else)
    -> per agent: current prompt (optimised, else base) -> holdout score -> DSPy COPRO candidate
       -> holdout score -> promote (write <volume>/optimised/<agent>.json) only if better by --margin
    -> every step logged to an MLflow experiment (a parent run, one child run per agent)
    -> the result file says what happened, whatever stopped the run

Returns on success; raises JobError on failure (a python_wheel_task then fails with its message); usage
errors (a bad option, a number out of range) exit 2 before anything runs. Bad data changes nothing: no
prompt is written and no MLflow run is started. Agents are independent: one agent's endpoint failure does
not undo another's promotion, but fails the run.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agent_jobs import logs
from agent_jobs.entry import entry_point
from agent_jobs.errors import JobError
from agent_jobs.files import write_json
from agent_jobs.prompt_optimizer.data import (
    COLUMN,
    Columns,
    DataError,
    SparkReader,
    TableReader,
    WarehouseReader,
    check_sizes,
    load,
    quote_table,
    split,
)

log = logging.getLogger("agent_jobs.prompt_optimizer")
PROG = "prompt-optimizer"


def _number(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number from {low:g} to {high:g}")
        return value

    return parse


def _whole(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not re.fullmatch(r"\s*[0-9]{1,9}\s*", text) or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from {low} to {high}")
        return int(text)

    return parse


def _table(text: str) -> str:
    try:
        quote_table(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _column(text: str) -> str:
    if not COLUMN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a column name")
    return text


def _agents(text: str) -> list[str]:
    from agent_jobs.prompt_optimizer.data import AGENT

    names = [a.strip() for a in text.split(",") if a.strip()]
    bad = [a for a in names if not AGENT.fullmatch(a)]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"not agent names: {', '.join(bad) or repr(text)}")
    return names


def _volume(text: str) -> Path:
    if not text.strip() or any(ord(c) < 32 for c in text) or ".." in Path(text).parts:
        raise argparse.ArgumentTypeError(f"{text!r} is not a volume path (like /Volumes/main/agents/prompts)")
    return Path(text)


def _url(text: str) -> str:
    if not re.fullmatch(r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL")
    return text.rstrip("/")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Optimise the agents' prompts with DSPy (seed 001).")
    p.add_argument("--table", type=_table, required=True, help="training examples, catalog.schema.table")
    p.add_argument("--prompts-volume", type=_volume, required=True, help="like /Volumes/main/agents/prompts")
    p.add_argument("--endpoint", required=True, help="the serving endpoint the agents use (OpenAI-compatible)")
    p.add_argument("--experiment", required=True, help="MLflow experiment, like /Shared/agents/prompt-optimizer")
    p.add_argument("--serving-url", type=_url, help="default: <workspace host>/serving-endpoints")
    p.add_argument("--warehouse-id", help="read the table through this SQL warehouse (default: the job's Spark)")
    p.add_argument("--agents", type=_agents, help="comma-separated (default: every agent in the table)")
    p.add_argument("--agent-column", type=_column, default="agent_name")
    p.add_argument("--input-column", type=_column, default="input")
    p.add_argument("--expected-column", type=_column, default="expected")
    p.add_argument("--margin", type=_number(0, 1), default=0.02, help="required holdout improvement (0-1)")
    p.add_argument("--holdout-fraction", type=_number(0.05, 0.9), default=0.3)
    p.add_argument("--min-examples", type=_whole(4, 1_000_000), default=20, help="per agent")
    p.add_argument("--max-examples", type=_whole(4, 1_000_000), default=5000, help="rows read at most")
    p.add_argument("--breadth", type=_whole(2, 50), default=4, help="COPRO candidates per round")
    p.add_argument("--depth", type=_whole(1, 20), default=2, help="COPRO rounds")
    p.add_argument("--temperature", type=_number(0, 2), default=1.0, help="for proposing instructions")
    p.add_argument("--threads", type=_whole(1, 64), default=4, help="parallel LM calls")
    p.add_argument("--lm-retries", type=_whole(0, 10), default=3, help="retries of a failed LM call (back-off)")
    p.add_argument("--result-file", type=Path, help="default: <prompts volume>/optimiser/last_run.json")
    p.add_argument("--job-id")
    p.add_argument("--job-run-id")
    return p


def _workspace() -> Any:
    from databricks.sdk import WorkspaceClient

    return WorkspaceClient()


def _reader(args: argparse.Namespace, workspace: Callable[[], Any]) -> TableReader:
    if args.warehouse_id:
        return WarehouseReader(workspace(), args.warehouse_id)
    from agent_jobs.sql import active_spark

    spark = active_spark()
    if spark is None:
        raise JobError("no SQL engine: pass --warehouse-id, or run on Databricks compute (Spark)")
    return SparkReader(spark)


def _endpoint(args: argparse.Namespace, workspace: Callable[[], Any]) -> Any:
    from agent_jobs.prompt_optimizer.optimize import Endpoint

    client = workspace()

    def token() -> str:
        header = client.config.authenticate().get("Authorization", "")
        if not header.startswith("Bearer "):
            raise JobError("the workspace credentials give no bearer token for the serving endpoint")
        return str(header.removeprefix("Bearer "))

    base = args.serving_url or f"{client.config.host.rstrip('/')}/serving-endpoints"
    return Endpoint(args.endpoint, base, token)


def run(
    args: argparse.Namespace,
    *,
    workspace: Callable[[], Any] = _workspace,
    reader: TableReader | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> dict[str, Any]:
    """The whole run; returns the result (also written to the result file), raises JobError on failure."""
    result: dict[str, Any] = {"status": "running", "started_at": now().isoformat(), "table": args.table,
                              "endpoint": args.endpoint, "experiment": args.experiment, "agents": {}}  # fmt: skip
    result_file = args.result_file or args.prompts_volume / "optimiser" / "last_run.json"
    try:
        _run(args, result, workspace, reader, now)
        failed = [a for a, r in result["agents"].items() if r["outcome"] == "failed"]
        if failed:
            raise JobError(
                f"optimising {', '.join(failed)} failed: " + "; ".join(result["agents"][a]["reason"] for a in failed)
            )
        result["status"] = "succeeded"
        return result
    except JobError as exc:
        result.update(status="failed", error=str(exc))
        raise
    except Exception as exc:  # unexpected: still say what happened in the result file
        result.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        result["finished_at"] = now().isoformat()
        try:
            result_file.parent.mkdir(parents=True, exist_ok=True)
            write_json(result_file, result)
        except OSError as exc:
            log.error("could not write the result file %s: %s", result_file, exc)


def _run(
    args: argparse.Namespace,
    result: dict[str, Any],
    workspace: Callable[[], Any],
    reader: TableReader | None,
    now: Callable[[], datetime],
) -> None:
    from agent_jobs.prompt_optimizer import volume

    columns = Columns(args.agent_column, args.input_column, args.expected_column)
    data = load(reader or _reader(args, workspace), args.table, columns, args.max_examples)
    result["data"] = data.snapshot
    agents = args.agents or sorted(data.examples)
    unknown = [a for a in agents if a not in data.examples]
    if unknown:
        raise DataError(f"no examples in {args.table} for agent(s) {', '.join(unknown)}")
    check_sizes(data, agents, args.min_examples)
    prompts = {agent: volume.current(args.prompts_volume, agent) for agent in agents}  # all exist, before any work

    import mlflow

    from agent_jobs.prompt_optimizer import optimize

    endpoint = _endpoint(args, workspace)
    lm = optimize.language_model(endpoint, args.lm_retries)
    optimize.check_endpoint(lm, endpoint)
    search = optimize.Search(args.breadth, args.depth, args.temperature, args.threads)
    mlflow.set_experiment(args.experiment)
    stamp = now().strftime("%Y%m%dT%H%M%SZ")
    with mlflow.start_run(run_name=f"prompt-optimizer-{stamp}") as parent:
        mlflow.set_tags(
            {"run_type": "prompt_optimization", "job_id": args.job_id or "", "job_run_id": args.job_run_id or ""}
        )
        mlflow.log_params({"table": args.table, "table_version": str(data.version), "rows_sha256": data.rows_sha256,
                           "endpoint": args.endpoint, "margin": args.margin, "agents": ",".join(agents)})  # fmt: skip
        result["mlflow_run_id"] = parent.info.run_id
        for agent in agents:
            result["agents"][agent] = _agent(args, agent, prompts[agent], data, lm, search, stamp)


def _agent(
    args: argparse.Namespace, agent: str, current: Any, data: Any, lm: Any, search: Any, stamp: str
) -> dict[str, Any]:
    import mlflow

    from agent_jobs.prompt_optimizer import optimize, volume

    train, holdout = split(data.examples[agent], args.holdout_fraction)
    trained_on = {**data.snapshot, "train": len(train), "holdout": len(holdout),
                  "holdout_fraction": args.holdout_fraction}  # fmt: skip
    began = time.monotonic()
    with mlflow.start_run(run_name=agent, nested=True) as run:
        mlflow.log_params({"agent": agent, "current_version": current.version, "current_source": current.source,
                           "table": data.table, "table_version": str(data.version), "rows_sha256": data.rows_sha256,
                           "train_examples": len(train), "holdout_examples": len(holdout), "margin": args.margin,
                           "optimizer": "dspy.COPRO", "breadth": search.breadth, "depth": search.depth})  # fmt: skip
        mlflow.log_text(current.text, "current_prompt.md")
        mlflow.log_dict({"train": [e.key for e in train], "holdout": [e.key for e in holdout]}, "examples.json")
        try:
            decision = optimize.optimise(lm, current.text, train, holdout, search, args.margin)
        except JobError as exc:
            mlflow.set_tags({"outcome": "failed", "reason": str(exc)[:500]})
            log.error("%s: %s", agent, exc)
            return {"outcome": "failed", "reason": str(exc), "current_version": current.version}
        except Exception as exc:  # DSPy or the endpoint failing mid-run: this agent fails, the others go on
            reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}"
            mlflow.set_tags({"outcome": "failed", "reason": reason[:500]})
            log.error("%s: %s", agent, reason)
            return {"outcome": "failed", "reason": reason, "current_version": current.version}
        metrics = {"current_score": decision.current_score}
        if decision.candidate_score is not None:
            metrics |= {"candidate_score": decision.candidate_score,
                        "improvement": decision.candidate_score - decision.current_score}  # fmt: skip
        mlflow.log_metrics(metrics | {"seconds": time.monotonic() - began})
        mlflow.log_text(decision.candidate_text, "candidate_prompt.md")
        outcome: dict[str, Any] = {"outcome": decision.outcome, "reason": decision.reason, "metrics": metrics,
                                   "current_version": current.version, "mlflow_run_id": run.info.run_id}  # fmt: skip
        if decision.promote:
            record = {
                "version": volume.new_version(decision.candidate_text, stamp),
                "text": decision.candidate_text,
                "metrics": {
                    "holdout_accuracy": decision.candidate_score,
                    "previous_holdout_accuracy": decision.current_score,
                },
                "previous_version": current.version,
                "trained_on": trained_on,
                "optimizer": {"name": "dspy.COPRO", "breadth": search.breadth, "depth": search.depth},
                "endpoint": args.endpoint,
                "mlflow_run_id": run.info.run_id,
                "created_at": stamp,
            }
            path = volume.write_optimised(args.prompts_volume, agent, record)
            mlflow.log_dict(record, "optimised_prompt.json")
            outcome |= {"version": record["version"], "path": str(path)}
        mlflow.set_tags({"outcome": decision.outcome, "reason": decision.reason[:500],
                         "version": str(outcome.get("version", current.version))})  # fmt: skip
    log.info("%s: %s (%s)", agent, decision.outcome, decision.reason)
    return outcome


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logs.setup()
    for noisy in ("LiteLLM", "litellm", "httpx", "dspy.evaluate.evaluate", "py4j"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    entry_point(PROG, lambda: run(args), args.job_id, args.job_run_id)
