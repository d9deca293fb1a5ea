"""The agents registry: every module of this package that defines `AGENT` (an `Agent` instance) is one agent,
registered under `AGENT.name`. Adding an agent is adding a module (see `base.py`); nothing else lists them.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

from agent_jobs.serving.agents.base import Agent, AgentContext

__all__ = ["Agent", "AgentContext", "discover"]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def discover(package: str = __name__) -> dict[str, Agent]:
    """name -> agent for every agent module of `package`, sorted by name."""
    root = importlib.import_module(package)
    agents: dict[str, Agent] = {}
    for info in pkgutil.iter_modules(root.__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        agent = getattr(module, "AGENT", None)
        if agent is None:
            continue
        if not isinstance(agent, Agent):
            raise TypeError(f"{module.__name__}.AGENT is not an Agent instance")
        if not _NAME.match(agent.name):
            raise ValueError(f"{module.__name__}: agent name {agent.name!r} is not [a-z][a-z0-9_]* (at most 64)")
        if agent.name in agents:
            raise ValueError(f"two agents are named {agent.name!r}")
        agents[agent.name] = agent
    return dict(sorted(agents.items()))
