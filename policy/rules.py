"""The platform's policy rules, written once over what the engine receives for one resource: its type token,
its inputs (camelCase wire names) and the options that matter (retain_on_delete; whether the stack is
production; where the stack keeps its wheels).

Two callers: `python -m infra preview` (`check_plan` over the offline plan; `--strict` turns violations into
exit status 3) and the Pulumi policy pack in `policy/` (`check` per resource, during `pulumi preview
--policy-pack policy`). The pack runs in its own virtualenv, so this module uses the standard library only.
It never reports a secret value: a message names where the value sits and what it looks like.
"""

from __future__ import annotations

import itertools
import json
import math
import posixpath
import re
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.tools.offline import Plan

JOB = "databricks:index/job:Job"
SCHEMA = "databricks:index/schema:Schema"
VOLUME = "databricks:index/volume:Volume"
FILE = "databricks:index/file:File"
ENTITY_TAG = "databricks:index/entityTagAssignment:EntityTagAssignment"
CATALOG = "databricks:index/catalog:Catalog"
SQL_TABLE = "databricks:index/sqlTable:SqlTable"
REGISTERED_MODEL = "databricks:index/registeredModel:RegisteredModel"
EXPERIMENT = "databricks:index/mlflowExperiment:MlflowExperiment"
DIRECTORY = "databricks:index/directory:Directory"
SECRET_SCOPE = "databricks:index/secretScope:SecretScope"
WORKSPACE_FILE = "databricks:index/workspaceFile:WorkspaceFile"
# Seed 001's Lakebase memory (Lakebase Autoscaling).
POSTGRES_PROJECT = "databricks:index/postgresProject:PostgresProject"
POSTGRES_BRANCH = "databricks:index/postgresBranch:PostgresBranch"
POSTGRES_DATABASE = "databricks:index/postgresDatabase:PostgresDatabase"
POSTGRES_ROLE = "databricks:index/postgresRole:PostgresRole"
POSTGRES_CATALOG = "databricks:index/postgresCatalog:PostgresCatalog"

DATA_TYPES: frozenset[str] = frozenset(
    {CATALOG, SCHEMA, VOLUME, FILE, SQL_TABLE, REGISTERED_MODEL, EXPERIMENT, DIRECTORY}
    # Lakebase: the project and branch hold the data, the database and the role own it (deleting a
    # PostgresDatabase or PostgresRole resource drops the real one), the catalog exposes it in UC.
    | {POSTGRES_PROJECT, POSTGRES_BRANCH, POSTGRES_DATABASE, POSTGRES_ROLE, POSTGRES_CATALOG}
)
"""Resource types that hold data: the program makes every one retain_on_delete, the data rule checks it, and the
plan diff warns when one is replaced. (A secret scope holds data only when adopted: its values then are not the
stack's; the program retains adopted scopes.)"""

NAMED_TYPES: frozenset[str] = frozenset(
    {CATALOG, SCHEMA, VOLUME, SQL_TABLE, REGISTERED_MODEL, EXPERIMENT, SECRET_SCOPE, JOB}
    | {"databricks:index/app:App", "databricks:index/modelServing:ModelServing"}
)
"""Types the program creates whose `name` input, left out, makes the provider invent a name (a random suffix):
every one must be given `name=` (ARCHITECTURE 4)."""

PROTECTED_IN_PRODUCTION: frozenset[str] = DATA_TYPES - {FILE}
"""Data a production stack protects (Pulumi then refuses to delete or replace it). Not files: the wheel is
content-addressed, so every new version is a new path and a replacement by design (the old file is retained)."""

# How the engine wraps a secret value on the wire (pulumi.runtime.rpc); the offline plan keeps the wrapper.
SECRET_SIG = "4dabf18193072939515e22adb298388d"

DEFAULT_WHEELS_VOLUME = "wheels"
"""infra.settings.WheelSettings.volume's default (a test keeps the two equal)."""


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    resource_types: frozenset[str]


