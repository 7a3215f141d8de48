"""The Notification destinations page: admins create, edit (empty secret inputs keep what is set),
delete (after a confirmation listing the jobs that name it) and test destinations against a real
receiver; everyone else sees the list read-only. The form's check is the API's."""

import base64
import re

import pytest
from django.contrib.auth import get_user_model

from audit.models import AuditEvent
from jobs.models import Job
from notifications.destinations import create_destination
from notifications.models import Destination
from tests.dashboard.conftest import make_job
from tests.notification_receivers import HttpReceiver, wait_until

SLACK_URL = "https://hooks.slack.com/services/T000/B000/slack-secret-part"
HOOK_URL = "https://hooks.example.com/lakeflow?key=hook-secret-part"
LIST = "/notification-destinations/"


@pytest.fixture
def root(db):
    return get_user_model().objects.create_user("root", password="pw", is_superuser=True)


@pytest.fixture
def admin_browser(client, root):
    client.force_login(root)
    return client


@pytest.fixture
def user_browser(client, db):
    client.force_login(get_user_model().objects.create_user("bob", password="pw"))
    return client


def page(client, url, status=200):
    response = client.get(url)
    assert response.status_code == status, response.content.decode()[:2000]
    return response.content.decode()


def submit(client, url, **fields):
    """POST the form; the page it ends on (after the redirect, if any) and whether it redirected."""
    response = client.post(url, fields, follow=True)
    assert response.status_code == 200, response.content.decode()[:2000]
    return response.content.decode(), bool(response.redirect_chain)


def slack(name="alerts"):
    return create_destination(name, {"slack": {"url": SLACK_URL}})


def test_an_admin_creates_each_type_through_the_form(admin_browser):
    forms = {
        "EMAIL": {"addresses": "oncall@example.com\ndata@example.org"},
        "SLACK": {"secret_url": SLACK_URL},
        "MICROSOFT_TEAMS": {"secret_url": "https://example.webhook.office.com/webhookb2/x"},
        "PAGERDUTY": {"secret_integration_key": "0123456789abcdef0123456789abcdef"},
        "WEBHOOK": {"secret_url": HOOK_URL, "secret_username": "u", "secret_password": "p w"},
    }
    for kind, fields in forms.items():
        body, redirected = submit(admin_browser, f"{LIST}new/", display_name=f"{kind} one", destination_type=kind,
                                  **fields)
        assert redirected and f"Notification destination {kind} one created" in body

    stored = {d.destination_type: d for d in Destination.objects.all()}
    assert stored["EMAIL"].config == {"addresses": ["oncall@example.com", "data@example.org"]}
    assert stored["SLACK"].secrets == {"url": SLACK_URL}
    assert stored["PAGERDUTY"].secrets == {"integration_key": "0123456789abcdef0123456789abcdef"}
    assert stored["WEBHOOK"].secrets == {"url": HOOK_URL, "username": "u", "password": "p w"}
    assert stored["WEBHOOK"].created_by.username == "root"


def test_the_list_shows_where_each_one_sends_without_its_secrets_and_the_jobs_naming_it(admin_browser, root):
    hook = slack()
    email = create_destination("mail", {"email": {"addresses": ["oncall@example.com"]}})
    for name in ("a", "b"):
        make_job(root, name=name, webhook_notifications={"on_failure": [{"id": hook.id}]})
    deleted = make_job(root, name="gone", webhook_notifications={"on_start": [{"id": hook.id}]})
    Job.objects.filter(id=deleted.id).update(deleted_at=deleted.created_at)

    body = page(admin_browser, LIST)
    row = re.search(rf'<tr data-destination-id="{hook.id}">(.*?)</tr>', body, re.S)[1]
    assert "alerts" in row and "Slack (incoming webhook)" in row and hook.id in row
    assert "https://hooks.slack.com/…" in row and "slack-secret-part" not in body
    assert re.search(r"<td>2</td>", row)  # the deleted job does not count
    assert "oncall@example.com" in body and email.id in body
    assert 'id="nav-notifications"' in body and "Send test" in body and 'id="new-destination"' in body


