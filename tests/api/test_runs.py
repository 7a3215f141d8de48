"""jobs/runs/*: submit, get, list, get-output, cancel, cancel-all, repair, delete and export."""

import time
from datetime import UTC, datetime

import pytest

from runs.models import Run, TaskRun
from tests.api.conftest import create_job, shell_task


@pytest.fixture
def committed(transactional_db):
    # Real commits: in sync mode an attempt runs when the transaction that enqueued it commits.
    return transactional_db


def run_now(api, job_id, **body):
    return api.post_ok("jobs/run-now", {"job_id": job_id, **body})["run_id"]


def tasks_by_key(run):
    return {task["task_key"]: task for task in run["tasks"]}


def test_a_finished_run_shows_its_tasks_times_and_states(api, committed):
    job_id = create_job(api, tasks=[shell_task("a"), shell_task("b", "exit 3", depends_on=["a"]),
                                    shell_task("c", depends_on=["b"])])
    before = int(time.time() * 1000)
    run_id = run_now(api, job_id)
    run = api.get_ok("jobs/runs/get", run_id=run_id)
    assert run["run_id"] == run["number_in_job"] == run["original_attempt_run_id"] == run_id
    assert run["job_id"] == job_id and run["creator_user_name"] == "alice"
    assert run["run_type"] == "JOB_RUN" and run["trigger"] == "ONE_TIME"
    assert before - 1000 <= run["start_time"] <= run["end_time"]
    assert run["run_duration"] == run["end_time"] - run["start_time"]
    assert run["state"] == {"life_cycle_state": "TERMINATED", "result_state": "FAILED",
                            "state_message": run["state"]["state_message"], "user_cancelled_or_timedout": False}
    assert run["status"]["state"] == "TERMINATED"
    assert run["status"]["termination_details"]["code"] == "RUN_EXECUTION_ERROR"
    assert run["status"]["termination_details"]["type"] == "CLIENT_ERROR"
    assert run["run_page_url"].endswith(f"/jobs/{job_id}/runs/{run_id}/")
    tasks = tasks_by_key(run)
    assert [t["task_key"] for t in run["tasks"]] == ["a", "b", "c"]
    assert tasks["a"]["state"]["result_state"] == "SUCCESS"
    assert tasks["b"]["state"]["result_state"] == "FAILED"
    assert tasks["c"]["state"]["result_state"] == "UPSTREAM_FAILED"
    assert tasks["b"]["depends_on"] == [{"task_key": "a"}]
    assert tasks["b"]["shell_command_task"] == {"command": "exit 3"}
    assert tasks["a"]["start_time"] > 0 and tasks["a"]["end_time"] >= tasks["a"]["start_time"]
    assert tasks["a"]["attempt_number"] == 0
    assert "resolved_values" not in tasks["a"] and "repair_history" not in run


def test_a_running_run_has_no_end_time_and_no_result(api, held_broker):
    run_id = run_now(api, create_job(api))
    run = api.get_ok("jobs/runs/get", run_id=run_id)
    assert run["state"]["life_cycle_state"] == "RUNNING"
    assert "result_state" not in run["state"] and "termination_details" not in run["status"]
    assert run["end_time"] == 0
    assert run["tasks"][0]["state"]["life_cycle_state"] == "PENDING"
    assert run["tasks"][0]["end_time"] == 0


def test_resolved_values_are_shown_when_asked_for(api, committed):
    job_id = create_job(api, tasks=[shell_task("a", "echo {{job.run_id}}")])
    run_id = run_now(api, job_id)
    task = api.get_ok("jobs/runs/get", run_id=run_id, include_resolved_values="true")["tasks"][0]
    # A reference in a command reaches it as a variable, never as command text (jobs/spec/embedded.py).
    assert task["resolved_values"] == {"shell_command_task": {
        "command": 'echo "${LAKEFLOW_REF_1}"', "environment": {"LAKEFLOW_REF_1": str(run_id)}}}


def test_a_run_with_250_tasks_pages_its_tasks_100_at_a_time(api, held_broker):
    tasks = [shell_task(f"t{i:03d}") for i in range(250)]
    run_id = run_now(api, create_job(api, tasks=tasks))
    keys, token, pages = [], None, 0
    while True:
        page = api.get_ok("jobs/runs/get", run_id=run_id, **({"page_token": token} if token else {}))
        keys += [t["task_key"] for t in page["tasks"]]
        pages += 1
        token = page.get("next_page_token")
        if not token:
            break
    assert pages == 3
    assert keys == [t["task_key"] for t in tasks]
    assert len(api.as_version("2.1").get_ok("jobs/runs/get", run_id=run_id)["tasks"]) == 250


