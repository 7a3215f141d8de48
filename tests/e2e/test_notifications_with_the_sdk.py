"""Notifications from a real `serve` process (SQLite) to real receivers on loopback: an SMTP
server, and HTTP servers playing Slack, Teams, PagerDuty and a generic webhook. Jobs and
destinations are made with the official databricks-sdk; what was sent is read from the
receivers and from the server's notification rows once the run's reactions ran."""

from collections import Counter
from datetime import timedelta

import pytest
from databricks.sdk.service import jobs, settings

from tests.e2e.conftest import start_serve
from tests.e2e.notification_rows import (answers_to, create_destination, emails_of, requests_for,
                                         settled_notifications, webhook_destination)
from tests.e2e.test_core_with_the_sdk import python_task
from tests.notification_receivers import HttpReceiver, SmtpReceiver

pytestmark = pytest.mark.e2e

WAIT = timedelta(minutes=3)
HOLD = """
# Runs at least argv[1] seconds, then until the file argv[2] exists (at most 120 s more).
import os, sys, time
time.sleep(float(sys.argv[1]))
deadline = time.monotonic() + 120
while not os.path.exists(sys.argv[2]):
    if time.monotonic() > deadline:
        raise SystemExit(f"{sys.argv[2]} never appeared")
    time.sleep(0.05)
print("released", flush=True)
"""


@pytest.fixture(scope="module")
def smtp():
    with SmtpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def pagerduty():
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def server(tmp_path_factory, smtp, pagerduty):
    server = start_serve(tmp_path_factory.mktemp("notify-serve"), extra_env={
        "EMAIL_HOST": smtp.host, "EMAIL_PORT": str(smtp.port),
        "LAKEFLOW_PAGERDUTY_EVENTS_URL": pagerduty.url("/v2/enqueue"),
        "LAKEFLOW_NOTIFICATION_BACKOFF_SECONDS": "0.5",
    })
    yield server
    server.stop()


@pytest.fixture
def hook():
    with HttpReceiver() as receiver:
        yield receiver


