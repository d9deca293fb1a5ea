"""Compare two offline plans (`python -m infra preview --stack S --json`, base and head) as Markdown for one
pull-request comment: resources added, changed (the changed input paths, old -> new, briefly) and removed, keyed
by (type, logical name) as Pulumi keys them; changed stack outputs; the new task DAG of every job whose tasks or
dependencies changed, as Mermaid.

Values come from the documents, where every secret is already "[secret]". A rotation is seen only through the
documents' `secrets` states (a short hash of the committed ciphertext; infra.offline.secret_states): the Secret
resources a rotated config key feeds are listed as changed, their value still masked. This module runs no
program, reads no stack file, and never prints a long value in full.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from infra.offline import MASK
from infra.preview import mermaid
from infra.settings import SECRETS

JOB, SECRET = "databricks:index/job:Job", "databricks:index/secret:Secret"
REQUIRED: dict[str, type] = {"project": str, "stack": str, "resources": list, "outputs": dict}
ID_KEYS = ("taskKey", "environmentKey", "jobClusterKey", "principal", "name")  # list items matched by these
WIDTH = 80  # longest value shown
LONG = 200  # a string longer than this is summarised by its size (the wheel's contentBase64: ~30 KB)
MAX_PATHS = 20  # changed paths listed per resource


class DocumentError(Exception):
    """A file that is not an offline preview document (exit status 2)."""


def load_document(path: Path) -> dict[str, Any]:
    """Read and check a `preview --json` document; DocumentError names the file and what is wrong."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DocumentError(f"{path}: no such file") from None
    except OSError as exc:
        raise DocumentError(f"{path}: cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise DocumentError(f"{path}: is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise DocumentError(f"{path}: is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    wrong = [k for k, t in REQUIRED.items() if not isinstance(doc, dict) or not isinstance(doc.get(k), t)]
    if not wrong and not isinstance(doc.get("secrets", {}), dict):
        wrong = ["secrets"]
    if not wrong and not all(
        isinstance(r, dict) and isinstance(r.get("type"), str) and isinstance(r.get("name"), str)
        and isinstance(r.get("inputs"), dict)
        for r in doc["resources"]
    ):  # fmt: skip
        wrong = ["resources[].type/name/inputs"]
    if wrong:
        raise DocumentError(f"{path}: is not an offline preview document ({', '.join(wrong)} missing or not of the "
                            "expected type); make one with: python -m infra preview --stack NAME --json")  # fmt: skip
    return dict(doc)


def diff_files(base: Path, head: Path) -> str:
    return diff_documents(load_document(base), load_document(head))


def _code(text: str) -> str:
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _brief(value: Any) -> str:
    if value == MASK:
        return MASK
    if isinstance(value, dict):
        key = next((k for k in ID_KEYS if isinstance(value.get(k), str)), None)
        if key is not None and len(value) > 1:  # a task, an environment, a grant: say which one
            return _code(f'{{"{key}": {json.dumps(value[key], ensure_ascii=False)}, …}}')
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    half = WIDTH // 2  # both ends: paths and names differ at either
    return _code(text if len(text) <= WIDTH else f"{text[: half - 1]}…{text[-half:]}")


def _size(path: str, value: Any) -> str:
    if not isinstance(value, str):
        return "none" if value is None else "not text"
    if path.endswith("Base64"):  # the decoded size: what is uploaded
        return f"{len(value) * 3 // 4 - (len(value) - len(value.rstrip('=')))} bytes"
    return f"{len(value.encode())} bytes"


def _line(path: str, old: Any, new: Any, absent: str = "") -> str:
    if (isinstance(old, str) and len(old) > LONG) or (isinstance(new, str) and len(new) > LONG):
        before, after = _size(path, old), _size(path, new)
        return f"{_code(path)}: changed ({after if before == after else f'{before} -> {after}'})"
    shown = ["(none)" if absent == side else _brief(v) for side, v in (("old", old), ("new", new))]
    return f"{_code(path)}: {shown[0]} -> {shown[1]}"


def changes(old: Any, new: Any, path: str = "") -> Iterator[str]:
    """One line per changed leaf path (`tasks[2].pythonWheelTask.parameters[5]`): old -> new, briefly."""
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new)):
            sub = f"{path}.{k}" if path else str(k)
            if k not in old or k not in new:
                yield _line(sub, old.get(k), new.get(k), "old" if k not in old else "new")
            else:
                yield from changes(old[k], new[k], sub)
    elif isinstance(old, list) and isinstance(new, list):
        yield from _list_changes(old, new, path)
    else:
        yield _line(path, old, new)


def _id_key(items: list[Any]) -> str | None:
    for key in ID_KEYS:
        ids = [i.get(key) if isinstance(i, dict) else None for i in items]
        if all(isinstance(i, str) for i in ids) and len(set(ids)) == len(ids):
            return key
    return None


