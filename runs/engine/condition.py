"""If/else condition tasks: compare two resolved operands (reference §2.4). Pure.

EQUAL_TO and NOT_EQUAL compare the text ("12.0" is not "12"); the ordering operators compare
numbers ("12.0" >= "12"), and an operand that is not a number fails the task.
"""

import math

STRING_OPS = {"EQUAL_TO": lambda a, b: a == b, "NOT_EQUAL": lambda a, b: a != b}
NUMERIC_OPS = {
    "GREATER_THAN": lambda a, b: a > b,
    "GREATER_THAN_OR_EQUAL": lambda a, b: a >= b,
    "LESS_THAN": lambda a, b: a < b,
    "LESS_THAN_OR_EQUAL": lambda a, b: a <= b,
}


class ConditionError(ValueError):
    """The condition cannot be evaluated; the message says which operand and why."""


def _number(side, text, op):
    try:
        value = float(text.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConditionError(f"{op} compares numbers, but the {side} operand {text!r} is not a number")
    return value


def evaluate_condition(op: str, left: str, right: str) -> bool:
    """The condition's outcome for the resolved operands."""
    if op in STRING_OPS:
        return STRING_OPS[op](left, right)
    if op in NUMERIC_OPS:
        return NUMERIC_OPS[op](_number("left", left, op), _number("right", right, op))
    raise ConditionError(f"Unknown condition op {op!r}; use one of {', '.join([*STRING_OPS, *NUMERIC_OPS])}")


def outcome_text(value: bool) -> str:
    """The task run's `outcome` and what depends_on[].outcome matches against."""
    return "true" if value else "false"
