"""For-each tasks: which iterations start, retry or finish, and the loop's stats. Pure.

Iterations are independent copies of the nested task, so the ordinary planner decides each one
(retries per iteration, cancel); this module adds the concurrency limit and words the loop's
own result. Iteration keys are their indexes as text.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from runs.engine.planner import (
    Action,
    FinishRun,
    Graph,
    RetryTask,
    SkipTask,
    StartTask,
    TaskNode,
    TaskStatus,
    next_actions,
)
from runs.engine.states import (
    CancelReason,
    RunLifeCycleState as L,
    RunResultState as R,
    TerminationCode,
    TerminationType,
    is_finished,
)

ACTIVE = frozenset({L.PENDING, L.QUEUED, L.RUNNING, L.TERMINATING})
ERROR_MESSAGES_SHOWN = 3


@dataclass(frozen=True)
class IterationFacts:
    """The latest attempt of one iteration, for stats: its status plus how it failed."""

    status: TaskStatus
    error_message: str = ""
    termination_code: str = ""


def iteration_graph(nested: TaskNode, keys: int | Sequence[str]) -> Graph:
    """Independent copies of the nested task, keyed by iteration index: all of them, or some."""
    keys = [str(i) for i in range(keys)] if isinstance(keys, int) else keys
    return Graph(tuple(replace(nested, task_key=key, depends_on=()) for key in keys))


def plan_iterations(
    graph: Graph,
    statuses: Mapping[str, TaskStatus],
    *,
    concurrency: int,
    now_ms: int,
    cancel_reason: CancelReason | None = None,
    total: int | None = None,
    busy_elsewhere: int = 0,
) -> list[Action]:
    """The planner's actions for the iterations, starting at most `concurrency` at once.

    `graph` and `statuses` may cover only the iterations that still need a decision (the shell
    leaves out those that succeeded and those running): `busy_elsewhere` counts the running
    ones left out, `total` all iterations, for the message. A FinishRun at the end means every
    iteration is done (none busy elsewhere): it is the for-each task's result.
    """
    actions = next_actions(graph, statuses, now_ms=now_ms, cancel_reason=cancel_reason)
    if busy_elsewhere and actions and isinstance(actions[-1], FinishRun):
        actions.pop()
    busy = busy_elsewhere + sum(
        1 for s in statuses.values() if s.life_cycle_state in ACTIVE or s.life_cycle_state == L.WAITING_FOR_RETRY)
    # Retries keep their slot (they wait in WAITING_FOR_RETRY or start at once).
    busy += sum(1 for a in actions if isinstance(a, RetryTask))
    free = max(0, concurrency - busy)
    planned: list[Action] = []
    for action in actions:
        if isinstance(action, StartTask):
            if free == 0:
                continue
            free -= 1
        if isinstance(action, FinishRun):
            action = loop_result(statuses, actions, cancel_reason, total)
        planned.append(action)
    return planned


def loop_result(statuses: Mapping[str, TaskStatus], actions: Sequence[Action],
                cancel_reason: CancelReason | None, total: int | None = None) -> FinishRun:
    final = dict(statuses)
    for action in actions:
        if isinstance(action, SkipTask):
            final[action.task_key] = TaskStatus(action.task_key, L.SKIPPED, action.result_state)
    total = len(final) if total is None else total
    failed = [k for k, s in final.items() if _failed(s)]
    canceled = [k for k, s in final.items() if s.result_state in (R.CANCELED, R.UPSTREAM_CANCELED)]
    if cancel_reason is not None or (canceled and not failed):
        return FinishRun(R.CANCELED, TerminationCode.USER_CANCELED, TerminationType.SUCCESS,
                         f"For-each canceled: {total - len(canceled)} of {total} iterations finished")
    if failed:
        first = ", ".join(str(int(k)) for k in sorted(failed, key=int)[:5])
        return FinishRun(R.FAILED, TerminationCode.RUN_EXECUTION_ERROR, TerminationType.CLIENT_ERROR,
                         f"{len(failed)} of {total} iterations failed (index {first}"
                         f"{' and more' if len(failed) > 5 else ''})")
    return FinishRun(R.SUCCESS, TerminationCode.SUCCESS, TerminationType.SUCCESS,
                     f"All {total} iterations succeeded")


def _failed(status: TaskStatus) -> bool:
    return status.life_cycle_state == L.INTERNAL_ERROR or status.result_state in (
        R.FAILED, R.TIMEDOUT, R.UPSTREAM_FAILED, R.MAXIMUM_CONCURRENT_RUNS_REACHED)


def for_each_stats(iterations: Sequence[IterationFacts], total: int) -> dict:
    """The API's ForEachStats: counts over the latest attempt of every iteration."""
    counts = Counter((f.status.life_cycle_state, f.status.result_state) for f in iterations)
    errors = Counter((f.status.life_cycle_state, f.status.result_state, f.error_message, f.termination_code)
                     for f in iterations if _failed(f.status))
    return for_each_stats_from_counts(counts, [(*key, n) for key, n in errors.items()], total)


def for_each_stats_from_counts(
    counts: Mapping[tuple[L, R | None], int],
    failures: Sequence[tuple[L, R | None, str, str, int]],
    total: int,
) -> dict:
    """The API's ForEachStats from counts the database made: how many current iterations are in
    each (life cycle state, result state), and the failed ones grouped by (state, result, error
    message, termination code) with their count. A loop of 10,000 costs what one of 10 does.

    scheduled = handed to a worker or waiting for a retry, not yet finished; active = running.
    """
    def number(test) -> int:
        return sum(n for (state, result), n in counts.items() if test(TaskStatus("", state, result)))

    def done(s: TaskStatus) -> bool:
        return is_finished(s.life_cycle_state) and s.life_cycle_state != L.WAITING_FOR_RETRY

    errors: Counter = Counter()
    for state, result, message, code, n in failures:
        if _failed(TaskStatus("", state, result)):
            errors[(message or result or "failed", code or "")] += n
    return {
        "task_run_stats": {
            "total_iterations": total,
            "scheduled_iterations": number(lambda s: s.life_cycle_state in (L.PENDING, L.QUEUED, L.WAITING_FOR_RETRY)),
            "active_iterations": number(lambda s: s.life_cycle_state in (L.RUNNING, L.TERMINATING)),
            "completed_iterations": number(done),
            "succeeded_iterations": number(lambda s: done(s) and s.result_state == R.SUCCESS),
            "failed_iterations": number(lambda s: done(s) and _failed(s)),
        },
        "error_message_stats": [
            {"error_message": message[:500], "count": count, "termination_category": code}
            for (message, code), count in errors.most_common(ERROR_MESSAGES_SHOWN)
        ],
    }
