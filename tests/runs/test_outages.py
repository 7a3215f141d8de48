"""Outages of what we do not own: a broker that is down or restarted empty, a database that
drops the clock's connection. Nothing is lost and nothing stops for good."""

import redis
from django.db import OperationalError
from django.utils import timezone

from runs import clock
from runs.admission import create_run
from runs.clock import requeue_after_broker_restart, run_clock
from runs.dispatch import finish_attempt
from runs.engine.endings import attempt_ended
from runs.engine.states import RunLifeCycleState as L, RunResultState as R
from runs.models import TaskRun
from tests.runs.conftest import claim_attempt, make_job, shell


def test_a_broker_that_is_down_fails_no_run_and_leaves_its_attempts_pending(alice, monkeypatch):
    def broker_down(ids):
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("runs.broker.enqueue_attempts", broker_down)
    job = make_job(alice, [shell("a"), shell("b", depends_on=["a"])])

    run, created = create_run(job)  # committed: the hand-over that failed after it is the clock's to redo
    a = TaskRun.objects.get(run=run, task_key="a")
    assert created and a.life_cycle_state == L.PENDING
    assert claim_attempt(a.id) is not None
    assert finish_attempt(a.id, attempt_ended(R.SUCCESS)) is True
    assert TaskRun.objects.get(run=run, task_key="b").life_cycle_state == L.PENDING


def test_a_restarted_broker_gets_every_pending_attempt_again(alice, broker, monkeypatch):
    job = make_job(alice, [shell("a"), shell("b")])
    run, _ = create_run(job)
    pending = sorted(broker.take())
    run_ids = iter(["first-redis", "first-redis", "restarted-redis", "restarted-redis"])
    monkeypatch.setattr(clock, "broker_run_id", lambda: next(run_ids))
    monkeypatch.setitem(clock._broker_seen, "run_id", None)
    now = timezone.now()

    assert requeue_after_broker_restart(now) == 0  # the first look only learns who the broker is
    assert requeue_after_broker_restart(now) == 0
    assert requeue_after_broker_restart(now) == 2
    assert sorted(broker.take()) == pending
    assert requeue_after_broker_restart(now) == 0
    assert broker.take() == []
    assert set(TaskRun.objects.filter(run=run).values_list("life_cycle_state", flat=True)) == {L.PENDING}


def test_the_clock_keeps_going_when_the_database_drops_its_connection(db, monkeypatch):
    monkeypatch.setattr(clock, "SLOW_EVERY", 0.0)
    monkeypatch.setattr(clock, "LEASE_RENEW_EVERY", 0.0)
    monkeypatch.setattr(clock, "STEP_SECONDS", 0.0)
    renewals = iter([OperationalError("terminating connection due to administrator command"), True, True])

    def take_lease(holder, now):
        outcome = next(renewals)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    passes = []
    monkeypatch.setattr(clock, "take_lease", take_lease)
    monkeypatch.setattr(clock, "run_clock_steps", lambda slow: passes.append(slow))
    monkeypatch.setattr(clock, "release_lease", lambda holder: passes.append("released"))
    # What the loop reads between passes: nothing due, nothing running (no query on the dropped connection).
    monkeypatch.setattr(clock, "clock_state", lambda: ([], False))
    monkeypatch.setattr(clock, "database_version", lambda: None)
    loops = iter(range(3))

    run_clock(lambda: next(loops, None) is None, holder="test")

    assert passes == [True, True, "released"]
