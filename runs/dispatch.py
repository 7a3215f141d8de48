"""Advance runs: load rows, ask the planner, write the result and its events in one transaction.

Every function here that changes a run's tasks starts by locking the run (`lock_run`), so two
workers finishing two parents of the same task cannot both miss that it is ready. Side effects
(handing attempts to the broker) happen only after the transaction commits.
"""

import logging
import time
from collections import namedtuple
from datetime import datetime, timedelta, timezone as dt_timezone

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from jobs.models import JobVersion
from jobs.spec.settings import task_type_of
from runs.engine.partial import restrict_tasks
from runs.engine.planner import (
    FinishRun,
    RetryTask,
    SkipTask,
    StartTask,
    TaskStatus,
    graph_from_tasks,
    next_actions,
)
from runs.engine.states import (
    ACTIVE_TASK_LIFE_CYCLES,
    FINISHED_LIFE_CYCLES,
    RunLifeCycleState as L,
    RunResultState as R,
    TerminationCode,
    TerminationType,
)
from runs.events import record, record_many
from runs.models import Repair, Run, TaskRun

log = logging.getLogger(__name__)

ACTIVE_RUN_STATES = (L.RUNNING, L.TERMINATING)


def to_ms(moment):
    return int(moment.timestamp() * 1000) if moment else None


def from_ms(ms):
    return datetime.fromtimestamp(ms / 1000, tz=dt_timezone.utc)


_graphs = {}

# Task types that run inside the worker, without a task process of their own.
CONTROL_FLOW_TYPES = ("condition_task", "for_each_task", "run_job_task")
# Their attempts stay RUNNING while iterations or a child run work: no heartbeat to watch.
WAITING_TYPES = ("for_each_task", "run_job_task")


def graph_for_version(version, only=None):
    """The planner's graph of a job version (limited to `only`, for a partial run).

    Versions are immutable, so graphs are cached per process (like the versions: ``job_version``)."""
    cache_key = (version.id, tuple(only) if only is not None else None)
    graph = _graphs.get(cache_key)
    if graph is None:
        if len(_graphs) >= 256:
            _graphs.clear()
        tasks = restrict_tasks(version.settings.get("tasks", []), only)
        graph = _graphs[cache_key] = graph_from_tasks(tasks)
    return graph


def graph_for_run(run):
    return graph_for_version(run.job_version, run.only_tasks)


def task_settings(version, task_key):
    for task in version.settings.get("tasks", []):
        if task["task_key"] == task_key:
            return task
    return None


def attempt_task_settings(version, attempt):
    """The task dict an attempt runs: the nested task for a for-each iteration."""
    if not attempt.for_each_key:
        return task_settings(version, attempt.task_key)
    wrapper = task_settings(version, attempt.for_each_key)
    nested = ((wrapper or {}).get("for_each_task") or {}).get("task")
    return nested if isinstance(nested, dict) and nested.get("task_key") == attempt.task_key else None


def new_task_runs(run, tasks, now, repair=None):
    """BLOCKED attempt rows for top-level tasks (dicts of the job's settings)."""
    return TaskRun.objects.bulk_create([
        TaskRun(run=run, repair=repair, task_key=task["task_key"], task_type=task_type_of(task) or "",
                created_at=now)
        for task in tasks
    ])


def lock_run(run_id):
    """Serialize changes to one run: the UPDATE holds the row lock until commit on Postgres."""
    Run.objects.filter(id=run_id).update(version=F("version") + 1)
    run = Run.objects.select_related("job").get(id=run_id)
    run.job_version = job_version(run.job_version_id)
    return run


_versions = {}


def job_version(version_id):
    """Versions never change, so each process reads (and parses) a version's settings once:
    every finish locks its run, and a wide job's settings are most of what that reads."""
    version = _versions.get(version_id)
    if version is None:
        if len(_versions) >= 256:
            _versions.clear()
        version = _versions[version_id] = JobVersion.objects.get(id=version_id)
    return version


HEAVY_COLUMNS = ("resolved_values", "task_values", "sql_output", "error", "error_trace", "iteration_input",
                 "notebook_result", "state_message")


