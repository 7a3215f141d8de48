"""Parse and validate `JobSettings` (jobs/create, reset, update) and runs/submit bodies.

`validate_job_settings` collects every problem with the path of the field at fault,
so an API caller or the edit form can show them all at once, and returns a new,
normalized dict with the defaults Databricks would read back. Fields this module
does not own (schedule, trigger, notifications, clusters, ...) pass through verbatim.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from typing import Any

from . import dag, env_files, refs
from .task_types import EXECUTABLE_TASK_TYPES, TASK_TYPES, UNSUPPORTED_TASK_TYPES, task_type_of  # noqa: F401
from .command_line import MAX_ARGUMENT_BYTES, command_line_problems
from .checker import INT32_MAX, INT64_MAX, MISSING, Checker, Problem, SettingsInvalid, _at  # noqa: F401 (re-exported)
from .documents import DocumentRefused, check_document
from .embedded import EmbeddedReferenceError, shell_command_with_variables, sql_with_markers
from .environments import check_environments, check_task_environment
from .dbt import check_dbt_task
from .deployment import check_deployment
from .git_source import check_git_source, check_task_sources
from .notifications import check_notifications
from .triggers import EXCLUSIVE_BLOCKS, check_triggers, with_trigger_defaults



RUN_IF = ("ALL_SUCCESS", "AT_LEAST_ONE_SUCCESS", "NONE_FAILED", "ALL_DONE",
          "AT_LEAST_ONE_FAILED", "ALL_FAILED")
CONDITION_OPS = ("EQUAL_TO", "NOT_EQUAL", "GREATER_THAN", "GREATER_THAN_OR_EQUAL",
                 "LESS_THAN", "LESS_THAN_OR_EQUAL")
SOURCES = ("WORKSPACE", "GIT")
FORMATS = ("SINGLE_TASK", "MULTI_TASK")
EDIT_MODES = ("EDITABLE", "UI_LOCKED")
# COST_OPTIMIZED: in the SDK's docstrings and Databricks' documentation, not (yet) its enum.
PERFORMANCE_TARGETS = ("PERFORMANCE_OPTIMIZED", "STANDARD", "COST_OPTIMIZED")
SQL_TASK_KINDS = {"query": "query_id", "file": "path", "alert": "alert_id",
                  "dashboard": "dashboard_id"}

RUN_AS_KINDS = ("user_name", "service_principal_name", "group_name")

MAX_TASKS = 1000
MAX_TAGS = 25
MAX_NAME_BYTES = 4096
MAX_DESCRIPTION_CHARS = 27_700
MAX_TASK_KEY_CHARS = 100
MAX_CONCURRENT_RUNS = 1000
MAX_FOR_EACH_CONCURRENCY = 100

TASK_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
PARAMETER_NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")
# Fields a one-time run (runs/submit) has no use for: it has no job to schedule or run again.
NOT_FOR_SUBMIT = ("parameters", "schedule", "trigger", "continuous", "max_concurrent_runs")
TASK_DEFAULTS = {"run_if": "ALL_SUCCESS", "timeout_seconds": 0, "max_retries": 0,
                 "min_retry_interval_millis": 0, "retry_on_timeout": False}
# Fields this server stores and returns without reading them: only their JSON type (the SDK's)
# is checked, so a job never holds a value that breaks a client reading it back.
JOB_PASSTHROUGH = {
    "job_clusters": "objects",
    "environments": "objects", "budget_policy_id": "string", "usage_policy_id": "string",
    "duration_target": "string", "parent_path": "string",
}
TASK_PASSTHROUGH = {
    "new_cluster": "object", "libraries": "objects", "existing_cluster_id": "string",
    "job_cluster_key": "string", "environment_key": "string", "compute": "object",
}
# The top-level fields of JobSettings and of a runs/submit body (databricks-sdk 0.167): anything
# else is refused by name, so a typo (max_concurent_runs) is an error rather than a setting that
# silently does nothing. The API and the job editor share this rule.
JOB_FIELDS = frozenset({
    "budget_policy_id", "continuous", "deployment", "description", "duration_target", "edit_mode",
    "email_notifications", "environment_variables", "environments", "format", "git_source", "health",
    "job_clusters", "max_concurrent_runs", "name", "notification_settings", "parameters", "parent_path",
    "performance_target", "queue", "run_as", "schedule", "tags", "tasks", "timeout_seconds", "trigger",
    "triggers", "usage_policy_id", "webhook_notifications",
})
SUBMIT_FIELDS = frozenset({
    "budget_policy_id", "duration_target", "email_notifications", "environment_variables", "environments",
    "git_source", "health", "notification_settings", "performance_target", "queue", "run_as", "run_name",
    "tasks", "timeout_seconds", "usage_policy_id", "webhook_notifications",
})
ENV_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,255}")
MAX_ENV_ENTRIES, MAX_ENV_VARIABLES = 10, 20
MAX_ENV_VALUE_CHARS = 512


# --- task types -----------------------------------------------------------------


# Field rules per task type; the cross-field rules follow in _check_type_block.
_SHAPES: dict[str, dict[str, str]] = {
    "spark_python_task": {"python_file": "required", "parameters": "str_list", "source": "source"},
    "python_wheel_task": {"package_name": "required", "entry_point": "required",
                          "parameters": "str_list", "named_parameters": "str_map"},
    # Our extension: `command` runs in a shell; `parameters` arrive as $1..$n.
    "shell_command_task": {"command": "required", "parameters": "str_list"},
    "notebook_task": {"notebook_path": "required", "base_parameters": "str_map",
                      "source": "source", "warehouse_id": "str"},
    "sql_task": {"warehouse_id": "required", "parameters": "str_map"},
    "condition_task": {"op": "op", "left": "operand", "right": "operand"},
    "run_job_task": {"job_id": "job_id", "job_parameters": "str_map"},
    "for_each_task": {"inputs": "operand", "concurrency": "concurrency", "task": "object"},
    "dbt_task": {},  # dbt.check_dbt_task
}


def _check_field(c: Checker, block: dict, path: str, key: str, rule: str) -> None:
    if rule == "required":
        c.string(block, path, key, required=True, non_empty=True)
    elif rule in ("str", "operand"):
        c.string(block, path, key, required=rule == "operand")
    elif rule == "str_list":
        c.str_list(block, path, key)
    elif rule == "str_map":
        c.str_map(block, path, key)
    elif rule == "source":
        c.choice(block, path, key, SOURCES)
    elif rule == "op":
        c.choice(block, path, key, CONDITION_OPS, required=True)
    elif rule == "job_id":
        c.integer(block, path, key, required=True, low=0, high=INT64_MAX)
    elif rule == "concurrency":
        c.integer(block, path, key, low=1, high=MAX_FOR_EACH_CONCURRENCY)
    elif rule == "object":
        c.obj(block, path, key, required=True)


def _any_known_reference(ref) -> str | None:
    """A stand-in value for every reference that may resolve at run time (for the save-time checks)."""
    return "" if ref.path[0] in refs.NAMESPACES else None


def _check_type_block(c: Checker, kind: str, block: dict, path: str) -> None:
    for key, rule in _SHAPES[kind].items():
        _check_field(c, block, path, key, rule)
    if kind == "shell_command_task" and isinstance(block.get("command"), str):
        try:  # a reference where bash would run code in its value ((( {{x}} ))) is refused now
            shell_command_with_variables(block["command"], _any_known_reference)
        except EmbeddedReferenceError as exc:
            c.add(f"{path}.command", str(exc))
    for where, problem in command_line_problems(kind, block):
        c.add(f"{path}.{where}" if where else path, problem)
    if kind == "python_wheel_task" and block.get("parameters") and block.get("named_parameters"):
        c.add(path, "set parameters or named_parameters, not both")
    elif kind == "sql_task":
        kinds = [name for name in SQL_TASK_KINDS if name in block]
        if len(kinds) != 1:
            found = f" (found {' and '.join(kinds)})" if kinds else ""
            c.add(path, f"set exactly one of {', '.join(SQL_TASK_KINDS)}{found}")
        for name in kinds:
            inner = c.obj(block, path, name)
            if inner is None:
                continue
            if name in ("alert", "dashboard"):  # kept as written; fails at start (task_types)
                c.string(inner, f"{path}.{name}", f"{name}_id", required=True, non_empty=True)
            elif name == "query":
                # query_text is our extension for inline SQL: there are no saved queries here.
                if "query_text" in inner:
                    text = c.string(inner, f"{path}.query", "query_text", required=True, non_empty=True)
                    try:  # a reference stands where no value can be bound ("{{x}}" as an identifier)
                        sql_with_markers(text or "", _any_known_reference)
                    except EmbeddedReferenceError as exc:
                        c.add(f"{path}.query.query_text", str(exc))
                else:  # a saved query: kept as written, fails at start (task_types.unsupported_kind)
                    c.string(inner, f"{path}.query", "query_id", required=True, non_empty=True)
            else:
                c.string(inner, f"{path}.{name}", SQL_TASK_KINDS[name], required=True, non_empty=True)
                c.choice(inner, f"{path}.{name}", "source", SOURCES)
    elif kind == "dbt_task":
        check_dbt_task(c, block, path)
    elif kind == "for_each_task":
        inputs = block.get("inputs")
        if isinstance(inputs, str) and not refs.find_references(inputs):
            try:
                parsed = json.loads(inputs)
            except ValueError:
                parsed = None
            if not isinstance(parsed, list):
                c.add(f"{path}.inputs", "must be a JSON array or a {{...}} reference")
        nested = block.get("task")
        if isinstance(nested, dict) and "for_each_task" in nested:
            c.add(f"{path}.task.for_each_task",
                  "a for-each task cannot run another for-each task; use a run_job_task")
        if isinstance(nested, dict) and nested.get("depends_on"):
            c.add(f"{path}.task.depends_on", "the task inside a for-each task cannot depend on others")


# --- tasks ----------------------------------------------------------------------


def _check_task_fields(c: Checker, task: dict, path: str, in_for_each: bool) -> None:
    """Common fields and the task-type block; depends_on is checked by the caller."""
    key = c.string(task, path, "task_key", required=True)
    if key is not None:
        if not TASK_KEY_PATTERN.fullmatch(key):
            c.add(f"{path}.task_key", f"'{key}' may only contain letters, digits, _ and -")
        elif len(key) > MAX_TASK_KEY_CHARS:
            c.add(f"{path}.task_key", f"must be at most {MAX_TASK_KEY_CHARS} characters")
    c.choice(task, path, "run_if", RUN_IF)
    c.integer(task, path, "timeout_seconds")
    c.integer(task, path, "max_retries", low=-1)
    c.integer(task, path, "min_retry_interval_millis")
    c.boolean(task, path, "retry_on_timeout")
    c.boolean(task, path, "disabled")
    c.string(task, path, "description")
    c.json_types(task, path, TASK_PASSTHROUGH)
    check_notifications(c, task, path, task=True, in_for_each=in_for_each)
    env_key = c.string(task, path, "environment_variables_key")
    if env_key is not None and env_key not in c.env_keys:
        c.add(f"{path}.environment_variables_key", f"there is no environment_variables entry '{env_key}' in this job")
    check_task_environment(c, task, path, c.environment_keys)

    present = [name for name in TASK_TYPES if name in task]
    if not present:
        c.add(path, f"task has no task type: set one of {', '.join(EXECUTABLE_TASK_TYPES)}")
        return
    if len(present) > 1:
        c.add(path, f"task has more than one task type: {' and '.join(present)}")
        return
    kind = present[0]
    if kind in UNSUPPORTED_TASK_TYPES:
        # Saved as written, so a job with one task this server cannot run is not lost whole: the
        # task fails when it would start (runs/worker.py), and the job page says so beforehand.
        c.obj(task, path, kind, required=True)
        return
    block = c.obj(task, path, kind, required=True)
    if block is None:
        return
    _check_type_block(c, kind, block, f"{path}.{kind}")
    if kind != "for_each_task":
        c.references(block, f"{path}.{kind}", in_for_each)
        return
    # The wrapper's own strings (inputs) are outside the loop; the nested task is inside it.
    c.references({k: v for k, v in block.items() if k != "task"}, f"{path}.{kind}", in_for_each)
    nested = block.get("task")
    if isinstance(nested, dict) and "for_each_task" not in nested:
        _check_task_fields(c, nested, f"{path}.{kind}.task", in_for_each=True)


def _with_task_defaults(task: dict) -> dict:
    # `disabled` is not defaulted: Databricks reads it back only on explicitly disabled tasks.
    for name, value in TASK_DEFAULTS.items():
        task.setdefault(name, value)
    nested = task.get("for_each_task")
    if isinstance(nested, dict) and isinstance(nested.get("task"), dict):
        _with_task_defaults(nested["task"])
    return task


def _check_tasks(c: Checker, tasks: list) -> None:
    if len(tasks) > MAX_TASKS:
        c.add("tasks", f"a job may have at most {MAX_TASKS:,} tasks; this one has {len(tasks):,}")
    first_index: dict[str, int] = {}
    kinds: dict[str, str | None] = {}
    for i, task in enumerate(tasks):
        key = task.get("task_key") if isinstance(task, dict) else None
        if isinstance(key, str) and key not in first_index:
            first_index[key] = i
            kinds[key] = task_type_of(task)

    deps: dict[str, list[str]] = {}
    for i, task in enumerate(tasks):
        path = f"tasks[{i}]"
        if not isinstance(task, dict):
            c.add(path, "must be an object")
            continue
        _check_task_fields(c, task, path, in_for_each=False)
        key = task.get("task_key")
        duplicate = isinstance(key, str) and first_index[key] != i
        if duplicate:
            c.add(f"{path}.task_key", f"duplicate task_key '{key}' (also tasks[{first_index[key]}])")
        upstream = _check_depends_on(c, task, path, key, kinds)
        if isinstance(key, str) and not duplicate:
            deps[key] = upstream

    cycle = dag.find_cycle(deps)
    if cycle:
        c.add("tasks", "dependency cycle " + " -> ".join(cycle))


def _check_depends_on(c: Checker, task: dict, path: str, key: Any,
                      kinds: dict[str, str | None]) -> list[str]:
    """Problems in `depends_on`; returns the upstream keys that exist (for the cycle check)."""
    if "depends_on" not in task:
        return []
    entries = task["depends_on"]
    if not isinstance(entries, list):
        c.add(f"{path}.depends_on", "must be a list")
        return []
    upstream: list[str] = []
    for j, entry in enumerate(entries):
        at = f"{path}.depends_on[{j}]"
        if not isinstance(entry, dict):
            c.add(at, "must be an object with a task_key")
            continue
        parent = c.string(entry, at, "task_key", required=True)
        if parent is None:
            continue
        if parent not in kinds:
            c.add(f"{at}.task_key", f"there is no task '{parent}' in this job")
            continue
        if parent == key:
            # Reported here rather than as a one-task cycle.
            c.add(f"{at}.task_key", f"task '{parent}' cannot depend on itself")
            continue
        if parent in upstream:
            c.add(f"{at}.task_key", f"'{parent}' is listed more than once")
            continue
        upstream.append(parent)
        if "outcome" in entry:
            if kinds[parent] != "condition_task":
                c.add(f"{at}.outcome", f"only allowed when depending on a condition_task; "
                                       f"'{parent}' is not one")
            elif entry["outcome"] not in ("true", "false"):
                c.add(f"{at}.outcome", 'must be "true" or "false"')
    return upstream


# --- the job --------------------------------------------------------------------


def _check_parameters(c: Checker, parameters: Any) -> set[str]:
    if not isinstance(parameters, list):
        c.add("parameters", "must be a list of {name, default}")
        return set()
    names: set[str] = set()
    for i, parameter in enumerate(parameters):
        path = f"parameters[{i}]"
        if not isinstance(parameter, dict):
            c.add(path, "must be an object with name and default")
            continue
        name = c.string(parameter, path, "name", required=True)
        if name is not None:
            if not PARAMETER_NAME_PATTERN.fullmatch(name):
                c.add(f"{path}.name", f"'{name}' may only contain letters, digits, _, . and -")
            elif name in names:
                c.add(f"{path}.name", f"duplicate parameter name '{name}'")
            names.add(name)
        c.string(parameter, path, "default", required=True)
    return names


def _check_known_fields(c: Checker, data: dict, for_submit: bool) -> None:
    known = SUBMIT_FIELDS if for_submit else JOB_FIELDS
    what = "a one-time run (runs/submit)" if for_submit else "JobSettings"
    for name in data:
        if name not in known and not (for_submit and name in NOT_FOR_SUBMIT):
            close = difflib.get_close_matches(str(name), sorted(known), n=1)
            c.add(str(name), f"is not a field of {what}" + (f"; did you mean {close[0]}?" if close else ""))


def _check_environment_variables(c: Checker, entries: Any) -> set[str]:
    """Job-level environment variables that tasks pick by environment_variables_key (inline
    variables; .env files are not read by this server yet). Returns the keys defined."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        c.add("environment_variables", "must be a list of objects")
        return set()
    if len(entries) > MAX_ENV_ENTRIES:
        c.add("environment_variables", f"a job may have at most {MAX_ENV_ENTRIES} entries")
    keys: set[str] = set()
    for i, entry in enumerate(entries):
        path = f"environment_variables[{i}]"
        key = c.string(entry, path, "environment_variables_key", required=True, non_empty=True)
        if key in keys:
            c.add(f"{path}.environment_variables_key", f"duplicate key '{key}'")
        keys.add(key)
        spec = c.obj(entry, path, "spec") or {}
        _check_env_files(c, spec.get("files"), f"{path}.spec.files")
        variables = c.obj(spec, f"{path}.spec", "variables") or {}
        if len(variables) > MAX_ENV_VARIABLES:
            c.add(f"{path}.spec.variables", f"at most {MAX_ENV_VARIABLES} variables per entry")
        for name, value in variables.items():
            at = f"{path}.spec.variables.{name}"
            if not ENV_VARIABLE_NAME.fullmatch(name):
                c.add(at, "a variable name has letters, digits and _, does not start with a digit, "
                          "and is at most 256 characters long")
            elif name.startswith("LAKEFLOW_"):
                c.add(at, "names starting with LAKEFLOW_ belong to this server")
            if not isinstance(value, str):
                c.add(at, "must be a string")
            elif len(value) > MAX_ENV_VALUE_CHARS:
                c.add(at, f"a value may be at most {MAX_ENV_VALUE_CHARS} characters (the Databricks limit)")
            elif len(f"{name}={value}".encode("utf-8", "replace")) > MAX_ARGUMENT_BYTES:
                c.add(at, f"a variable may be at most {MAX_ARGUMENT_BYTES:,} bytes with its name")
    return keys