def _list_changes(old: list[Any], new: list[Any], path: str) -> Iterator[str]:
    """Items with an identity (a task's taskKey) are matched by it, others by a sequence diff, so inserting one
    task or parameter shows as one addition, not as every later item changed. Indices: head's, or base's for
    a removed item."""
    key = _id_key(old) if _id_key(new) == _id_key(old) else None
    if key is not None:
        before = {o[key]: o for o in old}
        after = {n[key] for n in new}
        for j, n in enumerate(new):
            if n[key] in before:
                yield from changes(before[n[key]], n, f"{path}[{j}]")
            else:
                yield _line(f"{path}[{j}]", None, n, "old")
        yield from (_line(f"{path}[{i}]", o, None, "new") for i, o in enumerate(old) if o[key] not in after)
        return
    a, b = ([json.dumps(v, sort_keys=True) for v in side] for side in (old, new))
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "replace" and i2 - i1 == j2 - j1:
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                yield from changes(old[i], new[j], f"{path}[{j}]")
        elif op != "equal":
            yield from (_line(f"{path}[{i}]", old[i], None, "new") for i in range(i1, i2))
            yield from (_line(f"{path}[{j}]", None, new[j], "old") for j in range(j1, j2))


def _secret_lines(base: dict[str, Any], head: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(scope, key) of each Secret whose config key changed state -> its masked change line."""
    if "secrets" not in base or "secrets" not in head:
        return {}  # a document from before the `secrets` key: a rotation cannot be seen
    scopes = head["outputs"].get("secret_scope")
    lines = {}
    for spec in SECRETS:
        old, new = (doc["secrets"].get(spec.config_key, "unset") for doc in (base, head))
        if old != new and isinstance(scopes, dict) and isinstance(scopes.get(spec.system), str):
            kind = {o: "encrypted" if o not in ("unset", "plaintext") else o for o in (old, new)}
            how = "rotated" if kind[old] == kind[new] == "encrypted" else f"{kind[old]} -> {kind[new]}"
            lines[(scopes[spec.system], spec.key)] = f"`stringValue`: {MASK} -> {MASK} ({how})"
    return lines


def _dag(inputs: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return sorted(
        (str(t.get("taskKey")), sorted(str(d.get("taskKey")) for d in t.get("dependsOns") or []))
        for t in inputs.get("tasks") or []
    )


def _changed(base: dict[str, Any], head: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    """(type, name) of each resource in both documents -> its changed input paths (and options), if any."""
    old = {(r["type"], r["name"]): r for r in base["resources"]}
    rotated = _secret_lines(base, head)
    changed = {}
    for r in sorted(head["resources"], key=lambda r: (r["type"], r["name"])):
        if (k := (r["type"], r["name"])) in old:
            lines = list(changes(old[k]["inputs"], r["inputs"]))
            if r["type"] == SECRET and (r["inputs"].get("scope"), r["inputs"].get("key")) in rotated:
                lines.append(rotated[(r["inputs"]["scope"], r["inputs"]["key"])])
            for option in ("parent", "protect", "retain_on_delete"):
                lines += [f"{line} (option)" for line in changes(old[k].get(option), r.get(option), option)]
            if lines:
                changed[k] = lines
    return changed


def diff_documents(base: dict[str, Any], head: dict[str, Any]) -> str:
    """The Markdown comment: deterministic for the same two documents."""
    old = {(r["type"], r["name"]): r for r in base["resources"]}
    new = {(r["type"], r["name"]): r for r in head["resources"]}
    added, removed, changed = sorted(new.keys() - old.keys()), sorted(old.keys() - new.keys()), _changed(base, head)
    outputs = list(changes(base["outputs"], head["outputs"]))
    where = f"{head['project']} / {head['stack']}"
    if (base["project"], base["stack"]) != (head["project"], head["stack"]):
        where += f" (base: {base['project']} / {base['stack']})"
    out = [f"### Offline preview diff: {where}", ""]
    if not (added or changed or removed or outputs):
        return "\n".join([*out, "No changes: the head renders the same resources and outputs as the base."]) + "\n"
    n = sum(base["outputs"].get(o) != head["outputs"].get(o) for o in base["outputs"].keys() | head["outputs"])
    more_outputs = f"; {n} stack output{'s' if n > 1 else ''} changed" if n else ""
    out += [f"**{len(added)} added, {len(changed)} changed, {len(removed)} removed**{more_outputs}", ""]

    def named(k: tuple[str, str], doc: dict[tuple[str, str], Any]) -> str:
        physical = doc[k]["inputs"].get("name")
        return f"- `{k[0]}` **{k[1]}**" + (f" ({_code(physical)})" if isinstance(physical, str) else "")

    out += ["#### Added", *(named(k, new) for k in added), ""] if added else []
    out += ["#### Changed"] if changed else []
    for k, lines in changed.items():
        more = [f"…and {len(lines) - MAX_PATHS} more changed paths"] if len(lines) > MAX_PATHS else []
        out += [named(k, new), *(f"  - {line}" for line in [*lines[:MAX_PATHS], *more])]
    out += [""] if changed else []
    out += ["#### Removed", *(named(k, old) for k in removed), ""] if removed else []
    out += ["#### Stack outputs", *(f"- {line}" for line in outputs), ""] if outputs else []
    jobs = [
        k for k in sorted(new) if k[0] == JOB and (k not in old or _dag(old[k]["inputs"]) != _dag(new[k]["inputs"]))
    ]
    out += ["#### Job DAGs changed"] if jobs else []
    for k in jobs:
        out += ["", f"**{k[1]}**{'' if k in old else ' (new job)'}", "```mermaid", mermaid(new[k]["inputs"]), "```"]
    return "\n".join(out).rstrip("\n") + "\n"