def current_attempts(run):
    """The latest attempt of every top-level task (for-each iterations are not tasks of the run)."""
    # The big columns stay in the database: every finished task reads all of its run's attempts.
    attempts = run.task_runs.filter(is_current=True, for_each_key="").defer(*HEAVY_COLUMNS)
    return {attempt.task_key: attempt for attempt in attempts}


def status_of(attempt):
    return TaskStatus(
        task_key=attempt.task_key,
        life_cycle_state=L(attempt.life_cycle_state),
        result_state=R(attempt.result_state) if attempt.result_state else None,
        attempt_number=attempt.attempt_number,
        start_time_ms=to_ms(attempt.started_at),
        outcome=attempt.outcome,
    )


def enqueue_attempts(attempt_ids):
    """Hand attempts to the django-q2 broker (after commit: a worker must find the row)."""
    if not attempt_ids:
        return
    from django_q.tasks import async_task

    for attempt_id in attempt_ids:
        async_task("runs.worker.execute_attempt", attempt_id, task_name=f"attempt-{attempt_id}")


def enqueue_on_commit(attempt_ids):
    ids = list(attempt_ids)
    if ids:
        # robust: with the broker down the attempts stay PENDING, and the clock hands them over
        # again; the error must not reach a caller whose transaction has already committed.
        transaction.on_commit(lambda: enqueue_attempts(ids), robust=True)


def advance_run(run_id, now=None):
    """Apply whatever the planner says follows from the run's current rows."""
    with transaction.atomic():
        run = lock_run(run_id)
        if run.life_cycle_state in ACTIVE_RUN_STATES:
            advance_locked(run, now or timezone.now())


STATUS_COLUMNS = ("id", "task_key", "task_type", "life_cycle_state", "result_state", "attempt_number",
                  "started_at", "outcome")
StatusRow = namedtuple("StatusRow", STATUS_COLUMNS)


def current_status_rows(run):
    """What the planner reads of every top-level task's latest attempt, as plain tuples: every
    finish reads its whole run under the run lock (on SQLite, the one write lock), and
    model instances cost several times as much as the query."""
    rows = run.task_runs.filter(is_current=True, for_each_key="").values_list(*STATUS_COLUMNS)
    return {row[1]: StatusRow(*row) for row in rows}


def attempts_by_id(ids):
    return TaskRun.objects.defer(*HEAVY_COLUMNS).in_bulk(ids) if ids else {}


def advance_locked(run, now, handoff=None):
    """The planner step; the caller holds the run lock inside a transaction."""
    graph = graph_for_run(run)
    rows = current_status_rows(run)
    looping = [row.id for row in rows.values()
               if row.task_type == "for_each_task" and row.life_cycle_state in (L.RUNNING, L.TERMINATING)]
    if looping:
        from runs.control_flow import advance_for_each

        if any([advance_for_each(run, wrapper, now) for wrapper in attempts_by_id(looping).values()]):
            rows = current_status_rows(run)
    statuses = {key: status_of(row) for key, row in rows.items()}
    actions = next_actions(graph, statuses, now_ms=to_ms(now), cancel_reason=run.cancel_reason)
    acting = attempts_by_id([rows[a.task_key].id for a in actions if not isinstance(a, FinishRun)])
    attempts = {attempt.task_key: attempt for attempt in acting.values()}
    to_start = [attempts[a.task_key] for a in actions if isinstance(a, StartTask)]
    start_attempts(run, to_start, now, handoff)
    for action in actions:
        if isinstance(action, SkipTask):
            skip_attempt(run, attempts[action.task_key], action, now)
        elif isinstance(action, RetryTask):
            schedule_retry(run, attempts[action.task_key], action, now)
        elif isinstance(action, FinishRun):
            finish_run(run, action, now)


def start_attempts(run, attempts, now, handoff=None):
    ids = [a.id for a in attempts]
    if not ids:
        return
    # BLOCKED rows only change under the run lock we hold, so one UPDATE is safe.
    TaskRun.objects.filter(id__in=ids, life_cycle_state=L.BLOCKED).update(
        life_cycle_state=L.PENDING, queued_at=now
    )
    record_many(run, [(a, "task.pending", {"task_key": a.task_key}) for a in attempts], now)
    taken = handoff.take(run, attempts) if handoff is not None else None
    enqueue_on_commit(i for i in ids if i != taken)


