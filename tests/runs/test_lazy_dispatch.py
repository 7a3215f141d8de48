"""Lazy dispatch: a wide planner step hands the broker only LAKEFLOW_DISPATCH_AHEAD attempts; the
rest wait in the database for the run's finishing workers, and no attempt ever runs twice."""

import time

import pytest

from runs.admission import create_run
from runs.dispatch import finish_attempt
from runs.engine.endings import attempt_ended
from runs.engine.states import RunLifeCycleState as L, RunResultState as R
from runs.models import Run, RunEvent, TaskRun
from runs.transitions import Handoff
from tests.runs.conftest import claim_attempt, make_job, shell


@pytest.fixture(autouse=True)
def four_ahead(settings):
    settings.LAKEFLOW_DISPATCH_AHEAD = 4


def handoff(seconds=60):
    return Handoff("this-host", deadline=time.monotonic() + seconds)


def held(run):
    return list(TaskRun.objects.filter(run=run, life_cycle_state=L.PENDING, dispatched_at__isnull=True)
                .order_by("id").values_list("id", flat=True))


def test_a_wide_start_sends_only_the_first_attempts_and_holds_the_rest(alice, broker):
    job = make_job(alice, [shell(f"t{i}") for i in range(20)])
    run, _ = create_run(job)

    sent = broker.take()
    assert len(sent) == 4
    assert TaskRun.objects.filter(run=run, life_cycle_state=L.PENDING).count() == 20
    assert len(held(run)) == 16 and not set(sent) & set(held(run))
    # Every one of them is PENDING since its start, held or not: its queue time counts from then.
    assert not TaskRun.objects.filter(run=run, queued_at__isnull=True).exists()


def test_a_finishing_worker_takes_a_held_attempt_before_one_the_broker_carries(alice, broker):
    job = make_job(alice, [shell(f"t{i}") for i in range(20)])
    run, _ = create_run(job)
    first, *carried = broker.take()
    waiting = held(run)
    taking = handoff()

    finish_attempt(claim_attempt(first).id, attempt_ended(R.SUCCESS), handoff=taking)

    assert taking.pop() == waiting[0]
    assert broker.take() == []  # its place went to the held attempt: nothing more is sent
    assert TaskRun.objects.filter(id__in=carried, life_cycle_state=L.PENDING).count() == 3


def test_a_finish_that_takes_nothing_sends_one_held_attempt_in_its_place(alice, broker):
    job = make_job(alice, [shell(f"t{i}") for i in range(20)])
    run, _ = create_run(job)
    first = broker.take()[0]
    waiting = held(run)

    finish_attempt(claim_attempt(first).id, attempt_ended(R.SUCCESS), handoff=handoff(seconds=-1))  # past its deadline

    assert broker.take() == [waiting[0]]
    assert TaskRun.objects.get(id=waiting[0]).dispatched_at is not None
    assert held(run) == waiting[1:]


def test_the_reaper_or_a_worker_without_handoff_passes_its_place_on_too(alice, broker):
    job = make_job(alice, [shell(f"t{i}") for i in range(10)])
    run, _ = create_run(job)
    first = broker.take()[0]
    waiting = held(run)

    finish_attempt(claim_attempt(first).id, attempt_ended(R.FAILED, "lost"))

    assert broker.take() == [waiting[0]]


def test_control_flow_attempts_are_never_held(alice, broker):
    loops = [{"task_key": f"f{i}", "for_each_task": {"inputs": "[1]", "task": shell(f"item{i}")}} for i in range(10)]
    job = make_job(alice, loops + [shell(f"t{i}") for i in range(10)])
    run, _ = create_run(job)

    sent = set(broker.take())
    loops_sent = set(TaskRun.objects.filter(run=run, task_type="for_each_task").values_list("id", flat=True))
    assert len(loops_sent) == 10 and loops_sent <= sent and len(sent - loops_sent) == 4


