from datetime import timedelta

import pytest

from django.utils import timezone

from runs.admission import create_run
from runs.clock import enforce_run_timeouts, promote_due_retries, reap_lost_attempts
from runs.dispatch import cancel_run, finish_attempt
from runs.engine.endings import attempt_ended
from runs.loading import to_ms
from runs.engine.states import RunLifeCycleState as L, RunResultState as R
from runs.models import Run, RunEvent, TaskRun
from tests.runs.conftest import claim_attempt, make_job, shell


pytestmark = pytest.mark.usefixtures("both_plannings")


def attempt(run, key):
    return TaskRun.objects.get(run=run, task_key=key, is_current=True)


def test_a_new_run_hands_only_its_root_tasks_to_the_broker_after_commit(alice, broker):
    job = make_job(alice, [shell("a"), shell("b", depends_on=["a"]), shell("c")])
    run, created = create_run(job, creator=alice)

    assert created and run.life_cycle_state == L.RUNNING
    assert sorted(broker.take()) == sorted([attempt(run, "a").id, attempt(run, "c").id])
    assert attempt(run, "b").life_cycle_state == L.BLOCKED


def test_a_finished_task_dispatches_its_downstream_at_once(alice, broker):
    job = make_job(alice, [shell("a"), shell("b", depends_on=["a"])])
    run, _ = create_run(job)
    a = claim_attempt(broker.take()[0])

    finish_attempt(a.id, attempt_ended(R.SUCCESS))

    b = attempt(run, "b")
    assert b.life_cycle_state == L.PENDING
    assert broker.take() == [b.id]


def test_a_redelivered_attempt_is_a_no_op(alice, broker):
    job = make_job(alice, [shell("a")])
    create_run(job)
    attempt_id = broker.take()[0]

    assert claim_attempt(attempt_id) is not None
    assert claim_attempt(attempt_id) is None
    assert TaskRun.objects.get(id=attempt_id).life_cycle_state == L.RUNNING


def test_a_result_for_an_attempt_that_was_already_finished_is_discarded(alice, broker):
    job = make_job(alice, [shell("a")])
    run, _ = create_run(job)
    a = claim_attempt(broker.take()[0])

    assert finish_attempt(a.id, attempt_ended(R.SUCCESS)) is True
    assert finish_attempt(a.id, attempt_ended(R.FAILED)) is False
    assert Run.objects.get(id=run.id).result_state == R.SUCCESS


def test_a_killed_worker_is_reaped_and_its_task_retried(alice, broker):
    job = make_job(alice, [shell("a", max_retries=1)])
    run, _ = create_run(job)
    a = claim_attempt(broker.take()[0])
    later = timezone.now() + timedelta(minutes=5)  # long past the heartbeat deadline

    assert reap_lost_attempts(later) == 1

    lost = TaskRun.objects.get(id=a.id)
    assert (lost.life_cycle_state, lost.result_state) == (L.INTERNAL_ERROR, R.FAILED)
    assert "stopped responding" in lost.state_message
    retry = attempt(run, "a")
    assert retry.attempt_number == 1 and retry.original_attempt_id == a.id
    assert retry.life_cycle_state == L.PENDING
    assert broker.take() == [retry.id]


def test_a_retry_waits_for_its_interval_measured_from_the_failed_attempts_start(alice, broker):
    job = make_job(alice, [shell("a", max_retries=1, min_retry_interval_millis=60_000)])
    run, _ = create_run(job)
    a = claim_attempt(broker.take()[0])
    finish_attempt(a.id, attempt_ended(R.FAILED))
    retry = attempt(run, "a")
    assert retry.life_cycle_state == L.WAITING_FOR_RETRY
    assert to_ms(retry.retry_at) == to_ms(a.started_at) + 60_000  # the API counts in milliseconds

    assert promote_due_retries(a.started_at + timedelta(seconds=59)) == 0
    assert promote_due_retries(a.started_at + timedelta(seconds=60)) == 1
    assert attempt(run, "a").life_cycle_state == L.PENDING
    assert broker.take() == [retry.id]


