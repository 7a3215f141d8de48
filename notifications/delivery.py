"""Sending notifications: every cluster node runs a sender beside its clock (runs/clock.py
on_every_node), so deliveries go on while any node lives.

A sender claims due Notification rows by compare-and-swap (state and tries unchanged since it
looked, next_try_at moved to the end of its claim), hands them to a small thread pool, and marks
each one SENT, RETRYING (with exponential backoff) or FAILED by compare-and-swap on its own claim,
so a sender that lost its claim cannot overwrite the newer answer. A live sender renews the
claims of what it is still sending (a slow SMTP relay with many recipients may take longer than
one claim), so only a node that died (or stalled longer than a claim) leaves its claims to
expire; another sender then tries again: at least once, with the same ``Lakeflow-Delivery-Id``
header, so a receiver can tell a repeat from a new alert. A stopping node finishes what it is
sending first (lakeflow_clock joins the sender for at most one timeout).

A receiver that hangs holds one thread for at most LAKEFLOW_NOTIFICATION_TIMEOUT_SECONDS, and at
most PER_RECIPIENT_IN_FLIGHT threads at once: it delays neither runs (which never wait for a
notification) nor the deliveries to everyone else.
"""

import logging
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from notifications.models import Notification
from notifications.senders import DeliveryFailed, send

log = logging.getLogger(__name__)

S = Notification.State
POLL_SECONDS = 0.5
# An idle sender sleeps until the earliest next try, but at most this long: notifications are
# queued by workers in other processes, which cannot wake it, so a new one waits up to this
# (the target, run end -> webhook p95 <= 10 s, leaves room; 0.5 s polls cost 2 queries/s idle).
IDLE_WAIT_SECONDS = 2.0
PER_RECIPIENT_IN_FLIGHT = 2
MAX_ANSWER_CHARS = 2000
FAULT_BEFORE_SENDING = "LAKEFLOW_FAULT_BEFORE_SENDING"
"""Tests only: a sender process with this set SIGKILLs its process group (a cluster node) right
after claiming a notification, before sending it (tests/e2e: a node killed mid-delivery)."""


def claim_seconds():
    return 2 * settings.LAKEFLOW_NOTIFICATION_TIMEOUT_SECONDS + 5


def backoff(tries):
    """Seconds before try number tries + 1: doubling from the base, at most ten minutes."""
    return min(settings.LAKEFLOW_NOTIFICATION_BACKOFF_SECONDS * 2 ** max(tries - 1, 0), 600.0)


def claim_due(now, limit, node, in_flight=None, sending=()):
    """Up to ``limit`` due notifications claimed for this sender, as (id, recipient, try number).
    ``in_flight``: recipient -> how many this sender is sending now; given, no recipient gets
    more than PER_RECIPIENT_IN_FLIGHT (counting the ones claimed here). ``sending``: ids this
    sender is still sending, never claimed again by it."""
    claimed = []
    counts = dict(in_flight) if in_flight is not None else None
    busy = [r for r, n in (counts or {}).items() if n >= PER_RECIPIENT_IN_FLIGHT]
    due = (Notification.objects.filter(next_try_at__lte=now).exclude(recipient__in=busy)
           .exclude(id__in=list(sending))
           .order_by("next_try_at", "id").only("id", "state", "tries", "recipient")[:limit * 4])
    for row in due:
        if len(claimed) >= limit:
            break
        if counts is not None and counts.get(row.recipient, 0) >= PER_RECIPIENT_IN_FLIGHT:
            continue
        until = now + timedelta(seconds=claim_seconds())
        # In a transaction, so that on the embedded SQLite it queues for the write lock as the
        # workers do (lakeflow_site/sqlite_backend): a bare UPDATE meets SQLite's busy handler,
        # whose sleeps of up to 100 ms made a burst's p95 9 s instead of 0.7 s
        # (bench/notification_latency.py).
        with transaction.atomic():
            taken = Notification.objects.filter(id=row.id, state=row.state, tries=row.tries, next_try_at__lte=now).update(
                state=S.SENDING, tries=row.tries + 1, next_try_at=until, claimed_by=node)
        if taken:
            claimed.append((row.id, row.recipient, row.tries + 1))
            if counts is not None:
                counts[row.recipient] = counts.get(row.recipient, 0) + 1
    return claimed


def deliver(notification_id, node, now=None, tries=None):
    """One try of one claimed notification (``tries``: the try number claimed); the state it is
    in afterwards. ``now``: when the try ended (tests inject it; by default the clock's time
    after sending)."""
    row = Notification.objects.select_related("destination").get(id=notification_id)
    if row.state != S.SENDING or row.claimed_by != node or (tries is not None and row.tries != tries):
        return row.state
    if os.environ.get(FAULT_BEFORE_SENDING):
        os.killpg(os.getpgrp(), signal.SIGKILL)
    try:
        answer = send(row)
    except Exception as exc:
        ended = now or timezone.now()
        permanent = isinstance(exc, DeliveryFailed) and exc.permanent
        answer = getattr(exc, "answer", "") or ""
        give_up_at = row.created_at + timedelta(seconds=settings.LAKEFLOW_NOTIFICATION_RETRY_SECONDS)
        retry_at = ended + timedelta(seconds=backoff(row.tries))
        failed = permanent or retry_at > give_up_at
        error = str(exc) if isinstance(exc, DeliveryFailed) else f"{type(exc).__name__}: {exc}"
        if failed and not permanent:
            error = f"{error} (gave up after {row.tries} tries)"
        state = S.FAILED if failed else S.RETRYING
        written = _finish(row, node, state=state, next_try_at=None if failed else retry_at,
                          answer=str(answer)[:MAX_ANSWER_CHARS], error=error[:MAX_ANSWER_CHARS])
        log.warning("notification %s to %s: try %s failed: %s", row.id, row.recipient, row.tries, error)
        return written
    return _finish(row, node, state=S.SENT, next_try_at=None, sent_at=now or timezone.now(),
                   answer=str(answer or "")[:MAX_ANSWER_CHARS], error="")


