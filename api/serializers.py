"""A run as the Jobs API shows it: the SDK's `Run`/`BaseRun`/`RunTask`/`RepairHistoryItem`
shapes, the `RunOutput` of a task run, and the HTML page of runs/export.

Times are epoch milliseconds (0 for "not yet"), durations milliseconds. `result_state` and
`termination_details` appear only once a run or attempt is finished. `tasks[]` has one entry
per attempt, in the order of the job's tasks, then oldest attempt first. `usage` (ours) says what
an attempt's processes consumed and cost, and a run's sums of them, once measured.
"""

import copy
import functools
import html

from django.conf import settings as site_settings
from django.template import Context, Template

from jobs.spec.git_source import used_git_source
from api.http import OBJECT_PAGE_SIZE, slice_page
from runs.engine.endings import default_code, default_type
from runs.engine.states import (
    STATUS_STATE_OF_LIFE_CYCLE,
    RunLifeCycleState as L,
    RunResultState as R,
    is_finished,
)
from runs.task_logs import executed_notebook_html, read_task_log_tail, redactor
from runs.dbt_artifacts import dbt_output
from runs.for_each import iteration_stats
from runs.loading import attempt_task_settings

QUEUE_REASON = "Queued: the job already has max_concurrent_runs active runs"
# How much of each attempt's log the runs/export page shows.
EXPORT_LOG_BYTES = 32 * 1024


def ms(moment):
    return int(moment.timestamp() * 1000) if moment else 0


def span_ms(start, end, now):
    """Milliseconds from start to end (or to now while it goes on); 0 if it never started."""
    return max(0, ms(end or now) - ms(start)) if start else 0


def state_dict(life_cycle_state, result_state, message):
    finished = is_finished(life_cycle_state)
    state = {
        "life_cycle_state": life_cycle_state,
        "state_message": message or "",
        "user_cancelled_or_timedout": bool(finished and result_state in (R.CANCELED, R.TIMEDOUT)),
    }
    if finished and result_state:
        state["result_state"] = result_state
    if life_cycle_state == L.QUEUED:
        state["queue_reason"] = QUEUE_REASON
    return state


def status_dict(life_cycle_state, code, termination_type, message):
    status = {"state": STATUS_STATE_OF_LIFE_CYCLE[life_cycle_state].value}
    if is_finished(life_cycle_state) and code:
        details = {"code": code, "message": message or ""}
        if termination_type:
            details["type"] = termination_type
        status["termination_details"] = details
    if life_cycle_state == L.QUEUED:
        status["queue_details"] = {"code": "MAX_CONCURRENT_RUNS_REACHED", "message": QUEUE_REASON}
    return status


def row_state(row):
    """state and status of a Run, Repair or TaskRun row."""
    return (
        state_dict(row.life_cycle_state, row.result_state, row.state_message),
        status_dict(row.life_cycle_state, row.termination_code, row.termination_type, row.state_message),
    )


def user_name(user):
    return user.get_username() if user is not None else None


def run_page_url(base_url, job_id, run_id):
    """The dashboard's run page (a task run id opens its run with that attempt selected)."""
    return f"{base_url}/jobs/{job_id}/runs/{run_id}/"


# --- task runs -----------------------------------------------------------------------------


def ordered_attempts(run):
    """Every attempt of the run: in the job's task order, then oldest attempt first."""
    order = {task["task_key"]: i for i, task in enumerate(run.job_version.settings.get("tasks", []))}
    attempts = list(run.task_runs.filter(for_each_key=""))
    attempts.sort(key=lambda a: (order.get(a.task_key, len(order)), a.task_key, a.id))
    return attempts


def task_settings_by_key(run):
    return {task["task_key"]: task for task in run.job_version.settings.get("tasks", [])}


