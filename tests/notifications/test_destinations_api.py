"""The Notification Destinations API (w.notification_destinations): admins write, everyone reads,
secrets are write-only (answered as `_set` flags, encrypted at rest, redacted in the audit log),
a same-type update keeps what it omits, bad input is refused naming its field, and a deleted
destination that a job still names makes that job's notifications fail saying so."""

import json

import pytest
import yaml
from databricks.sdk.service.settings import ListNotificationDestinationsResult, NotificationDestination

from api.urls import urlpatterns
from audit.models import AuditEvent
from jobs.models import Job
from notifications.delivery import deliver_due
from notifications.models import Destination, Notification
from runs.admission import create_run
from runs.dispatch import finish_attempt
from runs.engine.endings import attempt_ended
from runs.engine.states import RunLifeCycleState as L, RunResultState as R
from runs.models import TaskRun
from tests.api.conftest import client_for, make_user
from tests.runs.conftest import claim_attempt, make_job, shell

BASE = "/api/2.0/notification-destinations"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/slack-secret-part"
TEAMS_URL = "https://example.webhook.office.com/webhookb2/teams-secret-part"
HOOK_URL = "https://hooks.example.com/lakeflow?key=hook-secret-part"
PAGERDUTY_KEY = "pagerduty-secret-key-0123456789ab"
USERNAME, PASSWORD = "hook-user-secret", "hook-password-secret"
SECRETS = (SLACK_URL, TEAMS_URL, HOOK_URL, PAGERDUTY_KEY, USERNAME, PASSWORD, "slack-secret-part",
           "teams-secret-part", "hook-secret-part")
CONFIGS = {
    "EMAIL": {"email": {"addresses": ["oncall@example.com", "data-team@example.org"]}},
    "SLACK": {"slack": {"url": SLACK_URL}},
    "MICROSOFT_TEAMS": {"microsoft_teams": {"url": TEAMS_URL}},
    "PAGERDUTY": {"pagerduty": {"integration_key": PAGERDUTY_KEY}},
    "WEBHOOK": {"generic_webhook": {"url": HOOK_URL, "username": USERNAME, "password": PASSWORD}},
}
ANSWERED = {
    "EMAIL": {"email": {"addresses": ["oncall@example.com", "data-team@example.org"]}},
    "SLACK": {"slack": {"url_set": True}},
    "MICROSOFT_TEAMS": {"microsoft_teams": {"url_set": True}},
    "PAGERDUTY": {"pagerduty": {"integration_key_set": True}},
    "WEBHOOK": {"generic_webhook": {"url_set": True, "username_set": True, "password_set": True}},
}
STORED_SECRETS = {"EMAIL": {}, "SLACK": {"url": SLACK_URL}, "MICROSOFT_TEAMS": {"url": TEAMS_URL},
                  "PAGERDUTY": {"integration_key": PAGERDUTY_KEY},
                  "WEBHOOK": {"url": HOOK_URL, "username": USERNAME, "password": PASSWORD}}


class Destinations:
    """Calls under /api/2.0/notification-destinations with one user's token."""

    def __init__(self, client, user):
        self.client, self.headers = client, client_for(client, user).headers()
        self.responses = []

    def call(self, method, path="", body=None, **query):
        kwargs = {"content_type": "application/json", "data": json.dumps(body)} if body is not None else {}
        if query:
            kwargs["data"] = query
        response = getattr(self.client, method)(f"{BASE}{path}", headers=self.headers, **kwargs)
        self.responses.append(response)
        return response

    def ok(self, method, path="", body=None, **query):
        response = self.call(method, path, body, **query)
        assert response.status_code == 200, response.content.decode()[:2000]
        return response.json()

    def create(self, config, display_name="on-call"):
        return self.ok("post", body={"display_name": display_name, "config": config})

    def refused(self, method, path="", body=None, status=400, code="INVALID_PARAMETER_VALUE", **query):
        response = self.call(method, path, body, **query)
        assert response.status_code == status, response.content.decode()[:2000]
        assert response.json()["error_code"] == code
        return response.json()["message"]


@pytest.fixture
def admin(db, client):
    return Destinations(client, make_user("root", is_superuser=True))


@pytest.fixture
def bob(db, client):
    return Destinations(client, make_user("bob"))


