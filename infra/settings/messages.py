"""Turning pydantic's errors into the one message a user reads: "<stack file>: <project>:<key> = <value>:
<what is wrong>; allowed: <what is allowed>", one line per problem, never a traceback."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from infra.settings.base import Section, did_you_mean
from infra.settings.sections import ExistingClusterCompute, JobClusterCompute, ServerlessCompute
from infra.settings.stack import StackSettings


def describe(project: str, error: Any) -> str:
    """One line per pydantic error: '<project>:<key path> = <value>: <what is wrong; what is allowed>'."""
    ctx = error.get("ctx") or {}
    # Discriminated unions add the tag to the location (rlm.compute.existing_cluster.cluster_id).
    loc: list[str | int] = [p for p in error["loc"] if p not in _UNION_TAGS]
    value = error.get("input")
    if error["type"] == "unknown_key":
        loc.append(ctx["key"])
        value = _MISSING
    elif error["type"] == "field_rule":
        loc.extend(ctx["field"].split("."))
        value = _MISSING if ctx.get("value") is None else ctx["value"]
    elif error["type"] == "missing":
        value = _MISSING
    elif error["type"] == "union_tag_invalid":  # name the kind the user wrote, where they wrote it
        loc.append("kind")
        value = ctx.get("tag", _MISSING)
    if "[key]" in loc:  # a bad dict key (a principal, a tag key): name the entry
        loc.remove("[key]")
    message = _friendly(error)
    misspelt = _misspelt_kind(error)
    if misspelt is not None:  # `kindx: serverless` is a misspelt `kind`, not a missing one
        loc.append(misspelt)
        value = _MISSING
        others = ", ".join(k for k in _COMPUTE_KEYS if k != "kind")
        message = (f"is not a known setting{did_you_mean(misspelt, _COMPUTE_KEYS)}; allowed here: kind (serverless, "
                   f"existing_cluster or job_cluster) and that kind's settings ({others})")  # fmt: skip
    key = f"{project}:{_path(loc)}"
    if error["type"] == "missing":
        message += _description_at(error["loc"])
    if error["type"] == "int_parsing_size":
        message += f" ({_range_at(error['loc'])})"
    shown = "" if value is _MISSING or isinstance(value, dict | list) else f" = {_shown(value)}"
    return f"{key}{shown}: {message}"


def _misspelt_kind(error: Any) -> str | None:
    """The first unknown key of a compute mapping that has no kind, if there is one."""
    value = error.get("input")
    if error["type"] != "union_tag_not_found" or not isinstance(value, dict):
        return None
    return next((str(k) for k in sorted(value, key=str) if k not in _COMPUTE_KEYS), None)


def _shown(value: object) -> str:
    """A value quoted in a message: control and bidirectional characters escaped (repr), long values cut."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def clip(key: str) -> str:
    return key if len(key) <= 80 and key.isprintable() else json.dumps(key[:77] + ("..." if len(key) > 77 else ""))


_MISSING = object()
_UNION_TAGS: dict[str, type[Section]] = {
    "serverless": ServerlessCompute,
    "existing_cluster": ExistingClusterCompute,
    "job_cluster": JobClusterCompute,
}
_COMPUTE_KEYS = sorted({f.alias or n for model in _UNION_TAGS.values() for n, f in model.model_fields.items()})


def _field_at(loc: tuple[str | int, ...]) -> FieldInfo | None:
    """The settings field at a pydantic error location."""
    model: type[BaseModel] | None = StackSettings
    field = None
    for part in loc:
        if isinstance(part, str) and part in _UNION_TAGS:
            model = _UNION_TAGS[part]
            continue
        fields = {f.alias or n: f for n, f in model.model_fields.items()} if model else {}
        if part not in fields:
            return None
        field = fields[part]
        annotation = field.annotation
        candidates = [a for a in (*getattr(annotation, "__args__", ()), annotation) if isinstance(a, type)]
        model = next((a for a in candidates if issubclass(a, BaseModel)), None)
    return field


def _description_at(loc: tuple[str | int, ...]) -> str:
    """': <description>' of the field at a pydantic error location, for 'is required' messages."""
    field = _field_at(loc)
    return f" ({field.description})" if field is not None and field.description else ""


def _range_at(loc: tuple[str | int, ...]) -> str:
    """'at least 1, at most 100': the bounds of the number field at a pydantic error location."""
    field = _field_at(loc)
    words = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}
    bounds = [f"{words[k]} {getattr(m, k)}" for m in (field.metadata if field else []) for k in words if hasattr(m, k)]
    return ", ".join(bounds) or "a whole number"


def _path(loc: list[str | int]) -> str:
    """The key path in `pulumi config set --path` syntax: a.b[0], a["key with/odd chars"]."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            shown = part if len(part) <= 60 else part[:57] + "..."  # a hostile key may be a megabyte long
            path += f".{part}" if part.isidentifier() else f"[{json.dumps(shown)}]"
    return path.lstrip(".")


def _friendly(error: Any) -> str:
    kind, msg = str(error["type"]), str(error["msg"])
    if kind == "missing":
        return "is required but not set"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a mapping (YAML object), not a single value"
    if kind == "union_tag_not_found":
        return "needs a kind; allowed: serverless, existing_cluster or job_cluster"
    if kind == "int_parsing_size":
        return "is too large a number; allowed: a whole number in the setting's range"  # the range: _describe
    if kind == "union_tag_invalid":
        return "is not a kind of compute; allowed: serverless, existing_cluster or job_cluster"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}
        limits = [f"{word} {error['ctx'][key]}" for key, word in bound.items() if key in (error.get("ctx") or {})]
        return f"is out of range; allowed: {', '.join(limits)}"
    if kind in ("tuple_type", "list_type"):
        return "must be a list (in YAML: - item, or [a, b])"
    if kind == "literal_error":
        return f"is not allowed; allowed: {msg.removeprefix('Input should be ')}"
    if kind.startswith(("bool_", "int_", "float_", "string_type")):
        return msg.replace("Input should be", "must be")
    return msg


def one_message(stack_file: str, problems: list[str]) -> str:
    if len(problems) == 1:
        return f"{stack_file}: {problems[0]}"
    return f"{stack_file}: {len(problems)} problems in the stack configuration:\n" + "\n".join(
        f"  - {p}" for p in problems
    )
