"""A task reads secrets with its attempt's secrets credential: as the run's run-as identity, only
reads, only while the attempt runs, and each value it reads is recorded for redaction. It works
with LAKEFLOW_TASK_RUN_AS_TOKEN off, LAKEFLOW_TASK_SECRETS off gives tasks none, and the run-as
token's reads are recorded too."""

import base64

from runs.attempt_credentials import (
    attempt_credential,
    attempt_of_secrets_credential,
    run_as_token,
    secrets_credential,
    secrets_environment,
)
from runs.dispatch import finish_attempt
from runs.engine.endings import attempt_ended
from runs.models import TaskRun
from tests.api.conftest import create_job
from vault.models import SecretFetch
from vault.store import values_fetched_by


def start_attempt(api):
    run_id = api.post_ok("jobs/run-now", {"job_id": create_job(api)})["run_id"]
    return TaskRun.objects.select_related("run").get(run_id=run_id)


def as_task(client, token):
    def get(route, **query):
        return client.get(f"/api/2.0/secrets/{route}", query, headers={"Authorization": f"Bearer {token}"})
    return get


def test_the_credential_names_its_attempt_and_a_changed_one_names_none():
    token = secrets_credential(1000000000042)
    assert attempt_of_secrets_credential(token) == 1000000000042
    assert attempt_of_secrets_credential(token.replace("42", "43", 1)) is None
    assert attempt_of_secrets_credential(attempt_credential(42)) is None  # the OpenLineage key reads no secret
    assert attempt_of_secrets_credential(run_as_token(42)) is None


def test_a_task_reads_what_its_run_as_identity_may_read_and_each_value_is_recorded(
        alice_secrets, bob_secrets, client, held_broker, settings):
    settings.LAKEFLOW_TASK_RUN_AS_TOKEN = False  # secrets do not need the run-as token
    alice_secrets.create_scope("mine")
    alice_secrets.put("mine", "k", "alice-value")
    bob_secrets.create_scope("bobs")
    bob_secrets.put("bobs", "k", "bob-value")
    attempt = start_attempt(alice_secrets.api)  # runs as alice
    environment = secrets_environment(attempt)
    assert set(environment) == {"LAKEFLOW_SECRETS_URL", "LAKEFLOW_SECRETS_TOKEN"}
    get = as_task(client, environment["LAKEFLOW_SECRETS_TOKEN"])

    got = get("get", scope="mine", key="k")
    assert got.status_code == 200 and base64.b64decode(got.json()["value"]) == b"alice-value"
    assert get("get", scope="mine", key="k").status_code == 200  # twice: one record
    assert values_fetched_by(attempt.id) == [b"alice-value"]
    assert [s["key"] for s in get("list", scope="mine").json()["secrets"]] == ["k"]
    assert {s["name"] for s in get("scopes/list").json()["scopes"]} == {"mine", "bobs"}
    refused = get("get", scope="bobs", key="k")
    assert refused.status_code == 403 and "alice" in refused.json()["message"]
    missing = get("get", scope="mine", key="nope")
    assert missing.status_code == 404 and missing.json()["message"] == (
        "Secret does not exist with scope: mine and key: nope")
    assert values_fetched_by(attempt.id) == [b"alice-value"]


def test_the_credential_only_reads(alice_secrets, client, held_broker):
    alice_secrets.create_scope("s")
    attempt = start_attempt(alice_secrets.api)
    headers = {"Authorization": f"Bearer {secrets_credential(attempt.id)}"}
    for route, body in [("put", {"scope": "s", "key": "k", "string_value": "v"}), ("scopes/create", {"scope": "t"}),
                        ("acls/put", {"scope": "s", "principal": "alice", "permission": "READ"})]:
        response = client.post(f"/api/2.0/secrets/{route}", body, content_type="application/json", headers=headers)
        assert response.status_code == 401, route
    assert client.get("/api/2.0/secrets/acls/list", {"scope": "s"}, headers=headers).status_code == 401
    assert client.get("/api/2.2/jobs/list", headers=headers).status_code == 401


def test_the_credential_stops_working_when_the_attempt_ends(alice_secrets, client, held_broker):
    alice_secrets.create_scope("s")
    alice_secrets.put("s", "k", "v")
    attempt = start_attempt(alice_secrets.api)
    get = as_task(client, secrets_credential(attempt.id))
    assert get("get", scope="s", key="k").status_code == 200
    finish_attempt(attempt.id, attempt_ended("SUCCESS"))
    ended = get("get", scope="s", key="k")
    assert ended.status_code == 401 and "ended" in ended.json()["message"]


def test_reads_with_the_run_as_token_are_recorded_too(alice_secrets, client, held_broker):
    alice_secrets.create_scope("s")
    alice_secrets.put("s", "k", "via-the-sdk")
    attempt = start_attempt(alice_secrets.api)
    assert as_task(client, run_as_token(attempt.id))("get", scope="s", key="k").status_code == 200
    assert values_fetched_by(attempt.id) == [b"via-the-sdk"]
    # ...but a personal token names no attempt: nothing to record.
    alice_secrets.value("s", "k")
    assert SecretFetch.objects.count() == 1


def test_with_task_secrets_off_a_task_gets_no_credential(alice_secrets, held_broker, settings):
    settings.LAKEFLOW_TASK_SECRETS = False
    attempt = start_attempt(alice_secrets.api)  # runs as alice
    assert secrets_environment(attempt) == {"LAKEFLOW_TASK_SECRETS": "false"}
    settings.LAKEFLOW_TASK_SECRETS = True
    assert set(secrets_environment(attempt)) == {"LAKEFLOW_SECRETS_URL", "LAKEFLOW_SECRETS_TOKEN"}
