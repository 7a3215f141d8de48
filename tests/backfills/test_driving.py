"""Driving a backfill: its limit holds at every step, each slot runs once however often its
reaction is delivered, the clock goes on where a crash left it, and what stops or cancels it."""

from datetime import datetime, timedelta, timezone

import pytest

from backfills.driving import (
    BackfillRefused,
    ask_repairs,
    cancel_backfill,
    drive_after_a_run,
    drive_backfill,
    drive_running_backfills,
)
from backfills.models import Backfill, BackfillEvent, BackfillRun
from backfills.planning import BackfillRequest, create_backfill
from jobs.models import Job
from jobs.spec.settings import validate_job_settings
from runs import reactions
from runs.dispatch import finish_attempt
from runs.engine.endings import attempt_ended
from runs.engine.states import FINISHED_LIFE_CYCLES, RunLifeCycleState as L, RunResultState as R
from runs.models import Run, RunEvent, TaskRun
from tests.runs.conftest import claim_attempt, make_job, shell

UTC = timezone.utc
DAILY = {"interval": 1, "unit": "DAYS"}


def request(days, **options):
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return BackfillRequest(start_time=start, end_time=start + timedelta(days=days), interval=DAILY, **options)


def runs_of(backfill):
    return Run.objects.filter(id__in=BackfillRun.objects.filter(backfill=backfill).values("run_id"))


def unfinished(backfill):
    return runs_of(backfill).exclude(life_cycle_state__in=FINISHED_LIFE_CYCLES)


def finish(run, result=R.SUCCESS):
    for attempt in TaskRun.objects.filter(run=run, life_cycle_state=L.PENDING):
        finish_attempt(claim_attempt(attempt.id).id, attempt_ended(result))


def day_of(run):
    return run.job_parameters[0]["value"]


def dated(user, **settings):
    return make_job(user, [shell("t")], parameters=[{"name": "day", "default": "2024-01-01"}], **settings)


def test_the_limit_holds_at_every_step_and_every_slot_runs_once_in_order(alice, committed, held_broker):
    job = dated(alice, max_concurrent_runs=10)
    backfill = create_backfill(job, request(7, max_concurrent_runs=3), alice)
    started = []
    while unfinished(backfill).exists():
        assert unfinished(backfill).count() <= 3
        run = unfinished(backfill).order_by("id").first()
        started.append(day_of(run))
        finish(run)
    backfill.refresh_from_db()
    assert backfill.state == Backfill.State.FINISHED
    assert started == [f"2024-01-0{day}" for day in range(1, 8)]
    assert runs_of(backfill).count() == 7 and BackfillRun.objects.filter(backfill=backfill).count() == 7


def test_the_jobs_own_limit_applies_on_top_its_queue_holds_the_rest(alice, committed, held_broker):
    job = dated(alice, max_concurrent_runs=1, queue={"enabled": False})  # backfill runs wait all the same
    backfill = create_backfill(job, request(4, max_concurrent_runs=3), alice)
    states = sorted(runs_of(backfill).values_list("life_cycle_state", flat=True))
    assert states == [L.QUEUED, L.QUEUED, L.RUNNING]
    finish(runs_of(backfill).get(life_cycle_state=L.RUNNING))
    assert unfinished(backfill).count() == 3
    assert sorted(unfinished(backfill).values_list("life_cycle_state", flat=True)) == [L.QUEUED, L.QUEUED, L.RUNNING]


def test_newest_first_starts_with_the_last_slot(alice, committed, held_broker):
    job = dated(alice, max_concurrent_runs=10)
    backfill = create_backfill(job, request(3, max_concurrent_runs=1, order="NEWEST_FIRST"), alice)
    days = []
    while unfinished(backfill).exists():
        run = unfinished(backfill).get()
        days.append(day_of(run))
        finish(run)
    assert days == ["2024-01-03", "2024-01-02", "2024-01-01"]


def test_a_reaction_delivered_twice_starts_each_slot_once(alice, committed, held_broker):
    job = dated(alice, max_concurrent_runs=10)
    backfill = create_backfill(job, request(4, max_concurrent_runs=2), alice)
    first = unfinished(backfill).order_by("id").first()
    finish(first)  # its reaction starts the third slot
    assert runs_of(backfill).count() == 3

    event = RunEvent.objects.select_related("run").get(run=first, type="run.finished")
    drive_after_a_run(event)  # delivered again
    drive_after_a_run(event)
    assert runs_of(backfill).count() == 3 and unfinished(backfill).count() == 2
    assert sorted(day_of(run) for run in runs_of(backfill)) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert BackfillEvent.objects.filter(backfill=backfill, type="backfill.slot_started").count() == 3


