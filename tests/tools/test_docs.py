"""The README tells the truth: its configuration reference is generated from the settings model."""

from __future__ import annotations

from infra.settings import SECRETS, StackSettings
from infra.tools.docs import END, START, _models, config_reference
from tests.conftest import ROOT


def test_readme_config_reference_is_current() -> None:
    """Run `python -m infra config-reference --write` after changing settings.py, or this fails."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index(START) : readme.index(END) + len(END)]
    assert section == config_reference()


def test_every_setting_is_described() -> None:
    """Every field of every settings model has a description: it is the user's only documentation."""
    seen, todo = set(), [StackSettings]
    while todo:
        model = todo.pop()
        seen.add(model)
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name}"
            todo.extend(m for m in _models(field.annotation) if m not in seen)
    assert len(seen) >= 15
    reference = config_reference()
    for spec in SECRETS:
        assert f"`{spec.config_key}`" in reference
    for name, field in StackSettings.model_fields.items():
        assert f"| `{field.alias or name}` |" in reference


def test_readme_quick_start_has_the_two_commands() -> None:
    """ARCHITECTURE 3.1: a fresh machine needs only these two commands."""
    readme = (ROOT / "README.md").read_text()
    quick_start = readme[readme.index("## Quick start") :].split("\n## ")[0]
    assert "make preview" in quick_start and "make test" in quick_start
