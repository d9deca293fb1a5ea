"""Prompts shipped as package data, loaded with importlib.resources: the same code finds them in a source
checkout and in an installed wheel (seed 000 step 1)."""

from __future__ import annotations

from importlib import resources
from string import Template


def load(name: str) -> str:
    """The text of prompts/<name>.md."""
    return resources.files(__name__).joinpath(f"{name}.md").read_text(encoding="utf-8")


def render(name: str, **values: object) -> str:
    """prompts/<name>.md with its $placeholders filled (string.Template: braces in prompts stay literal)."""
    return Template(load(name)).substitute({k: str(v) for k, v in values.items()})
