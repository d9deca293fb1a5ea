"""Run the real program (`__main__.py`) under Pulumi's mock engine and record what it would create.

Used by `python -m infra preview` and by the tests, so both see the same thing. Stack config is assembled
the way the Pulumi CLI does it: `Pulumi.<stack>.yaml` values over the project defaults of `Pulumi.yaml`,
scalars as text, objects as JSON text (infra/stackfile.py reads the files as the CLI does). Mock ids are
derived from each resource's type and name, so two runs record identical plans, and references between
resources (a schema's full name inside a grant) stay visible.

Secrets: every key declared `secret: true` in Pulumi.yaml is handed to the program as a secret, even when a
stack file holds it in plain text, so it is masked everywhere. A secret that is unset, or encrypted (`secure:`,
which cannot be decrypted without the CLI), is replaced by a placeholder, with a note that it must be set
before `pulumi up`. The plan carries each secret's state (`secret_states`: a hash of its ciphertext, never of a
value), so that a diff of two plans shows a rotation.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import runpy
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import resource as runtime_resource
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.proto import source_pb2

from infra.settings import SECRETS, LoadedSettings, parse_settings
from infra.tools.mocks import Registration, computed, digest
from infra.tools.stackfile import StackFileError, read_project, read_stack

__all__ = ["StackFileError", "read_stack_config"]  # StackFileError lives in infra/stackfile.py; kept importable here

SECRET_SIG = "4dabf18193072939515e22adb298388d"  # marks a secret value on the wire (pulumi.runtime.rpc)
MASK = "[secret]"
PLACEHOLDER = "offline-preview-placeholder"


@dataclass(frozen=True)
class StackConfig:
    project: str
    stack: str
    stack_file: str
    values: dict[str, str]
    """Full key -> value text, as the CLI passes config to the program."""
    secret_keys: frozenset[str]
    """Keys the program must see as secrets: those declared `secret: true`, and any encrypted value."""
    encrypted: frozenset[str] = frozenset()
    """Keys given as `secure:` in the stack file (not decryptable offline)."""
    plaintext_secrets: frozenset[str] = frozenset()
    """Declared secrets that the stack file holds in plain text."""
    ciphertext_digests: Mapping[str, str] = field(default_factory=dict)
    """Key given as `secure:` -> the first 12 hex digits of the sha256 of its ciphertext (see `secret_states`)."""


def read_stack_config(root: Path, stack: str, config_file: Path | None = None) -> StackConfig:
    """`Pulumi.yaml` defaults plus `Pulumi.<stack>.yaml` (or `config_file`), as the CLI would pass them
    (infra/stackfile.py reads both files as the CLI does)."""
    project = read_project(root / "Pulumi.yaml", "Pulumi.yaml")
    path = config_file or root / f"Pulumi.{stack}.yaml"
    shown = str(config_file) if config_file else path.name
    if not path.is_file():
        if config_file is not None:
            raise StackFileError(f"{shown}: no such file (given with --config-file)")
        stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
        raise StackFileError(f"{shown}: no such stack file; allowed: --stack {' | '.join(stacks)}")
    stack_values = read_stack(path, shown, project.name)
    values: dict[str, str] = {}
    secret_keys: set[str] = set()
    encrypted: set[str] = set()
    digests: dict[str, str] = {}
    for full, declaration in project.config.items():
        if declaration.secret:
            secret_keys.add(full)
        if declaration.default is not None:
            values[full] = declaration.default.text
    plaintext: set[str] = set()
    for full, value in stack_values.items():
        if value.encrypted:
            raise StackFileError(
                f"{shown}: {', '.join(full + at for at in value.encrypted)} is encrypted (secure:), which only the "
                "Pulumi CLI can decrypt; allowed: encrypt only the secrets declared in Pulumi.yaml, keep other "
                "settings in plain text"
            )
        if value.secure:
            # Only the CLI can decrypt it: the program gets a placeholder, secret like the real value.
            encrypted.add(full)
            secret_keys.add(full)
            values[full] = PLACEHOLDER
            digests[full] = hashlib.sha256(value.text.encode()).hexdigest()[:12]
        else:
            values[full] = value.text
            if full in secret_keys and value.text:
                plaintext.add(full)
    undecryptable = sorted(k for k in encrypted if k not in {f"{project.name}:{s.config_key}" for s in SECRETS})
    if undecryptable:
        raise StackFileError(
            f"{shown}: {', '.join(undecryptable)} is encrypted (secure:), which only the Pulumi CLI can decrypt; "
            "allowed: encrypt only the secrets declared in Pulumi.yaml, keep other settings in plain text"
        )
    return StackConfig(
        project.name, stack, shown, values, frozenset(secret_keys), frozenset(encrypted), frozenset(plaintext), digests
    )


def secret_states(config: StackConfig) -> dict[str, str]:
    """Each declared secret's config key -> a fingerprint that changes when the secret is rotated, and reveals
    nothing: the first 12 hex digits of the sha256 of its `secure:` ciphertext (already public in the committed
    stack file), "unset", or "plaintext". A plain-text value is never hashed: a short hash of a guessable secret
    could be brute-forced. Re-encrypting the same value (a new nonce, a new secrets provider) also changes it."""
    states = {}
    for spec in SECRETS:
        full = f"{config.project}:{spec.config_key}"
        digest = config.ciphertext_digests.get(full)
        states[spec.config_key] = digest or ("plaintext" if full in config.plaintext_secrets else "unset")
    return dict(sorted(states.items()))


def with_secret_placeholders(config: StackConfig, loaded: LoadedSettings) -> tuple[dict[str, str], list[str]]:
    """The config values with a placeholder for each required secret that is unset, and a note for each
    secret that is unset, encrypted (shown masked) or held in plain text (refused by `pulumi up`)."""
    values = dict(config.values)
    notes = []
    wanted = {spec.config_key for spec in loaded.wanted_secrets()}
    for spec in SECRETS:
        full = f"{config.project}:{spec.config_key}"
        if full in config.encrypted and spec.config_key in wanted:
            notes.append(f"{full} is encrypted in {config.stack_file}; the offline preview cannot decrypt it and "
                         f"shows it as {MASK}.")  # fmt: skip
        elif full in config.plaintext_secrets:
            unused = "" if spec.config_key in wanted else " (its system is switched off)"
            notes.append(f"{full} is stored in plain text in {config.stack_file}{unused}: `pulumi up` refuses it. "
                         f"Rotate it, then: pulumi config set --secret {full} <value>")  # fmt: skip
        elif spec.config_key in wanted and loaded.secrets[spec.config_key] == "absent":
            values[full] = PLACEHOLDER
            notes.append(f"{full} is not set; the offline preview shows it as {MASK}. Before `pulumi up`: "
                         f"pulumi config set --secret {full} <value>")  # fmt: skip
    return values, notes


@dataclass
class Recorded:
    """One resource as the engine would receive it."""

    type: str
    name: str
    id: str | None
    parent: str | None
    inputs: dict[str, Any]
    protect: bool
    retain_on_delete: bool
    custom: bool
    provider: str | None
    import_id: str | None = None
    """The existing object's id when the program adopts it (ResourceOptions.import_)."""
    delete_before_replace: bool = False
    depends_on: tuple[str, ...] = ()
    """ResourceOptions.depends_on, as '<type>::<name>' of each resource (the engine orders creation by it)."""


