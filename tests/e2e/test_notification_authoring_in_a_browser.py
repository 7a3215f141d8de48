"""Notifications authored in the job form, in Debian's Chromium against a real `serve`: an admin
defines a webhook destination through the Notification Destinations API, opens a job made with
the SDK in the form, sees a bad address refused on its field, then sets an address on failure,
the destination on success and a duration warning; the SDK reads back exactly that."""

import secrets

import pytest
from databricks.sdk.errors import NotFound
from databricks.sdk.service import jobs
from databricks.sdk.service.settings import Config, GenericWebhookConfig
from playwright.sync_api import expect

from tests.e2e.test_dashboard_in_a_browser import shot, sign_in

pytestmark = pytest.mark.e2e

NOTIFICATION_KEYS = ("email_notifications", "webhook_notifications", "notification_settings", "health")


def create_destination(server, w, name):
    """A generic webhook destination, through the API; through the model where this server has
    no such API yet (it is built beside this form)."""
    try:
        return w.notification_destinations.create(
            display_name=name, config=Config(generic_webhook=GenericWebhookConfig(url="https://hooks.example.com/x"))).id
    except NotFound:
        return server.manage("shell", "-c", (
            "from notifications.models import Destination\n"
            f"d = Destination(display_name={name!r}, destination_type='WEBHOOK')\n"
            "d.secrets = {'url': 'https://hooks.example.com/x'}\n"
            "d.save()\n"
            "print(d.id)")).strip().splitlines()[-1]


def test_an_admin_sets_notifications_in_the_job_form_and_the_sdk_reads_them_back(page, sqlite_server):
    server, w = sqlite_server, sqlite_server.client()
    suffix = secrets.token_hex(3)
    hook = create_destination(server, w, f"On-call hook {suffix}")
    spares = [create_destination(server, w, f"Spare hook {suffix} {i}") for i in range(3)]
    job_id = w.jobs.create(
        name=f"notified {suffix}",
        tasks=[jobs.Task(task_key="t", spark_python_task=jobs.SparkPythonTask(python_file=server.script("ok.py")))],
    ).job_id
    before = w.jobs.get(job_id).settings.as_dict()

    sign_in(page, server)
    page.goto(server.url + f"/jobs/{job_id}/edit/")
    page.fill("#id_email_on_failure", "not-an-address")
    page.click("#save-job")
    expect(page.locator("#div_id_email_on_failure")).to_contain_text("'not-an-address' is not a valid email address")
    expect(page.locator("#id_email_on_failure")).to_have_value("not-an-address")
    shot(page, "45-job-form-notification-problem")
    assert w.jobs.get(job_id).settings.as_dict() == before

    # A fourth destination for one event is flagged while choosing, before any save.
    page.select_option("#id_destinations_on_start", [hook, *spares])
    expect(page.locator("#div_id_destinations_on_start .too-many-destinations")).to_have_text(
        "At most 3 destinations per event.")
    page.select_option("#id_destinations_on_start", [])
    expect(page.locator("#div_id_destinations_on_start .too-many-destinations")).to_have_text("")

    page.fill("#id_email_on_failure", "ops@example.com")
    page.select_option("#id_destinations_on_success", hook)
    page.fill("#id_duration_warning_seconds", "900")
    shot(page, "46-job-form-notifications")
    page.click("#save-job")
    expect(page.locator("h1")).to_contain_text(f"notified {suffix}")

    after = w.jobs.get(job_id).settings.as_dict()
    assert after["email_notifications"] == {"on_failure": ["ops@example.com"]}
    assert after["webhook_notifications"] == {"on_success": [{"id": hook}]}
    assert after["health"] == {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 900}]}
    assert "notification_settings" not in after
    # Nothing else changed: not the job's other settings, not its task.
    assert {k: v for k, v in after.items() if k not in NOTIFICATION_KEYS} == \
        {k: v for k, v in before.items() if k not in NOTIFICATION_KEYS}
