"""What one task attempt sees: its task settings with every {{reference}} substituted,
job parameters pushed into key/value parameters, and its upstream tasks' values."""

import functools
import json
import re

from django.conf import settings

from jobs.spec.api_2_0 import task_with_legacy_parameters
from jobs.spec.dag import upstream_of
from jobs.spec.embedded import shell_command_with_variables, sql_with_markers
from jobs.spec.refs import NOT_IN_FOR_EACH, ReferenceContext, resolve, value_text
from jobs.spec.settings import task_type_of
from runs.engine.parameters import parameter_values

# Task types whose key/value parameters receive the job parameters (the job's win on a clash).
KEY_VALUE_PARAMETERS = {
    "notebook_task": "base_parameters",
    "python_wheel_task": "named_parameters",
    "sql_task": "parameters",
}


# {{job.trigger.type}} as Databricks spells it: lower case, and "onetime" without the underscore.
TRIGGER_TYPE_REFERENCE = {"ONE_TIME": "onetime", "PERIODIC": "periodic", "RUN_JOB_TASK": "run_job_task",
                          "FILE_ARRIVAL": "file_arrival", "TABLE": "table", "CONTINUOUS": "continuous",
                          "CONTINUOUS_RESTART": "continuous", "RETRY": "retry"}


REFERENCED_TASK = re.compile(r"\{\{\s*tasks\.(`[^`]*`|[^.\s}]+)")


def fact_keys(run, attempt, task):
    """The tasks an attempt can read: its upstream tasks (dbutils.jobs.taskValues.get) and those its
    settings reference. Reading only these keeps a task's start O(its inputs), not O(the job)."""
    deps = {t["task_key"]: [d["task_key"] for d in t.get("depends_on") or []]
            for t in run.job_version.settings.get("tasks", [])}
    own = attempt.for_each_key or attempt.task_key  # an iteration reads what its for-each task can
    named = {key.strip("`") for key in REFERENCED_TASK.findall(json.dumps(task))}
    return (upstream_of(deps, [own]) if own in deps else set()) | named


def upstream_facts(run, keys=None):
    """tasks.<key>.* for references and dbutils: the current attempt of each task (of `keys`, or all)."""
    facts = {}
    # Plain tuples: a task deep in a chain reads every task upstream of it, at each start.
    attempts = run.task_runs.filter(is_current=True, for_each_key="")
    if keys is not None:
        attempts = attempts.filter(task_key__in=sorted(keys))
    for task_id, task_key, result_state, termination_code, attempt_number, task_values, sql_output in attempts.values_list(
            "id", "task_key", "result_state", "termination_code", "attempt_number", "task_values", "sql_output"):
        facts[task_key] = {
            "run_id": task_id,
            "result_state": result_state or "",
            "error_code": termination_code if result_state not in (None, "SUCCESS") else "",
            "execution_count": attempt_number + 1,
            "values": task_values or {},
        }
        if isinstance(sql_output, dict) and "rows" in sql_output:
            facts[task_key]["output"] = {"rows": sql_output["rows"]}
    return facts


def reference_context(run, attempt, facts, task=None):
    return ReferenceContext(
        job_id=run.job_id,
        job_name=run.job_version.settings.get("name") or run.run_name,
        run_id=run.id,
        repair_count=run.repair_count,
        start_time=run.started_at or run.created_at,
        trigger_time=run.trigger_time or run.created_at,
        trigger_type=TRIGGER_TYPE_REFERENCE.get(run.trigger, run.trigger.lower()),
        job_parameters=parameter_values(run.job_parameters),
        task_name=attempt.task_key,
        task_run_id=attempt.id,
        task_execution_count=attempt.attempt_number + 1,
        task_notebook_path=((task or {}).get("notebook_task") or {}).get("notebook_path"),
        tasks=facts,
        workspace_id=0,
        workspace_url=settings.LAKEFLOW_BASE_URL,
        input=attempt.iteration_input if attempt.iteration is not None else NOT_IN_FOR_EACH,
        file_arrival_location=((run.trigger_details or {}).get("file_arrival") or {}).get("location"),
        table_update=table_update_context((run.trigger_details or {}).get("table_update")),
        backfill_time=backfill_time((run.trigger_details or {}).get("backfill")),
    )


def backfill_time(details):
    """{{backfill.*}}: the start of the run's backfill window, its slot (backfills/driving.py)."""
    from datetime import datetime

    slot = (details or {}).get("slot")
    return datetime.fromisoformat(slot) if isinstance(slot, str) else None


def table_update_context(details):
    """The run's table_update details with commit times as datetimes, for the reference resolver."""
    if not details:
        return None
    from datetime import datetime

    tables = {}
    for name, facts in (details.get("tables") or {}).items():
        moment = facts.get("commit_timestamp")
        tables[name] = {**facts, "commit_timestamp": datetime.fromisoformat(moment) if moment else None}
    return {"updated_tables": details.get("updated_tables") or [], "tables": tables}


def _resolve_all(value, ctx):
    if isinstance(value, str):
        return resolve(value, ctx)
    if isinstance(value, list):
        return [_resolve_all(item, ctx) for item in value]
    if isinstance(value, dict):
        return {key: _resolve_all(item, ctx) for key, item in value.items()}
    return value


def resolve_task(task, run, attempt, facts):
    """A copy of the task dict with its type block resolved; returns (task, widgets, environment).

    References in code (a shell command, SQL query text) are not pasted into it: they become
    environment variables the command expands, or bound SQL markers (jobs/spec/embedded.py).
    Raises EmbeddedReferenceError for one that stands where no value can be bound."""
    task = task_with_legacy_parameters(task, run.overriding_parameters or {})  # copies the task
    type_name = task_type_of(task)
    ctx = reference_context(run, attempt, facts, task)
    block = task.get(type_name) or {}
    environment = {}
    value_of = functools.partial(value_text, ctx=ctx)
    if type_name == "shell_command_task" and isinstance(block.get("command"), str):
        command, environment = shell_command_with_variables(block["command"], value_of)
        block = {**_resolve_all({k: v for k, v in block.items() if k != "command"}, ctx), "command": command}
    elif type_name == "sql_task" and isinstance((block.get("query") or {}).get("query_text"), str):
        text, markers = sql_with_markers(block["query"]["query_text"], value_of)
        block = _resolve_all({**block, "query": {**block["query"], "query_text": ""}}, ctx)
        block["query"]["query_text"] = text
        block["parameters"] = {**(block.get("parameters") or {}), **markers}
    else:
        block = _resolve_all(block, ctx)
    job_values = parameter_values(run.job_parameters)
    kv_field = KEY_VALUE_PARAMETERS.get(type_name)
    if kv_field and (kv_field in block or type_name != "python_wheel_task"):
        block[kv_field] = {**(block.get(kv_field) or {}), **job_values}
    task[type_name] = block
    widgets = {**job_values, **(block.get(kv_field) or {} if kv_field else {})}
    return task, widgets, environment


def resolved_values(task, environment=None):
    """The API's resolved_values block for a task run; a shell command's references show as the
    variables it read them from."""
    type_name = task_type_of(task)
    block = task.get(type_name) or {}
    shown = {key: value for key, value in block.items() if key in ("parameters", "named_parameters", "base_parameters", "command", "commands")}
    if environment:
        shown["environment"] = dict(environment)
    return {type_name: shown} if type_name else {}
