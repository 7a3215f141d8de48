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
from runs.events import record
from runs.for_each import advance_for_each
from runs.loading import (
    WORKING_RUN_STATES,
    attempts_by_id,
    current_attempts,
    current_status_rows,
    graph_for_run,
    lock_run,
    status_of,
    to_ms,
)
from runs.models import Run, TaskRun
from runs.transitions import abort_run, cancel_attempt, end_attempt, end_run, schedule_retry, skip_attempt, start_attempts

log = logging.getLogger(__name__)


def advance_locked(run, now, handoff=None):
    """The planner step; the caller holds the run lock inside a transaction."""
    graph = graph_for_run(run)
    rows = current_status_rows(run)
    looping = [row.id for row in rows.values()
               if row.task_type == "for_each_task" and row.life_cycle_state in (L.RUNNING, L.TERMINATING)]
    if looping and any([advance_for_each(run, wrapper, now) for wrapper in attempts_by_id(looping).values()]):
        rows = current_status_rows(run)
    statuses = {key: status_of(row) for key, row in rows.items()}
    actions = next_actions(graph, statuses, now_ms=to_ms(now), cancel_reason=run.cancel_reason)
    acting = attempts_by_id([rows[a.task_key].id for a in actions if not isinstance(a, FinishRun)])
    attempts = {attempt.task_key: attempt for attempt in acting.values()}
    starts = [a for a in actions if isinstance(a, StartTask)]
    start_attempts(run, [attempts[a.task_key] for a in starts], now, handoff,
                   reasons={a.task_key: a.reason for a in starts if a.reason})
    for action in actions:
        if isinstance(action, SkipTask):
            skip_attempt(run, attempts[action.task_key], action, now)
        elif isinstance(action, RetryTask):
            schedule_retry(run, attempts[action.task_key], action, now)
        elif isinstance(action, FinishRun):
            end_run(run, endings.run_finished(action.result_state, action.termination_code,
                                              action.termination_type, action.message),
                    now, from_states=WORKING_RUN_STATES)


def finish_attempt(attempt_id, ending, *, now=None, handoff=None, **fields):
    """Record how an attempt ended (an engine Ending) and advance its run, in one transaction.

    Returns False when the attempt had already been finished by someone else (the reaper,
    a redelivered message): the caller's result is then discarded. With a ``Handoff``, the
    caller may take one of the attempts this makes ready (``handoff.pop()`` after the return).
    """
    now = now or timezone.now()
    with transaction.atomic():
        run_id = TaskRun.objects.filter(id=attempt_id).values_list("run_id", flat=True).first()
        if run_id is None:
            return False
        run = lock_run(run_id)
        attempt = TaskRun.objects.only("id", "run", "task_key").get(id=attempt_id)
        if not end_attempt(run, attempt, ending, now, **fields):
            return False
        if run.life_cycle_state in WORKING_RUN_STATES:
            advance_locked(run, now, handoff)
            if handoff is not None:
                handoff.take_waiting(run)
        return True


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
        changed = cancel_attempt(run, attempt, now)
        if run.life_cycle_state in WORKING_RUN_STATES:
            advance_locked(run, now)
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