def task_run_dict(attempt, task_settings, *, job_id, base_url, now, include_resolved_values=False):
    """A RunTask: the task's settings (depends_on, run_if, its task-type block...) plus this attempt."""
    body = copy.deepcopy(task_settings or {})
    # queued -> started (a worker claimed it) -> setup (git checkout, environment build) ->
    # execution -> cleanup (the process ended -> its results written): the last three span
    # started -> ended, and make the run_duration.
    setup = attempt.setup_duration_ms or 0
    cleanup = attempt.cleanup_duration_ms or 0
    execution = max(0, span_ms(attempt.started_at, attempt.ended_at, now) - setup - cleanup)
    state, status = row_state(attempt)
    body.update(
        task_key=attempt.task_key,
        run_id=attempt.id,
        attempt_number=attempt.attempt_number,
        # Not in the SDK 0.156 RunTask, but in Databricks' answer: it links a retry to its first attempt.
        original_attempt_run_id=attempt.original_attempt_id or attempt.id,
        start_time=ms(attempt.started_at),
        end_time=ms(attempt.ended_at) if is_finished(attempt.life_cycle_state) else 0,
        queue_duration=span_ms(attempt.queued_at, attempt.started_at or attempt.ended_at, now),
        setup_duration=setup,
        execution_duration=execution,
        cleanup_duration=cleanup,
        run_duration=setup + execution + cleanup,
        state=state,
        status=status,
        run_page_url=run_page_url(base_url, job_id, attempt.id),
    )
    if attempt.outcome and isinstance(body.get("condition_task"), dict):
        body["condition_task"]["outcome"] = attempt.outcome
    if attempt.task_type == "for_each_task" and isinstance(body.get("for_each_task"), dict):
        body["for_each_task"]["stats"] = iteration_stats(attempt.run, attempt)
    if attempt.iteration is not None:
        # Not in the SDK's RunTask: which element of the for-each inputs this iteration ran.
        body["iteration"] = {"index": attempt.iteration, "input": attempt.iteration_input}
    if include_resolved_values and attempt.resolved_values:
        body["resolved_values"] = attempt.resolved_values
    if attempt.cpu_seconds is not None:  # ours: measured by its supervisor (runs/executors/usage.py)
        body["usage"] = usage_dict(attempt, "cpu_seconds", "peak_memory_bytes", "read_bytes", "written_bytes")
    return body


def usage_dict(row, *names):
    """What a TaskRun (or, summed, a Run) consumed, and its cost in the configured currency."""
    return {**{name: getattr(row, name) for name in names}, "cost": row.cost or 0.0,
            "currency": site_settings.LAKEFLOW_COST_CURRENCY}


def task_run_as_run(attempt, *, base_url, now, include_resolved_values=False, page=0, paged=True):
    """(A task run in the `Run` shape, whether a later page has more iterations): runs/get of a
    task run id, runs/get-output's metadata.

    With paged, a for-each task run's `iterations` hold page `page` (100 each), as runs/get pages
    a job run's tasks (the SDK's get_run extends iterations from every page while one is given);
    without, all of them (API 2.1)."""
    run = attempt.run
    task = task_run_dict(attempt, attempt_task_settings(run.job_version, attempt), job_id=run.job_id,
                         base_url=base_url, now=now, include_resolved_values=include_resolved_values)
    body = {
        "job_id": run.job_id,
        "run_id": attempt.id,
        "job_run_id": run.id,
        "number_in_job": attempt.id,
        "task_key": attempt.task_key,
        "run_name": run.run_name,
        "run_type": run.run_type,
        "trigger": run.trigger,
        "job_parameters": run.job_parameters,
        "tasks": [task],
    }
    body["iterations"], more = iteration_page(attempt, page if paged else None, base_url=base_url, now=now,
                                              include_resolved_values=include_resolved_values)
    if paged:  # the SDK extends job_parameters from every page too
        body["job_parameters"], more_parameters = slice_page(run.job_parameters or [], page)
        more = more or more_parameters
        if page and attempt.task_type != "for_each_task":
            # A page made by job_parameters alone: the SDK extends tasks from it (a run without
            # iterations pages tasks), so the task is on the first page only.
            body["tasks"] = []
    for name in ("attempt_number", "original_attempt_run_id", "start_time", "end_time", "setup_duration",
                 "execution_duration", "cleanup_duration", "run_duration", "state", "status", "run_page_url"):
        body[name] = task[name]
    if run.creator_id:
        body["creator_user_name"] = user_name(run.creator)
    return body, more


