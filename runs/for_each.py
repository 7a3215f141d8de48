"""For-each tasks while they loop: every planner step of a run with a RUNNING or TERMINATING
for-each attempt starts, retries and cancels its iterations (at most `concurrency` at once) and
finishes it when the last one is done (reference §2.4). Started by runs/control_flow.py."""

from dataclasses import replace

from runs.engine import endings
from runs.engine.foreach import IterationFacts, for_each_stats, iteration_graph, plan_iterations
from runs.engine.planner import FinishRun, RetryTask, SkipTask, StartTask, TaskStatus, node_from_task
from runs.engine.states import CancelReason, FINISHED_LIFE_CYCLES, RunLifeCycleState as L, RunResultState as R
from runs.loading import status_of, task_settings, to_ms
from runs.models import TaskRun
from runs.transitions import cancel_attempt, end_attempt, schedule_retry, skip_attempt, start_attempts

# Iterations handed out and not finished: they hold a slot of the loop's concurrency.
RUNNING_ITERATION_STATES = (L.PENDING, L.RUNNING, L.TERMINATING, L.WAITING_FOR_RETRY)


def current_iterations(run, for_each_key):
    return list(TaskRun.objects.filter(run=run, for_each_key=for_each_key, is_current=True).order_by("iteration"))


def advance_for_each(run, wrapper, now):
    """Plan the iterations of a RUNNING or TERMINATING for-each attempt; True once it finished.

    Called on every change in the run, so it reads only what needs a decision: iterations that
    finished without success (retry or give up), and as many not started yet as there are free
    slots; running ones are only counted. A loop over 1,000 inputs costs per step what 10 do.
    """
    task = task_settings(run.job_version, wrapper.task_key) or {}
    block = task.get("for_each_task") or {}
    if not isinstance(block.get("task"), dict):
        return False
    canceling = wrapper.life_cycle_state == L.TERMINATING or run.cancel_reason is not None
    concurrency = int(block.get("concurrency") or 1)
    iterations = TaskRun.objects.filter(run=run, for_each_key=wrapper.task_key, is_current=True)
    running = iterations.filter(life_cycle_state__in=RUNNING_ITERATION_STATES)
    if canceling:
        for row in running.exclude(life_cycle_state=L.TERMINATING):
            cancel_attempt(run, row, now, "For-each task was canceled")
    busy = running.count()
    rows = list(iterations.filter(life_cycle_state__in=FINISHED_LIFE_CYCLES).exclude(result_state=R.SUCCESS))
    blocked = iterations.filter(life_cycle_state=L.BLOCKED).order_by("iteration")
    free = max(0, concurrency - busy)
    rows += list(blocked if canceling else blocked[:free])
    all_blocked_loaded = canceling or not blocked[free:free + 1].exists()
    by_key = {str(row.iteration): row for row in rows}
    statuses = {key: replace(status_of(row), task_key=key) for key, row in by_key.items()}
    graph = iteration_graph(node_from_task(block["task"]), sorted(by_key, key=int))
    actions = plan_iterations(graph, statuses, concurrency=concurrency, now_ms=to_ms(now),
                              cancel_reason=CancelReason.USER if canceling else None,
                              total=iterations.count(), busy_elsewhere=busy)
    start_attempts(run, [by_key[a.task_key] for a in actions if isinstance(a, StartTask)], now)
    for action in actions:
        if isinstance(action, SkipTask):
            skip_attempt(run, by_key[action.task_key], action, now)
        elif isinstance(action, RetryTask):
            schedule_retry(run, by_key[action.task_key], action, now)
        elif isinstance(action, FinishRun) and all_blocked_loaded:
            return finish_for_each(run, wrapper, action, now)
    return False


def finish_for_each(run, wrapper, action, now):
    ending = endings.attempt_ended(action.result_state, action.message, code=action.termination_code,
                                   type_=action.termination_type)
    return end_attempt(run, wrapper, ending, now, from_states=(L.RUNNING, L.TERMINATING),
                       error=action.message if action.result_state == R.FAILED else "")


def iteration_stats(run, wrapper):
    """The API's for_each_task.stats of one for-each attempt (its current iterations)."""
    if not wrapper.started_at:
        return for_each_stats([], 0)
    rows = TaskRun.objects.filter(run=run, for_each_key=wrapper.task_key, is_current=True).values_list(
        "life_cycle_state", "result_state", "state_message", "termination_code")
    facts = [IterationFacts(TaskStatus("", L(state), R(result) if result else None), message or "", code or "")
             for state, result, message, code in rows]
    return for_each_stats(facts, len(facts))
