"""The senders' outbox against real receivers: tries with backoff until an answer or the give-up
time, permanent refusals, hanging receivers that hold one thread and no more, and claims that
several senders (nodes) share without sending anything twice."""

import sqlite3
import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from notifications.delivery import Sender, claim_due, claim_seconds, deliver, deliver_due
from notifications.models import Notification
from tests.notification_receivers import HttpReceiver, wait_until
from tests.notifications.test_senders import destination, failed_run

OK = 'HTTP 200 {"status": "success", "message": "Event processed"}'


@pytest.fixture
def hook():
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def other_hook():
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture(autouse=True)
def fast_retries(settings):
    settings.LAKEFLOW_NOTIFICATION_BACKOFF_SECONDS = 10
    settings.LAKEFLOW_NOTIFICATION_RETRY_SECONDS = 3600


def one_notification(user, url):
    row, _ = failed_run(user, destination("WEBHOOK", url=url), task_level=False)
    return row


def copies(row, destination, count):
    """``count`` more notifications of the row's run to the destination, due when the row is."""
    made = Notification.objects.bulk_create([
        Notification(run_id=row.run_id, event=row.event, cause=f"{row.cause}:copy-{i}-{destination.id}",
                     recipient=f"destination:{destination.id}", destination=destination,
                     channel=destination.destination_type, facts=row.facts, next_try_at=row.next_try_at,
                     created_at=row.created_at) for i in range(count)])
    return [n.id for n in made]


def states(ids):
    return [Notification.objects.get(id=i).state for i in ids]


@contextmanager
def on_a_database_file(tmp_path):
    """The test database copied into a SQLite file, used by every thread until the block ends.

    Threads share the in-memory test database through SQLite's shared cache, which refuses a
    second writer at once ("database table is locked") where the nodes' database file (WAL,
    busy timeout, lakeflow_site/sqlite_backend) makes it wait its turn."""
    memory = connections["default"]
    memory.ensure_connection()
    path = tmp_path / "nodes.sqlite3"
    copy = sqlite3.connect(path)
    memory.connection.backup(copy)
    copy.close()
    original = connections.settings["default"]
    connections.settings["default"] = {**original, "NAME": str(path)}
    connections["default"] = connections.create_connection("default")
    try:
        yield
    finally:
        connections["default"].close()
        connections.settings["default"] = original
        connections["default"] = memory


@contextmanager
def sending(*senders):
    """The senders' pumps in threads, as the clock runs them, stopped (and their pools drained) after."""
    stop = threading.Event()

    def pump(sender):
        try:
            sender.run(stop.is_set)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=pump, args=(s,), name=f"sender-{s.node}") for s in senders]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(120)
        assert not any(thread.is_alive() for thread in threads)


def test_a_receiver_failing_twice_is_tried_again_with_doubling_backoff_until_it_answers(alice, broker, hook):
    row = one_notification(alice, hook.url())
    hook.fail_first(1, status=500)
    hook.fail_first(1, status=503)
    t0 = row.next_try_at
    assert row.state == "PENDING"

    assert deliver_due(now=t0) == ["RETRYING"]
    first = Notification.objects.get(id=row.id)
    assert (first.tries, first.answer, first.next_try_at) == (1, "HTTP 500 boom", t0 + timedelta(seconds=10))
    assert first.error == "the receiver answered HTTP 500"
    assert deliver_due(now=t0 + timedelta(seconds=9)) == []  # not due before its backoff ends

    assert deliver_due(now=t0 + timedelta(seconds=10)) == ["RETRYING"]
    second = Notification.objects.get(id=row.id)
    assert (second.tries, second.answer, second.next_try_at) == (2, "HTTP 503 boom", t0 + timedelta(seconds=30))

    assert deliver_due(now=t0 + timedelta(seconds=30)) == ["SENT"]
    sent = Notification.objects.get(id=row.id)
    assert (sent.state, sent.tries, sent.answer, sent.error) == ("SENT", 3, OK, "")
    assert (sent.sent_at, sent.next_try_at) == (t0 + timedelta(seconds=30), None)
    assert deliver_due(now=t0 + timedelta(days=1)) == []
    requests = hook.wait_for(3)
    assert len(hook.requests) == 3
    assert {r.headers["lakeflow-delivery-id"] for r in requests} == {f"lakeflow-notification-{row.id}"}
    assert [r.answered for r in requests] == [500, 503, 200]


