"""Decide a trigger's sql_condition gate from its query's result (reference §1.5). Pure.

- QUERY_RETURNS_ROWS: satisfied when the query returned at least one row.
- RESULT_VALUE_CHANGES: the result must be one row of one column; satisfied when its value
  differs from the last evaluation's. The first evaluation (no last value kept) only stores the
  value as the baseline and does not fire: the SDK's documented behaviour, which wins over the
  reference's "first evaluation always fires".
  A NULL is a value like any other: 4 -> NULL is a change. Values are compared in their JSON form
  (the form they are kept in), so 4 and 4.0 are the same value, as in SQL.
"""

import json
from dataclasses import dataclass
from typing import Any

RETURNS_ROWS = "QUERY_RETURNS_ROWS"
VALUE_CHANGES = "RESULT_VALUE_CHANGES"
LAST_VALUE = "last_value"  # our key in the trigger's condition state
MAX_SHOWN_VALUE_CHARS = 80


@dataclass(frozen=True)
class Verdict:
    satisfied: bool
    reason: str
    value: Any = None  # RESULT_VALUE_CHANGES: the value to keep for the next evaluation
    error: str | None = None  # the result cannot be judged (not 1x1): nothing to keep


def condition_verdict(mode: str, result: dict, previous_state: dict | None) -> Verdict:
    """`result`: {"columns", "rows" (JSON-safe dicts), "row_count_shown", "truncated"} of the query
    (runs/executors/sql.py's preview); `previous_state`: the last evaluation's kept state."""
    rows, truncated = result["row_count_shown"], result["truncated"]
    if mode == VALUE_CHANGES:
        return _value_verdict(result, previous_state or {})
    if rows == 0 and not truncated:
        return Verdict(False, "the query returned no rows")
    return Verdict(True, f"the query returned {'at least ' if truncated else ''}{_rows(max(rows, 1))}")


def _value_verdict(result: dict, previous_state: dict) -> Verdict:
    columns, rows = result["columns"], result["rows"]
    if len(columns) != 1 or len(rows) != 1 or result["truncated"]:
        shape = (f"{'at least ' if result['truncated'] else ''}{_rows(max(len(rows), int(result['truncated'])))} "
                 f"of {len(columns)} column{'s' if len(columns) != 1 else ''}")
        message = f"RESULT_VALUE_CHANGES needs a result of one row and one column; the query returned {shape}"
        return Verdict(False, message, error=message)
    value = rows[0][columns[0]]
    if LAST_VALUE not in previous_state:
        return Verdict(False, f"the first evaluation keeps the value {shown(value)} as the baseline", value)
    last = previous_state[LAST_VALUE]
    if _same(value, last):
        return Verdict(False, f"the value is still {shown(value)}", value)
    return Verdict(True, f"the value changed from {shown(last)} to {shown(value)}", value)


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return a == b
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _rows(n: int) -> str:
    return f"{n:,} row{'s' if n != 1 else ''}"


def shown(value) -> str:
    """A value as the trigger history shows it: NULL, 4, "text", shortened past 80 characters."""
    text = "NULL" if value is None else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_SHOWN_VALUE_CHARS else text[:MAX_SHOWN_VALUE_CHARS - 3] + "..."