def claim(run, attempt, now, host):
    """PENDING -> RUNNING on this host; a compare-and-swap, so exactly one claimer wins."""
    claimed = TaskRun.objects.filter(id=attempt.id, life_cycle_state=L.PENDING).update(
        life_cycle_state=L.RUNNING, started_at=now, heartbeat_at=now, worker_host=host
    )
    if claimed:
        attempt.life_cycle_state, attempt.started_at, attempt.heartbeat_at, attempt.worker_host = L.RUNNING, now, now, host
        record(run, "task.running", attempt, now, task_key=attempt.task_key, attempt_number=attempt.attempt_number)
    return bool(claimed)


class Handoff:
    """Lets the worker that finishes an attempt run the next one itself, claimed in the finish's
    transaction instead of through the broker: one of the attempts the finish makes ready, else
    the run's oldest attempt still waiting for a worker. A chain then skips the broker's round
    trip (poll, pick-up, claim) per hop, and a wide run's workers go from task to task with one
    write each. The broker's message for a taken attempt finds it claimed and does nothing.

    Only until ``deadline`` (``time.monotonic``): a worker that follows a long run still goes
    back to the broker now and then (other runs' attempts wait there), and a graceful stop of its
    node waits for one task, not the whole run. Control-flow attempts always use the broker.
    """

    def __init__(self, host, deadline):
        self.host, self.deadline = host, deadline
        self.attempt_id = self.claimed_at = None

    def open(self):
        return self.attempt_id is None and time.monotonic() < self.deadline

    def take(self, run, attempts):
        """Claim one of ``attempts`` (just made PENDING); its id, or None."""
        for attempt in attempts if self.open() else ():
            if attempt.task_type not in CONTROL_FLOW_TYPES and self.claim(run, attempt):
                return attempt.id
        return None

    def take_waiting(self, run):
        """Claim the run's oldest PENDING attempt, if nothing was taken yet."""
        if not self.open():
            return
        waiting = run.task_runs.filter(life_cycle_state=L.PENDING).order_by("id").only(
            "id", "run", "task_key", "task_type", "attempt_number")[:8]
        for attempt in waiting:
            if attempt.task_type not in CONTROL_FLOW_TYPES and self.claim(run, attempt):
                return

    def claim(self, run, attempt):
        # Now, not the finish's now: its heartbeat must not start out as old as the lock wait.
        now = timezone.now()
        if claim(run, attempt, now, self.host):
            self.attempt_id, self.claimed_at = attempt.id, now
            return True
        return False

    def pop(self):
        """The claimed attempt's id (once), or None; ``claimed_at`` is its started_at."""
        taken, self.attempt_id = self.attempt_id, None
        return taken


def skip_attempt(run, attempt, action, now):
    # A retry still waiting when the run is canceled is skipped too, not only blocked tasks.
    updated = TaskRun.objects.filter(id=attempt.id, life_cycle_state__in=[L.BLOCKED, L.WAITING_FOR_RETRY]).update(
        life_cycle_state=L.TERMINATED,
        result_state=action.result_state,
        state_message=action.message,
        termination_code=_code_for_skip(action.result_state),
        termination_type=TerminationType.SUCCESS
        if action.result_state in (R.EXCLUDED, R.DISABLED)
        else TerminationType.CLIENT_ERROR,
        ended_at=now,
    )
    if updated:
        record(run, "task.skipped", attempt, now, task_key=attempt.task_key, result_state=action.result_state,
               message=action.message)


def _code_for_skip(result_state):
    if result_state == R.DISABLED:
        return TerminationCode.DISABLED
    if result_state == R.UPSTREAM_CANCELED:
        return TerminationCode.CANCELED
    return TerminationCode.SKIPPED


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
        retry_at=not_before,
    )
    record(run, "task.retry_scheduled", retry, now, task_key=retry.task_key,
           attempt_number=retry.attempt_number, retry_at=to_ms(not_before))
    if due:
        record(run, "task.pending", retry, now, task_key=retry.task_key)
        enqueue_on_commit([retry.id])