def test_a_slot_claimed_elsewhere_is_not_run_again(alice, committed, held_broker):
    job = dated(alice, max_concurrent_runs=10)
    backfill = create_backfill(job, request(2, max_concurrent_runs=1), alice)
    # Another process claimed the second slot between this pass's read and its claim.
    BackfillRun.objects.create(backfill=backfill, slot=datetime(2024, 1, 2, tzinfo=UTC))
    finish(unfinished(backfill).get())
    assert runs_of(backfill).count() == 1


@pytest.fixture
def crash_after_commit(monkeypatch):
    """The process that commits a run's end dies before it runs the reactions."""
    monkeypatch.setattr(reactions._AfterCommit, "__call__", lambda self: None)


def test_the_clock_goes_on_where_a_crash_left_the_backfill(alice, committed, held_broker, crash_after_commit):
    job = dated(alice, max_concurrent_runs=10)
    backfill = create_backfill(job, request(3, max_concurrent_runs=1), alice)
    finish(unfinished(backfill).get())
    assert not unfinished(backfill).exists()  # no reaction ran: nothing started

    assert drive_running_backfills(datetime.now(UTC)) == 1
    assert unfinished(backfill).count() == 1 and runs_of(backfill).count() == 2
    assert drive_running_backfills(datetime.now(UTC)) == 0  # a full backfill: nothing to do, nothing written
    assert Backfill.objects.get(id=backfill.id).drive_seq == backfill.drive_seq + 2  # creation's pass, then one


def test_a_slot_whose_run_cannot_be_made_stops_the_backfill_saying_why(alice, committed, held_broker):
    job = dated(alice, max_concurrent_runs=10)
    backfill = create_backfill(job, request(3, max_concurrent_runs=1), alice)
    job.save_version(validate_job_settings({"name": "job", "tasks": [shell("t")]}), alice)  # "day" is gone
    finish(unfinished(backfill).get())
    backfill.refresh_from_db()
    assert backfill.state == Backfill.State.STOPPED
    assert "2024-01-02" in backfill.state_message and "day" in backfill.state_message
    assert runs_of(backfill).count() == 1


def test_a_slot_whose_run_is_skipped_at_once_stops_the_backfill_instead_of_skipping_every_slot(
        alice, committed, held_broker):
    job = dated(alice, max_concurrent_runs=1)
    backfill = create_backfill(job, request(5, max_concurrent_runs=1), alice)
    job.save_version({**job.settings, "max_concurrent_runs": 0}, alice)
    finish(unfinished(backfill).get())
    backfill.refresh_from_db()
    assert backfill.state == Backfill.State.STOPPED and "could not start" in backfill.state_message
    assert list(runs_of(backfill).order_by("id").values_list("life_cycle_state", flat=True)) == [L.TERMINATED, L.SKIPPED]


def test_a_deleted_job_cancels_its_backfill(alice, committed, held_broker):
    job = dated(alice, max_concurrent_runs=10)
    backfill = create_backfill(job, request(3, max_concurrent_runs=1), alice)
    Job.objects.filter(id=job.id).update(deleted_at=datetime.now(UTC))
    assert drive_backfill(backfill.id) == 0
    backfill.refresh_from_db()
    assert backfill.state == Backfill.State.CANCELED and "deleted" in backfill.state_message


def test_a_repair_asked_as_a_cancel_commits_is_refused_not_left_waiting(alice, committed, held_broker):
    job = dated(alice, max_concurrent_runs=10)
    backfill = create_backfill(job, request(2, max_concurrent_runs=1), alice)
    finish(runs_of(backfill).get(), R.FAILED)
    seen = Backfill.objects.get(id=backfill.id)  # running its second slot when the user pressed Repair
    assert seen.state == Backfill.State.RUNNING and unfinished(backfill).count() == 1
    cancel_backfill(Backfill.objects.get(id=backfill.id), alice)  # another user's Cancel commits first

    with pytest.raises(BackfillRefused, match="was canceled"):
        ask_repairs(seen, alice)

    assert not BackfillRun.objects.filter(backfill=backfill, repair_asked=True).exists()
    assert Backfill.objects.get(id=backfill.id).state == Backfill.State.CANCELED
