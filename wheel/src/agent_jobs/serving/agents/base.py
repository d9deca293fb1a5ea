"""What an agent is: a name, a pydantic model of the `data` it takes, a packaged default prompt, and an async
`run` that gets the request's services (memory, LLM, prompts) and identity through `AgentContext`.

To add an agent, add one module to this package defining `AGENT = YourAgent()` and, beside it,
`<name>.md` with its default system prompt (the prompts volume's `base/<name>.md` and `optimised/<name>.json`
override it at run time). `/api/execute`, A2A (a skill) and MCP (a tool) pick it up from the registry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from agent_jobs.serving.endpoints import ChatClient
    from agent_jobs.serving.identity import Identity
    from agent_jobs.serving.memory import MemoryStore
    from agent_jobs.serving.prompts import PromptStore


@dataclass(frozen=True)
class AgentContext:
    """The services and the caller of one execution."""

    memory: MemoryStore
    llm: ChatClient
    prompts: PromptStore
    identity: Identity
    request_id: str


class Agent(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    input_model: ClassVar[type[BaseModel]]
    examples: ClassVar[tuple[str, ...]] = ()

    def packaged_prompt(self) -> str:
        """The default system prompt: `<name>.md` beside the agent's module, shipped in the wheel."""
        package = type(self).__module__.rpartition(".")[0]
        return resources.files(package).joinpath(f"{self.name}.md").read_text(encoding="utf-8")

    @abstractmethod
    async def run(self, data: Any, ctx: AgentContext) -> dict[str, Any]:
        """Execute on validated `data` (an instance of `input_model`); return a JSON-serialisable result.

        Raise `agent_jobs.serving.errors` exceptions for expected failures; the services already do for theirs.
        """
