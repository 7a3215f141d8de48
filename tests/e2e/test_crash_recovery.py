"""Crash safety of the scale-out mode (issue 6), with processes really killed: every qcluster
node SIGKILLed mid-run, then new nodes started. The running attempt is failed as lost and
retried, the queued runs are neither lost nor started twice, and they start in order."""

from datetime import timedelta

import pytest
from databricks.sdk.service import jobs

from tests.e2e.conftest import QCLUSTER, wait_until
from tests.e2e.test_core_with_the_sdk import process_alive, python_task

pytestmark = pytest.mark.e2e


def test_a_cluster_killed_mid_run_resumes_and_loses_no_queued_run(two_node_server, tmp_path):
    server = two_node_server
    w = server.client()
    pid_file, marker = tmp_path / "pids", tmp_path / "second-attempt-is-quick"
    # sleeper.py sleeps 120 s the first time (and leaves the marker); later attempts exit at once.
    job = w.jobs.create(name="survives a cluster crash", max_concurrent_runs=1, queue=jobs.QueueSettings(enabled=True),
                        tasks=[python_task(server, "slow", "sleeper.py", str(pid_file), str(marker), max_retries=1)])
    run_ids = [w.jobs.run_now(job_id=job.job_id).run_id for _ in range(3)]
    wait_until(lambda: pid_file.exists() and pid_file.read_text(), what="the first run's task to start")
    task_pid = int(pid_file.read_text().split()[0])
    assert [w.jobs.get_run(r).state.life_cycle_state for r in run_ids[1:]] == [jobs.RunLifeCycleState.QUEUED] * 2

    for node in [proc for proc, label in zip(list(server.procs), list(server.labels)) if label.startswith("qcluster")]:
        server.kill(node)  # SIGKILL: no goodbye, no lease released, the task's worker gone
    wait_until(lambda: not process_alive(task_pid), timeout=15, what="the orphaned task process to die with its node")
    server.start("qcluster-3", QCLUSTER)
    server.start("qcluster-4", QCLUSTER)

    runs = [w.jobs.wait_get_run_job_terminated_or_skipped(run_id, timeout=timedelta(minutes=4)) for run_id in run_ids]
    assert [run.state.result_state for run in runs] == [jobs.RunResultState.SUCCESS] * 3
    first = sorted(runs[0].tasks, key=lambda t: t.attempt_number)
    assert [t.state.result_state for t in first] == [jobs.RunResultState.FAILED, jobs.RunResultState.SUCCESS]
    assert "stopped responding" in first[0].state.state_message
    assert [len(run.tasks) for run in runs[1:]] == [1, 1], "a queued run started twice"
    assert runs[0].start_time <= runs[1].start_time <= runs[2].start_time
    # Queued runs start when the one before them ends: one at a time, in order.
    assert runs[1].tasks[0].start_time >= runs[0].end_time - 1000
    assert runs[2].tasks[0].start_time >= runs[1].end_time - 1000


def test_a_thousand_runs_queued_behind_the_limit_all_start_once_and_in_order(scaleout_server):
    server = scaleout_server
    w = server.client()
    limit = 10
    job = w.jobs.create(name="a thousand queued", max_concurrent_runs=limit, queue=jobs.QueueSettings(enabled=True),
                        tasks=[python_task(server, "t", "ok.py")])
    run_ids = [w.jobs.run_now(job_id=job.job_id).run_id for _ in range(1000)]
    wait_until(lambda: not list(w.jobs.list_runs(job_id=job.job_id, active_only=True, limit=1)), timeout=280,
               interval=0.5, what="every queued run to finish")

    runs = {run.run_id: run for run in w.jobs.list_runs(job_id=job.job_id, expand_tasks=True)}
    assert sorted(runs) == sorted(run_ids), "a run was lost or made twice"
    assert {run.state.result_state for run in runs.values()} == {jobs.RunResultState.SUCCESS}
    assert all(len(run.tasks) == 1 for run in runs.values()), "a run's task started twice"
    # Admitted in the order they were asked for, never more than `limit` at once.
    started = [runs[run_id].tasks[0].start_time for run_id in run_ids]
    late = sum(1 for a, b in zip(started, started[limit:]) if b < a)
    assert late == 0, f"{late} runs started before a run queued {limit} places earlier"
    spans = sorted((run.tasks[0].start_time, run.tasks[0].end_time) for run in runs.values())
    ends, most = [], 0
    for start, end in spans:
        ends = [e for e in ends if e > start] + [end]
        most = max(most, len(ends))
    assert most <= limit
