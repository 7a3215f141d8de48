"""Jobs API 2.0's single-task format, translated to and from the multi-task settings we store.

A 2.0 client (the legacy `databricks-cli` among them) may write a job as one task spread over
the top level of JobSettings: `notebook_task` (or another task type), the cluster it runs on
(`new_cluster`, `existing_cluster_id`), its `libraries` and retry fields, and no `tasks` array.
On the way in that becomes a job with one task and `format: SINGLE_TASK`; on the way out (2.0
jobs/get, jobs/list, runs/get, runs/list) such a job is shown in the shape it was written in.
Multi-task settings pass through both ways unchanged, as in Databricks' 2.0.

Pure: no Django, no I/O.
"""

from __future__ import annotations

import copy
import re

from .checker import Problem, SettingsInvalid
from .settings import without_nulls
from .task_types import TASK_TYPES

# JobSettings fields of the 2.0 single-task format that belong to the task in the multi-task one.
# (timeout_seconds stays at the top: the job's timeout is the single task's.)
TASK_LEVEL_FIELDS = ("existing_cluster_id", "new_cluster", "libraries", "max_retries",
                     "min_retry_interval_millis", "retry_on_timeout")
CLUSTER_FIELDS = ("existing_cluster_id", "new_cluster", "libraries")
CLUSTER_CHOICE = ("existing_cluster_id", "new_cluster")
# Task fields the single-task shape has no place for: the stored task's own bookkeeping.
TASK_ONLY_FIELDS = ("task_key", "run_if", "depends_on", "timeout_seconds", "description")
DEFAULT_TASK_KEY = "task"
MAX_TASK_KEY_CHARS = 100
NOT_A_KEY_CHARACTER = re.compile(r"[^A-Za-z0-9_-]+")


def task_key_for(name: object) -> str:
    """The key of a single-task job's task: its name with what a task key cannot hold replaced by
    `_` (the name a 2.0 user knows it by), or "task" for an unnamed job."""
    key = NOT_A_KEY_CHARACTER.sub("_", name).strip("_") if isinstance(name, str) else ""
    return key[:MAX_TASK_KEY_CHARS] or DEFAULT_TASK_KEY


def _task_type_fields(settings: dict) -> list[str]:
    return [name for name in settings if isinstance(name, str) and name.endswith("_task")]


def settings_from_2_0(settings: dict, *, name_field: str = "name") -> dict:
    """Multi-task settings for 2.0 JobSettings (or a runs/submit body, with name_field="run_name").

    Settings with a `tasks` array come back as they are. Raises SettingsInvalid naming the field
    for a body that mixes both formats, names an unknown task type, or sets two task types."""
    if not isinstance(settings, dict):
        raise SettingsInvalid([Problem("settings", "must be a JSON object")])
    kinds = _task_type_fields(settings)
    if not kinds:
        return settings
    if "tasks" in settings:
        raise SettingsInvalid([Problem(kinds[0], "a job in the single-task format (a top-level task type) "
                                                 "cannot have a tasks array too: use one format or the other")])
    _check_one_known_task_type(kinds)
    kind = kinds[0]
    task = {"task_key": task_key_for(settings.get(name_field)), kind: copy.deepcopy(settings[kind])}
    for name in TASK_LEVEL_FIELDS:
        if name in settings:
            task[name] = copy.deepcopy(settings[name])
    moved = {kind, *TASK_LEVEL_FIELDS}
    converted = {key: copy.deepcopy(value) for key, value in settings.items() if key not in moved}
    converted["tasks"] = [task]
    if name_field == "name":  # JobSettings records its format; a one-time run has no field for it
        converted["format"] = "SINGLE_TASK"
    return converted


def _check_one_known_task_type(kinds):
    unknown = [kind for kind in kinds if kind not in TASK_TYPES]
    if unknown:
        raise SettingsInvalid([Problem(unknown[0], f"is not a task type; a single-task job sets one of "
                                                   f"{', '.join(TASK_TYPES)}")])
    if len(kinds) > 1:
        raise SettingsInvalid([Problem(kinds[1], f"a single-task job has one task type, not {' and '.join(kinds)}")])


def update_from_2_0(stored: dict, new_settings: dict, fields_to_remove: list) -> tuple[dict, list]:
    """A 2.0 jobs/update's `new_settings` and `fields_to_remove` as the multi-task update of the
    `stored` settings. For a job stored from the single-task format, the task-level fields (and a
    top-level task type, which replaces the task's type block) go into its one task, as 2.0 reads
    them; nulls are absent fields, as in any update. Any other job's update comes back as it is,
    and its validation refuses the task-level fields by name. Raises SettingsInvalid naming the
    field for an update that mixes both formats or names a bad task type."""
    task = single_task(stored)
    if task is None or not isinstance(new_settings, dict) or not isinstance(fields_to_remove, list):
        return new_settings, fields_to_remove
    new_settings = without_nulls(new_settings)
    kinds = _task_type_fields(new_settings)
    moved = [name for name in new_settings if name in TASK_LEVEL_FIELDS or name in kinds]
    removed = [name for name in fields_to_remove if name in TASK_LEVEL_FIELDS]
    if not moved and not removed:
        return new_settings, fields_to_remove
    if "tasks" in new_settings:
        field = (moved or removed)[0]
        raise SettingsInvalid([Problem(field, "a single-task job's update sets its task either at the top level "
                                              "or in a tasks array, not both")])
    _check_one_known_task_type(kinds)
    replaced = {*removed, *(TASK_TYPES if kinds else ())}
    if any(name in moved for name in CLUSTER_CHOICE):  # the task runs on one cluster or the other
        replaced.update(CLUSTER_CHOICE)
    task = {key: copy.deepcopy(value) for key, value in task.items() if key not in replaced}
    for name in moved:
        task[name] = copy.deepcopy(new_settings[name])
    update = {key: value for key, value in new_settings.items() if key not in moved}
    update["tasks"] = [task]  # jobs/update replaces the task with the same task_key whole
    return update, [name for name in fields_to_remove if name not in removed]


