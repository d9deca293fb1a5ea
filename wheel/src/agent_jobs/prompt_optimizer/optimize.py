"""One agent's prompt through DSPy: the agent as a DSPy program whose instructions are the prompt (input
`data`, output `answer`), scored by exact match with the expected answers; DSPy's COPRO proposes and tries
new instructions on the training split through the serving endpoint (OpenAI-compatible chat completions);
the candidate and the current prompt are then scored on the holdout split, and the candidate is promoted only
when it beats the current prompt by at least the margin.

The endpoint's bearer token is fetched before every LM call (databricks-sdk refreshes it), so a long
optimisation never runs on an expired token. DSPy's response cache is off: every score is a real answer.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agent_jobs.errors import JobError
from agent_jobs.prompt_optimizer.data import Example

# litellm (under DSPy) otherwise fetches a model price list from the internet when it is imported.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import dspy  # type: ignore[import-untyped]
from dspy.utils.callback import BaseCallback  # type: ignore[import-untyped]


@dataclass(frozen=True)
class Endpoint:
    name: str  # the serving endpoint (the OpenAI "model")
    base_url: str  # <workspace>/serving-endpoints
    token: Callable[[], str]


@dataclass(frozen=True)
class Search:
    breadth: int = 4  # COPRO: candidates per round (>= 2)
    depth: int = 2  # rounds
    temperature: float = 1.0  # for proposing instructions
    threads: int = 4


@dataclass(frozen=True)
class Decision:
    promote: bool
    current_score: float
    candidate_score: float | None
    candidate_text: str
    reason: str

    @property
    def outcome(self) -> str:
        return "promoted" if self.promote else "kept"


class _FreshToken(BaseCallback):  # type: ignore[misc]
    def __init__(self, token: Callable[[], str]) -> None:
        self._token = token

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        instance.kwargs["api_key"] = self._token()


def language_model(endpoint: Endpoint, retries: int = 3) -> Any:
    """DSPy's LM for the endpoint; litellm retries a transient failure `retries` times with back-off."""
    return dspy.LM(
        f"openai/{endpoint.name}",
        api_base=endpoint.base_url,
        api_key=endpoint.token(),
        cache=False,
        num_retries=retries,
        callbacks=[_FreshToken(endpoint.token)],
    )


def check_endpoint(lm: Any, endpoint: Endpoint) -> None:
    """One chat completion before any work: an unreachable or refusing endpoint fails the run plainly
    (during scoring, a failed answer only scores 0, which must not be mistaken for a bad prompt)."""
    try:
        lm("Reply with OK.")
    except Exception as exc:
        token = str(lm.kwargs.get("api_key") or "")
        message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        if token:
            message = message.replace(token, "[token]")
        raise JobError(f"serving endpoint {endpoint.name} at {endpoint.base_url} failed: {message}") from None


class AgentTask(dspy.Signature):  # type: ignore[misc]
    """(replaced by the agent's prompt)"""

    data: str = dspy.InputField(desc="the request the agent receives")
    answer: str = dspy.OutputField(desc="the agent's answer")


def program(instructions: str) -> Any:
    return dspy.Predict(AgentTask.with_instructions(instructions))


def normalise(text: Any) -> str:
    return re.sub(r"\s+", " ", str(text)).strip().strip("\"'`.").casefold()


def metric(example: Any, prediction: Any, trace: Any = None) -> float:
    return float(normalise(getattr(prediction, "answer", "")) == normalise(example.answer))


def _dataset(examples: Sequence[Example]) -> list[Any]:
    return [dspy.Example(data=e.input, answer=e.expected).with_inputs("data") for e in examples]


def score(lm: Any, instructions: str, examples: Sequence[Example], threads: int) -> float:
    """Share of examples the prompt answers as expected, in [0, 1]."""
    evaluate = dspy.Evaluate(
        devset=_dataset(examples), metric=metric, num_threads=threads, display_progress=False,
        provide_traceback=False, failure_score=0.0, max_errors=len(examples) + 1,
    )  # fmt: skip
    with dspy.context(lm=lm):
        return float(evaluate(program(instructions)).score) / 100.0


def propose(lm: Any, instructions: str, train: Sequence[Example], search: Search) -> str:
    """COPRO's best instructions on the training split (it may keep the current ones)."""
    optimizer = dspy.COPRO(
        metric=metric, breadth=search.breadth, depth=search.depth, init_temperature=search.temperature
    )
    with dspy.context(lm=lm):
        best = optimizer.compile(
            program(instructions), trainset=_dataset(train),
            eval_kwargs={"num_threads": search.threads, "display_progress": False},
        )  # fmt: skip
    return str(best.predictors()[0].signature.instructions).strip()


def optimise(
    lm: Any, current: str, train: Sequence[Example], holdout: Sequence[Example], search: Search, margin: float
) -> Decision:
    current_score = score(lm, current, holdout, search.threads)
    candidate = propose(lm, current, train, search)
    if normalise(candidate) == normalise(current):
        return Decision(
            False, current_score, None, candidate, "DSPy found no instructions better than the current prompt"
        )
    candidate_score = score(lm, candidate, holdout, search.threads)
    if candidate_score > current_score and candidate_score - current_score >= margin - 1e-12:
        reason = f"the candidate scored {candidate_score:.3f} on the holdout against {current_score:.3f}"
        return Decision(True, current_score, candidate_score, candidate, reason)
    reason = (
        f"the candidate scored {candidate_score:.3f} on the holdout against the current {current_score:.3f}; "
        f"promotion needs at least +{margin:.3f}"
    )
    return Decision(False, current_score, candidate_score, candidate, reason)
