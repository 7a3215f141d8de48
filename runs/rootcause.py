"""The failure root-cause view: why a run did not succeed, for the top of its page.

Loads the run's latest attempts, asks runs/engine/rootcause.py which tasks the trouble started
in, and adds what a person needs next to each: the error, the last lines of the log, how many
attempts were made, whether the task failed the same way before, and what changed in the job
since its last successful run. Read-only; every query is bounded.
"""

import difflib

import yaml
from django.db.models import Q
from django.db.models.functions import Left, Right

from runs.loading import graph_for_run, status_of
from runs.engine.rootcause import (
    OWN_FAILURE_RESULTS,
    error_line,
    failure_of,
    find_origins,
    is_explained,
    last_lines,
    parameter_changes,
    same_failure,
)
from runs.engine.states import (
    FINISHED_LIFE_CYCLES,
    CancelReason,
    RunLifeCycleState as L,
    RunResultState as R,
)
from runs.models import Run, RunEvent, TaskRun
from runs.task_logs import read_task_log_tail

# Earlier runs of the job searched for the same failure: the newest ones, enough to see a pattern.
EARLIER_RUNS_SEARCHED = 50
EARLIER_FAILURES_SHOWN = 5
# A for-each with a thousand failed iterations shows the first few; the rest are counted.
ITERATIONS_SHOWN = 5
LOG_LINES_SHOWN = 20
# Enough for 20 ordinary lines; a log of many megabytes is never read whole.
LOG_TAIL_BYTES = 16 * 1024

TITLES = {
    R.FAILED: "Why this run failed",
    R.TIMEDOUT: "Why this run timed out",
    R.CANCELED: "Why this run was canceled",
    R.SUCCESS_WITH_FAILURES: "Why some tasks of this run failed",
}


def explain(run):
    """What the run page shows first for a run that did not succeed; None for any other run.

    {"run_id", "job_id", "result_state", "title", "summary", "cancel_reason", "cancel_message",
     "origins": [origin...], "more_origins": [{for_each_key, task_run_id, count}], "changes": {...}}
    """
    if not is_explained(run.life_cycle_state, run.result_state):
        return None
    # Whole rows: the origins' errors and messages are what this page is about.
    attempts = {a.task_key: a for a in run.task_runs.filter(is_current=True, for_each_key="")}
    statuses = {key: status_of(attempt) for key, attempt in attempts.items()}
    earlier_run_ids = list(
        Run.objects.filter(job_id=run.job_id, id__lt=run.id).order_by("-id").values_list("id", flat=True)[
            :EARLIER_RUNS_SEARCHED]
    )
    origins, more = [], []
    for found in find_origins(graph_for_run(run), statuses):
        attempt = attempts[found.task_key]
        iterations, hidden = failed_iterations(run, attempt) if found.kind == "failed" else ([], 0)
        for row in iterations or [attempt]:
            origins.append(describe_origin(run, row, found, earlier_run_ids))
        if hidden:
            more.append({"for_each_key": attempt.task_key, "task_run_id": attempt.id, "count": hidden})
    result = run.result_state or (R.FAILED if run.life_cycle_state == L.INTERNAL_ERROR else "")
    return {
        "run_id": run.id,
        "job_id": run.job_id,
        "result_state": result,
        "title": TITLES.get(result, "Why this run failed"),
        "summary": run.state_message,
        "cancel_reason": run.cancel_reason,
        "cancel_message": cancel_message(run, origins) if result in (R.CANCELED, R.TIMEDOUT) else "",
        "origins": origins,
        "more_origins": more,
        "changes": changes_since_last_success(run),
    }


def failed_iterations(run, wrapper):
    """A failed for-each's iterations that failed themselves (the first few) and how many more did."""
    if wrapper.task_type != "for_each_task":
        return [], 0
    failed = TaskRun.objects.filter(run=run, for_each_key=wrapper.task_key, is_current=True).filter(
        Q(life_cycle_state=L.INTERNAL_ERROR)
        | Q(life_cycle_state__in=FINISHED_LIFE_CYCLES, result_state__in=OWN_FAILURE_RESULTS)
    )
    shown = list(failed.order_by("iteration")[:ITERATIONS_SHOWN])
    hidden = failed.count() - len(shown) if len(shown) == ITERATIONS_SHOWN else 0
    return shown, hidden


def describe_origin(run, attempt, found, earlier_run_ids):
    """One origin for the template: the attempt (a task's or an iteration's) and its context."""
    error = attempt.error or attempt.state_message
    failure = failure_of(attempt.result_state or R.FAILED, error, attempt.error_trace)
    same = earlier_failures(attempt, failure, earlier_run_ids) if found.kind == "failed" else []
    return {
        "task_key": attempt.task_key,
        "task_run_id": attempt.id,
        "for_each_key": attempt.for_each_key,
        "iteration": attempt.iteration,
        "kind": found.kind,
        "result_state": attempt.result_state or "",
        "life_cycle_state": attempt.life_cycle_state,
        "attempt_count": attempt_count(attempt),
        "error": error,
        "error_line": error_line(error),
        "exception_type": failure.exception,
        "error_trace": attempt.error_trace,
        "last_log_lines": log_lines(attempt),
        "downstream_skipped": list(found.downstream_skipped),
        "child_run": child_run(attempt),
        "earlier_failures": same[:EARLIER_FAILURES_SHOWN],
        "earlier_failure_count": len(same),
    }