def test_a_wide_run_driven_by_a_few_workers_runs_every_attempt_exactly_once(alice, broker):
    """Workers as runs/worker.py runs them, one after another: each takes a broker message (one
    whose attempt a handoff took finds it claimed) and follows its handoffs; at every fifth step
    the deadline has passed, so the place is passed on through the broker."""
    job = make_job(alice, [shell(f"t{i}") for i in range(60)])
    run, _ = create_run(job)
    inbox, steps = broker.take(), 0
    while inbox:
        message = inbox.pop(0)
        attempt = claim_attempt(message)
        while attempt is not None:
            steps += 1
            taking = handoff(seconds=60 if steps % 5 else -1)
            finish_attempt(attempt.id, attempt_ended(R.SUCCESS), handoff=taking)
            inbox += broker.take()
            taken = taking.pop()
            attempt = TaskRun.objects.get(id=taken) if taken else None

    assert Run.objects.get(id=run.id).result_state == R.SUCCESS
    running = RunEvent.objects.filter(run=run, type="task.running")
    assert running.count() == 60 and running.values("task_run").distinct().count() == 60
    assert steps == 60


def test_a_committed_handoff_is_run_as_loaded_without_reading_it_again(alice, broker, django_assert_num_queries):
    from runs import worker

    job = make_job(alice, [shell("a"), shell("b", depends_on=["a"])])
    run, _ = create_run(job)
    taking = handoff()
    taking.host = worker.HOST

    finish_attempt(claim_attempt(broker.take()[0]).id, attempt_ended(R.SUCCESS), handoff=taking)

    with django_assert_num_queries(0):
        b = worker.handed_off(taking)
        assert (b.task_key, b.life_cycle_state, b.run.job.id, b.run.job_version.id) == (
            "b", L.RUNNING, job.id, run.job_version_id)
    assert TaskRun.objects.get(id=b.id).worker_host == worker.HOST


class CommitLost(Exception):
    pass


def test_a_finish_tried_again_after_its_claim_was_rolled_back_still_has_someone_coming(alice, broker, settings):
    """reconnecting() tries a finish again with the same handoff; the first try's claim is gone."""
    from django.db import transaction

    from runs import worker

    settings.LAKEFLOW_DISPATCH_AHEAD = 1
    job = make_job(alice, [shell("a"), shell("b"), shell("c")])
    run, _ = create_run(job)
    a = claim_attempt(broker.take()[0])
    waiting = held(run)
    taking = handoff()
    taking.host = worker.HOST
    with pytest.raises(CommitLost), transaction.atomic():
        finish_attempt(a.id, attempt_ended(R.SUCCESS), handoff=taking)
        assert taking.attempt_id == waiting[0]
        raise CommitLost
    assert held(run) == waiting

    assert finish_attempt(a.id, attempt_ended(R.SUCCESS), handoff=taking)

    taken = worker.handed_off(taking)
    assert taken is not None and taken.id == waiting[0]
    assert TaskRun.objects.get(id=taken.id).worker_host == worker.HOST


def test_canceling_a_sent_attempt_sends_a_held_one_in_its_place(alice, broker, settings):
    from runs.dispatch import cancel_task_run

    settings.LAKEFLOW_DISPATCH_AHEAD = 1
    job = make_job(alice, [shell("a"), shell("b"), shell("c")])
    run, _ = create_run(job)
    first = broker.take()[0]
    waiting = held(run)

    assert cancel_task_run(first)

    assert broker.take() == [waiting[0]]


def test_the_clock_sends_held_attempts_only_when_no_worker_of_their_run_is_coming(alice, broker):
    from datetime import timedelta

    from django.utils import timezone

    from runs.clock import REQUEUE_AFTER, requeue_stale_pending

    job = make_job(alice, [shell(f"t{i}") for i in range(8)])
    run, _ = create_run(job)
    sent = broker.take()
    running = claim_attempt(sent[0])
    later = timezone.now() + REQUEUE_AFTER + timedelta(seconds=1)

    # The three other sent attempts' messages are old: sent again. The held ones have a worker
    # of their run coming (the running attempt's finish takes or sends one): left alone.
    assert requeue_stale_pending(later) == 3
    assert sorted(broker.take()) == sorted(sent[1:])
    for attempt_id in sent[1:]:
        claim_attempt(attempt_id)
    assert requeue_stale_pending(later) == 0

    # Nothing of the run runs any more and nothing is sent (a node died with its workers and
    # the reaper has not come yet): the held ones go to the broker.
    TaskRun.objects.filter(id__in=[running.id, *sent[1:]]).update(life_cycle_state=L.TERMINATED)
    assert requeue_stale_pending(later) == 4
    assert sorted(broker.take()) == held_before_requeue(run, sent)


def held_before_requeue(run, sent):
    return sorted(TaskRun.objects.filter(run=run).exclude(id__in=sent).values_list("id", flat=True))
