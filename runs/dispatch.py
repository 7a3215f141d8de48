"""Advance runs: load rows, ask the planner, write the result and its events in one transaction.

Every function here that changes a run's tasks starts by locking the run (`lock_run`), so two
workers finishing two parents of the same task cannot both miss that it is ready. Side effects
(handing attempts to the broker) happen only after the transaction commits, and what follows
for other runs (the job's next queued run, a parent task, a continuous restart) is a reaction to
the events written here (runs/reactions.py), never a call from here.
"""

import dataclasses
import logging

from django.db import transaction
from django.utils import timezone

from runs.engine import endings
from runs.engine.planner import FinishRun, RetryTask, SkipTask, StartTask, next_actions
from runs.engine.states import ACTIVE_TASK_LIFE_CYCLES, FINISHED_LIFE_CYCLES, CancelReason, RunLifeCycleState as L
from runs.events import gathered, record
from runs.for_each import advance_for_each
from runs.loading import (
    WORKING_RUN_STATES,
    attempts_by_id,
    current_attempt_rows,
    current_attempts,
    current_status_rows,
    focus_of,
    graph_for_run,
    has_unfinished_tasks,
    lock_run,
    StatusRow,
    status_of,
    to_ms,
)
from runs.models import Run, TaskRun
from runs.transitions import (abort_run, cancel_attempt, dispatch_held, end_attempt, end_run, schedule_retry, skip_attempt,
                              start_attempts)

log = logging.getLogger(__name__)


def advance_locked(run, now, handoff=None, rows=None, loaded=None):
    """The planner step over the whole run; the caller holds the run lock inside a transaction.
    ``rows``: every task's current status row, if the caller has them all; ``loaded``: attempts
    the caller has, by id (apply_actions reads the others it acts on)."""
    graph = graph_for_run(run)
    rows = current_status_rows(run) if rows is None else rows
    looping = [row.id for row in rows.values()
               if row.task_type == "for_each_task" and row.life_cycle_state in (L.RUNNING, L.TERMINATING)]
    if looping and any([advance_for_each(run, wrapper, now) for wrapper in attempts_by_id(looping).values()]):
        rows, loaded = current_status_rows(run), None
    apply_actions(run, rows, next_actions(graph, status_map(rows), now_ms=to_ms(now), cancel_reason=run.cancel_reason),
                  now, handoff, loaded)


def advance_after_finish(run, attempt, known, now, handoff):
    """The planner step after ``attempt`` ended (under the run lock): only its task (for an
    iteration, its for-each task), that task's children and their parents are read and planned
    (plan_around: a finish in a 500-task fan-out reads one row, not 500), and the whole run only
    once nothing is left unfinished (its end needs every task). ``known``: the ended attempt's
    status row as just written (no need to read it back), or None. Then this worker takes its
    next attempt (``handoff``), or its place goes to a held one (dispatch_held)."""
    changed = attempt.for_each_key or attempt.task_key
    graph = graph_for_run(run)
    if changed not in graph.by_key:  # not a task of this (partial) run's graph: plan the whole run
        advance_locked(run, now, handoff)
        started = True
    elif len(graph.by_key) <= SMALL_RUN:
        # A run this small is read whole anyway: planned whole (its end too), at once, from the row
        # in hand and one read of the rest; no look for held attempts once it has ended.
        known = {changed: known} if known else {}
        missing = graph.by_key.keys() - known.keys()
        advance_locked(run, now, handoff, rows={**(current_status_rows(run, keys=missing) if missing else {}), **known})
        if run.life_cycle_state in WORKING_RUN_STATES and not (handoff is not None and handoff.take_waiting(run)):
            dispatch_held(run, now)
        return
    else:
        started = plan_around(run, now, handoff, graph, [changed], known={changed: known} if known else {})
    took = handoff is not None and handoff.take_waiting(run)
    sent = not took and dispatch_held(run, now)  # this worker takes none: its place goes to a held attempt
    # Anything taken, sent or started is unfinished: the run goes on without asking.
    if not (started or took or sent) and not has_unfinished_tasks(run):
        advance_locked(run, now, handoff)  # everything is done: the whole run decides its end