def test_a_404_fails_the_notification_at_once_and_it_is_never_tried_again(alice, broker, hook):
    row = one_notification(alice, hook.url("/no/such/hook"))
    hook.fail_first(1, status=404)
    assert deliver_due(now=row.next_try_at) == ["FAILED"]
    failed = Notification.objects.get(id=row.id)
    assert (failed.state, failed.tries, failed.next_try_at, failed.answer) == ("FAILED", 1, None, "HTTP 404 boom")
    assert "HTTP 404" in failed.error and "not tried again" in failed.error
    assert deliver_due(now=row.next_try_at + timedelta(days=1)) == []
    assert len(hook.requests) == 1


def test_retries_give_up_after_the_retry_window_keeping_the_last_answer(alice, broker, hook, settings):
    settings.LAKEFLOW_NOTIFICATION_RETRY_SECONDS = 60
    row = one_notification(alice, hook.url())
    hook.fail_first(2, status=500)
    hook.fail_first(1, status=502)
    t0 = row.created_at
    assert deliver_due(now=t0) == ["RETRYING"]  # next at +10 s
    assert deliver_due(now=t0 + timedelta(seconds=10)) == ["RETRYING"]  # next at +30 s
    assert deliver_due(now=t0 + timedelta(seconds=30)) == ["FAILED"]  # +70 s would be past +60 s
    failed = Notification.objects.get(id=row.id)
    assert (failed.state, failed.tries, failed.next_try_at, failed.answer) == ("FAILED", 3, None, "HTTP 502 boom")
    assert failed.error == "the receiver answered HTTP 502 (gave up after 3 tries)"
    assert deliver_due(now=t0 + timedelta(days=1)) == []
    assert len(hook.requests) == 3


def test_a_hanging_receiver_holds_at_most_two_threads_while_everyone_else_is_delivered(
        alice, broker, hook, other_hook, settings, tmp_path):
    # The test, not the clock, ends the hang: the timeout is far longer than the test needs.
    settings.LAKEFLOW_NOTIFICATION_TIMEOUT_SECONDS = 60
    settings.LAKEFLOW_NOTIFICATION_BACKOFF_SECONDS = 600
    row = one_notification(alice, hook.url("/hangs"))
    hanging = [row.id, *copies(row, row.destination, 2)]
    others = copies(row, destination("SLACK", url=other_hook.url("/slack")), 4)
    hook.hang_first(2)

    with on_a_database_file(tmp_path):
        with sending(Sender(node="node-1", threads=4)):
            held = hook.wait_for(2)
            wait_until(lambda: states(others) == ["SENT"] * 4, timeout=300, what="the other receiver's notifications sent")
            # Delivered while both hung requests are still held, and the hanging receiver's third
            # notification waits: a receiver gets at most two of the four threads.
            assert [r.answered for r in held] == [None, None]
            assert sorted(states(hanging)) == ["PENDING", "SENDING", "SENDING"]
            assert len(hook.requests) == 2
            hook.release()  # the held requests are dropped unanswered; the third one gets through
            wait_until(lambda: sorted(states(hanging)) == ["RETRYING", "RETRYING", "SENT"], timeout=300,
                       what="the hanging receiver's notifications settled")
        dropped = Notification.objects.filter(id__in=hanging, state="RETRYING")
        assert all(n.answer == "" and "ConnectionError" in n.error for n in dropped)
    assert (len(hook.requests), len(other_hook.requests)) == (3, 4)


def test_a_receiver_that_does_not_answer_within_the_timeout_leaves_the_notification_retrying(
        alice, broker, hook, settings, tmp_path):
    settings.LAKEFLOW_NOTIFICATION_TIMEOUT_SECONDS = 1
    settings.LAKEFLOW_NOTIFICATION_BACKOFF_SECONDS = 600
    row = one_notification(alice, hook.url("/hangs"))
    hook.hang_first(1)

    with on_a_database_file(tmp_path):
        with sending(Sender(node="node-1", threads=4)):
            wait_until(lambda: states([row.id]) == ["RETRYING"], timeout=300, what="the hung try to time out")
            # The receiver still holds the request: the sender gave up on it, nobody answered.
            assert hook.requests[0].answered is None
            hook.release()
        timed_out = Notification.objects.get(id=row.id)
        assert (timed_out.state, timed_out.tries, timed_out.answer) == ("RETRYING", 1, "")
        assert timed_out.error.startswith("the receiver did not answer within 1 s")
    assert len(hook.requests) == 1