def _finish(row, node, **outcome):
    """Write a try's outcome if this sender still holds the claim (compare-and-swap on its try
    and name): a sender whose claim expired and was taken over cannot overwrite the newer try.
    The notification's state afterwards."""
    with transaction.atomic():  # queued for SQLite's write lock: see claim_due
        written = Notification.objects.filter(id=row.id, state=S.SENDING, tries=row.tries, claimed_by=node).update(**outcome)
    if written:
        return outcome["state"]
    log.warning("notification %s: try %s by %s ended after its claim was taken over; its outcome (%s) is dropped",
                row.id, row.tries, node, outcome["state"])
    return Notification.objects.filter(id=row.id).values_list("state", flat=True).first()


def deliver_due(now=None, node="inline"):
    """One pass in this thread: claim what is due and send it (tests, and a step without threads)."""
    claimed = claim_due(now or timezone.now(), 100, node)
    return [deliver(notification_id, node, now, tries) for notification_id, _, tries in claimed]


def idle_wait(now):
    """Seconds until the earliest next try (a backoff ending, a claim expiring), between
    POLL_SECONDS (something due but not claimable now, such as a busy recipient) and IDLE_WAIT_SECONDS."""
    earliest = (Notification.objects.filter(next_try_at__isnull=False).order_by("next_try_at")
                .values_list("next_try_at", flat=True).first())
    if earliest is None:
        return IDLE_WAIT_SECONDS
    return min(IDLE_WAIT_SECONDS, max((earliest - now).total_seconds(), POLL_SECONDS))


class Sender:
    """The pump of one node: claims what is due while it has free threads."""

    def __init__(self, node=None, threads=None):
        self.node = node or f"{socket.gethostname()}:{os.getpid()}"
        self.threads = threads or settings.LAKEFLOW_NOTIFICATION_THREADS
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="notify")
        self.lock = threading.Lock()
        self.in_flight = {}  # notification id -> recipient
        self.freed = threading.Event()  # a delivery ended: its thread (and recipient slot) is free
        self.renewed_at = time.monotonic()

    def pass_once(self):
        with self.lock:
            free = self.threads - len(self.in_flight)
            counts = {}
            for recipient in self.in_flight.values():
                counts[recipient] = counts.get(recipient, 0) + 1
            sending = list(self.in_flight)
        self.renew_claims(sending)
        if free <= 0:
            return 0
        claimed = claim_due(timezone.now(), free, self.node, counts, sending)
        for notification_id, recipient, tries in claimed:
            with self.lock:
                self.in_flight[notification_id] = recipient
            self.pool.submit(self._deliver, notification_id, tries)
        return len(claimed)

    def renew_claims(self, sending):
        """Extend the claims of what this sender is still sending, every third of a claim."""
        if not sending or time.monotonic() - self.renewed_at < claim_seconds() / 3:
            return
        self.renewed_at = time.monotonic()
        until = timezone.now() + timedelta(seconds=claim_seconds())
        with transaction.atomic():  # queued for SQLite's write lock: see claim_due
            Notification.objects.filter(id__in=sending, state=S.SENDING, claimed_by=self.node).update(next_try_at=until)

    def _deliver(self, notification_id, tries):
        try:
            deliver(notification_id, self.node, tries=tries)
        except Exception:  # the claim expires and another try follows
            log.exception("notification %s could not be delivered", notification_id)
        finally:
            close_old_connections()
            with self.lock:
                self.in_flight.pop(notification_id, None)
            self.freed.set()

    def run(self, should_stop):
        while not should_stop():
            self.freed.clear()
            wait = POLL_SECONDS
            try:
                found = self.pass_once()
                if not found:
                    wait = idle_wait(timezone.now())
            except Exception:  # a database restart must not end the sender
                log.exception("notification sender pass failed")
                close_old_connections()
                found = 0
            if not found:
                # Nothing claimable: wait for the next due time, or less when a delivery ends (with one
                # busy recipient a poll per PER_RECIPIENT_IN_FLIGHT deliveries capped a burst at 4/s).
                self.freed.wait(wait)
        self.pool.shutdown(wait=True, cancel_futures=True)


def start_sending(should_stop):
    """This node's sender, in a daemon thread (runs/clock.py on_every_node)."""
    thread = threading.Thread(target=Sender().run, args=(should_stop,), name="notification-sender", daemon=True)
    thread.start()
    return thread

