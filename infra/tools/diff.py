"""Compare two offline plans (`python -m infra preview --stack S --json`, base and head) as Markdown for one
pull-request comment: resources added, changed (the changed input paths, old -> new, briefly) and removed, keyed
by (type, logical name) as Pulumi keys them; **replacements** (a change to a property the provider cannot update
in place, a new parent or logical name) with, first of all, a loud warning when a replaced or removed resource
holds data (`policy.rules.DATA_TYPES`); changed stack outputs; the new task DAG of every job whose tasks or
dependencies changed, as Mermaid.

Values come from the documents, where every secret is already "[secret]". A rotation is seen only through the
documents' `secrets` states (a short hash of the committed ciphertext; infra.tools.offline.secret_states): the Secret
resources a rotated config key feeds are listed as changed (and replaced: the provider cannot update a value in
place), their value still masked. This module runs no program, reads no stack file, and never prints a long
value in full.

The documents are untrusted text (a pull request's program wrote the head): they are checked before use (size,
depth, shape, references), and every string taken from them reaches the Markdown only inside a code span it
cannot close, or as a name made of safe characters, with control characters shown escaped.
"""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.settings import SECRETS
from infra.tools.offline import MASK
from infra.tools.preview import mermaid
from policy.rules import DATA_TYPES, FILE

JOB, SECRET = "databricks:index/job:Job", "databricks:index/secret:Secret"
REQUIRED: dict[str, type] = {"project": str, "stack": str, "resources": list, "outputs": dict}
ID_KEYS = ("taskKey", "environmentKey", "jobClusterKey", "principal", "name")  # list items matched by these
WIDTH = 80  # longest value shown
NAME_WIDTH = 120  # longest name or path shown
LONG = 200  # a string longer than this is summarised by its size (the wheel's contentBase64: ~30 KB)
MAX_PATHS = 20  # changed paths listed per resource
MAX_BYTES = 64 * 1024 * 1024  # a plan is ~200 KB; anything near this is not one
MAX_DEPTH = 64  # a plan nests ~10 deep; the comparison recurses, so deeper is refused up front
MAX_TASK_KEY = 100  # the Jobs API's limit on a task key
MAX_PAIRS = 250_000  # list lengths multiplied, beyond which items are compared by position (no sequence diff)
STRICT_EXIT = 4  # `diff --strict`: a resource that holds data would be replaced or removed

_T = "databricks:index/"
# Input paths (camelCase wire names, as in the plan) that make the provider replace the resource when they change:
# ForceNew in terraform-provider-databricks v1.118.0 (the file named on each line), which pulumi-databricks
# bridges without overriding any (its provider/resources.go); read again at v1.128.0: the same, plus
# MlflowExperiment's newer traceLocation. Job has none (jobs/resource_job.go); Catalog's `name` is updated in place.
# The provider's diff suppressions (a case-only rename, a trailing slash) are not modelled: such a change shows
# as a replacement here although the provider sees none, which errs on the side of the reviewer.
_SECURABLES = ("catalog", "credential", "foreignConnection", "externalLocation", "function", "metastore", "model",
               "pipeline", "recipient", "schema", "share", "storageCredential", "table", "volume")  # fmt: skip
_PERMISSION_OBJECTS = (
    "alertV2Id", "appName", "authorization", "clusterId", "clusterPolicyId", "dashboardId", "databaseInstanceName",
    "databaseProjectName", "directoryId", "directoryPath", "experimentId", "instancePoolId", "jobId",
    "knowledgeAssistantId", "notebookId", "notebookPath", "pipelineId", "registeredModelId", "repoId", "repoPath",
    "servingEndpointId", "sqlAlertId", "sqlDashboardId", "sqlEndpointId", "sqlQueryId", "supervisorAgentId",
    "vectorSearchEndpointId", "workspaceFileId", "workspaceFilePath",
)  # fmt: skip
_TABLE = ("catalogName", "schemaName", "name", "tableType", "dataSourceFormat", "partitions", "storageCredentialName",
          "options")  # fmt: skip