def answered_text(*callers):
    return "\n".join(r.content.decode() for caller in callers for r in caller.responses)


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_each_type_is_created_and_answered_in_the_sdks_shape_without_its_secrets(admin, kind):
    created = admin.create(CONFIGS[kind], display_name=f"{kind} destination")

    destination = NotificationDestination.from_dict(created)
    assert destination.destination_type.value == kind and destination.display_name == f"{kind} destination"
    assert created["config"] == ANSWERED[kind]
    assert admin.ok("get", f"/{created['id']}") == created
    stored = Destination.objects.get(id=created["id"])
    assert (stored.destination_type, stored.secrets, stored.created_by.username) == (kind, STORED_SECRETS[kind], "root")
    for secret in STORED_SECRETS[kind].values():
        assert secret.encode() not in bytes(stored.encrypted_secrets)  # encrypted at rest
        assert secret not in json.dumps(stored.config)
    assert not any(secret in answered_text(admin) for secret in SECRETS)


def test_the_list_is_paged_by_display_name_with_opaque_tokens(admin):
    made = [admin.create(CONFIGS["SLACK"], display_name=f"hook {i:02}")["id"] for i in range(23)]
    admin.create(CONFIGS["SLACK"], display_name="hook 05")  # the same name twice: the id breaks the tie

    first = admin.ok("get")
    assert len(first["results"]) == 20 and first["next_page_token"]
    second = admin.ok("get", page_token=first["next_page_token"])
    assert len(second["results"]) == 4 and "next_page_token" not in second
    listed = first["results"] + second["results"]
    assert [d["display_name"] for d in listed] == sorted(d["display_name"] for d in listed)
    assert set(made) <= {d["id"] for d in listed} and len({d["id"] for d in listed}) == 24
    assert all(set(d) == {"id", "display_name", "destination_type"} for d in listed)  # never a config
    ListNotificationDestinationsResult.from_dict(listed[0])

    pages, token = [], None
    while True:
        page = admin.ok("get", page_size=7, **({"page_token": token} if token else {}))
        pages.append(page["results"])
        token = page.get("next_page_token")
        if not token:
            break
    assert [len(p) for p in pages] == [7, 7, 7, 3]
    assert [d["id"] for p in pages for d in p] == [d["id"] for d in listed]


def test_bad_paging_parameters_are_refused_naming_them(admin):
    assert "page_size" in admin.refused("get", page_size=0)
    assert "page_size" in admin.refused("get", page_size=101)
    assert "page_size" in admin.refused("get", page_size="many")
    assert "page_token" in admin.refused("get", page_token="not-a-token")
    assert admin.ok("get", page_size=100) == {"results": []}


def test_anyone_signed_in_lists_and_gets_but_only_admins_see_the_config(admin, bob):
    created = admin.create(CONFIGS["EMAIL"])

    assert bob.ok("get", f"/{created['id']}") == {"id": created["id"], "display_name": "on-call",
                                                  "destination_type": "EMAIL"}
    assert [d["id"] for d in bob.ok("get")["results"]] == [created["id"]]


def test_only_admins_create_update_and_delete(admin, bob):
    created = admin.create(CONFIGS["SLACK"])

    assert "not an admin" in bob.refused("post", body={"display_name": "x", "config": CONFIGS["EMAIL"]},
                                         status=403, code="PERMISSION_DENIED")
    bob.refused("patch", f"/{created['id']}", {"display_name": "mine"}, status=403, code="PERMISSION_DENIED")
    bob.refused("delete", f"/{created['id']}", status=403, code="PERMISSION_DENIED")
    assert list(Destination.objects.values_list("display_name", flat=True)) == ["on-call"]


def test_an_unauthenticated_call_is_refused(client, db):
    response = client.get(BASE)
    assert response.status_code == 401 and response.json()["error_code"] == "UNAUTHENTICATED"


