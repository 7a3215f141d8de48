"""The cluster's clock: time-driven work, one loop at a time across all nodes.

django-q2's own scheduler looks at its schedules every 30 s, too coarse for retry intervals
and timeouts, and a clock that ran as a queued task would wait behind long task attempts. So
every `qcluster` node starts one small clock process beside its workers (see
runs/management/commands/qcluster.py); a lease row taken by compare-and-swap makes exactly one
of them the active clock, the others stand by and take over within LEASE_SECONDS.

Each step function returns how much work it found, like healthchecks' sendalerts.
"""

import logging
import os
import socket
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone

from runs import broker
from runs.admission import admit_queued_runs
from runs.control_flow import settle_waiting_tasks
from runs.dispatch import cancel_run, end_broken_run, finish_attempt
from runs.engine import endings
from runs.engine.states import CancelReason, RunLifeCycleState as L
from runs.events import record
from runs.isolation import each_isolated
from runs.loading import WAITING_TYPES, lock_run
from runs.models import ClockLease, Run, RunEvent, TaskRun, TriggerState
from runs.reactions import sweep_reactions
from runs.triggers import run_due_triggers

log = logging.getLogger(__name__)

LEASE_NAME = "clock"
LEASE_SECONDS = 15
LOOP_SECONDS = 10
STEP_SECONDS = 0.2
# A PENDING attempt not claimed for this long has probably lost its broker message (a node
# killed with messages in its memory, a Redis restart), or was held back (lazy dispatch) and the
# workers that would have taken it died with their node: hand it over again.
REQUEUE_AFTER = timedelta(seconds=60)


def promote_due_retries(now):
    due = TaskRun.objects.filter(life_cycle_state=L.WAITING_FOR_RETRY, retry_at__lte=now).values_list("id", "run_id")

    def promote(item):
        attempt_id, run_id = item
        with transaction.atomic():
            run = lock_run(run_id)
            if not TaskRun.objects.filter(id=attempt_id, life_cycle_state=L.WAITING_FOR_RETRY).update(
                    life_cycle_state=L.PENDING, queued_at=now, dispatched_at=now):
                return 0
            attempt = TaskRun.objects.get(id=attempt_id)
            record(run, "task.pending", attempt, now, task_key=attempt.task_key,
                   reason=f"retry {attempt.attempt_number} is due")
            broker.enqueue_on_commit([attempt_id])
            return 1

    return each_isolated(list(due), promote, lambda item, why: end_broken_run(
        item[1], f"The retry of task run {item[0]} could not start: {why}", now))


def reap_lost_attempts(now):
    """Fail (and so retry, per policy) attempts whose worker stopped sending heartbeats."""
    cutoff = now - timedelta(seconds=settings.LAKEFLOW_LOST_AFTER_SECONDS)
    # For-each and run-job attempts have no process to beat for them; their iterations or child run do.
    lost = TaskRun.objects.filter(life_cycle_state__in=[L.RUNNING, L.TERMINATING], heartbeat_at__lt=cutoff).exclude(
        task_type__in=WAITING_TYPES)

    def reap(attempt):
        kill_if_local(attempt)
        message = f"The worker running this task stopped responding (no heartbeat since {attempt.heartbeat_at:%H:%M:%S} UTC)"
        ending = endings.lost_with_its_worker(message, canceling=attempt.life_cycle_state == L.TERMINATING)
        return finish_attempt(attempt.id, ending, now=now)

    return each_isolated(list(lost), reap, lambda attempt, why: end_broken_run(
        attempt.run_id, f"Task run {attempt.id} was lost with its worker, and its run could not go on: {why}", now))


def kill_if_local(attempt):
    """The task process of a dead worker on this machine dies with it (PDEATHSIG); make sure. Its
    pid was seen alive at its last heartbeat at the latest: a process of that number started since
    is a stranger (pids are reused), left alone."""
    if attempt.worker_host == socket.gethostname() and attempt.process_id and attempt.heartbeat_at:
        from runs.executors.supervisor import kill_process_tree, started_by

        if not started_by(attempt.process_id, attempt.heartbeat_at.timestamp()):
            return
        try:
            kill_process_tree(attempt.process_id, grace_seconds=1.0)
        except (ProcessLookupError, PermissionError):
            pass


