"""The health monitor agent as an MLflow models-from-code file: MLflow stores this file's source with the
model and runs it when the model is loaded, in the job or in the serving container.

It imports only mlflow and databricks-sdk, both pre-installed on Databricks runtimes and Model Serving, so
the container needs neither this wheel nor pinned versions (the seed's "self-contained agent" and serverless
dependency lessons). Everything the agent needs comes from the model's config: `llm_endpoint` (the serving
endpoint of the LLM, default databricks-claude-sonnet-4), `system_prompt`, `max_tokens`.

Contract: `predict({"messages": [{"role": "user", "content": "..."}]})` returns `{"response": "<text>"}` for
one conversation; a batch (a DataFrame or list of several conversations) returns a list of such dicts.
"""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.entities import SpanType
from mlflow.pyfunc import PythonModel

DEFAULT_LLM_ENDPOINT = "databricks-claude-sonnet-4"
DEFAULT_MAX_TOKENS = 2048


def conversations(model_input: Any) -> list[list[dict[str, Any]]]:
    """The conversations in a request: {"messages": [...]}, a list of those, or the DataFrame pyfunc makes
    of them (one row per conversation, a `messages` column)."""
    if isinstance(model_input, dict):
        return [list(model_input["messages"])]
    if hasattr(model_input, "columns"):  # a pandas DataFrame
        return [list(cell) for cell in model_input["messages"]]
    return [list(item["messages"]) for item in model_input]


class HealthMonitorAgent(PythonModel):  # type: ignore[misc]
    """Answers platform health questions with one call to the LLM serving endpoint."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self._client: Any = None

    def load_context(self, context: Any) -> None:
        self.config = dict(getattr(context, "model_config", None) or {})

    def _workspace(self) -> Any:
        # Created on first use: credentials come from the environment (the job's identity, or the endpoint's
        # auth passthrough for the resources declared when the model was logged).
        if self._client is None:
            from databricks.sdk import WorkspaceClient

            self._client = WorkspaceClient()
        return self._client

    @mlflow.trace(span_type=SpanType.CHAT_MODEL)
    def ask(self, messages: list[dict[str, Any]]) -> str:
        from databricks.sdk.service.serving import ChatMessage, ChatMessageRole

        system = self.config.get("system_prompt")
        chat = [ChatMessage(role=ChatMessageRole.SYSTEM, content=system)] if system else []
        chat += [ChatMessage(role=ChatMessageRole(m["role"]), content=str(m.get("content") or "")) for m in messages]
        response = self._workspace().serving_endpoints.query(
            name=self.config.get("llm_endpoint") or DEFAULT_LLM_ENDPOINT,
            messages=chat,
            max_tokens=int(self.config.get("max_tokens") or DEFAULT_MAX_TOKENS),
        )
        choices = response.choices or []
        message = choices[0].message if choices else None
        return str(message.content or "") if message is not None else ""

    # model_input has no annotation on purpose: MLflow reads that hint to convert inputs, and warns about any
    # hint that is not list[...]; the signature given at logging time describes the input instead.
    @mlflow.trace(span_type=SpanType.AGENT)
    def predict(self, context: Any, model_input, params: dict[str, Any] | None = None) -> Any:  # type: ignore[no-untyped-def]
        answers = [{"response": self.ask(messages)} for messages in conversations(model_input)]
        return answers[0] if len(answers) == 1 else answers


mlflow.models.set_model(HealthMonitorAgent())