FORCE_NEW: dict[str, tuple[str, ...]] = {
    # catalog/resource_catalog.go: SetForceNew() on these (`options` only for some catalog kinds: not modelled)
    f"{_T}catalog:Catalog": ("storageRoot", "connectionName", "providerName", "shareName"),
    # catalog/resource_schema.go: tf:"force_new"
    f"{_T}schema:Schema": ("catalogName", "name", "storageRoot"),
    # catalog/resource_volume.go: tf:"force_new" (`name` is renamed in place: RENAMED_IN_PLACE)
    f"{_T}volume:Volume": ("catalogName", "schemaName", "volumeType", "storageLocation"),
    # catalog/resource_sql_table.go: tf:"force_new"; `name` is not, but the provider cannot rename a table (its
    # update runs ALTER statements against the new name), so a new name is a new, empty table
    f"{_T}sqlTable:SqlTable": _TABLE,
    # catalog/resource_registered_model.go: m[...].ForceNew = true
    f"{_T}registeredModel:RegisteredModel": ("catalogName", "schemaName", "name", "storageLocation"),
    # mlflow/resource_mlflow_experiment.go: SetForceNew() (`name` is updated in place: RENAMED_IN_PLACE)
    f"{_T}mlflowExperiment:MlflowExperiment": ("artifactLocation", "traceLocation"),
    # workspace/file_resource.go (FileContentSchema, used by storage/resource_file.go), workspace/resource_directory.go
    f"{_T}file:File": ("path",),
    f"{_T}directory:Directory": ("path",),
    # secrets/resource_secret_scope.go has no Update, so common/resource.go makes every attribute that is not
    # computed ForceNew (backend_type is computed)
    f"{_T}secretScope:SecretScope": ("name", "initialManagePrincipal", "keyvaultMetadata"),
    # secrets/resource_secret.go, secrets/resource_secret_acl.go: ForceNew: true
    f"{_T}secret:Secret": ("scope", "key", "stringValue"),
    f"{_T}secretAcl:SecretAcl": ("scope", "principal", "permission"),
    # catalog/resource_grants.go, resource_grant.go: each securable field (permissions.Mappings), a Grant's principal
    f"{_T}grants:Grants": _SECURABLES,
    f"{_T}grant:Grant": (*_SECURABLES, "principal"),
    # permissions/resource_permissions.go: ForceNew on every object field (permission_definitions.go)
    f"{_T}permissions:Permissions": _PERMISSION_OBJECTS,
    # internal/providers/pluginfw/products/entity_tag_assignment/resource_entity_tag_assignment.go: RequiresReplace
    f"{_T}entityTagAssignment:EntityTagAssignment": ("entityName", "entityType", "tagKey"),
    # The program's dynamic resources: infra/systems/health_monitor/model_link.py (_LinkProvider.diff: a new host
    # or model is a new link) and infra/systems/serving_platform/app_deployment.py (a new host is a new deployment)
    "pulumi-python:dynamic:Resource": ("host", "model_name"),
    f"{_T}job:Job": (),
    # Seed 001 (not read in provider source: the Postgres API has no rename of an id, the user-chosen part of the
    # object's name; an app's name is permanent, its URL derives from it)
    f"{_T}postgresProject:PostgresProject": ("projectId",),
    f"{_T}postgresBranch:PostgresBranch": ("branchId", "parent"),
    f"{_T}postgresEndpoint:PostgresEndpoint": ("endpointId", "parent"),
    f"{_T}postgresDatabase:PostgresDatabase": ("databaseId", "parent"),
    f"{_T}postgresRole:PostgresRole": ("roleId", "parent"),
    f"{_T}postgresCatalog:PostgresCatalog": ("catalogId",),
    f"{_T}app:App": ("name",),
    # serving/resource_model_serving.go: name and route_optimized SetForceNew (from memory of the provider source)
    f"{_T}modelServing:ModelServing": ("name", "routeOptimized"),
    # dashboards/resource_dashboard.go: parent_path ForceNew (from memory of the provider source)
    f"{_T}dashboard:Dashboard": ("parentPath",),
    # workspace/resource_workspace_file.go: path ForceNew (the app's code bundle: a new content hash, a new path)
    f"{_T}workspaceFile:WorkspaceFile": ("path",),
}
# Physical names the provider changes in place (it sends the new name): the data stays, but what names its path
# (`/Volumes/<catalog>/<schema>/<volume>`, the experiment's path) must follow. catalog/resource_volume.go
# (Update: NewName), mlflow/resource_mlflow_experiment.go (Update: UpdateExperiment with the new name).
RENAMED_IN_PLACE: dict[str, tuple[str, ...]] = {
    f"{_T}volume:Volume": ("name",),
    f"{_T}mlflowExperiment:MlflowExperiment": ("name",),
}
# The inputs that name the physical object: a removed and an added resource of one type with the same values
# are one object whose logical name changed (Pulumi deletes and creates it, unless the program gives it an alias).
IDENTITY: dict[str, tuple[str, ...]] = {
    f"{_T}schema:Schema": ("catalogName", "name"),
    f"{_T}volume:Volume": ("catalogName", "schemaName", "name"),
    f"{_T}sqlTable:SqlTable": ("catalogName", "schemaName", "name"),
    f"{_T}registeredModel:RegisteredModel": ("catalogName", "schemaName", "name"),
    f"{_T}file:File": ("path",),
    f"{_T}directory:Directory": ("path",),
    f"{_T}secret:Secret": ("scope", "key"),
    f"{_T}secretAcl:SecretAcl": ("scope", "principal"),
    f"{_T}grants:Grants": _SECURABLES,
    f"{_T}grant:Grant": (*_SECURABLES, "principal"),
    f"{_T}permissions:Permissions": _PERMISSION_OBJECTS,
    f"{_T}entityTagAssignment:EntityTagAssignment": ("entityName", "entityType", "tagKey"),
    "pulumi-python:dynamic:Resource": ("model_name",),
}  # anything else: its `name`
# Data types whose replacement re-creates their content from the program (a File uploads its source again): a
# warning only when the old content is deleted or protected, not for a new wheel version beside the old one.
CONTENT_TYPES = frozenset({FILE})