RUN_AS = "prod-job-run-as"
NO_SECRETS = "no-plaintext-secrets"
RETAINED = "data-retained"
JOB_LIMITS = "job-tags-and-limits"
WHEELS = "wheels-from-volume"
PROTECTED = "prod-data-protected"
PATHS = "paths-survive-files-api"
NAMED = "explicit-names"

RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule(RUN_AS, "A production job runs as a named identity (run_as), never as whoever ran `pulumi up`.",
             frozenset({JOB})),
        Rule(NO_SECRETS, "No secret-looking value in plain job parameters, environment variables, Spark settings "
             "or tags: secrets reach jobs as {{secrets/<scope>/<key>}} or a <scope>/<key> reference.",
             frozenset({JOB, ENTITY_TAG})),
        Rule(RETAINED, "Everything that holds data (schemas, volumes, files, tables, models, experiments, ...) is "
             "retain_on_delete: dropping it from the program never deletes its data.", DATA_TYPES),
        Rule(PROTECTED, "In production, everything that holds data (but content-addressed files) is protected: "
             "Pulumi refuses to delete or replace it.", PROTECTED_IN_PRODUCTION),
        Rule(PATHS, "Uploaded files and the wheels jobs install have paths made only of characters the Files API "
             "keeps (no + or space: it stores + as a space, pulumi-databricks#589).",
             frozenset({FILE, WORKSPACE_FILE, JOB})),
        Rule(JOB_LIMITS, "Every job is tagged and has a timeout and max_concurrent_runs.", frozenset({JOB})),
        Rule(WHEELS, "Jobs install wheels only from the stack's wheels volume (built and uploaded by the program).",
             frozenset({JOB})),
        Rule(NAMED, "Every Databricks resource with a name input is given its name (name=): the provider would "
             "otherwise invent one with a random suffix.", NAMED_TYPES),
    )
}  # fmt: skip


@dataclass(frozen=True, order=True)
class Violation:
    rule: str
    resource_type: str
    name: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def check(
    resource_type: str,
    name: str,
    inputs: Mapping[str, Any],
    *,
    retain_on_delete: bool | None,
    production: bool,
    wheels_volume: str | None,
    protect: bool | None = None,
    rules: Collection[str] | None = None,
) -> list[Violation]:
    """Every violation of `rules` (default: all) by one resource. `retain_on_delete=None` or `protect=None` mean
    unknown (the data rules are then not checked); `wheels_volume` is `/Volumes/<catalog>/<schema>/<volume>`, None
    if unknown (the wheels rule is then not checked)."""
    wanted = RULES.keys() if rules is None else rules
    messages: list[tuple[str, str]] = []
    plain = _unwrap(inputs)
    if resource_type == JOB:
        if RUN_AS in wanted and production:
            messages += [(RUN_AS, m) for m in _run_as(plain)]
        if JOB_LIMITS in wanted:
            messages += [(JOB_LIMITS, m) for m in _limits(plain)]
        if WHEELS in wanted and wheels_volume is not None:
            messages += [(WHEELS, m) for m in _wheels(plain, wheels_volume)]
        if NO_SECRETS in wanted:
            messages += [(NO_SECRETS, m) for m in _job_secrets(inputs)]
        if PATHS in wanted:
            # Files in volumes and the workspace go through the Files API; URLs and other stores are not judged.
            uploaded = [(w, p) for w, p in _job_wheels(plain) if p.startswith(("/Volumes/", "/Workspace/"))]
            messages += [(PATHS, f"{w} installs {p}: {problem}") for w, p in uploaded if (problem := path_problem(p))]
    elif resource_type == ENTITY_TAG and NO_SECRETS in wanted:
        problem = _secret_problem(_text(inputs.get("tagKey")), inputs.get("tagValue"))
        if problem:
            messages.append((NO_SECRETS, f"tag {inputs.get('tagKey')}: {problem}"))
    if resource_type in (FILE, WORKSPACE_FILE) and PATHS in wanted:
        path = plain.get("path")
        problem = path_problem(path) if isinstance(path, str) else None
        if problem:
            messages.append((PATHS, f"path {path}: {problem}"))
    if resource_type in NAMED_TYPES and NAMED in wanted and not (isinstance(plain.get("name"), str) and plain["name"]):
        messages.append((NAMED, f"this {_kind(resource_type)} has no name: the provider would make one up with a "
                         "random suffix, so every stack and every replacement gets another; pass name="))  # fmt: skip
    if resource_type in DATA_TYPES and RETAINED in wanted and retain_on_delete is False:
        kind = _kind(resource_type)
        messages.append((RETAINED, f"this {kind} is not retain_on_delete: removing it from the program, or a change "
                         "that replaces it, would delete its data; create it with retain_on_delete=True"))  # fmt: skip
    if resource_type in PROTECTED_IN_PRODUCTION and PROTECTED in wanted and production and protect is False:
        messages.append((PROTECTED, f"this {_kind(resource_type)} is not protected in a production stack: a change "
                         "that replaces it (a rename) would leave an empty new one in its place; remove "
                         "deployment.protect_data: false"))  # fmt: skip
    return [Violation(rule, resource_type, name, message) for rule, message in messages]


