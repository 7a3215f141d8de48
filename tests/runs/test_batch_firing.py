"""Schedule storms: the clock fires the due slots of many schedule triggers in one transaction
(runs/triggers.py fire_schedules, runs/firings.py fire_slots_together, runs/admission.py
create_slot_runs), with the semantics of firing them one by one."""

import threading
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from runs.admission import create_run
from runs.engine.states import RunLifeCycleState as L
from runs.models import Run, RunEvent, TaskRun, TriggerDecision, TriggerState
from runs.triggers import BATCH_SIZE, fire_schedules, run_due_triggers, sync_trigger_state
from tests.runs.conftest import make_job, shell

T0 = datetime(2026, 3, 1, 12, 0, 0, 500_000, tzinfo=dt_timezone.utc)
SLOT = T0.replace(microsecond=0) + timedelta(seconds=2)


def scheduled_job(alice, **settings):
    job = make_job(alice, [shell("a"), shell("b", depends_on=["a"])],
                   schedule={"quartz_cron_expression": "0/2 * * * * ?", "timezone_id": "UTC"}, **settings)
    TriggerState.objects.filter(job=job).delete()
    sync_trigger_state(job, T0)
    return job


def runs_of(job):
    return list(Run.objects.filter(job=job).order_by("id"))


def test_a_storm_fires_every_job_once_with_its_events_attempts_and_decisions(alice, broker):
    jobs = [scheduled_job(alice) for _ in range(BATCH_SIZE + 7)]  # two transactions

    assert run_due_triggers(SLOT + timedelta(seconds=0.1)) == len(jobs)
    assert run_due_triggers(SLOT + timedelta(seconds=0.2)) == 0

    for job in jobs:
        (run,) = runs_of(job)
        assert (run.trigger, run.trigger_slot, run.life_cycle_state) == ("PERIODIC", SLOT, L.RUNNING)
        assert [e.type for e in RunEvent.objects.filter(run=run).order_by("id")] == [
            "run.queued", "run.started", "task.pending"]
        assert dict(TaskRun.objects.filter(run=run).values_list("task_key", "life_cycle_state")) == {
            "a": L.PENDING, "b": L.BLOCKED}
        state = TriggerState.objects.get(job=job)
        assert (state.last_slot, state.last_run_id, state.next_check_at) == (SLOT, run.id, SLOT + timedelta(seconds=2))
        (decision,) = TriggerDecision.objects.filter(job=job)
        assert (decision.kind, decision.run_id, decision.slot) == ("fired", run.id, SLOT)
    assert sorted(broker.take()) == sorted(TaskRun.objects.filter(task_key="a").values_list("id", flat=True))


def test_a_slot_that_already_has_its_run_does_not_stop_the_others(alice, broker):
    jobs = [scheduled_job(alice) for _ in range(5)]
    # Another clock already made the run of jobs[2]'s slot, and this clock did not see its step.
    made, _ = create_run(jobs[2], trigger=Run.Trigger.PERIODIC, trigger_slot=SLOT, trigger_time=SLOT)
    broker.take()

    assert run_due_triggers(SLOT + timedelta(seconds=0.1)) == 4

    for job in jobs:
        assert [run.trigger_slot for run in runs_of(job)] == [SLOT]
    assert runs_of(jobs[2]) == [made]
    assert TriggerState.objects.get(job=jobs[2]).last_run_id == made.id
    assert TriggerDecision.objects.filter(kind="fired").count() == 4
    assert len(broker.take()) == 4


def test_a_clock_that_read_the_triggers_before_another_fired_them_fires_nothing(alice, broker):
    jobs = [scheduled_job(alice) for _ in range(4)]
    stale = list(TriggerState.objects.select_related("job").order_by("id"))  # the second clock's read

    assert run_due_triggers(SLOT + timedelta(seconds=0.1)) == 4
    assert fire_schedules(stale, SLOT + timedelta(seconds=0.2)) == (0, [])  # every compare-and-swap lost

    assert [len(runs_of(job)) for job in jobs] == [1, 1, 1, 1]
    assert TriggerDecision.objects.count() == 4


