"""What follows from a run's events happens once, even when the process dies between the commit
of the change and its reactions: the clock's sweep runs what was left undone (runs/reactions.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from runs import reactions
from runs.admission import create_run
from runs.control_flow import execute_control_flow
from runs.dispatch import finish_attempt
from runs.engine.endings import attempt_ended
from runs.engine.states import RunLifeCycleState as L, RunResultState as R
from runs.events import record
from runs.models import Reaction, Run, RunEvent, TableWrite, TaskRun, TriggerState
from runs.reactions import run_reactions, sweep_reactions
from runs.triggers import run_due_triggers
from tests.runs.conftest import claim_attempt, make_job, shell


@pytest.fixture
def crash_after_commit(monkeypatch):
    """The fault twin: the process that commits a change dies before it runs the reactions."""
    monkeypatch.setattr(reactions._AfterCommit, "__call__", lambda self: None)


def later():
    return timezone.now() + timedelta(seconds=reactions.SWEEP_AFTER_SECONDS + 1)


def run_to_the_end(run, result=R.SUCCESS):
    for attempt in TaskRun.objects.filter(run=run, life_cycle_state=L.PENDING):
        finish_attempt(claim_attempt(attempt.id).id, attempt_ended(result))


def test_the_next_queued_run_starts_once_after_a_crash_between_commit_and_reactions(alice, broker,
                                                                                   crash_after_commit):
    job = make_job(alice, [shell("t")], max_concurrent_runs=1, queue={"enabled": True})
    first, _ = create_run(job)
    second, _ = create_run(job)
    run_to_the_end(first)

    assert Run.objects.get(id=second.id).life_cycle_state == L.QUEUED  # its reaction never ran
    finished = RunEvent.objects.get(run=first, type="run.finished")
    assert finished.reactions_pending

    assert sweep_reactions(later()) == 1
    assert Run.objects.get(id=second.id).life_cycle_state == L.RUNNING
    assert sweep_reactions(later()) == 0
    assert RunEvent.objects.filter(run=second, type="run.started").count() == 1
    assert not RunEvent.objects.get(id=finished.id).reactions_pending
    marked = set(Reaction.objects.filter(event=finished).values_list("name", flat=True))
    assert "runs.admission.admit_next_queued_runs" in marked
    # Neither continuous nor started by a run_job_task: those reactions never wanted this event.
    assert not marked & {"runs.triggers.restart_continuous_job", "runs.control_flow.settle_parent_task"}


def test_the_sweep_leaves_events_the_committing_process_is_about_to_react_to(alice, broker, crash_after_commit):
    job = make_job(alice, [shell("t")], max_concurrent_runs=1, queue={"enabled": True})
    first, _ = create_run(job)
    second, _ = create_run(job)
    run_to_the_end(first)
    assert sweep_reactions(timezone.now()) == 0  # younger than SWEEP_AFTER_SECONDS
    assert Run.objects.get(id=second.id).life_cycle_state == L.QUEUED


def test_a_continuous_job_counts_a_failed_run_once_after_a_crash(alice, broker, crash_after_commit):
    job = make_job(alice, [shell("t")], continuous={"pause_status": "UNPAUSED"})
    run, _ = create_run(job, trigger=Run.Trigger.CONTINUOUS)
    run_to_the_end(run, R.FAILED)
    assert TriggerState.objects.get(job=job).failures == 0

    # Until the failure is counted, the clock does not start the next run (it would skip the backoff).
    TriggerState.objects.filter(job=job).update(next_check_at=timezone.now())
    run_due_triggers(later())
    assert Run.objects.filter(job=job).count() == 1

    sweep_reactions(later())
    sweep_reactions(later())
    state = TriggerState.objects.get(job=job)
    assert state.failures == 1 and state.next_check_at > later()
    run_due_triggers(later())  # backing off
    assert Run.objects.filter(job=job).count() == 1
    run_due_triggers(state.next_check_at)
    assert Run.objects.filter(job=job).count() == 2


def test_a_parent_run_job_task_settles_once_after_its_child_ends_in_a_crash(alice, broker, crash_after_commit):
    child_job = make_job(alice, [shell("c")], name="child")
    parent_job = make_job(alice, [{"task_key": "call", "run_job_task": {"job_id": child_job.id}}], name="parent")
    parent, _ = create_run(parent_job)
    call = TaskRun.objects.get(run=parent, task_key="call")
    execute_control_flow(call.id)
    child = Run.objects.get(parent_task_run=call)
    run_to_the_end(child)
    assert TaskRun.objects.get(id=call.id).life_cycle_state == L.RUNNING

    sweep_reactions(later())
    call.refresh_from_db()
    assert (call.life_cycle_state, call.result_state) == (L.TERMINATED, R.SUCCESS)
    assert Run.objects.get(id=parent.id).result_state == R.SUCCESS
    assert RunEvent.objects.filter(task_run=call, type="task.finished").count() == 1


@pytest.fixture
def test_reactions(monkeypatch):
    """Reactions registered for this test only, to an event type of its own."""
    registered = []
    monkeypatch.setitem(reactions._durable, "test.happened", registered)
    return registered


def test_a_reaction_and_its_mark_commit_together_so_running_it_twice_does_it_once(alice, broker, test_reactions):
    test_reactions.append(reactions.Registered("tests.effect", lambda event: TableWrite.objects.create(
        table_name=f"effect-of-{event.id}")))
    run, _ = create_run(make_job(alice, [shell("t")]))
    event = record(run, "test.happened", None, timezone.now())  # outside a transaction: reacts at once

    assert run_reactions(event.id) is True
    assert TableWrite.objects.filter(table_name=f"effect-of-{event.id}").count() == 1
    assert not RunEvent.objects.get(id=event.id).reactions_pending


def test_a_reaction_that_keeps_failing_is_given_up_with_its_error_after_a_few_tries(alice, broker, test_reactions):
    def broken(event):
        raise RuntimeError("the mail server is down")

    test_reactions.append(reactions.Registered("tests.broken", broken))
    run, _ = create_run(make_job(alice, [shell("t")]))
    event = record(run, "test.happened", None, timezone.now())
    for _ in range(reactions.MAX_TRIES - 2):  # after the on-commit try: the sweeps but the last
        assert run_reactions(event.id) is False
    assert run_reactions(event.id) is True
    row = Reaction.objects.get(event=event, name="tests.broken")
    assert (row.tries, row.done_at, row.error) == (reactions.MAX_TRIES, None, "RuntimeError: the mail server is down")
    assert not RunEvent.objects.get(id=event.id).reactions_pending


def test_a_run_the_engine_aborts_says_why_per_task_and_cancels_its_child_runs(alice, broker):
    from runs.dispatch import end_broken_run

    child_job = make_job(alice, [shell("c")], name="child")
    parent_job = make_job(alice, [{"task_key": "call", "run_job_task": {"job_id": child_job.id}}], name="parent")
    parent, _ = create_run(parent_job)
    call = TaskRun.objects.get(run=parent, task_key="call")
    execute_control_flow(call.id)
    child = Run.objects.get(parent_task_run=call)
    assert child.life_cycle_state in (L.PENDING, L.RUNNING)

    assert end_broken_run(parent.id, "the planner failed")
    [ended] = RunEvent.objects.filter(task_run=call, type="task.finished")
    assert ended.data["result_state"] == R.FAILED and ended.data["message"] == "the planner failed"
    child.refresh_from_db()
    assert child.result_state == R.CANCELED
    [asked] = RunEvent.objects.filter(run=child, type="run.cancel_requested")
    assert asked.data["reason"] == "Canceled with the task that started it"


def test_an_event_no_reaction_wants_is_not_left_pending(alice, broker, test_reactions):
    test_reactions.append(reactions.Registered("tests.picky", lambda event: None, when=lambda event: event.data.get("wanted")))
    run, _ = create_run(make_job(alice, [shell("t")]))
    unwanted = record(run, "test.happened", None, timezone.now(), wanted=False)
    wanted = record(run, "test.happened", None, timezone.now(), wanted=True)
    assert (unwanted.reactions_pending, wanted.reactions_pending) == (None, True)
    assert RunEvent.objects.get(id=wanted.id).reactions_pending is None  # done on commit
    assert Reaction.objects.filter(name="tests.picky").count() == 1


def test_one_event_the_sweep_cannot_handle_does_not_hold_up_the_others(alice, broker, test_reactions, monkeypatch,
                                                                        crash_after_commit):
    test_reactions.append(reactions.Registered("tests.effect", lambda event: TableWrite.objects.create(
        table_name=f"effect-of-{event.id}")))
    run, _ = create_run(make_job(alice, [shell("t")]))
    stuck, fine = (record(run, "test.happened", None, timezone.now()) for _ in range(2))
    real = reactions.run_reactions

    def run_reactions_but_not_for_stuck(event_id):
        if event_id == stuck.id:
            raise RuntimeError("a bug")
        return real(event_id)

    monkeypatch.setattr(reactions, "run_reactions", run_reactions_but_not_for_stuck)
    assert sweep_reactions(later()) == 1
    assert TableWrite.objects.filter(table_name=f"effect-of-{fine.id}").exists()
    assert RunEvent.objects.get(id=stuck.id).reactions_pending
