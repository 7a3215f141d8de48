"""A cluster node SIGKILLed between a run's commit and its reactions loses nothing: another node's
clock sweeps the reactions, and the job's queued run starts exactly once (Postgres + Redis)."""

import psycopg
import pytest
from databricks.sdk.service import jobs

from tests.e2e.conftest import QCLUSTER, drop_database, start_scaleout, wait_until

pytestmark = pytest.mark.e2e


def count(server, sql, *args):
    with psycopg.connect(server.database_url) as conn:
        return conn.execute(sql, args).fetchone()[0]


def state_of(w, run_id):
    return w.jobs.get_run(run_id).state.life_cycle_state


def test_a_node_killed_between_a_runs_commit_and_its_reactions_loses_nothing(tmp_path_factory):
    server, database = start_scaleout(tmp_path_factory.mktemp("reactions-crash"), nodes=0)
    try:
        saved, server.env = server.env, {**server.env, "LAKEFLOW_FAULT_BEFORE_REACTIONS": "1"}
        faulty = server.start("qcluster-faulty", QCLUSTER)  # the only node, for now
        server.env = saved
        w = server.client()
        job = w.jobs.create(name="one at a time", max_concurrent_runs=1, queue=jobs.QueueSettings(enabled=True),
                            tasks=[jobs.Task(task_key="t", spark_python_task=jobs.SparkPythonTask(python_file="ok.py"))])
        first = w.jobs.run_now(job_id=job.job_id).run_id
        second = w.jobs.run_now(job_id=job.job_id).run_id
        assert state_of(w, second) == jobs.RunLifeCycleState.QUEUED

        # The first run's end commits, then its node dies before the reactions (admit the next run).
        assert faulty.wait(timeout=180) == -9
        server.procs.remove(faulty)
        assert w.jobs.get_run(first).state.result_state == jobs.RunResultState.SUCCESS
        assert state_of(w, second) == jobs.RunLifeCycleState.QUEUED
        assert count(server, "SELECT count(*) FROM runs_runevent WHERE run_id = %s AND type = 'run.finished' "
                             "AND reactions_pending", first) == 1

        server.start("qcluster-2", QCLUSTER)  # its clock takes the lease over and sweeps
        wait_until(lambda: w.jobs.get_run(second).state.result_state == jobs.RunResultState.SUCCESS,
                   timeout=180, what="the queued run to start and succeed")
        assert count(server, "SELECT count(*) FROM runs_runevent WHERE run_id = %s AND type = 'run.started'",
                     second) == 1
        assert count(server, "SELECT count(*) FROM runs_reaction r JOIN runs_runevent e ON e.id = r.event_id "
                             "WHERE e.run_id = %s AND r.name = 'runs.admission.admit_next_queued_runs' "
                             "AND r.done_at IS NOT NULL", first) == 1
    finally:
        server.stop()
        drop_database(database)
