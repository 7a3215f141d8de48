"""The clock hands the reactions to its commits' events to the workers, in broker messages of a
few events each, instead of running them itself (its time belongs to the schedules); a worker
that runs a message does them as the committing process would have. A commit with a few events
(a run the clock timed out) it still reacts to at once; its sweep leaves handed-off events to the
workers for a while."""

import pytest
from django.db import transaction
from django.utils import timezone

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
    monkeypatch.setattr(reactions, "_handed_off", {})
    with reactions.reacting_in_workers():
        yield sent
    assert not reactions._in_workers["on"]


def ended_events(runs):
    return list(RunEvent.objects.filter(run__in=runs, type="run.finished").order_by("id").values_list("id", flat=True))


def test_a_process_that_reacts_in_workers_sends_its_events_reactions_in_messages(alice, broker, messages):
    with transaction.atomic():  # three one-condition runs that end as they start, in one commit
        runs = [create_run(condition_job(alice))[0] for _ in range(3)]

    assert all(run.life_cycle_state == L.TERMINATED for run in runs)
    ended = ended_events(runs)
    assert [(func, ids) for func, ids in messages] == [
        ("runs.reactions.run_reactions_of", ended[:2]), ("runs.reactions.run_reactions_of", ended[2:])]
    assert RunEvent.objects.filter(id__in=ended, reactions_pending=True).count() == 3

    for func, ids in messages:
        reactions.run_reactions_of(ids)

    assert not RunEvent.objects.filter(id__in=ended, reactions_pending=True).exists()


def test_a_commit_with_a_few_events_is_reacted_to_at_once(alice, broker, messages):
    with transaction.atomic():
        runs = [create_run(condition_job(alice))[0] for _ in range(2)]

    assert messages == []
    assert not RunEvent.objects.filter(id__in=ended_events(runs), reactions_pending=True).exists()


def test_the_sweep_leaves_handed_off_events_to_the_workers_for_a_while(alice, broker, messages, monkeypatch):
    with transaction.atomic():
        runs = [create_run(condition_job(alice))[0] for _ in range(3)]
    later = timezone.now() + timezone.timedelta(minutes=1)

    assert reactions.sweep_reactions(later) == 0
    assert RunEvent.objects.filter(id__in=ended_events(runs), reactions_pending=True).count() == 3

    monkeypatch.setattr(reactions, "HANDED_OFF_SECONDS", 0)
    monkeypatch.setattr(reactions, "_handed_off", {event_id: 0.0 for event_id in ended_events(runs)})
    assert reactions.sweep_reactions(later) == 3
