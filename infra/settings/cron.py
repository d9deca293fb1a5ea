"""The Quartz cron expressions of job schedules, checked field by field as the Jobs API reads them."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

_MONTHS = {
    m: i for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1)
}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], 1)}
_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("seconds", 0, 59, {}),
    ("minutes", 0, 59, {}),
    ("hours", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 1, 7, _DAYS),
    ("year", 1970, 2199, {}),
)
_CRON_ALLOWED = (
    "a Quartz cron expression with 6 or 7 fields (seconds minutes hours day-of-month month day-of-week "
    "[year]), exactly one of day-of-month and day-of-week being ?, like '0 0 6 * * ?'"
)


def _cron_item(item: str, field: str, low: int, high: int, names: dict[str, int]) -> str | None:
    """What is wrong with one comma-separated item of a cron field, or None."""
    if item == "*" or (item == "?" and field in ("day-of-month", "day-of-week")):
        return None
    if field == "day-of-month" and re.fullmatch(r"L(-\d{1,2})?|LW|\d{1,2}W", item):
        return None
    if field == "day-of-week" and re.fullmatch(r"[1-7A-Z]{1,3}(L|#[1-5])", item):
        item = re.sub(r"(L|#[1-5])$", "", item)
    base, _, step = item.partition("/")
    if step and (not step.isdigit() or not 1 <= int(step) <= high):
        return f"has an invalid step '/{step}' in the {field} field (allowed: 1-{high})"
    for value in [] if base == "*" else base.split("-", 1):
        number = names.get(value.upper()) if not value.isdigit() else int(value)
        if number is None or not low <= number <= high:
            named = f" or {', '.join(names)}" if names else ""
            return f"has '{value}' in the {field} field (allowed: {low}-{high}{named})"
    return None


def _quartz_cron(value: str) -> str:
    fields = value.split()
    problem = None
    if len(fields) not in (6, 7):
        problem = f"has {len(fields)} fields"
    else:
        for text, (field, low, high, names) in zip(fields, _CRON_FIELDS, strict=False):
            problem = next(filter(None, (_cron_item(i, field, low, high, names) for i in text.split(","))), None)
            if problem:
                break
        if problem is None and (fields[3] == "?") == (fields[5] == "?"):
            problem = "must have ? in exactly one of day-of-month and day-of-week"
    if problem:
        raise PydanticCustomError(
            "invalid_value", "{problem}; allowed: {allowed}", {"problem": problem, "allowed": _CRON_ALLOWED}
        )
    return value


QuartzCron = Annotated[str, AfterValidator(_quartz_cron)]
