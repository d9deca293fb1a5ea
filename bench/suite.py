"""`make bench`: the wall time of the test suite as `make test` runs it (lint, types, workflows, every test),
the wall time of a bare `python -c "import pulumi_databricks"`, and their ratio.

The machine may be shared: the CPU time (user+sys of everything started) and the load average before and after
are printed too, so a slow run on a busy machine can be told from a slow suite.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user+sys of the process and its children) and exit status of one run."""
    cpu, start = children_cpu(), time.perf_counter()
    status = subprocess.run(argv, cwd=ROOT, check=False).returncode
    return time.perf_counter() - start, children_cpu() - cpu, status


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    print(f"cores: {os.cpu_count()}, load average (1, 5, 15 min) before: {load()}", flush=True)
    imports = [timed([str(PYTHON), "-c", "import pulumi_databricks"]) for _ in range(3)]
    import_wall, import_cpu, _ = min(imports)
    suite_wall, suite_cpu, status = timed(["make", "--no-print-directory", "test"])
    print(f"load average after: {load()}")
    rows = [
        ('python -c "import pulumi_databricks"', f"{import_wall:6.2f} s", f"{import_cpu:7.2f} s", "best of 3"),
        ("make test", f"{suite_wall:6.2f} s", f"{suite_cpu:7.2f} s", f"exit status {status}"),
        ("ratio (suite / import)", f"{suite_wall / import_wall:6.1f}  ", f"{suite_cpu / import_cpu:7.1f}  ", ""),
    ]
    print(f"{'':38} {'wall':>8} {'CPU':>9}")
    for name, wall, cpu, note in rows:
        print(f"{name:38} {wall:>8} {cpu:>9}  {note}".rstrip())
    return status


if __name__ == "__main__":
    sys.exit(main())
