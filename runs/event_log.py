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
        "run.health_warning": f"Health warning: {why}" if why else f"Health warning: {warning_label(data)}",
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


HEALTH_WARNING = "run.health_warning"  # written by whoever watches health rules (the notifications app)
WARNINGS_SHOWN = 100


def warning_label(data):
    """One health warning as its badge says it: "Duration warning: ran > 2 s"."""
    metric, threshold = data.get("metric") or "", data.get("threshold")
    if metric == "RUN_DURATION_SECONDS":
        return f"Duration warning: ran > {threshold} s"
    if metric.startswith("STREAMING_BACKLOG_"):
        return f"Streaming backlog warning: {metric.removeprefix('STREAMING_BACKLOG_').lower()} > {threshold}"
    return f"Health warning: {metric} > {threshold}"


def health_warnings(run_id):
    """The run's health warnings, one per task (or the run: task_key "") and metric, the latest."""
    found = {}
    events = RunEvent.objects.filter(run_id=run_id, type=HEALTH_WARNING).order_by("-id").values_list("data", flat=True)
    for data in events[:WARNINGS_SHOWN]:
        data = data or {}
        key = (data.get("task_key") or "", data.get("metric") or "")
        found.setdefault(key, {"task_key": key[0], "metric": key[1], "label": warning_label(data),
                               "reason": data.get("reason") or ""})
    return sorted(found.values(), key=lambda w: (w["task_key"], w["metric"]))


def watches_health(settings):
    """Whether a job version has health rules, on the job or a task (else no warning can exist)."""
    blocks = [settings, *(t for t in settings.get("tasks") or [] if isinstance(t, dict))]
    return any((block.get("health") or {}).get("rules") for block in blocks)