def iteration_page(attempt, page, *, base_url, now, include_resolved_values=False):
    """(Page `page` of a for-each task run's iterations as RunTasks, whether a later page has
    more): every attempt, by index then age, OBJECT_PAGE_SIZE of them (all of them for page
    None). The database reads one page (plus one row, to know of more), not the whole loop."""
    if attempt.task_type != "for_each_task":
        return [], False
    run = attempt.run
    rows = run.task_runs.filter(for_each_key=attempt.task_key).order_by("iteration", "id")
    if attempt.repair_id is None:
        rows = rows.filter(repair__isnull=True)  # a repaired-over for-each shows what it ran itself
    size = OBJECT_PAGE_SIZE if page is not None else None
    if size:
        rows = rows[page * size:(page + 1) * size + 1]
    rows = list(rows)
    nested = (task_settings_by_key(run).get(attempt.task_key) or {}).get("for_each_task", {}).get("task")
    return [task_run_dict(row, nested, job_id=run.job_id, base_url=base_url, now=now,
                          include_resolved_values=include_resolved_values)
            for row in rows[:size]], bool(size) and len(rows) > size


# --- job runs ------------------------------------------------------------------------------


def run_dict(run, *, base_url, now, with_tasks=True, include_history=False, include_resolved_values=False,
             page=0, paged=True):
    """(Run dict, whether a later page has more of its arrays).

    With paged, tasks, job_parameters and repair_history hold page `page` (100 each), as the SDK
    extends all three from every page; without, they are whole (API 2.1)."""
    settings = run.job_version.settings
    state, status = row_state(run)
    body = {
        "job_id": run.job_id,
        "run_id": run.id,
        "number_in_job": run.id,
        "original_attempt_run_id": run.id,
        "run_name": run.run_name,
        "run_type": run.run_type,
        "trigger": run.trigger,
        "start_time": ms(run.created_at),
        "end_time": ms(run.ended_at) if is_finished(run.life_cycle_state) else 0,
        "setup_duration": 0,
        "execution_duration": 0,
        "cleanup_duration": 0,
        "run_duration": span_ms(run.created_at, run.ended_at, now),
        "queue_duration": span_ms(run.created_at, run.started_at or run.ended_at, now),
        "state": state,
        "status": status,
        "run_page_url": run_page_url(base_url, run.job_id, run.id),
        "iterations": [],
    }
    if run.creator_id:
        body["creator_user_name"] = user_name(run.creator)
    # The SDK's TriggerInfo: the run_job_task that started it, or what a trigger fired it with.
    trigger_info = {key: value for key, value in (run.trigger_details or {}).items()
                    if key in ("job_completion", "sql_condition")}
    if run.parent_task_run_id:
        trigger_info["run_id"] = run.parent_task_run_id
    if trigger_info:
        body["trigger_info"] = trigger_info
    if settings.get("description"):
        body["description"] = settings["description"]
    # run-now's legacy notebook_params, python_params... (API 2.0 and 2.1), as the SDK's RunParameters.
    legacy = {key: value for key, value in (run.overriding_parameters or {}).items() if key != "job_parameters"}
    if legacy:
        body["overriding_parameters"] = legacy
    git_source = used_git_source(settings, run.git_commit)
    if git_source:  # with git_snapshot.used_commit once a task resolved it
        body["git_source"] = git_source
    if run.cpu_seconds is not None:  # ours: the sums over its measured attempts
        body["usage"] = usage_dict(run, "cpu_seconds")

    arrays = {"job_parameters": run.job_parameters or []}
    attempts = ordered_attempts(run) if with_tasks or include_history else []
    if with_tasks:
        arrays["tasks"] = attempts
    if include_history:
        arrays["repair_history"] = repair_history(run, attempts, now)
    more = False
    for name, items in arrays.items():
        if paged:
            items, has_more = slice_page(items, page)
            more = more or has_more
        body[name] = items
    if with_tasks:
        by_key = task_settings_by_key(run)
        body["tasks"] = [
            task_run_dict(a, by_key.get(a.task_key), job_id=run.job_id, base_url=base_url, now=now,
                          include_resolved_values=include_resolved_values)
            for a in body["tasks"]
        ]
    return body, more