Key = tuple[str, str]
Doc = dict[str, Any]


class DocumentError(Exception):
    """A file that is not an offline preview document, or two that cannot be compared (exit status 2)."""


# --- reading -------------------------------------------------------------------------------------------------------


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {json.dumps(key)[:60]} is given twice")
        result[key] = value
    return result


def _depth(value: Any) -> int:
    """How deeply containers nest (iteratively: the value may be deeper than Python's recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                break
            stack.extend((v, level + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def _where(path: Path) -> str:
    return _visible(str(path))[:NAME_WIDTH]


def load_document(path: Path) -> Doc:
    """Read and check a `preview --json` document; DocumentError names the file and what is wrong."""
    shown = _where(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise DocumentError(f"{shown}: is larger than {MAX_BYTES // 2**20} MiB: not an offline preview document")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DocumentError(f"{shown}: no such file") from None
    except OSError as exc:
        raise DocumentError(f"{shown}: cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise DocumentError(f"{shown}: is not UTF-8 text") from None
    too_deep = False
    try:
        doc = json.loads(text, parse_constant=_no_constants, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise DocumentError(f"{shown}: is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        too_deep = True  # deeper than Python's parser goes: far deeper than MAX_DEPTH
    except ValueError as exc:
        raise DocumentError(f"{shown}: is not valid JSON ({exc})") from None
    if too_deep or _depth(doc) > MAX_DEPTH:
        raise DocumentError(f"{shown}: is nested deeper than {MAX_DEPTH} levels: not an offline preview document")
    problem = _shape_problem(doc)
    if problem:
        raise DocumentError(f"{shown}: is not an offline preview document ({problem}); make one with: "
                            "python -m infra preview --stack NAME --json")  # fmt: skip
    return dict(doc)


def _shape_problem(doc: Any) -> str | None:
    """What keeps `doc` from being a plan this module can compare (None: nothing)."""
    wrong = [k for k, t in REQUIRED.items() if not isinstance(doc, dict) or not isinstance(doc.get(k), t)]
    if wrong:
        return f"{', '.join(wrong)} missing or not of the expected type"
    secrets = doc.get("secrets", {})
    if not isinstance(secrets, dict) or not all(isinstance(v, str) for v in secrets.values()):
        return "secrets is not an object of texts"
    keys: set[str] = set()
    for i, r in enumerate(doc["resources"]):
        if not (isinstance(r, dict) and isinstance(r.get("type"), str) and isinstance(r.get("name"), str)
                and isinstance(r.get("inputs"), dict)):  # fmt: skip
            return f"resources[{i}]: type/name/inputs missing or not of the expected type"
        for option in ("protect", "retain_on_delete"):
            if not isinstance(r.get(option, False), bool):
                return f"resources[{i}].{option} is not true or false"
        if not isinstance(r.get("parent"), str | None):
            return f"resources[{i}].parent is not a text or null"
        key = f"{r['type']}::{r['name']}"
        if key in keys:
            return f"the resource {_visible(key)[:NAME_WIDTH]} is listed twice"
        keys.add(key)
    for r in doc["resources"]:
        if r.get("parent") is not None and r["parent"] not in keys:
            return (f"{_visible(r['type'] + '::' + r['name'])[:NAME_WIDTH]} has the parent "
                    f"{_visible(r['parent'])[:NAME_WIDTH]}, which is not in the document")  # fmt: skip
        if r["type"] == JOB:
            problem = _dag_problem(r["inputs"])
            if problem:
                return f"job {_visible(r['name'])[:NAME_WIDTH]}: {problem}"
    return None


def _dag_problem(inputs: dict[str, Any]) -> str | None:
    """A job's tasks must have distinct task keys and depend only on tasks of the same job."""
    tasks = inputs.get("tasks", [])
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        return "tasks is not a list of objects"
    task_keys = [t.get("taskKey") for t in tasks]
    for key in task_keys:
        if not isinstance(key, str) or not 0 < len(key) <= MAX_TASK_KEY:
            return f"a task's taskKey is missing, not a text or longer than {MAX_TASK_KEY} characters"
    if len(set(task_keys)) != len(task_keys):
        return "two tasks have the same taskKey"
    for task in tasks:
        depends = task.get("dependsOns") or []
        if not isinstance(depends, list) or not all(isinstance(d, dict) for d in depends):
            return f"task {_visible(task['taskKey'])}: dependsOns is not a list of objects"
        for dep in depends:
            if dep.get("taskKey") not in task_keys:
                unknown = _visible(str(dep.get("taskKey")))[:NAME_WIDTH]
                return f"task {_visible(task['taskKey'])} depends on an unknown task {unknown}"
    return None