def test_a_task_that_succeeds_on_its_retry_sends_no_failure_alert(server, smtp, hook, tmp_path):
    w = server.client()
    target = webhook_destination(w, "retry hook", hook.url("/hook"))
    marker = tmp_path / "first-attempt-ran"
    # The first attempt fails and leaves the marker; the retry finds it and succeeds.
    task = python_task(server, "flaky", "fail_until_marker.py", str(marker), "create", max_retries=1,
                       email_notifications=jobs.TaskEmailNotifications(on_failure=["task-owner@example.com"]),
                       webhook_notifications=jobs.WebhookNotifications(on_failure=[jobs.Webhook(id=target)]))
    job = w.jobs.create(name="retried", tasks=[task],
                        email_notifications=jobs.JobEmailNotifications(on_failure=["job-owner@example.com"]),
                        webhook_notifications=jobs.WebhookNotifications(on_failure=[jobs.Webhook(id=target)],
                                                                        on_success=[jobs.Webhook(id=target)]))
    run = w.jobs.run_now(job_id=job.job_id).result(timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert sorted(t.attempt_number for t in run.tasks) == [0, 1]

    # Every reaction of the run ran (the failed attempt's too) and the sentinel was delivered.
    (row,) = settled_notifications(server, run.run_id)
    assert (row["event"], row["task_key"], row["recipient"], row["state"]) == (
        "on_success", "", f"destination:{target}", "SENT")
    assert [r.json["event_type"] for r in hook.requests] == ["jobs.on_success"]
    assert hook.requests[0].json["run"]["run_id"] == str(run.run_id)
    owners = {"task-owner@example.com", "job-owner@example.com"}
    assert [m for m in smtp.messages if owners & set(m.envelope_recipients)] == []


def test_a_failed_run_reaches_every_destination_once(server, smtp, pagerduty, hook):
    w = server.client()
    with HttpReceiver() as chat:
        slack = create_destination(w, "slack", slack=settings.SlackConfig(url=chat.url("/slack")))
        teams = create_destination(w, "teams", microsoft_teams=settings.MicrosoftTeamsConfig(url=chat.url("/teams")))
        pager = create_destination(w, "pager", pagerduty=settings.PagerdutyConfig(integration_key="e2e-routing-key"))
        flaky = webhook_destination(w, "flaky hook", hook.url("/hook"))
        hook.fail_first(2)
        # Three destinations per event at most (Databricks' limit): the generic webhook is the
        # failing task's own, the chat tools and PagerDuty the job's.
        task = python_task(server, "load", "fail.py",
                           webhook_notifications=jobs.WebhookNotifications(on_failure=[jobs.Webhook(id=flaky)]))
        addresses = ["ops@example.com", "lead@example.com"]
        job = w.jobs.create(name="fails for good", tasks=[task],
                            email_notifications=jobs.JobEmailNotifications(on_failure=addresses),
                            webhook_notifications=jobs.WebhookNotifications(
                                on_failure=[jobs.Webhook(id=d) for d in (slack, teams, pager)]))
        run = w.jobs.run_now(job_id=job.job_id).result(timeout=WAIT)
        assert run.state.result_state == jobs.RunResultState.FAILED

        rows = {row["recipient"]: row for row in settled_notifications(server, run.run_id)}
        assert set(rows) == {*(f"destination:{d}" for d in (slack, teams, pager, flaky)),
                             *(f"email:{a}" for a in addresses)}
        tries = {recipient: 1 for recipient in rows} | {f"destination:{flaky}": 3}
        assert {k: (r["event"], r["state"], r["tries"]) for k, r in rows.items()} == {
            k: ("on_failure", "SENT", n) for k, n in tries.items()}
        assert rows[f"destination:{flaky}"]["task_key"] == "load"

        assert answers_to(hook, rows[f"destination:{flaky}"]) == [500, 500, 200]
        for destination, receiver in ((slack, chat), (teams, chat), (pager, pagerduty)):
            assert answers_to(receiver, rows[f"destination:{destination}"]) == [200]
        assert Counter(r.path for r in chat.requests) == {"/slack": 1, "/teams": 1}
        (page,) = requests_for(pagerduty, rows[f"destination:{pager}"])
        assert (page.json["routing_key"], page.json["event_action"]) == ("e2e-routing-key", "trigger")
        for address in addresses:
            (message,) = emails_of(smtp, rows[f"email:{address}"])
            assert message.envelope_recipients == [address]
            assert str(run.run_id) in message["Subject"]


def test_a_slow_run_warns_once_per_duration_rule_and_still_ends(server, hook, tmp_path):
    w = server.client()
    target = webhook_destination(w, "duration hook", hook.url("/hook"))
    (server.workspace / "hold.py").write_text(HOLD.lstrip("\n"))
    released = tmp_path / "released"
    over_two_seconds = jobs.JobsHealthRules(rules=[jobs.JobsHealthRule(
        metric=jobs.JobsHealthMetric.RUN_DURATION_SECONDS, op=jobs.JobsHealthOperator.GREATER_THAN, value=2)])
    warn = jobs.WebhookNotifications(on_duration_warning_threshold_exceeded=[jobs.Webhook(id=target)])
    # Five seconds at least, and until both warnings arrived: a busy machine cannot end it first.
    task = python_task(server, "slow", "hold.py", "5", str(released), health=over_two_seconds,
                       webhook_notifications=warn)
    job = w.jobs.create(name="slow", tasks=[task], health=over_two_seconds, webhook_notifications=warn)
    waiter = w.jobs.run_now(job_id=job.job_id)

    hook.wait_for(2, timeout=120)
    released.touch()
    run = waiter.result(timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS  # a health rule never stops a run

    rows = settled_notifications(server, run.run_id)
    assert sorted((r["task_key"], r["event"], r["state"], r["tries"]) for r in rows) == [
        ("", "on_duration_warning_threshold_exceeded", "SENT", 1),
        ("slow", "on_duration_warning_threshold_exceeded", "SENT", 1)]
    assert len(hook.requests) == 2
    assert {r.json["event_type"] for r in hook.requests} == {"jobs.on_duration_warning_threshold_exceeded"}
    assert sorted(r.json.get("task", {}).get("task_key", "") for r in hook.requests) == ["", "slow"]
