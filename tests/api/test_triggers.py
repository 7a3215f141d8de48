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
