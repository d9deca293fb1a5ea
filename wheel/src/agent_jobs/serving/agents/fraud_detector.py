"""The seed's example agent: decides on a card transaction from similar past cases and the LLM.

1. describes the transaction as text and embeds it once;
2. retrieves the five most similar past cases of this agent from memory;
3. asks the LLM (system prompt: the prompts store's current `fraud_detector` prompt) for a JSON assessment:
   decision (approve / review / decline), risk score in [0, 1], reasons;
4. stores this transaction and its decision as a new memory, so later similar transactions see it;
5. returns the decision with its reasons, the similar cases it used and the prompt version.

An LLM answer that is not that JSON is a 502 (the LLM failed the contract), not a guess.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent_jobs.serving.agents.base import Agent, AgentContext
from agent_jobs.serving.errors import UpstreamError

TOP_K = 5
_TEXT = r"^[^\x00-\x1f\x7f]+$"


class Transaction(BaseModel):
    """The seed's request data; other keys are kept and shown to the LLM."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False, str_strip_whitespace=True)

    transaction_id: str = Field(min_length=1, max_length=128, pattern=_TEXT)
    amount: float = Field(ge=0, le=1e12, strict=True)  # a number, not a numeric string
    merchant: str = Field(min_length=1, max_length=256, pattern=_TEXT)
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")


class Assessment(BaseModel):
    """What the LLM must answer."""

    model_config = ConfigDict(allow_inf_nan=False)

    decision: Literal["approve", "review", "decline"]
    risk_score: float = Field(ge=0, le=1)
    reasons: list[str] = Field(min_length=1, max_length=10)


def describe(tx: Transaction) -> str:
    """The text that is embedded and remembered for a transaction."""
    extra = {k: v for k, v in (tx.model_extra or {}).items()}
    details = "; ".join(f"{k}={json.dumps(v, sort_keys=True)}" for k, v in sorted(extra.items()))
    text = f"transaction {tx.transaction_id}: {tx.amount:.2f} {tx.currency} at {tx.merchant}"
    return f"{text} ({details})" if details else text


def parse_assessment(text: str) -> Assessment:
    """The JSON object in the LLM's answer (fenced or bare), validated."""
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if match is None:
        raise UpstreamError("the LLM's answer has no JSON object (the fraud_detector asks for one)", dependency="llm")
    try:
        return Assessment.model_validate_json(match.group(0))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors()[:3])
        raise UpstreamError(
            f"the LLM's answer is not the assessment the fraud_detector asks for: {problems}", dependency="llm"
        ) from None


class FraudDetector(Agent):
    name = "fraud_detector"
    description = (
        "Decides whether to approve, review or decline a card transaction, with reasons, from similar past cases."
    )
    input_model = Transaction
    examples = ('{"transaction_id": "txn_12345", "amount": 5000, "merchant": "Electronics Store"}',)

    async def run(self, data: Any, ctx: AgentContext) -> dict[str, Any]:
        tx: Transaction = data
        text = describe(tx)
        vector = (await ctx.memory.embeddings.embed([text]))[0]
        similar = await ctx.memory.retrieve(text, self.name, TOP_K, embedding=vector)
        prompt = ctx.prompts.get(self.name)
        cases = [
            {
                "case": r.content,
                "decision": r.metadata.get("decision"),
                "risk_score": r.metadata.get("risk_score"),
                "similarity": round(r.similarity, 4),
            }
            for r in similar
        ]
        question = {"transaction": tx.model_dump(mode="json"), "similar_cases": cases}
        reply = await ctx.llm.chat(
            [
                {"role": "system", "content": prompt.text},
                {"role": "user", "content": json.dumps(question, sort_keys=True)},
            ]
        )
        assessment = parse_assessment(reply.text)
        memory_id = await ctx.memory.store(
            self.name,
            text,
            {
                "transaction_id": tx.transaction_id,
                "amount": tx.amount,
                "currency": tx.currency,
                "merchant": tx.merchant,
                "decision": assessment.decision,
                "risk_score": assessment.risk_score,
                "request_id": ctx.request_id,
            },
            created_by=ctx.identity.principal,
            embedding=vector,
        )
        return {
            "transaction_id": tx.transaction_id,
            "decision": assessment.decision,
            "risk_score": assessment.risk_score,
            "reasons": assessment.reasons,
            "similar_cases": [
                {"memory_id": r.id, "similarity": round(r.similarity, 4), "decision": r.metadata.get("decision")}
                for r in similar
            ],
            "prompt_version": prompt.version,
            "memory_id": memory_id,
        }


AGENT = FraudDetector()
