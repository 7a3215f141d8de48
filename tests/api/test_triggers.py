"""Triggers through the Jobs API: what is refused at save (and why), and what jobs/get shows of
a trigger's state as jobs/update pauses and resumes it."""

import pytest

from jobs.models import Job
from runs.models import TriggerState
from tests.api.conftest import create_job, shell_task

EVERY_MINUTE = {"quartz_cron_expression": "0 * * * * ?", "timezone_id": "Europe/Berlin"}


def refused(api, **settings):
    response = api.post("jobs/create", {"name": "bad", "tasks": [shell_task("t")], **settings})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    return body["message"]


@pytest.mark.parametrize("schedule, field, words", [
    ({"quartz_cron_expression": "0 * * * *", "timezone_id": "UTC"}, "schedule.quartz_cron_expression", "6 or 7"),
    ({"quartz_cron_expression": "0 0 12 * * MON", "timezone_id": "UTC"}, "schedule.quartz_cron_expression", "?"),
    ({"quartz_cron_expression": "0 0 12 ? * 9", "timezone_id": "UTC"}, "schedule.quartz_cron_expression", "9"),
    ({"quartz_cron_expression": "0 0 12 * * ?", "timezone_id": "Mars/Olympus"}, "schedule.timezone_id", "Mars/Olympus"),
])
def test_a_bad_schedule_is_refused_with_the_field_and_the_fix(api, schedule, field, words):
    message = refused(api, schedule=schedule)
    assert field in message and words in message
    assert not Job.objects.exists()


def test_schedule_and_continuous_together_are_refused(api):
    message = refused(api, schedule=EVERY_MINUTE, continuous={"pause_status": "UNPAUSED"})
    assert "schedule" in message and "continuous" in message


def test_a_watched_directory_that_does_not_exist_is_refused(api, tmp_path):
    message = refused(api, trigger={"file_arrival": {"url": f"file://{tmp_path}/nowhere/"}})
    assert "trigger.file_arrival.url" in message and f"directory {tmp_path}/nowhere/ does not exist" in message


def test_a_watched_path_that_is_a_file_is_refused(api, tmp_path):
    (tmp_path / "a.csv").write_text("x")
    message = refused(api, trigger={"file_arrival": {"url": str(tmp_path / "a.csv")}})
    assert "is not a directory" in message


def test_a_table_trigger_needs_table_names(api):
    message = refused(api, trigger={"table_update": {"condition": "ALL_UPDATED"}})
    assert "trigger.table_update.table_names" in message


def test_jobs_get_shows_the_schedule_state_and_update_pauses_and_resumes_it(api):
    job_id = create_job(api, schedule=EVERY_MINUTE)
    state = api.get_ok("jobs/get", job_id=job_id)["trigger_state"]
    assert state["pause_status"] == "UNPAUSED"
    assert state["next_check_time"] > 0 and state["next_check_time"] % 60000 == 0
    assert api.get_ok("jobs/get", job_id=job_id)["settings"]["schedule"]["pause_status"] == "UNPAUSED"

    api.post_ok("jobs/update", {"job_id": job_id, "new_settings": {"schedule": {**EVERY_MINUTE, "pause_status": "PAUSED"}}})
    state = api.get_ok("jobs/get", job_id=job_id)["trigger_state"]
    assert state["pause_status"] == "PAUSED" and state["next_check_time"] == 0
    assert TriggerState.objects.get(job_id=job_id).next_check_at is None

    api.post_ok("jobs/reset", {"job_id": job_id, "new_settings": {
        "name": "job", "tasks": [shell_task("hello")], "schedule": {**EVERY_MINUTE, "pause_status": "UNPAUSED"}}})
    assert api.get_ok("jobs/get", job_id=job_id)["trigger_state"]["next_check_time"] > 0


def test_removing_the_trigger_or_deleting_the_job_removes_its_state(api):
    job_id = create_job(api, schedule=EVERY_MINUTE)
    api.post_ok("jobs/update", {"job_id": job_id, "fields_to_remove": ["schedule"]})
    assert "trigger_state" not in api.get_ok("jobs/get", job_id=job_id)
    api.post_ok("jobs/update", {"job_id": job_id, "new_settings": {"continuous": {}}})
    assert api.get_ok("jobs/get", job_id=job_id)["trigger_state"]["continuous"]["consecutive_failures"] == 0
    api.post_ok("jobs/delete", {"job_id": job_id})
    assert not TriggerState.objects.filter(job_id=job_id).exists()


