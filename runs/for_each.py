"""For-each tasks while they loop: every planner step of a run with a RUNNING or TERMINATING
for-each attempt starts, retries and cancels its iterations (at most `concurrency` at once) and
finishes it when the last one is done (reference §2.4). Started by runs/control_flow.py."""

from dataclasses import replace

from django.db import connection
from django.db.models import Count, Min, Q

from runs.engine import endings
from runs.engine.foreach import for_each_stats_from_counts, iteration_graph, plan_iterations
from runs.engine.planner import FinishRun, RetryTask, SkipTask, StartTask, node_from_task
from runs.engine.retry import RETRY_FOREVER
from runs.engine.states import CancelReason, FINISHED_LIFE_CYCLES, RunLifeCycleState as L, RunResultState as R
from runs.loading import status_of, task_settings, to_ms
from runs.models import TaskRun
from runs.transitions import cancel_attempt, end_attempt, schedule_retry, skip_attempt, start_attempts

# Iterations handed out and not finished: they hold a slot of the loop's concurrency.
RUNNING_ITERATION_STATES = (L.PENDING, L.RUNNING, L.TERMINATING, L.WAITING_FOR_RETRY)


def current_iterations(run, for_each_key):
    return list(TaskRun.objects.filter(run=run, for_each_key=for_each_key, is_current=True).order_by("iteration"))


def create_iterations(template, inputs, batch_size=1000):
    """Insert a copy of `template` (an unsaved TaskRun) per (index, input) of `inputs`, in that
    order: their ids follow it, as advance_for_each relies on.

    The rows bulk_create would write, for a tenth of its time under the run's lock: bulk_create
    prepares each of a TaskRun's 40 fields for every row (about 0.3 ms a row here, 3 s for 10,000
    inputs); this prepares them once, with the same field methods, then only the two that vary.
    """
    fields = [field for field in TaskRun._meta.concrete_fields if not field.primary_key]
    names = [field.name for field in fields]
    first = [field.get_db_prep_save(field.pre_save(template, True), connection) for field in fields]
    at_index, at_input = names.index("iteration"), names.index("iteration_input")
    index_field, input_field = fields[at_index], fields[at_input]
    quote = connection.ops.quote_name
    sql = (f"INSERT INTO {quote(TaskRun._meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "
           f"VALUES ({', '.join(['%s'] * len(fields))})")
    rows = []
    for index, value in inputs:
        row = list(first)
        row[at_index] = index_field.get_db_prep_save(index, connection)
        row[at_input] = input_field.get_db_prep_save(value, connection)
        rows.append(row)
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch_size):
            cursor.executemany(sql, rows[start:start + batch_size])
    return len(rows)


def iteration_counts(iterations):
    """{(life_cycle_state, result_state): (count, smallest id)} of the current iterations: one
    aggregate query, rather than a row per iteration."""
    rows = iterations.order_by().values_list("life_cycle_state", "result_state").annotate(n=Count("id"), first=Min("id"))
    return {(state, result): (n, first) for state, result, n, first in rows}


