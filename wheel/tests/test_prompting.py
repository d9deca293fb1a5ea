"""The shared prompt loader: each system's prompts live in its own subpackage and load by (package, name)."""

from __future__ import annotations

import pytest

from agent_jobs import prompting


def test_each_system_loads_its_own_prompts_and_not_another_s() -> None:
    """eval_agent/prompts/system.md belongs to the eval agent: the health monitor's package has no such file."""
    assert prompting.load("agent_jobs.eval_agent", "system").startswith("You are the MLflow evaluation agent")
    assert "{{query}}" in prompting.load("agent_jobs.health_monitor", "intent_classifier")
    with pytest.raises(FileNotFoundError):
        prompting.load("agent_jobs.health_monitor", "system")


def test_render_fills_placeholders_and_keeps_braces() -> None:
    text = prompting.render(
        "agent_jobs.eval_agent", "autonomous", experiment_name="q", experiment_id="7", experiment_summary="| a |"
    )
    assert 'experiment "q" (id 7)' in text and "$" not in text


@pytest.mark.parametrize("name", ["../health_monitor/prompts/cost_worker", "System", "a/b", ""])
def test_a_name_outside_the_system_s_prompts_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="invalid prompt name"):
        prompting.load("agent_jobs.eval_agent", name)