def requeue_stale_pending(now):
    """Hand over again the PENDING attempts whose broker message is REQUEUE_AFTER old, and the held
    ones (lazy dispatch) waiting that long in a run where no worker is coming for them: nothing of
    the run runs in a worker (for-each and run-job attempts only wait) and nothing is sent."""
    cutoff = now - REQUEUE_AFTER
    coming = TaskRun.objects.filter(run_id=OuterRef("run_id")).filter(
        Q(life_cycle_state__in=[L.RUNNING, L.TERMINATING]) & ~Q(task_type__in=WAITING_TYPES)
        | Q(life_cycle_state=L.PENDING, dispatched_at__isnull=False))
    stale = list(TaskRun.objects.filter(life_cycle_state=L.PENDING).filter(
        Q(dispatched_at__lt=cutoff) | Q(dispatched_at__isnull=True, queued_at__lt=cutoff) & ~Exists(coming))
        .values_list("id", flat=True))
    if stale:
        # Duplicates are harmless: the first worker's claim wins, the rest are no-ops.
        TaskRun.objects.filter(id__in=stale, life_cycle_state=L.PENDING).update(dispatched_at=now)
        broker.enqueue_attempts(stale)
    return len(stale)


_broker_seen = {"run_id": None}


def broker_run_id():
    """The Redis server's run id, new on every restart; None with the ORM broker (it loses nothing)."""
    if not settings.REDIS_URL:
        return None
    from django_q.brokers import get_broker

    if "broker" not in _broker_seen:  # one connection pool for the life of the clock
        _broker_seen["broker"] = get_broker()
    return _broker_seen["broker"].connection.info("server")["run_id"]


def requeue_after_broker_restart(now):
    """A restarted Redis comes back with an empty queue: hand every PENDING attempt over again
    now, rather than each one REQUEUE_AFTER after it was queued."""
    run_id = broker_run_id()
    pending = []
    if _broker_seen["run_id"] not in (None, run_id):
        pending = list(TaskRun.objects.filter(life_cycle_state=L.PENDING).values_list("id", flat=True))
        TaskRun.objects.filter(id__in=pending, life_cycle_state=L.PENDING).update(dispatched_at=now)
        log.warning("the broker restarted: handing %d pending attempts over again", len(pending))
        broker.enqueue_attempts(pending)  # the ones it did not lose run once: the first claim wins
    _broker_seen["run_id"] = run_id  # only now: if the hand-over failed, the next pass tries again
    return len(pending)


def enforce_run_timeouts(now):
    expired = Run.objects.filter(life_cycle_state=L.RUNNING, timeout_at__lte=now, cancel_reason__isnull=True)
    return each_isolated(list(expired.values_list("id", flat=True)),
                         lambda run_id: cancel_run(run_id, reason=CancelReason.TIMEOUT, now=now),
                         lambda run_id, why: end_broken_run(run_id, f"The run timed out and could not be stopped: {why}", now))


def admit_waiting_runs(now):
    """Safety net for queued runs (their slot normally frees them at once)."""
    job_ids = set(Run.objects.filter(life_cycle_state=L.QUEUED).values_list("job_id", flat=True).distinct())

    def oldest_queued_ends(job_id, why):  # admission isolates each run; this is the job itself failing
        oldest = Run.objects.filter(job_id=job_id, life_cycle_state=L.QUEUED).order_by("id").first()
        if oldest is not None:
            end_broken_run(oldest.id, f"The job's queued runs could not be admitted: {why}", now)

    return each_isolated(sorted(job_ids), lambda job_id: len(admit_queued_runs(job_id, now)), oldest_queued_ends)


FAST_STEPS = (run_due_triggers, promote_due_retries, enforce_run_timeouts)
SLOW_STEPS = (reap_lost_attempts, requeue_after_broker_restart, requeue_stale_pending, admit_waiting_runs,
              settle_waiting_tasks, sweep_reactions)