def test_a_second_run_is_queued_behind_max_concurrent_runs_and_starts_when_the_first_ends(alice, broker):
    job = make_job(alice, [shell("a")], max_concurrent_runs=1, queue={"enabled": True})
    first, _ = create_run(job)
    second, _ = create_run(job)
    assert second.life_cycle_state == L.QUEUED
    a = claim_attempt(broker.take()[0])

    finish_attempt(a.id, attempt_ended(R.SUCCESS))

    assert Run.objects.get(id=second.id).life_cycle_state == L.RUNNING
    assert broker.take() == [attempt(second, "a").id]


def test_with_the_queue_off_a_run_over_the_limit_is_skipped(alice, broker):
    job = make_job(alice, [shell("a")], max_concurrent_runs=1, queue={"enabled": False})
    create_run(job)
    second, _ = create_run(job)

    assert second.life_cycle_state == L.SKIPPED
    assert second.result_state == R.MAXIMUM_CONCURRENT_RUNS_REACHED


def test_the_same_idempotency_token_gives_the_same_run(alice, broker):
    job = make_job(alice, [shell("a")], max_concurrent_runs=5)
    first, created = create_run(job, idempotency_token="tok-1")
    again, created_again = create_run(job, idempotency_token="tok-1")

    assert created and not created_again
    assert again.id == first.id
    assert Run.objects.count() == 1


def test_cancel_stops_active_attempts_and_the_all_done_cleanup_still_runs(alice, broker):
    job = make_job(alice, [shell("a"), shell("b", depends_on=["a"]),
                           shell("cleanup", depends_on=["a"], run_if="ALL_DONE")])
    run, _ = create_run(job)
    a = claim_attempt(broker.take()[0])

    cancel_run(run.id)
    assert attempt(run, "a").life_cycle_state == L.TERMINATING  # its worker kills the process
    finish_attempt(a.id, attempt_ended(R.CANCELED))

    assert attempt(run, "b").result_state == R.UPSTREAM_CANCELED
    cleanup = attempt(run, "cleanup")
    assert cleanup.life_cycle_state == L.PENDING
    finish_attempt(claim_attempt(cleanup.id).id, attempt_ended(R.SUCCESS))
    run.refresh_from_db()
    assert (run.life_cycle_state, run.result_state) == (L.TERMINATED, R.CANCELED)


def test_a_run_past_its_timeout_is_canceled_as_timed_out(alice, broker):
    job = make_job(alice, [shell("a")], timeout_seconds=30)
    run, _ = create_run(job)
    broker.take()

    assert enforce_run_timeouts(timezone.now() + timedelta(seconds=29)) == 0
    assert enforce_run_timeouts(timezone.now() + timedelta(seconds=31)) == 1
    run.refresh_from_db()
    assert (run.life_cycle_state, run.result_state) == (L.TERMINATED, R.TIMEDOUT)


def test_every_state_change_is_an_event_row(alice, broker):
    job = make_job(alice, [shell("a")])
    run, _ = create_run(job)
    a = claim_attempt(broker.take()[0])
    finish_attempt(a.id, attempt_ended(R.SUCCESS))

    types = list(RunEvent.objects.filter(run=run).order_by("id").values_list("type", flat=True))
    assert types == ["run.queued", "run.started", "task.pending", "task.running", "task.finished", "run.finished"]


def handoff(seconds=60):
    import time

    from runs.transitions import Handoff

    return Handoff("this-host", deadline=time.monotonic() + seconds)


def test_a_finish_with_a_handoff_claims_the_next_task_itself_instead_of_sending_it_to_the_broker(alice, broker):
    job = make_job(alice, [shell("a"), shell("b", depends_on=["a"]), shell("c", depends_on=["a"])])
    run, _ = create_run(job)
    a = claim_attempt(broker.take()[0])
    taking = handoff()

    finish_attempt(a.id, attempt_ended(R.SUCCESS), handoff=taking)

    taken = TaskRun.objects.get(id=taking.pop())
    other = attempt(run, "c" if taken.task_key == "b" else "b")
    assert (taken.life_cycle_state, taken.worker_host) == (L.RUNNING, "this-host")
    assert broker.take() == [other.id]  # the rest still goes to the broker
    assert other.life_cycle_state == L.PENDING
    assert RunEvent.objects.filter(task_run=taken, type="task.running").count() == 1


