"""When a finished task attempt gets another attempt, and not before when. Pure.

Reference §2.1 and §4.6: a task is retried on result FAILED or life cycle INTERNAL_ERROR,
on TIMEDOUT only with `retry_on_timeout`, while `max_retries` allows (-1 = forever);
`min_retry_interval_millis` is measured from the start of the failed attempt.
"""

from __future__ import annotations

from runs.engine.graph import TaskNode, TaskStatus
from runs.engine.states import CancelReason, RunLifeCycleState, RunResultState, is_finished

RETRY_FOREVER = -1


def is_retryable_failure(node: TaskNode, status: TaskStatus) -> bool:
    """Did this finished attempt end in a way that retries are for?"""
    if not is_finished(status.life_cycle_state):
        return False
    # A worker that died says nothing about the task's code, whatever result it left behind.
    if status.life_cycle_state == RunLifeCycleState.INTERNAL_ERROR:
        return True
    if status.result_state == RunResultState.FAILED:
        return True
    return status.result_state == RunResultState.TIMEDOUT and node.retry_on_timeout


def has_retries_left(node: TaskNode, attempt_number: int) -> bool:
    return node.max_retries == RETRY_FOREVER or attempt_number < node.max_retries


def should_retry(node: TaskNode, status: TaskStatus, cancel_reason: CancelReason | None = None) -> bool:
    """Whether the latest attempt gets a new attempt.

    Never while the run is being canceled: a retry would undo the cancel. CANCELED results
    are never retryable since is_retryable_failure accepts only FAILED, TIMEDOUT and
    INTERNAL_ERROR.
    """
    if cancel_reason is not None:
        return False
    return is_retryable_failure(node, status) and has_retries_left(node, status.attempt_number)


def retry_not_before_ms(node: TaskNode, status: TaskStatus, now_ms: int) -> int:
    """Earliest start of the next attempt: the failed attempt's start plus the interval.

    An attempt that never started (its worker died before claiming it) has no start, so
    the interval is counted from now: waiting less than asked would break the promise
    of `min_retry_interval_millis`.
    """
    started = status.start_time_ms if status.start_time_ms is not None else now_ms
    return started + max(node.min_retry_interval_millis, 0)
