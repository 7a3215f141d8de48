"""The reaper kills what is left of a lost attempt's process group on this machine, and nothing
else: an attempt's pid may since name another process group (pids are reused), such as a
database server's connection backend, which leads a session of its own as these stand-ins do."""

import signal
import socket
import subprocess
from datetime import timedelta

from django.utils import timezone

from runs.admission import create_run
from runs.clock import reap_lost_attempts
from runs.engine.states import RunLifeCycleState as L
from runs.models import TaskRun
from tests.runs.conftest import make_job, shell


def session_leader():
    return subprocess.Popen(["sleep", "300"], start_new_session=True)


def lost_attempt(user, pid, heartbeat_at):
    run, _ = create_run(make_job(user, [shell("t")]))
    TaskRun.objects.filter(run=run).update(life_cycle_state=L.RUNNING, started_at=heartbeat_at,
                                           heartbeat_at=heartbeat_at, worker_host=socket.gethostname(),
                                           process_id=pid)
    return TaskRun.objects.get(run=run)


def test_a_process_started_after_the_attempt_was_last_seen_is_left_alone(alice, held_broker):
    stranger = session_leader()
    try:
        attempt = lost_attempt(alice, stranger.pid, timezone.now() - timedelta(minutes=5))

        assert reap_lost_attempts(timezone.now()) == 1

        assert TaskRun.objects.get(id=attempt.id).life_cycle_state == L.INTERNAL_ERROR
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_the_lost_attempt_s_own_process_group_is_killed(alice, held_broker):
    task = session_leader()
    try:
        seen_alive = timezone.now()
        lost_attempt(alice, task.pid, seen_alive)

        assert reap_lost_attempts(seen_alive + timedelta(minutes=5)) == 1

        assert task.wait(timeout=60) == -signal.SIGTERM
    finally:
        task.kill()
        task.wait()
