"""runs/get: each task run's durations from its own columns, and our `usage` extension (per task
run, and the run's sums) once measured."""

import pytest
from django.test import override_settings

from runs.models import Run, TaskRun
from tests.api.conftest import create_job, shell_task


@pytest.fixture
def committed(transactional_db):
    # Real commits: in sync mode an attempt runs when the transaction that enqueued it commits.
    return transactional_db


def run_now(api, job_id):
    return api.post_ok("jobs/run-now", {"job_id": job_id})["run_id"]


@override_settings(LAKEFLOW_COST_CURRENCY="EUR")
def test_each_task_run_shows_what_it_consumed_and_the_run_its_sums(api, committed):
    run_id = run_now(api, create_job(api, tasks=[shell_task("a"), shell_task("b", depends_on=["a"])]))
    run = api.get_ok("jobs/runs/get", run_id=run_id)

    rows = {row.task_key: row for row in TaskRun.objects.filter(run_id=run_id)}
    for task in run["tasks"]:
        row = rows[task["task_key"]]
        assert task["usage"] == {"cpu_seconds": row.cpu_seconds, "peak_memory_bytes": row.peak_memory_bytes,
                                 "read_bytes": row.read_bytes, "written_bytes": row.written_bytes,
                                 "cost": row.cost, "currency": "EUR"}
        assert task["usage"]["cpu_seconds"] > 0
    summed = Run.objects.get(id=run_id)
    assert run["usage"] == {"cpu_seconds": summed.cpu_seconds, "cost": summed.cost, "currency": "EUR"}
    assert run["usage"]["cpu_seconds"] == pytest.approx(sum(t["usage"]["cpu_seconds"] for t in run["tasks"]))


def test_a_task_runs_durations_come_from_its_columns(api, committed):
    run_id = run_now(api, create_job(api))
    row = TaskRun.objects.get(run_id=run_id)
    row.setup_duration_ms, row.cleanup_duration_ms = 40, 7
    row.save(update_fields=["setup_duration_ms", "cleanup_duration_ms"])

    task = api.get_ok("jobs/runs/get", run_id=run_id)["tasks"][0]
    started_to_ended = task["end_time"] - task["start_time"]
    assert (task["setup_duration"], task["cleanup_duration"]) == (40, 7)
    assert task["execution_duration"] == max(0, started_to_ended - 47)
    assert task["run_duration"] == task["setup_duration"] + task["execution_duration"] + task["cleanup_duration"]
    assert task["queue_duration"] == int(row.started_at.timestamp() * 1000) - int(row.queued_at.timestamp() * 1000)


def test_runs_and_task_runs_that_ran_no_process_have_no_usage(api, committed):
    run_id = run_now(api, create_job(api, tasks=[
        {"task_key": "check", "condition_task": {"op": "EQUAL_TO", "left": "1", "right": "1"}}]))
    run = api.get_ok("jobs/runs/get", run_id=run_id)

    assert run["state"]["result_state"] == "SUCCESS"
    assert "usage" not in run and "usage" not in run["tasks"][0]
    assert run["tasks"][0]["cleanup_duration"] == 0


def test_a_running_task_has_no_usage_yet(api, held_broker):
    run_id = run_now(api, create_job(api))
    run = api.get_ok("jobs/runs/get", run_id=run_id)
    assert "usage" not in run and "usage" not in run["tasks"][0]
    assert run["tasks"][0]["queue_duration"] >= 0 and run["tasks"][0]["cleanup_duration"] == 0
