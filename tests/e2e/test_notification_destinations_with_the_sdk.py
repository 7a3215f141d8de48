"""The Notification Destinations API with the official databricks-sdk against a real server, on
both modes: each type created, listed (paged by the SDK), read with its `*_set` flags and never
its secrets, updated keeping what the update omits, deleted; jobs name destinations by id; bad
input and a non-admin's write come back as the SDK's own errors."""

import secrets

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue, NotFound, PermissionDenied
from databricks.sdk.service import jobs
from databricks.sdk.service.settings import (Config, DestinationType, EmailConfig, GenericWebhookConfig,
                                             MicrosoftTeamsConfig, PagerdutyConfig, SlackConfig)

pytestmark = pytest.mark.e2e

SLACK_URL = "https://hooks.slack.com/services/T0/B0/e2e-slack-secret"
TEAMS_URL = "https://example.webhook.office.com/webhookb2/e2e-teams-secret"
HOOK_URL = "http://127.0.0.1:9/e2e-hook-secret"
PAGERDUTY_KEY = "e2e-pagerduty-secret-0123456789"
SECRET_WORDS = ("e2e-slack-secret", "e2e-teams-secret", "e2e-hook-secret", "e2e-pagerduty-secret", "e2e-password")


def test_each_type_is_created_listed_read_updated_and_deleted(server):
    w = server.client()
    prefix = f"e2e dest {secrets.token_hex(3)}"
    configs = {
        DestinationType.EMAIL: Config(email=EmailConfig(addresses=["oncall@example.com"])),
        DestinationType.SLACK: Config(slack=SlackConfig(url=SLACK_URL)),
        DestinationType.MICROSOFT_TEAMS: Config(microsoft_teams=MicrosoftTeamsConfig(url=TEAMS_URL)),
        DestinationType.PAGERDUTY: Config(pagerduty=PagerdutyConfig(integration_key=PAGERDUTY_KEY)),
        DestinationType.WEBHOOK: Config(generic_webhook=GenericWebhookConfig(url=HOOK_URL, username="e2e",
                                                                             password="e2e-password")),
    }
    created = {kind: w.notification_destinations.create(display_name=f"{prefix} {kind.value}", config=config)
               for kind, config in configs.items()}

    assert {kind: d.destination_type for kind, d in created.items()} == {kind: kind for kind in configs}
    assert created[DestinationType.EMAIL].config.email.addresses == ["oncall@example.com"]
    assert created[DestinationType.SLACK].config.slack.url_set and created[DestinationType.SLACK].config.slack.url is None
    assert created[DestinationType.PAGERDUTY].config.pagerduty.integration_key_set
    hook = created[DestinationType.WEBHOOK]
    got = w.notification_destinations.get(hook.id)
    assert (got.config.generic_webhook.url_set, got.config.generic_webhook.username_set,
            got.config.generic_webhook.password_set) == (True, True, True)
    assert not any(word in repr(list(created.values())) + repr(got) for word in SECRET_WORDS)

    # The SDK follows next_page_token: two per page still lists every one, in name order.
    listed = [d for d in w.notification_destinations.list(page_size=2) if d.display_name.startswith(prefix)]
    assert [d.display_name for d in listed] == sorted(f"{prefix} {kind.value}" for kind in configs)
    assert {d.id for d in listed} == {d.id for d in created.values()}
    assert all(d.destination_type in configs for d in listed)

    renamed = w.notification_destinations.update(hook.id, display_name=f"{prefix} renamed")
    assert renamed.display_name == f"{prefix} renamed" and renamed.config.generic_webhook.password_set
    moved = w.notification_destinations.update(
        hook.id, config=Config(generic_webhook=GenericWebhookConfig(url="http://127.0.0.1:9/e2e-hook-secret-2")))
    # A new URL drops the Basic credentials (they must not follow the URL somewhere else).
    assert not moved.config.generic_webhook.username_set and not moved.config.generic_webhook.password_set
    again = w.notification_destinations.update(hook.id, config=w.notification_destinations.get(hook.id).config)
    assert again.config.generic_webhook.as_dict() == moved.config.generic_webhook.as_dict()
    paged = w.notification_destinations.update(hook.id, config=configs[DestinationType.PAGERDUTY])
    assert paged.destination_type == DestinationType.PAGERDUTY and paged.config.pagerduty.integration_key_set

    # Jobs name destinations by id; a deleted one can no longer be named.
    job_id = w.jobs.create(name=f"{prefix} job", tasks=[jobs.Task(
        task_key="t", spark_python_task=jobs.SparkPythonTask(python_file=server.script("ok.py")))],
        webhook_notifications=jobs.WebhookNotifications(on_failure=[jobs.Webhook(id=hook.id)])).job_id
    for destination in created.values():
        w.notification_destinations.delete(destination.id)
    with pytest.raises(NotFound):
        w.notification_destinations.get(hook.id)
    assert not [d for d in w.notification_destinations.list() if d.display_name.startswith(prefix)]
    assert w.jobs.get(job_id).settings.webhook_notifications.on_failure[0].id == hook.id  # still named
    with pytest.raises(InvalidParameterValue, match="no notification destination"):
        w.jobs.create(name=f"{prefix} job 2", tasks=[jobs.Task(
            task_key="t", spark_python_task=jobs.SparkPythonTask(python_file=server.script("ok.py")))],
            webhook_notifications=jobs.WebhookNotifications(on_failure=[jobs.Webhook(id=hook.id)]))


def test_bad_input_and_a_non_admins_writes_are_the_sdks_errors(server):
    w = server.client()
    name = f"e2e bad {secrets.token_hex(3)}"

    with pytest.raises(InvalidParameterValue, match=r"config\.slack\.url") as refused:
        w.notification_destinations.create(display_name=name, config=Config(slack=SlackConfig(
            url="ftp://hooks.slack.com/e2e-slack-secret")))
    assert "e2e-slack-secret" not in str(refused.value)
    with pytest.raises(InvalidParameterValue, match="incoming-webhook URLs only"):
        w.notification_destinations.create(display_name=name, config=Config(slack=SlackConfig(
            url=SLACK_URL, oauth_token="xoxb-1", channel_id="C1")))
    with pytest.raises(InvalidParameterValue, match=r"config\.email\.addresses\[0\]"):
        w.notification_destinations.create(display_name=name, config=Config(email=EmailConfig(addresses=["nope"])))
    with pytest.raises(InvalidParameterValue, match="display_name"):
        w.notification_destinations.create(config=Config(email=EmailConfig(addresses=["a@example.com"])))
    assert not [d for d in w.notification_destinations.list() if d.display_name.startswith(name)]

    made = w.notification_destinations.create(display_name=name, config=Config(
        email=EmailConfig(addresses=["a@example.com"])))
    reader = WorkspaceClient(host=server.url, token=server.manage(
        "createapitoken", f"e2e-reader-{secrets.token_hex(3)}").strip().splitlines()[-1])
    seen = reader.notification_destinations.get(made.id)
    assert (seen.display_name, seen.destination_type, seen.config) == (name, DestinationType.EMAIL, None)
    with pytest.raises(PermissionDenied):
        reader.notification_destinations.create(display_name="mine", config=Config(
            email=EmailConfig(addresses=["b@example.com"])))
    with pytest.raises(PermissionDenied):
        reader.notification_destinations.update(made.id, display_name="mine")
    with pytest.raises(PermissionDenied):
        reader.notification_destinations.delete(made.id)
    assert w.notification_destinations.get(made.id).display_name == name
    w.notification_destinations.delete(made.id)
