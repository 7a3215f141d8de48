"""Notifications as reactions to run events (runs/reactions.py): each event a job's settings
want told becomes Notification rows, one per (run, cause, recipient), in the reaction's
transaction. The senders (notifications/delivery.py) take it from there; a run never waits.
"""

from django.conf import settings as django_settings
from django.db.models import Max

from notifications.models import Destination, Notification
from notifications.rules import EVENT_TYPES, Happening, cause_key, event_of, notifies, recipients
from runs.engine.states import RunLifeCycleState as L
from runs.loading import job_version, per_version, task_settings, to_ms
from runs.models import Run, RunEvent, TaskRun
from runs.reactions import reacts_to

RUN_EVENTS = ("run.started", "run.repair_started", "run.finished")
TASK_EVENTS = ("task.running", "task.finished", "task.skipped")
HEALTH_EVENT = "run.health_warning"
@per_version
def _profile(settings):
    """(the job block notifies anyone, the task keys whose blocks do)."""
    return notifies(settings), frozenset(
        task["task_key"] for task in settings.get("tasks") or [] if isinstance(task, dict) and notifies(task))


def notifying(event):
    """Only the events a job's settings want told: every other state change skips this reaction
    (and its bookkeeping) altogether, answered from memory."""
    job_notifies, tasks_notifying = _profile(event.run.job_version_id)
    if event.type in TASK_EVENTS:  # every task event records its task_key
        return (event.data or {}).get("task_key") in tasks_notifying
    return job_notifies or event.type == HEALTH_EVENT


@reacts_to(*RUN_EVENTS, *TASK_EVENTS, HEALTH_EVENT, when=notifying)
def queue_notifications(event):
    run = Run.objects.select_related("job").get(id=event.run_id)
    version = job_version(run.job_version_id)
    data = event.data or {}
    attempt = None
    task_key = ""
    if event.type in TASK_EVENTS:
        attempt = TaskRun.objects.get(id=event.task_run_id)
        if attempt.for_each_key or attempt.task_type == "condition_task":
            return  # iterations notify through their for-each task; condition tasks never do
        if event.type != "task.running" and attempt.attempt_number and attempt.started_at is None:
            # A retry that never ran (its run was canceled or timed out while it waited): the
            # failure it was to retry was the task's last attempt after all, and alerts now.
            attempt = _previous_attempt(attempt)
            data = {"result_state": attempt.result_state, "life_cycle_state": attempt.life_cycle_state,
                    "message": attempt.state_message}
        task_key = attempt.task_key
    elif event.type == HEALTH_EVENT:
        task_key = data.get("task_key") or ""
    block = task_settings(version, task_key) if task_key else version.settings
    if block is None:
        return
    happening = _happening(event, data, attempt)
    notification_event = event_of(block, happening, task=bool(task_key))
    if notification_event is None:
        return
    wanted = recipients(block, notification_event)
    if not wanted:
        return
    occasion = _occasion(event, attempt)
    facts = _facts(run, event, data, attempt, task_key, notification_event, version.settings)
    destinations = {d.id: d for d in Destination.objects.filter(
        id__in=[r.partition(":")[2] for r in wanted if r.startswith("destination:")])}
    rows = []
    for recipient in wanted:
        kind, _, value = recipient.partition(":")
        destination = destinations.get(value) if kind == "destination" else None
        row = Notification(run=run, task_key=task_key, event=notification_event,
                           cause=cause_key(notification_event, task_key, occasion), recipient=recipient,
                           destination=destination,
                           channel=destination.destination_type if destination else ("EMAIL" if kind == "email" else ""),
                           facts=facts, next_try_at=event.at, created_at=event.at)
        if kind == "destination" and destination is None:  # deleted since the job was saved: visible, never sent
            row.state, row.next_try_at = Notification.State.FAILED, None
            row.error = f"the notification destination {value} no longer exists"
        rows.append(row)
    Notification.objects.bulk_create(rows, ignore_conflicts=True)


def _previous_attempt(retry):
    chain = retry.original_attempt_id
    if retry.attempt_number == 1:
        return TaskRun.objects.get(id=chain)
    return TaskRun.objects.get(original_attempt_id=chain, attempt_number=retry.attempt_number - 1)


def _happening(event, data, attempt):
    if event.type in ("run.started", "run.repair_started"):
        return Happening("start")
    if event.type == "task.running":
        return Happening("start", first_try=attempt.attempt_number == 0)
    if event.type == HEALTH_EVENT:
        return Happening("health", metric=data.get("metric"))
    # A retry is scheduled in the failure's own transaction (runs/dispatch.py advance_locked).
    retry_follows = attempt is not None and TaskRun.objects.filter(
        original_attempt_id=attempt.original_attempt_id or attempt.id,
        attempt_number__gt=attempt.attempt_number).exclude(
        life_cycle_state=L.TERMINATED, started_at__isnull=True).exists()  # a retry that ended before it ran
    return Happening("end", result_state=data.get("result_state"), retry_follows=retry_follows)


def _occasion(event, attempt):
    """Which run of the run's life the event belongs to: the run itself, one of its repairs,
    one task attempt, or one health warning."""
    if attempt is not None:
        return f"attempt-{attempt.id}"
    if event.type == HEALTH_EVENT:
        return (event.data or {}).get("occasion") or "run"
    if event.type == "run.repair_started":
        return f"repair-{(event.data or {}).get('repair_id')}"
    # run.started or run.finished: the repair that was open then (the last one started before it)
    repair = RunEvent.objects.filter(run_id=event.run_id, type="run.repair_started", id__lt=event.id).aggregate(
        last=Max("id"))["last"]
    if repair is None:
        return "run"
    return f"repair-{RunEvent.objects.get(id=repair).data.get('repair_id')}"


def _facts(run, event, data, attempt, task_key, notification_event, settings):
    """What happened, as every channel's message tells it (notifications/messages.py)."""
    facts = {
        "event": notification_event, "event_type": EVENT_TYPES[notification_event],
        "job_id": run.job_id, "job_name": settings.get("name") or run.job.name or f"job {run.job_id}",
        "run_id": run.id, "run_name": run.run_name, "at_ms": to_ms(event.at),
        "run_page_url": f"{django_settings.LAKEFLOW_BASE_URL}/jobs/{run.job_id}/runs/{run.id}/",
        "trigger": run.trigger,
    }
    if task_key:
        facts["task_key"] = task_key
    if attempt is not None:
        facts["task_run_id"] = attempt.id
        facts["attempt_number"] = attempt.attempt_number
    if event.type in ("run.finished", "task.finished", "task.skipped"):
        facts["result_state"] = data.get("result_state")
        facts["life_cycle_state"] = data.get("life_cycle_state")
        facts["message"] = _ending_message(run, data, attempt, settings)
    if event.type == HEALTH_EVENT:
        facts.update(metric=data.get("metric"), threshold=data.get("threshold"), observed=data.get("observed"))
        facts["message"] = data.get("reason") or ""
    if event.type == "run.repair_started":
        facts["repair_id"] = data.get("repair_id")
    return facts


def _ending_message(run, data, attempt, settings):
    message = data.get("message") or ""
    if attempt is None and data.get("result_state") == "TIMEDOUT" and run.cancel_reason == "TIMEOUT":
        limit = settings.get("timeout_seconds")
        return f"Timed out: the run took longer than the job's timeout_seconds ({limit} s)"
    if attempt is not None and data.get("result_state") == "FAILED":
        error = attempt.error
        if error and error not in message:
            message = f"{message}: {error}" if message else error
    return message[:2000]
