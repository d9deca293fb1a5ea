"""The model behind a Databricks serving endpoint that speaks the Anthropic Messages API.

Seed 000 points ANTHROPIC_BASE_URL at https://<workspace>/serving-endpoints/anthropic and authenticates
with a Databricks token (ANTHROPIC_AUTH_TOKEN, sent as a bearer token). Any failure to get an answer
becomes a JobError that says which endpoint and why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from agent_jobs.errors import JobError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    text: str
    usage: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ServingEndpoint:
    base_url: str
    token: str = field(repr=False)
    model: str
    timeout_seconds: float = 120.0
    max_retries: int = 2
    max_tokens: int = 4096

    def ask(self, system: str, messages: list[dict[str, Any]]) -> Answer:
        """One Messages API call; retries transient failures (the SDK's bounded backoff)."""
        import anthropic

        # An explicit auth_token (a Databricks token, sent as a bearer token) means the client reads no
        # credentials from the environment, so a stray ANTHROPIC_API_KEY is never sent to Databricks.
        client = anthropic.Anthropic(
            base_url=self.base_url, auth_token=self.token, timeout=self.timeout_seconds, max_retries=self.max_retries
        )
        log.info("asking %s at %s", self.model, self.base_url)
        try:
            response = client.messages.create(
                model=self.model,
                max_tokens=self.max_tokens,
                system=system,
                messages=messages,
            )
        except anthropic.APIConnectionError as exc:
            raise JobError(f"serving endpoint unreachable at {self.base_url}: {exc}") from exc
        except anthropic.APIStatusError as exc:
            raise JobError(
                f"serving endpoint {self.base_url} refused the request (HTTP {exc.status_code}): {exc.message}"
            ) from exc
        text = "".join(getattr(block, "text", "") for block in response.content)
        usage = {
            "input_tokens": int(getattr(response.usage, "input_tokens", 0) or 0),
            "output_tokens": int(getattr(response.usage, "output_tokens", 0) or 0),
        }
        if not text.strip():
            raise JobError(f"serving endpoint {self.base_url} returned an empty answer (model {self.model})")
        return Answer(text=text, usage=usage)
