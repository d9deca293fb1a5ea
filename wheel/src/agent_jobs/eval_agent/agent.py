"""The evaluation agent's two modes: an autonomous session (the job) and an interactive one (a terminal)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from agent_jobs import prompting
from agent_jobs.errors import JobError
from agent_jobs.eval_agent.endpoint import ServingEndpoint
from agent_jobs.eval_agent.experiment import ExperimentSummary, read_experiment
from agent_jobs.eval_agent.session import Session, utc_now
from agent_jobs.runtime import RuntimeInfo, refuse_interactive_in_job, session_id, sessions_base_path

log = logging.getLogger(__name__)
PACKAGE = "agent_jobs.eval_agent"  # its prompts: eval_agent/prompts/<name>.md


@dataclass(frozen=True)
class AgentConfig:
    experiment_id: str
    base_url: str
    model: str
    token: Callable[[], str]
    """Resolves the serving token (from the environment or a secret scope) when the session needs it."""
    runtime: RuntimeInfo
    max_runs: int = 50


def _mlflow_client() -> Any:
    import mlflow

    return mlflow.MlflowClient()


def start_session(config: AgentConfig, mode: str) -> Session:
    sid = session_id(config.runtime)
    directory = sessions_base_path(config.runtime) / sid
    log.info("session %s (%s) in %s", sid, mode, directory)
    return Session(
        directory,
        session_id=sid,
        mode=mode,
        experiment_id=config.experiment_id,
        model=config.model,
        endpoint=config.base_url,
        runtime={
            "context": config.runtime.context.value,
            "job_id": config.runtime.job_id,
            "job_run_id": config.runtime.job_run_id,
        },
    )


def run_autonomous(config: AgentConfig, client: Any = None) -> Session:
    """Read the experiment, ask the model for an evaluation report, write it. Raises JobError on failure,
    after recording the failure in the session's state."""
    session = start_session(config, "autonomous")
    with session.capturing_log():
        try:
            summary = read_experiment(client or _mlflow_client(), config.experiment_id, config.max_runs)
            session.update(step="asking the model", experiment_name=summary.name, runs_analysed=len(summary.runs))
            endpoint = ServingEndpoint(base_url=config.base_url, token=config.token(), model=config.model)
            user = prompting.render(
                PACKAGE,
                "autonomous",
                experiment_name=summary.name,
                experiment_id=summary.experiment_id,
                experiment_summary=summary.to_markdown(),
            )
            answer = endpoint.ask(prompting.load(PACKAGE, "system"), [{"role": "user", "content": user}])
            session.write_report(_report(session, summary, config.model, answer.text))
            session.finish("completed", step="done", usage=answer.usage)
            log.info("report written to %s", session.report_path)
        except JobError as exc:
            log.error("session failed: %s", exc)
            session.finish("failed", error=str(exc))
            raise
        except Exception as exc:
            log.exception("session failed unexpectedly")
            session.finish("failed", error=f"unexpected error: {exc!r}")
            raise
    return session


def _report(session: Session, summary: ExperimentSummary, model: str, assessment: str) -> str:
    return "\n".join(
        [
            f"# Evaluation report: {summary.name}",
            "",
            f"Session `{session.state['session_id']}`, {utc_now()}, model `{model}`.",
            "",
            "## What the experiment holds",
            "",
            summary.to_markdown(),
            "",
            "## Assessment",
            "",
            assessment.strip(),
            "",
        ]
    )


def run_interactive(config: AgentConfig, stdin: TextIO, stdout: TextIO, client: Any = None) -> Session:
    """Answer questions about the experiment until EOF or 'exit'; the transcript goes to the session."""
    refuse_interactive_in_job(config.runtime)
    session = start_session(config, "interactive")
    with session.capturing_log():
        summary = read_experiment(client or _mlflow_client(), config.experiment_id, config.max_runs)
        system = (
            prompting.load(PACKAGE, "system")
            + "\n\n"
            + prompting.render(
                PACKAGE,
                "interactive",
                experiment_name=summary.name,
                experiment_id=summary.experiment_id,
                experiment_summary=summary.to_markdown(),
            )
        )
        endpoint = ServingEndpoint(base_url=config.base_url, token=config.token(), model=config.model)
        messages: list[dict[str, Any]] = []
        transcript = [f"# Questions about {summary.name}", ""]
        stdout.write(f"Ask about experiment {summary.name} ({len(summary.runs)} runs); 'exit' to stop.\n")
        while True:
            stdout.write("> ")
            stdout.flush()
            question = stdin.readline()
            if not question or question.strip() in ("exit", "quit"):
                break
            if not question.strip():
                continue
            messages.append({"role": "user", "content": question.strip()})
            answer = endpoint.ask(system, messages)
            messages.append({"role": "assistant", "content": answer.text})
            stdout.write(answer.text.rstrip() + "\n")
            transcript += [f"**Q:** {question.strip()}", "", answer.text.strip(), ""]
        (session.directory / "transcript.md").write_text("\n".join(transcript), encoding="utf-8")
        session.finish("completed", questions=len(messages) // 2)
    return session