def plan_around(run, now, handoff, graph, changed, known=None):
    """Plan the children of the tasks ``changed`` (and those tasks: a retry), then around the
    children this skips, and so on down; True if a task started or will retry. ``known``: status
    rows already in hand, by task key."""
    focus, parents = focus_of(run, graph, changed)
    known = known or {}
    missing = (focus | parents) - known.keys()
    # A few rows (a chain's next task) are read whole at once: the ones that start are then loaded.
    read, loaded = (current_attempt_rows(run, missing) if len(missing) <= FEW_ROWS else
                    (current_status_rows(run, keys=missing), {})) if missing else ({}, {})
    rows = {**read, **known}
    looping = [row for key, row in rows.items() if key in changed and row.task_type == "for_each_task"
               and row.life_cycle_state in (L.RUNNING, L.TERMINATING)]
    if looping and any([advance_for_each(run, wrapper, now) for wrapper in attempts_by_id([r.id for r in looping]).values()]):
        rows, loaded = current_status_rows(run, keys=focus | parents), {}
    actions = next_actions(graph, status_map(rows), now_ms=to_ms(now), cancel_reason=run.cancel_reason, focus=focus)
    apply_actions(run, rows, actions, now, handoff, loaded)
    skipped = [action.task_key for action in actions if isinstance(action, SkipTask) and action.task_key not in changed]
    # A condition evaluated in this step has ended already: what it left unfinished (a child the
    # step above still skips) is for the run's end check to see, so it does not count as started.
    started = any(isinstance(action, RetryTask) or isinstance(action, StartTask)
                  and not evaluated_here(rows[action.task_key]) for action in actions)
    return plan_around(run, now, handoff, graph, skipped) or started if skipped else started


def status_map(rows):
    return {key: status_of(row) for key, row in rows.items()}


FEW_ROWS = 16
SMALL_RUN = 8  # tasks


def apply_actions(run, rows, actions, now, handoff, loaded=None):
    """``loaded``: attempts already read, by id (the rest of those acted on are read now)."""
    loaded = loaded or {}
    ids = [rows[a.task_key].id for a in actions if not isinstance(a, FinishRun)]
    acting = {**attempts_by_id([i for i in ids if i not in loaded]), **{i: loaded[i] for i in ids if i in loaded}}
    attempts = {attempt.task_key: attempt for attempt in acting.values()}
    starts = [a for a in actions if isinstance(a, StartTask)]
    # A condition is evaluated where it becomes ready, under this lock: no broker, no worker.
    conditions = [attempts[a.task_key] for a in starts if evaluated_here(attempts[a.task_key])]
    start_attempts(run, [attempts[a.task_key] for a in starts], now, handoff,
                   reasons={a.task_key: a.reason for a in starts if a.reason},
                   evaluated_here={attempt.id for attempt in conditions})
    for action in actions:
        if isinstance(action, SkipTask):
            skip_attempt(run, attempts[action.task_key], action, now)
        elif isinstance(action, RetryTask):
            schedule_retry(run, attempts[action.task_key], action, now)
        elif isinstance(action, FinishRun):
            end_run(run, endings.run_finished(action.result_state, action.termination_code,
                                              action.termination_type, action.message),
                    now, from_states=WORKING_RUN_STATES)
    if conditions:
        _evaluator[0](run, conditions, now, handoff)


def evaluated_here(attempt):
    """Whether the step that starts ``attempt`` (a TaskRun or a planner row) evaluates it: a
    top-level condition task, once an evaluator is registered (an iteration's goes through the
    broker, as its for-each plans it)."""
    return bool(_evaluator) and attempt.task_type == "condition_task" and not getattr(attempt, "for_each_key", "")


_evaluator = []  # runs.control_flow's evaluate_conditions, once it is imported (runs/apps.py)


def evaluates_conditions(evaluate):
    """Register evaluate(run, attempts, now, handoff), which evaluates condition attempts a step
    started (runs.control_flow: it plans through this module, so this one cannot import it).
    Until one is registered, conditions go to workers through the broker."""
    _evaluator[:] = [evaluate]
    return evaluate


