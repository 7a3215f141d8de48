"""Who gets in: Bearer tokens, signed-in browser sessions, and nobody else."""

import json

import pytest
from django.conf import settings
from django.test import Client
from django.utils.crypto import get_random_string
from django.utils import timezone

from jobs.models import ApiToken
from tests.api.conftest import ApiClient, create_job, make_user


def assert_unauthenticated(response):
    assert response.status_code == 401
    body = response.json()
    assert body["error_code"] == "UNAUTHENTICATED"
    assert body["message"]


def test_a_call_without_credentials_is_refused_with_401(client, db):
    assert_unauthenticated(ApiClient(client, None).get("jobs/list"))


def test_an_unknown_token_is_refused_with_401(client, db):
    assert_unauthenticated(ApiClient(client, "dapi" + "0" * 64).get("jobs/list"))


def test_an_authorization_header_that_is_not_bearer_is_refused(client, alice):
    _, raw = ApiToken.issue(alice)
    response = client.get("/api/2.2/jobs/list", headers={"Authorization": f"Basic {raw}"})
    assert_unauthenticated(response)


def test_a_revoked_token_is_refused_with_401(client, alice):
    token, raw = ApiToken.issue(alice)
    api = ApiClient(client, raw)
    assert api.get("jobs/list").status_code == 200
    token.revoked_at = timezone.now()
    token.save()
    assert_unauthenticated(api.get("jobs/list"))


def test_the_token_of_an_inactive_user_is_refused(client, alice):
    _, raw = ApiToken.issue(alice)
    alice.is_active = False
    alice.save()
    assert_unauthenticated(ApiClient(client, raw).get("jobs/list"))


def test_a_signed_in_browser_user_may_read_the_api(client, alice, api):
    job_id = create_job(api, name="visible in the browser")
    client.force_login(alice)
    response = client.get("/api/2.2/jobs/get", {"job_id": job_id})
    assert response.status_code == 200
    assert response.json()["settings"]["name"] == "visible in the browser"


def test_a_signed_in_browser_post_without_a_csrf_token_is_refused(alice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    response = browser.post("/api/2.2/jobs/create", "{}", content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error_code"] == "PERMISSION_DENIED"


def test_a_bearer_post_needs_no_csrf_token(alice):
    _, raw = ApiToken.issue(alice)
    api = ApiClient(Client(enforce_csrf_checks=True), raw)
    response = api.post("jobs/create", {"name": "no csrf", "tasks": []})
    assert response.status_code == 200
    assert response.json()["job_id"] > 0


def test_the_discovery_document_needs_no_token_and_names_no_oauth_endpoint(client, db):
    response = client.get("/.well-known/databricks-config")
    assert response.status_code == 200
    assert response.json()["oidc_endpoint"] == ""


def test_an_unknown_api_path_answers_json_404(api):
    response = api.get("jobs/nope")
    assert response.status_code == 404
    assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"


@pytest.mark.parametrize("endpoint", ["jobs/update", "jobs/reset", "jobs/delete"])
def test_only_the_creator_or_a_superuser_may_change_a_job(api, bob_api, client, endpoint):
    job_id = create_job(api)
    body = {"job_id": job_id, "new_settings": {"name": "taken over", "tasks": []}}
    response = bob_api.post(endpoint, body)
    assert response.status_code == 403
    assert response.json()["error_code"] == "PERMISSION_DENIED"
    assert "bob" in response.json()["message"]

    root = make_user("root", is_superuser=True)
    root_api = ApiClient(client, ApiToken.issue(root)[1])
    assert root_api.post(endpoint, body).status_code == 200


def test_a_job_of_someone_else_is_read_and_run_only_with_a_grant(api, bob_api, held_broker):
    job_id = create_job(api)
    response = bob_api.get("jobs/get", job_id=job_id)
    assert response.status_code == 403
    assert response.json() == {"error_code": "PERMISSION_DENIED",
                               "message": f"User bob does not have View permissions on job {job_id}."}
    assert bob_api.get_ok("jobs/list").get("jobs", []) == []
    granted = api.client.generic("PATCH", f"/api/2.0/permissions/jobs/{job_id}", json.dumps(
        {"access_control_list": [{"user_name": "bob", "permission_level": "CAN_MANAGE_RUN"}]}),
        content_type="application/json", headers=api.headers())
    assert granted.status_code == 200, granted.content
    assert bob_api.get_ok("jobs/get", job_id=job_id)["creator_user_name"] == "alice"
    assert bob_api.post_ok("jobs/run-now", {"job_id": job_id})["run_id"] > 0


def test_a_signed_in_browser_post_with_the_csrf_token_is_accepted(alice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    secret = get_random_string(32)
    browser.cookies[settings.CSRF_COOKIE_NAME] = secret
    response = browser.post("/api/2.2/jobs/create", '{"name": "from the browser"}', content_type="application/json",
                            headers={"X-CSRFToken": secret})
    assert response.status_code == 200, response.content
    assert response.json()["job_id"] > 0