def _kind(resource_type: str) -> str:
    """'databricks:index/sqlTable:SqlTable' -> 'sql table'."""
    short = resource_type.rsplit(":", 1)[-1]
    return re.sub(r"(?<!^)(?=[A-Z])", " ", short).lower()


# What the Files API keeps as written in a path (pulumi-databricks#589: a `+` is stored as a space).
_SAFE_PATH = re.compile(r"[A-Za-z0-9._/=@-]+")


def path_problem(path: str) -> str | None:
    """Why this uploaded path would not arrive under its name, or None."""
    if _SAFE_PATH.fullmatch(path):
        return None
    bad = sorted({c for c in path if not _SAFE_PATH.fullmatch(c)})
    shown = ", ".join(repr(c) for c in bad)
    return (f"holds {shown}, which the Files API does not keep as written (it stores + as a space); allowed: "
            "letters, digits and . _ / = @ -")  # fmt: skip


def check_plan(plan: Plan, *, production: bool) -> list[Violation]:
    """Every violation in an offline plan (infra.tools.offline.Plan), sorted by resource, then rule."""
    wheels_volume = plan_wheels_volume(plan)
    found: list[Violation] = []
    for r in plan.resources:
        if r.custom:
            found += check(
                r.type,
                r.name,
                r.inputs,
                retain_on_delete=r.retain_on_delete,
                protect=r.protect,
                production=production,
                wheels_volume=wheels_volume,
            )
    return sorted(found, key=lambda v: (v.resource_type, v.name, v.rule, v.message))


def plan_wheels_volume(plan: Plan) -> str | None:
    """The stack's wheels volume, `/Volumes/<catalog>/<schema>/<volume>`: the folder of the uploaded wheel (the
    File resource `wheel`), else the `wheels` entry of the `volumes` output."""
    for r in plan.resources:
        if r.type == FILE and r.name == "wheel":
            path = _unwrap(r.inputs).get("path")
            if isinstance(path, str) and path.startswith("/Volumes/"):
                return posixpath.dirname(path)
    volumes = plan.outputs.get("volumes", (None, False))[0]
    wheels = volumes.get("wheels") if isinstance(volumes, Mapping) else None
    return wheels.rstrip("/") if isinstance(wheels, str) else None


@dataclass(frozen=True)
class StackFacts:
    production: bool
    wheels_volume: str | None


def stack_facts(config: Mapping[str, Any], stack: str | None) -> StackFacts:
    """What the rules need to know about a stack, from its config as the Pulumi CLI passes it (keys without the
    project prefix, objects as JSON text): production like infra.settings.StackSettings.production
    (deployment.mode, else environment == prod; the stack name stands in for a missing environment), and the
    wheels volume from catalog.name, schema.name and wheel.volume. For the policy pack, which cannot use the
    program's settings model."""
    deployment, catalog, schema, wheel = (_object(config.get(k)) for k in ("deployment", "catalog", "schema", "wheel"))
    mode = deployment.get("mode")
    environment = config.get("environment") or stack
    production = mode == "production" if mode in ("production", "development") else environment == "prod"
    volume = wheel.get("volume") or DEFAULT_WHEELS_VOLUME
    names = (catalog.get("name"), schema.get("name"))
    wheels_volume = f"/Volumes/{names[0]}/{names[1]}/{volume}" if all(isinstance(n, str) and n for n in names) else None
    return StackFacts(production, wheels_volume)


