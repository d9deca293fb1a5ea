"""The shared prompt loader: each system keeps its prompts as package data in its own subpackage
(agent_jobs/<system>/prompts/<name>.md) and reads them with importlib.resources, so the same code finds them
in a source checkout and in an installed wheel (seed 000 step 1). The serving agents keep theirs beside each
agent's module (agent_jobs.serving.agents.base.Agent.packaged_prompt).

The `prompts` directories are data, not packages (no __init__.py): the loader resolves them from the system's
package, which works from a directory and from a zip alike on Python 3.10.
"""

from __future__ import annotations

import re
from importlib import resources
from string import Template

_NAME = re.compile(r"[a-z0-9_]+")


def load(package: str, name: str) -> str:
    """The text of <package>/prompts/<name>.md, `package` a dotted name (`load("agent_jobs.eval_agent", "system")`)."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid prompt name {name!r}: lower-case letters, digits and underscores only")
    return resources.files(package).joinpath("prompts").joinpath(f"{name}.md").read_text(encoding="utf-8")


def render(package: str, name: str, **values: object) -> str:
    """<package>/prompts/<name>.md with its $placeholders filled (string.Template: braces stay literal)."""
    return Template(load(package, name)).substitute({k: str(v) for k, v in values.items()})
