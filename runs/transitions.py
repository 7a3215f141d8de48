"""The state changes of runs and task attempts: each a compare-and-swap UPDATE and its event, in
the caller's transaction (which holds the run's lock, runs/loading.py lock_run).

One writer per fact: a task attempt ends only through ``end_attempt``, a run only through
``end_run``, with an ``Ending`` the engine decided (runs/engine/endings.py). Every event says why
(``reason``), so "why did this start, skip, retry, end?" is a query.
"""

import time

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from runs.broker import enqueue_on_commit
from runs.engine import endings
from runs.engine.states import FINISHED_LIFE_CYCLES, RunLifeCycleState as L
from runs.events import record, record_many
from runs.loading import CONTROL_FLOW_TYPES, HEAVY_COLUMNS, from_ms, to_ms
from runs.models import Repair, Run, TaskRun
from runs.usage import add_to_run

UNFINISHED = (L.PENDING, L.RUNNING, L.TERMINATING)


def start_attempts(run, attempts, now, handoff=None, reasons=None, evaluated_here=frozenset()):
    """BLOCKED -> PENDING, handed to the broker on commit (or to this worker: ``handoff``).
    ``reasons``: {task_key: why it starts now}, recorded on each task.pending event.
    ``evaluated_here``: ids of condition attempts the caller evaluates in this transaction
    (control_flow.evaluate_conditions): PENDING and marked dispatched, but sent nowhere.

    Lazy dispatch: at most LAKEFLOW_DISPATCH_AHEAD task attempts go to the broker now; the rest
    of a wide step wait in the database (dispatched_at NULL) for the run's finishing workers to
    take them (Handoff.take_waiting), one each, and a finish that takes none sends one on
    (``dispatch_held``): a fan-out of 500 costs the broker a few messages, not 500 that the
    handoffs would find claimed. Control-flow attempts always go at once (they need no process).
    """
    if not attempts:
        return
    reasons = reasons or {}
    held = {a.id for a in [a for a in attempts if a.task_type not in CONTROL_FLOW_TYPES][settings.LAKEFLOW_DISPATCH_AHEAD:]}
    # This worker takes one itself, a held one first (the broker's messages stay useful): it goes
    # from BLOCKED to RUNNING in one write. BLOCKED rows only change under the run lock we hold,
    # so plain UPDATEs are safe.
    taken = handoff.pick(sorted(attempts, key=lambda a: a.id not in held)) if handoff is not None else None
    claimed_at = timezone.now()  # not the step's now: its heartbeat must not start out as old as the lock wait
    if taken is not None and not TaskRun.objects.filter(id=taken.id, life_cycle_state=L.BLOCKED).update(
            life_cycle_state=L.RUNNING, queued_at=now, dispatched_at=now, started_at=claimed_at,
            heartbeat_at=claimed_at, worker_host=handoff.host):
        taken = None
    taken_id = taken.id if taken is not None else None
    sent = [a.id for a in attempts if a.id not in held and a.id != taken_id]
    held.discard(taken_id)
    if sent:
        TaskRun.objects.filter(id__in=sent, life_cycle_state=L.BLOCKED).update(
            life_cycle_state=L.PENDING, queued_at=now, dispatched_at=now)
    if held:
        TaskRun.objects.filter(id__in=held, life_cycle_state=L.BLOCKED).update(life_cycle_state=L.PENDING, queued_at=now)
    events = [("task.pending", a, {"task_key": a.task_key, **({"reason": reasons[a.task_key]}
                                                              if a.task_key in reasons else {})}) for a in attempts]
    if taken is not None:
        claimed_as_loaded(taken, claimed_at, handoff.host)
        handoff.took(run, taken, claimed_at)
        events.append(("task.running", taken, running_event_data(taken, handoff.host), claimed_at))
    record_many(run, events, now)
    enqueue_on_commit([i for i in sent if i not in evaluated_here])


def dispatch_held(run, now, count=1):
    """Hand ``count`` of the run's held attempts (start_attempts) to the broker on commit: a finish
    whose worker takes no next attempt passes its place on, so a run's held attempts always have
    workers coming for them. The caller holds the run lock."""
    held = list(run.task_runs.filter(life_cycle_state=L.PENDING, dispatched_at__isnull=True)
                .order_by("id").values_list("id", flat=True)[:count])
    if held:
        TaskRun.objects.filter(id__in=held, life_cycle_state=L.PENDING).update(dispatched_at=now)
        enqueue_on_commit(held)
    return len(held)


