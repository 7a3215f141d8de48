"""The audit log as the Audit page and the JSON API read it: filters, keyset pages, and each row
in the shape of Databricks' system.access.audit."""

from datetime import datetime

from audit.models import AuditEvent

PAGE_SIZE = 50


class BadFilter(ValueError):
    pass


def parse_time(text, name):
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadFilter(f"{name} must be a time like 2026-12-06T10:00:00+00:00, not {text!r}") from None
    if moment.tzinfo is None:
        raise BadFilter(f"{name} must say its time zone (for example 2026-12-06T10:00:00Z)")
    return moment


def filtered(user_name="", action="", job_id=None, since="", until="", before=None, time_names=("since", "until")):
    """Rows newest first; `action` is "service.action" or just the action name; `time_names`
    are what the caller calls since and until (for the message of a bad one)."""
    rows = AuditEvent.objects.all()
    if user_name:
        rows = rows.filter(user_name=user_name)
    if action:
        service, _, name = action.rpartition(".")
        rows = rows.filter(action_name=name, **({"service_name": service} if service else {}))
    if job_id is not None:
        rows = rows.filter(job_id=job_id)
    if since:
        rows = rows.filter(at__gte=parse_time(since, time_names[0]))
    if until:
        rows = rows.filter(at__lt=parse_time(until, time_names[1]))
    if before is not None:
        rows = rows.filter(id__lt=before)
    return rows.order_by("-id")


def page(rows, size=PAGE_SIZE):
    """(rows of this page, the id to pass as `before` for the next one or None)."""
    listed = list(rows[:size + 1])
    return listed[:size], (listed[size - 1].id if len(listed) > size else None)


def as_system_row(event):
    """One row of system.access.audit (the columns this server can fill)."""
    return {
        "event_id": str(event.id), "event_time": event.at.isoformat(), "event_date": event.at.date().isoformat(),
        "service_name": event.service_name, "action_name": event.action_name,
        "user_identity": {"email": event.user_name or None, "subject_name": event.user_name or None},
        "identity_metadata": {"credential": event.credential or None},
        "request_params": event.request_params, "request_target": event.target or None,
        "job_id": event.job_id, "http_method": event.method, "path": event.path,
        "response": {"status_code": event.status_code, "error_message": event.error_message or None,
                     "result": event.outcome},
        "source_ip_address": event.source_ip_address or None, "user_agent": event.user_agent or None,
        "audit_level": "WORKSPACE_LEVEL", "workspace_id": "0",
    }