def finish_attempt(attempt_id, ending, *, now=None, handoff=None, loaded=None, **fields):
    """Record how an attempt ended (an engine Ending) and advance its run, in one transaction.

    Returns False when the attempt had already been finished by someone else (the reaper,
    a redelivered message): the caller's result is then discarded. With a ``Handoff``, the
    caller may take one of the attempts this makes ready (``handoff.pop()`` after the return).
    ``loaded``: the attempt as its worker loaded it when it claimed it, if it has it (saves a read).
    """
    now = now or timezone.now()
    # What an attempt belongs to never changes, nor its number and start once it ran: read before
    # the transaction (on SQLite, the one write lock), which then holds only what must be decided.
    # A worker's claimed attempt already holds all of it (is_current turns False only after its end).
    attempt = loaded if loaded is not None and loaded.id == attempt_id and loaded.started_at is not None else (
        TaskRun.objects.only(*ATTEMPT_IDENTITY).filter(id=attempt_id).first())
    if attempt is None:
        return False
    # A claim left by an earlier try of this finish (one that failed, maybe at commit) is never
    # taken as committed: the worker reads it back (runs/worker.py handed_off).
    earlier_claim = handoff.attempt_id if handoff is not None else None
    with transaction.atomic(), gathered():
        run = lock_run(attempt.run_id)
        if not end_attempt(run, attempt, ending, now, **fields):
            return False
        if earlier_claim is not None:  # this end won, so the earlier try did not commit: nor did its claim
            handoff.pop()
            earlier_claim = None
        advance_after_end(run, attempt, ending, fields, now, handoff)
        if handoff is not None and handoff.attempt_id not in (None, earlier_claim):
            transaction.on_commit(handoff.committed)  # only once the outermost commit happened
    return True


def advance_after_end(run, attempt, ending, fields, now, handoff=None):
    """The planner step after end_attempt(run, attempt, ending, now, **fields) won, under the run's
    lock (a run that is not being worked on any more has nothing to plan)."""
    if run.life_cycle_state in WORKING_RUN_STATES:
        advance_after_finish(run, attempt, ended_status_row(attempt, ending, fields), now, handoff)


ATTEMPT_IDENTITY = ("id", "run", "task_key", "for_each_key", "task_type", "attempt_number", "started_at", "outcome",
                    "is_current")


def ended_status_row(attempt, ending, fields):
    """The planner's row of a top-level attempt that just ended (None for an iteration, or an
    attempt that is not its task's latest: those are read)."""
    if attempt.for_each_key or not attempt.is_current:
        return None
    return StatusRow(attempt.id, attempt.task_key, attempt.task_type, ending.life_cycle_state, ending.result_state,
                     attempt.attempt_number, attempt.started_at, fields.get("outcome", attempt.outcome))


def cancel_run(run_id, *, reason=CancelReason.USER, now=None, message=None):
    """Cancel a run: its active attempts stop, the planner decides the rest (ALL_DONE still runs)."""
    now = now or timezone.now()
    reason = CancelReason(reason)
    with transaction.atomic():
        run = lock_run(run_id)
        if run.life_cycle_state in FINISHED_LIFE_CYCLES:
            return False
        if run.life_cycle_state == L.QUEUED:
            ending = endings.canceled_while_queued(reason)
            if message:
                ending = dataclasses.replace(ending, message=message)
            return end_run(run, ending, now, from_states=(L.QUEUED,), cancel_reason=reason)
        message = message or ("Run canceled by user" if reason == CancelReason.USER else "Run timed out")
        Run.objects.filter(id=run.id).update(cancel_reason=reason, life_cycle_state=L.TERMINATING)
        run.cancel_reason, run.life_cycle_state = reason, L.TERMINATING
        record(run, "run.cancel_requested", None, now, reason=message, cancel_reason=reason)
        for attempt in current_attempts(run).values():
            if attempt.life_cycle_state in (*ACTIVE_TASK_LIFE_CYCLES, L.WAITING_FOR_RETRY):
                cancel_attempt(run, attempt, now, message)
        advance_locked(run, now)
        return True


def cancel_task_run(attempt_id, now=None):
    """Cancel one task attempt; its downstream becomes UPSTREAM_CANCELED, ALL_DONE tasks still run."""
    now = now or timezone.now()
    with transaction.atomic():
        attempt = TaskRun.objects.get(id=attempt_id)
        run = lock_run(attempt.run_id)
        attempt.refresh_from_db()
        if attempt.life_cycle_state in FINISHED_LIFE_CYCLES:
            return False
        sent = attempt.life_cycle_state == L.PENDING
        changed = cancel_attempt(run, attempt, now)
        if run.life_cycle_state in WORKING_RUN_STATES:
            advance_locked(run, now)
            if changed and sent:  # its broker message will find it canceled: its place goes on
                dispatch_held(run, now)
        return changed


def end_broken_run(run_id, message, now=None):
    """abort_run in a transaction of its own, for a run the engine cannot advance: it alone ends
    INTERNAL_ERROR with ``message`` (the clock's admission sweep then frees its slot's queue)."""
    now = now or timezone.now()
    with transaction.atomic():
        ended = abort_run(lock_run(run_id), message, now)
    if ended:
        log.error("run %s ended INTERNAL_ERROR: %s", run_id, message)
    return ended
