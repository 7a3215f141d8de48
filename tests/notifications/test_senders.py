"""Every channel's message on the wire, as real receivers on loopback get it: Slack, Teams,
PagerDuty and generic webhooks over HTTP, email over SMTP; and which answers are worth another try."""

import base64
import contextlib
import smtplib

import pytest

from notifications import messages
from notifications.delivery import deliver_due
from notifications.destinations import update_destination
from notifications.models import Destination, Notification
from notifications.senders import DeliveryFailed, Outgoing, send, send_test, smtp_failure
from runs.admission import create_run
from runs.dispatch import finish_attempt
from runs.engine.endings import attempt_ended
from runs.engine.states import RunLifeCycleState as L, RunResultState as R
from runs.models import TaskRun
from tests.notification_receivers import HttpReceiver, SmtpReceiver, _free_port
from tests.runs.conftest import claim_attempt, make_job, shell

BASE_URL = "https://lakeflow.example.com"
JOB_NAME = "nightly <etl> & co"  # Slack's three control characters, and HTML's
ERROR = "exit status 1: x < y & z"
TEAMS_JOB_NAME = r"nightly \<etl\> & co"  # JOB_NAME escaped for the markdown of Teams
TEAMS_ERROR = r"exit status 1: x \< y & z"


@pytest.fixture
def hook():
    with HttpReceiver() as receiver:
        yield receiver


@contextlib.contextmanager
def smtp_server(settings, **options):
    """A real SMTP receiver that Django's SMTP backend sends to (SmtpReceiver's options)."""
    with SmtpReceiver(**options) as receiver:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = receiver.host, receiver.port
        yield receiver


@pytest.fixture
def smtp(settings):
    with smtp_server(settings) as receiver:
        yield receiver


@pytest.fixture(autouse=True)
def base_url(settings):
    settings.LAKEFLOW_BASE_URL = BASE_URL


def destination(kind, config=None, **secrets):
    made = Destination(display_name=kind.lower(), destination_type=kind, config=config or {})
    made.secrets = secrets
    made.save()
    return made


def failed_run(user, destination=None, emails=None, result=R.FAILED, task_level=True):
    """A one-task run that ended ``result``, telling the destination (or the emails) at job level
    and at task level: its (job-level, task-level) notifications (the first of each)."""
    event = "on_success" if result == R.SUCCESS else "on_failure"
    notify = {}
    if destination is not None:
        notify["webhook_notifications"] = {event: [{"id": destination.id}]}
    if emails:
        notify["email_notifications"] = {event: emails}
    job = make_job(user, [shell("load", **(notify if task_level else {}))], name=JOB_NAME, **notify)
    run, _ = create_run(job)
    for attempt in TaskRun.objects.filter(run=run, life_cycle_state=L.PENDING):
        finish_attempt(claim_attempt(attempt.id).id, attempt_ended(result, ERROR if result != R.SUCCESS else ""))
    rows = Notification.objects.filter(run=run).order_by("id")
    return rows.filter(task_key="").first(), rows.filter(task_key="load").first()


def received_by(receiver, *rows):
    """Each notification's request, found by its delivery id, once all were delivered."""
    assert deliver_due() == ["SENT"] * len(rows)
    requests = {r.headers["lakeflow-delivery-id"]: r for r in receiver.wait_for(len(rows))}
    assert len(requests) == len(rows)
    return [requests[f"lakeflow-notification-{row.id}"] for row in rows]


def test_slack_gets_the_headline_the_error_and_a_link_to_the_run_with_its_text_escaped(alice, broker, hook):
    slack = destination("SLACK", url=hook.url("/services/T0/B0/x"))
    job_row, task_row = failed_run(alice, slack)
    job_request, task_request = received_by(hook, job_row, task_row)

    run_id, run_url = job_row.run_id, f"{BASE_URL}/jobs/{job_row.run.job_id}/runs/{job_row.run_id}/"
    assert job_request.path == "/services/T0/B0/x"
    assert job_request.headers["content-type"] == "application/json"
    job_message = job_request.json
    assert job_message["text"] == f"Run {run_id} of job nightly &lt;etl&gt; &amp; co failed"
    section, error, context = job_message["blocks"]
    assert section == {"type": "section", "text": {"type": "mrkdwn", "text": f"*{job_message['text']}*"}}
    assert error == {"type": "section", "text": {"type": "mrkdwn", "text": "Task 'load' failed"}}
    assert context["type"] == "context"
    assert context["elements"][0] == {"type": "mrkdwn", "text": f"<{run_url}|View run>"}
    assert "Result: FAILED" in context["elements"][1]["text"]

    task_message = task_request.json
    assert task_message["text"] == f"Run {run_id} of task load of job nightly &lt;etl&gt; &amp; co failed"
    assert task_message["blocks"][1]["text"]["text"] == "exit status 1: x &lt; y &amp; z"
    assert "Task: load" in task_message["blocks"][2]["elements"][1]["text"]
    assert Notification.objects.get(id=task_row.id).answer == 'HTTP 200 {"status": "success", "message": "Event processed"}'


