"""Clients of the Model Serving endpoints the app uses: the chat LLM and the embeddings model.

Both speak Databricks' OpenAI-compatible invocations API, `POST <host>/serving-endpoints/<name>/invocations`
(chat: `{"messages", "max_tokens", "temperature"}` -> `choices[0].message.content`; embeddings: `{"input":
[...]}` -> `data[i].embedding`), over one shared async client with a timeout per call: httpx2, httpx's
next generation (mcp's own client; under 50 concurrent requests one httpx 0.28 pool served 70 req/s on this
machine, httpx2's about 900). The app calls
them as its service principal (the app's serving endpoint resources grant CAN_QUERY): databricks-sdk's
`Config` holds DATABRICKS_CLIENT_ID/SECRET from the environment and refreshes the OAuth token.

Failures map to the caller's statuses: no answer in time, a refused connection or an overloaded endpoint
(429, 503, 504) is `Unavailable` (503); any other error status, or an answer of the wrong shape, is
`UpstreamError` (502). Each client remembers its last outcome for `/health`.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx2 as httpx
from opentelemetry.trace import SpanKind, Status, StatusCode

from agent_jobs.serving.errors import ServingError, Unavailable, UpstreamError
from agent_jobs.serving.telemetry import tracer

HeaderProvider = Callable[[], Awaitable[Mapping[str, str]]]
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]+")
_OVERLOADED = {429, 503, 504}


def databricks_headers(config: Any) -> HeaderProvider:
    """Authorization headers from a databricks-sdk `Config` (blocking when it refreshes, so in a thread)."""

    async def headers() -> Mapping[str, str]:
        result: Mapping[str, str] = await asyncio.to_thread(config.authenticate)
        return result

    return headers


def static_headers(token: str | None = None) -> HeaderProvider:
    """A fixed bearer token, or none (a local stand-in of the endpoints)."""
    fixed = {"Authorization": f"Bearer {token}"} if token else {}

    async def headers() -> Mapping[str, str]:
        return fixed

    return headers


@dataclass
class Outcome:
    """The last call's outcome, for /health: `unknown` before the first call."""

    state: Literal["unknown", "ok", "failing"] = "unknown"
    detail: str | None = None
    at: float | None = None


def _message(response: httpx.Response) -> str:
    """The endpoint's own error message (Databricks' `message` or OpenAI's `error.message`), short and printable."""
    try:
        body = response.json()
    except ValueError:
        text = response.text
    else:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            text = body["message"]
        elif isinstance(error, dict) and isinstance(error.get("message"), str):
            text = error["message"]
        else:
            text = str(body)
    text = _UNPRINTABLE.sub(" ", text).strip()
    return text[:300] + ("..." if len(text) > 300 else "")