def test_a_finish_that_readies_nothing_takes_the_runs_oldest_waiting_attempt(alice, broker):
    job = make_job(alice, [shell("a"), shell("b"), shell("c")])
    run, _ = create_run(job)
    first, *waiting = broker.take()
    taking = handoff()

    finish_attempt(claim_attempt(first).id, attempt_ended(R.SUCCESS), handoff=taking)

    assert taking.pop() == min(waiting)
    assert TaskRun.objects.get(id=min(waiting)).life_cycle_state == L.RUNNING
    assert broker.take() == []
    # Its broker message, when it comes, finds it claimed.
    assert claim_attempt(min(waiting)) is None


def test_no_handoff_after_its_deadline_or_for_control_flow_tasks(alice, broker):
    job = make_job(alice, [shell("a"), shell("b", depends_on=["a"]), shell("c")])
    run, _ = create_run(job)
    late = handoff(seconds=-1)
    finish_attempt(claim_attempt(attempt(run, "a").id).id, attempt_ended(R.SUCCESS), handoff=late)
    assert late.pop() is None
    assert attempt(run, "b").life_cycle_state == L.PENDING

    job = make_job(alice, [shell("a"), {"task_key": "each", "depends_on": [{"task_key": "a"}], "for_each_task": {
        "inputs": "[1, 2]", "task": shell("item")}}])
    run, _ = create_run(job)
    broker.take()
    taking = handoff()
    finish_attempt(claim_attempt(attempt(run, "a").id).id, attempt_ended(R.SUCCESS), handoff=taking)
    assert taking.pop() is None
    assert broker.take() == [attempt(run, "each").id]


def test_a_worker_runs_a_chain_through_its_handoffs_in_one_broker_message(alice, broker, settings):
    from runs.worker import execute_attempt

    settings.LAKEFLOW_HANDOFF_SECONDS = 60
    job = make_job(alice, [shell("a"), shell("b", depends_on=["a"]), shell("c", depends_on=["b"])])
    run, _ = create_run(job)

    assert execute_attempt(broker.take()[0]) == "success, then 2 handed off"

    assert broker.take() == []
    run.refresh_from_db()
    assert run.result_state == R.SUCCESS
    assert {t.worker_host for t in run.task_runs.all()} == {__import__("socket").gethostname()}


def test_the_worker_runs_a_handed_off_attempt_only_if_its_claim_was_committed(alice, broker):
    import pytest
    from django.db import transaction

    from runs import worker

    job = make_job(alice, [shell("a"), shell("b", depends_on=["a"])])
    run, _ = create_run(job)
    a = claim_attempt(broker.take()[0])
    taking = handoff()
    taking.host = worker.HOST
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            finish_attempt(a.id, attempt_ended(R.SUCCESS), handoff=taking)
            raise RuntimeError("the finish failed after its claim")
    assert taking.attempt_id == attempt(run, "b").id
    assert worker.handed_off(taking) is None  # rolled back: b is BLOCKED again
    assert attempt(run, "b").life_cycle_state == L.BLOCKED

    finish_attempt(a.id, attempt_ended(R.SUCCESS), handoff=taking)
    assert worker.handed_off(taking).id == attempt(run, "b").id


def test_the_worker_reconnects_when_the_database_drops_its_connection(monkeypatch):
    from django.db import OperationalError

    from runs import worker

    monkeypatch.setattr(worker.time, "sleep", lambda seconds: None)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("server closed the connection unexpectedly")
        return "recorded"

    assert worker.reconnecting(flaky) == "recorded" and len(calls) == 3
    check = worker.tolerant(lambda: flaky() and False, meanwhile="no news")
    calls.clear()
    assert [check(), check(), check()] == ["no news", "no news", False]
