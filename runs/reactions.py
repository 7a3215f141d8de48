"""Consequences of run events, as reactions to their RunEvent rows (healthchecks' Flip, ours).

A state change writes its event in its transaction (runs/events.py); what follows from it for
other runs and the outside world is a reaction registered here for that event type: the job's
next queued run, a continuous job's next run, the parent task of a run_job_task run, child runs
of a canceled task; later notifications, job-completion triggers, lineage export and audit.

- Durable reactions run after the event's transaction commits. Each has a Reaction row per
  event (unique): an event's reactions run in one transaction that first locks their rows and
  commits their effects with their marks (one registered ``alone``, that locks other rows, in a
  transaction of its own), so each happens exactly once even when two processes try (the second
  waits for the locks, then finds the marks). A reaction registered with ``atomic=False`` takes its
  own transactions (to lock runs in a safe order) and is marked after it returns: at least once,
  so it must be idempotent. An event whose reactions are not all done keeps reactions_pending,
  and the clock's sweep (sweep_reactions) runs what a crash between commit and reaction left
  undone: nothing is lost. The committing process runs them, except the clock, which hands
  them to the workers through the broker (reacting_in_workers).
- Live reactions (nudging open run pages) run on commit and are best effort: a page that misses
  a nudge finds the event when it next looks.

The state machine imports none of its reactions: reactions register themselves (the modules
that define them are imported when the runs app is ready, runs/apps.py).
"""

import logging
import os
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from runs.isolation import each_isolated
from runs.models import Reaction, RunEvent

log = logging.getLogger(__name__)

MAX_TRIES = 5
"""A reaction that raised this many times is given up; its last error stays on its Reaction row."""
SWEEP_AFTER_SECONDS = 2.0
"""The sweep leaves younger events to the on-commit path that is about to run their reactions."""
FAULT_BEFORE_REACTIONS = "LAKEFLOW_FAULT_BEFORE_REACTIONS"
"""Tests only: a process that has this set SIGKILLs its whole process group (a cluster node) right
after a commit with pending reactions, the crash tests/e2e/test_reactions_after_a_crash.py makes."""


@dataclass(frozen=True)
class Registered:
    name: str
    react: object  # react(event) -> None
    when: object = None  # when(event) -> bool: the events it reacts to (None: all of the type)
    atomic: bool = True  # effects and mark in one transaction: exactly once
    alone: bool = False  # atomic in a transaction of its own, not the event's shared one

    def wants(self, event):
        return self.when is None or bool(self.when(event))


_durable: dict[str, list[Registered]] = {}
_live: list = []


def reacts_to(*event_types, name=None, when=None, atomic=True, alone=False):
    """Register the decorated function as a durable reaction to these event types (those `when`
    accepts: an event no reaction wants is not marked pending at all). `when(event)` sees the
    event as it is being written (its run, task_run, type and data; no id yet), so it must not
    need more than those and, being on every state change's path, should answer from memory.
    ``alone``: a reaction that takes locks of other rows (a job's admission, a backfill's) gets a
    transaction of its own, so that no other reaction's lock is held while it waits for them (in
    one shared transaction, two orders of the same locks would deadlock)."""
    def register(react):
        entry = Registered(name or f"{react.__module__}.{react.__qualname__}", react, when, atomic, alone)
        for event_type in event_types:
            if all(r.name != entry.name for r in _durable.setdefault(event_type, [])):
                _durable[event_type].append(entry)
        return react

    return register


def on_every_event(react):
    """Register a live, best-effort reaction: react(run_ids) once per transaction, with the ids
    of the runs whose events it wrote."""
    _live.append(react)
    return react


def has_durable_reactions(event):
    return any(registered.wants(event) for registered in _durable.get(event.type, ()))


