"""The issue's "done when", driven through the official databricks-sdk against real processes,
once on the embedded default (`serve`, SQLite, ORM broker) and once scaled out (Postgres, Redis)."""

import os
import signal
from datetime import timedelta
from pathlib import Path

import pytest
from databricks.sdk.service import jobs

from tests.e2e.conftest import wait_until

pytestmark = pytest.mark.e2e

WAIT = timedelta(minutes=3)


def python_task(server, key, script, *parameters, depends_on=(), **fields):
    return jobs.Task(
        task_key=key,
        spark_python_task=jobs.SparkPythonTask(python_file=server.script(script), parameters=list(parameters)),
        depends_on=[jobs.TaskDependency(task_key=d) for d in depends_on],
        **fields,
    )


def tasks_by_key(run):
    """The latest attempt of each task (tasks[] lists every attempt)."""
    latest = {}
    for task in run.tasks:
        if task.task_key not in latest or task.attempt_number >= latest[task.task_key].attempt_number:
            latest[task.task_key] = task
    return latest


def test_a_diamond_runs_b_and_c_in_parallel_and_each_task_has_its_logs(server):
    w = server.client()
    job = w.jobs.create(
        name="diamond",
        parameters=[jobs.JobParameterDefinition(name="who", default="world")],
        tasks=[
            python_task(server, "a", "ok.py", "hello", "{{job.parameters.who}}"),
            python_task(server, "b", "ok.py", "1.5", depends_on=["a"]),
            python_task(server, "c", "ok.py", "1.5", depends_on=["a"]),
            python_task(server, "d", "ok.py", "run", "{{job.run_id}}", depends_on=["b", "c"]),
        ],
    )
    run = w.jobs.run_now(job_id=job.job_id, job_parameters={"who": "sdk"}).result(timeout=WAIT)

    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert run.status.termination_details.code == jobs.TerminationCodeCode.SUCCESS
    t = tasks_by_key(run)
    assert set(t) == {"a", "b", "c", "d"}
    assert t["b"].start_time < t["c"].end_time and t["c"].start_time < t["b"].end_time, "b and c must overlap"
    assert t["d"].start_time >= max(t["b"].end_time, t["c"].end_time)
    assert "ok hello sdk" in w.jobs.get_run_output(t["a"].run_id).logs
    assert f"ok run {run.run_id}" in w.jobs.get_run_output(t["d"].run_id).logs


def test_a_failing_task_makes_its_all_success_child_upstream_failed_while_all_done_runs(server):
    w = server.client()
    job = w.jobs.create(
        name="failure handling",
        tasks=[
            python_task(server, "extract", "fail.py"),
            python_task(server, "load", "ok.py", depends_on=["extract"]),
            python_task(server, "cleanup", "ok.py", "cleaning", depends_on=["extract"], run_if=jobs.RunIf.ALL_DONE),
        ],
    )
    run = w.jobs.run_now(job_id=job.job_id).result(timeout=WAIT)

    t = tasks_by_key(run)
    assert t["extract"].state.result_state == jobs.RunResultState.FAILED
    assert t["load"].state.result_state == jobs.RunResultState.UPSTREAM_FAILED
    assert t["cleanup"].state.result_state == jobs.RunResultState.SUCCESS
    # The leaves are load (failed upstream) and cleanup: one leaf failed, so the run failed.
    assert run.state.result_state == jobs.RunResultState.FAILED
    output = w.jobs.get_run_output(t["extract"].run_id)
    assert output.error == "ValueError: boom from fail.py"
    assert "Traceback" in output.error_trace and "fail.py" in output.error_trace
    assert "about to fail" in output.logs


def test_a_task_is_retried_as_configured_and_a_slow_one_times_out(server, tmp_path):
    w = server.client()
    marker = tmp_path / "flaky-marker"
    job = w.jobs.create(
        name="retries and timeouts",
        tasks=[
            python_task(server, "flaky", "fail_until_marker.py", str(marker), "create",
                        max_retries=2, min_retry_interval_millis=500),
            python_task(server, "slow", "ok.py", "30", timeout_seconds=2),
        ],
    )
    run = w.jobs.run_now(job_id=job.job_id).result(timeout=WAIT)

    flaky = sorted((t for t in run.tasks if t.task_key == "flaky"), key=lambda t: t.attempt_number)
    assert [a.state.result_state for a in flaky] == [jobs.RunResultState.FAILED, jobs.RunResultState.SUCCESS]
    assert flaky[1].run_id != flaky[0].run_id  # a retry is a new task run
    assert flaky[1].start_time - flaky[0].start_time >= 500  # measured from the failed attempt's start
    slow = tasks_by_key(run)["slow"]
    assert slow.state.result_state == jobs.RunResultState.TIMEDOUT
    assert slow.end_time - slow.start_time < 15_000
    assert run.state.result_state == jobs.RunResultState.FAILED


def test_cancelling_a_long_task_kills_its_process(server, tmp_path):
    w = server.client()
    pid_file = tmp_path / "pids"
    job = w.jobs.create(name="cancel me", tasks=[python_task(server, "sleepy", "sleeper.py", str(pid_file))])
    waiter = w.jobs.run_now(job_id=job.job_id)
    wait_until(lambda: pid_file.exists() and pid_file.read_text(), what="the task to start")
    pid = int(pid_file.read_text().split()[0])

    w.jobs.cancel_run(waiter.run_id)
    run = waiter.result(timeout=WAIT)

    assert run.state.result_state == jobs.RunResultState.CANCELED
    assert tasks_by_key(run)["sleepy"].state.result_state == jobs.RunResultState.CANCELED
    wait_until(lambda: not process_alive(pid), timeout=5, what=f"task process {pid} to be gone")