def finish_run(run, action, now):
    updated = Run.objects.filter(id=run.id, life_cycle_state__in=ACTIVE_RUN_STATES).update(
        life_cycle_state=L.TERMINATED,
        result_state=action.result_state,
        termination_code=action.termination_code,
        termination_type=action.termination_type,
        state_message=action.message,
        ended_at=now,
    )
    if not updated:
        return
    Repair.objects.filter(run=run, ended_at__isnull=True).update(
        ended_at=now,
        life_cycle_state=L.TERMINATED,
        result_state=action.result_state,
        termination_code=action.termination_code,
        termination_type=action.termination_type,
        state_message=action.message,
    )
    record(run, "run.finished", None, now, result_state=action.result_state, message=action.message)
    run_ended(run, action.result_state, now)
    from runs.admission import admit_queued_runs

    admit_queued_runs(run.job_id, now)


def run_ended(run, result_state, now):
    """What follows from any run ending: its run_job_task parent, its continuous job's next run."""
    settle_parent_on_commit(run)
    if run.trigger in (Run.Trigger.CONTINUOUS, Run.Trigger.CONTINUOUS_RESTART):
        from runs.triggers import continuous_run_ended

        continuous_run_ended(run, result_state, now)


def settle_parent_on_commit(run):
    """A run started by a run_job_task ended: its parent task follows, once this commits.

    After commit, not inside: the parent run is locked by its own transaction, and locking it
    here (child first) while a cancel locks parent then child could deadlock on Postgres. If
    the process dies in between, the clock's settle step finds the parent task anyway.
    """
    if run.parent_task_run_id:
        from runs.control_flow import settle_run_job_task

        parent_id = run.parent_task_run_id
        transaction.on_commit(lambda: settle_run_job_task(parent_id))