def format_violations(violations: Sequence[Violation]) -> str:
    """The text section `python -m infra preview` prints after the preview."""
    if not violations:
        return f"\nPolicy checks\n  all {len(RULES)} rules pass ({', '.join(RULES)})\n"
    lines = ["", f"Policy violations ({len(violations)})"]
    lines += [f"  - [{v.rule}] {v.resource_type}  {v.name}: {v.message}" for v in violations]
    return "\n".join(lines) + "\n"


# --- the rules


def _run_as(job: Mapping[str, Any]) -> Iterator[str]:
    run_as = job.get("runAs")
    identity = run_as if isinstance(run_as, Mapping) else {}
    if not any(identity.get(k) for k in ("servicePrincipalName", "userName", "groupName")):
        yield ("production job without run_as: it would run as whoever last ran `pulumi up`; set deployment.run_as "
               "to a service principal's application id")  # fmt: skip


def _limits(job: Mapping[str, Any]) -> Iterator[str]:
    tags = job.get("tags")
    if not isinstance(tags, Mapping) or not tags:
        yield "job without tags: cost and ownership reports cannot attribute its runs"
    if not _positive(job.get("timeoutSeconds")):
        yield "job without timeout_seconds: a hung run would hold its compute forever"
    if not _positive(job.get("maxConcurrentRuns")):
        yield "job without max_concurrent_runs: overlapping runs could write the same data at once"


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _wheels(job: Mapping[str, Any], wheels_volume: str) -> Iterator[str]:
    root = wheels_volume.rstrip("/") + "/"
    for where, path in _job_wheels(job):
        normal = posixpath.normpath(path) if path.startswith("/") else path
        if not normal.startswith(root):
            shown = re.sub(r"//[^/@\s]+@", "//***@", path)  # never print credentials of a wheel URL
            yield f"{where} installs {shown}, which is not in the wheels volume {root}"