def test_teams_gets_an_adaptive_card_with_the_facts_and_a_button_to_the_run(alice, broker, hook):
    teams = destination("MICROSOFT_TEAMS", url=hook.url("/workflows/teams"))
    job_row, task_row = failed_run(alice, teams)
    job_request, task_request = received_by(hook, job_row, task_row)

    run_url = f"{BASE_URL}/jobs/{job_row.run.job_id}/runs/{job_row.run_id}/"
    message = task_request.json
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["$schema"], card["type"], card["version"]) == (
        "http://adaptivecards.io/schemas/adaptive-card.json", "AdaptiveCard", "1.4")
    headline, error, facts = card["body"]
    assert headline["type"] == "TextBlock" and headline["wrap"] is True
    assert headline["text"] == f"Run {job_row.run_id} of task load of job {TEAMS_JOB_NAME} failed"
    assert (error["type"], error["text"]) == ("TextBlock", TEAMS_ERROR)
    assert facts["type"] == "FactSet"
    values = {fact["title"]: fact["value"] for fact in facts["facts"]}
    assert (values["Job"], values["Run"], values["Task"], values["Result"]) == (
        rf"{TEAMS_JOB_NAME} \({job_row.run.job_id}\)", str(job_row.run_id), "load", "FAILED")
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "View run", "url": run_url}]

    job_card = job_request.json["attachments"][0]["content"]
    assert job_card["body"][0]["text"] == f"Run {job_row.run_id} of job {TEAMS_JOB_NAME} failed"
    assert "Task" not in {fact["title"] for fact in job_card["body"][2]["facts"]}


def test_pagerduty_triggers_a_critical_incident_per_job_and_per_task(alice, broker, hook, settings):
    settings.LAKEFLOW_PAGERDUTY_EVENTS_URL = hook.url("/v2/enqueue")
    pagerduty = destination("PAGERDUTY", integration_key="R0UT1NGKEY")
    job_row, task_row = failed_run(alice, pagerduty)
    job_request, task_request = received_by(hook, job_row, task_row)

    job_id, run_url = job_row.run.job_id, f"{BASE_URL}/jobs/{job_row.run.job_id}/runs/{job_row.run_id}/"
    event = job_request.json
    assert job_request.path == "/v2/enqueue"
    assert (event["routing_key"], event["event_action"], event["dedup_key"]) == (
        "R0UT1NGKEY", "trigger", f"lakeflow-job-{job_id}")
    payload = event["payload"]
    assert payload["summary"] == f"Run {job_row.run_id} of job {JOB_NAME} failed: Task 'load' failed"
    assert (payload["source"], payload["severity"], payload["component"], payload["class"]) == (
        "lakeflow.example.com", "critical", JOB_NAME, "on_failure")
    assert payload["timestamp"].endswith("Z") and payload["timestamp"].startswith("20")
    assert payload["custom_details"] == job_row.facts
    assert event["links"] == [{"href": run_url, "text": "View run"}]
    assert event["client"] == "Lakeflow Jobs"

    assert task_request.json["dedup_key"] == f"lakeflow-job-{job_id}-task-load"
    assert task_request.json["payload"]["summary"].endswith(f"failed: {ERROR}")