def test_a_table_trigger_shows_which_watched_tables_have_updates(api):
    names = ["default.main.orders", "pg.public.customers"]
    job_id = create_job(api, trigger={"table_update": {"table_names": names, "condition": "ALL_UPDATED"}})
    TriggerState.objects.filter(job_id=job_id).update(updated_tables={"default.main.orders": {"version": 3}})
    table = api.get_ok("jobs/get", job_id=job_id)["trigger_state"]["table"]
    assert table["last_seen_table_states"] == [{"table_name": "default.main.orders", "has_seen_updates": True},
                                               {"table_name": "pg.public.customers", "has_seen_updates": False}]


# --- job-completion triggers and triggers lists --------------------------------------------------


def waiting_for(*job_ids, **fields):
    return {"job_completion": {"jobs": [{"job_id": str(i), "workspace_id": "0"} for i in job_ids], **fields}}


def test_a_job_completion_trigger_on_a_job_that_does_not_exist_is_refused_naming_the_entry(api):
    upstream = create_job(api, name="upstream")
    message = refused(api, triggers=[{"periodic": {"interval": 1, "unit": "DAYS"}},
                                     waiting_for(upstream, 424242)])
    assert "triggers[1].job_completion.jobs[1].job_id: job 424242 does not exist" in message
    assert Job.objects.count() == 1


def test_a_job_whose_monitored_job_was_deleted_can_still_be_paused_and_renamed(api):
    # The trigger shows the deleted job (is_deleted); only a new entry for it is refused.
    upstream, other = create_job(api, name="upstream"), create_job(api, name="other")
    job_id = create_job(api, trigger=waiting_for(upstream, other))
    api.post_ok("jobs/delete", {"job_id": upstream})
    paused = {**waiting_for(upstream, other), "pause_status": "PAUSED"}

    response = api.post("jobs/update", {"job_id": job_id, "new_settings": {"name": "renamed", "trigger": paused}})

    assert response.status_code == 200, response.content
    assert TriggerState.objects.get(job_id=job_id).paused
    message = refused(api, trigger=waiting_for(upstream))
    assert f"trigger.job_completion.jobs[0].job_id: job {upstream} does not exist" in message


def test_a_job_cannot_wait_for_its_own_completion(api):
    job_id = create_job(api)
    response = api.post("jobs/update", {"job_id": job_id, "new_settings": {"trigger": waiting_for(job_id)}})
    assert response.status_code == 400
    assert response.json()["message"] == (f"trigger.job_completion.jobs[0].job_id: job {job_id} cannot wait "
                                           "for its own completion")
    assert not TriggerState.objects.filter(job_id=job_id).exists()


def test_jobs_that_would_start_each_other_for_ever_are_refused_with_the_loop(api):
    a = create_job(api, name="a")
    b = create_job(api, name="b", trigger=waiting_for(a))
    c = create_job(api, name="c", triggers=[waiting_for(b, if_status="DONE")])

    response = api.post("jobs/update", {"job_id": a, "new_settings": {"trigger": waiting_for(c)}})

    assert response.status_code == 400
    assert response.json()["message"] == (f"trigger.job_completion.jobs[0].job_id: the jobs would start each other "
                                           f"without end: job {a} -> job {c} -> job {b} -> job {a}")
    assert not TriggerState.objects.filter(job_id=a).exists()
    # Waiting for jobs that wait for each other, but not for this one, is fine (a diamond).
    assert api.post("jobs/update", {"job_id": c, "new_settings": {"triggers": [waiting_for(a, b)]}}).status_code == 200


def test_a_job_the_saver_cannot_see_cannot_be_waited_for(api, bob_api):
    hidden = create_job(bob_api, name="bob's")
    message = refused(api, trigger=waiting_for(hidden))
    assert f"trigger.job_completion.jobs[0].job_id: User alice cannot view job {hidden}" in message


def test_a_triggers_list_with_a_legacy_block_is_refused_naming_both(api):
    message = refused(api, schedule=EVERY_MINUTE, triggers=[{"periodic": {"interval": 1, "unit": "DAYS"}}])
    assert message.startswith("triggers: cannot be combined with schedule")