def single_task(settings: dict) -> dict | None:
    """The one task of a job stored from the single-task format, or None if it is multi-task."""
    tasks = settings.get("tasks")
    if settings.get("format") != "SINGLE_TASK" or not isinstance(tasks, list) or len(tasks) != 1:
        return None
    return tasks[0] if isinstance(tasks[0], dict) else None


def run_is_single_task(settings: dict, run_type: str) -> bool:
    """Whether 2.0 shows a run in the single-task shape: a run of a single-task job, or a one-time
    run of one task (runs/submit has no format field to tell a 2.0 submit from a 2.1 one)."""
    tasks = settings.get("tasks")
    one = isinstance(tasks, list) and len(tasks) == 1
    return single_task(settings) is not None or (run_type == "SUBMIT_RUN" and one)


def settings_as_2_0(settings: dict) -> dict:
    """Stored settings as 2.0 shows them: a single-task job with its task's fields at the top
    level and no tasks array; any other job as it is."""
    task = single_task(settings)
    if task is None:
        return settings
    shown = {key: value for key, value in settings.items() if key != "tasks"}
    for key, value in task.items():
        if key not in TASK_ONLY_FIELDS:
            shown[key] = copy.deepcopy(value)
    return shown


def run_as_2_0(run: dict, *, single: bool) -> dict:
    """A runs/get or runs/list answer as 2.0 shows a run of a single-task job: its task's type
    block in `task`, its cluster in `cluster_spec`, and the task's durations (a multi-task run
    has 0 there). The `tasks` array stays, for clients that read it. Other runs are unchanged."""
    tasks = run.get("tasks")
    if not single or not isinstance(tasks, list) or len(tasks) != 1:
        return run
    task = tasks[0]
    shown = dict(run)
    shown["task"] = {key: copy.deepcopy(value) for key, value in task.items() if key in TASK_TYPES}
    cluster = {key: copy.deepcopy(task[key]) for key in CLUSTER_FIELDS if key in task}
    if cluster:
        shown["cluster_spec"] = cluster
    for name in ("setup_duration", "execution_duration", "cleanup_duration"):
        if name in task:
            shown[name] = task[name]
    return shown


# run-now's per-task-type parameters of API 2.0 and 2.1: which task field each one sets, and
# whether it is merged into the field (a map) or replaces it (a list).
LEGACY_RUN_PARAMETERS = {
    "notebook_params": ("notebook_task", "base_parameters", "merge"),
    "python_params": ("spark_python_task", "parameters", "replace"),
    "python_named_params": ("python_wheel_task", "named_parameters", "merge"),
    "jar_params": ("spark_jar_task", "parameters", "replace"),
    "spark_submit_params": ("spark_submit_task", "parameters", "replace"),
}
# python_params also reach a python_wheel_task's positional parameters, as in Databricks.
ALSO_SETS = {"python_params": ("python_wheel_task", "parameters", "replace")}


def check_legacy_parameters(data: dict) -> dict:
    """The legacy run parameters of a run-now body, checked: lists of strings, maps of strings.
    Raises SettingsInvalid naming the field."""
    found = {}
    for name, (_, _, how) in LEGACY_RUN_PARAMETERS.items():
        value = data.get(name)
        if value is None:
            continue
        if how == "replace":
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise SettingsInvalid([Problem(name, "must be an array of strings")])
        elif not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
            raise SettingsInvalid([Problem(name, "must be an object whose values are strings")])
        found[name] = copy.deepcopy(value)
    return found


def task_with_legacy_parameters(task: dict, parameters: dict) -> dict:
    """A copy of `task` with a run's legacy parameters applied: notebook_params merged into a
    notebook task's base_parameters, python_params replacing a Python task's parameters, and so
    on; a task of another type comes back unchanged."""
    task = copy.deepcopy(task)
    for name, value in parameters.items():
        if name not in LEGACY_RUN_PARAMETERS:
            continue  # overriding_parameters also holds job_parameters
        for kind, field, how in (LEGACY_RUN_PARAMETERS[name], *filter(None, [ALSO_SETS.get(name)])):
            block = task.get(kind)
            if isinstance(block, dict):
                block[field] = {**(block.get(field) or {}), **value} if how == "merge" else list(value)
    return task
