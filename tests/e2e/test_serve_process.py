"""`serve` itself: a 1,000-task job runs, and SIGTERM leaves no process behind."""

import signal
import subprocess
from datetime import timedelta

import pytest
from databricks.sdk.service import jobs

from tests.e2e.conftest import live_processes, start_serve, wait_until
from tests.e2e.test_core_with_the_sdk import process_alive, python_task

pytestmark = pytest.mark.e2e


def test_the_demo_job_exists_and_a_thousand_task_job_runs(sqlite_server):
    w = sqlite_server.client()
    assert [j.settings.name for j in w.jobs.list(name="Demo: diamond")] == ["Demo: diamond"]
    tasks = [{"task_key": f"t{i}", "shell_command_task": {"command": "true"}} for i in range(1000)]
    run_id = w.api_client.do("POST", "/api/2.2/jobs/runs/submit", body={"run_name": "wide", "tasks": tasks})["run_id"]

    run = w.jobs.wait_get_run_job_terminated_or_skipped(run_id, timeout=timedelta(minutes=5))

    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert run.status.termination_details.code == jobs.TerminationCodeCode.SUCCESS


def session_members(sid):
    return [pid for pid, _, session in live_processes() if session == sid]


def test_sigterm_stops_serve_its_children_and_their_running_task(tmp_path):
    server = start_serve(tmp_path, "serve to stop", "--no-demo")
    serve = server.procs[0]
    try:
        w = server.client()
        pid_file = tmp_path / "pids"
        job = w.jobs.create(name="long", tasks=[python_task(server, "sleepy", "sleeper.py", str(pid_file))])
        w.jobs.run_now(job_id=job.job_id)
        wait_until(lambda: pid_file.exists() and pid_file.read_text(), what="the task to start")
        task_pid = int(pid_file.read_text().split()[0])
        children = [int(p) for p in subprocess.run(["pgrep", "-P", str(serve.pid)], capture_output=True,
                                                   text=True).stdout.split()]
        assert len(children) == 1  # the cluster node (it forks the web server and the clock)

        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=30) == 0

        for child in children:
            wait_until(lambda: not session_members(child), timeout=15, what=f"process group of {child} to be gone")
        wait_until(lambda: not process_alive(task_pid), timeout=15, what="the task process to be gone")
    finally:
        server.stop()
