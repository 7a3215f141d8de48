"""Jobs API 2.0: the single-task format in and out, 2.0's list without pages, per-task-type run
parameters, and bad input refused whole."""

import pytest

from jobs.models import Job
from runs.models import Run
from tests.api.conftest import create_job, shell_task


@pytest.fixture
def v20(api):
    return api.as_version("2.0")


@pytest.fixture
def committed(transactional_db):
    # Real commits: in sync mode an attempt runs when the transaction that enqueued it commits.
    return transactional_db


@pytest.fixture
def echo_script(tmp_path):
    path = tmp_path / "echo.py"
    path.write_text("import sys\nprint('args', *sys.argv[1:])\n")
    return str(path)


def single_task_job(python_file="/x.py", **fields):
    return {"name": "legacy nightly", "spark_python_task": {"python_file": python_file, "parameters": ["a"]},
            "existing_cluster_id": "c1", "max_retries": 1, "timeout_seconds": 600, **fields}


def test_a_single_task_job_is_stored_with_one_task_and_read_back_in_2_0_as_written(api, v20):
    job_id = v20.post_ok("jobs/create", single_task_job())["job_id"]

    stored = api.as_version("2.1").get_ok("jobs/get", job_id=job_id)["settings"]
    shown = v20.get_ok("jobs/get", job_id=job_id)["settings"]

    assert stored["format"] == "SINGLE_TASK"
    assert [(t["task_key"], t["spark_python_task"]["python_file"], t["existing_cluster_id"], t["max_retries"])
            for t in stored["tasks"]] == [("legacy_nightly", "/x.py", "c1", 1)]
    assert "tasks" not in shown
    assert shown["spark_python_task"] == {"python_file": "/x.py", "parameters": ["a"]}
    assert (shown["existing_cluster_id"], shown["max_retries"], shown["timeout_seconds"]) == ("c1", 1, 600)
    assert shown["queue"] == {"enabled": False}


def test_a_multi_task_job_reads_the_same_in_2_0_and_2_1(api, v20):
    job_id = create_job(api, tasks=[shell_task("a"), shell_task("b", depends_on=["a"])])

    assert v20.get_ok("jobs/get", job_id=job_id) == api.as_version("2.1").get_ok("jobs/get", job_id=job_id)


def test_2_0_lists_every_job_on_one_page_with_its_name(api, v20):
    ids = [create_job(api, name=f"job {i}") for i in range(22)]
    single = v20.post_ok("jobs/create", single_task_job())["job_id"]

    listed = v20.get_ok("jobs/list")

    assert [j["job_id"] for j in listed["jobs"]] == [single, *reversed(ids)]
    assert listed["has_more"] is False
    assert listed["jobs"][0]["settings"]["name"] == "legacy nightly"
    assert listed["jobs"][0]["settings"]["spark_python_task"]["python_file"] == "/x.py"


@pytest.mark.parametrize("body, field", [
    ({**single_task_job(), "tasks": [shell_task("a")]}, "spark_python_task"),
    ({"name": "typo", "sparkpython_task": {"python_file": "/x.py"}}, "sparkpython_task"),
    ({"name": "two", "notebook_task": {"notebook_path": "/n"}, "spark_python_task": {"python_file": "/x.py"}},
     "spark_python_task"),
    ({"name": "no file", "spark_python_task": {"parameters": ["a"]}}, "tasks[0].spark_python_task.python_file"),
])
def test_bad_single_task_settings_are_a_400_naming_the_field_and_create_nothing(v20, body, field):
    response = v20.post("jobs/create", body)

    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert field in response.json()["message"]
    assert not Job.objects.exists()


def test_reset_in_2_0_replaces_the_settings_with_single_task_ones(v20):
    job_id = v20.post_ok("jobs/create", single_task_job())["job_id"]

    v20.post_ok("jobs/reset", {"job_id": job_id, "new_settings": {
        "name": "renamed", "notebook_task": {"notebook_path": "/Repos/n"}}})

    shown = v20.get_ok("jobs/get", job_id=job_id)["settings"]
    assert shown["name"] == "renamed" and shown["notebook_task"] == {"notebook_path": "/Repos/n"}
    assert "spark_python_task" not in shown and "existing_cluster_id" not in shown


def test_a_bad_reset_is_refused_and_leaves_the_job_as_it_was(v20):
    job_id = v20.post_ok("jobs/create", single_task_job())["job_id"]

    response = v20.post("jobs/reset", {"job_id": job_id, "new_settings": {
        "name": "both", "notebook_task": {"notebook_path": "/n"}, "tasks": []}})

    assert response.status_code == 400 and "notebook_task" in response.json()["message"]
    assert v20.get_ok("jobs/get", job_id=job_id)["settings"]["name"] == "legacy nightly"


