"""`python -m infra verify --stack NAME`: after `pulumi up`, read back through databricks-sdk, with the stack's
workspace and credentials, what the stack's plan says should exist. Mocks cannot catch a platform that stores a
file under another name (the Files API turns a `+` in a path into a space: pulumi-databricks#589); this can.

What should exist comes from the stack's offline plan (infra.tools.offline.preview_stack, the same program `pulumi up`
ran) and its outputs (the real job ids); what exists from the workspace:

- every job, by the id in the outputs: it exists, under the plan's name, referencing the plan's wheel paths;
- every wheel path the deployed jobs reference (task libraries, environment dependencies): a file in the volume
  under exactly that name (`files.get_metadata`);
- every secret scope: it holds the keys the plan puts there (`secrets.list_secrets`: names only; no value is
  ever read);
- the registered model's deployment-job link (the registry GET of
  infra.systems.health_monitor.model_link): the deployment job.

One line per check (`ok` or `FAIL` and what differs) and a summary on stdout; exit status 0 when every check
holds, 1 otherwise, 2 for bad arguments (infra.__main__). A host that does not answer ends the checks at once,
named, instead of timing out once per check.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from infra.tools.diff import JOB, SECRET
from infra.tools.offline import Plan, preview_stack, unwrap
from infra.tools.run import output_job_id, stack_outputs, unreachable, workspace_client

SECRET_SCOPE = "databricks:index/secretScope:SecretScope"
LINK = "pulumi-python:dynamic:Resource"  # infra.systems.health_monitor.model_link.DeploymentJobLink
PLUS_HINT = " (the Files API stores a `+` in an uploaded path as a space: pulumi-databricks#589)"


class Unreachable(Exception):
    """The workspace did not answer within the bound: no further check can succeed."""


@dataclass
class Report:
    out: TextIO
    results: list[bool] = field(default_factory=list)

    def line(self, ok: bool, what: str, detail: str = "") -> None:
        self.results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'}  {what}{': ' + detail if detail else ''}", file=self.out, flush=True)


def wheel_paths(settings: dict[str, Any]) -> list[str]:
    """The volume files a job installs: task libraries' `whl`, environment dependencies that are paths. Works on
    both shapes: the plan's wire inputs (camelCase) and the Jobs API's settings (snake_case)."""
    found = []
    for task in settings.get("tasks") or []:
        found += [lib["whl"] for lib in task.get("libraries") or [] if isinstance(lib.get("whl"), str)]
    for env in settings.get("environments") or []:
        spec = env.get("spec") or {}
        found += [d for d in spec.get("dependencies") or [] if isinstance(d, str) and d.startswith("/Volumes/")]
    return sorted(set(found))


@dataclass(frozen=True)
class Expected:
    """What the plan says exists: jobs by output name, secret keys by scope, the model link."""

    jobs: dict[str, dict[str, Any]]
    """`<job>_job_id` output -> the Job's planned inputs."""
    scopes: dict[str, list[str]]
    """Secret scope name -> the keys the plan puts in it."""
    link: tuple[str, str] | None
    """(registered model's full name, the output naming the job it must link to)."""


def expected(plan: Plan) -> Expected:
    outputs = {name: value for name, (value, _) in plan.outputs.items()}
    by_id = {value: name for name, value in outputs.items() if name.endswith("_job_id") and isinstance(value, str)}
    jobs = {by_id[r.id]: unwrap(r.inputs) for r in plan.resources if r.type == JOB and r.id in by_id}
    scopes: dict[str, list[str]] = {str(unwrap(r.inputs)["name"]): [] for r in plan.resources if r.type == SECRET_SCOPE}
    for r in plan.resources:
        if r.type == SECRET:
            inputs = unwrap(r.inputs)
            scopes.setdefault(str(inputs["scope"]), []).append(str(inputs["key"]))
    link = None
    for r in plan.resources:
        inputs = unwrap(r.inputs)
        if r.type == LINK and "model_name" in inputs and inputs.get("job_id") in by_id:
            link = (str(inputs["model_name"]), by_id[inputs["job_id"]])
    return Expected(jobs, {k: sorted(v) for k, v in sorted(scopes.items())}, link)


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")