def test_bad_input_is_shown_next_to_its_field_and_nothing_is_saved(admin_browser):
    body, redirected = submit(admin_browser, f"{LIST}new/", display_name="mail", destination_type="EMAIL",
                              addresses="oncall@example.com\nnot an address")
    assert not redirected and "line 2: &#x27;not an address&#x27; is not a valid email address" in body

    body, _ = submit(admin_browser, f"{LIST}new/", display_name="", destination_type="SLACK",
                     secret_url="ftp://hooks.slack.com/x")
    assert "is required and must not be blank" in body and "must be an http or https URL with a host" in body
    body, _ = submit(admin_browser, f"{LIST}new/", display_name="hook", destination_type="WEBHOOK",
                     secret_url=HOOK_URL, secret_username="only-a-user")
    assert "username and password go together" in body
    assert not Destination.objects.exists()
    assert {e.outcome for e in AuditEvent.objects.all()} == {"failed"}


def test_an_edit_keeps_the_secrets_left_empty_and_never_shows_them(admin_browser):
    hook = create_destination("hook", {"generic_webhook": {"url": HOOK_URL, "username": "u", "password": "pw-secret"}})
    edit = f"{LIST}{hook.id}/edit/"

    form = page(admin_browser, edit)
    assert "hook-secret-part" not in form and "pw-secret" not in form and 'value="hook"' in form
    body, redirected = submit(admin_browser, edit, display_name="renamed", destination_type="WEBHOOK")
    assert redirected and "renamed saved" in body
    hook.refresh_from_db()
    assert (hook.display_name, hook.secrets) == ("renamed", {"url": HOOK_URL, "username": "u", "password": "pw-secret"})

    submit(admin_browser, edit, display_name="renamed", destination_type="WEBHOOK", secret_url="http://127.0.0.1:9/x",
           remove_basic_auth="on")
    hook.refresh_from_db()
    assert hook.secrets == {"url": "http://127.0.0.1:9/x"}

    body, redirected = submit(admin_browser, edit, display_name="renamed", destination_type="PAGERDUTY")
    assert not redirected and "when a destination becomes PAGERDUTY" in body  # a new type needs its whole config
    submit(admin_browser, edit, display_name="renamed", destination_type="PAGERDUTY", secret_integration_key="k-1")
    hook.refresh_from_db()
    assert (hook.destination_type, hook.secrets) == ("PAGERDUTY", {"integration_key": "k-1"})


def test_a_delete_is_confirmed_on_a_page_listing_the_jobs_that_name_it(admin_browser, root):
    hook = slack()
    job = make_job(root, name="nightly etl", webhook_notifications={"on_failure": [{"id": hook.id}]})

    confirm = page(admin_browser, f"{LIST}{hook.id}/delete/")
    assert "1 job names this destination" in confirm and f'href="/jobs/{job.id}/"' in confirm and "nightly etl" in confirm
    assert Destination.objects.filter(id=hook.id).exists()  # showing the confirmation deletes nothing
    body, redirected = submit(admin_browser, f"{LIST}{hook.id}/delete/")
    assert redirected and "alerts deleted" in body
    assert not Destination.objects.exists()
    assert Job.objects.get(id=job.id).settings["webhook_notifications"]["on_failure"] == [{"id": hook.id}]
    page(admin_browser, f"{LIST}{hook.id}/delete/", status=404)


def test_non_admins_see_the_list_read_only(user_browser):
    hook = slack()

    body = page(user_browser, LIST)
    assert "alerts" in body and hook.id in body
    assert "Send test" not in body and "/edit/" not in body and 'id="new-destination"' not in body
    assert "hooks.slack.com" not in body  # where it sends is for admins, as the API's config is
    page(user_browser, f"{LIST}new/", status=403)
    page(user_browser, f"{LIST}{hook.id}/edit/", status=403)
    page(user_browser, f"{LIST}{hook.id}/delete/", status=403)
    for url in (f"{LIST}new/", f"{LIST}{hook.id}/edit/", f"{LIST}{hook.id}/delete/", f"{LIST}{hook.id}/test/"):
        assert user_browser.post(url, {"display_name": "mine", "destination_type": "EMAIL",
                                       "addresses": "b@example.com"}).status_code == 403
    hook.refresh_from_db()
    assert hook.display_name == "alerts" and Destination.objects.count() == 1