def _check_env_files(c: Checker, files: Any, at: str) -> None:
    """Paths of .env files, read when a task starts (jobs/spec/env_files.py)."""
    if files is None:
        return
    if not isinstance(files, list):
        c.add(at, "must be a list of /Workspace/... or /Volumes/... paths")
    elif len(files) > env_files.MAX_FILES:
        c.add(at, f"at most {env_files.MAX_FILES} files")
    for i, name in enumerate(files if isinstance(files, list) else []):
        if not isinstance(name, str) or not name.startswith(env_files.FILE_PREFIXES):
            c.add(f"{at}[{i}]", "must be a /Workspace/... or /Volumes/... path")


def _check_job_fields(c: Checker, data: dict, for_submit: bool) -> None:
    name_field = "run_name" if for_submit else "name"
    name = c.string(data, "", name_field)
    if name is not None and len(name.encode("utf-8")) > MAX_NAME_BYTES:
        c.add(name_field, f"must be at most {MAX_NAME_BYTES:,} bytes in UTF-8")
    description = c.string(data, "", "description")
    if description is not None and len(description) > MAX_DESCRIPTION_CHARS:
        c.add("description", f"must be at most {MAX_DESCRIPTION_CHARS:,} characters")
    tags = c.obj(data, "", "tags")
    if tags is not None:
        if len(tags) > MAX_TAGS:
            c.add("tags", f"a job may have at most {MAX_TAGS} tags; this one has {len(tags)}")
        for tag, value in tags.items():
            if not isinstance(value, str):
                c.add(f"tags.{tag}", "must be a string")
    c.integer(data, "", "timeout_seconds")
    queue = c.obj(data, "", "queue")
    if queue is not None:
        c.boolean(queue, "queue", "enabled", required=True)
    # jobs/get reads run_as.user_name for run_as_user_name.
    run_as = c.obj(data, "", "run_as")
    if run_as is not None:
        named = [key for key in RUN_AS_KINDS if c.string(run_as, "run_as", key, non_empty=True)]
        if len(named) != 1:  # as Databricks: "One of ... should be specified. If not, an error is thrown."
            c.add("run_as", f"set exactly one of {', '.join(RUN_AS_KINDS)}"
                            + (f" (found {' and '.join(named)})" if named else ""))
    c.json_types(data, "", JOB_PASSTHROUGH)
    check_notifications(c, data, "", task=False)
    check_deployment(c, data)
    check_git_source(c, data)
    _check_known_fields(c, data, for_submit)
    if "environment_variables" in data:
        c.env_keys = _check_environment_variables(c, data["environment_variables"])
    c.environment_keys = check_environments(c, data.get("environments") or [])
    c.choice(data, "", "edit_mode", EDIT_MODES)
    c.choice(data, "", "performance_target", PERFORMANCE_TARGETS)
    if for_submit:
        for field_name in NOT_FOR_SUBMIT:
            if field_name in data:
                c.add(field_name, "is not accepted by runs/submit (one-time runs)")
        return
    c.integer(data, "", "max_concurrent_runs", high=MAX_CONCURRENT_RUNS)
    c.choice(data, "", "format", FORMATS)
    c.problems.extend(check_triggers(data))


