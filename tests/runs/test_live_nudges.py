"""With Redis, a transaction wakes each changed run's sockets once, after it commits (the live
reaction to every event, runs/live.py nudge_runs, fed by runs/reactions.py after_commit)."""

from types import SimpleNamespace

import pytest
from django.db import transaction

from runs.reactions import after_commit


def nudge_run(run_id):
    """What runs.events.record does for an event of this run that has no durable reaction."""
    after_commit([SimpleNamespace(id=None, type="task.pending", run_id=run_id, reactions_pending=None)])


@pytest.fixture
def sent(monkeypatch, settings):
    settings.REDIS_URL = "redis://nowhere:6379/0"
    messages = []

    class Layer:
        async def group_send(self, group, message):
            messages.append((group, message["type"]))

    monkeypatch.setattr("channels.layers.get_channel_layer", lambda: Layer())
    return messages


def test_one_message_per_run_and_transaction_after_it_commits(transactional_db, sent):
    with transaction.atomic():
        for run_id in (7, 7, 8, 7):
            nudge_run(run_id)
        assert sent == []
    assert sent == [("run-7", "run.changed"), ("run-8", "run.changed")]


def test_a_rolled_back_transaction_wakes_nobody_and_the_next_one_still_does(transactional_db, sent):
    with pytest.raises(ZeroDivisionError):
        with transaction.atomic():
            nudge_run(7)
            1 / 0
    assert sent == []
    with transaction.atomic():
        nudge_run(9)
    assert sent == [("run-9", "run.changed")]
    nudge_run(10)  # outside a transaction: at once
    assert sent[-1] == ("run-10", "run.changed")