def test_a_watched_directory_of_a_triggers_entry_is_checked_too(api, tmp_path):
    message = refused(api, triggers=[{"file_arrival": {"url": str(tmp_path / "nowhere")}}])
    assert f"triggers[0].file_arrival.url: directory {tmp_path}/nowhere does not exist" in message


def test_jobs_get_shows_each_trigger_of_a_list_with_its_state_and_history(api):
    upstream = create_job(api, name="upstream")
    job_id = create_job(api, triggers=[{"schedule": EVERY_MINUTE, "pause_status": "PAUSED"},
                                       waiting_for(upstream, if_status="DONE"),
                                       {"periodic": {"interval": 2, "unit": "HOURS"}}])
    state = TriggerState.objects.get(job_id=job_id, position=1)
    from runs.triggers import decided

    decided(state.job, "not_triggered", "waiting for job 12", state.enabled_at, position=1)
    body = api.get_ok("jobs/get", job_id=job_id, include_trigger_state="true")

    assert "trigger_state" not in body
    assert [entry["state"]["pause_status"] for entry in body["trigger_details"]] == ["PAUSED", "UNPAUSED", "UNPAUSED"]
    first, second, third = body["trigger_details"]
    assert first["state"]["schedule"] == {} and first["history"] == {}
    assert second["state"]["job_completion"] == {"monitored_job_states": [
        {"job_id": str(upstream), "workspace_id": "0", "has_seen_completion": False, "is_deleted": False}]}
    assert second["history"]["last_not_triggered"]["description"] == "waiting for job 12"
    assert third["state"]["periodic"]["next_run_time"] > 0
    assert body["settings"]["triggers"][1]["job_completion"]["jobs"] == [{"job_id": str(upstream),
                                                                          "workspace_id": "0"}]


def test_the_legacy_trigger_state_shows_the_monitored_jobs_as_the_sdk_reads_them(api):
    from datetime import datetime, timezone

    upstream, gone = create_job(api, name="up"), create_job(api, name="gone")
    job_id = create_job(api, trigger=waiting_for(upstream, gone))
    api.post_ok("jobs/delete", {"job_id": gone})
    at = datetime(2026, 3, 1, 12, 0, 1, 250_000, tzinfo=timezone.utc).isoformat()
    done = {"job_id": str(upstream), "run_id": 77, "completion_time": at, "result_state": "SUCCESS",
            "termination_code": "SUCCESS"}
    failed = {**done, "run_id": 78, "result_state": "FAILED", "termination_code": "RUN_EXECUTION_ERROR"}
    TriggerState.objects.filter(job_id=job_id).update(completions={
        "pending": {str(upstream): done}, "latest": {str(upstream): done}, "not_matching": {str(upstream): failed}})

    states = api.get_ok("jobs/get", job_id=job_id)["trigger_state"]["job_completion"]["monitored_job_states"]
    assert states == [
        {"job_id": str(upstream), "workspace_id": "0", "has_seen_completion": True, "is_deleted": False,
         "last_seen_run_id": "77", "last_seen_completion_time": "2026-03-01T12:00:01.250000Z",
         "last_seen_result": "SUCCESS", "latest_non_matching_result": "RUN_EXECUTION_ERROR"},
        {"job_id": str(gone), "workspace_id": "0", "has_seen_completion": False, "is_deleted": True}]


def test_runs_get_answers_what_a_job_completion_fired_with(api):
    from runs.admission import create_run
    from runs.models import Run

    job_id = create_job(api)
    completed = [{"job_id": "12", "run_id": "77", "workspace_id": "0", "termination_code": "SUCCESS",
                  "completion_time": "2026-03-01T12:00:01.250000Z"}]
    run, _ = create_run(Job.objects.get(id=job_id), trigger=Run.Trigger.JOB_COMPLETION, trigger_details={
        "job_completion": {"completed_jobs": completed}, "sql_condition": {"condition_evaluation_satisfied": True},
        "file_arrival": {"location": "/in"}})

    body = api.get_ok("jobs/runs/get", run_id=run.id)
    assert body["trigger"] == "JOB_COMPLETION"
    assert body["trigger_info"] == {"job_completion": {"completed_jobs": completed},
                                    "sql_condition": {"condition_evaluation_satisfied": True}}
