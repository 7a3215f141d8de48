"""What the pages show of notifications, with Django's test client: the run's Notifications card
(rows made by driving a run and delivering to real loopback receivers), the job's card, the jobs
list's summary of failed notifications for admins, who may see them, and the health warnings of
the run page (the runs app's own run.health_warning events)."""

import html
import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from notifications.delivery import deliver_due
from notifications.health import watch_run_durations
from notifications.models import Notification
from runs.admission import create_run
from runs.dispatch import finish_attempt
from runs.engine.endings import attempt_ended
from runs.engine.states import RunResultState as R
from runs.models import TaskRun
from tests.notification_receivers import HttpReceiver
from tests.notifications import test_core_flow as core_flow
from tests.runs.conftest import claim_attempt, make_job, shell


@pytest.fixture
def browser(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def admin(transactional_db):
    return get_user_model().objects.create_superuser("root", password="x")


def page(client, url, status=200):
    response = client.get(url)
    assert response.status_code == status, response.content[:500]
    return response.content.decode()


def webhook(name, url):
    return core_flow.webhook(url, name)


finish_all = core_flow.finish_all


def rows(body):
    """{(event, task key, recipient cell text): (state, the whole row's html)} of the run card."""
    found = {}
    for row in re.findall(r'<tr class="notification".*?</tr>', body, re.S):
        state, event, task_key = re.search(r'data-state="(\w+)" data-event="(\w+)" data-task-key="([^"]*)"', row).groups()
        recipient = re.search(r'class="notification-recipient">(.*?)</td>', row, re.S).group(1)
        text = " ".join(re.sub(r"<[^>]+>", " ", recipient).split())
        found[(event, task_key, html.unescape(text))] = (state, row)
    return found


def run_card(client, run):
    return page(client, f"/notifications/runs/{run.id}/card/")


# --- the run's card -------------------------------------------------------------------------------


def test_the_run_card_lists_job_and_task_notifications_with_state_tries_and_the_receivers_answer(browser, alice, broker):
    with HttpReceiver() as good, HttpReceiver() as bad:
        bad.fail_first(100)
        ops = webhook("Ops hook", good.url())
        flaky = webhook("Flaky hook", bad.url())
        job = make_job(alice, [shell("t", email_notifications={"on_success": ["owner@example.com"]})],
                       webhook_notifications={"on_success": [{"id": ops.id}, {"id": flaky.id}]})
        run, _ = create_run(job)
        finish_all(run, R.SUCCESS)
        assert sorted(deliver_due()) == ["RETRYING", "SENT", "SENT"]

    body = run_card(browser, run)
    shown = rows(body)
    assert set(shown) == {("on_success", "", "Ops hook Webhook"), ("on_success", "", "Flaky hook Webhook"),
                          ("on_success", "t", "owner@example.com email")}
    state, row = shown[("on_success", "", "Ops hook Webhook")]
    assert state == "SENT" and "state-success" in row
    assert "HTTP 200 {&quot;status&quot;: &quot;success&quot;" in row
    state, row = shown[("on_success", "", "Flaky hook Webhook")]
    assert state == "RETRYING" and "state-retrying" in row and "next try" in row
    assert "the receiver answered HTTP 500" in row and "HTTP 500 boom" in row
    assert re.search(r'<td class="text-end">1</td>', row)  # tries
    state, row = shown[("on_success", "t", "owner@example.com email")]
    assert state == "SENT" and "accepted by" in row
    assert "data-notifications-live" in body  # one is still to be tried again


def test_the_run_card_stops_refreshing_once_every_notification_is_final_and_the_run_ended(browser, alice, broker):
    with HttpReceiver() as good:
        ops = webhook("Ops hook", good.url())
        job = make_job(alice, [shell("t")], webhook_notifications={"on_start": [{"id": ops.id}],
                                                                  "on_success": [{"id": ops.id}]})
        run, _ = create_run(job)
        [attempt] = TaskRun.objects.filter(run=run)
        claim_attempt(attempt.id)
        assert deliver_due() == ["SENT"]
        # Running: the on_start row is final, but the run may still notify.
        assert "data-notifications-live" in run_card(browser, run)
        finish_attempt(attempt.id, attempt_ended(R.SUCCESS))
        assert "data-notifications-live" in run_card(browser, run)  # on_success not sent yet
        assert deliver_due() == ["SENT"]

    body = run_card(browser, run)
    assert [state for state, _ in rows(body).values()] == ["SENT", "SENT"]
    assert "data-notifications-live" not in body


def test_a_receivers_hostile_answer_is_escaped_and_a_long_one_cut_short_with_the_whole_on_expand(browser, alice, broker):
    job = make_job(alice, [shell("t")], email_notifications={"on_failure": ["ops@example.com"]})
    run, _ = create_run(job)
    finish_all(run, R.FAILED)
    hostile = "<script>alert('pwned')</script><img src=x onerror=alert(1)>"
    long_error = "the receiver said: " + "x" * 400 + " THE END"
    Notification.objects.filter(run=run).update(state="FAILED", next_try_at=None, answer=hostile, error=long_error)

    body = run_card(browser, run)
    assert "<script>" not in body and "<img" not in body
    assert html.escape(hostile) in body
    details = re.search(r"<details[^>]*notification-error[^>]*>(.*?)</details>", body, re.S).group(1)
    summary = re.search(r"<summary[^>]*>(.*?)</summary>", details, re.S).group(1)
    assert "THE END" not in summary and summary.endswith("…")
    assert long_error in details


def test_a_deleted_destination_shows_as_such_with_its_failure(browser, alice, broker):
    with HttpReceiver() as good:
        gone = webhook("Gone hook", good.url())
        gone_id = gone.id
        job = make_job(alice, [shell("t")], webhook_notifications={"on_failure": [{"id": gone_id}]})
        gone.delete()
        run, _ = create_run(job)
        finish_all(run, R.FAILED)

    [(key, (state, row))] = rows(run_card(browser, run)).items()
    assert key[2].startswith("deleted destination") and state == "FAILED"
    assert f"the notification destination {gone_id} no longer exists" in row


def test_a_run_without_notifications_says_so_and_hints_when_its_job_sets_none(browser, alice, broker):
    quiet, _ = create_run(make_job(alice, [shell("t")]))
    finish_all(quiet, R.SUCCESS)
    body = run_card(browser, quiet)
    assert "No notifications for this run." in body and "notifications-hint" in body
    assert "data-notifications-live" not in body

    # A job that notifies only on failure: a success tells no one, and the card says no more.
    watched, _ = create_run(make_job(alice, [shell("t")], email_notifications={"on_failure": ["ops@example.com"]}))
    finish_all(watched, R.SUCCESS)
    body = run_card(browser, watched)
    assert "No notifications for this run." in body and "notifications-hint" not in body
    assert "data-notifications-live" not in body


def test_the_run_page_and_the_job_page_fetch_their_notification_cards(browser, alice, broker):
    job = make_job(alice, [shell("t")])
    run, _ = create_run(job)
    run_page = page(browser, f"/jobs/{job.id}/runs/{run.id}/")
    assert f'data-notifications-url="/notifications/runs/{run.id}/card/"' in run_page
    assert "notification_fragments.js" in run_page
    job_page = page(browser, f"/jobs/{job.id}/")
    assert f'data-notifications-url="/notifications/jobs/{job.id}/card/"' in job_page
    assert 'href="/notification-destinations/"' in job_page and "notification_fragments.js" in job_page


# --- the job's card -------------------------------------------------------------------------------


def test_the_job_card_lists_whom_each_event_notifies_per_task_with_mutes_and_health_rules(browser, alice, broker):
    ops, pager = webhook("Ops hook", "http://127.0.0.1:9/a"), webhook("Pager", "http://127.0.0.1:9/b")
    job = make_job(alice, [
        shell("a", webhook_notifications={"on_failure": [{"id": ops.id}, {"id": pager.id}]},
              notification_settings={"alert_on_last_attempt": False},
              health={"rules": [{"metric": "STREAMING_BACKLOG_SECONDS", "op": "GREATER_THAN", "value": 300}]}),
        shell("b")],
        email_notifications={"on_failure": ["ops@example.com"], "on_success": ["boss@example.com"]},
        webhook_notifications={"on_start": [{"id": ops.id}]},
        notification_settings={"no_alert_for_canceled_runs": True},
        health={"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 120}]})
    pager_id = pager.id
    pager.delete()

    body = page(browser, f"/notifications/jobs/{job.id}/card/")
    sections = dict(re.findall(r'<section class="notification-settings[^"]*" data-scope="\w+" data-task-key="([^"]*)">'
                               r'(.*?)</section>', body, re.S))
    assert set(sections) == {"", "a"}  # b sets nothing
    job_level = sections[""]
    event_row = lambda block, event: re.search(f'data-event="{event}">(.*?)</tr>', block, re.S).group(1)  # noqa: E731
    assert "ops@example.com" in event_row(job_level, "on_failure")
    assert "boss@example.com" in event_row(job_level, "on_success")
    assert "Ops hook" in event_row(job_level, "on_start") and "Webhook" in event_row(job_level, "on_start")
    assert 'data-mute="no_alert_for_canceled_runs"' in job_level
    assert "RUN_DURATION_SECONDS</code> &gt; 120" in job_level
    task_a = event_row(sections["a"], "on_failure")
    assert "Ops hook" in task_a and f"unknown destination <span class=\"font-monospace\">{pager_id}" in task_a
    assert 'data-mute="alert_on_last_attempt"' in sections["a"] and ": false" in sections["a"]
    assert "STREAMING_BACKLOG_SECONDS</code> &gt; 300" in sections["a"]


def test_the_job_card_says_none_for_a_job_that_notifies_no_one(browser, alice):
    job = make_job(alice, [shell("t")])
    body = page(browser, f"/notifications/jobs/{job.id}/card/")
    assert body.count("<section") == 1
    assert "Notifies: None" in body and "Mutes: None" in body and "Health rules: None" in body


def test_the_cards_need_sign_in_and_view_permission_on_the_job(client, alice, admin, broker):
    job = make_job(alice, [shell("t")], email_notifications={"on_failure": ["ops@example.com"]})
    run, _ = create_run(job)
    finish_all(run, R.FAILED)
    urls = [f"/notifications/runs/{run.id}/card/", f"/notifications/jobs/{job.id}/card/"]
    for url in urls:
        assert client.get(url).status_code == 302  # to sign in
    client.force_login(get_user_model().objects.create_user("bob"))
    for url in urls:
        body = page(client, url, status=403)
        assert "ops@example.com" not in body
    client.force_login(admin)
    assert "ops@example.com" in page(client, urls[0]) and "ops@example.com" in page(client, urls[1])
    page(client, "/notifications/runs/999999/card/", status=404)


# --- the jobs list's summary, for admins ----------------------------------------------------------


def failed_notification(run, recipient, at):
    return Notification.objects.create(run=run, event="on_failure", cause=f"job:on_failure:{recipient}",
                                       recipient=recipient, channel="EMAIL", state="FAILED", created_at=at,
                                       error="no SMTP server is configured (set EMAIL_HOST)")


def test_admins_see_failed_notifications_of_the_last_week_per_job_with_the_latest_run(client, alice, admin, broker):
    noisy = make_job(alice, [shell("t")], name="noisy")
    fine = make_job(alice, [shell("t")], name="fine")
    now = timezone.now()
    first, _ = create_run(noisy)
    latest, _ = create_run(noisy)
    other, _ = create_run(fine)
    failed_notification(first, "email:a@example.com", now - timedelta(days=1))
    failed_notification(latest, "email:a@example.com", now - timedelta(hours=1))
    failed_notification(first, "email:old@example.com", now - timedelta(days=8))  # too old to count
    failed_notification(other, "email:old@example.com", now - timedelta(days=8))
    Notification.objects.create(run=other, event="on_failure", cause="c", recipient="email:b@example.com",
                                channel="EMAIL", state="SENT", created_at=now)

    client.force_login(admin)
    body = page(client, "/notifications/failures/")
    [(job_id, entry)] = re.findall(r'<li class="notification-failures" data-job-id="(\d+)">(.*?)</li>', body, re.S)
    assert int(job_id) == noisy.id and "noisy" in entry
    assert '<span class="failed-count">2</span>' in entry
    assert f'href="/jobs/{noisy.id}/runs/{latest.id}/#notifications-card"' in entry
    assert "2 notifications failed in the last 7 days" in body
    assert 'data-notifications-url="/notifications/failures/"' in page(client, "/")

    # Anyone else sees nothing of it, not even of their own jobs.
    client.force_login(alice)
    assert page(client, "/notifications/failures/") == ""
    assert "/notifications/failures/" not in page(client, "/")


def test_the_summary_is_empty_when_no_notification_failed(client, admin, alice, broker):
    run, _ = create_run(make_job(alice, [shell("t")]))
    failed_notification(run, "email:old@example.com", timezone.now() - timedelta(days=8))
    client.force_login(admin)
    assert page(client, "/notifications/failures/") == ""


# --- health warnings on the run page --------------------------------------------------------------


def test_health_warnings_show_in_the_run_header_and_on_the_tasks_node(browser, alice, broker):
    job = make_job(alice, [shell("slow", health={"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN",
                                                             "value": 1}]}), shell("quick")],
                   health={"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 2}]})
    run, _ = create_run(job)
    for attempt in TaskRun.objects.filter(run=run):
        claim_attempt(attempt.id)
    assert watch_run_durations(timezone.now() + timedelta(seconds=30)) == 2  # the run's and slow's; quick has no rule

    snapshot = json.loads(page(browser, f"/runs/{run.id}/state/"))
    assert [(w["task_key"], w["label"]) for w in snapshot["warnings"]] == [
        ("", "Duration warning: ran > 2 s"), ("slow", "Duration warning: ran > 1 s")]
    body = page(browser, f"/jobs/{job.id}/runs/{run.id}/")
    header = re.search(r'<span id="run-health">(.*?)</span></h1>', body, re.S).group(1)
    assert "Duration warning: ran &gt; 2 s" in header and "ran &gt; 1 s" not in header
    assert "Health warning: Task slow has been running for" in body  # the Events card


def test_a_run_of_a_job_without_health_rules_has_no_warnings(browser, alice, broker):
    run, _ = create_run(make_job(alice, [shell("t")]))
    claim_attempt(TaskRun.objects.get(run=run).id)
    assert watch_run_durations(timezone.now() + timedelta(days=1)) == 0
    assert json.loads(page(browser, f"/runs/{run.id}/state/"))["warnings"] == []