def test_queue_and_max_concurrent_runs_hold_in_a_batch(alice, broker):
    free = scheduled_job(alice, max_concurrent_runs=1)
    queues = scheduled_job(alice, max_concurrent_runs=1, queue={"enabled": True})
    refuses = scheduled_job(alice, max_concurrent_runs=1, queue={"enabled": False})
    two = scheduled_job(alice, max_concurrent_runs=2, queue={"enabled": True})
    for job in (queues, refuses, two):
        create_run(job)  # each holds one slot
    broker.take()

    assert run_due_triggers(SLOT + timedelta(seconds=0.1)) == 4

    assert runs_of(free)[-1].life_cycle_state == L.RUNNING
    assert runs_of(two)[-1].life_cycle_state == L.RUNNING
    waiting = runs_of(queues)[-1]
    assert waiting.life_cycle_state == L.QUEUED
    assert list(RunEvent.objects.filter(run=waiting).values_list("type", flat=True)) == ["run.queued", "run.waiting"]
    skipped = runs_of(refuses)[-1]
    assert skipped.life_cycle_state == L.SKIPPED
    (refused,) = TriggerDecision.objects.filter(job=refuses)
    assert refused.kind == "refused" and "its run was skipped" in refused.reason
    assert TriggerDecision.objects.filter(job=queues, kind="fired", run=waiting).exists()
    assert len(broker.take()) == 2  # the runs that started: free's and two's


def test_missed_slots_and_paused_triggers_in_a_batch(alice, broker, settings):
    settings.LAKEFLOW_SCHEDULE_CATCH_UP_SECONDS = 5  # the clock was away longer than this
    late = scheduled_job(alice)
    paused = scheduled_job(alice)
    paused.save_version({**paused.settings, "schedule": {**paused.settings["schedule"], "pause_status": "PAUSED"}},
                        alice)

    assert run_due_triggers(SLOT + timedelta(seconds=10.1)) == 1  # five slots came: only the latest fires

    assert [run.trigger_slot for run in runs_of(late)] == [SLOT + timedelta(seconds=10)]
    assert list(TriggerDecision.objects.filter(job=late).order_by("id").values_list("kind", flat=True)) == [
        "skipped", "fired"]
    assert runs_of(paused) == []


def test_a_storm_takes_a_few_statements_per_run(alice, broker):
    jobs = [scheduled_job(alice) for _ in range(40)]
    with CaptureQueriesContext(connection) as queries:
        assert run_due_triggers(SLOT + timedelta(seconds=0.1)) == len(jobs)
    # One at a time it took ~33 statements and 4 commits per run; together about 7 and one commit
    # per BATCH_SIZE runs (a fresh process reads each job's version once more).
    assert len(queries) <= 9 * len(jobs)
    assert sum(query["sql"] == "COMMIT" for query in queries) <= 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="two clocks at once need row locks (Postgres)")
def test_two_clocks_firing_the_same_storm_at_once_make_one_run_per_slot(alice, broker):
    jobs = [scheduled_job(alice) for _ in range(60)]
    barrier, started, errors = threading.Barrier(2), [], []

    def clock():
        try:
            barrier.wait()
            started.append(run_due_triggers(SLOT + timedelta(seconds=0.1)))
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=clock) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(started) == len(jobs)
    assert [len(runs_of(job)) for job in jobs] == [1] * len(jobs)
    assert TriggerDecision.objects.filter(kind="fired").count() == len(jobs)


def test_a_storm_the_clock_missed_briefly_catches_up_every_slot_in_order(alice, broker):
    jobs = [scheduled_job(alice) for _ in range(BATCH_SIZE + 3)]
    back = SLOT + timedelta(seconds=6.1)  # away while 4 slots came (a lease moving): each one fires, oldest first
    passes = [run_due_triggers(back + timedelta(seconds=0.01 * i)) for i in range(5)]

    # Within a pass's time budget all in one pass (CATCH_UP_ROUNDS), or over several on a slow machine.
    assert sum(passes) == 4 * len(jobs) and passes[-1] == 0
    for job in jobs:
        assert [run.trigger_slot for run in runs_of(job)] == [SLOT + timedelta(seconds=2 * i) for i in range(4)]
        state = TriggerState.objects.get(job=job)
        assert (state.last_slot, state.next_check_at) == (SLOT + timedelta(seconds=6), SLOT + timedelta(seconds=8))
        assert not TriggerDecision.objects.filter(job=job, kind="skipped").exists()
