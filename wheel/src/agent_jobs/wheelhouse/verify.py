"""`verify`: a wheelhouse made importable and proven so, on the driver and on the Spark workers.

1. Check `wheelhouse.zip` against its manifest (sha256, the same wheel files) and pip-install it into the
   running Python (`--no-index --find-links`: nothing outside the wheelhouse, and pip checks that it is
   complete), or into `--target DIR`, which is then put first on `sys.path`.
2. Import every top-level module the manifest lists, here (the driver).
3. With a Spark session (the active one; on Databricks `getOrCreate()`): ship `pyfiles.zip`, the pure-Python
   wheels' files, to the workers: on a classic session `sparkContext.addPyFile` (dedicated clusters), on
   Spark Connect (serverless) `addArtifacts(path, pyfile=True)`. A `.whl` given to `addPyFile` is not
   importable (DATABRICKS-FACTS), hence the zip. It is shipped from a content-addressed copy on local disk
   that is never deleted: Spark serves it to workers for as long as the driver lives (seed 004's /tmp
   failure was a file deleted before the workers fetched it), and tasks sharing one cluster that ship the
   same content ship the same path (Spark refuses one file name registered with two paths).
4. Import every module in N Spark tasks (separate Python worker processes).

It raises one JobError listing each module that failed and where (driver / workers, with the error), and
always leaves `verify.json` beside the wheelhouse saying what happened. Native (non-pure) wheels cannot be
shipped in a zip: their modules fail on workers unless the cluster has them (a cluster or task library),
and the message says so.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_jobs.errors import JobError
from agent_jobs.files import write_json
from agent_jobs.wheelhouse import manifest
from agent_jobs.wheelhouse.archive import MIB, Limits, extract_zip
from agent_jobs.wheelhouse.build import PipFailed, run_pip

log = logging.getLogger("agent_jobs.wheelhouse.verify")

RESULT = "verify.json"
SPARK_MODES = ("auto", "require", "off")
_ERROR_LIMIT = 300


@dataclass
class Report:
    """What verify found; written to verify.json."""

    status: str = "failed"
    spark: str = "none"
    shipped_with: str | None = None
    driver: dict[str, str] = field(default_factory=dict)
    workers: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def locate(path: Path) -> Path:
    """The wheelhouse.zip meant by path (the file itself or the directory holding it)."""
    house = path / manifest.WHEELHOUSE if path.is_dir() else path
    if not house.is_file():
        raise JobError(f"wheelhouse {house} does not exist")
    return house


@contextlib.contextmanager
def _pip_lock() -> Iterator[None]:
    """One pip at a time in this machine's Python: parallel verify tasks share a job cluster's driver."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no parallel tasks to guard against
        yield
        return
    with open(Path(tempfile.gettempdir()) / "agent-jobs-wheelhouse-pip.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def install(house: Path, data: dict[str, Any], target: Path | None) -> None:
    if manifest.sha256(house) != data["wheelhouse"]["sha256"]:
        raise JobError(f"{house} does not match its manifest's sha256 (was it replaced after processing?)")
    with tempfile.TemporaryDirectory(prefix="deps-wheelhouse-verify-") as tmp:
        wheels_dir = Path(tmp)
        extract_zip(house, wheels_dir, Limits(max_total_bytes=8 * 1024 * MIB, max_ratio=1_000_000))
        files = sorted(p.name for p in wheels_dir.iterdir())
        listed = sorted(w["file"] for w in data["wheels"])
        if files != listed:
            raise JobError(f"{house} holds {files}, its manifest lists {listed}")
        args = ["install", "--no-index", "--find-links", str(wheels_dir)]
        if target is not None:
            # pip's conflict check reads every distribution of the running Python (seconds on a cluster's
            # hundreds), which --target does not install into: the check would judge the wrong environment.
            args += ["--target", str(target), "--upgrade", "--no-warn-conflicts"]
        args += [str(wheels_dir / name) for name in files]
        with _pip_lock():
            try:
                run_pip(args, wheels_dir)
            except PipFailed as exc:
                raise JobError(f"installing the wheelhouse failed: {exc}") from None


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= _ERROR_LIMIT else text[: _ERROR_LIMIT - 3] + "..."


def import_here(modules: list[str], target: Path | None) -> dict[str, str]:
    """module -> 'ok' or the import error, in this process."""
    if target is not None and str(target) not in sys.path:
        sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    results = {}
    for module in modules:
        try:
            importlib.import_module(module)
            results[module] = "ok"
        except (Exception, SystemExit) as exc:  # a module's own import-time failure is a result, not a crash
            results[module] = _error_text(exc)
    return results


def find_session(mode: str) -> Any:
    """The Spark session to check workers with, or None (mode: auto, require, off)."""
    if mode == "off":
        return None
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        if mode == "require":
            raise JobError("--spark require: pyspark is not installed in this Python") from None
        return None
    spark = SparkSession.getActiveSession()
    if spark is None and (mode == "require" or os.environ.get("DATABRICKS_RUNTIME_VERSION")):
        spark = SparkSession.builder.getOrCreate()
    return spark


def is_connect(spark: Any) -> bool:
    return type(spark).__module__.startswith("pyspark.sql.connect")


def ship(spark: Any, pyfiles: Path, sha256: str) -> str:
    """Make pyfiles importable in the session's Python workers; how it was done."""
    if manifest.sha256(pyfiles) != sha256:
        raise JobError(f"{pyfiles} does not match its manifest's sha256")
    local = Path(tempfile.gettempdir()) / "agent-jobs-pyfiles" / f"pyfiles-{sha256[:16]}.zip"
    if not local.exists():
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(f".{local.name}.{os.getpid()}")
        shutil.copyfile(pyfiles, partial)
        os.replace(partial, local)
    if is_connect(spark):
        spark.addArtifacts(str(local), pyfile=True)
        return "addArtifacts"
    spark.sparkContext.addPyFile(str(local))
    return "addPyFile"


def import_on_workers(spark: Any, modules: list[str], tasks: int, via_udf: bool | None = None) -> list[dict[str, Any]]:
    """One result per Spark task: {"worker": "host/pid", "results": {module: "ok" or error}}.

    A classic session runs an RDD of `tasks` partitions; Spark Connect (no RDDs) a Python UDF over a range
    of `tasks` partitions. `probe` is a nested function so cloudpickle ships it by value: the workers need
    nothing of this package to run it."""

    def probe(_: object) -> str:
        import importlib as imp
        import json as js
        import os as o
        import socket

        out = {}
        for name in modules:
            try:
                imp.import_module(name)
                out[name] = "ok"
            except (Exception, SystemExit) as exc:
                out[name] = f"{type(exc).__name__}: {exc}"[:300]
        return js.dumps({"worker": f"{socket.gethostname()}/{o.getpid()}", "results": out})

    if via_udf is None:
        via_udf = is_connect(spark)
    try:
        if via_udf:
            from pyspark.sql.functions import udf
            from pyspark.sql.types import StringType

            rows = spark.range(0, tasks, 1, tasks).select(udf(probe, StringType())("id").alias("r")).collect()
            raw = [row["r"] for row in rows]
        else:
            raw = spark.sparkContext.parallelize(range(tasks), tasks).map(probe).collect()
    except Exception as exc:
        raise JobError(f"the import check on the workers could not run: {_error_text(exc)}") from None
    return [json.loads(r) for r in raw]


def summarize_workers(results: list[dict[str, Any]], modules: list[str]) -> dict[str, str]:
    summary = {}
    for module in modules:
        errors = [r["results"].get(module, "not checked") for r in results]
        failed = [e for e in errors if e != "ok"]
        if not failed:
            summary[module] = f"ok ({len(errors)} of {len(errors)} tasks)"
        else:
            summary[module] = f"{len(failed)} of {len(errors)} tasks: {'; '.join(sorted(set(failed)))}"
    return summary


def _failure_message(report: Report, data: dict[str, Any]) -> str | None:
    native = {m: w["file"] for w in data["wheels"] if not w["pure"] for m in w["modules"]}
    problems = [f"{m} on the driver ({err})" for m, err in report.driver.items() if err != "ok"]
    for module, summary in report.workers.items():
        if not summary.startswith("ok"):
            hint = ""
            if module in native:
                hint = (
                    f"; it comes from {native[module]}, which is not pure Python: a .zip cannot carry it to the "
                    "workers, so install it as a cluster or task library"
                )
            problems.append(f"{module} on the workers ({summary}{hint})")
    if not problems:
        return None
    return f"{len(problems)} import(s) failed: " + "; ".join(problems)


def verify(
    wheelhouse: Path,
    tasks: int = 4,
    spark_mode: str = "auto",
    target: Path | None = None,
    expect: tuple[str, ...] = (),
    spark: Any = None,
) -> Report:
    """Steps 1-4 of the module docstring; raises a JobError when any import fails. `spark` overrides the
    session lookup (tests pass theirs)."""
    house = locate(wheelhouse.absolute())
    # pip runs in a temporary directory: a relative --target would land there, not here.
    target = target.absolute() if target is not None else None
    report = Report()
    result_path = house.parent / RESULT
    try:
        data = manifest.load(house.parent / manifest.MANIFEST)
        modules: list[str] = data["modules"]
        missing = [m for m in expect if m not in modules]
        if missing:
            raise JobError(
                f"the manifest lists no module {', '.join(missing)} (expected); it lists {', '.join(modules) or 'none'}"
            )
        install(house, data, target)
        report.driver = import_here(modules, target)
        session = spark if spark is not None else find_session(spark_mode)
        if session is not None:
            report.spark = "connect" if is_connect(session) else "classic"
            if data["pyfiles"] is not None:
                report.shipped_with = ship(session, house.parent / manifest.PYFILES, data["pyfiles"]["sha256"])
            report.workers = summarize_workers(import_on_workers(session, modules, tasks), modules)
        message = _failure_message(report, data)
        if message:
            raise JobError(message)
        report.status = "succeeded"
        log.info("verified %d module(s) on the driver%s", len(modules), " and the workers" if report.workers else "")
        return report
    except JobError as exc:
        report.error = str(exc)
        raise
    except BaseException as exc:
        report.error = _error_text(exc)
        raise
    finally:
        try:
            write_json(result_path, report.__dict__)
        except OSError as exc:
            log.error("cannot write %s: %s", result_path, exc)
