from runs.engine.foreach import IterationFacts, for_each_stats, iteration_graph, plan_iterations
from runs.engine.planner import FinishRun, RetryTask, SkipTask, StartTask, TaskNode, TaskStatus
from runs.engine.states import CancelReason, RunLifeCycleState as L, RunResultState as R

NOW = 1_000_000


def status(i, state, result=None, attempt=0, start=None):
    return TaskStatus(str(i), state, result, attempt, start)


def test_no_more_than_concurrency_iterations_start_at_once():
    graph = iteration_graph(TaskNode("item"), 5)
    actions = plan_iterations(graph, {}, concurrency=2, now_ms=NOW)
    assert actions == [StartTask("0"), StartTask("1")]


def test_a_finished_iteration_frees_its_slot_for_the_next_in_order():
    graph = iteration_graph(TaskNode("item"), 4)
    statuses = {"0": status(0, L.TERMINATED, R.SUCCESS), "1": status(1, L.RUNNING), "2": status(2, L.BLOCKED),
                "3": status(3, L.BLOCKED)}
    assert plan_iterations(graph, statuses, concurrency=2, now_ms=NOW) == [StartTask("2")]


def test_a_failed_iteration_is_retried_and_keeps_its_slot():
    graph = iteration_graph(TaskNode("item", max_retries=1, min_retry_interval_millis=500), 3)
    statuses = {"0": status(0, L.TERMINATED, R.FAILED, start=NOW - 100), "1": status(1, L.BLOCKED),
                "2": status(2, L.BLOCKED)}
    actions = plan_iterations(graph, statuses, concurrency=1, now_ms=NOW)
    assert actions == [RetryTask("0", 1, NOW + 400)]


def test_the_loop_fails_when_an_iteration_failed_for_good_and_says_which():
    graph = iteration_graph(TaskNode("item"), 3)
    statuses = {"0": status(0, L.TERMINATED, R.SUCCESS), "1": status(1, L.TERMINATED, R.FAILED),
                "2": status(2, L.TERMINATED, R.SUCCESS)}
    (finish,) = plan_iterations(graph, statuses, concurrency=3, now_ms=NOW)
    assert isinstance(finish, FinishRun) and finish.result_state == R.FAILED
    assert finish.message == "1 of 3 iterations failed (index 1)"


def test_cancel_skips_iterations_not_started_and_the_loop_ends_canceled():
    graph = iteration_graph(TaskNode("item"), 3)
    statuses = {"0": status(0, L.TERMINATED, R.CANCELED), "1": status(1, L.BLOCKED), "2": status(2, L.BLOCKED)}
    actions = plan_iterations(graph, statuses, concurrency=1, now_ms=NOW, cancel_reason=CancelReason.USER)
    assert [type(a) for a in actions] == [SkipTask, SkipTask, FinishRun]
    assert actions[-1].result_state == R.CANCELED


def test_no_inputs_is_an_immediate_success():
    (finish,) = plan_iterations(iteration_graph(TaskNode("item"), 0), {}, concurrency=1, now_ms=NOW)
    assert finish.result_state == R.SUCCESS


def test_stats_count_states_and_rank_the_commonest_errors():
    facts = [
        IterationFacts(status(0, L.TERMINATED, R.SUCCESS)),
        IterationFacts(status(1, L.TERMINATED, R.FAILED), "ValueError: x", "RUN_EXECUTION_ERROR"),
        IterationFacts(status(2, L.TERMINATED, R.FAILED), "ValueError: x", "RUN_EXECUTION_ERROR"),
        IterationFacts(status(3, L.TERMINATED, R.TIMEDOUT), "timed out", "CANCELED"),
        IterationFacts(status(4, L.RUNNING)),
        IterationFacts(status(5, L.PENDING)),
        IterationFacts(status(6, L.BLOCKED)),
    ]
    stats = for_each_stats(facts, 7)
    assert stats["task_run_stats"] == {
        "total_iterations": 7, "scheduled_iterations": 1, "active_iterations": 1, "completed_iterations": 4,
        "succeeded_iterations": 1, "failed_iterations": 3,
    }
    assert stats["error_message_stats"] == [
        {"error_message": "ValueError: x", "count": 2, "termination_category": "RUN_EXECUTION_ERROR"},
        {"error_message": "timed out", "count": 1, "termination_category": "CANCELED"},
    ]
