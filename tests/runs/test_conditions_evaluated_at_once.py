"""A condition task is evaluated in the planner step that makes it ready, under that step's run
lock and in its transaction: no broker message, no worker, no claim transaction of its own. What
follows it is planned in the same step; one whose evaluation fails unexpectedly goes to a worker
through the broker instead, alone."""

import time

import pytest

from runs.admission import create_run
from runs.control_flow import CONDITIONS_PER_STEP
from runs.dispatch import finish_attempt
from runs.engine.endings import attempt_ended
from runs.engine.states import RunLifeCycleState as L, RunResultState as R
from runs.models import RunEvent, TaskRun
from runs.transitions import Handoff
from tests.runs.conftest import claim_attempt, make_job, shell

pytestmark = pytest.mark.usefixtures("both_plannings")


def condition(key, left="1", right="1", depends_on=(), outcome=None):
    return {"task_key": key, "condition_task": {"op": "EQUAL_TO", "left": left, "right": right},
            "depends_on": [{"task_key": d, **({"outcome": outcome} if outcome else {})} for d in depends_on]}


def attempt(run, key):
    return TaskRun.objects.get(run=run, task_key=key, is_current=True)


def test_conditions_after_a_finish_decide_in_its_step_and_the_worker_takes_what_follows(alice, broker):
    job = make_job(alice, [shell("a"), condition("c1", "{{job.id}}", "{{job.id}}", depends_on=["a"]),
                           condition("c2", "x", "y", depends_on=["c1"], outcome="true"),
                           shell("yes", depends_on=["c2"], **{}), shell("no", depends_on=["c2"])])
    # "yes" runs when c2 is true, "no" when it is false.
    job.save_version({**job.settings, "tasks": [
        *job.settings["tasks"][:3],
        {**job.settings["tasks"][3], "depends_on": [{"task_key": "c2", "outcome": "true"}]},
        {**job.settings["tasks"][4], "depends_on": [{"task_key": "c2", "outcome": "false"}]},
    ]}, alice)
    run, _ = create_run(job)
    assert broker.take() == [attempt(run, "a").id]
    taking = Handoff("this-host", deadline=time.monotonic() + 60)

    finish_attempt(claim_attempt(attempt(run, "a").id).id, attempt_ended(R.SUCCESS), handoff=taking)

    assert (attempt(run, "c1").result_state, attempt(run, "c1").outcome) == (R.SUCCESS, "true")
    assert (attempt(run, "c2").result_state, attempt(run, "c2").outcome) == (R.SUCCESS, "false")
    assert attempt(run, "yes").result_state == R.EXCLUDED
    assert taking.pop() == attempt(run, "no").id
    assert attempt(run, "no").life_cycle_state == L.RUNNING
    assert broker.take() == []
    running = RunEvent.objects.filter(task_run=attempt(run, "c1"), type="task.running").values_list("data", flat=True)
    assert [data["reason"] for data in running] == ["evaluated when it became ready"]


def test_a_run_of_a_few_conditions_ends_as_it_is_created(alice, broker):
    chain = [condition("c0")] + [condition(f"c{i}", depends_on=[f"c{i - 1}"]) for i in range(1, CONDITIONS_PER_STEP)]
    run, _ = create_run(make_job(alice, chain))

    run.refresh_from_db()
    assert (run.life_cycle_state, run.result_state) == (L.TERMINATED, R.SUCCESS)
    assert broker.take() == []


