"""The append-only event log: one row per state change, written in the changing transaction.

An event's reactions (runs/reactions.py) run after that transaction commits."""

from contextlib import contextmanager
from contextvars import ContextVar

from django.db import connection, transaction

from runs.models import RunEvent
from runs.reactions import after_commit, has_durable_reactions

_gathering = ContextVar("gathering_run_events", default=None)


def _with_pending_reactions(event):
    event.reactions_pending = has_durable_reactions(event) or None
    return event


def _gathering_here():
    """The gathered() block's list if one is open at this savepoint depth, else None: an event
    recorded inside a nested savepoint (create_run's, say) is written at once, so a rollback of
    that savepoint takes it along."""
    gathering = _gathering.get()
    return gathering[1] if gathering is not None and gathering[0] == len(connection.savepoint_ids) else None


def record(run, event_type, task_run, at, **data):
    event = _with_pending_reactions(RunEvent(run=run, task_run=task_run, type=event_type, at=at, data=data))
    gathering = _gathering_here()
    if gathering is not None:
        gathering.append(event)
        return event
    event.save(force_insert=True)
    after_commit([event])
    return event


def record_many(run, entries, at):
    """entries: [(event_type, task_run or None, data[, its own at])], in record's order."""
    events = [_with_pending_reactions(RunEvent(run=run, task_run=entry[1], type=entry[0],
                                               at=entry[3] if len(entry) > 3 else at, data=entry[2]))
              for entry in entries]
    gathering = _gathering_here()
    if gathering is not None:
        gathering.extend(events)
        return events
    events = RunEvent.objects.bulk_create(events)
    after_commit(events)
    return events


@contextmanager
def gathered():
    """The events recorded in this block are written together, in one INSERT, as it ends (inside
    the caller's transaction, in their order): an attempt's end, the next task's start and its
    claim cost one statement, not three. Nothing in the block may read events back (until it
    ends, they have no ids). A block that raises writes none; nested at the same savepoint depth,
    the outer one writes. Open it inside the transaction (``with transaction.atomic(), gathered():``)."""
    depth, current = len(connection.savepoint_ids), _gathering.get()
    if current is not None and current[0] == depth:
        yield
        return
    events = []
    token = _gathering.set((depth, events))
    try:
        yield
    finally:
        _gathering.reset(token)
    if events:
        after_commit(RunEvent.objects.bulk_create(events))


@contextmanager
def savepoint():
    """transaction.atomic() inside the caller's transaction (a savepoint) whose events join the
    gathered() block around it, in their order, and leave it again if the savepoint rolls back
    (without a gathered() block at this depth: one of its own)."""
    gathering = _gathering.get()
    if gathering is None or gathering[0] != len(connection.savepoint_ids):
        with transaction.atomic(), gathered():
            yield
        return
    depth, events = gathering
    kept = len(events)
    with transaction.atomic():
        token = _gathering.set((depth + 1, events))
        try:
            yield
        except BaseException:
            del events[kept:]  # rolled back with the savepoint
            raise
        finally:
            _gathering.reset(token)
