"""The append-only event log: one row per state change, written in the changing transaction."""

from runs.live import nudge_run
from runs.models import RunEvent


def record(run, event_type, task_run, at, **data):
    nudge_run(run.id)
    return RunEvent.objects.create(run=run, task_run=task_run, type=event_type, at=at, data=data)


def record_many(run, entries, at):
    """entries: [(task_run or None, event_type, data)]."""
    nudge_run(run.id)
    RunEvent.objects.bulk_create(
        [RunEvent(run=run, task_run=task_run, type=event_type, at=at, data=data) for task_run, event_type, data in entries]
    )