def check(client: Any, want: Expected, outputs: dict[str, Any], source: str, report: Report) -> None:
    """Every check, in order; raises Unreachable when a call gave up on the host."""
    referenced: dict[str, list[str]] = {}
    for key, planned in sorted(want.jobs.items()):
        job = key.removesuffix("_job_id")
        if key not in outputs:
            report.line(False, f"job {job}", f"the stack has no output {key} (is it deployed?)")
            continue
        job_id = output_job_id(outputs, key, source)
        deployed = _call(partial(client.jobs.get, job_id))
        if isinstance(deployed, Exception):
            report.line(False, f"job {job} ({job_id})", f"cannot be read: {_error(deployed)}")
            continue
        settings = deployed.settings.as_dict() if deployed.settings else {}
        paths, want_paths = wheel_paths(settings), wheel_paths(planned)
        problems = []
        if settings.get("name") != planned.get("name"):
            problems.append(f"is named {settings.get('name')!r}, the plan names it {planned.get('name')!r}")
        if paths != want_paths:
            problems.append(f"references {paths or 'no wheel'}, the plan {want_paths or 'no wheel'} (deployed from "
                            "another commit?)")  # fmt: skip
        report.line(not problems, f"job {job} ({job_id})", "; ".join(problems) or f"{settings.get('name')}, as planned")
        for path in paths:
            referenced.setdefault(path, []).append(job)
    for path, jobs in sorted(referenced.items()):
        meta = _call(partial(client.files.get_metadata, path))
        what = f"wheel {path} (used by {', '.join(sorted(jobs))})"
        if isinstance(meta, Exception):
            hint = PLUS_HINT if "+" in path else ""
            report.line(False, what, f"not in the volume under exactly that name{hint}: {_error(meta)}")
        else:
            report.line(True, what, f"exists, {meta.content_length} bytes")
    for scope, keys in want.scopes.items():
        listed = _call(partial(_keys, client, scope))
        if isinstance(listed, Exception):
            report.line(False, f"secret scope {scope}", f"cannot be listed: {_error(listed)}")
            continue
        missing = [k for k in keys if k not in listed]
        detail = f"lacks {', '.join(missing)} (holds: {', '.join(sorted(listed)) or 'nothing'})" if missing else ""
        report.line(not missing, f"secret scope {scope}", detail or f"holds {', '.join(keys) or 'no declared keys'}")
    if want.link is not None:
        _check_link(client, want.link, outputs, source, report)


def _keys(client: Any, scope: str) -> list[str]:
    return [s.key for s in client.secrets.list_secrets(scope)]


def _check_link(client: Any, link: tuple[str, str], outputs: dict[str, Any], source: str, report: Report) -> None:
    from infra.systems.health_monitor.model_link import RegistryError, current_job_id

    model, key = link
    what = f"model {model}: deployment job"
    if key not in outputs:
        report.line(False, what, f"the stack has no output {key}")
        return
    job_id = str(output_job_id(outputs, key, source))
    host = client.config.host
    linked = _call(lambda: current_job_id(client, model, host))
    if isinstance(linked, RegistryError) and isinstance(linked.__cause__, TimeoutError):
        raise Unreachable from linked.__cause__
    if isinstance(linked, Exception):
        cause = linked.__cause__
        report.line(False, what, f"cannot be read: {_error(cause if isinstance(cause, Exception) else linked)}")
    else:
        report.line(linked == job_id, what, f"linked to {linked or 'no job'}, expected {key} {job_id}")


def _call(fn: Callable[[], Any]) -> Any:
    """The call's result, or the exception it raised (Unreachable when the SDK gave up on the host)."""
    try:
        return fn()
    except TimeoutError as exc:
        raise Unreachable from exc
    except Exception as exc:
        return exc


def main(args: Any, root: Path, clock: Any = None) -> int:
    """`python -m infra verify` (arguments parsed by infra.__main__)."""
    import pulumi

    try:
        plan, loaded = preview_stack(root, args.stack, args.config_file)
    except pulumi.RunError as exc:  # the program stopped itself (a wheel that does not build), as in `preview`
        print(f"error: the stack's plan cannot be rendered: {exc}", file=sys.stderr)
        return 1
    outputs = stack_outputs(args.stack, args.outputs)
    source = f"--outputs {args.outputs}" if args.outputs else f"stack {args.stack}"
    want = expected(plan)
    for key in want.jobs:
        if key in outputs:
            output_job_id(outputs, key, source)  # a malformed id is a usage error, before any request
    settings = loaded.settings
    host = args.host or settings.workspace.host
    client = workspace_client(host, settings.workspace.profile, args.timeout_seconds, loaded.stack_file, clock)
    report = Report(sys.stdout)
    print(f"verify: stack {args.stack} at {host}", file=sys.stdout, flush=True)
    try:
        check(client, want, outputs, source, report)
    except Unreachable as exc:
        report.line(False, host, unreachable(host, args.timeout_seconds, exc.__cause__ or exc))
        print(f"verify: stopped after {len(report.results)} checks: the workspace does not answer", flush=True)
        return 1
    failed = report.results.count(False)
    print(f"verify: {len(report.results)} checks, {failed} failed" if failed else
          f"verify: all {len(report.results)} checks passed", flush=True)  # fmt: skip
    return 1 if failed else 0
