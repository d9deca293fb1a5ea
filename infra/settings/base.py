"""The base of every settings model and the one error type the user sees.

Every model is frozen and refuses unknown keys, suggesting the nearest valid one; rules that involve several
fields fail through `fail()`, which names the field, so the message formatting (infra.settings.messages) can
say "<stack file>: <key>: <what is wrong>; allowed: <what is allowed>".
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError


class SettingsError(Exception):
    """Invalid stack configuration: the message is meant for the user as it is (no traceback)."""


class Section(BaseModel):
    """Base of every settings model: frozen, unknown keys refused with the nearest valid key suggested."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = sorted(f.alias or name for name, f in cls.model_fields.items())
            for key in sorted(data, key=str):
                if key not in known:
                    raise PydanticCustomError(
                        "unknown_key",
                        "is not a known setting{hint}; allowed here: {known}",
                        {"key": str(key), "hint": did_you_mean(str(key), known), "known": ", ".join(known)},
                    )
        return data


def did_you_mean(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def fail(field: str, value: object, message: str) -> None:
    """Fail a rule that involves several fields; `field` is the dotted path below the model being validated."""
    raise PydanticCustomError("field_rule", message, {"field": field, "value": value})