def _job_wheels(job: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, path) of every wheel the job installs: task libraries (`whl`) and environment dependencies."""
    for env in _list(job.get("environments")):
        spec = env.get("spec") if isinstance(env, Mapping) else None
        for i, dep in enumerate(_list(spec.get("dependencies") if isinstance(spec, Mapping) else None)):
            if isinstance(dep, str) and dep.strip().endswith(".whl"):
                path = dep.split(" @ ", 1)[-1].strip()  # also `name @ /Volumes/...whl`
                yield f"environments[{env.get('environmentKey')}].spec.dependencies[{i}]", path
    for where, task in _tasks(job):
        for i, lib in enumerate(_list(task.get("libraries"))):
            if isinstance(lib, Mapping) and isinstance(lib.get("whl"), str):
                yield f"{where}.libraries[{i}].whl", lib["whl"]


def _tasks(job: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    pending = [(f"tasks[{t.get('taskKey')}]", t) for t in _list(job.get("tasks")) if isinstance(t, Mapping)]
    while pending:
        where, task = pending.pop(0)
        yield where, task
        inner = task.get("forEachTask")
        if isinstance(inner, Mapping) and isinstance(inner.get("task"), Mapping):
            pending.append((f"{where}.forEachTask.task", inner["task"]))


# --- secrets in plain job settings

# Maps of name -> value that a job passes on as they are, and argument lists (`--flag value`, `NAME=value`).
_MAPS = frozenset({"tags", "customTags", "sparkEnvVars", "sparkConf", "variables", "namedParameters",
                   "baseParameters", "jobParameters", "notebookParams", "pythonNamedParams", "sqlParams"})  # fmt: skip
_ARGV = frozenset({"parameters", "pythonParams", "jarParams", "sparkSubmitParams"})

_SECRET_WORDS = frozenset({"password", "passwd", "passphrase", "secret", "token", "apikey", "credential",
                           "credentials"})  # fmt: skip
_SECRET_PAIRS = frozenset({("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key")})
# A name ending in one of these names a place, not a value: `secret_scope`, `token_path`.
_NOT_VALUES = frozenset({"scope", "path", "file", "name", "id", "ref", "reference", "env", "var"})

_TEMPLATE = re.compile(r"\{\{\s*(secrets/[^/{}\s]+/[^/{}\s]+|job\.parameters\.[A-Za-z0-9_.-]+)\s*\}\}")
_REFERENCE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*=)?[A-Za-z0-9._-]+/[A-Za-z0-9._-]+")
_SECRET_VALUE = (
    "holds a secret value (a Pulumi secret) in plain job settings, readable by anyone who can view "
    "the job; pass {{secrets/<scope>/<key>}} or a <scope>/<key> reference instead"
)
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$", re.DOTALL)

_KNOWN = [
    (re.compile(r"\bdapi[0-9a-f]{32}"), "a Databricks personal access token (dapi...)"),
    (re.compile(r"\bdose[0-9a-f]{32}"), "a Databricks OAuth secret (dose...)"),
    (re.compile(r"\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}"), "a GitHub token (ghp_...)"),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"), "a GitHub token (github_pat_...)"),
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id (AKIA...)"),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{30,}"), "a Google API key (AIza...)"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"), "an API key (sk-...)"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), "a Slack token (xox...)"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), "a JSON web token (eyJ...)"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
]
_URL_CREDENTIALS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:([^/\s@]+)@")
_INLINE = re.compile(
    r"(?i)(password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key)[\"']?\s*[=:]\s*[\"']?([^\s&;,\"'}]+)"
)
_WORDLIKE = re.compile(r"[A-Z]?[a-z]+[0-9]*|[A-Z]+[0-9]*|[0-9]+")
_RANDOM_RUN = re.compile(r"[A-Za-z0-9+/=_-]{32,}")


def _job_secrets(inputs: Mapping[str, Any]) -> Iterator[str]:
    for i, param in enumerate(_list(inputs.get("parameters"))):
        if isinstance(param, Mapping):  # job parameters: [{name, default}]
            problem = _secret_problem(_text(param.get("name")), param.get("default"))
            if problem:
                yield f"parameters[{i}] {param.get('name')} (default): {problem}"
    yield from _walk(inputs, "")


def _walk(value: Any, where: str) -> Iterator[str]:
    """Scan every name -> value map and argument list in a job's settings, at any depth; a secret anywhere in
    them is stored in plain text in the job definition, readable by anyone who can view the job."""
    if isinstance(value, Mapping) and SECRET_SIG in value:
        yield f"{where}: {_SECRET_VALUE}"
    elif _is_list(value):
        for i, item in enumerate(value):
            yield from _walk(item, f"{where}[{_item_key(item, i)}]")
    elif isinstance(value, Mapping):
        for key in value:
            item = value[key]
            here = f"{where}.{key}" if where else str(key)
            if (key in _MAPS or key in _ARGV) and isinstance(item, Mapping) and SECRET_SIG not in item:
                for name in item:
                    problem = _secret_problem(str(name), item[name])
                    if problem:
                        yield f"{here}.{name}: {problem}"
            elif key == "parameters" and not where:
                continue  # the job's own parameters ([{name, default}]): checked by _job_secrets
            elif key in _ARGV and _is_list(item):
                yield from _argv(item, here)
            else:
                yield from _walk(item, here)


def _argv(args: Sequence[Any], where: str) -> Iterator[str]:
    i = 0
    while i < len(args):
        arg, name, value, at = args[i], None, args[i], i
        if isinstance(arg, str) and arg.startswith("--"):
            if "=" in arg:
                name, value = arg.split("=", 1)
            elif i + 1 < len(args) and not (isinstance(args[i + 1], str) and args[i + 1].startswith("--")):
                name, value, i = arg, args[i + 1], i + 1
            else:
                value = None
        elif isinstance(arg, str) and (m := _ASSIGNMENT.match(arg)):
            name, value = m.group(1), m.group(2)
        problem = _secret_problem(name, value)
        if problem:
            yield f"{where}[{at}]{f' ({name})' if name else ''}: {problem}"
        i += 1


def _secret_problem(name: str | None, value: Any) -> str | None:
    """Why this name -> value must not sit in plain job settings, or None."""
    if isinstance(value, Mapping) and SECRET_SIG in value:
        return _SECRET_VALUE
    if not isinstance(value, str) or not value.strip():
        return None
    if name and name.startswith("--") and name.endswith("-secret"):
        if _REFERENCE.fullmatch(value.strip()):
            return None
        return f"{name} takes a secret reference <scope>/<key> (or NAME=<scope>/<key>), not a value"
    rest = _TEMPLATE.sub("", value)  # what is left besides {{secrets/...}} and {{job.parameters...}} references
    if name and _secret_name(name) and rest == value:
        return (f"is named like a secret ({name}) but holds a plain value; pass {{{{secrets/<scope>/<key>}}}}, or "
                "a <scope>/<key> reference the job resolves at run time")  # fmt: skip
    kind = looks_secret(rest)
    return f"looks like {kind}; keep it in a secret scope and pass a reference" if kind else None


def _secret_name(name: str) -> bool:
    words = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)
    words = [w.lower() for w in words]
    if not words or words[-1] in _NOT_VALUES:
        return False
    return any(w in _SECRET_WORDS for w in words) or any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words))


def looks_secret(value: str) -> str | None:
    """What kind of secret this text looks like (a known token format, credentials in a URL, `password=...`,
    a long random-looking string), or None. Template references ({{secrets/...}}, {{job.parameters...}}) pass."""
    for pattern, kind in _KNOWN:
        if pattern.search(value):
            return kind
    for m in _URL_CREDENTIALS.finditer(value):
        if not _TEMPLATE.fullmatch(m.group(1)):
            return "a URL with a password in it"
    for m in _INLINE.finditer(value):
        if not _TEMPLATE.match(m.group(2)) and not m.group(2).startswith("{{"):
            return f"an inline {m.group(1).lower()}=..."
    for m in _RANDOM_RUN.finditer(value):
        if _random_looking(m.group(0)):
            return "a long random string (a key or token)"
    return None


def _random_looking(text: str) -> bool:
    """Digits and letters whose case flips often (random, unlike CamelCase or Title/Case/Paths), with high
    entropy: keys and tokens. Hex (hashes, commit ids, job ids), UUIDs and words joined by _ or - do not qualify."""
    pairs = [(a, b) for a, b in itertools.pairwise(text) if a.isalpha() and b.isalpha()]
    flips = sum(a.isupper() != b.isupper() for a, b in pairs) / max(len(pairs), 1)
    if flips < 0.3 or sum(c.isdigit() for c in text) < 2:
        return False
    if all(_WORDLIKE.fullmatch(part) for part in re.split(r"[/_.=+-]+", text) if part):
        return False  # Title/Case/Path2024/Segments, ACRONYMS, numbers
    counts = Counter(text)
    entropy = -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())
    return entropy >= 4.3


# --- helpers over wire values (plain dicts and lists offline; read-only proxies in the policy pack)


def _unwrap(value: Any) -> Any:
    if isinstance(value, Mapping):
        if SECRET_SIG in value:
            return _unwrap(value.get("value"))
        return {k: _unwrap(value[k]) for k in value}
    if _is_list(value):
        return [_unwrap(v) for v in value]
    return value


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _list(value: Any) -> list[Any]:
    return list(value) if _is_list(value) else []


def _item_key(item: Any, index: int) -> str:
    if isinstance(item, Mapping):
        for key in ("taskKey", "jobClusterKey", "environmentKey", "environmentVariablesKey"):
            if isinstance(item.get(key), str):
                return str(item[key])
    return str(index)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _object(text: Any) -> dict[str, Any]:
    if isinstance(text, Mapping):
        return dict(text)
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