def test_runs_are_listed_newest_first_in_pages(api, held_broker):
    job_id = create_job(api, max_concurrent_runs=100)
    created = [run_now(api, job_id) for _ in range(7)]
    first = api.get_ok("jobs/runs/list", job_id=job_id, limit=5)
    second = api.get_ok("jobs/runs/list", job_id=job_id, limit=5, page_token=first["next_page_token"])
    assert [r["run_id"] for r in first["runs"] + second["runs"]] == created[::-1]
    assert first["has_more"] is True and second["has_more"] is False
    assert "next_page_token" not in second and "prev_page_token" in second
    assert "tasks" not in first["runs"][0]
    expanded = api.get_ok("jobs/runs/list", job_id=job_id, expand_tasks="true", limit=1)["runs"][0]
    assert [t["task_key"] for t in expanded["tasks"]] == ["hello"] and expanded["has_more"] is False


def test_runs_list_filters_by_state_type_and_start_time(api, held_broker):
    job_id = create_job(api, max_concurrent_runs=10)
    active, finished = run_now(api, job_id), run_now(api, job_id)
    new_year = datetime(2024, 1, 1, tzinfo=UTC)
    Run.objects.filter(id=finished).update(life_cycle_state="TERMINATED", result_state="SUCCESS",
                                           created_at=new_year)
    new_year_ms = int(new_year.timestamp() * 1000)

    def listed(**params):
        return [r["run_id"] for r in api.get_ok("jobs/runs/list", **params)["runs"]]

    assert listed(active_only="true") == [active]
    assert listed(completed_only="true") == [finished]
    assert listed(run_type="SUBMIT_RUN") == []
    assert listed(run_type="JOB_RUN") == [finished, active]
    assert listed(start_time_to=new_year_ms) == [finished]
    assert listed(start_time_from=new_year_ms + 1) == [active]


def test_active_only_and_completed_only_together_are_refused(api):
    response = api.get("jobs/runs/list", active_only="true", completed_only="true")
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "active_only" in response.json()["message"]


def test_runs_list_limit_is_1_to_25_and_0_means_the_most(api, held_broker):
    job_id = create_job(api, max_concurrent_runs=100)
    for _ in range(26):
        run_now(api, job_id)
    assert len(api.get_ok("jobs/runs/list", limit=0)["runs"]) == 25
    assert api.get("jobs/runs/list", limit=26).status_code == 400
    assert api.get("jobs/runs/list", run_type="NOPE").status_code == 400


def test_get_output_of_a_task_run_has_its_logs_and_state(api, committed):
    job_id = create_job(api, tasks=[shell_task("a", "echo 'to stdout <b>'; echo oops >&2; exit 4")])
    run = api.get_ok("jobs/runs/get", run_id=run_now(api, job_id))
    task = run["tasks"][0]
    output = api.get_ok("jobs/runs/get-output", run_id=task["run_id"])
    assert "to stdout <b>" in output["logs"] and "oops" in output["logs"]
    assert output["logs_truncated"] is False
    assert output["metadata"]["run_id"] == task["run_id"]
    assert output["metadata"]["job_run_id"] == run["run_id"]
    assert output["metadata"]["state"]["result_state"] == "FAILED"
    assert "4" in output["metadata"]["state"]["state_message"]
    assert output["metadata"]["tasks"][0]["task_key"] == "a"
    assert "notebook_output" not in output


def test_get_output_shows_the_error_trace_and_notebook_result_of_an_attempt(api, held_broker):
    run_id = run_now(api, create_job(api))
    attempt = TaskRun.objects.get(run_id=run_id)
    TaskRun.objects.filter(id=attempt.id).update(error="ValueError: boom", error_trace="Traceback...",
                                                 notebook_result="42")
    output = api.get_ok("jobs/runs/get-output", run_id=attempt.id)
    assert output["error"] == "ValueError: boom"
    assert output["error_trace"] == "Traceback..."
    assert output["notebook_output"] == {"result": "42", "truncated": False}
    assert "logs" not in output  # the attempt never started, so it has no log yet


