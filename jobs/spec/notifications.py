"""`email_notifications`, `webhook_notifications`, `notification_settings` and `health`, on a job
and on each task: their shapes, checked as the Jobs API reads them. Pure.

Whether a webhook's destination exists is the server's question (jobs/checks.py asks the
notifications app); everything that can be decided from the settings alone is decided here.
"""

from __future__ import annotations

import re
from typing import Any

from .checker import INT64_MAX, Checker

EVENTS = ("on_start", "on_success", "on_failure", "on_duration_warning_threshold_exceeded",
          "on_streaming_backlog_exceeded")
# Platform maintenance of a continuous job's compute: there is none here, so they are accepted
# (a job written for Databricks keeps them) and never fire.
NEVER_FIRED_EVENTS = ("on_maintenance_start", "on_maintenance_complete")
RUN_DURATION = "RUN_DURATION_SECONDS"
BACKLOG_METRICS = ("STREAMING_BACKLOG_BYTES", "STREAMING_BACKLOG_RECORDS", "STREAMING_BACKLOG_SECONDS",
                   "STREAMING_BACKLOG_FILES")
METRICS = (RUN_DURATION, *BACKLOG_METRICS)
OPS = ("GREATER_THAN",)
MAX_WEBHOOKS_PER_EVENT = 3  # Databricks' limit
MAX_EMAILS_PER_EVENT = 100
MAX_HEALTH_RULES = 10
JOB_MUTES = ("no_alert_for_skipped_runs", "no_alert_for_canceled_runs")
TASK_MUTES = (*JOB_MUTES, "alert_on_last_attempt")
# Close to the address forms SMTP servers accept (RFC 5321's dot-atom local part, a dotted
# domain of labels), with no display name: an address field holds one address.
EMAIL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                   r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")
MAX_EMAIL_CHARS = 254


def is_email_address(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_EMAIL_CHARS and bool(EMAIL.fullmatch(value))


FIELDS = ("email_notifications", "webhook_notifications", "notification_settings", "health")


def check_notifications(c: Checker, block: dict, path: str, *, task: bool, in_for_each: bool = False) -> None:
    """The four fields of a job (path "") or of a task (path "tasks[i]")."""
    def at(key):
        return f"{path}.{key}" if path else key

    if in_for_each:  # its iterations would alert one by one: the for-each task's own settings do
        for name in FIELDS:
            if name in block:
                c.add(at(name), "the task inside a for-each task cannot have notifications or health rules; "
                                "set them on the for-each task")
        return

    emails = c.obj(block, path, "email_notifications")
    if emails is not None:
        for where, addresses in _event_lists(c, emails, at("email_notifications"), "email addresses",
                                             MAX_EMAILS_PER_EVENT, "addresses"):
            for i, address in enumerate(addresses):
                if not is_email_address(address):
                    c.add(f"{where}[{i}]", f"{address!r} is not a valid email address")
        c.boolean(emails, at("email_notifications"), "no_alert_for_skipped_runs")
        _refuse_unknown(c, emails, at("email_notifications"),
                        (*EVENTS, *NEVER_FIRED_EVENTS, "no_alert_for_skipped_runs"))

    webhooks = c.obj(block, path, "webhook_notifications")
    if webhooks is not None:
        for where, entries in _event_lists(c, webhooks, at("webhook_notifications"),
                                           "{id} of notification destinations", MAX_WEBHOOKS_PER_EVENT, "destinations"):
            seen = set()
            for i, entry in enumerate(entries):
                if not isinstance(entry, dict):
                    c.add(f"{where}[{i}]", "must be an object with the id of a notification destination")
                    continue
                destination = c.string(entry, f"{where}[{i}]", "id", required=True, non_empty=True)
                if destination in seen:
                    c.add(f"{where}[{i}].id", f"destination {destination} is listed more than once")
                seen.add(destination)
        _refuse_unknown(c, webhooks, at("webhook_notifications"), (*EVENTS, *NEVER_FIRED_EVENTS))

    mutes = c.obj(block, path, "notification_settings")
    if mutes is not None:
        allowed = TASK_MUTES if task else JOB_MUTES
        for name in allowed:
            c.boolean(mutes, at("notification_settings"), name)
        _refuse_unknown(c, mutes, at("notification_settings"), allowed)

    health = c.obj(block, path, "health")
    if health is not None:
        rules = health.get("rules")
        where = f"{at('health')}.rules"
        if rules is not None and not isinstance(rules, list):
            c.add(where, "must be a list of {metric, op, value}")
        elif rules:
            if len(rules) > MAX_HEALTH_RULES:
                c.add(where, f"at most {MAX_HEALTH_RULES} rules")
            metrics = set()
            for i, rule in enumerate(rules):
                if not isinstance(rule, dict):
                    c.add(f"{where}[{i}]", "must be an object with metric, op and value")
                    continue
                c.choice(rule, f"{where}[{i}]", "metric", METRICS, required=True)
                metric = rule.get("metric") if rule.get("metric") in METRICS else None
                c.choice(rule, f"{where}[{i}]", "op", OPS, required=True)
                c.integer(rule, f"{where}[{i}]", "value", required=True, low=1, high=INT64_MAX)
                if metric is not None and metric in metrics:
                    c.add(f"{where}[{i}].metric", f"{metric} has more than one rule")
                metrics.add(metric)
        _refuse_unknown(c, health, at("health"), ("rules",))


def _event_lists(c: Checker, block: dict, path: str, what: str, most: int, items: str):
    """(field path, list) of each event's list in an email_notifications or webhook_notifications
    block, after checking it is a list of at most ``most`` items."""
    for event in (*EVENTS, *NEVER_FIRED_EVENTS):
        entries = block.get(event)
        if entries is None:
            continue
        where = f"{path}.{event}"
        if not isinstance(entries, list):
            c.add(where, f"must be a list of {what}")
            continue
        if len(entries) > most:
            c.add(where, f"at most {most} {items} per event")
        yield where, entries


def _refuse_unknown(c: Checker, block: dict, path: str, known: tuple[str, ...]) -> None:
    for name in block:
        if name not in known:
            c.add(f"{path}.{name}", f"is not a field here; the fields are {', '.join(known)}")


def destination_ids(settings: dict) -> list[tuple[str, str]]:
    """(field path, destination id) of every webhook in the job and its tasks."""
    found = []
    blocks = [("", settings)]
    for i, task in enumerate(settings.get("tasks") or []):
        if isinstance(task, dict):
            blocks.append((f"tasks[{i}]", task))
    for path, block in blocks:
        webhooks = block.get("webhook_notifications")
        if not isinstance(webhooks, dict):
            continue
        for event, entries in webhooks.items():
            for j, entry in enumerate(entries if isinstance(entries, list) else []):
                if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                    prefix = f"{path}." if path else ""
                    found.append((f"{prefix}webhook_notifications.{event}[{j}].id", entry["id"]))
    return found


def health_threshold(block: dict, metric: str = RUN_DURATION) -> int | None:
    """The value of the block's rule on ``metric`` (GREATER_THAN is the only op), or None."""
    rules = (block.get("health") or {}).get("rules") or []
    for rule in rules:
        if isinstance(rule, dict) and rule.get("metric") == metric and isinstance(rule.get("value"), int):
            return rule["value"]
    return None