def test_repair_reruns_only_the_failed_task_and_its_dependents(server, tmp_path):
    w = server.client()
    marker = tmp_path / "repair-marker"
    job = w.jobs.create(
        name="repair me",
        tasks=[
            python_task(server, "good", "ok.py"),
            python_task(server, "bad", "fail_until_marker.py", str(marker)),
            python_task(server, "after_bad", "ok.py", depends_on=["bad"]),
            python_task(server, "after_good", "ok.py", depends_on=["good"]),
        ],
    )
    first = w.jobs.run_now(job_id=job.job_id).result(timeout=WAIT)
    assert first.state.result_state == jobs.RunResultState.FAILED
    before = tasks_by_key(first)

    # Our extensions, through the SDK's client: why each task did what it did, and a dry run.
    said = [event["description"] for event in w.api_client.do(
        "GET", "/api/2.2/jobs/runs/events", query={"run_id": first.run_id, "limit": 1000})["events"]]
    assert "good is ready to start: it has no dependencies" in said
    assert any(text.startswith("after_bad skipped (UPSTREAM_FAILED)") for text in said)
    assert said[-1].startswith("Run ended FAILED")
    preview = w.api_client.do("POST", "/api/2.2/jobs/runs/repair",
                              body={"run_id": first.run_id, "rerun_all_failed_tasks": True, "dry_run": True})

    marker.touch()
    repair = w.jobs.repair_run(run_id=first.run_id, rerun_all_failed_tasks=True)
    repaired = repair.result(timeout=WAIT)

    assert repair.response.repair_id
    after = tasks_by_key(repaired)
    assert repaired.state.result_state == jobs.RunResultState.SUCCESS
    assert after["good"].run_id == before["good"].run_id  # kept, not re-run
    assert after["after_good"].run_id == before["after_good"].run_id
    assert after["bad"].run_id != before["bad"].run_id
    assert after["after_bad"].run_id != before["after_bad"].run_id
    assert after["after_bad"].state.result_state == jobs.RunResultState.SUCCESS
    assert sorted(preview["rerun_tasks"]) == sorted(k for k in after if after[k].run_id != before[k].run_id)
    history = w.jobs.get_run(first.run_id, include_history=True).repair_history
    # One repair: the dry run made none.
    assert [h.type for h in history] == [jobs.RepairHistoryItemType.ORIGINAL, jobs.RepairHistoryItemType.REPAIR]
    assert history[1].id == repair.response.repair_id


def test_a_second_run_queues_behind_max_concurrent_runs(server):
    w = server.client()
    job = w.jobs.create(
        name="one at a time",
        max_concurrent_runs=1,
        queue=jobs.QueueSettings(enabled=True),
        tasks=[python_task(server, "work", "ok.py", "2")],
    )
    first = w.jobs.run_now(job_id=job.job_id)
    second = w.jobs.run_now(job_id=job.job_id)
    queued = w.jobs.get_run(second.run_id)
    assert queued.status.state == jobs.RunLifecycleStateV2State.QUEUED
    assert queued.status.queue_details.code == jobs.QueueDetailsCodeCode.MAX_CONCURRENT_RUNS_REACHED

    first_run = first.result(timeout=WAIT)
    second_run = second.result(timeout=WAIT)
    assert first_run.state.result_state == second_run.state.result_state == jobs.RunResultState.SUCCESS
    assert tasks_by_key(second_run)["work"].start_time >= tasks_by_key(first_run)["work"].end_time


def worker_of(pid):
    """The django-q2 worker process at or above pid (a Python task's parent is its worker's fork server)."""
    while b"qcluster" not in Path(f"/proc/{pid}/cmdline").read_bytes():
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return pid


def test_a_worker_killed_mid_task_is_reaped_and_the_task_retried(server, tmp_path):
    w = server.client()
    pid_file, marker = tmp_path / "pids", tmp_path / "second-attempt-is-quick"
    job = w.jobs.create(
        name="killed worker",
        tasks=[python_task(server, "victim", "sleeper.py", str(pid_file), str(marker), max_retries=1)],
    )
    waiter = w.jobs.run_now(job_id=job.job_id)
    wait_until(lambda: pid_file.exists() and pid_file.read_text(), what="the task to start")
    task_pid, parent_pid = map(int, pid_file.read_text().split())

    os.kill(worker_of(parent_pid), signal.SIGKILL)
    run = waiter.result(timeout=WAIT)

    attempts = sorted((t for t in run.tasks if t.task_key == "victim"), key=lambda t: t.attempt_number)
    assert attempts[0].state.result_state == jobs.RunResultState.FAILED
    assert "stopped responding" in attempts[0].state.state_message
    assert attempts[1].state.result_state == jobs.RunResultState.SUCCESS
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert not process_alive(task_pid)


def test_the_sdk_lists_every_job_across_pages_and_gets_a_deleted_job_as_not_found(server):
    from databricks.sdk.errors import NotFound

    w = server.client()
    ids = [w.jobs.create(name=f"paging {i}", tasks=[python_task(server, "t", "ok.py")]).job_id for i in range(23)]
    listed = [j.job_id for j in w.jobs.list(limit=5)]
    assert set(ids) <= set(listed)
    assert len(listed) == len(set(listed))
    w.jobs.delete(ids[0])
    with pytest.raises(NotFound):
        w.jobs.get(ids[0])


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes: its code no longer runs.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()