def test_update_in_2_0_changes_a_single_task_jobs_task_level_fields_and_task(api, v20):
    job_id = v20.post_ok("jobs/create", single_task_job())["job_id"]

    v20.post_ok("jobs/update", {"job_id": job_id, "new_settings": {"max_concurrent_runs": 3, "max_retries": 2}})
    v20.post_ok("jobs/update", {"job_id": job_id, "new_settings": {
        "notebook_task": {"notebook_path": "/n"}, "min_retry_interval_millis": 500, "retry_on_timeout": True,
        "new_cluster": {"spark_version": "15.4.x-scala2.12", "num_workers": 1},
        "libraries": [{"pypi": {"package": "requests"}}]}})

    shown = v20.get_ok("jobs/get", job_id=job_id)["settings"]
    assert shown["max_concurrent_runs"] == 3 and shown["max_retries"] == 2
    assert shown["notebook_task"] == {"notebook_path": "/n"} and "spark_python_task" not in shown
    assert shown["new_cluster"]["num_workers"] == 1 and "existing_cluster_id" not in shown
    assert shown["libraries"] == [{"pypi": {"package": "requests"}}]
    assert shown["min_retry_interval_millis"] == 500 and shown["retry_on_timeout"] is True
    [task] = api.as_version("2.1").get_ok("jobs/get", job_id=job_id)["settings"]["tasks"]
    assert task["task_key"] == "legacy_nightly" and task["max_retries"] == 2


@pytest.mark.parametrize("field, value", [
    ("max_retries", 2), ("existing_cluster_id", "c2"), ("notebook_task", {"notebook_path": "/n"}),
])
def test_update_in_2_0_refuses_task_level_fields_on_a_multi_task_job_naming_them(api, v20, field, value):
    job_id = create_job(api, tasks=[shell_task("a")])

    refused = v20.post("jobs/update", {"job_id": job_id, "new_settings": {field: value}})

    assert refused.status_code == 400 and refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert field in refused.json()["message"]
    assert field not in v20.get_ok("jobs/get", job_id=job_id)["settings"]


def test_a_bad_2_0_update_of_a_single_task_job_is_refused_and_changes_nothing(v20):
    job_id = v20.post_ok("jobs/create", single_task_job())["job_id"]

    refused = v20.post("jobs/update", {"job_id": job_id, "new_settings": {
        "max_retries": 4, "notebook_task": {"notebook_path": "/n"}, "spark_jar_task": {"main_class_name": "M"}}})

    assert refused.status_code == 400 and "spark_jar_task" in refused.json()["message"]
    shown = v20.get_ok("jobs/get", job_id=job_id)["settings"]
    assert shown["max_retries"] == 1 and shown["spark_python_task"]["python_file"] == "/x.py"


@pytest.mark.parametrize("version", ["2.0", "2.1", "2.2"])
def test_run_now_takes_python_params_in_every_version(api, committed, echo_script, version):
    client = api.as_version(version)
    job_id = client.post_ok("jobs/create", {"name": "params", "tasks": [
        {"task_key": "echo", "spark_python_task": {"python_file": echo_script, "parameters": ["stored"]}}]})["job_id"]

    run_id = client.post_ok("jobs/run-now", {"job_id": job_id, "python_params": ["x", "y z"]})["run_id"]

    run = client.get_ok("jobs/runs/get", run_id=run_id)
    assert run["state"]["result_state"] == "SUCCESS"
    assert run["overriding_parameters"] == {"python_params": ["x", "y z"]}
    output = client.get_ok("jobs/runs/get-output", run_id=run["tasks"][0]["run_id"])
    assert "args x y z" in output["logs"]


def test_run_now_refuses_per_task_type_parameters_for_a_job_with_job_parameters(api):
    job_id = create_job(api, parameters=[{"name": "day", "default": "today"}])

    response = api.post("jobs/run-now", {"job_id": job_id, "python_params": ["x"]})

    assert response.status_code == 400
    assert response.json()["message"] == ("python_params cannot be used with job parameters: this job defines "
                                          "parameters, pass job_parameters instead")


def test_run_now_refuses_legacy_parameters_of_the_wrong_type_naming_them(v20, held_broker):
    job_id = v20.post_ok("jobs/create", single_task_job())["job_id"]

    response = v20.post("jobs/run-now", {"job_id": job_id, "notebook_params": ["not", "a", "map"]})

    assert response.status_code == 400 and "notebook_params" in response.json()["message"]
    assert not Run.objects.exists()