def repair_history(run, attempts, now):
    """[ORIGINAL, REPAIR...]: what each pass over the run did and how it ended."""
    repairs = list(run.repairs.order_by("id"))
    original = {
        "type": "ORIGINAL",
        "id": run.id,
        "start_time": ms(run.created_at),
        "task_run_ids": [a.id for a in attempts if a.repair_id is None],
    }
    if not repairs:
        state, status = row_state(run)
        original.update(end_time=ms(run.ended_at) if is_finished(run.life_cycle_state) else 0,
                        state=state, status=status)
    else:
        original.update(original_ending(run, repairs[0]))
    history = [original]
    for repair in repairs:
        state, status = row_state(repair)
        history.append({
            "type": "REPAIR",
            "id": repair.id,
            "start_time": ms(repair.created_at),
            "end_time": ms(repair.ended_at) if is_finished(repair.life_cycle_state) else 0,
            "state": state,
            "status": status,
            "task_run_ids": [a.id for a in attempts if a.repair_id == repair.id],
        })
    return history


def original_ending(run, first_repair):
    """How the run ended before its first repair, from the event log (the run row moved on)."""
    event = (
        run.events.filter(type__in=("run.finished", "run.skipped"), task_run__isnull=True,
                          at__lte=first_repair.created_at)
        .order_by("id")
        .first()
    )
    result = (event.data.get("result_state") if event else None) or None
    message = (event.data.get("message") if event else "") or ""
    life_cycle = L.SKIPPED if event and event.type == "run.skipped" else L.TERMINATED
    return {
        "end_time": ms(event.at) if event else ms(first_repair.created_at),
        "state": state_dict(life_cycle, result, message),
        "status": status_dict(life_cycle, default_code(result) if result else None,
                              default_type(result) if result else None, message),
    }


# --- runs/get-output and runs/export ---------------------------------------------------------


def run_output_dict(attempt, *, base_url, now, with_logs=True, viewer=None):
    """RunOutput of one task run: its metadata, the last 5 MB of its log (for those who may read
    logs), its error and result."""
    # The metadata of a for-each task run lists its first page of iterations (runs/get has all).
    body = {"metadata": task_run_as_run(attempt, base_url=base_url, now=now)[0]}
    if attempt.log_path and with_logs:  # with the secret values the attempt read redacted
        body["logs"], body["logs_truncated"], _ = read_task_log_tail(attempt)
    if attempt.error:
        body["error"] = attempt.error
    if attempt.error_trace:
        body["error_trace"] = attempt.error_trace
    if attempt.notebook_result is not None:  # dbutils.notebook.exit's value, redacted like the log
        result, redact = attempt.notebook_result, redactor(attempt)
        if isinstance(result, dict):
            body["notebook_output"] = {"result": redact(str(result.get("result", ""))),
                                       "truncated": bool(result.get("truncated", False))}
        else:
            body["notebook_output"] = {"result": redact(str(result)), "truncated": False}
    elif attempt.task_type == "notebook_task" and attempt.result_state:
        body["notebook_output"] = {}  # the notebook ran but never called dbutils.notebook.exit
    if attempt.sql_output is not None:
        body["sql_output"] = {"query_output": attempt.sql_output}
    if attempt.task_type == "dbt_task" and with_logs and viewer is not None and (
            found := dbt_output(attempt, base_url=base_url, viewer=viewer)):
        body["dbt_output"] = found
    if attempt.task_type == "run_job_task":
        child = attempt.child_runs.order_by("-id").values_list("id", flat=True).first()
        if child:
            body["run_job_output"] = {"run_id": child}
    return body