def test_get_output_of_a_job_run_asks_for_a_task_run_id(api, held_broker):
    # A run beyond max_concurrent_runs with no queue is skipped and never gets task runs, so
    # its id is not also a task run id.
    job_id = create_job(api, max_concurrent_runs=0)
    run_ids = [run_now(api, job_id) for _ in range(3)]
    response = api.get("jobs/runs/get-output", run_id=run_ids[-1])
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "task run" in response.json()["message"]


def test_canceling_a_running_run_cancels_its_tasks(api, held_broker):
    run_id = run_now(api, create_job(api))
    assert api.post_ok("jobs/runs/cancel", {"run_id": run_id}) == {}
    run = api.get_ok("jobs/runs/get", run_id=run_id)
    assert run["state"]["life_cycle_state"] == "TERMINATED"
    assert run["state"]["result_state"] == "CANCELED"
    assert run["state"]["user_cancelled_or_timedout"] is True
    assert run["tasks"][0]["state"]["result_state"] == "CANCELED"


def test_a_task_run_id_is_never_also_a_job_run_id(api, held_broker):
    run_id = run_now(api, create_job(api, tasks=[shell_task("a"), shell_task("b")]))
    assert not TaskRun.objects.filter(id=run_id).exists()


def test_canceling_one_task_run_leaves_the_others(api, held_broker):
    run_id = run_now(api, create_job(api, tasks=[shell_task("a"), shell_task("b")]))
    tasks = tasks_by_key(api.get_ok("jobs/runs/get", run_id=run_id))
    assert api.post_ok("jobs/runs/cancel", {"run_id": tasks["a"]["run_id"]}) == {}
    tasks = tasks_by_key(api.get_ok("jobs/runs/get", run_id=run_id))
    assert tasks["a"]["state"]["result_state"] == "CANCELED"
    assert tasks["b"]["state"]["life_cycle_state"] == "PENDING"


def test_canceling_a_finished_run_is_an_invalid_state(api, committed):
    run_id = run_now(api, create_job(api))
    response = api.post("jobs/runs/cancel", {"run_id": run_id})
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_STATE"
    assert f"Run {run_id} is already finished" in response.json()["message"]


def test_cancel_all_cancels_the_active_runs_of_a_job_only(api, held_broker):
    job_id, other = create_job(api, max_concurrent_runs=1), create_job(api)
    running, queued = run_now(api, job_id), run_now(api, job_id)
    untouched = run_now(api, other)
    assert api.post_ok("jobs/runs/cancel-all", {"job_id": job_id}) == {}
    states = dict(Run.objects.values_list("id", "result_state"))
    assert states[running] == states[queued] == "CANCELED"
    assert states[untouched] is None


def test_cancel_all_queued_runs_leaves_running_ones(api, held_broker):
    job_id = create_job(api, max_concurrent_runs=1)
    running, queued = run_now(api, job_id), run_now(api, job_id)
    api.post_ok("jobs/runs/cancel-all", {"all_queued_runs": True})
    assert Run.objects.get(id=queued).result_state == "CANCELED"
    # The running run may now be joined by nothing: its queue is empty.
    assert Run.objects.get(id=running).life_cycle_state == "RUNNING"
    assert api.post("jobs/runs/cancel-all", {}).status_code == 400


def test_deleting_a_job_cancels_its_active_runs(api, held_broker):
    job_id = create_job(api, max_concurrent_runs=1)
    running, queued = run_now(api, job_id), run_now(api, job_id)
    api.post_ok("jobs/delete", {"job_id": job_id})
    assert set(Run.objects.filter(id__in=[running, queued]).values_list("result_state", flat=True)) == {"CANCELED"}
    # Its runs stay readable.
    assert api.get_ok("jobs/runs/get", run_id=running)["job_id"] == job_id


def test_a_finished_run_can_be_deleted_but_an_active_one_cannot(api, held_broker):
    job_id = create_job(api, max_concurrent_runs=2)
    active, finished = run_now(api, job_id), run_now(api, job_id)
    api.post_ok("jobs/runs/cancel", {"run_id": finished})
    response = api.post("jobs/runs/delete", {"run_id": active})
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_STATE"
    assert "still active" in response.json()["message"]
    assert api.post_ok("jobs/runs/delete", {"run_id": finished}) == {}
    assert api.get("jobs/runs/get", run_id=finished).status_code == 404
    assert TaskRun.objects.filter(run_id=finished).count() == 0