# The slow steps (sweeps, safety nets) run every SLOW_EVERY seconds while a run is in flight, a
# reaction is pending or the last sweep found work; otherwise IDLE_SWEEP_FACTOR times less often:
# an idle server's sweeps find nothing, and the first run to start makes them frequent again
# (the clock sees it at its next wake, at most LAKEFLOW_CLOCK_IDLE_SECONDS later).
SLOW_EVERY = 2.0
IDLE_SWEEP_FACTOR = 7
# The leader renews its lease this often (a 10 s margin within LEASE_SECONDS); a standby tries
# to take it every SLOW_EVERY, so a dead leader's successor starts within LEASE_SECONDS + SLOW_EVERY.
LEASE_RENEW_EVERY = 5.0
ACTIVE_RUN_STATES = (L.QUEUED, L.PENDING, L.RUNNING, L.TERMINATING)
_registered_steps = []


def clock_step(step):
    """Register step(now) -> work found as a slow step of the clock (another app's periodic
    work: the runs app imports none of it)."""
    if step not in _registered_steps:
        _registered_steps.append(step)
    return step


_node_services = []


def on_every_node(start):
    """Register start(should_stop) to be called once in every node's clock process, leader or
    standby (another app's long-running work, such as sending notifications)."""
    if start not in _node_services:
        _node_services.append(start)
    return start


def start_node_services(should_stop):
    """Start them; the threads they return, for the caller to join when it stops."""
    return [thread for start in _node_services for thread in [start(should_stop)] if thread is not None]


def run_clock_steps(now=None, slow=True):
    """One pass of every step; returns the work found. Tests call this with an injected now."""
    now = now or timezone.now()
    found = 0
    for step in FAST_STEPS + ((*SLOW_STEPS, *_registered_steps) if slow else ()):
        try:
            found += step(now)
        except Exception:  # one failing step must not stop the clock
            log.exception("clock step %s failed", step.__name__)
            # A connection the database dropped stays broken until closed; the next step reconnects.
            close_old_connections()
    return found


def take_lease(holder, now):
    """Take or renew the clock lease by compare-and-swap; True if holder has it now."""
    expires = now + timedelta(seconds=LEASE_SECONDS)
    if ClockLease.objects.filter(name=LEASE_NAME, holder=holder).update(expires_at=expires):
        return True
    if ClockLease.objects.filter(name=LEASE_NAME, expires_at__lt=now).update(holder=holder, expires_at=expires):
        return True
    try:
        with transaction.atomic():
            ClockLease.objects.create(name=LEASE_NAME, holder=holder, expires_at=expires)
        return True
    except IntegrityError:
        return False


def release_lease(holder):
    ClockLease.objects.filter(name=LEASE_NAME, holder=holder).update(expires_at=timezone.now() - timedelta(seconds=1))


def pause_seconds(now, due_times, until_slow, step, cap):
    """How long the clock sleeps after a fast pass that found nothing: until the earliest due
    time (so a schedule slot due at t is acted on at t, not a step later) or the next lease
    renewal or sweep (until_slow), never longer than cap (what was created since the due times
    were read waits at most that) and never shorter than step (something overdue is not polled
    in a busy loop)."""
    waits = [cap, until_slow] + [(due - now).total_seconds() for due in due_times]
    return max(step, min(waits))


def sweep_every(found, busy):
    """Seconds from one sweep to the next: SLOW_EVERY after a sweep that found work or while
    something is in flight (busy), IDLE_SWEEP_FACTOR times that otherwise."""
    return SLOW_EVERY if found or busy else SLOW_EVERY * IDLE_SWEEP_FACTOR


def _earliest(queryset, field):
    return Subquery(queryset.filter(**{f"{field}__isnull": False}).order_by(field).values(field)[:1])


