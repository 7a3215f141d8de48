"""Which notifications a run's event causes, and to whom. Pure: no Django, no I/O.

The Databricks semantics (../shared/reference/lakeflow-jobs.md §1.3), with one deliberate
default: a task's failure alerts only when no retry will follow, and its retries do not alert
on start, unless the task sets ``notification_settings.alert_on_last_attempt: false``
(Databricks alerts on every failed attempt by default; an alert for a retry that then succeeds
is the complaint we set out to fix). Job-level notifications are about the run, so task retries
never reach them; job-level mutes do not apply to task-level notifications.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.spec.notifications import BACKLOG_METRICS, RUN_DURATION

SUCCEEDED = ("SUCCESS", "SUCCESS_WITH_FAILURES")
CANCELED = ("CANCELED", "UPSTREAM_CANCELED")
SKIPPED = ("SKIPPED", "UPSTREAM_FAILED", "MAXIMUM_CONCURRENT_RUNS_REACHED")
NEVER_ALERTED = ("EXCLUDED", "DISABLED")  # not run on purpose
EVENT_TYPES = {  # our event -> the generic webhook's event_type (Databricks' codes)
    "on_start": "jobs.on_start", "on_success": "jobs.on_success", "on_failure": "jobs.on_failure",
    "on_duration_warning_threshold_exceeded": "jobs.on_duration_warning_threshold_exceeded",
    # Databricks documents no code for it; ours follows the pattern.
    "on_streaming_backlog_exceeded": "jobs.on_streaming_backlog_exceeded",
}


@dataclass(frozen=True)
class Happening:
    """What a run event says, as far as notifications care.

    kind: "start", "end" or "health"; result_state: how a run or task ended (end); first_try:
    the attempt is not a retry (start); retry_follows: a retry of the failed attempt is
    scheduled (end); metric: the health rule's metric (health)."""

    kind: str
    result_state: str | None = None
    first_try: bool = True
    retry_follows: bool = False
    metric: str | None = None


def outcome(result_state: str | None) -> str | None:
    """on_success, on_failure, or None (never alerted), by how a run or task ended."""
    if result_state in SUCCEEDED:
        return "on_success"
    if result_state in NEVER_ALERTED:
        return None
    return "on_failure"  # FAILED, TIMEDOUT, INTERNAL_ERROR's FAILED, canceled and skipped ones


def event_of(block: dict, happening: Happening, *, task: bool) -> str | None:
    """The notification event a job (task=False) or task block's settings fire, or None."""
    mutes = block.get("notification_settings") or {}
    legacy_skipped = (block.get("email_notifications") or {}).get("no_alert_for_skipped_runs")
    if happening.kind == "start":
        if task and not happening.first_try and _last_attempt_only(mutes):
            return None
        return "on_start"
    if happening.kind == "health":
        if happening.metric == RUN_DURATION:
            return "on_duration_warning_threshold_exceeded"
        return "on_streaming_backlog_exceeded" if happening.metric in BACKLOG_METRICS else None
    event = outcome(happening.result_state)
    if event != "on_failure":
        return event
    if happening.result_state in CANCELED and mutes.get("no_alert_for_canceled_runs"):
        return None
    if happening.result_state in SKIPPED and (mutes.get("no_alert_for_skipped_runs") or legacy_skipped):
        return None
    if task and happening.retry_follows and _last_attempt_only(mutes):
        return None
    return event


def _last_attempt_only(mutes: dict) -> bool:
    return mutes.get("alert_on_last_attempt") is not False


def recipients(block: dict, event: str) -> list[str]:
    """Recipient keys for ``event``: "email:<address>" and "destination:<id>", each once."""
    found = []
    for address in (block.get("email_notifications") or {}).get(event) or []:
        if isinstance(address, str):
            found.append(f"email:{address.strip()}")
    for entry in (block.get("webhook_notifications") or {}).get(event) or []:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            found.append(f"destination:{entry['id']}")
    return list(dict.fromkeys(found))


def notifies(block: dict) -> bool:
    """Whether a job or task block could ever notify anyone (cheap filter for the hot path)."""
    return bool(block.get("email_notifications") or block.get("webhook_notifications")
                or (block.get("health") or {}).get("rules"))


def settings_notify(settings: dict) -> bool:
    """Whether the job or any of its tasks could notify anyone (the task inside a for-each has no
    notifications of its own: jobs/spec/notifications.py refuses them)."""
    return notifies(settings) or any(isinstance(task, dict) and notifies(task) for task in settings.get("tasks") or [])


def cause_key(event: str, task_key: str, occasion: str) -> str:
    """What makes one notification distinct from another of the same run and recipient."""
    scope = f"task:{task_key}" if task_key else "job"
    return f"{scope}:{event}:{occasion}"