def test_signed_out_visitors_are_sent_to_sign_in(client, db):
    response = client.get(LIST)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_send_test_shows_the_receivers_answer(admin_browser):
    with HttpReceiver() as receiver:
        hook = create_destination("hook", {"generic_webhook": {"url": receiver.url("/hook")}})
        body, _ = submit(admin_browser, f"{LIST}{hook.id}/test/")
        [request] = receiver.wait_for(1, answered=True)

    assert request.path == "/hook" and request.json["event_type"].startswith("jobs.")
    assert "Test notification sent to hook" in body and "HTTP 200" in body and "Event processed" in body


def test_send_test_shows_the_error_and_the_receivers_answer_when_it_fails(admin_browser):
    with HttpReceiver() as receiver:
        receiver.fail_first(1)
        hook = create_destination("hook", {"slack": {"url": receiver.url("/slack")}})
        body, _ = submit(admin_browser, f"{LIST}{hook.id}/test/")
        receiver.wait_for(1, answered=True)

    assert "The test notification to hook failed" in body and "HTTP 500" in body and "boom" in body
    assert 'alert-danger' in body


def test_form_posts_are_audited_with_their_secrets_redacted(admin_browser):
    submit(admin_browser, f"{LIST}new/", display_name="hook", destination_type="WEBHOOK", secret_url=HOOK_URL,
           secret_username="u-secret", secret_password="p-secret")
    hook = Destination.objects.get()
    submit(admin_browser, f"{LIST}{hook.id}/edit/", display_name="hook", destination_type="PAGERDUTY",
           secret_integration_key="key-secret")
    submit(admin_browser, f"{LIST}{hook.id}/delete/")

    rows = list(AuditEvent.objects.order_by("id"))
    assert [(r.service_name, r.action_name, r.outcome) for r in rows] == [
        ("notificationDestinations", "create", "ok"), ("notificationDestinations", "update", "ok"),
        ("notificationDestinations", "delete", "ok")]
    logged = repr([r.request_params for r in rows])
    assert not any(s in logged for s in ("hook-secret-part", "u-secret", "p-secret", "key-secret")), logged
    assert rows[0].request_params["secret_url"] == "[REDACTED]" and rows[0].request_params["display_name"] == "hook"


def test_a_new_url_typed_in_the_form_drops_the_basic_credentials_so_send_test_cannot_leak_them(admin_browser):
    hook = create_destination("hook", {"generic_webhook": {"url": HOOK_URL, "username": "u", "password": "pw-secret"}})
    edit = f"{LIST}{hook.id}/edit/"
    assert "with HTTP Basic authentication" in page(admin_browser, LIST)
    with HttpReceiver() as attacker:
        body, redirected = submit(admin_browser, edit, display_name="hook", destination_type="WEBHOOK",
                                  secret_url=attacker.url("/steal"))
        assert redirected and "hook saved" in body
        hook.refresh_from_db()
        assert hook.secrets == {"url": attacker.url("/steal")}
        assert "with HTTP Basic authentication" not in page(admin_browser, LIST)
        body, _ = submit(admin_browser, f"{LIST}{hook.id}/test/")
        [request] = attacker.wait_for(1, answered=True)
        assert "Test notification sent to hook" in body
        assert request.path == "/steal" and "authorization" not in request.headers

        # Given again with the new URL, they are sent to it.
        submit(admin_browser, edit, display_name="hook", destination_type="WEBHOOK", secret_url=attacker.url("/new"),
               secret_username="u2", secret_password="p2")
        submit(admin_browser, f"{LIST}{hook.id}/test/")
        second = wait_until(lambda: attacker.requests[1] if len(attacker.requests) > 1 else None)
    assert second.path == "/new" and second.headers["authorization"] == "Basic " + base64.b64encode(b"u2:p2").decode()
    hook.refresh_from_db()
    assert hook.secrets == {"url": attacker.url("/new"), "username": "u2", "password": "p2"}