def check_pair(base: Doc, head: Doc, base_path: Path, head_path: Path) -> None:
    """Two plans of one project and stack (a dev plan compared with a prod plan is a mistake, not a diff)."""
    if (base["project"], base["stack"]) != (head["project"], head["stack"]):
        sides = [f"{_visible(d['project'])[:NAME_WIDTH]} / {_visible(d['stack'])[:NAME_WIDTH]}" for d in (base, head)]
        raise DocumentError(f"{_where(base_path)} and {_where(head_path)} are plans of different stacks ({sides[0]} "
                            f"and {sides[1]}); allowed: two plans of the same project and stack")  # fmt: skip


def diff_files(base: Path, head: Path) -> str:
    return compare_files(base, head).markdown


def compare_files(base: Path, head: Path) -> Comparison:
    documents = load_document(base), load_document(head)
    check_pair(*documents, base, head)
    return compare(*documents)


# --- Markdown that document text cannot break -------------------------------------------------------------------

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_INVISIBLE = ("Cc", "Cf", "Cs", "Zl", "Zp")  # controls, format (bidi overrides), lone surrogates, line separators
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _visible(text: str) -> str:
    """Control, format and separator characters (and lone surrogates) as escapes: nothing that ends a line, turns
    text around or cannot be written as UTF-8."""
    return "".join(
        _ESCAPES.get(c) or (f"\\u{ord(c):04x}" if unicodedata.category(c) in _INVISIBLE else c) for c in text
    )


