"""Dynamic value references: ``{{ job.id }}``, ``{{tasks.a.values.x}}``, ``{{input}}``.

Pure string substitution, as in Databricks: no expressions, and anything that is
not well formed or not known stays in the text exactly as written. Times come in
through the context (never ``now()``) and are always rendered in UTC.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

_SEGMENT = r"(?:[A-Za-z0-9_]+|`[^`{}\n]+`)"
_REFERENCE = re.compile(r"\{\{[ \t]*(" + _SEGMENT + r"(?:\." + _SEGMENT + r")*)[ \t]*\}\}")
_SEGMENT_PART = re.compile(r"[A-Za-z0-9_]+|`([^`{}\n]+)`")

TIME_ARGS = (
    "iso_weekday", "is_weekday", "iso_date", "iso_datetime",
    "year", "month", "day", "hour", "minute", "second", "timestamp_ms",
)
BACKFILL_ARGS = ("iso_date", "iso_datetime", "year", "month", "day")
JOB_FIELDS = ("id", "name", "run_id", "repair_count", "start_time", "trigger", "parameters")
TRIGGER_FIELDS = ("time", "type", "file_arrival", "table_update")
TASK_FIELDS = ("name", "run_id", "execution_count", "notebook_path")
TASKS_FIELDS = ("run_id", "result_state", "error_code", "execution_count", "values", "output")
OUTPUT_FIELDS = ("rows", "first_row")
WORKSPACE_FIELDS = ("id", "url")
# Deprecated single-name references, kept because old job definitions still use them.
LEGACY_NAMES = (
    "job_id", "run_id", "start_date", "start_time", "task_retry_count", "parent_run_id", "task_key",
)
NAMESPACES = ("job", "task", "tasks", "workspace", "backfill", "input") + LEGACY_NAMES

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Reference:
    text: str  # the whole reference as written, e.g. "{{ job.id }}"
    path: tuple[str, ...]  # ("job", "id"); backticks removed
    start: int
    end: int


def find_references(text: str) -> list[Reference]:
    """Every well-formed ``{{ dotted.path }}`` in `text`, in order."""
    if "{{" not in text:
        return []
    found = []
    for match in _REFERENCE.finditer(text):
        path = tuple(
            part.group(1) if part.group(1) is not None else part.group(0)
            for part in _SEGMENT_PART.finditer(match.group(1))
        )
        found.append(Reference(match.group(0), path, match.start(), match.end()))
    return found


class _NotInForEach:
    def __repr__(self) -> str:
        return "NOT_IN_FOR_EACH"


NOT_IN_FOR_EACH: Any = _NotInForEach()


@dataclass
class ReferenceContext:
    """What is known when a task's parameters are resolved; None means unknown.

    `tasks` maps task_key to a dict with any of: run_id, result_state,
    error_code, execution_count, values (dict), output ({"rows": [...],
    "first_row": {...}}; first_row defaults to rows[0]).
    `table_update` is {"updated_tables": [names], "tables": {name:
    {"commit_timestamp": aware datetime, "version": int}}}.
    """

    job_id: int | None = None
    job_name: str | None = None
    run_id: int | None = None  # the job run
    repair_count: int = 0
    start_time: datetime | None = None
    trigger_time: datetime | None = None
    trigger_type: str | None = None
    job_parameters: dict[str, str] = field(default_factory=dict)
    task_name: str | None = None
    task_run_id: int | None = None
    task_execution_count: int = 1
    task_notebook_path: str | None = None
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    workspace_id: int | str | None = None
    workspace_url: str | None = None
    input: Any = NOT_IN_FOR_EACH
    file_arrival_location: str | None = None
    table_update: dict[str, Any] | None = None
    backfill_time: datetime | None = None  # start of the backfill window


_MISSING = object()


def as_text(value: Any) -> str:
    """How a resolved value appears in a parameter string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _time_arg(moment: datetime | None, arg: str) -> Any:
    if moment is None or arg not in TIME_ARGS:
        return _MISSING
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    if arg == "iso_weekday":
        return moment.isoweekday()
    if arg == "is_weekday":
        return moment.isoweekday() <= 5
    if arg == "iso_date":
        return moment.strftime("%Y-%m-%d")
    if arg == "iso_datetime":
        return moment.strftime("%Y-%m-%dT%H:%M:%S")
    if arg == "timestamp_ms":
        return (moment - _EPOCH) // timedelta(milliseconds=1)
    return getattr(moment, arg)


def _dig(value: Any, fields: tuple[str, ...]) -> Any:
    for name in fields:
        if not isinstance(value, dict) or name not in value:
            return _MISSING
        value = value[name]
    return value


def _known(value: Any) -> Any:
    return _MISSING if value is None else value


