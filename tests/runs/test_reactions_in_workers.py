"""The clock hands the reactions to its commits' events to the workers, in broker messages of a
few events each, instead of running them itself (its time belongs to the schedules); a worker
that runs a message does them as the committing process would have."""

import pytest
from django.db import transaction

from runs import reactions
from runs.admission import create_run
from runs.engine.states import RunLifeCycleState as L
from runs.models import RunEvent
from tests.runs.conftest import make_job


def condition_job(user):
    return make_job(user, [{"task_key": "c", "condition_task": {"op": "EQUAL_TO", "left": "1", "right": "1"}}])


@pytest.fixture
def messages(monkeypatch):
    sent = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kwargs: sent.append((func, *args)))
    monkeypatch.setattr(reactions, "REACTIONS_PER_MESSAGE", 2)
    monkeypatch.setitem(reactions._in_workers, "on", True)
    return sent


def test_a_process_that_reacts_in_workers_sends_its_events_reactions_in_messages(alice, broker, messages):
    with transaction.atomic():  # three one-condition runs that end as they start, in one commit
        runs = [create_run(condition_job(alice))[0] for _ in range(3)]

    assert all(run.life_cycle_state == L.TERMINATED for run in runs)
    ended = list(RunEvent.objects.filter(run__in=runs, type="run.finished").order_by("id").values_list("id", flat=True))
    assert [(func, ids) for func, ids in messages] == [
        ("runs.reactions.run_reactions_of", ended[:2]), ("runs.reactions.run_reactions_of", ended[2:])]
    assert RunEvent.objects.filter(id__in=ended, reactions_pending=True).count() == 3

    for func, ids in messages:
        reactions.run_reactions_of(ids)

    assert not RunEvent.objects.filter(id__in=ended, reactions_pending=True).exists()
