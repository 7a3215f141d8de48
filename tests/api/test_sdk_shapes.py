"""Every field we send survives the official SDK's `from_dict`: it drops unknown or misnamed
fields silently, so a typo in a serializer only shows up this way."""

import re

import pytest
from databricks.sdk.service import jobs as sdk

from tests.api.conftest import create_job, shell_task

# Fields the SDK does not model, so from_dict drops them: our own task type,
# original_attempt_run_id of a task run (Databricks sends it; 0.156 drops it, 0.167 reads it),
# and our usage extension of runs and task runs.
NOT_IN_THE_SDK = ("shell_command_task", "tasks[].original_attempt_run_id", "usage")


def lost_fields(original, parsed, path=""):
    """Paths of values in `original` that are missing or different in `parsed`."""
    if isinstance(original, dict):
        lost = []
        for key, value in original.items():
            here = f"{path}.{key}" if path else key
            if value in ([], {}, None):  # the SDK leaves empty values out
                continue
            if re.sub(r"\[\d+\]", "[]", here).endswith(NOT_IN_THE_SDK):
                continue
            if not isinstance(parsed, dict) or key not in parsed:
                lost.append(here)
            else:
                lost += lost_fields(value, parsed[key], here)
        return lost
    if isinstance(original, list):
        if not isinstance(parsed, list) or len(parsed) != len(original):
            return [path]
        return [p for i, (a, b) in enumerate(zip(original, parsed)) for p in lost_fields(a, b, f"{path}[{i}]")]
    return [] if original == parsed else [path]


def assert_survives(cls, body):
    assert lost_fields(body, cls.from_dict(body).as_dict()) == []


@pytest.fixture
def committed(transactional_db):
    return transactional_db


def python_task(key, **fields):
    # The file is missing, so the attempt fails at once: enough to show a task-type block.
    return {"task_key": key, "spark_python_task": {"python_file": "nonexistent/x.py", "parameters": ["1"]},
            **fields}


def test_lost_fields_notices_a_misnamed_field():
    assert lost_fields({"run_id": 1, "job_idd": 2}, sdk.Run.from_dict({"run_id": 1, "job_idd": 2}).as_dict()) == [
        "job_idd"]


def test_jobs_shapes_survive_the_sdk(api):
    created = api.post_ok("jobs/create", {
        "name": "shapes", "tags": {"a": "b"}, "parameters": [{"name": "p", "default": "d"}],
        "tasks": [python_task("a"), shell_task("b", depends_on=["a"], run_if="ALL_DONE")],
        "email_notifications": {"on_failure": ["x@example.com"]}, "timeout_seconds": 60,
    })
    assert_survives(sdk.CreateResponse, created)
    job = api.get_ok("jobs/get", job_id=created["job_id"])
    assert_survives(sdk.Job, job)
    listed = api.get_ok("jobs/list", expand_tasks="true")
    assert_survives(sdk.ListJobsResponse, listed)
    many = [create_job(api, name=f"j{i}") for i in range(3)]
    assert many
    assert_survives(sdk.ListJobsResponse, api.get_ok("jobs/list", limit=2))


def test_run_shapes_survive_the_sdk(api, committed):
    job_id = create_job(api, tasks=[python_task("a"), shell_task("b", "echo {{job.run_id}}", depends_on=["a"],
                                                                  run_if="ALL_DONE")],
                        parameters=[{"name": "p", "default": "d"}])
    started = api.post_ok("jobs/run-now", {"job_id": job_id, "job_parameters": {"p": "x"}})
    assert_survives(sdk.RunNowResponse, started)
    run_id = started["run_id"]
    repaired = api.post_ok("jobs/runs/repair", {"run_id": run_id, "rerun_tasks": ["a"]})
    assert_survives(sdk.RepairRunResponse, repaired)

    run = api.get_ok("jobs/runs/get", run_id=run_id, include_history="true", include_resolved_values="true")
    assert len(run["repair_history"]) == 2 and len(run["tasks"]) == 3
    assert run["tasks"][0]["resolved_values"]
    assert_survives(sdk.Run, run)
    parsed = sdk.Run.from_dict(run)
    assert parsed.state.result_state == sdk.RunResultState.SUCCESS_WITH_FAILURES
    assert parsed.tasks[0].status.termination_details.code == sdk.TerminationCodeCode.RESOURCE_NOT_FOUND
    assert parsed.repair_history[1].type == sdk.RepairHistoryItemType.REPAIR
    assert parsed.tasks[0].run_if == sdk.RunIf.ALL_SUCCESS

    assert_survives(sdk.ListRunsResponse, api.get_ok("jobs/runs/list", expand_tasks="true"))
    output = api.get_ok("jobs/runs/get-output", run_id=run["tasks"][0]["run_id"])
    assert output["error"]
    # task_key is in Databricks' answer but not in the SDK's Run; nothing else may be lost.
    assert lost_fields(output, sdk.RunOutput.from_dict(output).as_dict()) == ["metadata.task_key"]
    assert_survives(sdk.ExportRunOutput, api.get_ok("jobs/runs/export", run_id=run_id))
    submitted = api.post_ok("jobs/runs/submit", {"run_name": "once", "tasks": [shell_task("x")]})
    assert_survives(sdk.SubmitRunResponse, submitted)


def test_queued_and_running_run_shapes_survive_the_sdk(api, held_broker):
    job_id = create_job(api, max_concurrent_runs=1)
    running = api.post_ok("jobs/run-now", {"job_id": job_id})["run_id"]
    queued = api.post_ok("jobs/run-now", {"job_id": job_id})["run_id"]
    for run_id in (running, queued):
        run = api.get_ok("jobs/runs/get", run_id=run_id, include_history="true")
        assert_survives(sdk.Run, run)
    parsed = sdk.Run.from_dict(api.get_ok("jobs/runs/get", run_id=queued))
    assert parsed.status.queue_details.code == sdk.QueueDetailsCodeCode.MAX_CONCURRENT_RUNS_REACHED
    assert parsed.status.state == sdk.RunLifecycleStateV2State.QUEUED
    assert_survives(sdk.ListRunsResponse, api.get_ok("jobs/runs/list", active_only="true", expand_tasks="true"))