def test_a_success_resolves_the_pagerduty_incident_of_the_failure(alice, broker, hook, settings):
    settings.LAKEFLOW_PAGERDUTY_EVENTS_URL = hook.url("/v2/enqueue")
    pagerduty = destination("PAGERDUTY", integration_key="R0UT1NGKEY")
    job_row, task_row = failed_run(alice, pagerduty, result=R.SUCCESS)
    job_request, task_request = received_by(hook, job_row, task_row)
    assert (job_request.json["event_action"], job_request.json["dedup_key"]) == (
        "resolve", f"lakeflow-job-{job_row.run.job_id}")
    assert (task_request.json["event_action"], task_request.json["dedup_key"]) == (
        "resolve", f"lakeflow-job-{job_row.run.job_id}-task-load")


def test_a_generic_webhook_gets_databricks_json_with_basic_auth_when_a_username_is_set(alice, broker, hook):
    webhook = destination("WEBHOOK", url=hook.url("/alerts"), username="lakeflow", password="s3cret:pw")
    job_row, task_row = failed_run(alice, webhook)
    job_request, task_request = received_by(hook, job_row, task_row)

    job_id, run_id = str(job_row.run.job_id), str(job_row.run_id)
    assert job_request.json == {"event_type": "jobs.on_failure", "workspace_id": "0", "run": {"run_id": run_id},
                                "job": {"job_id": job_id, "name": JOB_NAME}}
    assert task_request.json == {"event_type": "jobs.on_failure", "workspace_id": "0", "task": {"task_key": "load"},
                                 "run": {"run_id": str(task_row.facts["task_run_id"]), "parent_run_id": run_id},
                                 "job": {"job_id": job_id, "name": JOB_NAME}}
    for request in (job_request, task_request):
        assert request.headers["authorization"] == "Basic " + base64.b64encode(b"lakeflow:s3cret:pw").decode()
        assert request.headers["user-agent"].startswith("lakeflow-notifications/")


def test_a_generic_webhook_without_a_username_sends_no_authorization(alice, broker, hook):
    job_row, _ = failed_run(alice, destination("WEBHOOK", url=hook.url("/alerts")))
    deliver_due()
    assert all("authorization" not in r.headers for r in hook.wait_for(2))


def test_email_goes_over_smtp_to_each_address_with_a_text_and_an_html_part(alice, broker, smtp):
    team = destination("EMAIL", config={"addresses": ["oncall@example.com", "data@example.com"]})
    job_row, task_row = failed_run(alice, team, emails=["owner@example.com"])
    rows = Notification.objects.filter(run=job_row.run).order_by("id")
    assert sorted(r.recipient for r in rows if r.task_key == "") == [
        f"destination:{team.id}", "email:owner@example.com"]
    assert deliver_due() == ["SENT"] * 4
    emails = smtp.wait_for(4)
    by_id = {message["Lakeflow-Delivery-Id"]: message for message in emails}
    assert len(by_id) == 4

    to_team = by_id[f"lakeflow-notification-{rows.get(task_key='load', destination=team).id}"]
    assert sorted(to_team.envelope_recipients) == ["data@example.com", "oncall@example.com"]
    assert to_team["Subject"] == f"[Lakeflow] Run {job_row.run_id} of task load of job {JOB_NAME} failed"
    text = to_team.get_body(("plain",)).get_content()
    assert ERROR in text and f"Run page: {BASE_URL}/jobs/{job_row.run.job_id}/runs/{job_row.run_id}/" in text
    html = to_team.get_body(("html",)).get_content()
    assert "x &lt; y &amp; z" in html and "nightly &lt;etl&gt; &amp; co" in html and "<etl>" not in html

    to_owner = by_id[f"lakeflow-notification-{rows.get(task_key='', recipient='email:owner@example.com').id}"]
    assert to_owner.envelope_recipients == ["owner@example.com"]
    assert to_owner["Subject"] == f"[Lakeflow] Run {job_row.run_id} of job {JOB_NAME} failed"
    answers = {r.recipient: r.answer for r in Notification.objects.filter(run=job_row.run, task_key="")}
    # The destination's addresses are for admins; the job's own are in its settings, seen by its viewers.
    assert answers == {f"destination:{team.id}": "accepted by the SMTP server for 2 addresses",
                       "email:owner@example.com": f"accepted by {smtp.host}:{smtp.port} for owner@example.com"}


