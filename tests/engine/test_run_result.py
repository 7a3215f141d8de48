"""The run's result from its leaf tasks (reference §2.2, "Job run result")."""

from runs.engine.planner import (
    Dependency,
    FinishRun,
    TaskNode,
    TaskStatus,
    build_graph,
    run_result_from_leaves,
)
from runs.engine.states import RunIf, TerminationCode, TerminationType
from runs.engine.states import RunLifeCycleState as L
from runs.engine.states import RunResultState as R


def diamond(bottom_run_if=RunIf.ALL_SUCCESS):
    return build_graph(
        [
            TaskNode("top"),
            TaskNode("left", (Dependency("top"),)),
            TaskNode("right", (Dependency("top"),)),
            TaskNode("bottom", (Dependency("left"), Dependency("right")), bottom_run_if),
        ]
    )


def statuses(**results):
    # "lost" stands for a worker that died: life cycle INTERNAL_ERROR, no result
    return {
        key: TaskStatus(key, L.INTERNAL_ERROR) if result == "lost" else TaskStatus(key, L.TERMINATED, result)
        for key, result in results.items()
    }


def test_a_run_whose_tasks_all_succeeded_succeeds():
    everything_succeeded = statuses(top=R.SUCCESS, left=R.SUCCESS, right=R.SUCCESS, bottom=R.SUCCESS)

    result = run_result_from_leaves(diamond(), everything_succeeded)

    assert result == FinishRun(R.SUCCESS, TerminationCode.SUCCESS, TerminationType.SUCCESS, "All tasks succeeded")


def test_a_run_with_excluded_and_disabled_tasks_still_succeeds():
    skipped_by_design = statuses(top=R.SUCCESS, left=R.EXCLUDED, right=R.DISABLED, bottom=R.DISABLED)

    result = run_result_from_leaves(diamond(), skipped_by_design)

    assert result.result_state == R.SUCCESS


def test_a_run_whose_failure_was_handled_by_its_leaf_succeeds_with_failures():
    graph = diamond(RunIf.ALL_DONE)

    result = run_result_from_leaves(graph, statuses(top=R.SUCCESS, left=R.FAILED, right=R.SUCCESS, bottom=R.SUCCESS))

    assert result == FinishRun(
        R.SUCCESS_WITH_FAILURES,
        TerminationCode.SUCCESS_WITH_FAILURES,
        TerminationType.SUCCESS,
        "Task 'left' did not succeed, but every leaf task succeeded",
    )


def test_a_run_whose_leaf_failed_fails_naming_the_task_that_broke_not_the_ones_it_skipped():
    result = run_result_from_leaves(
        diamond(), statuses(top=R.SUCCESS, left=R.TIMEDOUT, right="lost", bottom=R.UPSTREAM_FAILED)
    )

    assert result == FinishRun(
        R.FAILED, TerminationCode.RUN_EXECUTION_ERROR, TerminationType.CLIENT_ERROR, "Tasks 'left', 'right' failed"
    )


def test_a_run_fails_when_one_leaf_failed_and_another_was_canceled():
    graph = build_graph([TaskNode("a"), TaskNode("b")])

    result = run_result_from_leaves(graph, statuses(a=R.CANCELED, b=R.FAILED))

    assert result.result_state == R.FAILED
    assert result.message == "Task 'b' failed"


def test_a_run_whose_leaf_was_canceled_and_none_failed_is_canceled():
    result = run_result_from_leaves(
        diamond(), statuses(top=R.SUCCESS, left=R.CANCELED, right=R.SUCCESS, bottom=R.UPSTREAM_CANCELED)
    )

    assert result == FinishRun(
        R.CANCELED, TerminationCode.USER_CANCELED, TerminationType.SUCCESS, "Task 'left' was canceled"
    )


def test_a_leaf_that_succeeded_with_failures_counts_as_succeeded():
    graph = build_graph([TaskNode("only")])

    assert run_result_from_leaves(graph, statuses(only=R.SUCCESS_WITH_FAILURES)).result_state == R.SUCCESS
