"""The contract every system gets from the one list (infra.systems.SYSTEMS): what the rest of the program
derives from a declaration (stack outputs, `infra run` choices, volumes, secrets, adoption names) matches
what the system builds, and its jobs are valid for Databricks and for its own entry points."""

from __future__ import annotations

import argparse
import importlib
import json
import tomllib
from typing import Any

import pytest
import yaml
from databricks.bundles.jobs import Job as BundleJob

from infra.components.adopt import targets
from infra.naming import logical
from infra.settings import SECRETS, parse_settings
from infra.systems import BY_KEY, SYSTEMS
from infra.systems.base import System
from infra.tools.cli import main
from infra.tools.offline import unwrap
from tests.conftest import ROOT, stack_plan, stack_preview
from tests.jobs_api import job_api_shape

SYSTEM_IDS = [s.key for s in SYSTEMS]


@pytest.fixture(params=SYSTEMS, ids=SYSTEM_IDS)
def system(request: pytest.FixtureRequest) -> System:
    return request.param  # type: ignore[no-any-return]


def test_one_list_declares_the_five_seeds() -> None:
    assert sorted(s.seed for s in SYSTEMS) == ["000", "001", "002", "003", "004"]
    assert len({s.key for s in SYSTEMS}) == len(SYSTEMS)
    keys = [job.key for s in SYSTEMS for job in s.jobs]
    assert len(set(keys)) == len(keys)  # a job key names one job across systems


def test_every_system_is_on_in_prod() -> None:
    settings = stack_preview("prod")[1].settings
    assert [s.key for s in settings.enabled_systems()] == SYSTEM_IDS


def test_job_outputs_derive_from_the_declarations(system: System) -> None:
    plan = stack_plan("prod")
    job_outputs = {k.removesuffix("_job_id") for k in plan.outputs if k.endswith("_job_id")}
    assert job_outputs == {job.key for s in SYSTEMS for job in s.jobs}
    for job in system.jobs:
        built = plan.one("Job", job.logical)  # the logical name adoption imports
        url = plan.outputs[f"{job.key}_job_url"][0]
        assert plan.outputs[f"{job.key}_job_id"][0] == built.id and url.endswith(f"/#job/{built.id}")


