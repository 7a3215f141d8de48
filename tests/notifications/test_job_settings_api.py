"""The Jobs API takes notifications and health rules in the Databricks shapes and refuses bad
ones with 400 INVALID_PARAMETER_VALUE naming the field; the SDK's shapes round-trip."""

from notifications.models import Destination
from tests.api import conftest as api_fixtures
from tests.api.conftest import create_job, shell_task

alice, api = api_fixtures.alice, api_fixtures.api  # the API tests' fixtures


def refusal(api, **settings):
    response = api.post("jobs/create", {"name": "job", "tasks": [shell_task("t")], **settings})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    return body["message"]


def test_an_unknown_destination_is_refused_naming_the_field(api):
    message = refusal(api, webhook_notifications={"on_failure": [{"id": "no-such-destination"}]})
    assert "webhook_notifications.on_failure[0].id" in message and "no-such-destination" in message


def test_an_unknown_destination_on_a_task_names_the_task_field(api):
    response = api.post("jobs/create", {"name": "job", "tasks": [shell_task(
        "t", webhook_notifications={"on_start": [{"id": "gone"}]})]})
    assert response.status_code == 400
    assert "tasks[0].webhook_notifications.on_start[0].id" in response.json()["message"]


def test_bad_addresses_thresholds_and_metrics_are_refused_naming_each_field(api):
    message = refusal(api, email_notifications={"on_failure": ["not-an-address"]},
                      health={"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": -5},
                                        {"metric": "CPU_SECONDS", "op": "GREATER_THAN", "value": 5}]})
    assert "email_notifications.on_failure[0]" in message
    assert "health.rules[0].value" in message
    assert "health.rules[1].metric" in message


def test_more_than_three_destinations_for_one_event_are_refused(api):
    hooks = []
    for i in range(4):
        destination = Destination(display_name=f"d{i}", destination_type="WEBHOOK")
        destination.secrets = {"url": "http://127.0.0.1:9/"}
        destination.save()
        hooks.append({"id": destination.id})
    assert "at most 3" in refusal(api, webhook_notifications={"on_success": hooks})


def test_notifications_and_health_round_trip_through_jobs_get(api):
    destination = Destination(display_name="d", destination_type="WEBHOOK")
    destination.secrets = {"url": "http://127.0.0.1:9/"}
    destination.save()
    settings = {
        "email_notifications": {"on_failure": ["ops@example.com"], "no_alert_for_skipped_runs": True},
        "webhook_notifications": {"on_success": [{"id": destination.id}]},
        "notification_settings": {"no_alert_for_canceled_runs": True},
        "health": {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 600}]},
    }
    task = shell_task("t", notification_settings={"alert_on_last_attempt": True},
                      health={"rules": [{"metric": "STREAMING_BACKLOG_SECONDS", "op": "GREATER_THAN", "value": 60}]})
    job_id = create_job(api, tasks=[task], **settings)
    read = api.get_ok("jobs/get", job_id=job_id)["settings"]
    for name, value in settings.items():
        assert read[name] == value
    assert read["tasks"][0]["notification_settings"] == {"alert_on_last_attempt": True}
    assert read["tasks"][0]["health"] == task["health"]
