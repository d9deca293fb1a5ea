"""The optimiser's training examples: read from a Delta table through a SQL warehouse (the Statement Execution
API) or the job's Spark session, pinned to one snapshot, checked, and split.

The table has one row per example: the agent it is for, the agent's input and the expected answer (column
names are options). The Delta version read is recorded (`DESCRIBE HISTORY`, then `VERSION AS OF` that
version, so the data cannot change under the run) together with a SHA-256 of the rows, so a promoted prompt
says exactly what it was trained on. Everything wrong with the data (no table, missing columns, empty, too
few examples for an agent, empty values, an agent name that cannot be a file name, too many rows) is a
`DataError` before anything is optimised or written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from agent_jobs.errors import JobError

log = logging.getLogger("agent_jobs.prompt_optimizer")

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,254}$")
COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
AGENT = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # becomes a file name in the prompts volume
MAX_FIELD = 100_000  # characters of one input or expected answer


class DataError(JobError):
    """The training data cannot be used; nothing was optimised or written."""


def quote_table(full_name: str) -> str:
    parts = full_name.split(".")
    if len(parts) != 3 or not all(_IDENTIFIER.match(p) for p in parts):
        raise ValueError(f"{full_name!r} is not a table's full name (catalog.schema.table)")
    return ".".join(f"`{p}`" for p in parts)


@dataclass(frozen=True)
class Columns:
    agent: str = "agent_name"
    input: str = "input"
    expected: str = "expected"

    def names(self) -> tuple[str, str, str]:
        return (self.agent, self.input, self.expected)


@dataclass(frozen=True)
class Example:
    agent: str
    input: str
    expected: str

    @property
    def key(self) -> str:
        """A stable id of the example (its content's hash): the split and the logs use it, not the text."""
        text = json.dumps([self.agent, self.input, self.expected], ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class TrainingData:
    table: str
    version: int | None  # the Delta version read; None when the table has no history (not Delta)
    rows_sha256: str
    examples: dict[str, list[Example]]

    @property
    def snapshot(self) -> dict[str, Any]:
        return {"table": self.table, "version": self.version, "rows_sha256": self.rows_sha256,
                "rows": sum(len(v) for v in self.examples.values())}  # fmt: skip


class TableReader(Protocol):
    def query(self, statement: str) -> tuple[list[str], list[list[Any]]]: ...


class SparkReader:
    """Through the job's Spark session (serverless or a cluster)."""

    def __init__(self, spark: Any) -> None:
        self.spark = spark

    def query(self, statement: str) -> tuple[list[str], list[list[Any]]]:
        frame = self.spark.sql(statement)
        return list(frame.columns), [list(row) for row in frame.collect()]


class WarehouseReader:
    """Through a SQL warehouse with the Statement Execution API (inline JSON results, every chunk), waiting
    for a slow statement at most `timeout_s`; `sleep` is injectable so tests never wait for real."""

    TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "CLOSED")

    def __init__(
        self,
        client: Any,
        warehouse_id: str,
        *,
        timeout_s: float = 600.0,
        poll_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client, self.warehouse_id = client, warehouse_id
        self.timeout_s, self.poll_s, self.sleep, self.clock = timeout_s, poll_s, sleep, clock

    def query(self, statement: str) -> tuple[list[str], list[list[Any]]]:
        from databricks.sdk.service.sql import Disposition, Format

        api = self.client.statement_execution
        response = api.execute_statement(
            statement=statement, warehouse_id=self.warehouse_id, wait_timeout="30s",
            disposition=Disposition.INLINE, format=Format.JSON_ARRAY,
        )  # fmt: skip
        deadline = self.clock() + self.timeout_s
        while _state(response) not in self.TERMINAL:
            if self.clock() >= deadline:
                api.cancel_execution(response.statement_id)
                raise JobError(
                    f"SQL statement still {_state(response)} after {self.timeout_s:.0f} s: {statement[:120]}"
                )
            self.sleep(self.poll_s)
            response = api.get_statement(response.statement_id)
        if _state(response) != "SUCCEEDED":
            error = getattr(response.status, "error", None)
            raise JobError(f"SQL statement {_state(response)}: {getattr(error, 'message', error)}: {statement[:120]}")
        columns = [c.name for c in (response.manifest.schema.columns or [])]
        rows = list(response.result.data_array or []) if response.result else []
        chunks = response.manifest.total_chunk_count or 1
        for index in range(1, chunks):
            rows += list(api.get_statement_result_chunk_n(response.statement_id, index).data_array or [])
        return columns, rows


def _state(response: Any) -> str:
    return str(getattr(getattr(response.status, "state", None), "value", None))


def load(reader: TableReader, table: str, columns: Columns, max_rows: int) -> TrainingData:
    """Read one snapshot of the table; refuse unusable data with one message saying what is wrong."""
    quoted = quote_table(table)
    version = _delta_version(reader, quoted)
    source = f"{quoted} VERSION AS OF {version}" if version is not None else quoted
    try:
        names, rows = reader.query(f"SELECT * FROM {source} LIMIT {max_rows + 1}")
    except JobError as exc:
        raise DataError(f"cannot read the training table {table}: {exc}") from None
    except Exception as exc:  # Spark's AnalysisException and friends: a missing table, no permission
        raise DataError(f"cannot read the training table {table}: {_first_line(exc)}") from None
    missing = [c for c in columns.names() if c not in names]
    if missing:
        raise DataError(
            f"training table {table} lacks the column(s) {', '.join(missing)}; it needs "
            f"{', '.join(columns.names())} (has: {', '.join(names) or 'none'})"
        )
    if not rows:
        raise DataError(f"training table {table} is empty")
    if len(rows) > max_rows:
        raise DataError(
            f"training table {table} has more than {max_rows} rows; raise --max-examples or use a smaller table"
        )
    index = [names.index(c) for c in columns.names()]
    examples: dict[str, list[Example]] = {}
    problems: list[str] = []
    for number, row in enumerate(rows, 1):
        agent, text, expected = (_text(row[i]) for i in index)
        if not agent or not text or not expected:
            problems.append(f"row {number}: an empty {columns.agent}, {columns.input} or {columns.expected}")
        elif not AGENT.match(agent):
            problems.append(f"row {number}: agent {agent[:40]!r} is not an agent name (a-z, 0-9, _; 64 at most)")
        elif max(len(text), len(expected)) > MAX_FIELD:
            problems.append(f"row {number}: an input or expected answer longer than {MAX_FIELD} characters")
        else:
            examples.setdefault(agent, []).append(Example(agent, text, expected))
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise DataError(f"training table {table}: {'; '.join(problems[:3])}{more}")
    digest = hashlib.sha256()
    for key in sorted(e.key for group in examples.values() for e in group):
        digest.update(key.encode())
    data = TrainingData(table, version, digest.hexdigest(), examples)
    log.info("training data: %s", data.snapshot)
    return data


def _delta_version(reader: TableReader, quoted: str) -> int | None:
    try:
        names, rows = reader.query(f"DESCRIBE HISTORY {quoted} LIMIT 1")
        return int(rows[0][names.index("version")])
    except Exception as exc:
        log.warning("no Delta history for %s (%s): the rows' hash identifies the data", quoted, _first_line(exc))
        return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return value.strip() if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def check_sizes(data: TrainingData, agents: Sequence[str], min_examples: int) -> None:
    """Every agent to optimise has at least `min_examples` examples (holdout and training both need some)."""
    short = {a: len(data.examples.get(a, [])) for a in agents if len(data.examples.get(a, [])) < min_examples}
    if short:
        counts = ", ".join(f"{a}: {n}" for a, n in sorted(short.items()))
        raise DataError(f"too few examples in {data.table} (at least {min_examples} per agent are needed): {counts}")


def split(examples: Sequence[Example], holdout_fraction: float) -> tuple[list[Example], list[Example]]:
    """A deterministic split by the examples' hashes: the same data always gives the same holdout, and a new
    row does not move the others. Both parts get at least one example (of at least two)."""
    ordered = sorted(examples, key=lambda e: e.key)
    holdout = [e for e in ordered if int(e.key[:16], 16) / 2**64 < holdout_fraction]
    train = [e for e in ordered if int(e.key[:16], 16) / 2**64 >= holdout_fraction]
    if not holdout:
        holdout, train = train[:1], train[1:]
    elif not train:
        holdout, train = holdout[:-1], holdout[-1:]
    return train, holdout