def test_an_update_of_the_same_type_keeps_the_secret_fields_it_omits(admin):
    created = admin.create(CONFIGS["WEBHOOK"])
    path = f"/{created['id']}"

    renamed = admin.ok("patch", path, {"display_name": "renamed"})
    assert renamed["display_name"] == "renamed" and renamed["config"] == ANSWERED["WEBHOOK"]
    again = admin.ok("patch", path, {"config": {"generic_webhook": {"url": HOOK_URL}}})  # the same URL
    assert again["config"] == ANSWERED["WEBHOOK"]
    assert Destination.objects.get().secrets == STORED_SECRETS["WEBHOOK"]
    # What get answers, sent back as it is (the SDK's get-then-update): nothing changes.
    assert admin.ok("patch", path, {"config": admin.ok("get", path)["config"]})["config"] == ANSWERED["WEBHOOK"]
    assert Destination.objects.get().secrets["username"] == USERNAME
    # "" takes HTTP Basic authentication away; both go together.
    assert "username" in admin.refused("patch", path, {"config": {"generic_webhook": {"password": ""}}})
    plain = admin.ok("patch", path, {"config": {"generic_webhook": {"username": "", "password": ""}}})
    assert plain["config"] == {"generic_webhook": {"url_set": True, "username_set": False, "password_set": False}}
    assert Destination.objects.get().secrets == {"url": HOOK_URL}


def test_a_new_webhook_url_drops_the_basic_credentials_unless_they_are_given_again(admin):
    # Else an admin could point the URL at a host of theirs and have Send test deliver them there.
    created = admin.create(CONFIGS["WEBHOOK"])
    path = f"/{created['id']}"

    message = admin.refused("patch", path, {"config": {"generic_webhook": {"url": "http://127.0.0.1:9/a",
                                                                           "username": "other-user"}}})
    assert "config.generic_webhook.password" in message and "a new URL needs both given again" in message
    assert Destination.objects.get().secrets == STORED_SECRETS["WEBHOOK"]  # a refused update changes nothing

    moved = admin.ok("patch", path, {"config": {"generic_webhook": {"url": "http://127.0.0.1:9/a"}}})
    assert moved["config"] == {"generic_webhook": {"url_set": True, "username_set": False, "password_set": False}}
    assert Destination.objects.get().secrets == {"url": "http://127.0.0.1:9/a"}

    admin.ok("patch", path, {"config": {"generic_webhook": {"url": "http://127.0.0.1:9/b", "username": "u2",
                                                            "password": "p2"}}})
    assert Destination.objects.get().secrets == {"url": "http://127.0.0.1:9/b", "username": "u2", "password": "p2"}
    assert not any(secret in answered_text(admin) for secret in SECRETS)


def test_an_update_to_another_type_needs_its_whole_config(admin):
    created = admin.create(CONFIGS["SLACK"])
    path = f"/{created['id']}"

    message = admin.refused("patch", path, {"config": {"pagerduty": {}}})
    assert "config.pagerduty.integration_key" in message and "becomes PAGERDUTY" in message
    changed = admin.ok("patch", path, {"config": CONFIGS["PAGERDUTY"]})
    assert (changed["destination_type"], changed["config"]) == ("PAGERDUTY", ANSWERED["PAGERDUTY"])
    assert Destination.objects.get().secrets == {"integration_key": PAGERDUTY_KEY}  # the Slack URL is gone
    emailed = admin.ok("patch", path, {"config": CONFIGS["EMAIL"]})
    assert emailed["destination_type"] == "EMAIL" and Destination.objects.get().encrypted_secrets in (b"", None)


def test_an_update_without_fields_is_refused(admin):
    created = admin.create(CONFIGS["EMAIL"])
    assert "nothing to update" in admin.refused("patch", f"/{created['id']}", {})


def test_unknown_ids_are_not_found(admin):
    for path in ("/4f1c4c07-0000-4000-8000-000000000000", "/not%20an%20id", "/x" * 1 + "y" * 60):
        assert admin.refused("get", path, status=404, code="RESOURCE_DOES_NOT_EXIST")
        admin.refused("patch", path, {"display_name": "x"}, status=404, code="RESOURCE_DOES_NOT_EXIST")
        admin.refused("delete", path, status=404, code="RESOURCE_DOES_NOT_EXIST")


def test_delete_answers_empty_and_the_destination_is_gone(admin):
    created = admin.create(CONFIGS["EMAIL"])

    assert admin.ok("delete", f"/{created['id']}") == {}
    assert "does not exist" in admin.refused("get", f"/{created['id']}", status=404, code="RESOURCE_DOES_NOT_EXIST")
    assert admin.ok("get") == {"results": []}