def test_email_without_an_smtp_server_fails_at_once_saying_so(alice, broker, settings):
    settings.EMAIL_BACKEND, settings.EMAIL_HOST = "django.core.mail.backends.smtp.EmailBackend", ""
    job_row, _ = failed_run(alice, emails=["owner@example.com"])
    assert deliver_due() == ["FAILED", "FAILED"]
    assert "set EMAIL_HOST" in Notification.objects.get(id=job_row.id).error


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 301])
def test_an_answer_that_says_the_url_or_payload_is_wrong_is_a_permanent_failure(alice, broker, hook, status):
    job_row, _ = failed_run(alice, destination("SLACK", url=hook.url()))
    hook.fail_first(1, status=status)
    with pytest.raises(DeliveryFailed) as failure:
        send(job_row)
    assert failure.value.permanent
    assert failure.value.answer == f"HTTP {status} boom"
    assert hook.wait_for(1, answered=True)[0].answered == status


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_an_answer_that_may_pass_next_time_is_retried(alice, broker, hook, status):
    job_row, _ = failed_run(alice, destination("MICROSOFT_TEAMS", url=hook.url()))
    hook.fail_first(1, status=status)
    with pytest.raises(DeliveryFailed) as failure:
        send(job_row)
    assert not failure.value.permanent
    assert failure.value.answer == f"HTTP {status} boom"
    assert send(job_row).startswith("HTTP 200 ")


def test_a_refused_connection_is_retried(alice, broker):
    job_row, _ = failed_run(alice, destination("WEBHOOK", url=f"http://127.0.0.1:{_free_port()}/gone"))
    with pytest.raises(DeliveryFailed) as failure:
        send(job_row)
    assert not failure.value.permanent and failure.value.answer == ""
    assert "ConnectionError" in str(failure.value)


def test_an_error_never_shows_the_secret_path_of_a_webhook_url(alice, broker):
    # A Slack or Teams webhook URL's path is its credential; errors show on the run page.
    url = f"http://127.0.0.1:{_free_port()}/services/T0001/B0002/s3cr3tT0k3n?sig=also-secret"
    job_row, _ = failed_run(alice, destination("SLACK", url=url))
    with pytest.raises(DeliveryFailed) as failure:
        send(job_row)
    assert "ConnectionError" in str(failure.value)
    assert "s3cr3tT0k3n" not in str(failure.value) and "also-secret" not in str(failure.value)


@pytest.mark.parametrize("secrets", [{}, {"url": "ftp://example.com/hook"}, {"url": "not a url"}])
def test_a_destination_without_a_usable_url_fails_permanently_naming_it(alice, broker, secrets):
    job_row, _ = failed_run(alice, destination("SLACK", **secrets))
    with pytest.raises(DeliveryFailed) as failure:
        send(job_row)
    assert failure.value.permanent
    assert "SLACK destination" in str(failure.value)


@pytest.mark.parametrize("kind", ["SLACK", "MICROSOFT_TEAMS", "PAGERDUTY", "WEBHOOK"])
def test_a_destination_test_goes_through_its_channel_with_no_run(db, hook, settings, kind):
    settings.LAKEFLOW_PAGERDUTY_EVENTS_URL = hook.url("/v2/enqueue")
    made = destination(kind, url=hook.url("/test"), integration_key="R0UT1NGKEY")
    answer = send_test(made)
    assert answer.startswith("HTTP 200 ")
    [request] = hook.wait_for(1)
    assert request.headers["lakeflow-delivery-id"].startswith("lakeflow-test-")
    said = request.json
    expected = {"SLACK": lambda: said["text"], "PAGERDUTY": lambda: said["payload"]["summary"],
                "MICROSOFT_TEAMS": lambda: said["attachments"][0]["content"]["body"][0]["text"],
                "WEBHOOK": lambda: said["message"]}[kind]()
    assert expected.startswith("Test notification from Lakeflow Jobs")
    if kind == "PAGERDUTY":
        assert (said["event_action"], said["payload"]["severity"]) == ("trigger", "info")
    if kind == "WEBHOOK":
        assert said["event_type"] == "jobs.test"


def test_an_email_destination_test_reaches_every_address(db, smtp):
    made = destination("EMAIL", config={"addresses": ["a@example.com", "b@example.com"]})
    assert send_test(made).startswith("accepted by ")
    [message] = smtp.wait_for(1)
    assert message["Subject"] == "[Lakeflow] Test notification from Lakeflow Jobs"
    assert sorted(message.envelope_recipients) == ["a@example.com", "b@example.com"]