def _job_value(rest: tuple[str, ...], ctx: ReferenceContext) -> Any:
    simple = {"id": ctx.job_id, "name": ctx.job_name, "run_id": ctx.run_id,
              "repair_count": ctx.repair_count}
    if len(rest) == 1 and rest[0] in simple:
        return _known(simple[rest[0]])
    if len(rest) == 2 and rest[0] == "start_time":
        return _time_arg(ctx.start_time, rest[1])
    if len(rest) == 2 and rest[0] == "parameters":
        return ctx.job_parameters.get(rest[1], _MISSING)
    if len(rest) >= 2 and rest[0] == "trigger":
        return _trigger_value(rest[1:], ctx)
    return _MISSING


def _trigger_value(rest: tuple[str, ...], ctx: ReferenceContext) -> Any:
    if rest == ("type",):
        return _known(ctx.trigger_type)
    if len(rest) == 2 and rest[0] == "time":
        return _time_arg(ctx.trigger_time, rest[1])
    if rest == ("file_arrival", "location"):
        return _known(ctx.file_arrival_location)
    if rest[0] == "table_update" and ctx.table_update is not None:
        update = ctx.table_update
        if rest[1:] == ("updated_tables",):
            return update.get("updated_tables", _MISSING)
        table, attribute = _split_table_reference(rest[1:])
        facts = (update.get("tables") or {}).get(table)
        if table is None or not isinstance(facts, dict):
            return _MISSING
        if attribute == ("version",):
            return facts.get("version", _MISSING)
        return _time_arg(facts.get("commit_timestamp"), attribute[1])
    return _MISSING


def _split_table_reference(rest: tuple[str, ...]) -> tuple[str | None, tuple[str, ...]]:
    """``cat.sch.tbl.version`` -> ("cat.sch.tbl", ("version",)); the name may be one backticked segment."""
    if len(rest) >= 2 and rest[-1] == "version":
        return ".".join(rest[:-1]), rest[-1:]
    if len(rest) >= 3 and rest[-2] == "commit_timestamp":
        return ".".join(rest[:-2]), rest[-2:]
    return None, ()


def _tasks_value(rest: tuple[str, ...], ctx: ReferenceContext) -> Any:
    if len(rest) < 2 or rest[0] not in ctx.tasks:
        return _MISSING
    facts, name, more = ctx.tasks[rest[0]], rest[1], rest[2:]
    if name in ("run_id", "result_state", "error_code", "execution_count"):
        return facts.get(name, _MISSING) if not more else _MISSING
    if name == "values" and more:
        return _dig(facts.get("values"), more)
    if name == "output" and more:
        output = facts.get("output")
        if not isinstance(output, dict):
            return _MISSING
        if more == ("rows",):
            return output.get("rows", _MISSING)
        if more[0] == "first_row":
            first = output.get("first_row", _MISSING)
            if first is _MISSING and isinstance(output.get("rows"), list) and output["rows"]:
                first = output["rows"][0]
            return first if len(more) == 1 else _dig(first, more[1:])
    return _MISSING


def _value(path: tuple[str, ...], ctx: ReferenceContext) -> Any:
    head, rest = path[0], path[1:]
    if head == "job":
        return _job_value(rest, ctx)
    if head == "task":
        fields = {"name": ctx.task_name, "run_id": ctx.task_run_id,
                  "execution_count": ctx.task_execution_count,
                  "notebook_path": ctx.task_notebook_path}
        return _known(fields.get(rest[0])) if len(rest) == 1 else _MISSING
    if head == "tasks":
        return _tasks_value(rest, ctx)
    if head == "workspace" and len(rest) == 1:
        return _known({"id": ctx.workspace_id, "url": ctx.workspace_url}.get(rest[0]))
    if head == "backfill" and len(rest) == 1 and rest[0] in BACKFILL_ARGS:
        return _time_arg(ctx.backfill_time, rest[0])
    if head == "input":
        return _MISSING if ctx.input is NOT_IN_FOR_EACH else _dig(ctx.input, rest)
    if head in LEGACY_NAMES and not rest:
        return _legacy_value(head, ctx)
    return _MISSING


def _legacy_value(name: str, ctx: ReferenceContext) -> Any:
    # As in Databricks multi-task jobs: run_id is the task run, parent_run_id the job run.
    if name == "start_date":
        return _time_arg(ctx.start_time, "iso_date")
    if name == "start_time":
        return _time_arg(ctx.start_time, "timestamp_ms")
    return _known({
        "job_id": ctx.job_id,
        "run_id": ctx.task_run_id,
        "parent_run_id": ctx.run_id,
        "task_key": ctx.task_name,
        "task_retry_count": ctx.task_execution_count - 1,
    }[name])


def resolve(text: str, ctx: ReferenceContext) -> str:
    """`text` with every reference whose value is known replaced by that value."""
    pieces, last = [], 0
    for ref in find_references(text):
        value = _value(ref.path, ctx)
        if value is _MISSING:
            continue
        pieces.append(text[last:ref.start])
        pieces.append(as_text(value))
        last = ref.end
    pieces.append(text[last:])
    return "".join(pieces)