def advance_for_each(run, wrapper, now):
    """Plan the iterations of a RUNNING or TERMINATING for-each attempt; True once it finished.

    Called on every change in the run, so it reads only what needs a decision, whatever the
    loop's size: one aggregate query counts the iterations by state; then it loads as many not
    started yet as there are free slots, and the iterations that finished without success only
    when one of them may still be retried or the loop may be ending. A loop over 10,000 inputs
    costs per step about what 10 do (plus the count).
    """
    task = task_settings(run.job_version, wrapper.task_key) or {}
    block = task.get("for_each_task") or {}
    if not isinstance(block.get("task"), dict):
        return False
    canceling = wrapper.life_cycle_state == L.TERMINATING or run.cancel_reason is not None
    concurrency = int(block.get("concurrency") or 1)
    node = node_from_task(block["task"])
    iterations = TaskRun.objects.filter(run=run, for_each_key=wrapper.task_key, is_current=True)
    if canceling:
        running = iterations.filter(life_cycle_state__in=RUNNING_ITERATION_STATES)
        for row in running.exclude(life_cycle_state=L.TERMINATING):
            cancel_attempt(run, row, now, "For-each task was canceled")
    counts = iteration_counts(iterations)
    total = sum(n for n, _ in counts.values())
    busy = sum(n for (state, _), (n, _) in counts.items() if state in RUNNING_ITERATION_STATES)
    not_started = [(n, first) for (state, _), (n, first) in counts.items() if state == L.BLOCKED]
    blocked = sum(n for n, _ in not_started)
    first_blocked = min((first for _, first in not_started), default=None)
    unsuccessful = sum(n for (state, result), (n, _) in counts.items()
                       if state in FINISHED_LIFE_CYCLES and result != R.SUCCESS)
    free = max(0, concurrency - busy)
    ending = canceling or (busy == 0 and blocked == 0)
    rows = []
    if unsuccessful and (ending or node.max_retries != 0):
        # Those that finished without success: a retry to schedule, or the loop's result to word.
        # While the loop goes on, only those with a retry left (a final failure stays as it is).
        finished = iterations.filter(life_cycle_state__in=FINISHED_LIFE_CYCLES).exclude(result_state=R.SUCCESS)
        if not ending and node.max_retries != RETRY_FOREVER:
            finished = finished.filter(attempt_number__lt=node.max_retries)
        rows += list(finished)
    if blocked and (canceling or free):
        # Not started yet, in input order: all of them were created at once, in that order, so
        # their ids follow it; from the first one on, a scan reads only the rows it returns.
        waiting = iterations.filter(life_cycle_state=L.BLOCKED, id__gte=first_blocked).order_by("id")
        rows += list(waiting if canceling else waiting[:free])
    all_blocked_loaded = canceling or blocked <= free
    by_key = {str(row.iteration): row for row in rows}
    statuses = {key: replace(status_of(row), task_key=key) for key, row in by_key.items()}
    graph = iteration_graph(node, sorted(by_key, key=int))
    actions = plan_iterations(graph, statuses, concurrency=concurrency, now_ms=to_ms(now),
                              cancel_reason=CancelReason.USER if canceling else None,
                              total=total, busy_elsewhere=busy)
    start_attempts(run, [by_key[a.task_key] for a in actions if isinstance(a, StartTask)], now)
    for action in actions:
        if isinstance(action, SkipTask):
            skip_attempt(run, by_key[action.task_key], action, now)
        elif isinstance(action, RetryTask):
            schedule_retry(run, by_key[action.task_key], action, now)
        elif isinstance(action, FinishRun) and all_blocked_loaded and ending:
            return finish_for_each(run, wrapper, action, now)
    return False


def finish_for_each(run, wrapper, action, now):
    ending = endings.attempt_ended(action.result_state, action.message, code=action.termination_code,
                                   type_=action.termination_type)
    return end_attempt(run, wrapper, ending, now, from_states=(L.RUNNING, L.TERMINATING),
                       error=action.message if action.result_state == R.FAILED else "")


def iteration_stats(run, wrapper):
    """The API's for_each_task.stats of one for-each attempt (its current iterations): counted
    by the database (one aggregate, plus one over the failures' messages if any failed), so a
    loop of 10,000 iterations costs the run page and runs/get what one of 10 does."""
    if not wrapper.started_at:
        return for_each_stats_from_counts({}, [], 0)
    iterations = TaskRun.objects.filter(run=run, for_each_key=wrapper.task_key, is_current=True)
    counts = {(L(state), R(result) if result else None): n
              for (state, result), (n, _) in iteration_counts(iterations).items()}
    errors = []
    if any(is_failure(state, result) for state, result in counts):
        failed = iterations.filter(Q(life_cycle_state=L.INTERNAL_ERROR) | Q(result_state__in=FAILED_RESULTS))
        grouped = failed.order_by().values_list("life_cycle_state", "result_state", "state_message",
                                                "termination_code").annotate(n=Count("id"))
        errors = [(L(state), R(result) if result else None, message or "", code or "", n)
                  for state, result, message, code, n in grouped]
    return for_each_stats_from_counts(counts, errors, sum(counts.values()))


FAILED_RESULTS = (R.FAILED, R.TIMEDOUT, R.UPSTREAM_FAILED, R.MAXIMUM_CONCURRENT_RUNS_REACHED)


def is_failure(state, result):
    return state == L.INTERNAL_ERROR or result in FAILED_RESULTS
