"""The evaluation dataset the setup job's sanity evaluation and the deployment gate score the agent on.

The records ship in the wheel (evaluation_records.json): realistic questions in each of the five health
domains, with expected facts and guidelines for the judges. They are merged into an MLflow evaluation
dataset (on Databricks a Unity Catalog table, <catalog>.<schema>.evaluation_dataset). MLflow merges records
by their inputs, so rerunning the task updates the records in place instead of adding duplicates.
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from typing import Any

from agent_jobs.errors import JobError

log = logging.getLogger(__name__)

DOMAINS: tuple[str, ...] = ("cost", "security", "performance", "reliability", "quality")


def evaluation_records() -> list[dict[str, Any]]:
    """The shipped records: {"inputs": {"query": ...}, "expectations": {"expected_facts": [...],
    "guidelines": [...]}, "tags": {"domain": ...}}."""
    text = resources.files("agent_jobs.health_monitor").joinpath("evaluation_records.json").read_text(encoding="utf-8")
    records: list[dict[str, Any]] = json.loads(text)
    return records


def _missing(exc: Exception) -> bool:
    """Whether reading a dataset failed because there is none (MLflow's and Databricks' wordings)."""
    code = str(getattr(exc, "error_code", "") or "")
    text = str(exc).lower()
    return "NOT_FOUND" in code or "DOES_NOT_EXIST" in code or "not found" in text or "does not exist" in text


def _existing(name: str) -> Any:
    """The dataset called `name`, or None when there is none."""
    from mlflow.genai.datasets import get_dataset

    try:
        return get_dataset(name=name)
    except Exception as exc:  # MlflowException locally; databricks-agents raises its own types
        if not _missing(exc):
            raise JobError(f"cannot read evaluation dataset {name}: {exc}") from exc
        log.info("evaluation dataset %s not found (%s); creating it", name, exc)
        return None


def create_evaluation_dataset(name: str, experiment_id: str) -> str:
    """Create the dataset `name` in the experiment unless it exists, and merge the shipped records into it.
    Returns the dataset's id."""
    from mlflow.genai.datasets import create_dataset

    dataset = _existing(name)
    if dataset is None:
        try:
            dataset = create_dataset(name=name, experiment_id=experiment_id)
        except Exception as exc:
            raise JobError(f"cannot create evaluation dataset {name} in experiment {experiment_id}: {exc}") from exc
        log.info("created evaluation dataset %s (%s)", name, dataset.dataset_id)
    else:
        log.info("evaluation dataset %s exists (%s)", name, dataset.dataset_id)
    records = evaluation_records()
    try:
        dataset.merge_records(records)
    except Exception as exc:
        raise JobError(f"cannot add records to evaluation dataset {name}: {exc}") from exc
    log.info("merged %d records into %s (existing inputs are updated, not duplicated)", len(records), name)
    return str(dataset.dataset_id)


def evaluation_data(name: str) -> Any:
    """What evaluations score: the registered dataset `name` (create_evaluation_datasets' result, edited in
    the workspace as needed) when it exists, else the shipped records."""
    dataset = _existing(name)
    if dataset is None:
        log.warning("evaluation dataset %s not found; evaluating the %d records shipped with the wheel", name,
                    len(evaluation_records()))  # fmt: skip
        return evaluation_records()
    log.info("evaluating on dataset %s", name)
    return dataset
