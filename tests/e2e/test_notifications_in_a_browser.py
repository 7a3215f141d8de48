"""Notifications in Debian's Chromium against a real `serve`: a job made with the databricks-sdk
notifies two webhook destinations (made through the Notification Destinations API) that point at
real loopback receivers, one answering 200 and one failing, and an email address the server has
no SMTP server for. The run page shows its health warnings live while it runs and then, without
a reload, one notification sent with the receiver's answer, one retrying with the failing
receiver's answer, and the email failed; the job page lists whom each event notifies; the jobs
list tells the admin which job's notifications failed.

Screenshots land in test-artifacts/screenshots/ (look at them)."""

import re
import secrets

import pytest
from databricks.sdk.service import jobs
from playwright.sync_api import expect

from tests.e2e.notification_rows import webhook_destination
from tests.e2e.test_core_with_the_sdk import WAIT, python_task
from tests.e2e.test_dashboard_in_a_browser import node, shot, sign_in
from tests.notification_receivers import HttpReceiver

pytestmark = pytest.mark.e2e

LIVE = 60_000  # ms: how long the browser waits for the server to move on
HOLD = """
# Runs until the file argv[1] exists (at most five minutes).
import os, sys, time
deadline = time.monotonic() + 300
while not os.path.exists(sys.argv[1]):
    if time.monotonic() > deadline:
        raise SystemExit(f"{sys.argv[1]} never appeared")
    time.sleep(0.05)
print("released", flush=True)
"""


def test_the_run_page_shows_each_notification_with_its_state_and_the_receivers_answer(
        page, sqlite_server, tmp_path):
    server, w = sqlite_server, sqlite_server.client()
    suffix = secrets.token_hex(3)  # the server is shared by the session's tests
    (server.workspace / "hold_until_released.py").write_text(HOLD.lstrip("\n"))
    released = tmp_path / "released"
    over_one_second = jobs.JobsHealthRules(rules=[jobs.JobsHealthRule(
        metric=jobs.JobsHealthMetric.RUN_DURATION_SECONDS, op=jobs.JobsHealthOperator.GREATER_THAN, value=1)])

    with HttpReceiver() as good, HttpReceiver() as bad:
        bad.fail_first(10_000)
        ops = webhook_destination(w, f"Ops hook {suffix}", good.url("/ops"))
        flaky = webhook_destination(w, f"Flaky hook {suffix}", bad.url("/flaky"))
        job = w.jobs.create(
            name=f"notified {suffix}",
            tasks=[python_task(server, "slow", "hold_until_released.py", str(released), health=over_one_second)],
            health=over_one_second,
            webhook_notifications=jobs.WebhookNotifications(on_success=[jobs.Webhook(id=ops), jobs.Webhook(id=flaky)]),
            email_notifications=jobs.JobEmailNotifications(on_success=[f"ops-{suffix}@example.com"]))

        sign_in(page, server)
        waiter = w.jobs.run_now(job_id=job.job_id)
        page.goto(f"{server.url}/jobs/{job.job_id}/runs/{waiter.run_id}/")
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads

        # While it runs (held until we saw them): the run's and the task's duration warnings.
        expect(page.locator("#run-health .health-warning")).to_have_text("Duration warning: ran > 1 s", timeout=LIVE)
        expect(node(page, "slow")).to_have_attribute("data-health-warning", "Duration warning: ran > 1 s",
                                                     timeout=LIVE)
        card = page.locator("#notifications-card")
        expect(card).to_contain_text("No notifications for this run yet", timeout=LIVE)
        shot(page, "30-run-health-warnings")

        released.touch()
        run = waiter.result(timeout=WAIT)
        assert run.state.result_state == jobs.RunResultState.SUCCESS

        # The card fills in by itself: sent with the receiver's answer, retrying with the failing one's.
        sent = card.locator("tr.notification", has_text=f"Ops hook {suffix}")
        expect(sent).to_have_attribute("data-state", "SENT", timeout=LIVE)
        expect(sent.locator(".notification-state")).to_have_text("sent")
        expect(sent).to_contain_text('HTTP 200 {"status": "success", "message": "Event processed"}')
        retried = card.locator("tr.notification", has_text=f"Flaky hook {suffix}")
        expect(retried).to_have_attribute("data-state", re.compile("RETRYING|FAILED"), timeout=LIVE)
        expect(retried).to_contain_text("HTTP 500 boom")
        expect(retried).to_contain_text("the receiver answered HTTP 500")
        emailed = card.locator("tr.notification", has_text=f"ops-{suffix}@example.com")
        expect(emailed).to_have_attribute("data-state", "FAILED", timeout=LIVE)
        expect(emailed).to_contain_text("no SMTP server is configured")
        assert page.evaluate("window.__sameDocument") is True, "the run page reloaded instead of updating live"
        assert [r.path for r in good.wait_for(1)] == ["/ops"]
        bad.wait_for(1)
        shot(page, "31-run-notifications")

    # The job page: whom each event notifies, its health rules, and where destinations are defined.
    page.goto(f"{server.url}/jobs/{job.job_id}/")
    settings = page.locator("#notifications-card section[data-scope='job']")
    on_success = settings.locator("tr[data-event='on_success']")
    expect(on_success).to_contain_text(f"Ops hook {suffix}", timeout=LIVE)
    expect(on_success).to_contain_text(f"Flaky hook {suffix}")
    expect(on_success).to_contain_text(f"ops-{suffix}@example.com")
    expect(settings.locator(".health-rule")).to_have_text("RUN_DURATION_SECONDS > 1")
    expect(page.locator("#notifications-card section[data-task-key='slow'] .health-rule")).to_have_text(
        "RUN_DURATION_SECONDS > 1")
    expect(page.locator("#notification-destinations-link")).to_have_attribute("href", "/notification-destinations/")
    shot(page, "32-job-notification-settings")

    # The jobs list tells the admin which job's notifications failed, and in which run.
    page.goto(server.url + "/")
    entry = page.locator(f"#notification-failures-summary li[data-job-id='{job.job_id}']")
    expect(entry).to_contain_text(f"notified {suffix}", timeout=LIVE)
    expect(entry.locator(f"a[href='/jobs/{job.job_id}/runs/{run.run_id}/#notifications-card']")).to_be_visible()
    shot(page, "33-jobs-list-failed-notifications")