def test_a_single_task_run_in_2_0_shows_its_task_and_has_its_output_under_its_own_id(v20, committed, echo_script):
    job_id = v20.post_ok("jobs/create", single_task_job(echo_script))["job_id"]
    run_id = v20.post_ok("jobs/run-now", {"job_id": job_id})["run_id"]

    run = v20.get_ok("jobs/runs/get", run_id=run_id)
    listed = v20.get_ok("jobs/runs/list", job_id=job_id)["runs"]
    output = v20.get_ok("jobs/runs/get-output", run_id=run_id)

    assert run["state"]["result_state"] == "SUCCESS"
    assert run["task"] == {"spark_python_task": {"python_file": echo_script, "parameters": ["a"]}}
    assert run["cluster_spec"] == {"existing_cluster_id": "c1"}
    assert [(r["run_id"], r["task"]) for r in listed] == [(run_id, run["task"])]
    assert "args a" in output["logs"]
    assert output["metadata"]["job_run_id"] == run_id


def test_a_one_time_run_in_the_single_task_format_runs(v20, committed, echo_script):
    run_id = v20.post_ok("jobs/runs/submit", {"run_name": "ad hoc", "spark_python_task": {
        "python_file": echo_script, "parameters": ["once"]}, "new_cluster": {"num_workers": 1}})["run_id"]

    run = v20.get_ok("jobs/runs/get", run_id=run_id)

    assert run["run_type"] == "SUBMIT_RUN" and run["state"]["result_state"] == "SUCCESS"
    assert run["tasks"][0]["task_key"] == "ad_hoc"
    assert run["cluster_spec"] == {"new_cluster": {"num_workers": 1}}
    assert "args once" in v20.get_ok("jobs/runs/get-output", run_id=run_id)["logs"]


def test_a_bad_one_time_run_is_refused_and_makes_no_run(v20):
    response = v20.post("jobs/runs/submit", {"run_name": "x", "spark_python_task": {"python_file": "/x.py"},
                                             "tasks": [shell_task("a")]})

    assert response.status_code == 400 and "spark_python_task" in response.json()["message"]
    assert not Run.objects.exists()


def test_2_0_runs_list_pages_with_offset_and_limit(v20, held_broker):
    job_id = v20.post_ok("jobs/create", single_task_job(max_concurrent_runs=10))["job_id"]
    run_ids = [v20.post_ok("jobs/run-now", {"job_id": job_id})["run_id"] for _ in range(3)]

    first = v20.get_ok("jobs/runs/list", job_id=job_id, limit=2)
    rest = v20.get_ok("jobs/runs/list", job_id=job_id, limit=2, offset=2)

    assert [r["run_id"] for r in first["runs"]] == run_ids[:0:-1] and first["has_more"] is True
    assert [r["run_id"] for r in rest["runs"]] == run_ids[:1] and rest["has_more"] is False


def test_cancel_and_delete_work_under_2_0(v20, held_broker):
    job_id = v20.post_ok("jobs/create", single_task_job())["job_id"]
    run_id = v20.post_ok("jobs/run-now", {"job_id": job_id})["run_id"]

    v20.post_ok("jobs/runs/cancel", {"run_id": run_id})
    v20.post_ok("jobs/delete", {"job_id": job_id})

    assert Run.objects.get(id=run_id).result_state == "CANCELED"
    assert v20.get("jobs/get", job_id=job_id).status_code == 404


def test_2_0_needs_a_token_like_every_version(client, db):
    response = client.get("/api/2.0/jobs/list")

    assert response.status_code == 401 and response.json()["error_code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("method, endpoint, body", [
    ("post", "jobs/create", {"name": ["not a name"], "notebook_task": {"notebook_path": "/n"}}),
    ("post", "jobs/create", {"name": "x", "notebook_task": "not an object"}),
    ("post", "jobs/reset", {"job_id": 1, "new_settings": ["not", "settings"]}),
    ("post", "jobs/update", {"job_id": 1, "new_settings": "x"}),
    ("post", "jobs/runs/submit", {"run_name": 5, "spark_python_task": {"python_file": "/x.py"}}),
    ("post", "jobs/run-now", {"job_id": "abc"}),
    ("get", "jobs/runs/get-output", {"run_id": "abc"}),
    ("get", "jobs/runs/get", {"run_id": "999999"}),
    ("get", "jobs/runs/list", {"limit": "1001"}),
    ("get", "jobs/get", {}),
])
def test_malformed_2_0_requests_are_client_errors_with_the_databricks_shape(v20, method, endpoint, body):
    response = v20.post(endpoint, body) if method == "post" else v20.get(endpoint, **body)

    assert response.status_code in (400, 404), response.content
    assert response.json()["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
