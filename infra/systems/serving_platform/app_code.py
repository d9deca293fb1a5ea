"""The app's code as Databricks Apps runs it: a source directory in the workspace holding

    app.yaml           generated from the wheel's own table of settings (agent_jobs.serving.app_yaml): the
                       command, env `valueFrom` the app's resources, fixed values from the stack settings
    requirements.txt   one line: the wheel beside it, with the `serving` extra (`./<wheel>.whl[serving]`)
    <wheel>.whl        the platform's wheel, the same file the jobs install

Why the built wheel and not a copy of the sources: it is the artifact the jobs already run (reproducible,
content-versioned, no `+` in its name), its `serving` extra is the one list of the app's dependencies, and pip
installs it during the deployment like any requirement, so the app imports `agent_jobs.serving` as the tests do.

Content-addressed like the wheel: the directory is `<root>/<16 hex digits of the content hash>` (a sha256 over
each file's name and bytes), so the same sources and settings give the same bytes and paths, and a change gives
a new directory (the old one is deleted once the new deployment ran; a deployment is a snapshot copy, so the
running app never reads it). The files are uploaded with their md5, as the wheel is.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_databricks as db
import yaml

from infra.components.wheel import BuiltWheel

RESOURCE_KEYS = {
    "llm-endpoint": "llm-endpoint",
    "embeddings-endpoint": "embeddings-endpoint",
    "postgres": "postgres",
    "prompts-volume": "prompts-volume",
}
"""The wheel's resource roles -> the App resource keys (app.yaml `valueFrom`); Databricks' own default key for a
Lakebase Autoscaling resource is `postgres`."""
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
_RESERVED = re.compile(r"(DATABRICKS_|PG).*")  # set by Databricks Apps itself


def app_yaml_base(values: Mapping[str, str]) -> dict[str, Any]:
    """The app.yaml mapping of the serving app with these fixed values (checked by the wheel itself)."""
    from agent_jobs.serving.app_yaml import app_yaml

    return app_yaml(RESOURCE_KEYS, values)


def render(base: Mapping[str, Any], extra_values: Mapping[str, str], extra_from: Mapping[str, str]) -> str:
    """app.yaml text: the app's own entries, then the extra ones (sorted), stable for the same input."""
    env = [*base["env"]]
    env += [{"name": k, "value": v} for k, v in sorted(extra_values.items())]
    env += [{"name": k, "valueFrom": v} for k, v in sorted(extra_from.items())]
    text: str = yaml.safe_dump({"command": list(base["command"]), "env": env}, sort_keys=False, width=1000)
    return text


def content_hash(files: Mapping[str, bytes]) -> str:
    """sha256 over each file's name and the sha256 of its bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{hashlib.sha256(files[name]).hexdigest()}\n".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class AppCodeArgs:
    wheel: BuiltWheel
    root: str
    """Workspace folder of the app's source versions, like /Shared/agent-platform/dev/apps/dev-agent-serving."""
    values: Mapping[str, str]
    """Fixed app settings (SERVING_EMBEDDING_DIM, ...), checked against the wheel's settings table."""
    extra_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """More variables (the telemetry helper's), plain values only: never a secret (use extra_env_from)."""
    extra_env_from: Mapping[str, str] = field(default_factory=dict)
    """More variables `valueFrom` an app resource key (a secret resource for a credential)."""
    extras: Sequence[str] = ("serving",)


def check_extra_env(base: Mapping[str, Any], names: Sequence[str]) -> None:
    taken = {e["name"] for e in base["env"]}
    for name in names:
        if not _ENV_NAME.fullmatch(name) or _RESERVED.fullmatch(name):
            raise ValueError(f"extra app variable {name!r}: allowed: upper-case names not starting with DATABRICKS_ "
                             "or PG (Databricks Apps sets those)")  # fmt: skip
        if name in taken:
            raise ValueError(f"extra app variable {name!r} is already set by the serving app's app.yaml")
        taken.add(name)


def _plain(names: Sequence[str], values: Sequence[str], secret: Sequence[bool]) -> dict[str, str]:
    hidden = [n for n, is_secret in zip(names, secret, strict=True) if is_secret]
    if hidden:
        raise ValueError(f"extra app variables {hidden} are secret and app.yaml is a plain file: pass them as a "
                         "secret app resource (extra_resources) and extra_env_from instead")  # fmt: skip
    return dict(zip(names, values, strict=True))


class AppCode(pulumi.ComponentResource):
    """Children: three `WorkspaceFile`s (<name>-app-yaml, <name>-requirements, <name>-wheel) in the directory
    named by their content hash. A change to any of them moves all three (replacements, not data)."""

    source_code_path: pulumi.Output[str]
    """/Workspace/<root>/<hash>: what the deployment deploys."""
    content_hash: pulumi.Output[str]
    app_yaml: pulumi.Output[str]

    def __init__(self, name: str, args: AppCodeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:serving:AppCode", name, None, opts)
        if "+" in args.root or " " in args.root or not args.root.startswith("/"):
            raise ValueError(f"app source root {args.root!r}: allowed: an absolute workspace path without + or space")
        base = app_yaml_base(args.values)
        check_extra_env(base, [*args.extra_env, *args.extra_env_from])
        wheel = args.wheel
        requirements = f"./{wheel.filename}[{','.join(args.extras)}]\n".encode()
        names = sorted(args.extra_env)
        given = [pulumi.Output.from_input(args.extra_env[n]) for n in names]
        # app.yaml is a plain workspace file: a secret value would sit there in the clear. Refused at run time
        # (whether an Output is secret is only known then); credentials go through a secret app resource instead.
        secret_flags = pulumi.Output.all(*[v.is_secret() for v in given])
        yaml_text = pulumi.Output.all(pulumi.Output.all(*given), secret_flags).apply(
            lambda vs: render(base, _plain(names, vs[0], vs[1]), args.extra_env_from)
        )
        wheel_bytes = wheel.path.read_bytes()
        digest = yaml_text.apply(
            lambda t: content_hash(
                {"app.yaml": t.encode(), "requirements.txt": requirements, wheel.filename: wheel_bytes}
            )
        )
        directory = digest.apply(lambda d: f"{args.root.rstrip('/')}/{d[:16]}")
        child = pulumi.ResourceOptions(parent=self)
        uploads = [
            db.WorkspaceFile(
                f"{name}-app-yaml",
                path=pulumi.Output.concat(directory, "/app.yaml"),
                content_base64=yaml_text.apply(lambda t: base64.b64encode(t.encode()).decode()),
                md5=yaml_text.apply(lambda t: hashlib.md5(t.encode()).hexdigest()),
                opts=child,
            ),
            db.WorkspaceFile(
                f"{name}-requirements",
                path=pulumi.Output.concat(directory, "/requirements.txt"),
                content_base64=base64.b64encode(requirements).decode(),
                md5=hashlib.md5(requirements).hexdigest(),
                opts=child,
            ),
            db.WorkspaceFile(
                f"{name}-wheel",
                path=pulumi.Output.concat(directory, "/", wheel.filename),
                content_base64=wheel.content_base64(),
                md5=wheel.md5,
                opts=child,
            ),
        ]
        # The path the deployment gets depends on every upload, so it never deploys a half-written directory.
        self.source_code_path = pulumi.Output.all(directory, *[u.path for u in uploads]).apply(
            lambda parts: f"/Workspace{parts[0]}"
        )
        self.content_hash = digest
        self.app_yaml = yaml_text
        self.register_outputs({"source_code_path": self.source_code_path, "content_hash": self.content_hash})