def test_a_destination_test_that_is_refused_raises_with_the_answer(db, hook):
    hook.fail_first(1, status=404)
    with pytest.raises(DeliveryFailed) as failure:
        send_test(destination("SLACK", url=hook.url()))
    assert failure.value.permanent and failure.value.answer == "HTTP 404 boom"


def test_a_redirect_shows_only_the_host_it_points_to_and_never_the_webhook_urls_secret(alice, broker, hook, caplog):
    # A Slack URL's path and query are its credential; requests sends "%7E" as "~", the receiver
    # answers with Apache's "moved" page, which echoes the path and the Location HTML-escaped.
    hook.redirect_first(1, "https://example.test/services/T0/B0/SECRET~PART?token=abc&sig=a%2fb")
    slack = destination("SLACK", url=hook.url("/services/T0/B0/SECRET%7EPART?token=abc&sig=a%2Fb"))
    job_row, _ = failed_run(alice, slack, task_level=False)

    assert deliver_due() == ["FAILED"]
    [request] = hook.wait_for(1, answered=True)
    assert request.path == "/services/T0/B0/SECRET~PART?token=abc&sig=a%2Fb"
    row = Notification.objects.get(id=job_row.id)
    assert "a redirect to https://example.test/…" in row.error and "not followed" in row.error
    assert row.answer.startswith("HTTP 301 <html>") and "has moved" in row.answer
    shown = "\n".join([row.error, row.answer, caplog.text])
    assert "failed: the receiver answered HTTP 301" in caplog.text  # the log line is there, hidden too
    for secret in ("SECRET", "PART", "token=abc", "sig=", "a%2f", "services/T0"):
        assert secret.lower() not in shown.lower(), shown


def test_a_failed_email_to_a_destination_never_names_its_addresses(alice, broker, settings):
    refused = {"gone@example.com": "550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown"}
    team = destination("EMAIL", config={"addresses": ["Gone@Example.com"]})
    with smtp_server(settings, refuse={**refused, "Gone@Example.com": refused["gone@example.com"]}):
        job_row, _ = failed_run(alice, team, emails=["gone@example.com"], task_level=False)
        assert deliver_due() == ["FAILED", "FAILED"]

    to_team = Notification.objects.get(run=job_row.run, destination=team)
    assert "SMTPRecipientsRefused: refused 1 address: 550 5.1.1 <[REDACTED]>" in to_team.error
    assert "gone@" not in to_team.error.lower() and "gone@" not in to_team.answer.lower()
    # A job's own recipient is in its settings, which its viewers see: its error may name it.
    to_owner = Notification.objects.get(run=job_row.run, recipient="email:gone@example.com")
    assert "550 5.1.1 <gone@example.com>" in to_owner.error


def test_an_smtp_5xx_answer_fails_at_once_and_a_4xx_is_tried_again(alice, broker, settings):
    refuse = {"gone@example.com": "550 5.1.1 No such user", "busy@example.com": "451 4.3.0 Try again later"}
    with smtp_server(settings, refuse=refuse) as smtp:
        job_row, _ = failed_run(alice, emails=["gone@example.com", "busy@example.com", "ok@example.com"],
                                task_level=False)
        assert sorted(deliver_due()) == ["FAILED", "RETRYING", "SENT"]
        [delivered] = smtp.wait_for(1)  # the SMTP server got past every recipient's RCPT TO
    assert delivered.envelope_recipients == ["ok@example.com"]
    rows = {r.recipient: r for r in Notification.objects.filter(run=job_row.run)}
    gone, busy = rows["email:gone@example.com"], rows["email:busy@example.com"]
    assert (gone.state, gone.tries, gone.next_try_at) == ("FAILED", 1, None)
    assert "550 5.1.1 No such user (not tried again)" in gone.error
    assert busy.state == "RETRYING" and busy.next_try_at is not None and "451 4.3.0 Try again later" in busy.error