def test_a_step_evaluates_a_bounded_number_of_conditions_and_workers_do_the_rest(alice, broker):
    from runs.worker import execute_attempt

    chain = [condition("c0")] + [condition(f"c{i}", depends_on=[f"c{i - 1}"]) for i in range(1, 300)]
    run, _ = create_run(make_job(alice, chain))  # a chain far deeper than Python's recursion allows per frame
    messages = 0
    while sent := broker.take():
        (attempt_id,) = sent
        # A worker evaluates the next one, and its step the CONDITIONS_PER_STEP after it.
        assert TaskRun.objects.filter(run=run, result_state=R.SUCCESS).count() == (
            CONDITIONS_PER_STEP + messages * (CONDITIONS_PER_STEP + 1))
        execute_attempt(attempt_id)
        messages += 1

    run.refresh_from_db()
    assert (run.life_cycle_state, run.result_state) == (L.TERMINATED, R.SUCCESS)
    assert TaskRun.objects.filter(run=run, result_state=R.SUCCESS, task_type="condition_task").count() == 300
    assert messages == -(-(300 - CONDITIONS_PER_STEP) // (CONDITIONS_PER_STEP + 1))


def test_a_run_ends_when_its_condition_ends_before_the_step_skips_the_rest(alice, broker):
    """The condition is evaluated while the step still has a skip to pass down (x's child y): the
    run's end is decided once both are done (a run of more than SMALL_RUN tasks plans around its
    change: the both_plannings fixture runs it that way too)."""
    job = make_job(alice, [shell("a"), condition("c", depends_on=["a"]),
                           {**shell("x", depends_on=["a"]), "run_if": "ALL_FAILED"}, shell("y", depends_on=["x"])])
    run, _ = create_run(job)
    assert broker.take() == [attempt(run, "a").id]

    finish_attempt(claim_attempt(attempt(run, "a").id).id, attempt_ended(R.SUCCESS))

    run.refresh_from_db()
    assert (run.life_cycle_state, run.result_state) == (L.TERMINATED, R.SUCCESS)
    assert attempt(run, "y").result_state == R.EXCLUDED


def test_a_condition_that_cannot_be_evaluated_in_the_step_goes_to_a_worker_alone(alice, broker, monkeypatch):
    from runs import control_flow
    from runs.worker import execute_attempt

    job = make_job(alice, [shell("a"), condition("c", depends_on=["a"]), shell("b", depends_on=["c"]), shell("d")])
    run, _ = create_run(job)
    broker.take()
    real = control_flow.run_condition
    monkeypatch.setattr(control_flow, "run_condition", lambda *args: 1 / 0)

    finish_attempt(claim_attempt(attempt(run, "a").id).id, attempt_ended(R.SUCCESS))

    assert attempt(run, "a").result_state == R.SUCCESS  # the finish committed
    c = attempt(run, "c")
    assert c.life_cycle_state == L.PENDING and c.dispatched_at is not None
    assert broker.take() == [c.id]
    assert not RunEvent.objects.filter(task_run=c, type="task.running").exists()  # rolled back with it

    monkeypatch.setattr(control_flow, "run_condition", real)
    assert execute_attempt(c.id) == "true"
    assert attempt(run, "c").result_state == R.SUCCESS
    assert broker.take() == [attempt(run, "b").id]


def test_a_handoff_claim_made_by_a_rolled_back_evaluation_is_dropped_with_it(alice, broker, monkeypatch):
    from runs import control_flow

    job = make_job(alice, [shell("a"), condition("c", depends_on=["a"]), shell("b", depends_on=["c"]), shell("d")])
    run, _ = create_run(job)
    broker.take()
    real = control_flow.advance_after_end

    def advance_then_fail(*args):
        real(*args)  # plans b, which the handoff takes
        raise RuntimeError("after the handoff's claim")

    monkeypatch.setattr(control_flow, "advance_after_end", advance_then_fail)
    taking = Handoff("this-host", deadline=time.monotonic() + 60)

    finish_attempt(claim_attempt(attempt(run, "a").id).id, attempt_ended(R.SUCCESS), handoff=taking)

    assert attempt(run, "b").life_cycle_state == L.BLOCKED
    taken = taking.pop()
    assert taken == attempt(run, "d").id  # the run's waiting attempt, taken after the rollback
    assert TaskRun.objects.get(id=taken).life_cycle_state == L.RUNNING
    assert attempt(run, "c").life_cycle_state == L.PENDING


def test_a_queued_run_that_ends_in_its_first_step_frees_its_slot_for_the_next(alice, broker):
    from runs.admission import admit_queued_runs
    from runs.models import Run

    job = make_job(alice, [shell("t")], max_concurrent_runs=1, queue={"enabled": True})
    holder, _ = create_run(job)
    job.save_version({**job.settings, "tasks": [condition("c")]}, alice)
    queued = [create_run(job)[0] for _ in range(2)]
    assert all(Run.objects.get(id=run.id).life_cycle_state == L.QUEUED for run in queued)
    Run.objects.filter(id=holder.id).update(life_cycle_state=L.TERMINATED, result_state=R.SUCCESS)

    assert admit_queued_runs(job.id) == [run.id for run in queued]

    assert all(Run.objects.get(id=run.id).result_state == R.SUCCESS for run in queued)
