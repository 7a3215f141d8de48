"""The append-only event log: one row per state change, written in the changing transaction.

An event's reactions (runs/reactions.py) run after that transaction commits."""

from runs.models import RunEvent
from runs.reactions import after_commit, has_durable_reactions


def record(run, event_type, task_run, at, **data):
    event = RunEvent.objects.create(run=run, task_run=task_run, type=event_type, at=at, data=data,
                                    reactions_pending=has_durable_reactions(event_type, data) or None)
    after_commit([event])
    return event


def record_many(run, entries, at):
    """entries: [(event_type, task_run or None, data)], in record's order."""
    events = RunEvent.objects.bulk_create([
        RunEvent(run=run, task_run=task_run, type=event_type, at=at, data=data,
                 reactions_pending=has_durable_reactions(event_type, data) or None)
        for event_type, task_run, data in entries])
    after_commit(events)
    return events
