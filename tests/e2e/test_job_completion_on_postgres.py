"""A job-completion trigger across two cluster nodes on Postgres + Redis: jobs A and B, monitored
by C, run together round after round through the official SDK; their runs end on either node at
about the same time, so the two run.finished reactions that complete a combination run on
different nodes at once. C gets exactly one run per round, each naming that round's two runs."""

import psycopg
import pytest
from databricks.sdk.service import jobs

from tests.e2e.conftest import wait_until
from tests.e2e.test_core_with_the_sdk import WAIT, python_task

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

ROUNDS = 3


def upstream_reactions_pending(server, job_ids):
    """run.finished events of these jobs' runs whose reactions have not all run yet."""
    with psycopg.connect(server.database_url) as conn:
        return conn.execute("SELECT count(*) FROM runs_runevent e JOIN runs_run r ON r.id = e.run_id "
                            "WHERE r.job_id = ANY(%s) AND e.type = 'run.finished' AND e.reactions_pending",
                            (list(job_ids),)).fetchone()[0]


def test_each_combination_of_upstream_completions_fires_the_downstream_job_once(shared_two_node_server):
    server, w = shared_two_node_server, shared_two_node_server.client()
    # Both sleep as long: each round's two runs end close together, on whichever nodes took them.
    a, b = (w.jobs.create(name=name, max_concurrent_runs=2, tasks=[python_task(server, "t", "ok.py", "0.3")]).job_id
            for name in ("A", "B"))
    c = w.jobs.create(name="C", max_concurrent_runs=ROUNDS, tasks=[python_task(server, "t", "ok.py")],
                      trigger=jobs.TriggerSettings(job_completion=jobs.JobCompletionTriggerConfiguration(jobs=[
                          jobs.JobCompletionTriggerConfigurationMonitoredJob(job_id=str(a), workspace_id="1"),
                          jobs.JobCompletionTriggerConfigurationMonitoredJob(job_id=str(b), workspace_id="1")]))).job_id

    pairs = []
    for round_number in range(1, ROUNDS + 1):
        waiting = [w.jobs.run_now(a), w.jobs.run_now(b)]
        ended = [waiter.result(timeout=WAIT) for waiter in waiting]
        assert [run.state.result_state for run in ended] == [jobs.RunResultState.SUCCESS] * 2
        pairs.append((str(ended[0].run_id), str(ended[1].run_id)))
        wait_until(lambda: len(list(w.jobs.list_runs(job_id=c))) >= round_number, timeout=60,
                   what=f"C's run of round {round_number}")

    # Every reaction to the upstream ends has run (on some node): nothing more can fire C.
    wait_until(lambda: upstream_reactions_pending(server, (a, b)) == 0, timeout=60, what="the reactions to settle")
    fired = sorted(w.jobs.list_runs(job_id=c), key=lambda run: run.run_id)
    assert len(fired) == ROUNDS
    seen = []
    for run in fired:
        assert run.trigger == jobs.TriggerType.JOB_COMPLETION
        completed = w.jobs.get_run(run.run_id).trigger_info.job_completion.completed_jobs
        assert [job.job_id for job in completed] == [str(a), str(b)]
        assert {job.termination_code for job in completed} == {jobs.TerminationCodeCode.SUCCESS}
        seen.append(tuple(job.run_id for job in completed))
    assert seen == pairs
