"""Crash safety of the scale-out mode (issue 6) when what dies is not ours: Redis killed and
restarted empty mid-run, every Postgres connection of the cluster terminated mid-run, and a
cancel that must cross from one process to the node running the task.

Redis only carries work (our database is the source of truth), so a restarted Redis loses
nothing that matters: an attempt whose hand-over to the broker failed stays PENDING in the
database, and the clock hands it over again as soon as it sees a new Redis
(requeue_after_broker_restart in runs/clock.py)."""

import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import jobs

from tests.e2e.conftest import (
    PYTHON,
    drop_database,
    free_port,
    live_processes,
    postgres_admin_dsn,
    start_scaleout,
    wait_until,
)
from tests.e2e.test_core_with_the_sdk import process_alive, python_task

pytestmark = pytest.mark.e2e

REDIS_SERVER = "/usr/bin/redis-server"
ENDED = (jobs.RunLifeCycleState.TERMINATED, jobs.RunLifeCycleState.INTERNAL_ERROR, jobs.RunLifeCycleState.SKIPPED)


class PrivateRedis:
    """A redis-server of this test's own, on a free port: killing it harms no one else."""

    def __init__(self, directory):
        self.port, self.directory, self.proc = free_port(), directory, None
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start()

    def start(self):
        log = open(self.directory / "redis.log", "ab")
        # No snapshot, no append-only file: a restarted server comes back empty.
        self.proc = subprocess.Popen([REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.directory)],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_until(self.answers, timeout=15, what=f"redis-server on port {self.port} to answer")

    def answers(self):
        import redis

        assert self.proc.poll() is None, f"redis-server exited with {self.proc.returncode}"
        return redis.Redis(port=self.port, socket_timeout=1).ping()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc.poll() is None:
            self.kill()


def stop(server):
    """Server.stop, after a SIGTERM to each node's own process first: django-q2 then stops its
    processes in order. (SIGTERM to a node's whole process group kills its sentinel at once, and
    the node's main process then hangs in Event.set until Server.stop's SIGKILL, 30 s later.)"""
    for node in nodes(server):
        if node.poll() is None:
            node.send_signal(signal.SIGTERM)
    for node in nodes(server):
        try:
            node.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass  # Server.stop kills it
    server.stop()


@pytest.fixture
def private_redis(tmp_path_factory):
    redis_server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    yield redis_server
    redis_server.stop()


@pytest.fixture
def cluster_on_private_redis(private_redis, tmp_path_factory):
    """Web + two qcluster nodes whose broker and channel layer are the private Redis."""
    server, database = start_scaleout(tmp_path_factory.mktemp("outage-redis"), nodes=2, redis_url=private_redis.url)
    yield server
    stop(server)
    drop_database(database)


@pytest.fixture
def cluster(tmp_path_factory):
    """Web + two qcluster nodes on the shared Redis; `server.database` names its database."""
    server, database = start_scaleout(tmp_path_factory.mktemp("outage"), nodes=2)
    server.database = database
    yield server
    stop(server)
    drop_database(database)


def chain(server, keys, seconds, **fields):
    """a -> b -> c ...: each task sleeps `seconds`."""
    return [python_task(server, key, "ok.py", str(seconds), depends_on=[keys[i - 1]] if i else [], **fields)
            for i, key in enumerate(keys)]


def task_state(w, run_id, key):
    for task in w.jobs.get_run(run_id).tasks:
        if task.task_key == key:
            return task.state.life_cycle_state
    return None


def wait_for_end(w, server, run_id, timeout):
    """The finished run; on timeout, fail with its task states and the cluster's last log lines."""
    deadline = time.monotonic() + timeout
    run = None
    while time.monotonic() < deadline:
        try:
            run = w.jobs.get_run(run_id)
        except Exception:  # one failed poll is no verdict; the deadline is
            pass
        else:
            if run.state.life_cycle_state in ENDED:
                return run
        time.sleep(0.1)
    states = [(t.task_key, t.attempt_number, t.state.life_cycle_state) for t in (run.tasks or [])] if run else None
    raise AssertionError(f"run {run_id} did not end within {timeout}s; tasks: {states}\n{node_logs(server)}")


