"""deps-wheelhouse verify against a real local Spark (pyspark 3.5, the Spark of DBR 14.3, in local[2] mode).

Its Python workers are separate processes that do not see what the driver installed into `--target`: a
module reaches them only if verify ships it (`addPyFile` of the pyfiles zip), so these tests fail if the
shipping does not work. The session's workers are reused, so each test uses modules no other test ships.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from wheelhouse_support import NATIVE_TAGS, Processed, offline, read_json

from agent_jobs.errors import JobError
from agent_jobs.wheelhouse import manifest
from agent_jobs.wheelhouse.build import process
from agent_jobs.wheelhouse.verify import import_on_workers, install, ship, verify
from agent_jobs.wheelhouse.wheels import Target

pytest_plugins = ["wheelhouse_fixtures"]
# Spark and the processed wheelhouses: one xdist worker runs this group (--dist loadgroup), so one JVM starts
# and the fixtures are processed once.
pytestmark = [pytest.mark.usefixtures("isolated_imports"), pytest.mark.xdist_group("spark")]

TASKS = 2


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local[2] Spark for the session (the JVM takes seconds to start); workers run this Python."""
    from pyspark.sql import SparkSession

    with pytest.MonkeyPatch.context() as env:
        env.setenv("PYSPARK_PYTHON", sys.executable)
        env.setenv("PYSPARK_DRIVER_PYTHON", sys.executable)
        session = (
            SparkSession.builder.master(f"local[{TASKS}]")
            .appName("deps-wheelhouse-tests")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", str(TASKS))
            .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))  # not in the cwd
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        yield session
        session.stop()


def copy_house(result: Processed, directory: Path) -> Path:
    directory.mkdir()
    for name in (manifest.WHEELHOUSE, manifest.MANIFEST, manifest.PYFILES):
        if (result.output / name).exists():
            shutil.copyfile(result.output / name, directory / name)
    return directory / manifest.WHEELHOUSE


def test_verify_ships_pure_python_to_the_workers_with_add_py_file(
    spark: Any, processed: dict[str, Processed], tmp_path: Path
) -> None:
    """The dedicated-cluster path: the pyfiles zip goes to the workers with addPyFile and every module
    imports in every task; verify.json records how and where."""
    house = copy_house(processed["pure_python"], tmp_path / "wh")
    report = verify(house, tasks=TASKS, target=tmp_path / "site", expect=("wh_calculator", "wh_helpers"), spark=spark)
    assert report.spark == "classic" and report.shipped_with == "addPyFile"
    assert report.driver == {"wh_calculator": "ok", "wh_helpers": "ok"}
    assert report.workers == {"wh_calculator": "ok (2 of 2 tasks)", "wh_helpers": "ok (2 of 2 tasks)"}
    result = read_json(house.parent / "verify.json")
    assert result["status"] == "succeeded" and result["workers"] == report.workers


def test_a_module_the_driver_has_fails_on_the_workers_until_it_is_shipped(
    spark: Any, processed: dict[str, Processed], tmp_path: Path
) -> None:
    """Installing on the driver is not enough (seed 004's lesson): unshipped, the workers cannot import it;
    shipped, they can, also through the Python-UDF probe that Spark Connect sessions use."""
    house = copy_house(processed["packaged"], tmp_path / "wh")
    data = manifest.load(house.parent / manifest.MANIFEST)
    install(house, data, tmp_path / "site")
    sys.path.insert(0, str(tmp_path / "site"))
    __import__("wh_packaged")  # the driver has it
    before = import_on_workers(spark, ["wh_packaged"], TASKS)
    assert len(before) == TASKS
    assert all(r["results"]["wh_packaged"] == "ModuleNotFoundError: No module named 'wh_packaged'" for r in before)
    assert ship(spark, house.parent / manifest.PYFILES, data["pyfiles"]["sha256"]) == "addPyFile"
    after = import_on_workers(spark, ["wh_packaged"], TASKS, via_udf=True)
    assert [r["results"] for r in after] == [{"wh_packaged": "ok"}] * TASKS


def test_verify_names_each_module_that_fails_on_the_workers(spark: Any, find_links: Path, tmp_path: Path) -> None:
    """A native wheel cannot travel in a zip: verify installs it on the driver, ships the pure part, and
    raises naming the module, where it failed, the error, and what to do; verify.json says failed."""
    source = tmp_path / "input"
    source.mkdir()
    (source / "wh_spark_probe.py").write_text("VALUE = 7\n")
    (source / "requirements.txt").write_text("wh-native==1.0\n")
    out = tmp_path / "runs" / "5" / "wh"
    # Built for this Python (3.11), so the driver here can install the platform-tagged wheel.
    data = process(source, out, offline(find_links, Target("3.11")))
    assert data["shape"] == "mixed"
    native = f"wh_native-1.0-{NATIVE_TAGS[1]}.whl"
    with pytest.raises(JobError) as exc:
        verify(out, tasks=TASKS, target=tmp_path / "site", spark=spark)
    message = str(exc.value)
    assert message.startswith("1 import(s) failed: wh_native on the workers (2 of 2 tasks: ")
    assert "ModuleNotFoundError: No module named 'wh_native'" in message
    assert f"it comes from {native}, which is not pure Python" in message
    assert "install it as a cluster or task library" in message
    result = read_json(out / "verify.json")
    assert result["status"] == "failed" and result["error"] == message
    assert result["driver"] == {"wh_native": "ok", "wh_spark_probe": "ok"}
    assert result["workers"]["wh_spark_probe"] == "ok (2 of 2 tasks)"