def test_a_late_sender_whose_claim_was_taken_over_does_not_overwrite_the_newer_try(
        alice, broker, hook, settings, tmp_path):
    settings.LAKEFLOW_NOTIFICATION_TIMEOUT_SECONDS = 60
    row = one_notification(alice, hook.url())
    t0 = row.next_try_at
    hook.hang_first(1)
    late = []

    def node_a():
        try:
            late.append(deliver(row.id, "node-a"))
        finally:
            connections.close_all()

    with on_a_database_file(tmp_path):
        assert [c[0] for c in claim_due(t0, 1, "node-a")] == [row.id]
        slow = threading.Thread(target=node_a)
        slow.start()
        try:
            hook.wait_for(1)  # node-a is mid-send, its request held
            # Its claim expires; node-b takes the notification over and delivers it.
            later = t0 + timedelta(seconds=claim_seconds() + 1)
            assert claim_due(t0 + timedelta(seconds=claim_seconds() - 1), 1, "node-b") == []
            assert [c[0] for c in claim_due(later, 1, "node-b")] == [row.id]
            assert deliver(row.id, "node-b", now=later) == "SENT"
        finally:
            hook.release()  # node-a's request is dropped: its try fails, too late to count
            slow.join(120)
        assert late == ["SENT"]  # node-a's answer: what the row says, not what its try found
        final = Notification.objects.get(id=row.id)
        assert (final.state, final.tries, final.claimed_by, final.answer, final.error) == (
            "SENT", 2, "node-b", OK, "")
        assert final.sent_at == later
    assert [r.headers["lakeflow-delivery-id"] for r in hook.requests] == [f"lakeflow-notification-{row.id}"] * 2


def test_a_sender_that_lost_its_claim_before_sending_sends_nothing(alice, broker, hook):
    row = one_notification(alice, hook.url())
    t0 = row.next_try_at
    assert [c[0] for c in claim_due(t0, 1, "node-a")] == [row.id]
    later = t0 + timedelta(seconds=claim_seconds() + 1)
    assert [c[0] for c in claim_due(later, 1, "node-b")] == [row.id]
    assert deliver(row.id, "node-a") == "SENDING"
    assert deliver(row.id, "node-b", now=later) == "SENT"
    assert len(hook.requests) == 1


def test_a_sender_never_claims_again_what_it_is_still_sending_and_renews_its_claim(alice, broker, hook):
    row = one_notification(alice, hook.url())
    sender = Sender(node="node-a", threads=2)
    [(claimed, recipient, tries)] = claim_due(row.next_try_at, 1, "node-a")
    sender.in_flight[claimed] = recipient
    # Its claim has run out (a slow SMTP relay, a long send), but the sender still holds it.
    later = row.next_try_at + timedelta(seconds=claim_seconds() + 1)
    assert claim_due(later, 1, "node-a", sending=[claimed]) == []
    sender.renewed_at -= claim_seconds()  # a third of a claim has passed since it last renewed
    sender.renew_claims([claimed])
    renewed = Notification.objects.get(id=row.id)
    assert renewed.next_try_at > timezone.now() + timedelta(seconds=claim_seconds() / 2)
    # A try number that is not the one claimed (a takeover happened in between) sends nothing.
    assert deliver(row.id, "node-a", tries=tries + 1) == "SENDING"
    assert hook.requests == []
    assert deliver(row.id, "node-a", tries=tries) == "SENT"
    sender.pool.shutdown()


def test_two_senders_on_the_same_due_rows_claim_each_row_once(alice, broker, hook, other_hook, settings, tmp_path):
    # No try may time out on a busy machine (a second try would be a different claim, not a duplicate).
    settings.LAKEFLOW_NOTIFICATION_TIMEOUT_SECONDS = 120
    row = one_notification(alice, hook.url("/a"))
    ids = [row.id, *copies(row, row.destination, 9),
           *copies(row, destination("WEBHOOK", url=hook.url("/b")), 10),
           *copies(row, destination("WEBHOOK", url=other_hook.url("/c")), 10)]

    with on_a_database_file(tmp_path):
        with sending(Sender(node="node-1", threads=4), Sender(node="node-2", threads=4)):
            wait_until(lambda: states(ids) == ["SENT"] * 30, timeout=300, what="all 30 notifications sent")
        sent = Notification.objects.filter(id__in=ids)
        assert {n.tries for n in sent} == {1}
        assert {n.claimed_by for n in sent} <= {"node-1", "node-2"}
    # Both senders stopped and drained their pools: every request either made has arrived.
    requests = hook.requests + other_hook.requests
    assert sorted(r.headers["lakeflow-delivery-id"] for r in requests) == sorted(
        f"lakeflow-notification-{i}" for i in ids)
