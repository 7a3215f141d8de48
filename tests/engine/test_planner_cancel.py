"""A run being canceled (reference §4.10): no retries, cleanup still runs, the run ends CANCELED."""

from runs.engine.planner import (
    Dependency,
    FinishRun,
    SkipTask,
    StartTask,
    TaskNode,
    TaskStatus,
    build_graph,
    next_actions,
)
from runs.engine.states import CancelReason, RunIf, TerminationCode, TerminationType
from runs.engine.states import RunLifeCycleState as L
from runs.engine.states import RunResultState as R

NOW = 1_700_000_000_000


def with_cleanup():
    # work -> report (ALL_SUCCESS); work -> cleanup (ALL_DONE)
    return build_graph(
        [
            TaskNode("work", max_retries=3),
            TaskNode("report", (Dependency("work"),)),
            TaskNode("cleanup", (Dependency("work"),), RunIf.ALL_DONE),
        ]
    )


def after_work(result, state=L.TERMINATED):
    return {
        "work": TaskStatus("work", state, result),
        "report": TaskStatus("report", L.BLOCKED),
        "cleanup": TaskStatus("cleanup", L.BLOCKED),
    }


def test_a_canceled_task_makes_its_all_success_child_upstream_canceled_and_its_all_done_child_run():
    actions = next_actions(with_cleanup(), after_work(R.CANCELED), now_ms=NOW, cancel_reason=CancelReason.USER)

    assert actions == [
        SkipTask("report", R.UPSTREAM_CANCELED, "Upstream task 'work' was canceled"),
        StartTask("cleanup"),
    ]


def test_a_failed_task_is_not_retried_while_the_run_is_canceled():
    actions = next_actions(with_cleanup(), after_work(R.FAILED), now_ms=NOW, cancel_reason=CancelReason.USER)

    assert actions == [SkipTask("report", R.UPSTREAM_FAILED, "Upstream task 'work' failed"), StartTask("cleanup")]


def test_a_task_whose_parents_succeeded_does_not_start_once_the_run_is_canceled():
    actions = next_actions(with_cleanup(), after_work(R.SUCCESS), now_ms=NOW, cancel_reason=CancelReason.USER)

    assert actions == [SkipTask("report", R.CANCELED, "Run was canceled before the task started"), StartTask("cleanup")]


def test_a_root_that_never_started_is_canceled_with_the_run():
    graph = build_graph([TaskNode("a"), TaskNode("b", (Dependency("a"),))])
    statuses = {"a": TaskStatus("a", L.BLOCKED), "b": TaskStatus("b", L.BLOCKED)}

    actions = next_actions(graph, statuses, now_ms=NOW, cancel_reason=CancelReason.USER)

    assert actions[:2] == [
        SkipTask("a", R.CANCELED, "Run was canceled before the task started"),
        SkipTask("b", R.UPSTREAM_CANCELED, "Upstream task 'a' was canceled"),
    ]
    assert actions[2].result_state == R.CANCELED


def test_a_pending_retry_is_dropped_when_the_run_is_canceled():
    statuses = after_work(None, state=L.WAITING_FOR_RETRY)

    actions = next_actions(with_cleanup(), statuses, now_ms=NOW, cancel_reason=CancelReason.USER)

    assert actions == [
        SkipTask("work", R.CANCELED, "Run was canceled while the task waited for its retry"),
        SkipTask("report", R.UPSTREAM_CANCELED, "Upstream task 'work' was canceled"),
        StartTask("cleanup"),
    ]


def test_the_run_waits_for_a_task_still_terminating_after_the_cancel():
    statuses = after_work(None, state=L.TERMINATING)

    assert next_actions(with_cleanup(), statuses, now_ms=NOW, cancel_reason=CancelReason.USER) == []


def test_a_user_canceled_run_finishes_canceled_once_cleanup_is_done():
    statuses = after_work(R.CANCELED)
    statuses["report"] = TaskStatus("report", L.SKIPPED, R.UPSTREAM_CANCELED)
    statuses["cleanup"] = TaskStatus("cleanup", L.TERMINATED, R.SUCCESS)

    actions = next_actions(with_cleanup(), statuses, now_ms=NOW, cancel_reason=CancelReason.USER)

    assert actions == [
        FinishRun(R.CANCELED, TerminationCode.USER_CANCELED, TerminationType.SUCCESS, "Run was canceled by a user")
    ]


def test_a_run_canceled_by_its_timeout_finishes_timed_out():
    statuses = after_work(R.CANCELED)
    statuses["report"] = TaskStatus("report", L.SKIPPED, R.UPSTREAM_CANCELED)
    statuses["cleanup"] = TaskStatus("cleanup", L.TERMINATED, R.SUCCESS)

    [finish] = next_actions(with_cleanup(), statuses, now_ms=NOW, cancel_reason=CancelReason.TIMEOUT)

    assert (finish.result_state, finish.termination_code, finish.termination_type) == (
        R.TIMEDOUT,
        TerminationCode.CANCELED,
        TerminationType.CLIENT_ERROR,
    )


def test_an_at_least_one_failed_alert_still_runs_during_a_cancel_when_a_parent_failed():
    graph = build_graph([TaskNode("work"), TaskNode("alert", (Dependency("work"),), RunIf.AT_LEAST_ONE_FAILED)])
    statuses = {"work": TaskStatus("work", L.TERMINATED, R.FAILED), "alert": TaskStatus("alert", L.BLOCKED)}

    assert next_actions(graph, statuses, now_ms=NOW, cancel_reason=CancelReason.TIMEOUT) == [StartTask("alert")]
