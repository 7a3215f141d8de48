"""advance_for_each at each step of a loop: at most `concurrency` iterations handed out, in input
order, none twice; retries while the loop goes on; the loop's result once the last one ended; and
a step's queries do not grow with the number of iterations (it counts, it does not list)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs.admission import create_run
from runs.control_flow import execute_control_flow
from runs.dispatch import cancel_run, finish_attempt
from runs.engine.endings import attempt_ended
from runs.engine.foreach import IterationFacts, for_each_stats
from runs.engine.planner import TaskStatus
from runs.engine.states import RunLifeCycleState as L, RunResultState as R
from runs.for_each import RUNNING_ITERATION_STATES, advance_for_each, iteration_stats
from runs.loading import lock_run
from runs.models import Run, RunEvent, TaskRun
from tests.dashboard.conftest import make_job


@pytest.fixture
def user(db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("ada", password="pw")


def loop_job(user, size, concurrency, **nested):
    item = {"task_key": "item", "shell_command_task": {"command": "echo {{input}}"}, **nested}
    return make_job(user, tasks=[{"task_key": "loop", "for_each_task": {
        "inputs": str(list(range(size))), "concurrency": concurrency, "task": item}}])


def started_loop(user, size, concurrency, **nested):
    run, _ = create_run(loop_job(user, size, concurrency, **nested), creator=user)
    execute_control_flow(wrapper(run).id)
    return run


def wrapper(run):
    return TaskRun.objects.get(run=run, task_key="loop", for_each_key="")


def iterations(run, **filters):
    return TaskRun.objects.filter(run=run, for_each_key="loop", **filters)


def handed_out(run):
    """Current iterations holding a slot, by index."""
    return sorted(iterations(run, is_current=True, life_cycle_state__in=RUNNING_ITERATION_STATES)
                  .values_list("iteration", flat=True))


def finish(run, index, result=R.SUCCESS, message=""):
    row = iterations(run, is_current=True, iteration=index).get()
    assert finish_attempt(row.id, attempt_ended(result, message), error=message)


def test_a_loop_hands_out_at_most_its_concurrency_in_input_order_and_each_iteration_once(user, held_broker):
    run = started_loop(user, 12, 3)
    assert handed_out(run) == [0, 1, 2]
    seen = list(handed_out(run))
    for index in range(12):
        finish(run, index)
        now_out = handed_out(run)
        assert len(now_out) <= 3
        seen += [i for i in now_out if i not in seen]
    assert seen == list(range(12))
    # Each iteration had one attempt, handed out once.
    assert iterations(run).count() == 12
    pending = list(RunEvent.objects.filter(run=run, type="task.pending", task_run__for_each_key="loop").values_list("task_run_id", flat=True))
    assert sorted(pending) == sorted(iterations(run).values_list("id", flat=True))
    loop = wrapper(run)
    assert (loop.life_cycle_state, loop.result_state) == (L.TERMINATED, R.SUCCESS)
    assert loop.state_message == "All 12 iterations succeeded"


def test_failures_without_retries_are_counted_at_the_end_and_the_rest_still_run(user, held_broker):
    run = started_loop(user, 6, 2)
    finish(run, 0, R.FAILED, "ValueError: 0")
    finish(run, 1, R.FAILED, "ValueError: 1")
    assert handed_out(run) == [2, 3]
    for index in range(2, 6):
        finish(run, index)
    loop = wrapper(run)
    assert (loop.life_cycle_state, loop.result_state) == (L.TERMINATED, R.FAILED)
    assert loop.state_message == "2 of 6 iterations failed (index 0, 1)"


def test_a_failed_iteration_with_a_retry_left_gets_a_new_attempt_in_its_slot(user, held_broker):
    run = started_loop(user, 5, 2, max_retries=1)
    finish(run, 0, R.FAILED, "boom")
    retried = iterations(run, is_current=True, iteration=0).get()
    assert (retried.attempt_number, retried.life_cycle_state) == (1, L.PENDING)
    assert handed_out(run) == [0, 1]  # the retry holds the slot: iteration 2 waits
    finish(run, 0, R.FAILED, "boom again")  # no retry left: final, and the next one starts
    assert handed_out(run) == [1, 2]
    for index in range(1, 5):
        finish(run, index)
    loop = wrapper(run)
    assert loop.result_state == R.FAILED
    assert loop.state_message == "1 of 5 iterations failed (index 0)"
    assert iterations(run, iteration=0).count() == 2


def test_a_canceled_loop_skips_what_had_not_started_and_ends_once_the_running_ones_stop(user, held_broker):
    run = started_loop(user, 10, 2)
    assert cancel_run(run.id, message="Canceled by ada")
    assert iterations(run, is_current=True, life_cycle_state=L.BLOCKED).count() == 0
    assert handed_out(run) == []
    loop = wrapper(run)
    assert loop.result_state == R.CANCELED
    assert Run.objects.get(id=run.id).result_state == R.CANCELED


def step_queries(user, size):
    """The queries of one step of a loop of `size` after its first iteration finished."""
    run = started_loop(user, size, 4)
    row = iterations(run, is_current=True, iteration=0).get()
    TaskRun.objects.filter(id=row.id).update(life_cycle_state=L.TERMINATED, result_state=R.SUCCESS)
    from django.db import transaction
    from django.utils import timezone

    with transaction.atomic():
        locked = lock_run(run.id)
        with CaptureQueriesContext(connection) as ctx:
            assert advance_for_each(locked, wrapper(run), timezone.now()) is False
    assert handed_out(run) == [1, 2, 3, 4]
    return [q["sql"] for q in ctx.captured_queries]


def test_a_step_reads_as_much_of_a_loop_of_400_as_of_a_loop_of_8(user, held_broker):
    small, large = step_queries(user, 8), step_queries(user, 400)
    assert len(small) == len(large)
    # No query lists every iteration: each reads a count, or the rows it changes.
    assert not any("LIMIT" not in sql and "COUNT" not in sql and sql.startswith("SELECT")
                   and '"runs_taskrun"."iteration"' in sql for sql in large)


def test_the_stats_counted_by_the_database_are_those_of_every_iteration_read_one_by_one(user, held_broker):
    run = started_loop(user, 9, 3, max_retries=0)
    finish(run, 0)
    finish(run, 1, R.FAILED, "ValueError: x")
    finish(run, 2, R.FAILED, "ValueError: x")
    finish(run, 3, R.TIMEDOUT, "timed out")
    loop = wrapper(run)
    rows = iterations(run, is_current=True)
    facts = [IterationFacts(TaskStatus("", L(r.life_cycle_state), R(r.result_state) if r.result_state else None),
                            r.state_message, r.termination_code or "") for r in rows]
    counted = iteration_stats(run, loop)
    assert counted["task_run_stats"] == for_each_stats(facts, len(facts))["task_run_stats"] == {
        "total_iterations": 9, "scheduled_iterations": 3, "active_iterations": 0,
        "completed_iterations": 4, "succeeded_iterations": 1, "failed_iterations": 3}
    assert sorted(counted["error_message_stats"], key=lambda e: e["count"]) == sorted(
        for_each_stats(facts, len(facts))["error_message_stats"], key=lambda e: e["count"])
    assert counted["error_message_stats"][0]["error_message"] == "ValueError: x"
    assert counted["error_message_stats"][0]["count"] == 2