def attempt_count(attempt):
    """Attempts made at this task (or iteration) in the run: the first one, its retries, repairs."""
    attempts = TaskRun.objects.filter(run_id=attempt.run_id, task_key=attempt.task_key,
                                      for_each_key=attempt.for_each_key)
    if attempt.for_each_key:
        attempts = attempts.filter(iteration=attempt.iteration)
    return attempts.count()


def log_lines(attempt):
    # An unreadable log (on another node's disk) reads as empty: no reason to fail the page.
    text, truncated, _ = read_task_log_tail(attempt, max_bytes=LOG_TAIL_BYTES)
    return last_lines(text, LOG_LINES_SHOWN, truncated=truncated) if text else []


def child_run(attempt):
    """The run a run_job_task started, where its failure really happened."""
    if attempt.task_type != "run_job_task":
        return None
    row = attempt.child_runs.order_by("-id").values("id", "job_id").first()
    return {"run_id": row["id"], "job_id": row["job_id"]} if row else None


def earlier_failures(attempt, failure, earlier_run_ids):
    """Earlier runs (of the newest searched) in which this task failed the same way, newest first.

    One entry per run: its latest attempt of the task that matches.
    """
    if not earlier_run_ids:
        return []
    rows = TaskRun.objects.filter(
        run_id__in=earlier_run_ids, task_key=attempt.task_key, for_each_key=attempt.for_each_key,
        result_state=failure.result_state,
    )
    if attempt.for_each_key:
        rows = rows.filter(iteration=attempt.iteration)
    # Only the start of the error and the end of the trace are compared: never load a whole trace.
    rows = rows.annotate(error_head=Left("error", 2000), message_head=Left("state_message", 2000),
                         trace_tail=Right("error_trace", 2000))
    found, seen = [], set()
    for row in rows.order_by("-run_id", "-id").values(
            "id", "run_id", "run__job_id", "error_head", "message_head", "trace_tail", "ended_at"):
        if row["run_id"] in seen:
            continue
        earlier = failure_of(failure.result_state, row["error_head"] or row["message_head"], row["trace_tail"])
        if same_failure(failure, earlier):
            seen.add(row["run_id"])
            found.append({"run_id": row["run_id"], "job_id": row["run__job_id"], "task_run_id": row["id"],
                          "failed_at": row["ended_at"], "error_line": earlier.line})
    return found


def cancel_message(run, origins):
    """Who or what canceled the run, in the words recorded when it happened."""
    if run.cancel_reason == CancelReason.TIMEOUT:
        seconds = run.job_version.settings.get("timeout_seconds")
        return f"Canceled by the job's timeout ({seconds} seconds)" if seconds else "Canceled by the job's timeout"
    # A running task's own message is overwritten when its process stops; the request's is kept.
    asked = RunEvent.objects.filter(run=run, type="task.terminating").order_by("id").values_list(
        "data", flat=True).first()
    if asked and asked.get("message"):
        return asked["message"]
    for origin in origins:
        if origin["kind"] == "canceled" and origin["error"]:
            return origin["error"]
    return run.state_message


# --- what changed since the last successful run ------------------------------------------------


def changes_since_last_success(run):
    last = (Run.objects.filter(job_id=run.job_id, id__lt=run.id, result_state=R.SUCCESS)
            .select_related("job_version").order_by("-id").first())
    if last is None:
        return {"last_success_run_id": None, "last_success_job_id": run.job_id, "last_success_at": None,
                "version_diff": None, "parameter_diff": []}
    version_diff = None
    if last.job_version_id != run.job_version_id:
        version_diff = settings_diff(last.job_version, run.job_version)
    return {
        "last_success_run_id": last.id,
        "last_success_job_id": last.job_id,
        "last_success_at": last.ended_at,
        "version_diff": version_diff,
        "parameter_diff": parameter_changes(last.job_parameters, run.job_parameters),
    }


def settings_as_yaml(settings):
    return yaml.safe_dump(settings, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)


def settings_diff(before, after):
    """A unified diff of two job versions' settings, as text and as lines the template can colour."""
    lines = list(difflib.unified_diff(
        settings_as_yaml(before.settings).splitlines(), settings_as_yaml(after.settings).splitlines(),
        fromfile=f"version {before.number}", tofile=f"version {after.number}", lineterm="",
    ))
    return {
        "from_version": before.number,
        "to_version": after.number,
        "diff": "\n".join(lines),
        "lines": [{"kind": diff_line_kind(line), "text": line} for line in lines],
    }


def diff_line_kind(line):
    if line.startswith(("---", "+++")):
        return "file"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "add"
    if line.startswith("-"):
        return "del"
    return "context"