def test_an_smtp_login_refused_with_535_fails_at_once(alice, broker, settings):
    with smtp_server(settings, users={"lakeflow": "right"}) as smtp:
        settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "lakeflow", "wrong"
        job_row, _ = failed_run(alice, emails=["owner@example.com"], task_level=False)
        assert deliver_due() == ["FAILED"]
        settings.EMAIL_HOST_PASSWORD = "right"
        assert send(job_row).startswith("accepted by ")  # the same server takes the right password
        assert smtp.wait_for(1)[0].envelope_recipients == ["owner@example.com"]
    failed = Notification.objects.get(id=job_row.id)
    assert "SMTPAuthenticationError: 535" in failed.error and failed.error.endswith("(not tried again)")


@pytest.mark.parametrize("exc, permanent", [
    (smtplib.SMTPSenderRefused(553, b"5.7.1 Sender not allowed", "lakeflow@example.com"), True),
    (smtplib.SMTPDataError(554, b"5.6.0 Message rejected"), True),
    (smtplib.SMTPAuthenticationError(535, b"5.7.8 Bad credentials"), True),
    (smtplib.SMTPSenderRefused(421, b"4.7.0 Too many connections", "lakeflow@example.com"), False),
    (smtplib.SMTPRecipientsRefused({"a@example.com": (550, b"no"), "b@example.com": (452, b"full")}), False),
    (smtplib.SMTPRecipientsRefused({"a@example.com": (550, b"no"), "b@example.com": (553, b"bad")}), True),
    (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), False),
    (ConnectionRefusedError(111, "Connection refused"), False),
])
def test_smtp_errors_are_permanent_exactly_when_the_server_answered_5xx(exc, permanent):
    team = Destination(destination_type="EMAIL", config={"addresses": ["a@example.com", "b@example.com"]})
    failure = smtp_failure(exc, Outgoing("EMAIL", team, ("a@example.com", "b@example.com"), {}, "id"))
    assert failure.permanent is permanent
    assert "@example.com" not in str(failure)


def test_a_destination_whose_type_changed_after_the_notification_was_queued_gets_its_new_type(alice, broker, hook):
    made = destination("SLACK", url=hook.url("/slack"))
    job_row, _ = failed_run(alice, made, task_level=False)
    assert job_row.channel == "SLACK"
    update_destination(made, config={"generic_webhook": {"url": hook.url("/generic")}})

    [request] = received_by(hook, job_row)
    assert request.path == "/generic"
    assert request.json == {"event_type": "jobs.on_failure", "workspace_id": "0", "run": {"run_id": str(job_row.run_id)},
                            "job": {"job_id": str(job_row.run.job_id), "name": JOB_NAME}}


PHISHING = "[Re-login](https://evil.example/login) <https://evil.example|Re-login> **urgent**"


def phishing_facts(**more):
    return {"event": "on_failure", "event_type": "jobs.on_failure", "job_id": 7, "job_name": PHISHING, "run_id": 9,
            "at_ms": 0, "run_page_url": "https://lakeflow.example.com/jobs/7/runs/9/", "result_state": "FAILED",
            "message": "- [Re-login](https://evil.example)\n1. _x_", **more}


def test_teams_shows_markdown_in_job_names_and_errors_as_text(db):
    card = messages.teams(phishing_facts())["attachments"][0]["content"]
    headline, message, facts = card["body"]
    escaped = r"\[Re-login\]\(https://evil.example/login\) \<https://evil.example|Re-login\> \*\*urgent\*\*"
    assert headline["text"] == f"Run 9 of job {escaped} failed"
    assert message["text"] == r"\- \[Re-login\]\(https://evil.example\)" "\n" r"1\. \_x\_"
    assert {f["title"]: f["value"] for f in facts["facts"]}["Job"] == rf"{escaped} \(7\)"
    assert card["actions"][0]["url"] == "https://lakeflow.example.com/jobs/7/runs/9/"  # the one link


def test_slack_shows_link_syntax_in_job_names_as_text(db):
    message = messages.slack(phishing_facts())
    texts = [message["text"], *(b["text"]["text"] for b in message["blocks"][:2]),
             *(e["text"] for e in message["blocks"][2]["elements"][1:])]
    assert "&lt;https://evil.example|Re-login&gt;" in message["text"]
    assert not any("<" in text or ">" in text for text in texts)  # Slack's links and mentions need them
    assert message["blocks"][2]["elements"][0]["text"] == "<https://lakeflow.example.com/jobs/7/runs/9/|View run>"