def test_a_destination_jobs_name_may_be_deleted_and_their_notifications_then_fail_saying_so(alice, admin, broker):
    created = admin.create(CONFIGS["WEBHOOK"])  # alice: real commits, so the run's reactions run
    job = make_job(alice, [shell("t")], webhook_notifications={"on_failure": [{"id": created["id"]}]})

    assert admin.ok("delete", f"/{created['id']}") == {}
    assert Job.objects.get(id=job.id).settings["webhook_notifications"]["on_failure"] == [{"id": created["id"]}]
    run, _ = create_run(job)
    for attempt in TaskRun.objects.filter(run=run, life_cycle_state=L.PENDING):
        finish_attempt(claim_attempt(attempt.id).id, attempt_ended(R.FAILED))
    deliver_due()
    failed = Notification.objects.get(run=run)
    assert (failed.event, failed.state, failed.recipient) == ("on_failure", "FAILED", f"destination:{created['id']}")
    assert "no longer exists" in failed.error


BAD_INPUT = [
    ({"config": CONFIGS["EMAIL"]}, "display_name"),
    ({"display_name": "  ", "config": CONFIGS["EMAIL"]}, "display_name"),
    ({"display_name": 7, "config": CONFIGS["EMAIL"]}, "display_name"),
    ({"display_name": "x" * 256, "config": CONFIGS["EMAIL"]}, "display_name"),
    ({"display_name": "d"}, "config"),
    ({"display_name": "d", "config": "email"}, "config"),
    ({"display_name": "d", "config": {}}, "config"),
    ({"display_name": "d", "config": {**CONFIGS["EMAIL"], **CONFIGS["SLACK"]}}, "config"),
    ({"display_name": "d", "config": {"sms": {"number": "1"}}}, "config.sms"),
    ({"display_name": "d", "config": {"email": ["a@example.com"]}}, "config.email"),
    ({"display_name": "d", "config": {"email": {}}}, "config.email.addresses"),
    ({"display_name": "d", "config": {"email": {"addresses": []}}}, "config.email.addresses"),
    ({"display_name": "d", "config": {"email": {"addresses": "a@example.com"}}}, "config.email.addresses"),
    ({"display_name": "d", "config": {"email": {"addresses": ["a@example.com", "nope"]}}},
     "config.email.addresses[1]"),
    ({"display_name": "d", "config": {"email": {"addresses": ["a@example.com", "a@example.com"]}}},
     "config.email.addresses[1]"),
    ({"display_name": "d", "config": {"email": {"addresses": [f"u{i}@example.com" for i in range(101)]}}},
     "config.email.addresses"),
    ({"display_name": "d", "config": {"slack": {}}}, "config.slack.url"),
    ({"display_name": "d", "config": {"slack": {"url": "ftp://hooks.slack.com/slack-secret-part"}}},
     "config.slack.url"),
    ({"display_name": "d", "config": {"slack": {"url": "https:///slack-secret-part"}}}, "config.slack.url"),
    ({"display_name": "d", "config": {"slack": {"url": "hooks.slack.com/slack-secret-part"}}}, "config.slack.url"),
    ({"display_name": "d", "config": {"slack": {"url": 5}}}, "config.slack.url"),
    ({"display_name": "d", "config": {"slack": {"url": SLACK_URL, "url_set": "yes"}}}, "config.slack.url_set"),
    ({"display_name": "d", "config": {"slack": {"url": SLACK_URL, "oauth_token": "xoxb-1"}}},
     "config.slack.oauth_token"),
    ({"display_name": "d", "config": {"slack": {"url": SLACK_URL, "channel_id": "C1"}}}, "config.slack.channel_id"),
    ({"display_name": "d", "config": {"microsoft_teams": {"url": "teams-secret-part"}}},
     "config.microsoft_teams.url"),
    ({"display_name": "d", "config": {"microsoft_teams": {"url": TEAMS_URL, "app_id": "a"}}},
     "config.microsoft_teams.app_id"),
    ({"display_name": "d", "config": {"microsoft_teams": {"url": TEAMS_URL, "auth_secret": "s"}}},
     "config.microsoft_teams.auth_secret"),
    ({"display_name": "d", "config": {"microsoft_teams": {"url": TEAMS_URL, "tenant_id": "t"}}},
     "config.microsoft_teams.tenant_id"),
    ({"display_name": "d", "config": {"microsoft_teams": {"url": TEAMS_URL, "channel_url": "https://t.example"}}},
     "config.microsoft_teams.channel_url"),
    ({"display_name": "d", "config": {"databricks_app_slack": {}}}, "config.databricks_app_slack"),
    ({"display_name": "d", "config": {"databricks_app_teams": {}}}, "config.databricks_app_teams"),
    ({"display_name": "d", "config": {"pagerduty": {"integration_key": ""}}}, "config.pagerduty.integration_key"),
    ({"display_name": "d", "config": {"pagerduty": {}}}, "config.pagerduty.integration_key"),
    ({"display_name": "d", "config": {"generic_webhook": {"username": USERNAME, "password": PASSWORD}}},
     "config.generic_webhook.url"),
    ({"display_name": "d", "config": {"generic_webhook": {"url": HOOK_URL, "username": USERNAME}}},
     "config.generic_webhook.password"),
    ({"display_name": "d", "config": {"generic_webhook": {"url": HOOK_URL, "headers": {"X": "1"}}}},
     "config.generic_webhook.headers"),
    ({"display_name": "d", "config": {"generic_webhook": {"url": "javascript:alert(1)//hook-secret-part"}}},
     "config.generic_webhook.url"),
]


