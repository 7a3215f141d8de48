"""The run state machine: from each task's latest attempt, what happens next. Pure.

The shell loads the run's task statuses, calls `next_actions`, applies the actions with
compare-and-swap in the same transaction and calls again only when something changed. So one
call returns the whole consequence of the statuses it was given: tasks are visited once in
topological order and every skip decided on the way counts as done for the tasks below it.
A task that is started or retried is not done, and everything below it waits.

Reference §2.2 (run_if), §2.3 (disabled), §4.6 (retries), §4.10 (cancel).
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum

from runs.engine.graph import (  # noqa: F401 (the planner's input types, re-exported)
    Dependency,
    Graph,
    TaskNode,
    TaskStatus,
    build_graph,
    graph_from_tasks,
    node_from_task,
    normalized_outcome,
)
from runs.engine.retry import retry_not_before_ms, should_retry
from runs.engine.states import (
    CANCELED_RESULTS,
    SUCCESSFUL_RESULTS,
    CancelReason,
    RunIf,
    RunLifeCycleState,
    RunResultState,
    TerminationCode,
    TerminationType,
    is_finished,
)

L = RunLifeCycleState
R = RunResultState

# Messages name at most this many tasks: a fan-in of 1,000 must not write a novel.
_NAMED_AT_MOST = 5


# --- actions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartTask:
    task_key: str
    reason: str = field(default="", compare=False)  # why it starts now, for its task.pending event


@dataclass(frozen=True)
class SkipTask:
    task_key: str
    result_state: RunResultState
    message: str


@dataclass(frozen=True)
class RetryTask:
    task_key: str
    attempt_number: int
    not_before_ms: int
    reason: str = field(default="", compare=False)  # "retry 2 of 3 due at 10:04:05 UTC"


@dataclass(frozen=True)
class FinishRun:
    result_state: RunResultState
    termination_code: TerminationCode
    termination_type: TerminationType
    message: str


Action = StartTask | SkipTask | RetryTask | FinishRun


class Upstream(Enum):
    """How a finished dependency looks to the task below it (the brief's S/X/F/C/D)."""

    SUCCEEDED = "S"
    EXCLUDED = "X"
    FAILED = "F"
    CANCELED = "C"
    DISABLED = "D"


def classify(status: TaskStatus) -> Upstream:
    """How a task that is done looks downstream. Unknown or missing results count as failed,
    so a surprise never lets an ALL_SUCCESS task run."""
    if status.life_cycle_state == L.INTERNAL_ERROR:
        return Upstream.FAILED
    result = status.result_state
    if result in SUCCESSFUL_RESULTS:
        return Upstream.SUCCEEDED
    if result == R.EXCLUDED:
        return Upstream.EXCLUDED
    if result == R.DISABLED:
        return Upstream.DISABLED
    if result in CANCELED_RESULTS:
        return Upstream.CANCELED
    return Upstream.FAILED


def _as_seen_by(dep: Dependency, parent: Upstream, parent_status: TaskStatus | None) -> Upstream:
    # Only a condition that ran and succeeded took a branch; a failed one fails its children.
    if dep.outcome is None or parent is not Upstream.SUCCEEDED:
        return parent
    taken = normalized_outcome(parent_status.outcome) if parent_status else None
    return Upstream.SUCCEEDED if taken == dep.outcome else Upstream.EXCLUDED


# --- run_if --------------------------------------------------------------------------------

# run_if values whose task is ordinary work: it needs its parents to have succeeded, and a
# cancel stops it. The others handle failures (or clean up) and still run during a cancel.
_SUCCESS_PATH = frozenset({RunIf.ALL_SUCCESS, RunIf.AT_LEAST_ONE_SUCCESS, RunIf.NONE_FAILED})


def quote_keys(keys: list[str]) -> str:
    """'a', 'b' and 3 more: task keys for a message, cut short so a big fan-in stays readable."""
    shown = ", ".join(f"'{key}'" for key in keys[:_NAMED_AT_MOST])
    more = len(keys) - _NAMED_AT_MOST
    return f"{shown} and {more} more" if more > 0 else shown


def _upstream_tasks(keys: list[str], verb_one: str, verb_many: str) -> str:
    if len(keys) == 1:
        return f"upstream task {quote_keys(keys)} {verb_one}"
    return f"upstream tasks {quote_keys(keys)} {verb_many}"


def decide_run_if(run_if: RunIf, upstream: Sequence[tuple[str, Upstream]]) -> tuple[RunResultState | None, str]:
    """(None, "") when the task runs, else the result it is skipped with and why.

    `upstream` is (task_key, how it looks to this task) for each dependency, all done.
    """
    kinds = [kind for _, kind in upstream]
    if all(kind is Upstream.EXCLUDED for kind in kinds):
        return R.EXCLUDED, "Every upstream task was excluded"

    def keys(kind: Upstream) -> list[str]:
        return [key for key, k in upstream if k is kind]

    failed, canceled, disabled = keys(Upstream.FAILED), keys(Upstream.CANCELED), keys(Upstream.DISABLED)
    # EXCLUDED counts as successful unless every dependency was excluded (handled above).
    succeeded = [kind for kind in kinds if kind in (Upstream.SUCCEEDED, Upstream.EXCLUDED)]
    if run_if == RunIf.ALL_DONE:
        return None, ""
    if run_if == RunIf.ALL_SUCCESS:
        met, why = len(succeeded) == len(kinds), ""
    elif run_if == RunIf.AT_LEAST_ONE_SUCCESS:
        met, why = bool(succeeded), "no upstream task succeeded"
    elif run_if == RunIf.NONE_FAILED:
        met = not failed and not canceled and Upstream.SUCCEEDED in kinds
        why = "" if failed or canceled else "no upstream task ran and succeeded"
    elif run_if == RunIf.AT_LEAST_ONE_FAILED:
        met, why = bool(failed), "no upstream task failed"
    else:  # ALL_FAILED
        met, why = len(failed) == len(kinds), "not every upstream task failed"
    if met:
        return None, ""

    # A child that cannot run because of disabled parents is itself disabled (§2.3).
    disabled_cause = _upstream_tasks(disabled, "is disabled", "are disabled") if disabled else ""
    if run_if in _SUCCESS_PATH:
        if canceled:
            result, cause = R.UPSTREAM_CANCELED, _upstream_tasks(canceled, "was canceled", "were canceled")
        elif failed:
            result, cause = R.UPSTREAM_FAILED, _upstream_tasks(failed, "failed", "failed")
        elif disabled:
            result, cause = R.DISABLED, disabled_cause
        else:
            result, cause = R.EXCLUDED, ""
    else:
        result, cause = (R.DISABLED if disabled else R.EXCLUDED), disabled_cause
    reason = "; ".join(part for part in (why, cause) if part)
    if run_if == RunIf.ALL_SUCCESS:
        return result, reason[:1].upper() + reason[1:]
    return result, f"run_if {run_if.value}: {reason}"


# --- the planner ---------------------------------------------------------------------------

_CANCELED_BEFORE_START = "Run was canceled before the task started"


def _decide_blocked(
    node: TaskNode,
    done: Mapping[str, Upstream],
    statuses: Mapping[str, TaskStatus],
    cancel_reason: CancelReason | None,
) -> StartTask | SkipTask | None:
    """What a BLOCKED task does now, or None while any dependency is not done."""
    upstream: list[tuple[str, Upstream]] = []
    for dep in node.depends_on:
        parent = done.get(dep.task_key)
        if parent is None:
            return None
        upstream.append((dep.task_key, _as_seen_by(dep, parent, statuses.get(dep.task_key))))
    key = node.task_key
    if node.disabled:
        return SkipTask(key, R.DISABLED, "Task is disabled")
    if not upstream:
        if cancel_reason is not None:
            return SkipTask(key, R.CANCELED, _CANCELED_BEFORE_START)
        return StartTask(key, "it has no dependencies")
    result, message = decide_run_if(node.run_if, upstream)
    if result is not None:
        return SkipTask(key, result, message)
    if cancel_reason is not None and node.run_if in _SUCCESS_PATH:
        return SkipTask(key, R.CANCELED, _CANCELED_BEFORE_START)
    return StartTask(key, start_reason(node.run_if, upstream, canceling=cancel_reason is not None))


_UPSTREAM_WORDS = {Upstream.SUCCEEDED: "succeeded", Upstream.EXCLUDED: "excluded", Upstream.FAILED: "failed",
                   Upstream.CANCELED: "canceled", Upstream.DISABLED: "disabled"}


def start_reason(run_if: RunIf, upstream: Sequence[tuple[str, Upstream]], *, canceling: bool = False) -> str:
    """Why a task with dependencies starts: "all 2 dependencies succeeded (ALL_SUCCESS)"."""
    count = len(upstream)
    noun = "dependency" if count == 1 else "dependencies"
    kinds = [kind for _, kind in upstream]
    if all(kind == Upstream.SUCCEEDED for kind in kinds):
        said = f"{'its' if count == 1 else f'all {count}'} {noun} succeeded ({run_if})"
    else:
        tally = ", ".join(f"{kinds.count(kind)} {_UPSTREAM_WORDS[kind]}" for kind in Upstream if kind in kinds)
        said = f"its {count} {noun} are done ({tally}), as {run_if} asks"
    return said + ("; the run was canceled, and ALL_DONE tasks still run" if canceling else "")


def retry_reason(node: TaskNode, attempt_number: int, not_before_ms: int) -> str:
    """"retry 2 of 3 due at 10:04:05 UTC" (max_retries -1: "retry 2 (of unlimited)")."""
    of = "unlimited" if node.max_retries == -1 else str(node.max_retries)
    due = datetime.fromtimestamp(not_before_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"retry {attempt_number} of {of}, due at {due}"


def planned_by_focus(graph: Graph, changed: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
    """(the tasks a focused call plans, the other tasks whose statuses it reads) after the tasks
    ``changed`` changed: those tasks and their direct children, and the children's other parents.
    Further down nothing changes unless a child is skipped: the caller then plans again around
    the skipped children (a started child leaves everything below it waiting)."""
    planned = set(changed)
    for key in list(planned):
        planned.update(graph.downstream.get(key, ()))
    parents = {dep.task_key for key in planned for dep in graph.by_key[key].depends_on} - planned
    return frozenset(planned), frozenset(parents)


def next_actions(
    graph: Graph,
    statuses: Mapping[str, TaskStatus],
    *,
    now_ms: int,
    cancel_reason: CancelReason | None = None,
    focus: frozenset[str] | None = None,
) -> list[Action]:
    """Everything that follows from `statuses`, in topological order; FinishRun last.

    A task missing from `statuses` is taken as BLOCKED (never started).

    With ``focus`` (planned_by_focus's tasks, when only its changed tasks changed since the last
    call's actions were applied): the rest of the graph has nothing new to do, so only the focus
    is planned and ``statuses`` need hold only it and the parents planned_by_focus names.
    The run's end is never decided then (that needs every task): FinishRun is not returned.
    """
    actions: list[Action] = []
    done: dict[str, Upstream] = {}  # as the tasks below see them, including this call's skips
    skipped: dict[str, TaskStatus] = {}  # what this call's skips will make of their tasks
    everything_done = focus is None
    for node in graph.nodes:
        key = node.task_key
        if focus is not None and key not in focus:
            # An input of the focus (or unrelated): only whether it is done, and how.
            status = statuses.get(key)
            if status is not None and is_finished(status.life_cycle_state) and not should_retry(
                    node, status, cancel_reason):
                done[key] = classify(status)
            continue
        status = statuses.get(key) or TaskStatus(key, L.BLOCKED)
        state = status.life_cycle_state
        if state == L.BLOCKED:
            action = _decide_blocked(node, done, statuses, cancel_reason)
        elif state == L.WAITING_FOR_RETRY and cancel_reason is not None:
            # Nobody else will ever start this attempt; dropping it lets the run finish.
            action = SkipTask(key, R.CANCELED, "Run was canceled while the task waited for its retry")
        elif is_finished(state):
            if not should_retry(node, status, cancel_reason):
                done[key] = classify(status)
                continue
            not_before = retry_not_before_ms(node, status, now_ms)
            action = RetryTask(key, status.attempt_number + 1, not_before,
                               retry_reason(node, status.attempt_number + 1, not_before))
        else:  # running, about to run, or waiting for its retry time
            action = None
        if action is None:
            everything_done = False
            continue
        actions.append(action)
        if isinstance(action, SkipTask):
            skipped[key] = TaskStatus(key, L.SKIPPED, action.result_state, status.attempt_number)
            done[key] = classify(skipped[key])
        else:
            everything_done = False
    if everything_done:
        final = ChainMap(skipped, statuses)
        actions.append(run_result_from_leaves(graph, final, cancel_reason=cancel_reason))
    return actions


# --- the run's result ----------------------------------------------------------------------


def _own_failure(status: TaskStatus) -> bool:
    # UPSTREAM_FAILED tasks never ran; naming them would hide the task that broke.
    return classify(status) is Upstream.FAILED and status.result_state != R.UPSTREAM_FAILED


def _own_cancel(status: TaskStatus) -> bool:
    return status.result_state == R.CANCELED and status.life_cycle_state != L.INTERNAL_ERROR


def _tasks(keys: list[str], verb_one: str, verb_many: str) -> str:
    if len(keys) == 1:
        return f"Task {quote_keys(keys)} {verb_one}"
    return f"Tasks {quote_keys(keys)} {verb_many}"


def run_result_from_leaves(
    graph: Graph,
    statuses: Mapping[str, TaskStatus],
    *,
    cancel_reason: CancelReason | None = None,
) -> FinishRun:
    """The run's result once every task is done (reference §2.2, "Job run result")."""
    Code, Type = TerminationCode, TerminationType
    if cancel_reason == CancelReason.USER:
        return FinishRun(R.CANCELED, Code.USER_CANCELED, Type.SUCCESS, "Run was canceled by a user")
    if cancel_reason == CancelReason.TIMEOUT:
        message = "Run was canceled: the job's timeout ran out"
        return FinishRun(R.TIMEDOUT, Code.CANCELED, Type.CLIENT_ERROR, message)
    in_order = [statuses.get(node.task_key) or TaskStatus(node.task_key, L.BLOCKED) for node in graph.nodes]
    kinds = {status.task_key: classify(status) for status in in_order}

    failed_leaves = [key for key in graph.leaves if kinds[key] is Upstream.FAILED]
    if failed_leaves:
        culprits = [s.task_key for s in in_order if _own_failure(s)] or failed_leaves
        message = _tasks(culprits, "failed", "failed")
        return FinishRun(R.FAILED, Code.RUN_EXECUTION_ERROR, Type.CLIENT_ERROR, message)

    canceled_leaves = [key for key in graph.leaves if kinds[key] is Upstream.CANCELED]
    if canceled_leaves:
        culprits = [s.task_key for s in in_order if _own_cancel(s)] or canceled_leaves
        message = _tasks(culprits, "was canceled", "were canceled")
        return FinishRun(R.CANCELED, Code.USER_CANCELED, Type.SUCCESS, message)

    troubled = [key for key, kind in kinds.items() if kind in (Upstream.FAILED, Upstream.CANCELED)]
    if troubled:
        culprits = [s.task_key for s in in_order if _own_failure(s) or _own_cancel(s)] or troubled
        message = _tasks(culprits, "did not succeed", "did not succeed") + ", but every leaf task succeeded"
        return FinishRun(R.SUCCESS_WITH_FAILURES, Code.SUCCESS_WITH_FAILURES, Type.SUCCESS, message)
    return FinishRun(R.SUCCESS, Code.SUCCESS, Type.SUCCESS, "All tasks succeeded")
