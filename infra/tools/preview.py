"""Render an offline plan: a resource tree for people, Mermaid job DAGs for PR comments, or one JSON document.

The JSON (ARCHITECTURE 3.2) is byte-identical for identical inputs: resources sorted by type and logical
name, every mapping's keys sorted, inputs as the engine receives them (camelCase wire names), every secret
replaced by "[secret]". Its key `secrets` gives each secret config key's state (a short hash of the
committed ciphertext, "unset" or "plaintext"; infra.tools.offline.secret_states), so that `python -m infra diff` can
show a rotation without any value. `python -m infra preview` adds one more key after it, `violations`: the
policy rules' findings (policy.rules). The human view also lists the plan's prerequisites (what must already
hold in the workspace because the stack does not grant it); with --json they go to stderr, like the notes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from infra.tools.offline import MASK, Plan, Recorded, masked
from policy.rules import Violation


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan as the JSON contract's document, secrets masked."""
    return {
        "project": plan.project,
        "stack": plan.stack,
        "resources": [
            {
                "type": r.type,
                "name": r.name,
                "id": r.id,
                "parent": r.parent,
                "inputs": _sorted(masked(r.inputs)),
                "protect": r.protect,
                "retain_on_delete": r.retain_on_delete,
            }
            for r in plan.resources
        ],
        "outputs": {name: MASK if secret else _sorted(value) for name, (value, secret) in plan.outputs.items()},
        "secrets": dict(sorted(plan.secrets.items())),
    }


def to_json(plan: Plan, violations: Sequence[Violation] | None = None) -> str:
    """The document; with `violations` (policy.rules.check_plan), a last key `violations` lists them."""
    doc = plan_document(plan)
    if violations is not None:
        doc["violations"] = [v.as_dict() for v in violations]
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def mermaid(job_inputs: dict[str, Any]) -> str:
    """A job's task DAG as a Mermaid flowchart (from the Job's wire inputs: tasks[].taskKey, .dependsOns)."""
    lines = ["flowchart TD"]
    tasks = job_inputs.get("tasks") or []
    node = {t["taskKey"]: f"t{i}" for i, t in enumerate(tasks)}
    for task in tasks:
        lines.append(f'    {node[task["taskKey"]]}["{task["taskKey"]}"]')
    for task in tasks:
        for dep in task.get("dependsOns") or []:
            lines.append(f"    {node[dep['taskKey']]} --> {node[task['taskKey']]}")
    return "\n".join(lines)


def _privileges(grants: list[dict[str, Any]]) -> str:
    return "; ".join(f"{g['principal']}: {', '.join(g['privileges'])}" for g in grants)


def _securable(i: dict[str, Any]) -> str:
    return next((f"{k} {i[k]}" for k in ("catalog", "schema", "volume", "model", "table") if k in i), "?")


_SUMMARY: dict[str, Callable[[dict[str, Any]], str]] = {
    "providers:databricks": lambda i: f"host={i.get('host')}",
    "Catalog": lambda i: f"{i.get('name')}",
    "Schema": lambda i: f"{i['catalogName']}.{i['name']}",
    "Volume": lambda i: f"{i['catalogName']}.{i['schemaName']}.{i['name']} ({i.get('volumeType')})",
    "Grants": lambda i: f"{_securable(i)}, authoritative: {_privileges(i['grants'])}",
    "Grant": lambda i: f"{_securable(i)}, authoritative for {i['principal']} only: {', '.join(i['privileges'])}",
    "SecretScope": lambda i: f"{i.get('name')}",
    "Secret": lambda i: f"{i['scope']}/{i['key']} = {i.get('stringValue')}",
    "SecretAcl": lambda i: f"{i['scope']}: {i['principal']} {i['permission']}",
    "Job": lambda i: f"{i.get('name')} ({len(i.get('tasks') or [])} tasks)",
    "RegisteredModel": lambda i: (
        f"{i['catalogName']}.{i['schemaName']}.{i['name']}" + (f" owner={i['owner']}" if i.get("owner") else "")
    ),
    # The one dynamic resource: the registered model's deployment-job link (infra.systems.health_monitor.model_link).
    "Resource": lambda i: f"{i.get('model_name')} -> deployment job {i.get('job_id')}",
    "File": lambda i: f"{i['path']} md5={i.get('md5')} ({len(i.get('contentBase64') or '') * 3 // 4} bytes)",
}


def _summary(r: Recorded) -> str:
    short = r.type.split(":")[-1] if not r.type.startswith("pulumi:providers:") else r.type.split(":", 1)[1]
    inputs = masked(r.inputs)
    render = _SUMMARY.get(short)
    text = render(inputs) if render else str(inputs.get("name", ""))
    flags = [flag for flag, on in (("protect", r.protect), ("retain_on_delete", r.retain_on_delete)) if on]
    if r.import_id:
        flags.append(f"import {r.import_id}")
    return f"{text}  [{', '.join(flags)}]" if flags else text


def to_text(plan: Plan) -> str:
    """The human preview: resource tree, job DAGs, outputs, notes."""
    out = [
        f"{plan.project} / {plan.stack}: {len(plan.resources)} resources "
        "(offline preview: the real program under Pulumi's mock engine; no workspace was contacted)",
        "",
        "Resources",
    ]
    children: dict[str | None, list[Recorded]] = defaultdict(list)
    for r in plan.resources:
        children[r.parent].append(r)

    def walk(parent: str | None, depth: int) -> None:
        pad = "    " * depth
        tags = [r for r in children[parent] if r.type.endswith("EntityTagAssignment")]
        if tags:
            pairs = " ".join(f"{t.inputs['tagKey']}={masked(t.inputs).get('tagValue')}" for t in tags)
            out.append(f"{pad}  tags: {pairs}")
        for r in children[parent]:
            if r in tags:
                continue
            out.append(f"{pad}+ {r.type}  {r.name}  {_summary(r)}".rstrip())
            walk(f"{r.type}::{r.name}", depth + 1)

    walk(None, 0)
    jobs = [r for r in plan.resources if r.type == "databricks:index/job:Job"]
    out += ["", "Job DAGs"]
    if not jobs:
        out.append("  (no jobs in this stack yet)")
    for job in jobs:
        out += [f"  {job.name}: {masked(job.inputs).get('name')}", "```mermaid", mermaid(job.inputs), "```"]
    out += ["", "Outputs"]
    width = max((len(n) for n in plan.outputs), default=0)
    for name, (value, secret) in plan.outputs.items():
        shown = MASK if secret else json.dumps(_sorted(value), ensure_ascii=False)
        out.append(f"  {name.ljust(width)}  {shown}")
    if plan.prerequisites:
        out += ["", "Prerequisites (not granted by this stack; must hold before `pulumi up`)"]
        out += [f"  - {item}" for item in plan.prerequisites]
    if plan.notes:
        out += ["", "Notes"] + [f"  - {note}" for note in plan.notes]
    return "\n".join(out) + "\n"