@pytest.mark.parametrize("body, field", BAD_INPUT, ids=[f"{i}-{field}" for i, (_, field) in enumerate(BAD_INPUT)])
def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(admin, body, field):
    message = admin.refused("post", body=body)

    assert field in message, message
    assert not Destination.objects.exists()
    assert not any(secret in message for secret in SECRETS)  # a refused secret is not repeated


def test_the_webhook_only_refusals_say_what_this_server_supports(admin):
    message = admin.refused("post", body={"display_name": "d", "config": {"slack": {"url": SLACK_URL,
                                                                                    "oauth_token": "xoxb-1"}}})
    assert "incoming-webhook URLs only" in message


def test_secrets_never_reach_the_audit_log_and_writes_are_named(admin, bob):
    ids = {kind: admin.create(config, display_name=kind)["id"] for kind, config in CONFIGS.items()}
    admin.ok("patch", f"/{ids['WEBHOOK']}", {"config": {"generic_webhook": {"url": HOOK_URL + "2", "username": USERNAME,
                                                                            "password": PASSWORD + "2"}}})
    admin.refused("post", body={"display_name": "d", "config": {"slack": {"url": "ftp://x/slack-secret-part"}}})
    admin.refused("post", body={"display_name": "d", "slack": {"url": SLACK_URL}})  # no config around it
    bob.refused("post", body={"display_name": "d", "config": CONFIGS["PAGERDUTY"]}, status=403,
                code="PERMISSION_DENIED")
    admin.ok("delete", f"/{ids['SLACK']}")

    rows = list(AuditEvent.objects.order_by("id"))
    assert [(r.service_name, r.action_name, r.outcome) for r in rows] == (
        [("notificationDestinations", "create", "ok")] * 5 + [("notificationDestinations", "update", "ok"),
                                                               ("notificationDestinations", "create", "failed"),
                                                               ("notificationDestinations", "create", "failed"),
                                                               ("notificationDestinations", "create", "denied"),
                                                               ("notificationDestinations", "delete", "ok")])
    logged = json.dumps([[r.request_params, r.error_message, r.path] for r in rows])
    assert not any(secret in logged for secret in SECRETS), logged
    assert rows[0].request_params == {"display_name": "EMAIL", "config": CONFIGS["EMAIL"]}  # addresses are not secret
    assert rows[4].request_params["config"] == {"generic_webhook": {"url": "[REDACTED]", "username": "[REDACTED]",
                                                                    "password": "[REDACTED]"}}
    assert not any(secret in answered_text(admin, bob) for secret in SECRETS)


def test_the_openapi_document_has_every_route_and_method():
    document = yaml.safe_load(open("api/openapi-notifications.yaml"))
    served = {"/" + str(p.pattern).replace("<str:destination_id>", "{id}") for p in urlpatterns
              if str(p.pattern).startswith("api/2.0/notification-destinations")}
    assert served == set(document["paths"])
    assert {method for item in document["paths"].values() for method in item if method != "parameters"} == {
        "get", "post", "patch", "delete"}