@dataclass
class Plan:
    project: str
    stack: str
    resources: list[Recorded]
    outputs: dict[str, tuple[Any, bool]]
    """Output name -> (value, is_secret)."""
    invokes: list[tuple[str, str]] = field(default_factory=list)
    """(token, provider reference) of each lookup the program made."""
    notes: list[str] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    """Secret config key -> fingerprint, "unset" or "plaintext" (`secret_states`); empty without a stack file."""
    prerequisites: list[str] = field(default_factory=list)
    """What must already hold in the workspace, which the stack does not grant itself (infra.platform)."""

    def one(self, short_type: str, name: str | None = None) -> Recorded:
        """The single resource of this short type ('Schema', 'DataSchema') and logical name; for tests."""
        found = [r for r in self.all(short_type) if name in (None, r.name)]
        if len(found) != 1:
            raise LookupError(f"expected one {short_type} {name or ''}, found {[r.name for r in found]}")
        return found[0]

    def all(self, short_type: str) -> list[Recorded]:
        """Every resource whose type ends in ':<short_type>'."""
        return [r for r in self.resources if r.type.rsplit(":", 1)[-1] == short_type]


def unwrap(value: Any) -> Any:
    """Strip the secret wrappers from wire values (for tests that must see the real value)."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return unwrap(value["value"])
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def masked(value: Any) -> Any:
    """Replace every secret wire value by MASK, recursively."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return MASK
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


