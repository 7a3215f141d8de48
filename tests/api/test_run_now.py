"""jobs/run-now: parameters, idempotency, the queue override, and what it refuses."""

import pytest

from runs.models import Run
from tests.api.conftest import create_job, shell_task


@pytest.fixture
def committed(transactional_db):
    # Real commits: in sync mode an attempt runs when the transaction that enqueued it commits.
    return transactional_db


def test_run_now_runs_the_job_with_its_parameters_inside_the_request(api, committed):
    job_id = create_job(api, tasks=[shell_task("greet", 'echo "hello {{job.parameters.who}}"')],
                        parameters=[{"name": "who", "default": "world"}, {"name": "day", "default": "mon"}])
    started = api.post_ok("jobs/run-now", {"job_id": job_id, "job_parameters": {"who": "sdk"}})
    assert started["number_in_job"] == started["run_id"]
    run = api.get_ok("jobs/runs/get", run_id=started["run_id"])
    assert run["state"]["life_cycle_state"] == "TERMINATED"
    assert run["state"]["result_state"] == "SUCCESS"
    assert run["job_parameters"] == [{"name": "who", "default": "world", "value": "sdk"},
                                     {"name": "day", "default": "mon", "value": "mon"}]
    output = api.get_ok("jobs/runs/get-output", run_id=run["tasks"][0]["run_id"])
    assert "hello sdk" in output["logs"]


def test_the_same_idempotency_token_gives_the_same_run(api, held_broker):
    job_id = create_job(api)
    first = api.post_ok("jobs/run-now", {"job_id": job_id, "idempotency_token": "nightly-2024-01-01"})
    again = api.post_ok("jobs/run-now", {"job_id": job_id, "idempotency_token": "nightly-2024-01-01"})
    other = api.post_ok("jobs/run-now", {"job_id": job_id, "idempotency_token": "nightly-2024-01-02"})
    assert again["run_id"] == first["run_id"] != other["run_id"]
    assert Run.objects.count() == 2


def test_an_idempotency_token_longer_than_64_characters_is_refused(api):
    job_id = create_job(api)
    response = api.post("jobs/run-now", {"job_id": job_id, "idempotency_token": "x" * 65})
    assert response.status_code == 400 and "idempotency_token" in response.json()["message"]


def test_an_unknown_job_parameter_is_a_400_that_names_it(api):
    job_id = create_job(api, parameters=[{"name": "who", "default": "world"}])
    response = api.post("jobs/run-now", {"job_id": job_id, "job_parameters": {"whom": "x"}})
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "whom" in response.json()["message"]


def test_a_job_parameter_value_must_be_a_string(api):
    job_id = create_job(api, parameters=[{"name": "n", "default": "1"}])
    response = api.post("jobs/run-now", {"job_id": job_id, "job_parameters": {"n": 2}})
    assert response.status_code == 400 and "n" in response.json()["message"]


@pytest.mark.parametrize("legacy", [{"python_params": ["a"]}, {"notebook_params": {"a": "b"}}])
def test_legacy_task_parameters_are_refused_in_favour_of_job_parameters(api, legacy):
    job_id = create_job(api, parameters=[{"name": "day", "default": "today"}])
    response = api.post("jobs/run-now", {"job_id": job_id, **legacy})
    assert response.status_code == 400
    assert "job_parameters" in response.json()["message"]


def test_a_job_without_tasks_cannot_run(api):
    job_id = create_job(api, tasks=[])
    response = api.post("jobs/run-now", {"job_id": job_id})
    assert response.status_code == 400 and "no tasks" in response.json()["message"]


def test_a_run_beyond_max_concurrent_runs_waits_in_the_queue(api, held_broker):
    job_id = create_job(api, max_concurrent_runs=1, queue={"enabled": True})
    api.post_ok("jobs/run-now", {"job_id": job_id})
    queued = api.get_ok("jobs/runs/get", run_id=api.post_ok("jobs/run-now", {"job_id": job_id})["run_id"])
    assert queued["state"]["life_cycle_state"] == "QUEUED"
    assert queued["state"]["queue_reason"]
    assert "result_state" not in queued["state"]
    assert queued["status"]["state"] == "QUEUED"
    assert queued["status"]["queue_details"]["code"] == "MAX_CONCURRENT_RUNS_REACHED"
    assert queued["end_time"] == 0


def test_run_now_may_turn_the_queue_off_and_the_extra_run_is_skipped(api, held_broker):
    job_id = create_job(api, max_concurrent_runs=1, queue={"enabled": True})
    api.post_ok("jobs/run-now", {"job_id": job_id})
    started = api.post_ok("jobs/run-now", {"job_id": job_id, "queue": {"enabled": False}})
    skipped = api.get_ok("jobs/runs/get", run_id=started["run_id"])
    assert skipped["state"]["life_cycle_state"] == "SKIPPED"
    assert skipped["state"]["result_state"] == "MAXIMUM_CONCURRENT_RUNS_REACHED"
    assert skipped["status"]["termination_details"]["code"] == "MAX_CONCURRENT_RUNS_EXCEEDED"
