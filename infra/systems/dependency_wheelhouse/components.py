"""Seed 004's jobs: `dependency_wheelhouse` (process -> verify -> cleanup) and `dependency_wheelhouse_formats`
(the seed's format validation: every shape processed and verified in parallel, then one cleanup).

What the seed did and what replaces it (DATABRICKS-FACTS, "Seed 004"): task values handed the wheelhouse path
from task to task, and `dbutils.jobs.taskValues` exists in notebooks only; here every task gets the run-scoped
path `<runs volume>/runs/{{job.run_id}}/...` as a parameter, unique per run without UUIDs. DBFS became the
runs volume. The shared two-node cluster stays: one job cluster per run, dedicated (SINGLE_USER) because
`addPyFile` to the workers needs it, every task on it, each installing the seed's libraries (`wheel`,
`setuptools>=61.0`) and the platform's wheel; on serverless they are environment dependencies. The cleanup
task runs whatever happened before it (`run_if: ALL_DONE`) and removes only that run's directory.

The format job's verify tasks share one driver, so each installs its shape's wheelhouse into its own
`--target` directory on local disk instead of the driver's Python (parallel pip installs into one
site-packages race); the workers get each shape's pure-Python zip either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_databricks as db

from infra.components.compute import SharedCompute, shared_compute
from infra.components.jobs import JobCommon, job_args, job_permissions, wheel_task
from infra.naming import logical
from infra.systems.context import JobOutputs, SystemContext, SystemResult
from infra.systems.dependency_wheelhouse.fixtures import BuiltFixture
from infra.systems.dependency_wheelhouse.settings import DependencyWheelhouseSettings, target_python

ENTRY_POINT = "deps-wheelhouse"
CLUSTER_KEY = "wheelhouse"
RUN_DIR = "runs/{{job.run_id}}"
LOCAL_TARGET = "/tmp/deps-wheelhouse-{{job.run_id}}"
"""Where the format job's verify tasks install: the driver's local disk, one directory per run and shape."""
RUN_IDS: tuple[tuple[str, str], ...] = (("--job-id", "{{job.id}}"), ("--job-run-id", "{{job.run_id}}"))

Options = list[tuple[str, pulumi.Input[str]]]


@dataclass(frozen=True)
class DependencyWheelhouseArgs:
    settings: DependencyWheelhouseSettings
    common: JobCommon
    job_name: str
    """Physical name of dependency_wheelhouse (naming.job_name)."""
    formats_job_name: str
    """Physical name of dependency_wheelhouse_formats (naming.job_name)."""
    wheel_path: pulumi.Input[str]
    runs_volume_path: pulumi.Input[str]
    """'/Volumes/<catalog>/<schema>/<runs volume>' (the catalog component creates the volume)."""
    fixtures: Mapping[str, BuiltFixture]
    """Shape -> its built fixture (fixtures.build_fixtures); the format job uses those settings.formats names."""
    extra_requirements: tuple[str, ...] = ()
    """The wheel's wheelhouse extra, installed beside the seed's build packages."""


class DependencyWheelhouse(pulumi.ComponentResource):
    """Children: `Job` <name> (dependency_wheelhouse) and `Job` <name>-formats, each with `Permissions` when
    configured; one `File` <name>-fixture-<shape> per format in <volume>/fixtures/<shape>-<hash>.zip,
    retain_on_delete (content-addressed like the wheel: a new fixture is a new path, the old one stays for runs
    in flight)."""

    job_id: pulumi.Output[str]
    """dependency_wheelhouse_job_id."""
    job_url: pulumi.Output[str]
    formats_job_id: pulumi.Output[str]
    """dependency_wheelhouse_formats_job_id."""
    formats_job_url: pulumi.Output[str]
    fixture_paths: dict[str, pulumi.Output[str]]
    """Shape -> the uploaded fixture's path."""

    def __init__(self, name: str, args: DependencyWheelhouseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:systems:DependencyWheelhouse", name, None, opts)
        s, volume = args.settings, args.runs_volume_path
        missing = [shape for shape in s.formats if shape not in args.fixtures]
        if missing:
            raise ValueError(f"no fixture was built for the shapes {', '.join(missing)}")
        compute = shared_compute(
            s.compute,
            args.wheel_path,
            args.common.tags,
            args.common.run_as,
            key=CLUSTER_KEY,
            packages=(*s.build_packages, *args.extra_requirements),
            dedicated=True,
        )
        target: Options = [("--python-version", target_python(s)), *(("--platform", p) for p in s.platforms)]
        run_dir = pulumi.Output.concat(volume, "/", RUN_DIR)

        self.fixture_paths = {
            shape: db.File(
                logical(name, "fixture", shape),
                path=pulumi.Output.concat(volume, "/fixtures/", args.fixtures[shape].filename),
                content_base64=args.fixtures[shape].content_base64(),
                md5=args.fixtures[shape].md5,
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            ).path
            for shape in s.formats
        }

        output = pulumi.Output.concat(run_dir, "/wheelhouse")
        tasks = [
            _process("process_deps", "{{job.parameters.input_path}}", output, target, compute),
            _verify(s, "verify", output, (), None, compute, "process_deps"),
            _cleanup(run_dir, ["verify"], compute),
        ]
        # A run without parameters processes the first format's fixture: "Run now" works out of the box.
        default_input = self.fixture_paths[s.formats[0]]
        job = self._job(name, args, args.job_name, tasks, compute, default_input, s.max_concurrent_runs,
                        "Dependency wheelhouse (seed 004): builds the input_path's Python dependencies into a "
                        "wheelhouse for the cluster's Python, proves them importable on driver and workers, "
                        "removes the run's directory")  # fmt: skip

        format_tasks = []
        for shape in s.formats:
            fixture, shape_output = args.fixtures[shape], pulumi.Output.concat(run_dir, "/", shape, "/wheelhouse")
            flags = () if fixture.needs_index else ("--no-index",)  # built from the fixture alone: no network
            format_tasks += [
                _process(f"process_{shape}", self.fixture_paths[shape], shape_output, target, compute, flags),
                _verify(s, f"verify_{shape}", shape_output, fixture.modules, shape, compute, f"process_{shape}"),
            ]
        format_tasks.append(_cleanup(run_dir, [f"verify_{shape}" for shape in s.formats], compute))
        formats = self._job(f"{name}-formats", args, args.formats_job_name, format_tasks, compute, None, 1,
                            "Dependency wheelhouse format validation (seed 004): every input shape processed and "
                            "verified in parallel on one shared compute, then the run's directory removed")  # fmt: skip

        self.job_id, self.job_url = job.id, job.url
        self.formats_job_id, self.formats_job_url = formats.id, formats.url
        self.register_outputs(
            {"job_id": job.id, "job_url": job.url, "formats_job_id": formats.id, "formats_job_url": formats.url}
        )

    def _job(
        self,
        name: str,
        args: DependencyWheelhouseArgs,
        physical: str,
        tasks: Sequence[db.JobTaskArgs],
        compute: SharedCompute,
        default_input: pulumi.Input[str] | None,
        max_concurrent_runs: int,
        description: str,
    ) -> db.Job:
        parameters = [] if default_input is None else [db.JobParameterArgs(name="input_path", default=default_input)]
        job = db.Job(
            name,
            job_args(
                args.common,
                physical,
                description,
                tasks,
                timeout_seconds=args.settings.timeout_minutes * 60,
                max_concurrent_runs=max_concurrent_runs,
                parameters=parameters,
                environments=compute.environments,
                job_clusters=compute.job_clusters,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        job_permissions(name, job, args.common.permissions, self)
        return job


def _process(
    key: str,
    source: pulumi.Input[str],
    output: pulumi.Input[str],
    target: Options,
    compute: SharedCompute,
    flags: Sequence[str] = (),
) -> db.JobTaskArgs:
    options: Options = [("--input", source), ("--output", output), *target, *RUN_IDS]
    return wheel_task(key, ENTRY_POINT, options, compute.task(), flags=["process", *flags])


def _verify(
    s: DependencyWheelhouseSettings,
    key: str,
    output: pulumi.Input[str],
    expect: Sequence[str],
    local: str | None,
    compute: SharedCompute,
    after: str,
) -> db.JobTaskArgs:
    options: Options = [
        ("--wheelhouse", pulumi.Output.concat(output, "/wheelhouse.zip")),
        ("--workers", str(s.verify_workers)),
        ("--spark", "require"),  # a Databricks task always has a session: without one the workers go unchecked
        *([("--target", f"{LOCAL_TARGET}/{local}")] if local is not None else []),
        *(("--expect", module) for module in expect),
        *RUN_IDS,
    ]
    return wheel_task(key, ENTRY_POINT, options, compute.task(), flags=["verify"], depends_on=[after])


def _cleanup(run_dir: pulumi.Input[str], after: Sequence[str], compute: SharedCompute) -> db.JobTaskArgs:
    options: Options = [("--run-dir", run_dir), *RUN_IDS]
    # ALL_DONE: the run's directory goes whether the tasks before succeeded, failed or were skipped.
    return wheel_task("cleanup", ENTRY_POINT, options, compute.task(), flags=["cleanup"], depends_on=after,
                      run_if="ALL_DONE")  # fmt: skip


def build(ctx: SystemContext) -> SystemResult:
    from infra.systems.dependency_wheelhouse.fixtures import build_fixtures

    assert ctx.wheel is not None
    dw = DependencyWheelhouse(
        "dependency-wheelhouse",
        DependencyWheelhouseArgs(
            settings=ctx.own,
            common=ctx.common,
            job_name=ctx.job_name("dependency_wheelhouse"),
            formats_job_name=ctx.job_name("dependency_wheelhouse_formats"),
            wheel_path=ctx.wheel.path,
            runs_volume_path=ctx.volume_paths["dependency_wheelhouse"],
            fixtures=build_fixtures(ctx.wheel.source, ctx.wheel.cache),
            extra_requirements=ctx.extra_requirements,
        ),
        ctx.opts,
    )
    return SystemResult(
        jobs={
            "dependency_wheelhouse": JobOutputs(dw.job_id, dw.job_url),
            "dependency_wheelhouse_formats": JobOutputs(dw.formats_job_id, dw.formats_job_url),
        }
    )