def claim(run, attempt, now, host):
    """PENDING -> RUNNING on this host; a compare-and-swap, so exactly one claimer wins."""
    claimed = TaskRun.objects.filter(id=attempt.id, life_cycle_state=L.PENDING).update(
        life_cycle_state=L.RUNNING, started_at=now, heartbeat_at=now, worker_host=host
    )
    if claimed:
        claimed_as_loaded(attempt, now, host)
        record(run, "task.running", attempt, now, **running_event_data(attempt, host))
    return bool(claimed)


def claimed_as_loaded(attempt, at, host):
    """The loaded attempt as its claim wrote it."""
    attempt.life_cycle_state, attempt.started_at, attempt.heartbeat_at, attempt.worker_host = L.RUNNING, at, at, host


def running_event_data(attempt, host):
    return {"task_key": attempt.task_key, "attempt_number": attempt.attempt_number,
            "reason": f"claimed by a worker on {host}" if host else "started in the worker"}


class Handoff:
    """Lets the worker that finishes an attempt run the next one itself, claimed in the finish's
    transaction instead of through the broker: one of the attempts the finish makes ready, else
    the run's oldest attempt still waiting for a worker. A chain then skips the broker's round
    trip (poll, pick-up, claim) per hop, and a wide run's workers go from task to task with one
    write each. The broker's message for a taken attempt finds it claimed and does nothing.

    Only until ``deadline`` (``time.monotonic``): a worker that follows a long run still goes
    back to the broker now and then (other runs' attempts wait there), and a graceful stop of its
    node waits for one task, not the whole run. Control-flow attempts are never taken (a condition
    is evaluated in the finish's step itself, the others go through the broker).
    """

    def __init__(self, host, deadline):
        self.host, self.deadline = host, deadline
        self.attempt_id = self.claimed_at = None
        self.attempt = None  # the claimed attempt, loaded, with its locked run
        self.known_committed = False

    def open(self):
        return self.attempt_id is None and time.monotonic() < self.deadline

    def pick(self, attempts):
        """Which of ``attempts`` (being started) this worker would take, or None."""
        return next((a for a in attempts if a.task_type not in CONTROL_FLOW_TYPES), None) if self.open() else None

    def took(self, run, attempt, claimed_at):
        """``attempt`` was claimed for this worker (as loaded: claimed_as_loaded)."""
        attempt.run = run
        self.attempt_id, self.claimed_at, self.attempt, self.known_committed = attempt.id, claimed_at, attempt, False

    def take_waiting(self, run):
        """Claim the run's oldest PENDING attempt, if nothing was taken yet: a held one (no broker
        message) before one the broker carries. True if this worker has an attempt to run next."""
        if not self.open():
            return self.attempt_id is not None
        waiting = run.task_runs.filter(life_cycle_state=L.PENDING).exclude(task_type__in=CONTROL_FLOW_TYPES).order_by(
            F("dispatched_at").asc(nulls_first=True), "id").defer(*HEAVY_COLUMNS)[:2]
        return any(self.claim(run, attempt) for attempt in waiting)

    def claim(self, run, attempt):
        # Now, not the finish's now: its heartbeat must not start out as old as the lock wait.
        now = timezone.now()
        if claim(run, attempt, now, self.host):
            self.took(run, attempt, now)
            return True
        return False

    def committed(self):
        """The finish that claimed (or did not) has committed: its claim holds."""
        self.known_committed = True

    def pop(self):
        """The claimed attempt's id (once), or None; ``claimed_at`` is its started_at."""
        taken, self.attempt_id, self.attempt = self.attempt_id, None, None
        return taken

    def pop_committed(self):
        """The claimed attempt as loaded (once) when its claim is known to be committed, else None
        (pop() and read it again: a finish that failed may or may not have committed it)."""
        if self.attempt is None or not self.known_committed:
            return None
        attempt = self.attempt
        self.pop()
        return attempt


def schedule_retry(run, failed, action, now):
    """A new attempt row: WAITING_FOR_RETRY until its time, or PENDING at once if due."""
    not_before = from_ms(action.not_before_ms)
    due = not_before <= now
    TaskRun.objects.filter(id=failed.id).update(is_current=False)
    retry = TaskRun.objects.create(
        run=run,
        repair_id=failed.repair_id,
        task_key=failed.task_key,
        task_type=failed.task_type,
        for_each_key=failed.for_each_key,
        iteration=failed.iteration,
        iteration_input=failed.iteration_input,
        attempt_number=action.attempt_number,
        original_attempt_id=failed.original_attempt_id or failed.id,
        life_cycle_state=L.PENDING if due else L.WAITING_FOR_RETRY,
        queued_at=now if due else None,
        dispatched_at=now if due else None,
        retry_at=not_before,
    )
    record(run, "task.retry_scheduled", retry, now, task_key=retry.task_key,
           attempt_number=retry.attempt_number, retry_at=to_ms(not_before), reason=action.reason)
    if due:
        record(run, "task.pending", retry, now, task_key=retry.task_key, reason=f"retry {retry.attempt_number} is due")
        enqueue_on_commit([retry.id])