def _shorten(text: str, width: int) -> str:
    half = width // 2  # both ends: paths and names differ at either
    return text if len(text) <= width else f"{text[: half - 1]}…{text[-half:]}"


def _code(text: str, width: int = NAME_WIDTH) -> str:
    """`text` as one inline code span it cannot close: a fence longer than any run of backticks in it, padded
    when it starts or ends with a backtick or a space. Inside a code span Markdown, HTML, links and mentions are
    plain text; the text has no line breaks left (`_visible`), so it cannot end the paragraph either."""
    text = _shorten(_visible(text), width)
    if not text:
        return "` `"
    fence = "`" * (1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _name(text: str) -> str:
    """A name as it is when it is made of letters, digits and `._-` (nothing Markdown reads), else a code span."""
    return text if _SAFE_NAME.fullmatch(text) and len(text) <= NAME_WIDTH else _code(text)


def _fenced(info: str, body: str) -> list[str]:
    """A fenced block that its body cannot close early."""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", body)), default=0))
    return [f"{fence}{info}", body, fence]


def _label(task_key: str) -> str:
    """A task key as Mermaid label text: anything but letters, digits and `_-.` as an entity code (`#34;`), which
    is injective (so distinct keys stay distinct nodes) and leaves no quote, bracket or backtick."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "_-.") else f"#{ord(c)};" for c in task_key)


def _mermaid(inputs: dict[str, Any]) -> str:
    tasks = [
        {"taskKey": _label(t["taskKey"]), "dependsOns": [{"taskKey": _label(d["taskKey"])} for d in depends]}
        for t in inputs.get("tasks") or []
        for depends in [t.get("dependsOns") or []]
    ]
    return mermaid({"tasks": tasks})


# --- what changed --------------------------------------------------------------------------------------------------


def _brief(value: Any) -> str:
    if value == MASK:
        return MASK
    if isinstance(value, dict):
        key = next((k for k in ID_KEYS if isinstance(value.get(k), str)), None)
        if key is not None and len(value) > 1:  # a task, an environment, a grant: say which one
            return _code(f'{{"{key}": {json.dumps(value[key], ensure_ascii=False)}, …}}', WIDTH)
    return _code(json.dumps(value, ensure_ascii=False, sort_keys=True), WIDTH)


def _size(path: str, value: Any) -> str:
    if not isinstance(value, str):
        return "none" if value is None else "not text"
    if path.endswith("Base64"):  # the decoded size: what is uploaded
        return f"{len(value) * 3 // 4 - (len(value) - len(value.rstrip('=')))} bytes"
    return f"{len(value.encode(errors='replace'))} bytes"


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
    if len(a) * len(b) > MAX_PAIRS:  # a sequence diff is quadratic: huge lists are compared item by item
        for i in range(max(len(a), len(b))):
            if i >= len(a) or i >= len(b):
                yield _line(f"{path}[{i}]", old[i] if i < len(a) else None, new[i] if i < len(b) else None,
                            "old" if i >= len(a) else "new")  # fmt: skip
            elif a[i] != b[i]:
                yield from changes(old[i], new[i], f"{path}[{i}]")
        return
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "replace" and i2 - i1 == j2 - j1:
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                yield from changes(old[i], new[j], f"{path}[{j}]")
        elif op != "equal":
            yield from (_line(f"{path}[{i}]", old[i], None, "new") for i in range(i1, i2))
            yield from (_line(f"{path}[{j}]", None, new[j], "old") for j in range(j1, j2))


def _rotations(base: Doc, head: Doc) -> dict[tuple[str, str], str]:
    """(scope, key) of each Secret whose config key changed state -> how (rotated, unset -> encrypted, ...)."""
    if "secrets" not in base or "secrets" not in head:
        return {}  # a document from before the `secrets` key: a rotation cannot be seen
    scopes = head["outputs"].get("secret_scope")
    rotated = {}
    for spec in SECRETS:
        old, new = (doc["secrets"].get(spec.config_key, "unset") for doc in (base, head))
        if old != new and isinstance(scopes, dict) and isinstance(scopes.get(spec.system), str):
            kind = {o: "encrypted" if o not in ("unset", "plaintext") else o for o in (old, new)}
            rotated[(scopes[spec.system], spec.key)] = (
                "rotated" if kind[old] == kind[new] == "encrypted" else f"{kind[old]} -> {kind[new]}"
            )
    return rotated


def _dag(inputs: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return sorted(
        (str(t.get("taskKey")), sorted(str(d.get("taskKey")) for d in t.get("dependsOns") or []))
        for t in inputs.get("tasks") or []
    )


def _identity(r: dict[str, Any]) -> tuple[Any, ...] | None:
    """What names the resource's physical object (None: nothing to go by)."""
    fields = IDENTITY.get(r["type"], ("name",))
    values = tuple(json.dumps(r["inputs"].get(f), sort_keys=True) for f in fields)
    return None if all(v == "null" for v in values) else (r["type"], *values)


def _kind(resource_type: str) -> str:
    """`databricks:index/schema:Schema` -> `Schema`."""
    return resource_type.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class Replacement:
    key: Key
    reasons: list[str]
    """Why, as Markdown fragments (`name` changed; the parent changed; the logical name changed from ...)."""
    same_object: bool
    """The new object has the old one's physical name."""


@dataclass(frozen=True)
class Comparison:
    markdown: str
    data_at_risk: list[str]
    """One Markdown line per replaced or removed resource that holds data (the warning's list)."""


def _replacements(base: Doc, head: Doc, rotated: dict[tuple[str, str], str]) -> tuple[list[Replacement], list[str]]:
    """Resources Pulumi would delete and create, and the data resources renamed in place (Markdown lines)."""
    old = {(r["type"], r["name"]): r for r in base["resources"]}
    new = {(r["type"], r["name"]): r for r in head["resources"]}
    found, renamed = [], []
    for k in sorted(old.keys() & new.keys()):
        before, after = old[k]["inputs"], new[k]["inputs"]
        paths = [p for p in FORCE_NEW.get(k[0], ()) if before.get(p) != after.get(p)]
        if k[0] == SECRET and (after.get("scope"), after.get("key")) in rotated:
            paths.append("stringValue")  # masked on both sides; the provider cannot update a value in place
        reasons = [f"{_code(p)} changed" for p in paths]
        if old[k].get("parent") != new[k].get("parent"):  # part of the URN: a new resource to Pulumi
            reasons.append("its parent changed (a new URN: without an alias, Pulumi deletes it and creates it anew)")
        if reasons:
            found.append(Replacement(k, reasons, _identity(old[k]) == _identity(new[k])))
        moved = [p for p in RENAMED_IN_PLACE.get(k[0], ()) if before.get(p) != after.get(p)]
        if moved and not reasons:
            renamed.append(f"{_named(k, new)}: renamed in place ({', '.join(_code(p) for p in moved)}), not "
                           "replaced: its data stays; every path or reference to the old name must follow")  # fmt: skip
    added = {k for k in new.keys() - old.keys()}
    by_identity: dict[tuple[Any, ...], Key] = {}
    for k in sorted(old.keys() - new.keys()):
        ident = _identity(old[k])
        if ident is not None:
            by_identity.setdefault(ident, k)
    for k in sorted(added):
        ident = _identity(new[k])
        if ident is not None and ident in by_identity:
            was = by_identity.pop(ident)
            old_name = f"**{_name(was[1])}**"
            reason = (f"its logical name changed (was {old_name}, same physical object): without an `aliases` "
                      f"option naming the old one, Pulumi deletes {old_name} and creates this one")  # fmt: skip
            found.append(Replacement(k, [reason], True))
    return found, renamed


def _named(k: Key, doc: dict[Key, Any]) -> str:
    physical = doc[k]["inputs"].get("name")
    return f"- {_code(k[0])} **{_name(k[1])}**" + (f" ({_code(physical)})" if isinstance(physical, str) else "")


def _fate(old: dict[str, Any]) -> str:
    """What happens to the old object when Pulumi replaces or deletes it, from the base's options."""
    if old.get("protect"):
        return "it is `protect`ed, so `pulumi up` fails until the protection is lifted or the change reverted"
    if old.get("retain_on_delete"):
        return "`retain_on_delete` keeps the old one in the workspace, orphaned (no longer managed), with its data"
    return "**the old one is deleted with its data** (it is not `retain_on_delete`)"


def _at_risk(base: Doc, head: Doc, replaced: list[Replacement], removed: list[Key]) -> list[str]:
    """The warning's lines: each replaced or removed resource of a type that holds data."""
    old = {(r["type"], r["name"]): r for r in base["resources"]}
    new = {(r["type"], r["name"]): r for r in head["resources"]}
    relabelled = [r.key for r in replaced if r.key not in old]  # the new keys of logical-name changes
    lines = []
    for r in replaced:
        if r.key[0] not in DATA_TYPES:
            continue
        was: dict[str, Any] = old.get(r.key) or next(
            (old[k] for k in old.keys() - new.keys() if _identity(old[k]) == _identity(new[r.key])), {}
        )
        if r.key[0] in CONTENT_TYPES and not was.get("protect") and was.get("retain_on_delete"):
            continue  # a new file with the program's content; the old one stays
        what = "re-uploaded from the program" if r.key[0] in CONTENT_TYPES else "a new, empty one is created"
        same = " under the same name, which Databricks refuses while the old one exists" if r.same_object else ""
        lines.append(f"{_named(r.key, new)}: **replaced** ({'; '.join(r.reasons)}): {what}{same}; {_fate(was)}")
    for k in removed:
        if k[0] not in DATA_TYPES or any(_identity(old[k]) == _identity(new[n]) for n in relabelled):
            continue
        if k[0] in CONTENT_TYPES and not old[k].get("protect") and old[k].get("retain_on_delete"):
            continue
        lines.append(f"{_named(k, old)}: **removed** from the program: {_fate(old[k])}")
    return lines


def _changed(base: Doc, head: Doc, rotated: dict[tuple[str, str], str]) -> dict[Key, list[str]]:
    """(type, name) of each resource in both documents -> its changed input paths (and options), if any."""
    old = {(r["type"], r["name"]): r for r in base["resources"]}
    changed = {}
    for r in sorted(head["resources"], key=lambda r: (r["type"], r["name"])):
        if (k := (r["type"], r["name"])) in old:
            lines = list(changes(old[k]["inputs"], r["inputs"]))
            if r["type"] == SECRET and (r["inputs"].get("scope"), r["inputs"].get("key")) in rotated:
                how = rotated[(r["inputs"]["scope"], r["inputs"]["key"])]
                lines.append(f"`stringValue`: {MASK} -> {MASK} ({how})")
            for option in ("parent", "protect", "retain_on_delete"):
                lines += [f"{line} (option)" for line in changes(old[k].get(option), r.get(option), option)]
            if lines:
                changed[k] = lines
    return changed


def diff_documents(base: Doc, head: Doc) -> str:
    """The Markdown comment: deterministic for the same two documents."""
    return compare(base, head).markdown


COMMIT_TAG = "git_commit"
"""The tag every job carries with the deploying commit (infra.platform.git_commit): it differs between any two
commits, so the comment says it once instead of as a change of every job."""


def _without_commit(doc: Doc) -> tuple[Doc, list[str]]:
    """The document with the jobs' commit tag taken out, and the distinct commits it named."""
    commits: set[str] = set()
    resources = []
    for r in doc["resources"]:
        tags = r["inputs"].get("tags") if r["type"] == JOB else None
        if isinstance(tags, dict) and COMMIT_TAG in tags:
            commits.add(str(tags[COMMIT_TAG]))
            r = {**r, "inputs": {**r["inputs"], "tags": {k: v for k, v in tags.items() if k != COMMIT_TAG}}}
        resources.append(r)
    return {**doc, "resources": resources}, sorted(commits)


def compare(base: Doc, head: Doc) -> Comparison:
    """The Markdown comment and the data it puts at risk (what `--strict` refuses)."""
    (base, base_commits), (head, head_commits) = _without_commit(base), _without_commit(head)
    commit_line = []
    if base_commits != head_commits:
        shown = {
            side: ", ".join(_code(c) for c in commits) or "(none)"
            for side, commits in (("base", base_commits), ("head", head_commits))
        }
        commit_line = [
            f"Deploying commit: {shown['head']} (base: {shown['base']}), the `{COMMIT_TAG}` tag of every job.",
            "",
        ]
    old = {(r["type"], r["name"]): r for r in base["resources"]}
    new = {(r["type"], r["name"]): r for r in head["resources"]}
    rotated = _rotations(base, head)
    added, removed = sorted(new.keys() - old.keys()), sorted(old.keys() - new.keys())
    changed = _changed(base, head, rotated)
    replaced, renamed = _replacements(base, head, rotated)
    risks = _at_risk(base, head, replaced, removed)
    outputs = list(changes(base["outputs"], head["outputs"]))
    where = f"{_name(head['project'])} / {_name(head['stack'])}"
    if (base["project"], base["stack"]) != (head["project"], head["stack"]):
        where += f" (base: {_name(base['project'])} / {_name(base['stack'])})"
    out = [f"### Offline preview diff: {where}", "", *commit_line]
    if not (added or changed or removed or outputs):
        text = "\n".join([*out, "No changes: the head renders the same resources and outputs as the base."]) + "\n"
        return Comparison(text, [])
    if risks:
        n = len(risks)
        out += [
            "> [!CAUTION]",
            f"> **{n} resource{'s' if n > 1 else ''} holding data would be replaced or removed.** A replaced schema, "
            "volume, table, model, experiment or folder is a new, empty object: `retain_on_delete` keeps the old one "
            "orphaned with its data, `protect` makes `pulumi up` fail instead. Revert the change, or rename with "
            "`aliases`, unless losing the data is intended.",
            ">",
            *(f"> {line}" for line in risks),
            "",
        ]
    n_out = sum(base["outputs"].get(o) != head["outputs"].get(o) for o in base["outputs"].keys() | head["outputs"])
    more = f"; {len(replaced)} replaced" if replaced else ""
    more += f"; {n_out} stack output{'s' if n_out > 1 else ''} changed" if n_out else ""
    out += [f"**{len(added)} added, {len(changed)} changed, {len(removed)} removed**{more}", ""]

    if replaced or renamed:
        out += ["#### Replacements", "Pulumi deletes and creates these anew:"]
        for r in replaced:
            out.append(f"{_named(r.key, new)}: {'; '.join(r.reasons)}")
        out += [*renamed, ""]
    out += ["#### Added", *(_named(k, new) for k in added), ""] if added else []
    out += ["#### Changed"] if changed else []
    for k, lines in changed.items():
        extra = [f"…and {len(lines) - MAX_PATHS} more changed paths"] if len(lines) > MAX_PATHS else []
        out += [_named(k, new), *(f"  - {line}" for line in [*lines[:MAX_PATHS], *extra])]
    out += [""] if changed else []
    out += ["#### Removed", *(_named(k, old) for k in removed), ""] if removed else []
    out += ["#### Stack outputs", *(f"- {line}" for line in outputs), ""] if outputs else []
    jobs = [
        k for k in sorted(new) if k[0] == JOB and (k not in old or _dag(old[k]["inputs"]) != _dag(new[k]["inputs"]))
    ]
    out += ["#### Job DAGs changed"] if jobs else []
    for k in jobs:
        heading = f"**{_name(k[1])}**{'' if k in old else ' (new job)'}"
        out += ["", heading, *_fenced("mermaid", _mermaid(new[k]["inputs"]))]
    return Comparison("\n".join(out).rstrip("\n") + "\n", risks)
