"""The append-only event log: one row per state change, written in the changing transaction.

An event's reactions (runs/reactions.py) run after that transaction commits."""

from runs.models import RunEvent
from runs.reactions import after_commit, has_durable_reactions


def _with_pending_reactions(event):
    event.reactions_pending = has_durable_reactions(event) or None
    return event


def record(run, event_type, task_run, at, **data):
    event = _with_pending_reactions(RunEvent(run=run, task_run=task_run, type=event_type, at=at, data=data))
    event.save(force_insert=True)
    after_commit([event])
    return event


def record_many(run, entries, at):
    """entries: [(event_type, task_run or None, data)], in record's order."""
    events = RunEvent.objects.bulk_create([
        _with_pending_reactions(RunEvent(run=run, task_run=task_run, type=event_type, at=at, data=data))
        for event_type, task_run, data in entries])
    after_commit(events)
    return events
