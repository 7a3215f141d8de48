"""A cluster node SIGKILLed between a run's commit and its reactions loses nothing: another node's
clock sweeps the reactions, and each consequence happens exactly once (Postgres + Redis): the job's
queued run starts, the continuous job counts the failure (and backs off), the parent run_job_task
settles."""

from contextlib import contextmanager

import psycopg
import pytest
from databricks.sdk.service import jobs

from tests.e2e.conftest import QCLUSTER, drop_database, start_scaleout, wait_until

pytestmark = pytest.mark.e2e
SUCCESS, FAILED = jobs.RunResultState.SUCCESS, jobs.RunResultState.FAILED


def count(server, sql, *args):
    with psycopg.connect(server.database_url) as conn:
        return conn.execute(sql, args).fetchone()[0]


def state_of(w, run_id):
    return w.jobs.get_run(run_id).state.life_cycle_state


def python_task(key, script):
    return jobs.Task(task_key=key, spark_python_task=jobs.SparkPythonTask(python_file=script))


@contextmanager
def cluster_whose_node_dies_before_reactions(tmp_path_factory, name, extra_env=None):
    """A web process and one node that SIGKILLs itself right after the first commit that has
    reactions to run. Yields (server, faulty node)."""
    server, database = start_scaleout(tmp_path_factory.mktemp(name), nodes=0, extra_env=extra_env)
    try:
        saved, server.env = server.env, {**server.env, "LAKEFLOW_FAULT_BEFORE_REACTIONS": "1"}
        faulty = server.start("qcluster-faulty", QCLUSTER)
        server.env = saved
        yield server, faulty
    finally:
        server.stop()
        drop_database(database)


def the_node_died(server, faulty):
    assert faulty.wait(timeout=180) == -9
    server.procs.remove(faulty)


def reactions_pending(server, run_id):
    return count(server, "SELECT count(*) FROM runs_runevent WHERE run_id = %s AND type = 'run.finished' "
                         "AND reactions_pending", run_id) == 1


def reaction_done_once(server, run_id, name):
    return count(server, "SELECT count(*) FROM runs_reaction r JOIN runs_runevent e ON e.id = r.event_id "
                         "WHERE e.run_id = %s AND e.type = 'run.finished' AND r.name = %s "
                         "AND r.done_at IS NOT NULL", run_id, name) == 1


def test_the_next_queued_run_starts_once(tmp_path_factory):
    with cluster_whose_node_dies_before_reactions(tmp_path_factory, "crash-queue") as (server, faulty):
        w = server.client()
        job = w.jobs.create(name="one at a time", max_concurrent_runs=1, queue=jobs.QueueSettings(enabled=True),
                            tasks=[python_task("t", "ok.py")])
        first = w.jobs.run_now(job_id=job.job_id).run_id
        second = w.jobs.run_now(job_id=job.job_id).run_id
        assert state_of(w, second) == jobs.RunLifeCycleState.QUEUED

        # The first run's end commits, then its node dies before the reactions (admit the next run).
        the_node_died(server, faulty)
        assert reactions_pending(server, first)
        assert w.jobs.get_run(first).state.result_state == SUCCESS
        assert state_of(w, second) == jobs.RunLifeCycleState.QUEUED

        server.start("qcluster-2", QCLUSTER)  # its clock takes the lease over and sweeps
        wait_until(lambda: w.jobs.get_run(second).state.result_state == SUCCESS,
                   timeout=180, what="the queued run to start and succeed")
        # The clock's own admission step may start it before the sweep runs the reaction: either
        # way, once both have run, the queued run started once.
        wait_until(lambda: reaction_done_once(server, first, "runs.admission.admit_next_queued_runs"),
                   timeout=180, what="the sweep to run the first run's reactions")
        assert count(server, "SELECT count(*) FROM runs_runevent WHERE run_id = %s AND type = 'run.started'",
                     second) == 1


def test_a_continuous_job_counts_the_failure_once_and_backs_off(tmp_path_factory):
    # An hour's backoff: once the failure is counted, no second run can start during the test.
    with cluster_whose_node_dies_before_reactions(tmp_path_factory, "crash-continuous",
                                                  {"LAKEFLOW_CONTINUOUS_BACKOFF_SECONDS": "3600"}) as (server, faulty):
        w = server.client()
        job = w.jobs.create(name="continuous", continuous=jobs.Continuous(pause_status=jobs.PauseStatus.UNPAUSED),
                            tasks=[python_task("t", "fail.py")])
        the_node_died(server, faulty)
        (first,) = list(w.jobs.list_runs(job_id=job.job_id))
        assert reactions_pending(server, first.run_id)
        assert w.jobs.get_run(first.run_id).state.result_state == FAILED

        server.start("qcluster-2", QCLUSTER)
        wait_until(lambda: reaction_done_once(server, first.run_id, "runs.triggers.restart_continuous_job"),
                   timeout=180, what="the sweep to count the failed run")
        state = w.api_client.do("GET", "/api/2.2/jobs/get", query={"job_id": job.job_id})["trigger_state"]
        assert state["continuous"]["consecutive_failures"] == 1
        assert state["continuous"]["is_backing_off"] is True
        # The clock did not start the next run before the failure was counted (it would not back off).
        assert [run.run_id for run in w.jobs.list_runs(job_id=job.job_id)] == [first.run_id]


def test_a_parent_run_job_task_settles_once(tmp_path_factory):
    with cluster_whose_node_dies_before_reactions(tmp_path_factory, "crash-parent") as (server, faulty):
        w = server.client()
        child = w.jobs.create(name="child", tasks=[python_task("work", "ok.py")])
        parent = w.jobs.create(name="parent", tasks=[
            jobs.Task(task_key="call", run_job_task=jobs.RunJobTask(job_id=child.job_id))])
        parent_run = w.jobs.run_now(job_id=parent.job_id).run_id

        # The child's end commits, then the node dies before settling the parent's task.
        the_node_died(server, faulty)
        (child_run,) = list(w.jobs.list_runs(job_id=child.job_id))
        assert reactions_pending(server, child_run.run_id)
        assert w.jobs.get_run(child_run.run_id).state.result_state == SUCCESS
        assert state_of(w, parent_run) == jobs.RunLifeCycleState.RUNNING

        server.start("qcluster-2", QCLUSTER)
        wait_until(lambda: w.jobs.get_run(parent_run).state.result_state == SUCCESS,
                   timeout=180, what="the parent run to settle and succeed")
        assert count(server, "SELECT count(*) FROM runs_runevent e JOIN runs_taskrun t ON t.id = e.task_run_id "
                             "WHERE e.run_id = %s AND t.task_key = 'call' AND e.type = 'task.finished'",
                     parent_run) == 1
        wait_until(lambda: reaction_done_once(server, child_run.run_id, "runs.control_flow.settle_parent_task"),
                   timeout=180, what="the sweep to mark the child's reaction done")