def after_commit(events):
    """Called by runs.events as events are written: their reactions run once the transaction
    commits (a rolled-back transaction takes its events and their reactions with it)."""
    connection = transaction.get_connection()
    pending = [event.id for event in events if event.reactions_pending]
    run_ids = {event.run_id for event in events}
    if connection.in_atomic_block:
        for _, callback, _ in connection.run_on_commit:  # one callback per transaction
            if isinstance(callback, _AfterCommit):
                callback.event_ids += pending
                callback.run_ids |= run_ids
                return
    transaction.on_commit(_AfterCommit(pending, run_ids), robust=True)


class _AfterCommit:
    def __init__(self, event_ids, run_ids):
        self.event_ids, self.run_ids = list(event_ids), set(run_ids)

    def __call__(self):
        if self.event_ids and os.environ.get(FAULT_BEFORE_REACTIONS):
            os.killpg(os.getpgrp(), signal.SIGKILL)  # the fault a test injects: reactions left to the sweep
        for react in _live:
            try:
                react(sorted(self.run_ids))
            except Exception:  # a live page is a nicety
                log.exception("live reaction %s failed", react.__name__)
        if _in_workers["on"] and len(self.event_ids) > REACTIONS_PER_MESSAGE:
            send_reactions(self.event_ids)
        else:
            run_reactions_of(self.event_ids)


# Reactions handed to the workers travel in messages of this many events.
REACTIONS_PER_MESSAGE = 20
_in_workers = {"on": False}


@contextmanager
def reacting_in_workers():
    """Inside this block, this process hands the reactions to its commits' events to the workers
    (through the broker) instead of running them itself, when a commit brings more than
    REACTIONS_PER_MESSAGE: the clock, whose time belongs to the schedules (a storm of 200 runs that
    end in its step brings 200 run.finished events, seconds of reactions). A few (a run it timed
    out, a retry it promoted) it still runs at once: the workers may all be busy with long tasks."""
    _in_workers["on"] = True
    try:
        yield
    finally:
        _in_workers["on"] = False


def send_reactions(event_ids):
    from django_q.tasks import async_task

    for start in range(0, len(event_ids), REACTIONS_PER_MESSAGE):
        chunk = event_ids[start:start + REACTIONS_PER_MESSAGE]
        try:
            async_task("runs.reactions.run_reactions_of", chunk, task_name=f"reactions-{chunk[0]}")
        except Exception:  # the broker is down: the sweep runs them
            log.exception("could not hand the reactions to events %s to the workers", event_ids[start:])
            return
        until = time.monotonic() + HANDED_OFF_SECONDS
        _handed_off.update((event_id, until) for event_id in chunk)


# The sweep in this process leaves the events it handed to the workers to them this long (they
# may all be busy with tasks for a while); then it runs whatever is still pending itself.
HANDED_OFF_SECONDS = 30.0
_handed_off: dict[int, float] = {}


def still_handed_off():
    """The ids of events this process handed to the workers less than HANDED_OFF_SECONDS ago."""
    now = time.monotonic()
    for event_id in [event_id for event_id, until in _handed_off.items() if until <= now]:
        del _handed_off[event_id]
    return set(_handed_off)


def run_reactions_of(event_ids):
    for event_id in event_ids:
        try:
            run_reactions(event_id)
        except Exception:  # the sweep tries again
            log.exception("reactions to event %s failed", event_id)


