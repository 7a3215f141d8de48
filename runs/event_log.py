"""A run's events as sentences: why each task started, skipped, retried or ended, and why the
run was queued, admitted or ended. Every decision writes its reason into its event
(runs/transitions.py, runs/admission.py), so the answer to "why?" is this list."""

from runs.models import RunEvent

EVENTS_SHOWN = 500


def describe(event_type, data):
    """One event as a sentence."""
    task = data.get("task_key", "")
    why = data.get("reason") or data.get("message") or ""
    result = data.get("result_state") or data.get("life_cycle_state") or ""
    said = {
        "run.queued": f"Queued: {why}",
        "run.waiting": f"Waiting: {why}",
        "run.started": f"Started: {why}",
        "run.cancel_requested": f"Cancel requested: {why}",
        "run.repair_started": f"Repair started ({why}): re-running {', '.join(data.get('rerun_tasks') or [])}",
        "run.finished": f"Run ended {result}" + (f": {why}" if why else ""),
        "task.pending": f"{task} is ready to start: {why}" if why else f"{task} is ready to start",
        "task.running": f"{task} attempt {int(data.get('attempt_number') or 0) + 1} started" + (f": {why}" if why else ""),
        "task.retry_scheduled": f"{task}: {why}" if why else f"{task}: a retry is scheduled",
        "task.skipped": f"{task} skipped ({result})" + (f": {why}" if why else ""),
        "task.terminating": f"{task} is being canceled" + (f": {why}" if why else ""),
        "task.finished": f"{task} ended {result}" + (f": {why}" if why else ""),
        "task.iterations_created": f"{task}: {why}" if why else f"{task}: iterations created",
        "task.child_run_started": f"{task} started run {data.get('child_run_id')} of job {data.get('child_job_id')}",
    }.get(event_type)
    return said or f"{event_type} {data}"


def event_rows(run, task_run=None):
    """The run's events (or one attempt's), oldest first, as {id, at, type, task_key, text}."""
    events = RunEvent.objects.filter(run=run).order_by("id")
    if task_run is not None:
        events = events.filter(task_run=task_run)
    rows = list(events.values("id", "at", "type", "data", "task_run_id")[:EVENTS_SHOWN])
    return [{"id": row["id"], "at": row["at"], "type": row["type"], "task_run_id": row["task_run_id"],
             "task_key": (row["data"] or {}).get("task_key", ""), "text": describe(row["type"], row["data"] or {})}
            for row in rows]