def value_text(ref: Reference, ctx: ReferenceContext) -> str | None:
    """The text `ref` resolves to, or None when its value is not known (it stays as written)."""
    value = _value(ref.path, ctx)
    return None if value is _MISSING else as_text(value)


# --- save-time check -------------------------------------------------------------


def _no_field(owner: str, name: str) -> str:
    return f"{owner} has no field '{name}'"


def _needs(owner: str, choices: tuple[str, ...]) -> str:
    return f"{owner} needs one of: {', '.join(choices)}"


def _time_problem(owner: str, rest: tuple[str, ...], args: tuple[str, ...] = TIME_ARGS) -> str | None:
    if not rest:
        return _needs(owner, args)
    if rest[0] not in args:
        return f"'{rest[0]}' is not a time argument of {owner}; use one of: {', '.join(args)}"
    if len(rest) > 1:
        return _no_field(f"{owner}.{rest[0]}", rest[1])
    return None


def _exact(owner: str, rest: tuple[str, ...], choices: tuple[str, ...]) -> str | None:
    """`rest` must be exactly one of `choices`."""
    if not rest:
        return _needs(owner, choices)
    if rest[0] not in choices:
        return _no_field(owner, rest[0])
    if len(rest) > 1:
        return _no_field(f"{owner}.{rest[0]}", rest[1])
    return None


def _job_problem(rest: tuple[str, ...], job_parameter_names: set[str]) -> str | None:
    if not rest or rest[0] not in JOB_FIELDS:
        return _exact("job", rest, JOB_FIELDS)
    name, more = rest[0], rest[1:]
    if name == "start_time":
        return _time_problem("job.start_time", more)
    if name == "parameters":
        if not more:
            return "job.parameters needs a parameter name"
        if more[0] not in job_parameter_names:
            return f"there is no job parameter '{more[0]}'"
        return _no_field(f"job.parameters.{more[0]}", more[1]) if len(more) > 1 else None
    if name == "trigger":
        return _trigger_problem(more)
    return _exact("job", rest, JOB_FIELDS)


def _trigger_problem(rest: tuple[str, ...]) -> str | None:
    if not rest or rest[0] not in TRIGGER_FIELDS:
        return _exact("job.trigger", rest, TRIGGER_FIELDS)
    name, more = rest[0], rest[1:]
    if name == "time":
        return _time_problem("job.trigger.time", more)
    if name == "file_arrival":
        return _exact("job.trigger.file_arrival", more, ("location",))
    if name == "table_update":
        if more == ("updated_tables",):
            return None
        table, attribute = _split_table_reference(more)
        if table is None:
            return ("job.trigger.table_update needs updated_tables or "
                    "<table>.version or <table>.commit_timestamp.<arg>")
        if attribute[0] == "commit_timestamp":
            return _time_problem(f"job.trigger.table_update.{table}.commit_timestamp", attribute[1:])
        return None
    return _exact("job.trigger", rest, TRIGGER_FIELDS)


def _tasks_problem(rest: tuple[str, ...], task_keys: set[str]) -> str | None:
    if not rest:
        return "tasks needs a task key"
    key, more = rest[0], rest[1:]
    if key not in task_keys:
        return f"there is no task '{key}'"
    owner = f"tasks.{key}"
    if not more or more[0] not in ("values", "output"):
        return _exact(owner, more, TASKS_FIELDS)
    if more[0] == "values":
        return None if len(more) > 1 else f"{owner}.values needs a value key"
    if len(more) > 1 and more[1] == "first_row":
        return None  # first_row.<col> names a column we cannot know before the run
    return _exact(f"{owner}.output", more[1:], OUTPUT_FIELDS)


def _problem(path: tuple[str, ...], task_keys: set[str], job_parameter_names: set[str],
             in_for_each: bool) -> str | None:
    head, rest = path[0], path[1:]
    if head == "job":
        return _job_problem(rest, job_parameter_names)
    if head == "task":
        return _exact("task", rest, TASK_FIELDS)
    if head == "tasks":
        return _tasks_problem(rest, task_keys)
    if head == "workspace":
        return _exact("workspace", rest, WORKSPACE_FIELDS)
    if head == "backfill":
        return _time_problem("backfill", rest, BACKFILL_ARGS)
    if head == "input":
        return None if in_for_each else "input is only available inside a for-each task"
    if head in LEGACY_NAMES and rest:
        return _no_field(head, rest[0])
    return None  # legacy names alone, and namespaces we do not own


def unknown_reference_messages(text: str, *, task_keys: set[str], job_parameter_names: set[str],
                               in_for_each: bool) -> list[str]:
    """One message per reference in a known namespace that names nothing real."""
    messages = []
    for ref in find_references(text):
        reason = _problem(ref.path, task_keys, job_parameter_names, in_for_each)
        if reason:
            messages.append(f"unknown reference {ref.text}: {reason}")
    return messages