def run_reactions(event_id):
    """Run the reactions of one event that are not done yet; True once all are (or given up).

    The atomic ones run together in one transaction: their Reaction rows inserted and locked at
    once (whoever holds the locks reacts; another process waits, then finds the marks), each
    reaction in a savepoint (one that raises undoes only its own effects and counts a try), and
    the marks and, when nothing is left, the event's reactions_pending committed with the
    effects. Those registered alone or with atomic=False run after that commit: alone, each in a
    transaction of its own with its mark (exactly once); not atomic, each marked after it
    returns (at least once)."""
    event = RunEvent.objects.filter(id=event_id).select_related("run").first()  # when() reads event.run
    if event is None or not event.reactions_pending:
        return True
    wanted = [registered for registered in _durable.get(event.type, []) if registered.wants(event)]
    atomic = [registered for registered in wanted if registered.atomic and not registered.alone]
    rest = [registered for registered in wanted if not registered.atomic or registered.alone]
    finished, done = True, []
    with transaction.atomic():
        marks = _marks(event, wanted)
        for registered in atomic:
            mark = marks[registered.name]
            if mark.done_at is None and mark.tries < MAX_TRIES:
                if _react_atomically(event, registered, mark):
                    done.append(mark.id)
                else:
                    finished &= _count_a_try(mark)
        Reaction.objects.filter(id__in=done).update(done_at=timezone.now(), error="")
        if finished and not rest:
            RunEvent.objects.filter(id=event.id).update(reactions_pending=None)
            return True
    for registered in rest:
        finished &= _run_once(event, registered, marks[registered.name])
    if finished:
        RunEvent.objects.filter(id=event.id).update(reactions_pending=None)
    return finished


def _marks(event, wanted):
    """The Reaction rows of `wanted` for `event`, made if missing and locked (in the caller's
    transaction): {name: row}."""
    names = [registered.name for registered in wanted]
    if not names:
        return {}
    Reaction.objects.bulk_create([Reaction(event=event, name=name) for name in names], ignore_conflicts=True)
    return {mark.name: mark for mark in Reaction.objects.select_for_update().filter(event=event, name__in=names)
            .order_by("id")}


def _react_atomically(event, registered, mark):
    """One atomic reaction in a savepoint of the caller's transaction: True if it is done; one
    that raised left nothing behind (its mark says why: _count_a_try)."""
    try:
        with transaction.atomic():
            registered.react(event)
        return True
    except Exception as exc:
        _note_failure(event, registered, mark, exc)
        return False


def _run_once(event, registered, mark):
    """One reaction outside the event's shared transaction, True if it is done (or given up):
    alone, in a transaction of its own that locks its mark and commits it with the effects;
    not atomic, marked after it returned (at least once)."""
    if mark.done_at is not None or mark.tries >= MAX_TRIES:
        return True
    try:
        if registered.atomic:
            with transaction.atomic():
                # Whoever holds the lock reacts; the other waits, then finds the mark.
                mark = Reaction.objects.select_for_update().get(id=mark.id)
                if mark.done_at is None and mark.tries < MAX_TRIES:
                    registered.react(event)
                    Reaction.objects.filter(id=mark.id).update(done_at=timezone.now(), error="")
        else:
            registered.react(event)
            Reaction.objects.filter(id=mark.id).update(done_at=timezone.now(), error="")
        return True
    except Exception as exc:
        _note_failure(event, registered, mark, exc)
        return _count_a_try(mark)


def _note_failure(event, registered, mark, exc):
    log.exception("reaction %s to event %s failed", registered.name, event.id)
    mark.error = f"{type(exc).__name__}: {exc}"[:2000]


def _count_a_try(mark):
    """A failed try of a reaction, with its error (mark.error); True if that was its last."""
    Reaction.objects.filter(id=mark.id).update(tries=F("tries") + 1, error=mark.error)
    return Reaction.objects.get(id=mark.id).tries >= MAX_TRIES


def sweep_reactions(now):
    """Clock step: the reactions a crash (or a failure) left undone. Returns how many events it finished."""
    cutoff = now - timedelta(seconds=SWEEP_AFTER_SECONDS)
    pending = RunEvent.objects.filter(reactions_pending=True, at__lt=cutoff).order_by("id").values_list("id", flat=True)
    handed_off = still_handed_off()
    pending = [event_id for event_id in pending[:500 + len(handed_off)] if event_id not in handed_off][:500]
    # One event that cannot even be looked at must not hold up those behind it.
    return each_isolated(pending, run_reactions, lambda event_id, why: None)
