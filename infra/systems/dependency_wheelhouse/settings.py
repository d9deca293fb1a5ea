"""Seed 004's settings: the dependency wheelhouse job and its format-validation job.

The target Python of the wheelhouse is derived from the compute (a runtime's or a serverless environment's
Python), never hard-coded: the seed's `PYTHON_VERSION = "3.10"` broke as soon as the runtime changed. A
runtime this module does not know is refused at validation, before anything is deployed, unless
`python_version` says which Python it runs.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union, get_args

from pydantic import AfterValidator, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from infra.settings import JobClusterCompute, Section, ServerlessCompute
from infra.settings.types import Flag, NodeTypeId, SparkVersion, UcName, WholeNumber

Shape = Literal["requirements", "pure_python", "packaged", "existing_wheels", "mixed", "nested"]
SHAPES: tuple[Shape, ...] = get_args(Shape)
"""The seed's six input shapes (agent_jobs.wheelhouse.shapes.SHAPES; a test keeps the two equal)."""

SEED_SPARK_VERSION = "14.3.x-scala2.12"
SEED_PACKAGES = ("wheel", "setuptools>=61.0")

RUNTIME_PYTHON: dict[int, str] = {14: "3.10", 15: "3.11", 16: "3.12", 17: "3.12"}
"""Databricks Runtime major version -> its Python (release notes, "System environment"): 14.x (14.3 LTS) 3.10,
15.x (15.4 LTS) 3.11, 16.x (16.4 LTS) and 17.x (17.3 LTS) 3.12. Older runtimes are past end of support."""
SERVERLESS_PYTHON: dict[str, str] = {"1": "3.10", "2": "3.11", "3": "3.12", "4": "3.12"}
"""Serverless environment version -> its Python (serverless environment versions release notes)."""
END_OF_SUPPORT: dict[str, str] = {"14.3": "1 Feb 2027"}
"""Runtimes whose end of support the preview announces while a stack uses them."""

_RUNTIME = re.compile(r"^(\d+)\.(\d+)\.")


def _python_version(value: str) -> str:
    if not re.fullmatch(r"3\.1[0-9]", value):
        raise PydanticCustomError(
            "invalid_value", "is not a Python version the wheel targets; allowed: 3.10 to 3.19, like 3.11"
        )
    return value


def _platform(value: str) -> str:
    if not re.fullmatch(r"(manylinux|musllinux)_\d+_\d+_[a-z0-9_]+|manylinux(1|2010|2014)_[a-z0-9_]+|linux_[a-z0-9_]+",
                        value):  # fmt: skip
        raise PydanticCustomError(
            "invalid_value", "is not a Linux platform tag; allowed: tags like manylinux_2_17_x86_64 or linux_aarch64"
        )
    return value


def _requirement(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}((==|>=|<=|~=|!=|>|<)[0-9][0-9A-Za-z.*+!-]{0,40})?", value):
        raise PydanticCustomError(
            "invalid_value",
            "is not a PyPI requirement; allowed: a name with at most one version clause, like setuptools>=61.0",
        )
    return value


PythonVersion = Annotated[str, AfterValidator(_python_version)]
PypiRequirement = Annotated[str, AfterValidator(_requirement)]
PlatformTag = Annotated[str, AfterValidator(_platform)]


class WheelhouseJobCluster(JobClusterCompute):
    """The seed's shared job cluster: one per run, used by every task of the run, dedicated (SINGLE_USER) to the
    identity the job runs as, which `addPyFile` to the workers needs."""

    kind: Literal["job_cluster"] = Field("job_cluster", description="job_cluster")
    spark_version: SparkVersion = Field(
        SEED_SPARK_VERSION,
        description="Databricks runtime of the shared cluster; the wheelhouse targets its Python (14.x: 3.10, "
        "15.x: 3.11, 16.x and 17.x: 3.12). The seed's 14.3 LTS reaches end of support on 1 Feb 2027.",
    )
    node_type_id: NodeTypeId = Field("i3.xlarge", description="Instance type of the driver and the worker (AWS).")
    num_workers: WholeNumber = Field(
        1, ge=1, le=100, description="Workers of the shared cluster: at least one, where verify imports the modules."
    )


WheelhouseCompute = Annotated[
    Union[WheelhouseJobCluster, ServerlessCompute],  # noqa: UP007 (pydantic discriminator)
    # Not the platform's Compute: an existing cluster may be shared or in standard access mode, where verify
    # cannot reach the workers (addPyFile needs a dedicated cluster).
    Field(discriminator="kind"),
]


def runtime_python(spark_version: str) -> str:
    """'14.3.x-scala2.12' -> '3.10'; ValueError naming the known runtimes for any other."""
    match = _RUNTIME.match(spark_version)
    python = RUNTIME_PYTHON.get(int(match.group(1))) if match else None
    if python is None:
        known = ", ".join(f"{major}.x" for major in RUNTIME_PYTHON)
        raise ValueError(f"runtime {spark_version} has no known Python version (known runtimes: {known})")
    return python


def serverless_python(environment_version: str) -> str:
    python = SERVERLESS_PYTHON.get(environment_version)
    if python is None:
        raise ValueError(
            f"serverless environment version {environment_version} has no known Python version (known: "
            f"{', '.join(SERVERLESS_PYTHON)})"
        )
    return python