def without_nulls(value):
    """``value`` without the null fields of its objects, at any depth: in the JSON mapping of the
    Jobs API's protobuf messages a null field is an absent one (the SDK sends none, hand-written
    JSON and other clients do). Nulls inside lists stay, and are refused where they are."""
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def validate_job_settings(data: Any, *, api_version: str = "2.2", for_submit: bool = False) -> dict:
    """A new, normalized copy of `data`; raises SettingsInvalid listing every problem."""
    if not isinstance(data, dict):
        raise SettingsInvalid([Problem("settings", "must be a JSON object")])
    try:
        check_document(data)
        data = without_nulls(data)
    except DocumentRefused as exc:
        raise SettingsInvalid([Problem(exc.path or "settings", exc.message)]) from None
    c = Checker()
    _check_job_fields(c, data, for_submit)
    if not for_submit and "parameters" in data:
        c.parameter_names = _check_parameters(c, data["parameters"])
    tasks = data.get("tasks", [])
    if not isinstance(tasks, list):
        c.add("tasks", "must be a list of tasks")
        tasks = []
    c.task_keys = {t["task_key"] for t in tasks
                   if isinstance(t, dict) and isinstance(t.get("task_key"), str)}
    # Job parameter defaults may reference job facts, so they get the same check.
    parameters = data.get("parameters") if not for_submit else None
    for i, parameter in enumerate(parameters if isinstance(parameters, list) else []):
        if isinstance(parameter, dict) and isinstance(parameter.get("default"), str):
            c.references(parameter["default"], f"parameters[{i}].default", in_for_each=False)
    _check_tasks(c, tasks)
    check_task_sources(c, data)
    if c.problems:
        raise SettingsInvalid(c.problems)

    # A null schedule, trigger or continuous block is absent (check_triggers allows it): leave
    # it out, so that a job read back has an object or nothing there.
    settings = {key: copy.deepcopy(value) for key, value in data.items()
                if not (value is None and key in EXCLUSIVE_BLOCKS)}
    if for_submit:
        settings.setdefault("run_name", "Untitled")
    else:
        settings.setdefault("name", "Untitled")
        settings.setdefault("max_concurrent_runs", 1)
        settings.setdefault("format", "MULTI_TASK")
        settings = with_trigger_defaults(settings)
    settings.setdefault("timeout_seconds", 0)
    # Jobs API 2.2 queues by default; 2.0 and 2.1 do not.
    settings.setdefault("queue", {"enabled": api_version not in ("2.0", "2.1")})
    settings["tasks"] = [_with_task_defaults(task) for task in settings.get("tasks", [])]
    return settings
