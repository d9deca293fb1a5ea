"""`mlflow-eval`: the evaluation agent's entry point (console script and python_wheel_task alike).

A python_wheel_task calls `main()` itself: it succeeds by returning and fails by raising (a returned code is
ignored there, and sys.exit(0) can be reported as a failure). As a console script, an expected failure ends
with one line on stderr and exit status 1.

Every setting has a flag and, for local use, the environment variable seed 000 used:
MLFLOW_EXPERIMENT_ID, MLFLOW_AGENT_VOLUME_PATH, ANTHROPIC_BASE_URL, ANTHROPIC_AUTH_TOKEN, DABS_MODEL.
In a job the token is never a value: `--token-secret <scope>/<key>` names it and it is read at run time.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping

from agent_jobs import logs
from agent_jobs.entry import at_least, entry_point
from agent_jobs.errors import JobError
from agent_jobs.eval_agent.agent import AgentConfig, run_autonomous, run_interactive
from agent_jobs.runtime import detect_runtime
from agent_jobs.secrets import parse_reference, read_secret, reference_argument

log = logging.getLogger("agent_jobs.eval_agent")

DEFAULT_MODEL = "databricks-claude-sonnet-4"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlflow-eval", description="MLflow evaluation agent: reviews an experiment's runs with a model."
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("-a", "--autonomous", action="store_true", help="write an evaluation report and exit")
    mode.add_argument("-i", "--interactive", action="store_true", help="answer questions (not in a job)")
    parser.add_argument("-e", "--experiment-id", help="MLflow experiment id (env MLFLOW_EXPERIMENT_ID)")
    parser.add_argument("--volume-path", help="session storage root (env MLFLOW_AGENT_VOLUME_PATH)")
    parser.add_argument("--base-url", help="Anthropic-compatible serving endpoint (env ANTHROPIC_BASE_URL)")
    parser.add_argument("--model", help=f"model name (env DABS_MODEL, default {DEFAULT_MODEL})")
    parser.add_argument(
        "--token-secret", metavar="SCOPE/KEY", type=reference_argument,
        help="read the endpoint token from this Databricks secret",
    )  # fmt: skip
    parser.add_argument("--job-id", help="the job's id ({{job.id}}), for job-aware session ids")
    parser.add_argument("--job-run-id", help="the run's id ({{job.run_id}}), for job-aware session ids")
    parser.add_argument("--max-runs", type=at_least(1, 10_000), default=50,
                        help="most recent runs to review (default 50, at most 10000)")  # fmt: skip
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def token_source(secret: str | None, env: Mapping[str, str]) -> Callable[[], str]:
    """How to get the serving token: from a Databricks secret (jobs) or ANTHROPIC_AUTH_TOKEN (local)."""
    if secret:
        parse_reference(secret)  # fail at start-up, not when the session needs the token

        def from_secret() -> str:
            return read_secret(secret)

        return from_secret
    token = env.get("ANTHROPIC_AUTH_TOKEN", "")

    def from_env() -> str:
        if not token:
            raise JobError("no serving token: set ANTHROPIC_AUTH_TOKEN, or pass --token-secret <scope>/<key>")
        return token

    return from_env


def config_from(args: argparse.Namespace, env: Mapping[str, str]) -> AgentConfig:
    runtime = detect_runtime(env, args.job_id, args.job_run_id, args.volume_path)
    experiment_id = args.experiment_id or env.get("MLFLOW_EXPERIMENT_ID")
    if not experiment_id or experiment_id.startswith("{{"):
        raise JobError("no experiment: pass --experiment-id (or set MLFLOW_EXPERIMENT_ID)")
    base_url = args.base_url or env.get("ANTHROPIC_BASE_URL")
    if not base_url:
        raise JobError("no serving endpoint: pass --base-url (or set ANTHROPIC_BASE_URL)")
    return AgentConfig(
        experiment_id=experiment_id,
        base_url=base_url.rstrip("/"),
        model=args.model or env.get("DABS_MODEL") or DEFAULT_MODEL,
        token=token_source(args.token_secret, env),
        runtime=runtime,
        max_runs=args.max_runs,
    )


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logs.setup(logging.DEBUG if args.verbose else logging.INFO)

    def run() -> None:
        config = config_from(args, os.environ)
        if args.interactive:
            run_interactive(config, sys.stdin, sys.stdout)
        else:
            session = run_autonomous(config)
            log.info("session %s completed: %s", session.state["session_id"], session.directory)

    entry_point("mlflow-eval", run, args.job_id, args.job_run_id)
