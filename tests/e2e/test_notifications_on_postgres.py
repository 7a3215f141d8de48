"""Notifications in the scale-out mode (Postgres + Redis): every node's sender competes for the
same rows, and a node killed mid-delivery leaves its claim to expire, after which another node
sends: exactly one delivery in the end, or, when the receiver had already got the first try
(and never answered it), a repeat carrying the same Lakeflow-Delivery-Id."""

import signal
import subprocess
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta

import pytest
from databricks.sdk.service import jobs

from tests.e2e.conftest import QCLUSTER, drop_database, live_processes, start_scaleout, wait_until
from tests.e2e.notification_rows import (answers_to, delivery_id, emails_of, notification_rows,
                                         settled_notifications, webhook_destination)
from tests.e2e.test_core_with_the_sdk import python_task
from tests.notification_receivers import HttpReceiver, SmtpReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

WAIT = timedelta(minutes=3)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A web process on a fresh database; each test starts (and stops) its own nodes."""
    server, database = start_scaleout(tmp_path_factory.mktemp("notify-pg"), nodes=0,
                                      extra_env={"LAKEFLOW_NOTIFICATION_BACKOFF_SECONDS": "0.5"})
    yield server
    server.stop()
    drop_database(database)


@pytest.fixture
def hook():
    with HttpReceiver() as receiver:
        yield receiver


@contextmanager
def nodes(server, *envs):
    """One qcluster node per environment (added to the server's), stopped as systemd stops them."""
    started = []
    try:
        for i, env in enumerate(envs):
            saved, server.env = server.env, {**server.env, **env}
            try:
                started.append(server.start(f"qcluster-{len(server.logs)}-{i}", QCLUSTER))
            finally:
                server.env = saved
        yield started
    finally:
        for proc in started:
            if proc in server.procs:
                stop(server, proc)


def stop(server, proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    server.kill(proc)


def killed_with_its_processes(server, proc):
    """Wait for a node that SIGKILLs its own process group, and for all of that group to be gone."""
    assert proc.wait(timeout=180) == -signal.SIGKILL
    server.procs.remove(proc)
    wait_until(lambda: not any(session == proc.pid for _, _, session in live_processes()),
               timeout=60, what="every process of the killed node to be gone")


def failing_job(w, server, name, destinations=(), addresses=()):
    return w.jobs.create(name=name, tasks=[python_task(server, "t", "fail.py")],
                         email_notifications=jobs.JobEmailNotifications(on_failure=list(addresses)),
                         webhook_notifications=jobs.WebhookNotifications(
                             on_failure=[jobs.Webhook(id=d) for d in destinations]))


def test_two_nodes_send_each_notification_of_a_failed_run_once(cluster, hook):
    w = cluster.client()
    destinations = [webhook_destination(w, f"hook {p}", hook.url(f"/{p}")) for p in ("a", "b", "c")]
    addresses = ["ops@example.com", "lead@example.com"]
    job = failing_job(w, cluster, "fails on two nodes", destinations, addresses)
    with SmtpReceiver() as smtp, nodes(cluster, *[{"EMAIL_HOST": smtp.host, "EMAIL_PORT": str(smtp.port)}] * 2):
        # Three runs at once: fifteen rows for two senders to compete for.
        waiters = [w.jobs.run_now(job_id=job.job_id) for _ in range(3)]
        runs = [waiter.result(timeout=WAIT) for waiter in waiters]
        assert {run.state.result_state for run in runs} == {jobs.RunResultState.FAILED}

        rows = [row for run in runs for row in settled_notifications(cluster, run.run_id)]
        assert len(rows) == 15
        assert {(row["state"], row["tries"]) for row in rows} == {("SENT", 1)}
        for row in rows:
            if row["channel"] == "EMAIL":
                (message,) = emails_of(smtp, row)
                assert message.envelope_recipients == [row["recipient"].removeprefix("email:")]
            else:
                assert answers_to(hook, row) == [200]
        assert len(hook.requests) == 9 and len(smtp.messages) == 6
        assert Counter(r.path for r in hook.requests) == {"/a": 3, "/b": 3, "/c": 3}


def test_a_node_killed_after_claiming_leaves_one_delivery_to_another_node(cluster, hook):
    w = cluster.client()
    job = failing_job(w, cluster, "its sender dies", [webhook_destination(w, "hook", hook.url("/hook"))])
    # Node A kills its process group right after claiming; its claim lasts 2 * 1 + 5 = 7 s.
    with nodes(cluster, {"LAKEFLOW_FAULT_BEFORE_SENDING": "1", "LAKEFLOW_NOTIFICATION_TIMEOUT_SECONDS": "1"}) as (a,):
        run_id = w.jobs.run_now(job_id=job.job_id).run_id
        killed_with_its_processes(cluster, a)
    assert w.jobs.get_run(run_id).state.result_state == jobs.RunResultState.FAILED
    (claimed,) = notification_rows(cluster, run_id)
    assert (claimed["state"], claimed["tries"]) == ("SENDING", 1)
    assert hook.requests == []  # A died before sending, and no other node lives yet

    with nodes(cluster, {}):
        (row,) = settled_notifications(cluster, run_id)
    assert (row["state"], row["tries"]) == ("SENT", 2)
    assert row["claimed_by"] != claimed["claimed_by"]
    assert answers_to(hook, row) == [200]
    assert len(hook.requests) == 1


def test_a_node_killed_while_the_receiver_holds_its_request_is_followed_by_one_answered_repeat(cluster, hook):
    w = cluster.client()
    job = failing_job(w, cluster, "its request hangs", [webhook_destination(w, "hook", hook.url("/hook"))])
    hook.hang_first(1)
    # A waits up to 10 s for an answer (the test kills it long before); its claim lasts 25 s.
    with nodes(cluster, {"LAKEFLOW_NOTIFICATION_TIMEOUT_SECONDS": "10"}) as (a,):
        run_id = w.jobs.run_now(job_id=job.job_id).run_id
        hook.wait_for(1, timeout=180)
        cluster.kill(a)  # SIGKILL to its process group, the request still unanswered
    (claimed,) = notification_rows(cluster, run_id)
    assert (claimed["state"], claimed["tries"]) == ("SENDING", 1)

    with nodes(cluster, {}):
        (row,) = settled_notifications(cluster, run_id)
    hook.release()
    assert (row["state"], row["tries"]) == ("SENT", 2)
    assert [(r.headers["lakeflow-delivery-id"], r.answered) for r in hook.requests] == [
        (delivery_id(row), None), (delivery_id(row), 200)]
