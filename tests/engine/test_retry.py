"""Retries (reference §2.1, §4.6): the pure rule and how the planner uses it."""

import pytest

from runs.engine.planner import (
    Dependency,
    RetryTask,
    SkipTask,
    StartTask,
    TaskNode,
    TaskStatus,
    build_graph,
    next_actions,
)
from runs.engine.retry import retry_not_before_ms, should_retry
from runs.engine.states import CancelReason
from runs.engine.states import RunLifeCycleState as L
from runs.engine.states import RunResultState as R

NOW = 1_700_000_000_000
STARTED = NOW - 60_000


def ended(result, attempt=0, state=L.TERMINATED, start=STARTED):
    return TaskStatus("t", state, result, attempt, start)


def test_a_failed_task_is_retried_while_it_has_retries_left():
    node = TaskNode("t", max_retries=2)

    assert should_retry(node, ended(R.FAILED, attempt=0))
    assert should_retry(node, ended(R.FAILED, attempt=1))
    assert not should_retry(node, ended(R.FAILED, attempt=2))


def test_a_task_without_max_retries_is_never_retried():
    assert not should_retry(TaskNode("t"), ended(R.FAILED))


def test_a_task_with_max_retries_minus_one_is_retried_forever():
    assert should_retry(TaskNode("t", max_retries=-1), ended(R.FAILED, attempt=10_000))


def test_a_lost_worker_is_retried_whatever_result_it_left():
    node = TaskNode("t", max_retries=1)

    assert should_retry(node, ended(None, state=L.INTERNAL_ERROR))
    assert should_retry(node, ended(R.CANCELED, state=L.INTERNAL_ERROR))


def test_a_timed_out_task_is_retried_only_with_retry_on_timeout():
    assert not should_retry(TaskNode("t", max_retries=3), ended(R.TIMEDOUT))
    assert should_retry(TaskNode("t", max_retries=3, retry_on_timeout=True), ended(R.TIMEDOUT))


@pytest.mark.parametrize("result", [R.SUCCESS, R.CANCELED, R.UPSTREAM_FAILED, R.EXCLUDED, R.DISABLED])
def test_results_other_than_failure_are_never_retried(result):
    assert not should_retry(TaskNode("t", max_retries=-1, retry_on_timeout=True), ended(result))


@pytest.mark.parametrize("reason", list(CancelReason))
def test_nothing_is_retried_while_the_run_is_being_canceled(reason):
    assert not should_retry(TaskNode("t", max_retries=-1), ended(R.FAILED), reason)


def test_an_attempt_that_has_not_finished_is_not_retried():
    assert not should_retry(TaskNode("t", max_retries=3), TaskStatus("t", L.RUNNING, R.FAILED))


def test_the_retry_waits_the_interval_from_the_start_of_the_failed_attempt():
    node = TaskNode("t", max_retries=1, min_retry_interval_millis=90_000)

    assert retry_not_before_ms(node, ended(R.FAILED), NOW) == STARTED + 90_000


def test_the_retry_of_an_attempt_that_never_started_counts_the_interval_from_now():
    node = TaskNode("t", max_retries=1, min_retry_interval_millis=5_000)

    assert retry_not_before_ms(node, ended(None, state=L.INTERNAL_ERROR, start=None), NOW) == NOW + 5_000


def chain(**retries):
    return build_graph([TaskNode("extract", **retries), TaskNode("load", (Dependency("extract"),))])


def with_load(extract):
    return {"extract": extract, "load": TaskStatus("load", L.BLOCKED)}


def test_planner_retries_a_failed_task_and_keeps_its_downstream_waiting():
    graph = chain(max_retries=2, min_retry_interval_millis=30_000)
    statuses = with_load(TaskStatus("extract", L.TERMINATED, R.FAILED, 0, STARTED))

    assert next_actions(graph, statuses, now_ms=NOW) == [RetryTask("extract", 1, STARTED + 30_000)]


def test_planner_does_nothing_while_a_task_waits_for_its_retry():
    graph = chain(max_retries=2)
    statuses = with_load(TaskStatus("extract", L.WAITING_FOR_RETRY, attempt_number=1))

    assert next_actions(graph, statuses, now_ms=NOW) == []


def test_planner_starts_the_downstream_task_when_a_retry_succeeds():
    graph = chain(max_retries=2)
    statuses = with_load(TaskStatus("extract", L.TERMINATED, R.SUCCESS, 1, NOW))

    assert next_actions(graph, statuses, now_ms=NOW) == [StartTask("load")]


def test_planner_fails_the_downstream_task_once_the_last_retry_fails():
    graph = chain(max_retries=2)
    statuses = with_load(TaskStatus("extract", L.TERMINATED, R.FAILED, 2, NOW))

    actions = next_actions(graph, statuses, now_ms=NOW)

    assert actions[0] == SkipTask("load", R.UPSTREAM_FAILED, "Upstream task 'extract' failed")
    assert actions[1].result_state == R.FAILED


def test_planner_retries_a_task_whose_worker_died_with_the_interval_counted_from_now():
    graph = chain(max_retries=1, min_retry_interval_millis=1_000)
    statuses = with_load(TaskStatus("extract", L.INTERNAL_ERROR))

    assert next_actions(graph, statuses, now_ms=NOW) == [RetryTask("extract", 1, NOW + 1_000)]


def test_planner_does_not_finish_the_run_while_a_leaf_has_a_retry_coming():
    graph = build_graph([TaskNode("only", max_retries=1)])
    statuses = {"only": TaskStatus("only", L.TERMINATED, R.FAILED, 0, STARTED)}

    actions = next_actions(graph, statuses, now_ms=NOW)

    assert actions == [RetryTask("only", 1, STARTED)]