def clock_state():
    """(when the fast steps next have work, whether anything is in flight), in one query: the
    earliest trigger check, retry and run timeout, and whether a run is active or a reaction
    pending (the lease row only carries the subqueries; the leader has it). ([], False) without it."""
    row = ClockLease.objects.filter(name=LEASE_NAME).annotate(
        trigger=_earliest(TriggerState.objects.filter(paused=False), "next_check_at"),
        retry=_earliest(TaskRun.objects.filter(life_cycle_state=L.WAITING_FOR_RETRY), "retry_at"),
        timeout=_earliest(Run.objects.filter(life_cycle_state=L.RUNNING, cancel_reason__isnull=True), "timeout_at"),
        active=Exists(Run.objects.filter(life_cycle_state__in=ACTIVE_RUN_STATES)),
        reacting=Exists(RunEvent.objects.filter(reactions_pending=True)),
    ).values_list("trigger", "retry", "timeout", "active", "reacting").first()
    if row is None:
        return [], False
    *dues, active, reacting = row
    return [due for due in dues if due is not None], bool(active or reacting)


def next_due_times():
    """When the fast steps next have work (see clock_state)."""
    return clock_state()[0]


def database_version():
    """Something that changes whenever another connection commits to the database: SQLite's
    data_version (with the connection it was read on, as it counts per connection); None where
    there is no such cheap look (Postgres), so that clock_state is asked every time."""
    if connection.vendor != "sqlite":
        return None
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA data_version")
        return id(connection.connection), cursor.fetchone()[0]


def run_clock(should_stop, holder=None):
    """Loop until should_stop(): steps while this process holds the lease, standby otherwise.
    Between passes the leader sleeps until the next due time (pause_seconds), at most
    LAKEFLOW_CLOCK_IDLE_SECONDS; an idle wake costs one query (clock_state), or on SQLite only a
    PRAGMA when nobody committed since (database_version). The lease is renewed
    every LEASE_RENEW_EVERY, the sweeps run every SLOW_EVERY while there is work and
    IDLE_SWEEP_FACTOR times less often when there is none (sweep_every)."""
    holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    last_lease = last_sweep = float("-inf")
    next_sweep = 0.0  # seconds after last_sweep
    seen = (None, [], False)  # (database_version, due times, busy) of the last clock_state
    leader = False
    try:
        while not should_stop():
            now = time.monotonic()
            pause = STEP_SECONDS
            try:
                if now - last_lease >= (LEASE_RENEW_EVERY if leader else SLOW_EVERY):
                    last_lease = now
                    leader = False  # unless renewed: after a failed renewal another clock may hold it
                    leader = take_lease(holder, timezone.now())
                    if not leader:
                        last_sweep, next_sweep = float("-inf"), 0.0  # a new leader sweeps at once
                found, due = 0, []
                if leader:
                    # Nobody else committed since the last look: the due times and busy it read still hold.
                    version = database_version()
                    if version is None or version != seen[0]:
                        seen = (version, *clock_state())
                    due, busy = seen[1], seen[2]
                    sweep = now - last_sweep >= (SLOW_EVERY if busy else next_sweep)
                    # The fast steps only when one of them has work or with a sweep: an idle wake costs one query.
                    if sweep or any(t <= timezone.now() for t in due):
                        found = run_clock_steps(slow=sweep)
                        # Our own commits leave data_version as it was: read what the steps wrote.
                        seen = (None, [], False) if found else (database_version(), *clock_state())
                        due = seen[1]
                        if sweep:
                            last_sweep, next_sweep = now, sweep_every(found, busy)
                # The next lease renewal or sweep (for a standby: its next try for the lease).
                wake = (min(last_lease + LEASE_RENEW_EVERY, last_sweep + next_sweep) if leader
                        else last_lease + SLOW_EVERY)
                if not found:  # work found may have made more due at once: look again a step later
                    pause = pause_seconds(timezone.now(), due, wake - time.monotonic(), STEP_SECONDS,
                                          settings.LAKEFLOW_CLOCK_IDLE_SECONDS)
            except Exception:  # a database restart or dropped connection must not end the clock
                log.exception("clock pass failed")
                close_old_connections()
            time.sleep(pause)
    finally:
        if leader:
            release_lease(holder)