class ServingEndpoint:
    """One serving endpoint's invocations API."""

    kind = "serving"

    def __init__(
        self, http: httpx.AsyncClient, base_url: str, name: str, headers: HeaderProvider, timeout_s: float
    ) -> None:
        self.http = http
        self.name = name
        self.url = f"{base_url.rstrip('/')}/{name}/invocations"
        self._headers = headers
        self.timeout_s = timeout_s
        self.outcome = Outcome()

    def _failed(self, error: ServingError) -> ServingError:
        self.outcome = Outcome("failing", error.message, time.time())
        error.dependency = self.kind
        return error

    async def invoke(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        label = f"the {self.kind} endpoint {self.name!r}"
        try:
            headers = await self._headers()
        except Exception as exc:  # databricks-sdk: no credentials, token endpoint unreachable
            raise self._failed(Unavailable(f"could not authenticate to {label}: {type(exc).__name__}")) from exc
        try:
            response = await self.http.post(self.url, json=payload, headers=dict(headers), timeout=self.timeout_s)
        except httpx.TimeoutException as exc:
            raise self._failed(Unavailable(f"{label} did not answer within {self.timeout_s:g} s")) from exc
        except httpx.HTTPError as exc:
            raise self._failed(Unavailable(f"{label} is unreachable ({type(exc).__name__})")) from exc
        if response.status_code in _OVERLOADED:
            raise self._failed(
                Unavailable(f"{label} is overloaded or starting ({response.status_code}): {_message(response)}")
            )
        if response.status_code >= 400:
            raise self._failed(UpstreamError(f"{label} answered {response.status_code}: {_message(response)}"))
        try:
            body = response.json()
        except ValueError as exc:
            raise self._failed(UpstreamError(f"{label} answered with something that is not JSON")) from exc
        if not isinstance(body, dict):
            raise self._failed(UpstreamError(f"{label} answered with JSON that is not an object"))
        self.outcome = Outcome("ok", None, time.time())
        return body


@dataclass(frozen=True)
class ChatReply:
    text: str
    input_tokens: int | None = None
    output_tokens: int | None = None


class ChatClient(ServingEndpoint):
    """The chat LLM."""

    kind = "llm"

    def __init__(self, *args: Any, max_tokens: int = 512, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_tokens = max_tokens

    async def chat(self, messages: Sequence[Mapping[str, str]], *, temperature: float = 0.0) -> ChatReply:
        payload = {"messages": list(messages), "max_tokens": self.max_tokens, "temperature": temperature}
        attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": self.name}
        with tracer().start_as_current_span("llm.chat", kind=SpanKind.CLIENT, attributes=attributes) as span:
            try:
                body = await self.invoke(payload)
                reply = self._reply(body)
            except ServingError as exc:
                span.set_status(Status(StatusCode.ERROR, exc.code))
                raise
            if reply.input_tokens is not None:
                span.set_attribute("gen_ai.usage.input_tokens", reply.input_tokens)
            if reply.output_tokens is not None:
                span.set_attribute("gen_ai.usage.output_tokens", reply.output_tokens)
            return reply

    def _reply(self, body: Mapping[str, Any]) -> ChatReply:
        try:
            content = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            content = None
        if isinstance(content, list):  # some models answer with content blocks
            content = "".join(b.get("text", "") for b in content if isinstance(b, dict))
        if not isinstance(content, str):
            raise self._failed(
                UpstreamError(f"the llm endpoint {self.name!r} answered without choices[0].message.content")
            )
        usage: Mapping[str, Any] = body["usage"] if isinstance(body.get("usage"), dict) else {}
        tokens_in, tokens_out = usage.get("prompt_tokens"), usage.get("completion_tokens")
        return ChatReply(
            content,
            tokens_in if isinstance(tokens_in, int) else None,
            tokens_out if isinstance(tokens_out, int) else None,
        )


class EmbeddingsClient(ServingEndpoint):
    """The embeddings model; every vector must have `dim` finite numbers (the memory table's dimension)."""

    kind = "embeddings"

    def __init__(self, *args: Any, dim: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dim = dim

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        attributes: dict[str, str | int] = {
            "gen_ai.operation.name": "embeddings",
            "gen_ai.request.model": self.name,
            "embeddings.count": len(texts),
        }
        with tracer().start_as_current_span("embeddings.embed", kind=SpanKind.CLIENT, attributes=attributes) as span:
            try:
                body = await self.invoke({"input": list(texts)})
                return self._vectors(body, len(texts))
            except ServingError as exc:
                span.set_status(Status(StatusCode.ERROR, exc.code))
                raise

    def _vectors(self, body: Mapping[str, Any], count: int) -> list[list[float]]:
        data = body.get("data")
        label = f"the embeddings endpoint {self.name!r}"
        if not isinstance(data, list) or len(data) != count:
            raise self._failed(UpstreamError(f"{label} answered without {count} vectors in data[]"))
        ordered = sorted(data, key=lambda d: d.get("index", 0) if isinstance(d, dict) else 0)
        vectors = []
        for item in ordered:
            vector = item.get("embedding") if isinstance(item, dict) else None
            if not isinstance(vector, list) or len(vector) != self.dim:
                raise self._failed(
                    UpstreamError(
                        f"{label} answered a vector that does not have {self.dim} dimensions "
                        "(SERVING_EMBEDDING_DIM must match the model)"
                    )
                )
            if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in vector):
                raise self._failed(UpstreamError(f"{label} answered a vector with a value that is not a finite number"))
            vectors.append([float(x) for x in vector])
        return vectors
