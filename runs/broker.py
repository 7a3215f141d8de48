"""Handing attempts to the django-q2 broker, which only carries them: our database decides what
runs (a worker claims an attempt by compare-and-swap, runs/worker.py)."""

from django.db import transaction


def enqueue_attempts(attempt_ids):
    """Hand attempts to the broker now (after their transaction committed: a worker must find them)."""
    if not attempt_ids:
        return
    from django_q.tasks import async_task

    for attempt_id in attempt_ids:
        async_task("runs.worker.execute_attempt", attempt_id, task_name=f"attempt-{attempt_id}")


def enqueue_on_commit(attempt_ids):
    ids = list(attempt_ids)
    if ids:
        # robust: with the broker down the attempts stay PENDING, and the clock hands them over
        # again; the error must not reach a caller whose transaction has already committed.
        # (enqueue_attempts is looked up when called: tests hold the broker, tests/conftest.py.)
        transaction.on_commit(lambda: enqueue_attempts(ids), robust=True)
