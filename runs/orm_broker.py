"""django-q2's ORM broker with an adaptive poll: an idle pusher need not query the broker
database 20 times a second. (Only for the ORM broker: the Redis broker already blocks.)

The pusher's pause between empty polls doubles up to LAKEFLOW_BROKER_IDLE_POLL; an enqueue on
the same machine wakes it at once with a datagram to an abstract Unix socket named after
LAKEFLOW_HOME and the cluster (no file, no length limit), so an attempt handed over after a quiet
spell does not wait out the pause. The wake-up is a courtesy: if no pusher listens (another
machine, a second pusher on this one), the message is found at the next poll as before."""

import hashlib
import select
import socket
from time import sleep

from django.conf import settings
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf


def next_poll(previous, found, fast, idle):
    """The pause before the next poll: the fast poll the moment messages come, doubling after
    each empty poll up to the idle cap. So the first message after a quiet spell waits at most
    `idle` seconds, and a busy queue is polled as fast as before."""
    if found or previous is None:
        return fast
    return min(max(previous, fast) * 2, max(idle, fast))


def wake_address():
    name = f"{settings.LAKEFLOW_HOME}:{Conf.PREFIX}".encode()
    return b"\0lakeflow-broker-" + hashlib.sha256(name).hexdigest()[:32].encode()


_sender = None


def wake_pusher():
    """Tell this machine's pusher that a message is in the queue (never raises, never blocks)."""
    global _sender
    try:
        if _sender is None:
            _sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            _sender.setblocking(False)
        _sender.sendto(b"!", wake_address())
    except OSError:  # nobody listens, or its buffer is full (it is awake then anyway)
        pass


class AdaptiveORM(ORM):
    _pause = None
    _inbox = None  # the pusher's wake-up socket, bound on its first idle wait; False: not ours

    def enqueue(self, task):
        pk = super().enqueue(task)
        wake_pusher()
        return pk

    def dequeue(self):
        tasks = self.get_connection().filter(key=self.list_key, lock__lt=timezone.now())[0:Conf.BULK]
        task_list = []
        for task in tasks:
            # compare-and-swap on the lock: another cluster may have been faster
            if self.get_connection().filter(id=task.id, lock=task.lock).update(lock=self.timeout(task)):
                task_list.append((task.pk, task.payload))
        fast = Conf.POLL
        self._pause = next_poll(self._pause, bool(tasks), fast, getattr(settings, "LAKEFLOW_BROKER_IDLE_POLL", fast))
        if task_list:
            return task_list
        # empty queue (or all taken by others): spare the cpu, the longer the quieter
        self.wait(self._pause)

    def wait(self, seconds):
        """Sleep `seconds`, or less if an enqueue wakes us; a wake-up means messages are coming,
        so the next polls are fast again (an enqueue inside a transaction commits a little later)."""
        inbox = self._bound()
        if inbox is None:
            sleep(seconds)
            return
        if select.select([inbox], [], [], seconds)[0]:
            try:
                while inbox.recv(64):
                    pass
            except BlockingIOError:
                pass
            self._pause = None

    def _bound(self):
        if self._inbox is None:
            inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                inbox.bind(wake_address())
                inbox.setblocking(False)
                self._inbox = inbox
            except OSError:  # another pusher on this machine listens: poll as it comes
                inbox.close()
                self._inbox = False
        return self._inbox or None
