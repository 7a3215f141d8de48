"""The validator's problems, placed next to the authoring form fields they concern.

A problem's path (`tasks[1].depends_on[0].task_key`, `schedule.timezone_id`) names a setting;
the tables below map settings paths to form fields, and a path not listed goes to its nearest
listed parent. What has no field is listed above the form with its path.
"""

import re

from jobs.form_fields import COMMON_TASK_FIELDS, TRIGGER_FIELDS, TYPE_FIELDS, notification_field_at
from jobs.spec.notifications import JOB_MUTES, METRICS, TASK_MUTES
from jobs.spec.settings import TASK_TYPES


def _trigger_paths(kind):
    if kind in ("schedule", "continuous"):
        return [kind]
    return [f"trigger.{kind}", "trigger.table"] if kind == "table_update" else [f"trigger.{kind}"]


# Settings paths -> job form fields; a path not listed goes to its nearest listed parent.
JOB_FIELD_AT = {
    **{name: name for name in ("name", "description", "tags", "parameters", "max_concurrent_runs", "timeout_seconds")},
    "queue": "queue_enabled", "schedule": "trigger_kind", "trigger": "trigger_kind", "continuous": "trigger_kind",
    **{f"{block}.pause_status": "paused" for block in ("schedule", "trigger", "continuous")},
    **{f"{path}.{key}": field for kind, fields in TRIGGER_FIELDS.items() for path in _trigger_paths(kind)
       for field, key in fields.items()},
    **notification_field_at(JOB_MUTES),
}
# Paths inside one task, relative to tasks[i].
TASK_FIELD_AT = {
    "": "task_type", **{name: name for name in COMMON_TASK_FIELDS},
    **{kind: "task_type" for kind in TASK_TYPES},
    **{f"{kind}.{key}": name for kind, fields in TYPE_FIELDS.items() for name, key in fields.items()},
    "sql_task": "sql_kind", "sql_task.file": "sql_file_path", "sql_task.query": "sql_query_text",
    **notification_field_at(TASK_MUTES),
}
TASK_PATH = re.compile(r"tasks\[(\d+)\](?:\.(.*))?")
HEALTH_RULE = re.compile(r"health\.rules\[(\d+)\].*")
CYCLE = "dependency cycle "  # the validator reports a cycle on `tasks` as "dependency cycle a -> b -> a"


def field_at(path, table):
    """(form field, its own path) for the longest leading part of `path` that `table` knows."""
    probe = path
    while probe not in table:
        cut = max(probe.rfind("."), probe.rfind("["))
        if cut < 0:
            return None, None
        probe = probe[:cut]
    return table[probe], probe


def _by_metric(path, block):
    """A health rule's path as the table knows it: by its metric, which the saved block tells
    (`health.rules[1].value` -> `health.STREAMING_BACKLOG_FILES`)."""
    match = HEALTH_RULE.fullmatch(path)
    health = block.get("health") if match and isinstance(block, dict) else None
    rules = health.get("rules") if isinstance(health, dict) else None
    index = int(match[1]) if match else 0
    rule = rules[index] if isinstance(rules, list) and index < len(rules) else None
    metric = rule.get("metric") if isinstance(rule, dict) else None
    return f"health.{metric}" if metric in METRICS else path


def _message(problem_path, field_path, message):
    # A field that stands for more than one setting says which one the message is about.
    return message if problem_path == field_path else f"{problem_path}: {message}"


def place_problems(problems, job_form, task_forms, settings=None):
    """Add each validator problem to the form field it concerns; returns the ones that have none.
    `settings`: the settings the problems are about, which say what a health rule's index means."""
    settings = settings or {}
    tasks = settings.get("tasks") if isinstance(settings.get("tasks"), list) else []
    keys = [form.cleaned_data.get("task_key") for form in task_forms]
    unplaced = []
    for problem in problems:
        match = TASK_PATH.fullmatch(problem.path)
        if match and int(match[1]) < len(task_forms):
            index, rest = int(match[1]), match[2] or ""
            name, own_path = field_at(_by_metric(rest, tasks[index] if index < len(tasks) else None), TASK_FIELD_AT)
            if name is not None:
                task_forms[index].add_error(name, _message(rest, own_path, problem.message))
                continue
        elif problem.path == "tasks" and problem.message.startswith(CYCLE):
            on_cycle = set(problem.message[len(CYCLE):].split(" -> "))
            forms_on_cycle = [form for form, key in zip(task_forms, keys) if key in on_cycle]
            for form in forms_on_cycle:
                form.add_error("depends_on", problem.message)
            if forms_on_cycle:
                continue
        elif not match:
            name, own_path = field_at(_by_metric(problem.path, settings), JOB_FIELD_AT)
            if name is not None:
                job_form.add_error(name, _message(problem.path, own_path, problem.message))
                continue
        unplaced.append(problem)
    return unplaced