def test_repairing_a_running_run_is_an_invalid_state(api, held_broker):
    run_id = run_now(api, create_job(api))
    response = api.post("jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True})
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_STATE"


def test_a_repair_reruns_the_failed_task_and_shows_in_the_history(api, tmp_path, committed):
    marker = tmp_path / "fixed"
    job_id = create_job(api, tasks=[shell_task("a"), shell_task("b", f"test -e {marker}", depends_on=["a"])])
    run_id = run_now(api, job_id)
    assert api.get_ok("jobs/runs/get", run_id=run_id)["state"]["result_state"] == "FAILED"
    marker.touch()
    repair_id = api.post_ok("jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True})["repair_id"]

    run = api.get_ok("jobs/runs/get", run_id=run_id, include_history="true")
    assert run["state"]["result_state"] == "SUCCESS"
    assert [(t["task_key"], t["state"]["result_state"]) for t in run["tasks"]] == [
        ("a", "SUCCESS"), ("b", "FAILED"), ("b", "SUCCESS")]
    original, repair = run["repair_history"]
    assert original["type"] == "ORIGINAL" and original["id"] == run_id
    assert original["state"]["result_state"] == "FAILED"
    assert original["task_run_ids"] == [t["run_id"] for t in run["tasks"][:2]]
    assert repair["type"] == "REPAIR" and repair["id"] == repair_id
    assert repair["state"]["result_state"] == "SUCCESS"
    assert repair["task_run_ids"] == [run["tasks"][2]["run_id"]]

    stale = api.post("jobs/runs/repair", {"run_id": run_id, "rerun_tasks": ["a"]})
    assert stale.status_code == 400 and "latest repair ID" in stale.json()["message"]
    again = {"run_id": run_id, "rerun_tasks": ["a"], "latest_repair_id": repair_id}
    assert api.post_ok("jobs/runs/repair", again)["repair_id"] > repair_id


def test_a_repair_checks_its_fields(api, committed):
    run_id = run_now(api, create_job(api))
    response = api.post("jobs/runs/repair", {"run_id": run_id, "rerun_tasks": "a"})
    assert response.status_code == 400 and "rerun_tasks" in response.json()["message"]
    response = api.post("jobs/runs/repair", {"run_id": run_id, "rerun_tasks": ["nope"]})
    assert response.status_code == 400 and "nope" in response.json()["message"]


def test_submit_runs_a_one_time_run_without_a_visible_job(api, bob_api, committed):
    body = {"run_name": "adhoc", "tasks": [shell_task("once")], "idempotency_token": "adhoc-1",
            "access_control_list": [{"user_name": "bob", "permission_level": "CAN_VIEW"}]}
    run_id = api.post_ok("jobs/runs/submit", body)["run_id"]
    assert api.post_ok("jobs/runs/submit", body)["run_id"] == run_id
    run = api.get_ok("jobs/runs/get", run_id=run_id)
    assert run["run_type"] == "SUBMIT_RUN" and run["run_name"] == "adhoc"
    assert run["state"]["result_state"] == "SUCCESS"
    assert [r["run_id"] for r in api.get_ok("jobs/runs/list", run_type="SUBMIT_RUN")["runs"]] == [run_id]
    # The submit ACL governs the run: bob may view it, not cancel or delete it.
    assert bob_api.get_ok("jobs/runs/get", run_id=run_id)["run_id"] == run_id
    assert bob_api.post("jobs/runs/delete", {"run_id": run_id}).status_code == 403


def test_submit_refuses_job_only_settings_and_an_empty_run(api):
    response = api.post("jobs/runs/submit", {"tasks": [shell_task("a")], "schedule": {}})
    assert response.status_code == 400 and "schedule" in response.json()["message"]
    response = api.post("jobs/runs/submit", {"run_name": "empty"})
    assert response.status_code == 400 and "tasks" in response.json()["message"]


def test_export_is_an_escaped_self_contained_html_page(api, committed):
    job_id = create_job(api, name="<script>alert(1)</script>",
                        tasks=[shell_task("a", "echo '<img src=x onerror=alert(2)>'")],
                        parameters=[{"name": "p", "default": "<i>v</i>"}])
    run_id = run_now(api, job_id)
    views = api.get_ok("jobs/runs/export", run_id=run_id)["views"]
    assert len(views) == 1 and views[0]["type"] == "NOTEBOOK"
    html = views[0]["content"]
    assert html.startswith("<!DOCTYPE html>")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "&lt;i&gt;v&lt;/i&gt;" in html
    assert "SUCCESS" in html
    assert "<link" not in html and ' src="' not in html  # nothing to fetch: it works offline
    assert api.get_ok("jobs/runs/export", run_id=run_id, views_to_export="DASHBOARDS") == {"views": []}
    assert api.get("jobs/runs/export", run_id=run_id, views_to_export="PDF").status_code == 400


def test_deleting_a_run_needs_can_manage_on_its_job_even_for_who_started_it(api, bob_api, held_broker):
    job_id = create_job(api, max_concurrent_runs=0,
                        access_control_list=[{"user_name": "bob", "permission_level": "CAN_MANAGE_RUN"}])
    alices, bobs = run_now(api, job_id), run_now(bob_api, job_id)
    response = bob_api.post("jobs/runs/delete", {"run_id": bobs})
    assert response.status_code == 403 and response.json()["message"] == (
        f"User bob does not have Owner or Admin permissions on job {job_id}.")
    assert api.post_ok("jobs/runs/delete", {"run_id": alices}) == {}
    assert api.post_ok("jobs/runs/delete", {"run_id": bobs}) == {}


def test_each_retry_is_its_own_task_run_linked_to_the_first_attempt(api, tmp_path, committed):
    marker = tmp_path / "second-time"
    flaky = shell_task("flaky", f"test -e {marker} || (touch {marker}; exit 1)", max_retries=2)
    run = api.get_ok("jobs/runs/get", run_id=run_now(api, create_job(api, tasks=[flaky])))
    first, second = run["tasks"]
    assert (first["attempt_number"], second["attempt_number"]) == (0, 1)
    assert first["state"]["result_state"] == "FAILED" and second["state"]["result_state"] == "SUCCESS"
    assert first["run_id"] != second["run_id"]
    assert second["original_attempt_run_id"] == first["run_id"] == first["original_attempt_run_id"]
    assert run["state"]["result_state"] == "SUCCESS"


def test_a_task_of_a_type_this_server_cannot_run_fails_alone_and_the_rest_of_the_job_runs(api, client, committed):
    pipeline = {"task_key": "dlt", "pipeline_task": {"pipeline_id": "p-1"}, "max_retries": 3}  # never retried
    job_id = create_job(api, tasks=[pipeline, shell_task("other"),
                                    shell_task("after", depends_on=["dlt"], run_if="ALL_DONE"),
                                    shell_task("strict", depends_on=["dlt"]),
                                    {"task_key": "off", "disabled": True, "pipeline_task": {"pipeline_id": "p-2"}}])
    assert api.get_ok("jobs/get", job_id=job_id)["settings"]["tasks"][0]["pipeline_task"] == {"pipeline_id": "p-1"}
    from jobs.models import Job

    client.force_login(Job.objects.get(id=job_id).creator)
    page = client.get(f"/jobs/{job_id}/").content.decode()
    assert 'data-task-key="dlt"' in page and "pipeline_task</code>, which this server cannot run" in page
    editor = client.get(f"/jobs/{job_id}/edit/")
    assert editor.status_code == 200 and "this form cannot edit it" in editor.content.decode()
    run = api.get_ok("jobs/runs/get", run_id=run_now(api, job_id))
    states = {key: (task["state"].get("result_state"), task["state"]["state_message"])
              for key, task in tasks_by_key(run).items()}
    assert states["dlt"] == ("FAILED", "pipeline_task is not supported by this server")
    assert [t["attempt_number"] for t in run["tasks"] if t["task_key"] == "dlt"] == [0]
    assert states["other"][0] == "SUCCESS" and states["after"][0] == "SUCCESS"
    assert states["strict"][0] == "UPSTREAM_FAILED"
    assert run["state"]["result_state"] == "FAILED"
    assert states["off"] == ("DISABLED", "Task is disabled")  # disabled: skipped cleanly, never "not supported"


def test_a_saved_query_sql_task_is_kept_and_fails_at_start_saying_what_cannot_run(api, committed):
    saved_query = {"task_key": "q", "sql_task": {"warehouse_id": "default", "query": {"query_id": "4f1e"}}}
    job_id = create_job(api, tasks=[saved_query, shell_task("other")])
    assert api.get_ok("jobs/get", job_id=job_id)["settings"]["tasks"][0]["sql_task"]["query"] == {"query_id": "4f1e"}
    run = api.get_ok("jobs/runs/get", run_id=run_now(api, job_id))
    states = {key: (task["state"].get("result_state"), task["state"]["state_message"])
              for key, task in tasks_by_key(run).items()}
    assert states["q"] == ("FAILED", "sql_task.query.query_id is not supported by this server")
    assert states["other"][0] == "SUCCESS"
