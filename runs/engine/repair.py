"""Which tasks a repair reruns (reference §4.9). Pure.

The shell resets the chosen tasks to BLOCKED as new attempts and lets the planner run
them; tasks not chosen keep their status, so a rerun task below a successful one starts
at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from runs.engine.planner import Graph, TaskStatus, quote_keys
from runs.engine.states import RunLifeCycleState, RunResultState, is_finished

R = RunResultState

# What rerun_all_failed_tasks picks up: the task did not succeed and was not skipped by design.
RERUNNABLE_RESULTS = frozenset({R.FAILED, R.TIMEDOUT, R.CANCELED, R.UPSTREAM_FAILED, R.UPSTREAM_CANCELED})


class RepairInvalid(ValueError):
    """The repair request cannot be carried out; the message says what to fix."""


def unfinished_tasks(statuses: Mapping[str, TaskStatus]) -> list[str]:
    return [key for key, status in statuses.items() if not is_finished(status.life_cycle_state)]


def needs_rerun(status: TaskStatus) -> bool:
    if status.life_cycle_state == RunLifeCycleState.INTERNAL_ERROR:
        return True
    return status.result_state in RERUNNABLE_RESULTS


def tasks_to_rerun(
    graph: Graph,
    statuses: Mapping[str, TaskStatus],
    *,
    rerun_tasks: Sequence[str] | None,
    rerun_all_failed_tasks: bool,
    rerun_dependent_tasks: bool,
) -> list[str]:
    """The task keys to run again, in topological order.

    `graph` is built from the job's current settings (a repair uses them, §4.9), so it may
    hold tasks the run never had; such tasks are rerun only as dependents or when named.
    """
    unfinished = unfinished_tasks(statuses)
    if unfinished:
        raise RepairInvalid(
            f"The run is still in progress ({quote_keys(sorted(unfinished))} not finished); "
            "wait for it to finish or cancel it before repairing"
        )
    if isinstance(rerun_tasks, str):
        raise RepairInvalid("rerun_tasks must be a list of task keys, not a single string")
    if rerun_tasks and rerun_all_failed_tasks:
        raise RepairInvalid("Give either rerun_tasks or rerun_all_failed_tasks, not both")
    if not rerun_tasks and not rerun_all_failed_tasks:
        raise RepairInvalid("Give rerun_tasks (a non-empty list of task keys) or set rerun_all_failed_tasks")

    if rerun_tasks:
        unknown = [key for key in dict.fromkeys(rerun_tasks) if key not in graph.by_key]
        if unknown:
            raise RepairInvalid(
                f"rerun_tasks: unknown task key(s) {quote_keys(unknown)}; "
                f"the job has {quote_keys(list(graph.by_key)) or 'no tasks'}"
            )
        selected = set(rerun_tasks)
    else:
        selected = {
            node.task_key
            for node in graph.nodes
            if node.task_key in statuses and needs_rerun(statuses[node.task_key])
        }
        if not selected:
            # An empty repair would record a new repair that does nothing; say so instead.
            raise RepairInvalid(
                "rerun_all_failed_tasks: no task in this run failed, timed out or was canceled; "
                "name the tasks to rerun with rerun_tasks"
            )
    if rerun_dependent_tasks:
        selected |= graph.descendants(selected)
    return [node.task_key for node in graph.nodes if node.task_key in selected]


def iterations_to_rerun(results: Mapping[int, RunResultState | None]) -> list[int]:
    """The iterations of a for-each task that a repair runs again: those that did not succeed
    ({iteration index: result of its latest attempt})."""
    return sorted(index for index, result in results.items() if result != RunResultState.SUCCESS)