def finish_attempt(attempt_id, *, result_state, now=None, life_cycle_state=L.TERMINATED,
                   termination_code=None, termination_type=None, message="", handoff=None, **fields):
    """Record how an attempt ended and advance its run, in one transaction.

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
        updated = TaskRun.objects.filter(
            id=attempt_id, life_cycle_state__in=[L.PENDING, L.RUNNING, L.TERMINATING]
        ).update(
            life_cycle_state=life_cycle_state,
            result_state=result_state,
            termination_code=termination_code or default_code(result_state),
            termination_type=termination_type or default_type(result_state),
            state_message=message,
            ended_at=now,
            **fields,
        )
        if not updated:
            return False
        attempt = TaskRun.objects.get(id=attempt_id)
        record(run, "task.finished", attempt, now, task_key=attempt.task_key, result_state=result_state,
               life_cycle_state=life_cycle_state, message=message)
        if run.life_cycle_state in ACTIVE_RUN_STATES:
            advance_locked(run, now, handoff)
            if handoff is not None:
                handoff.take_waiting(run)
        return True


def default_code(result_state):
    return {
        R.SUCCESS: TerminationCode.SUCCESS,
        R.FAILED: TerminationCode.RUN_EXECUTION_ERROR,
        R.TIMEDOUT: TerminationCode.CANCELED,
        R.CANCELED: TerminationCode.USER_CANCELED,
    }.get(result_state, TerminationCode.RUN_EXECUTION_ERROR)


def default_type(result_state):
    if result_state in (R.SUCCESS, R.CANCELED):
        return TerminationType.SUCCESS
    return TerminationType.CLIENT_ERROR


def cancel_attempt(run, attempt, now, message="Canceled by user"):
    """Stop one attempt: not started yet -> CANCELED now; running -> TERMINATING for its worker."""
    waiting = (L.PENDING, L.WAITING_FOR_RETRY, L.BLOCKED)
    if attempt.life_cycle_state in waiting:
        updated = TaskRun.objects.filter(id=attempt.id, life_cycle_state=attempt.life_cycle_state).update(
            life_cycle_state=L.TERMINATED,
            result_state=R.CANCELED,
            termination_code=TerminationCode.USER_CANCELED,
            termination_type=TerminationType.SUCCESS,
            state_message=message,
            ended_at=now,
        )
        if updated:
            record(run, "task.finished", attempt, now, task_key=attempt.task_key, result_state=R.CANCELED,
                   message=message)
            return True
        attempt.refresh_from_db()
    if attempt.life_cycle_state == L.RUNNING:
        updated = TaskRun.objects.filter(id=attempt.id, life_cycle_state=L.RUNNING).update(
            life_cycle_state=L.TERMINATING, state_message=message
        )
        if updated:
            record(run, "task.terminating", attempt, now, task_key=attempt.task_key, message=message)
            if attempt.task_type == "run_job_task":
                from runs.control_flow import cancel_child_runs_on_commit

                cancel_child_runs_on_commit(attempt.id)
            # A for-each task's iterations are stopped by advance_for_each, which sees it TERMINATING.
            return True
    return False


def cancel_run(run_id, *, reason="USER", now=None, message=None):
    """Cancel a run: its active attempts stop, the planner decides the rest (ALL_DONE still runs)."""
    now = now or timezone.now()
    message = message or ("Run canceled by user" if reason == "USER" else "Run timed out")
    with transaction.atomic():
        run = lock_run(run_id)
        if run.life_cycle_state in FINISHED_LIFE_CYCLES:
            return False
        if run.life_cycle_state == L.QUEUED:
            Run.objects.filter(id=run.id, life_cycle_state=L.QUEUED).update(
                life_cycle_state=L.TERMINATED,
                result_state=R.CANCELED if reason == "USER" else R.TIMEDOUT,
                termination_code=TerminationCode.USER_CANCELED if reason == "USER" else TerminationCode.CANCELED,
                termination_type=TerminationType.SUCCESS,
                state_message=message,
                ended_at=now,
                cancel_reason=reason,
            )
            record(run, "run.finished", None, now, result_state=R.CANCELED, message=message)
            run_ended(run, R.CANCELED, now)
            return True
        Run.objects.filter(id=run.id).update(cancel_reason=reason, life_cycle_state=L.TERMINATING)
        run.cancel_reason, run.life_cycle_state = reason, L.TERMINATING
        record(run, "run.cancel_requested", None, now, reason=reason)
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
        if run.life_cycle_state in ACTIVE_RUN_STATES:
            advance_locked(run, now)
        return changed


def abort_run(run_id, message, now=None):
    """End a run the engine could not advance (a bug, or settings stored before they were
    bounded): its unfinished attempts and the run end INTERNAL_ERROR with ``message``, so the one
    broken run says why and every other run goes on. Only plain writes: this is the way out when
    the planner itself fails. A running attempt's worker sees the change at its next check and
    kills the task's process tree; the clock's admission sweep gives the freed slot to the job's next
    queued run. Returns whether the run was still unfinished."""
    now = now or timezone.now()
    ended = dict(result_state=R.FAILED, termination_code=TerminationCode.INTERNAL_ERROR,
                 termination_type=TerminationType.INTERNAL_ERROR, state_message=message, ended_at=now)
    with transaction.atomic():
        run = lock_run(run_id)
        if run.life_cycle_state in FINISHED_LIFE_CYCLES:
            return False
        TaskRun.objects.filter(run_id=run_id).exclude(life_cycle_state__in=FINISHED_LIFE_CYCLES).update(
            life_cycle_state=L.INTERNAL_ERROR, **ended)
        Run.objects.filter(id=run_id).update(life_cycle_state=L.INTERNAL_ERROR, **ended)
        Repair.objects.filter(run_id=run_id, ended_at__isnull=True).update(life_cycle_state=L.INTERNAL_ERROR, **ended)
        record(run, "run.finished", None, now, result_state=R.FAILED, life_cycle_state=L.INTERNAL_ERROR,
               message=message)
        try:  # what follows for other runs must not keep this one from ending
            with transaction.atomic():
                run_ended(run, R.FAILED, now)
        except Exception:
            log.exception("what follows the end of run %s failed; the clock's sweeps take it up", run_id)
    log.error("run %s ended INTERNAL_ERROR: %s", run_id, message)
    return True


def lost_after():
    from django.conf import settings

    return timedelta(seconds=settings.LAKEFLOW_LOST_AFTER_SECONDS)
