"""runs/get of a for-each task run pages its iterations, 100 a page, as it pages a job run's
tasks; the official databricks-sdk's get_run reads every page (it extends `iterations` from each
one) and so still sees every iteration of a loop of any size."""

import pytest
from databricks.sdk import WorkspaceClient

from jobs.models import ApiToken
from runs.admission import create_run
from runs.control_flow import execute_control_flow
from runs.models import TaskRun
from tests.api.conftest import client_for, make_user
from tests.dashboard.conftest import make_job


def loop_of(user, size):
    """A run of a for-each over `size` inputs, its iterations created and none run (the broker holds them)."""
    item = {"task_key": "item", "shell_command_task": {"command": "echo {{input}}"}}
    loop = {"task_key": "loop", "for_each_task": {"inputs": str(list(range(size))), "concurrency": 4, "task": item}}
    job = make_job(user, parameters=[{"name": "day", "default": "monday"}], tasks=[loop])
    run, _ = create_run(job, creator=user)
    loop = TaskRun.objects.get(run=run, task_key="loop", for_each_key="")
    execute_control_flow(loop.id)
    return loop


def iteration_ids(loop):
    return list(TaskRun.objects.filter(run=loop.run_id, for_each_key="loop").order_by("iteration", "id")
                .values_list("id", flat=True))


@pytest.fixture
def user(db):
    return make_user("looper")


def test_runs_get_of_a_for_each_task_run_lists_100_iterations_a_page_with_a_token_for_the_next(
        user, client, held_broker):
    loop = loop_of(user, 250)
    api = client_for(client, user)

    first = api.get_ok("jobs/runs/get", run_id=loop.id)
    second = api.get_ok("jobs/runs/get", run_id=loop.id, page_token=first["next_page_token"])
    last = api.get_ok("jobs/runs/get", run_id=loop.id, page_token=second["next_page_token"])

    assert [len(page["iterations"]) for page in (first, second, last)] == [100, 100, 50]
    assert "next_page_token" not in last
    listed = [item["run_id"] for page in (first, second, last) for item in page["iterations"]]
    assert listed == iteration_ids(loop)
    assert [item["iteration"]["index"] for item in second["iterations"]] == list(range(100, 200))
    # Every page is the for-each task run itself, with the whole loop's counts.
    assert last["run_id"] == loop.id and last["tasks"][0]["for_each_task"]["stats"]["task_run_stats"][
        "total_iterations"] == 250


def test_a_loop_of_100_iterations_fits_one_page(user, client, held_broker):
    loop = loop_of(user, 100)
    body = client_for(client, user).get_ok("jobs/runs/get", run_id=loop.id)
    assert len(body["iterations"]) == 100 and "next_page_token" not in body


def test_api_2_1_lists_every_iteration_at_once_as_it_lists_every_task(user, client, held_broker):
    loop = loop_of(user, 150)
    body = client_for(client, user).as_version("2.1").get_ok("jobs/runs/get", run_id=loop.id)
    assert [item["run_id"] for item in body["iterations"]] == iteration_ids(loop)
    assert "next_page_token" not in body


def test_runs_get_output_of_a_for_each_lists_its_first_page_of_iterations(user, client, held_broker):
    loop = loop_of(user, 150)
    body = client_for(client, user).get_ok("jobs/runs/get-output", run_id=loop.id)
    assert [item["run_id"] for item in body["metadata"]["iterations"]] == iteration_ids(loop)[:100]


def test_the_sdks_get_run_reads_every_page_of_a_big_loops_iterations(live_server, transactional_db, held_broker):
    user = make_user("sdk-looper")
    loop = loop_of(user, 250)
    w = WorkspaceClient(host=live_server.url, token=ApiToken.issue(user, "sdk")[1])
    try:
        got = w.jobs.get_run(loop.id)
    finally:
        w.api_client._api_client._session.close()  # no kept-alive connection outlives the server
    assert [item.run_id for item in got.iterations] == iteration_ids(loop)
    assert [task.run_id for task in got.tasks] == [loop.id]  # later pages' copies of the task are not added
    assert [(p.name, p.value) for p in got.job_parameters] == [("day", "monday")]  # once, not once a page
    assert got.next_page_token is None


def test_the_sdks_get_run_of_a_task_run_with_many_job_parameters_sees_its_task_once(
        live_server, transactional_db, held_broker):
    # More than a page of job parameters, no iterations: the later pages must not repeat the task
    # (the SDK extends tasks from each page that carries no iterations).
    user = make_user("many-parameters")
    job = make_job(user, parameters=[{"name": f"p{i}", "default": str(i)} for i in range(150)],
                   tasks=[{"task_key": "t", "shell_command_task": {"command": "true"}}])
    run, _ = create_run(job, creator=user)
    task_run = TaskRun.objects.get(run=run, task_key="t")
    w = WorkspaceClient(host=live_server.url, token=ApiToken.issue(user, "sdk")[1])
    try:
        got = w.jobs.get_run(task_run.id)
    finally:
        w.api_client._api_client._session.close()
    assert [task.run_id for task in got.tasks] == [task_run.id]
    assert [p.name for p in got.job_parameters] == [f"p{i}" for i in range(150)]