def test_run_choices_are_the_declared_jobs(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m infra run` offers exactly the declared jobs (argparse lists its choices when refusing one)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "no_such_job", "--stack", "dev"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    choices = err[err.index("choose from") :]
    declared = [job.key for s in SYSTEMS for job in s.jobs]
    assert [c.strip(" '\n)") for c in choices.removeprefix("choose from").split(",")] == declared


def test_run_starts_the_compute_the_declaration_names(system: System) -> None:
    from infra.tools.run import job_compute

    settings = stack_preview("prod")[1].settings
    for job in system.jobs:
        expected = getattr(settings.system(system.key), job.compute) if job.compute else None
        assert job_compute(settings, job.key) == expected


def test_volumes_derive_from_the_declarations(system: System) -> None:
    plan = stack_plan("prod")
    volumes = plan.outputs["volumes"][0]
    assert set(volumes) == {"wheels"} | {v.role for s in SYSTEMS for v in s.volumes}
    settings = stack_preview("prod")[1].settings
    for decl in system.volumes:
        name = getattr(settings.system(system.key), decl.setting)
        volume = plan.one("Volume", logical(decl.schema, decl.role))  # the logical name adoption imports
        assert unwrap(volume.inputs)["name"] == name and unwrap(volume.inputs)["comment"] == decl.purpose
        assert volumes[decl.role].endswith(f"/{name}") and volume.retain_on_delete


def test_secrets_derive_from_the_declarations(system: System) -> None:
    declared = {d.config_key for d in system.secrets}
    assert {s.config_key for s in SECRETS if s.system == system.key} == declared
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert declared <= set(project)  # every secret is declared in Pulumi.yaml, with its description
    plan = stack_plan("prod")
    scopes = plan.outputs["secret_scope"][0]
    if system.secrets:
        scope = plan.one("SecretScope", system.secret_scope_logical)
        assert scopes[system.key] == unwrap(scope.inputs)["name"]
        keys = {unwrap(r.inputs)["key"] for r in plan.all("Secret") if unwrap(r.inputs)["scope"] == scopes[system.key]}
        assert {d.key for d in system.secrets if d.required} <= keys
    else:
        assert system.key not in scopes


def test_adoption_imports_what_the_declarations_name(system: System) -> None:
    """Adopting every job, volume, scope and declared object of the system: each target is a resource the
    program creates under exactly that type and logical name."""
    loaded = stack_preview("prod")[1]
    s = loaded.settings
    names = s.full_names()
    adopt: dict[str, Any] = {
        "jobs": {job.key: str(100 + i) for i, job in enumerate(system.jobs)},
        "volumes": {d.role: names["volume"][d.role] for d in system.volumes},
        "secret_scopes": {system.key: names["secret scope"][system.key]} if system.secrets else {},
        **{d.setting: names["other"][d.setting] for d in system.adoptable},
    }
    adopted = s.model_copy(update={"adopt": s.adopt.model_validate(adopt)})
    wanted = targets(adopted)
    assert len(wanted) == len(system.jobs) + len(system.volumes) + bool(system.secrets) + len(system.adoptable)
    created = {(r.type.rsplit(":", 1)[-1], r.name) for r in stack_plan("prod").resources}
    assert set(wanted) <= created, sorted(set(wanted) - created)


def test_adopting_a_job_of_a_system_that_is_off_is_refused(system: System) -> None:
    assert system.jobs  # every system has a job to adopt
    doc = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    config = {
        k: v if isinstance(v, str) else json.dumps(v)
        for k, v in doc.items()
        if not isinstance(v, dict) or "secure" not in v
    }
    config[f"agent-platform:{system.key}"] = json.dumps(
        {**(doc.get(f"agent-platform:{system.key}") or {}), "enabled": False}
    )
    config["agent-platform:adopt"] = json.dumps({"jobs": {system.jobs[0].key: "123"}})
    with pytest.raises(Exception, match=f"adopt.jobs.{system.jobs[0].key}"):
        parse_settings(config, set(), project="agent-platform", stack_file="Pulumi.prod.yaml")


def test_jobs_parse_with_databricks_bundles_strict_models(system: System) -> None:
    plan = stack_plan("prod")
    for job in system.jobs:
        parsed = BundleJob.from_dict(job_api_shape(plan.one("Job", job.logical).inputs))
        assert parsed.tasks


def _entry_point_parsers() -> dict[str, argparse.ArgumentParser]:
    """Console script -> its argparse parser (the module's build_parser() or parser())."""
    scripts = tomllib.loads((ROOT / "wheel/pyproject.toml").read_text())["project"]["scripts"]
    parsers = {}
    for script, target in scripts.items():
        module = importlib.import_module(target.split(":")[0])
        make = getattr(module, "build_parser", None) or module.parser
        parsers[script] = make()
    return parsers


def test_every_wheel_task_is_accepted_by_its_entry_points_argparse(system: System) -> None:
    """The parameters of every python_wheel_task (job parameters and {{job.*}} references filled in as a run
    would) parse with the entry point's own parser: an unknown or missing option would fail the run."""
    parsers = _entry_point_parsers()
    plan = stack_plan("prod")
    checked = 0
    for job in system.jobs:
        inputs = unwrap(plan.one("Job", job.logical).inputs)
        defaults = {p["name"]: p["default"] or "x" for p in inputs.get("parameters") or []}
        for task in inputs["tasks"]:
            wheel_task = task.get("pythonWheelTask")
            if wheel_task is None:
                continue
            argv = []
            for part in wheel_task.get("parameters") or []:
                for key, value in {
                    **defaults,
                    "job.id": "1",
                    "job.run_id": "2",
                    "task.run_id": "3",
                    "task.execution_count": "1",
                }.items():
                    part = part.replace(f"{{{{job.parameters.{key}}}}}", value).replace(f"{{{{{key}}}}}", value)
                argv.append(part)
            assert "{{" not in " ".join(argv), argv
            assert wheel_task["packageName"] == "agent_jobs"
            parser = parsers[wheel_task["entryPoint"]]
            try:
                parser.parse_args(argv)
            except SystemExit as exc:  # pragma: no cover (the assertion's message)
                raise AssertionError(f"{job.key}.{task['taskKey']}: {wheel_task['entryPoint']} refuses {argv}") from exc
            checked += 1
    assert checked or not system.jobs


def test_each_system_installs_its_own_extra_only(system: System) -> None:
    """A job's environment or libraries carry its system's extra, not another system's (issue 12)."""
    from infra.components.wheel import SOURCE, extra_requirements

    plan = stack_plan("prod")
    extras = {e for s in SYSTEMS for e in (s.wheel_extra, *(j.extra for j in s.jobs)) if e}
    for job in system.jobs:
        extra = job.extra or system.wheel_extra
        mine = set(extra_requirements(SOURCE, extra)) if extra else set()
        others = {r for e in extras - {extra} for r in extra_requirements(SOURCE, e)} - mine
        text = json.dumps(unwrap(plan.one("Job", job.logical).inputs))
        assert mine and all(json.dumps(r) in text for r in mine), job.key
        assert not [r for r in others if json.dumps(r) in text], job.key


def test_by_key_is_the_list() -> None:
    assert list(BY_KEY.values()) == list(SYSTEMS)
