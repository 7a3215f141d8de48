"""An idle notification sender sleeps until the earliest next try, within bounds
(notifications/delivery.py idle_wait)."""

from datetime import timedelta

from notifications.delivery import IDLE_WAIT_SECONDS, POLL_SECONDS, idle_wait
from notifications.models import Notification
from tests.notifications.test_senders import destination, failed_run


def test_with_nothing_to_send_it_waits_the_idle_cap(db):
    assert idle_wait(None) == IDLE_WAIT_SECONDS


def test_it_wakes_for_the_earliest_next_try_and_never_polls_faster_than_before(alice, broker):
    row, _ = failed_run(alice, destination("WEBHOOK", url="http://127.0.0.1:9/hook"), task_level=False)
    at = row.next_try_at

    assert idle_wait(at - timedelta(seconds=0.75)) == 0.75
    assert idle_wait(at - timedelta(seconds=60)) == IDLE_WAIT_SECONDS
    assert idle_wait(at + timedelta(seconds=5)) == POLL_SECONDS  # due but not claimable now: a busy recipient

    Notification.objects.filter(id=row.id).update(next_try_at=None)  # sent: nothing more to wait for
    assert idle_wait(at) == IDLE_WAIT_SECONDS