class DependencyWheelhouseSettings(Section):
    """Seed 004: a job that turns Python dependencies in any of six shapes into a wheelhouse for the cluster's
    Python and proves them importable on the driver and the workers, plus the seed's format-validation job."""

    enabled: Flag = Field(False, description="Deploy this system (both jobs and the fixtures they read).")
    compute: WheelhouseCompute = Field(
        WheelhouseJobCluster(),
        description="Where every task runs: the seed's shared dedicated job cluster (kind: job_cluster, one per "
        "run) or serverless (kind: serverless; wheel and setuptools then come from the environment).",
    )
    runs_volume: UcName = Field(
        "dependency_wheelhouse",
        description="Volume in the platform schema: each run writes under runs/<job run id>/ (removed by the "
        "cleanup task), the format job's fixtures live under fixtures/.",
    )
    python_version: PythonVersion | None = Field(
        None,
        description="The Python the wheelhouse targets. Default: the compute's (its runtime's or serverless "
        "environment's); set it only for a runtime this program does not know yet.",
    )
    platforms: tuple[PlatformTag, ...] = Field(
        (),
        description="Platform tags the cluster runs (deps-wheelhouse --platform, each tag: pip never widens "
        "them). Default: the manylinux tags of glibc 2.35 on x86_64; ARM (Graviton) nodes need the aarch64 ones.",
    )
    build_packages: tuple[PypiRequirement, ...] = Field(
        SEED_PACKAGES,
        description="PyPI packages every task installs (task libraries, or serverless environment dependencies): "
        "what builds local packages and sdists without build isolation.",
    )
    formats: tuple[Shape, ...] = Field(
        SHAPES,
        description="Shapes the format-validation job processes and verifies, one fixture each: requirements, "
        "pure_python, packaged, existing_wheels, mixed, nested.",
    )
    verify_workers: WholeNumber = Field(
        4, ge=1, le=1000, description="Spark tasks in which verify imports every module on the workers."
    )
    max_concurrent_runs: WholeNumber = Field(
        5,
        ge=1,
        le=100,
        description="Concurrent runs of dependency_wheelhouse (each run has its own cluster and run directory).",
    )
    timeout_minutes: WholeNumber = Field(60, ge=5, le=24 * 60, description="Timeout of one run of either job.")

    @field_validator("compute", mode="before")
    @classmethod
    def _compute_kind(cls, compute: object) -> object:
        if not isinstance(compute, dict):
            return compute
        if "kind" not in compute:  # the default kind: `compute: {spark_version: ...}` is the shared cluster
            return {**compute, "kind": "job_cluster"}
        if compute["kind"] not in ("job_cluster", "serverless"):
            raise PydanticCustomError(
                "invalid_value",
                "needs kind job_cluster or serverless; allowed: job_cluster (the seed's dedicated shared cluster) or "
                "serverless (an existing cluster may be shared, and verify needs a dedicated one to reach the workers)",
            )
        return compute

    @field_validator("formats")
    @classmethod
    def _distinct(cls, formats: tuple[str, ...]) -> tuple[str, ...]:
        if not formats:
            raise PydanticCustomError("invalid_value", "is empty; allowed: one or more of {shapes}",
                                      {"shapes": ", ".join(SHAPES)})  # fmt: skip
        twice = sorted({f for f in formats if formats.count(f) > 1})
        if twice:
            raise PydanticCustomError(
                "invalid_value", "lists {shape} twice; allowed: each shape at most once", {"shape": twice[0]}
            )
        return formats

    @model_validator(mode="after")
    def _known_python(self) -> DependencyWheelhouseSettings:
        if self.python_version is None:
            try:
                target_python(self)
            except ValueError as exc:
                compute = self.compute
                key, value = (
                    ("spark_version", compute.spark_version)
                    if isinstance(compute, WheelhouseJobCluster)
                    else ("environment_version", compute.environment_version)
                )
                raise PydanticCustomError(
                    "field_rule",
                    "{problem}; allowed: a known one, or python_version set to the Python it runs",
                    {"field": f"compute.{key}", "value": value, "problem": str(exc)},
                ) from None
        return self


def target_python(settings: DependencyWheelhouseSettings) -> str:
    """The Python the wheelhouse is built for: python_version, else the compute's."""
    if settings.python_version is not None:
        return settings.python_version
    if isinstance(settings.compute, WheelhouseJobCluster):
        return runtime_python(settings.compute.spark_version)
    return serverless_python(settings.compute.environment_version)


def notes(settings: DependencyWheelhouseSettings) -> list[str]:
    """What the preview should tell about this system (today: a runtime near its end of support)."""
    if not settings.enabled or not isinstance(settings.compute, WheelhouseJobCluster):
        return []
    version = settings.compute.spark_version
    match = _RUNTIME.match(version)
    ends = END_OF_SUPPORT.get(f"{match.group(1)}.{match.group(2)}") if match else None
    if ends is None:
        return []
    return [
        f"dependency_wheelhouse.compute.spark_version is {version}: Databricks Runtime 14.3 LTS (Python 3.10) "
        f"reaches end of support on {ends}; move to 15.4.x-scala2.12 or later (the wheelhouse then targets that "
        "runtime's Python)"
    ]
