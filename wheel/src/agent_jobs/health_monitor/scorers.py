"""The scorers the gate evaluates with and production monitoring samples traces with (seed 002).

Heuristics are cheap `@scorer` functions whose metrics come out as `<name>/mean`. They read the answer through
`extract_response_text`, because mlflow.genai.evaluate hands scorers whatever the predict function returned,
often serialised: the seed's custom scorers all returned 0.0 until they handled every shape. LLM judges are
MLflow's built-in judges and one Guidelines judge per health domain; `judge_model` picks the judge's model
("databricks:/<endpoint>"), None means MLflow's default (on Databricks, the managed judge).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from mlflow.genai.scorers import Guidelines, RelevanceToQuery, Safety, ScorerSamplingConfig, scorer

from agent_jobs.errors import JobError

log = logging.getLogger(__name__)

_TEXT_KEYS = ("response", "content", "text", "output_text", "answer")


def extract_response_text(outputs: Any) -> str:
    """The answer's text from str, JSON text, {"response"|"content"|"text": ...}, chat-completions
    {"choices": [...]}, {"messages": [...]} (the last one) and the ResponsesAgent shape
    {"output": [{"content": [{"type": "output_text", "text": ...}]}]}; "" when there is none."""
    if outputs is None:
        return ""
    if hasattr(outputs, "model_dump"):  # a pydantic response object, e.g. ResponsesAgentResponse
        return extract_response_text(outputs.model_dump())
    if isinstance(outputs, str):
        if outputs.strip()[:1] in ("{", "["):
            try:
                return extract_response_text(json.loads(outputs))
            except ValueError:
                return outputs
        return outputs
    if isinstance(outputs, (list, tuple)):
        return "\n".join(t for t in (extract_response_text(item) for item in outputs) if t)
    if not isinstance(outputs, dict):
        return str(outputs)
    for key in _TEXT_KEYS:
        if outputs.get(key) is not None:
            return extract_response_text(outputs[key])
    if outputs.get("output") is not None:
        return extract_response_text(outputs["output"])
    if outputs.get("choices"):
        choice = outputs["choices"][0]
        return extract_response_text(choice.get("message") or choice.get("text")) if isinstance(choice, dict) else ""
    if outputs.get("messages"):
        return extract_response_text(outputs["messages"][-1])
    return ""


# Signs that the agent failed rather than answered. Domain words are fine: an answer about reliability says
# "3 jobs failed" or quotes a job's "SparkException: ...", so only the agent's own failures count.
ERROR_MARKERS = (
    "traceback (most recent call last)",
    "an error occurred",
    "i encountered an error",
    "internal server error",
    "request failed with",
    "rate limit exceeded",
    "could not process your request",
    "unable to process your request",
)
DATABRICKS_TERMS = (
    "databricks", "dbu", "unity catalog", "system table", "system.billing", "system.access", "system.lakeflow",
    "system.query", "system.compute", "warehouse", "cluster", "workspace", "job", "pipeline", "serving endpoint",
    "delta", "lakehouse", "serverless", "photon", "notebook", "audit log", "sku",
)  # fmt: skip


@scorer
def response_length(outputs: Any) -> float:
    """1.0 for an answer of 100 to 5,000 characters, less for shorter ones, 0.5 for a ramble, 0 when empty."""
    size = len(extract_response_text(outputs).strip())
    if size == 0:
        return 0.0
    if size < 100:
        return size / 100
    return 1.0 if size <= 5000 else 0.5


@scorer
def no_errors(outputs: Any) -> float:
    """1.0 when there is an answer and it is not an error message or a stack trace."""
    text = extract_response_text(outputs).strip().lower()
    failed = text.startswith(("error", "exception")) or any(marker in text for marker in ERROR_MARKERS)
    return 1.0 if text and not failed else 0.0


@scorer
def databricks_context(outputs: Any) -> float:
    """How grounded in Databricks the answer is: distinct platform terms mentioned, 3 or more scoring 1.0."""
    text = extract_response_text(outputs).lower()
    return min(1.0, sum(term in text for term in DATABRICKS_TERMS) / 3)


# Domain judges: (what a request is about, what a good answer to it does). A request on another topic passes.
DOMAINS: dict[str, tuple[str, str]] = {
    "cost_accuracy": (
        "cost, spend, DBUs or billing",
        "state amounts with their unit (DBUs or dollars) and time window, attribute spend to concrete SKUs, "
        "jobs, warehouses, clusters or tags, and not invent figures that no data supports",
    ),
    "security_compliance": (
        "security, access, permissions or audit events",
        "identify who did what on which object, recommend least-privilege remediation, and never reveal "
        "secrets, tokens or personal data or explain how to bypass a control",
    ),
    "reliability_accuracy": (
        "failures, errors, retries, SLAs or uptime",
        "name the failing jobs, pipelines or endpoints, give failure counts or rates for a time window, tell "
        "transient from persistent causes, and recommend concrete fixes",
    ),
    "performance_accuracy": (
        "latency, slow queries, job durations or utilisation",
        "quote durations or percentiles against a baseline, name the slow queries, jobs or warehouses and the "
        "likely cause, and recommend specific optimisations",
    ),
    "quality_accuracy": (
        "data quality, freshness, schema changes or data monitors",
        "name the affected tables, quantify freshness or check results for a time window, and recommend data "
        "quality controls",
    ),
}


def domain_guideline(name: str) -> str:
    topic, requirement = DOMAINS[name]
    return f"If the request is not about {topic}, this guideline is met. Otherwise the response must {requirement}."


def _domain_judge(name: str) -> Callable[[str | None], Any]:
    def build(judge_model: str | None) -> Any:
        return Guidelines(name=name, guidelines=[domain_guideline(name)], model=judge_model)

    return build


def _heuristic(built: Any) -> Callable[[str | None], Any]:
    return lambda _judge_model: built


HEURISTICS: dict[str, Any] = {s.name: s for s in (response_length, no_errors, databricks_context)}
SCORERS: dict[str, Callable[[str | None], Any]] = {
    **{name: _heuristic(built) for name, built in HEURISTICS.items()},
    "relevance": lambda model: RelevanceToQuery(name="relevance", model=model),
    "safety": lambda model: Safety(name="safety", model=model),
    **{name: _domain_judge(name) for name in DOMAINS},
}
JUDGES: tuple[str, ...] = tuple(name for name in SCORERS if name not in HEURISTICS)


def build_scorers(names: Sequence[str], judge_model: str | None = None) -> list[Any]:
    """The scorers called `names`, in order; an unknown name is a JobError listing the known ones."""
    unknown = [n for n in names if n not in SCORERS]
    if unknown:
        raise JobError(f"unknown scorer(s) {', '.join(unknown)}; known scorers: {', '.join(SCORERS)}")
    return [SCORERS[name](judge_model) for name in names]


def register_scorers(
    names: Sequence[str], judge_model: str | None, sample_rate: float, *, experiment_id: str | None = None
) -> list[str]:
    """Register the judges among `names` for production monitoring of the experiment's traces and start
    them at `sample_rate` (0 registers without sampling). Heuristics are skipped: a registered scorer is
    re-created from its function's source alone, without this module's helpers. Returns the registered names."""
    from mlflow.exceptions import MlflowException

    if not 0 <= sample_rate <= 1:
        raise JobError(f"sample rate must be between 0 and 1, got {sample_rate}")
    scorers = build_scorers(names, judge_model)
    registered = []
    for name, built in zip(names, scorers, strict=True):
        if name in HEURISTICS:
            log.warning("scorer %s is a heuristic for evaluation runs only; not registered for monitoring", name)
            continue
        try:
            live = built.register(name=name, experiment_id=experiment_id)
            if sample_rate > 0:
                live.start(name=name, experiment_id=experiment_id, sampling_config=ScorerSamplingConfig(sample_rate))
        except MlflowException as exc:
            raise JobError(f"cannot register scorer {name}: {exc.message}") from exc
        log.info("registered scorer %s (sample rate %s)", name, sample_rate)
        registered.append(name)
    return registered
