"""The agents' base prompts in the prompts volume: `base/<agent>.md`, one `File` per prompt the wheel packages
(agent_jobs/serving/agents/<agent>.md), with its md5.

The nightly optimiser writes `optimised/<agent>.json` beside them and never over them; the app prefers an
optimised prompt, then the base one, then the packaged one (agent_jobs/serving/prompts.py). The files are
retain_on_delete (a volume's files are data); a prompt edited in git is updated in place (same path).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_databricks as db

AGENTS = Path("src") / "agent_jobs" / "serving" / "agents"
BASE = "base"


def base_prompts(wheel_source: Path) -> dict[str, bytes]:
    """Agent name -> its packaged prompt, from the wheel's sources."""
    found = {p.stem: p.read_bytes() for p in sorted((wheel_source / AGENTS).glob("*.md"))}
    if not found:
        raise ValueError(f"no agent prompts in {wheel_source / AGENTS} (expected <agent>.md beside each agent)")
    return found


@dataclass(frozen=True)
class BasePromptsArgs:
    prompts: dict[str, bytes]
    volume_path: pulumi.Input[str]
    """/Volumes/<catalog>/<schema>/<prompts volume>."""


class BasePrompts(pulumi.ComponentResource):
    """Children: `File` <name>-<agent> at <volume>/base/<agent>.md per agent (retained)."""

    paths: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: BasePromptsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:serving:BasePrompts", name, None, opts)
        self.paths = {}
        for agent, content in sorted(args.prompts.items()):
            uploaded = db.File(
                f"{name}-{agent.replace('_', '-')}",
                path=pulumi.Output.concat(args.volume_path, f"/{BASE}/{agent}.md"),
                content_base64=base64.b64encode(content).decode(),
                md5=hashlib.md5(content).hexdigest(),
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            )
            self.paths[agent] = uploaded.path
        self.register_outputs({"paths": self.paths})