def node_logs(server):
    """The end of the qcluster nodes' logs (the web's are mostly access lines)."""
    home = Path(server.env["LAKEFLOW_HOME"])
    return "\n".join(path.read_text(errors="replace")[-3000:] for path in sorted(home.glob("qcluster-*.log")))


def assert_one_attempt_per_task(run, keys):
    attempts = sorted((t.task_key, t.attempt_number) for t in run.tasks)
    assert attempts == [(key, 0) for key in sorted(keys)], f"run {run.run_id} attempts: {attempts}"
    assert {t.state.result_state for t in run.tasks} == {jobs.RunResultState.SUCCESS}


def nodes(server):
    return [proc for proc, label in zip(server.procs, server.labels) if label.startswith("qcluster")]


def children(pid):
    """Pids of the live processes whose parent is pid."""
    return [child for child, parent, _ in live_processes() if parent == pid]


def clock_of(node):
    """The pid of a qcluster node's clock process (runs/management/commands/qcluster.py)."""
    for pid in children(node.pid):
        try:
            if b"lakeflow_clock" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    return None


def fan_out(server):
    """root -> x, y, z -> join: root's end makes three tasks due at once."""
    return [python_task(server, "root", "ok.py", "3"),
            *(python_task(server, key, "ok.py", "1", depends_on=["root"]) for key in ("x", "y", "z")),
            python_task(server, "join", "ok.py", "1", depends_on=["x", "y", "z"])]


def test_a_redis_restart_mid_run_loses_no_work_and_runs_no_task_twice(cluster_on_private_redis, private_redis):
    server = cluster_on_private_redis
    w = server.client()
    keys = ["root", "x", "y", "z", "join"]
    job = w.jobs.create(name="survives a Redis restart", max_concurrent_runs=1, queue=jobs.QueueSettings(enabled=True),
                        tasks=fan_out(server))
    first = w.jobs.run_now(job_id=job.job_id).run_id
    second = w.jobs.run_now(job_id=job.job_id).run_id  # waits in the queue behind the first
    wait_until(lambda: task_state(w, first, "root") == jobs.RunLifeCycleState.RUNNING, timeout=60,
               what="the first run's root task to be running")
    assert w.jobs.get_run(second).state.life_cycle_state == jobs.RunLifeCycleState.QUEUED

    private_redis.kill()
    # root ends while the broker is gone: x, y and z are due but cannot all be handed over (a
    # worker may run one of them itself), so they wait in our database.
    wait_until(lambda: [task_state(w, first, key) for key in "xyz"].count(jobs.RunLifeCycleState.PENDING) >= 2,
               timeout=30, what="x, y and z to be due while Redis is down")
    private_redis.start()  # the same port, an empty server: whatever was queued is gone

    # Well inside the clock's 60 s requeue of stale attempts: it notices the new Redis and hands
    # the pending attempts over again at once; the pushers reconnect within 10 s.
    runs = [wait_for_end(w, server, first, timeout=45), wait_for_end(w, server, second, timeout=60)]
    for run in runs:
        assert run.state.result_state == jobs.RunResultState.SUCCESS, run.state
        assert_one_attempt_per_task(run, keys)
    # The queued run starts its tasks when the first ends: max_concurrent_runs held through the outage.
    assert min(t.start_time for t in runs[1].tasks) >= runs[0].end_time - 1000

    after = w.jobs.run_now(job_id=job.job_id).run_id
    run = wait_for_end(w, server, after, timeout=60)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, run.state
    assert_one_attempt_per_task(run, keys)
    assert all(node.poll() is None for node in nodes(server)), node_logs(server)


def terminate_backends(database):
    """Drop every Postgres connection of one database, as a restarted or failed-over server would."""
    with psycopg.connect(postgres_admin_dsn()[0], autocommit=True) as conn:
        rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = %s AND pid <> pg_backend_pid()", [database]).fetchall()
    return len(rows)


def backends(database):
    with psycopg.connect(postgres_admin_dsn()[0], autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                            [database]).fetchone()[0]