class RecordingMocks(pulumi.runtime.Mocks):
    """Mock engine: deterministic ids and the computed outputs the program reads (volume paths, secret
    references, job URLs), every registration recorded."""

    def __init__(self) -> None:
        self.registered: list[pulumi.runtime.MockResourceArgs] = []
        self.calls: list[pulumi.runtime.MockCallArgs] = []
        self.hosts: dict[str, str] = {}
        self.ids: dict[tuple[str, str], str] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.registered.append(args)
        if not args.custom:
            return None, {}
        rid, state = self._id_and_state(args)
        self.ids[(args.typ, args.name)] = rid
        return rid, state

    def _id_and_state(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = unwrap(args.inputs)
        if args.typ.startswith("pulumi:providers:"):
            rid = digest(args.typ, args.name)
            self.hosts[rid] = inputs.get("host", "")
            return rid, dict(args.inputs)
        host = self.hosts.get((args.provider or "").split("::")[-1], "https://workspace.example")
        rid, extra = computed(Registration(args.typ, args.name, inputs, host))
        if args.typ == "databricks:index/job:Job" and args.resource_id:  # an adopted job keeps its id and URL
            rid, extra = args.resource_id, {"url": f"{host}/#job/{args.resource_id}"}
        # An imported resource (ResourceOptions.import_) keeps the id it has in the workspace.
        return args.resource_id or rid, {**args.inputs, **extra}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        self.calls.append(args)
        if args.token == "databricks:index/getCatalog:getCatalog":
            name = args.args["name"]
            return {"id": name, "name": name, "catalogInfo": {"name": name}}, []
        raise NotImplementedError(f"the offline preview has no mock for the invoke {args.token}")


def _dependencies(opts: pulumi.ResourceOptions) -> tuple[str, ...]:
    given = opts.depends_on
    listed = given if isinstance(given, list | tuple) else [] if given is None else [given]
    return tuple(sorted(f"{r._type}::{r._name}" for r in listed if isinstance(r, pulumi.Resource)))  # noqa: SLF001


def _ensure_event_loop() -> None:
    """Pulumi's engine (its mocks too) runs on the thread's current event loop, which an earlier
    `asyncio.run()` in the same thread leaves unset (or closed): give the thread a new one then."""
    try:
        if not asyncio.get_event_loop_policy().get_event_loop().is_closed():
            return
    except RuntimeError:  # no current loop in this thread
        pass
    asyncio.set_event_loop(asyncio.new_event_loop())


def run_program(
    program: Callable[[], object], project: str, stack: str, config: Mapping[str, str], secret_keys: frozenset[str]
) -> Plan:
    """Run `program` under the mocks with this config; returns after every registration has finished."""
    _ensure_event_loop()
    mocks = RecordingMocks()
    runtime_settings.ROOT.set(None)  # a fresh root Stack, or exports of an earlier run would leak in
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False)
    pulumi.runtime.set_all_config(dict(config), secret_keys=sorted(secret_keys))
    options: dict[int, tuple[pulumi.Resource, pulumi.ResourceOptions]] = {}

    def capture(args: pulumi.ResourceTransformationArgs) -> None:
        # Registered first, so the program's own stack transformations (adoption, data retention) run after this
        # one: apply them to a copy here to record the options the engine will really get.
        root = runtime_settings.get_root_resource()
        later = root._transformations if root is not None else []  # noqa: SLF001 (no public accessor)
        opts, props = args.opts, args.props
        for transformation in later[later.index(capture) + 1 :] if capture in later else []:
            result = transformation(
                pulumi.ResourceTransformationArgs(args.resource, args.type_, args.name, props, opts)
            )
            if result is not None:
                opts, props = result.opts, result.props
        options[id(args.resource)] = (args.resource, opts)

    box: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> pulumi.Output[Any]:
        pulumi.runtime.register_stack_transformation(capture)
        program()
        root = runtime_settings.get_root_resource()
        outs = dict(getattr(root, "outputs", {}) or {})
        names = sorted(outs)
        values = pulumi.Output.all(*[outs[n] for n in names])
        secret = pulumi.Output.all(*[pulumi.Output.from_input(outs[n]).is_secret() for n in names])

        def keep(resolved: list[Any]) -> None:
            box["outputs"] = dict(zip(names, zip(*resolved, strict=True), strict=True))

        return pulumi.Output.all(values, secret).apply(keep)

    # The engine walks the whole Python stack at every registration to send the deployment engine its source
    # position; the mocks never read it, and it cost a fifth of a run. Restored afterwards.
    trace = runtime_resource._get_stack_trace  # noqa: SLF001 (no setting turns it off)
    runtime_resource._get_stack_trace = source_pb2.StackTrace  # noqa: SLF001
    try:
        run()
    finally:
        runtime_resource._get_stack_trace = trace  # noqa: SLF001
    by_key = {(r._type, r._name): (r, o) for r, o in options.values()}  # noqa: SLF001 (no public accessor)
    resources = []
    for args in mocks.registered:
        if args.typ == "pulumi:pulumi:Stack":
            continue
        resource, opts = by_key.get((args.typ, args.name), (None, pulumi.ResourceOptions()))
        parent = opts.parent
        parent_key = None
        if parent is not None and parent._type != "pulumi:pulumi:Stack":  # noqa: SLF001
            parent_key = f"{parent._type}::{parent._name}"  # noqa: SLF001
        resources.append(
            Recorded(
                type=args.typ,
                name=args.name,
                id=mocks.ids.get((args.typ, args.name)),
                parent=parent_key,
                inputs=dict(args.inputs),
                protect=bool(getattr(resource, "_protect", False)),
                retain_on_delete=bool(opts.retain_on_delete),
                custom=bool(args.custom),
                provider=args.provider or None,
                import_id=args.resource_id or None,
                delete_before_replace=bool(opts.delete_before_replace),
                depends_on=_dependencies(opts),
            )
        )
    keys = [(r.type, r.name) for r in resources]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise RuntimeError(f"two resources share a type and logical name: {duplicates}")
    resources.sort(key=lambda r: (r.type, r.name))
    outputs = {k: (v, bool(s)) for k, (v, s) in sorted(box.get("outputs", {}).items())}
    invokes = sorted((c.token, c.provider or "") for c in mocks.calls)
    return Plan(project, stack, resources, outputs, invokes)


def preview_stack(root: Path, stack: str, config_file: Path | None = None) -> tuple[Plan, LoadedSettings]:
    """Validate the stack's config and run `<root>/__main__.py` against it. Raises SettingsError on bad config."""
    config = read_stack_config(root, stack, config_file)
    loaded = parse_settings(config.values, config.secret_keys, project=config.project, stack_file=config.stack_file)
    values, notes = with_secret_placeholders(config, loaded)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    # The program reads config only from the stack file here, never from a caller's PULUMI_CONFIG.
    saved = {k: os.environ.pop(k) for k in ("PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS") if k in os.environ}
    try:
        plan = run_program(
            lambda: runpy.run_path(str(root / "__main__.py"), run_name="__main__"),
            config.project,
            stack,
            values,
            config.secret_keys,
        )
    finally:
        os.environ.update(saved)
    plan.notes.extend(notes)
    from infra import platform  # imports pulumi_databricks: only once a preview runs

    plan.notes.extend(platform.notes(loaded.settings))
    plan.prerequisites = platform.prerequisites(loaded.settings)
    plan.secrets = secret_states(config)
    return plan, loaded