EXPORT_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Run {{ run.id }}: {{ run.run_name }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1f24}table{border-collapse:collapse;margin:1rem 0}
td,th{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}
pre{background:#f6f8fa;padding:.8rem;overflow:auto;max-height:30rem;white-space:pre-wrap}
.SUCCESS{color:#1a7f37}.FAILED,.TIMEDOUT,.UPSTREAM_FAILED,.INTERNAL_ERROR{color:#cf222e}
</style></head><body>
<h1>{{ run.run_name|default:"Untitled run" }}</h1>
<table>
<tr><th>Run id</th><td>{{ run.id }}</td></tr><tr><th>Job id</th><td>{{ run.job_id }}</td></tr>
<tr><th>Run type</th><td>{{ run.run_type }}</td></tr><tr><th>Trigger</th><td>{{ run.trigger }}</td></tr>
<tr><th>State</th>
<td class="{{ run.result_state }}">{{ run.life_cycle_state }} {{ run.result_state|default:"" }}</td></tr>
<tr><th>Message</th><td>{{ run.state_message }}</td></tr>
<tr><th>Started</th><td>{{ run.created_at|date:"c" }}</td></tr>
<tr><th>Ended</th><td>{{ run.ended_at|date:"c" }}</td></tr>
</table>
<h2>Parameters</h2>
<table><tr><th>Name</th><th>Default</th><th>Value</th></tr>
{% for p in run.job_parameters %}<tr><td>{{ p.name }}</td><td>{{ p.default }}</td><td>{{ p.value }}</td></tr>
{% empty %}<tr><td colspan="3">none</td></tr>{% endfor %}</table>
<h2>Tasks</h2>
<table><tr><th>Task</th><th>Task run id</th><th>Attempt</th><th>State</th><th>Result</th><th>Message</th></tr>
{% for a in attempts %}<tr><td>{{ a.task_key }}</td><td>{{ a.id }}</td><td>{{ a.attempt_number }}</td>
<td>{{ a.life_cycle_state }}</td><td class="{{ a.result_state }}">{{ a.result_state|default:"" }}</td>
<td>{{ a.state_message }}</td></tr>
{% endfor %}</table>
{% for a, log, truncated in logs %}<h3>{{ a.task_key }} (task run {{ a.id }}, attempt {{ a.attempt_number }})</h3>
{% if truncated %}<p>Only the end of the log is shown.</p>{% endif %}<pre>{{ log }}</pre>
{% if a.error %}<h4>Error</h4><pre>{{ a.error }}
{{ a.error_trace }}</pre>{% endif %}
{% endfor %}</body></html>
"""


def notebook_views(attempts):
    """runs/export views of the notebooks these attempts executed, rendered with their outputs."""
    views = []
    for attempt in attempts:
        if attempt.executed_notebook:
            try:
                content = executed_notebook_html(attempt)
            except OSError as exc:  # NotebookUnreadable too: gone, or rewritten by its own task
                content = f"<p>Task run {attempt.id}: {html.escape(str(exc))}.</p>"
            views.append({"name": f"{attempt.task_key} (task run {attempt.id})", "type": "NOTEBOOK",
                          "content": content})
    return views


def export_html(run, with_logs=True):
    """A self-contained page of the run, its tasks, parameters and each attempt's log tail (for
    those who may read logs); everything from the run is escaped by the template."""
    attempts = ordered_attempts(run)
    logs = [(a, *read_task_log_tail(a, max_bytes=EXPORT_LOG_BYTES)[:2])
            for a in attempts if a.log_path and with_logs]
    return export_template().render(Context({"run": run, "attempts": attempts, "logs": logs}))


@functools.cache
def export_template():
    return Template(EXPORT_PAGE)