def test_dropped_postgres_connections_mid_run_stop_no_run_and_no_process(cluster):
    server = cluster
    w = server.client()
    keys = ["a", "b", "c"]
    # The worker watching a task loses its connection with the rest, stops the task and cannot
    # report: the reaper fails that attempt as lost and the retry runs it again.
    job = w.jobs.create(name="survives dropped connections", tasks=chain(server, keys, 3, max_retries=1))
    clocks = [clock_of(node) for node in nodes(server)]
    assert all(clocks), f"a qcluster node has no clock process: {clocks}"
    run_id = w.jobs.run_now(job_id=job.job_id).run_id
    wait_until(lambda: task_state(w, run_id, "b") == jobs.RunLifeCycleState.RUNNING, timeout=60,
               what="task b to be running")

    dropped = terminate_backends(server.database)
    # Again, once the cluster has connected anew: those new connections are dropped too.
    wait_until(lambda: backends(server.database) > 0, timeout=60, what="the cluster to connect again")
    dropped += terminate_backends(server.database)
    assert dropped >= 3, f"only {dropped} connections were dropped: the cluster should hold more"

    # The web answers at once: its next request finds the connection dead and opens a new one.
    assert w.jobs.get_run(run_id).run_id == run_id
    run = wait_for_end(w, server, run_id, timeout=90)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, run.state
    for key in keys:
        attempts = sorted((t for t in run.tasks if t.task_key == key), key=lambda t: t.attempt_number)
        assert attempts[-1].state.result_state == jobs.RunResultState.SUCCESS
        for earlier, later in zip(attempts, attempts[1:]):
            assert "stopped responding" in earlier.state.state_message, earlier.state
            assert later.start_time >= earlier.end_time, f"two attempts of {key} overlap"

    # Nothing died: no node, and no clock (a dead clock leaves lost attempts and retries undone).
    assert all(node.poll() is None for node in nodes(server)), node_logs(server)
    assert [clock_of(node) for node in nodes(server)] == clocks, "a clock process died with its connection"
    # A task that fails once and is retried 2 s later: only the clock promotes a waiting retry.
    marker = server.workspace / "retried-after-the-drop"
    retried = w.jobs.create(name="retried after the drop", tasks=[
        python_task(server, "flaky", "fail_until_marker.py", str(marker), "create", max_retries=1,
                    min_retry_interval_millis=2000)])
    run = wait_for_end(w, server, w.jobs.run_now(job_id=retried.job_id).run_id, timeout=60)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, run.state
    assert sorted(t.attempt_number for t in run.tasks) == [0, 1]


def worker_node_of(server, pid):
    """The qcluster node whose process tree holds pid: task -> worker -> sentinel -> node."""
    node_pids = {node.pid: node for node in nodes(server)}
    while pid > 1:
        if pid in node_pids:
            return node_pids[pid]
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return None


def test_a_cancel_sent_to_another_web_process_stops_the_task_on_its_node(cluster, tmp_path):
    server = cluster
    port = free_port()
    server.start("web-2", [PYTHON, "-m", "lakeflow_site.web", "--bind", "127.0.0.1", "--port", str(port),
                           "lakeflow_site.asgi:application"])
    other_url = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(other_url + "/.well-known/databricks-config", timeout=2).ok, timeout=60,
               what="the second web process to answer")
    w, other = server.client(), WorkspaceClient(host=other_url, token=server.token)
    pid_file = tmp_path / "pids"
    job = w.jobs.create(name="canceled across processes",
                        tasks=[python_task(server, "long", "sleeper.py", str(pid_file))])  # sleeps 120 s
    run_id = w.jobs.run_now(job_id=job.job_id).run_id
    wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=60, what="the task to start")
    task_pid = int(pid_file.read_text().split()[0])
    node = worker_node_of(server, task_pid)
    assert node is not None, f"task process {task_pid} does not belong to a qcluster node"

    started = time.monotonic()
    other.jobs.cancel_run(run_id)
    run = wait_for_end(other, server, run_id, timeout=30)
    assert run.state.result_state == jobs.RunResultState.CANCELED, run.state
    assert [t.state.result_state for t in run.tasks] == [jobs.RunResultState.CANCELED]
    wait_until(lambda: not process_alive(task_pid), timeout=15, what=f"task process {task_pid} to be gone")
    assert time.monotonic() - started < 30
    assert node.poll() is None, "the node that ran the task died"