def end_attempt(run, attempt, ending, now, *, from_states=UNFINISHED, event="task.finished", **fields):
    """The one writer of a task attempt's end: its state, result, codes, message and event.
    A compare-and-swap from ``from_states``: False if someone else ended it first."""
    updated = TaskRun.objects.filter(id=attempt.id, life_cycle_state__in=from_states).update(
        **ending.as_fields(), ended_at=now, **fields)
    if updated:
        add_to_run(run.id, fields)  # its usage, once: only the ending that won the compare-and-swap
        # data_access: the lineage app's reaction has something to read (runs/models.TaskRun).
        extra = {"data_access": True} if fields.get("data_access") else {}
        record(run, event, attempt, now, task_key=attempt.task_key, **ending.as_event(), **extra)
    return bool(updated)


def skip_attempt(run, attempt, action, now):
    # A retry still waiting when the run is canceled is skipped too, not only blocked tasks.
    end_attempt(run, attempt, endings.skipped(action.result_state, action.message), now,
                from_states=(L.BLOCKED, L.WAITING_FOR_RETRY), event="task.skipped")


def cancel_attempt(run, attempt, now, message="Canceled by user"):
    """Stop one attempt: not started yet -> CANCELED now; running -> TERMINATING for its worker
    (a run_job_task's child runs are canceled in reaction to its task.terminating event)."""
    waiting = (L.PENDING, L.WAITING_FOR_RETRY, L.BLOCKED)
    if attempt.life_cycle_state in waiting:
        if end_attempt(run, attempt, endings.canceled_before_start(message), now,
                       from_states=(attempt.life_cycle_state,)):
            return True
        attempt.refresh_from_db()
    if attempt.life_cycle_state == L.RUNNING:
        if TaskRun.objects.filter(id=attempt.id, life_cycle_state=L.RUNNING).update(
                life_cycle_state=L.TERMINATING, state_message=message):
            record(run, "task.terminating", attempt, now, task_key=attempt.task_key, task_type=attempt.task_type,
                   reason=message)
            # A for-each task's iterations are stopped by advance_for_each, which sees it TERMINATING.
            return True
    return False


def end_run(run, ending, now, *, from_states, **fields):
    """The one writer of a run's end: the run, its open repair and the run.finished event (to
    which the next queued run, a continuous restart and a parent task react: runs/reactions.py).
    A compare-and-swap from ``from_states``: False if the run had ended already."""
    updated = Run.objects.filter(id=run.id, life_cycle_state__in=from_states).update(
        **ending.as_fields(), ended_at=now, **fields)
    if not updated:
        return False
    if run.repair_count:  # a run never repaired has no repair to end
        Repair.objects.filter(run=run, ended_at__isnull=True).update(**ending.as_fields(), ended_at=now)
    run.life_cycle_state, run.result_state = ending.life_cycle_state, ending.result_state
    record(run, "run.finished", None, now, **ending.as_event())
    return True


def abort_run(run, message, now):
    """End a run the engine could not advance (a bug, or settings stored before they were
    bounded): its unfinished attempts and the run end INTERNAL_ERROR with ``message``, so the one
    broken run says why and every other run goes on. Only plain writes: this is the way out when
    the planner itself fails. A running attempt's worker sees the change at its next check and
    kills the task's process tree."""
    ending = endings.internal_error(message)
    unfinished = TaskRun.objects.filter(run_id=run.id).exclude(life_cycle_state__in=FINISHED_LIFE_CYCLES)
    attempts = list(unfinished.only("id", "task_key", "task_type"))
    unfinished.update(**ending.as_fields(), ended_at=now)
    # Each attempt's end is an event too: the Events card says why, and a run_job_task's child
    # runs are canceled in reaction (runs/control_flow.cancel_child_runs).
    record_many(run, [("task.finished", attempt, {"task_key": attempt.task_key, "task_type": attempt.task_type,
                                                  **ending.as_event()}) for attempt in attempts], now)
    return end_run(run, ending, now, from_states=[s for s in L if s not in FINISHED_LIFE_CYCLES])
