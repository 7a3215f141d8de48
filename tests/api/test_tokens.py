"""Personal access tokens: the Token API and Token Management API the SDK uses, the settings
page, and the rule that a revoked, expired or orphaned token stops working at once."""

from datetime import timedelta

from django.contrib.auth.models import Group
from django.utils import timezone

from jobs.models import ApiToken, ServicePrincipal
from tests.api.conftest import client_for, make_user


def test_create_list_and_delete_your_own_tokens(api, client):
    made = api.client.post("/api/2.0/token/create", {"comment": "ci", "lifetime_seconds": 3600},
                           content_type="application/json", headers=api.headers()).json()
    assert made["token_value"].startswith("dapi") and made["token_info"]["comment"] == "ci"
    assert made["token_info"]["expiry_time"] - made["token_info"]["creation_time"] == 3600 * 1000
    listed = api.client.get("/api/2.0/token/list", headers=api.headers()).json()["token_infos"]
    assert made["token_info"]["token_id"] in {t["token_id"] for t in listed}
    assert "token_value" not in str(listed)  # the value is answered once

    new = {"Authorization": f"Bearer {made['token_value']}"}
    assert client.get("/api/2.2/jobs/list", headers=new).status_code == 200
    gone = api.client.post("/api/2.0/token/delete", {"token_id": made["token_info"]["token_id"]},
                           content_type="application/json", headers=api.headers())
    assert gone.status_code == 200
    assert client.get("/api/2.2/jobs/list", headers=new).status_code == 401  # at once


def test_someone_elses_token_cannot_be_deleted_through_the_token_api(api, client):
    bob_token, _ = ApiToken.issue(make_user("bob"))
    refused = api.client.post("/api/2.0/token/delete", {"token_id": str(bob_token.id)},
                              content_type="application/json", headers=api.headers())
    assert refused.status_code == 404 and ApiToken.valid().filter(id=bob_token.id).exists()


def test_an_expired_token_or_one_of_a_deactivated_user_stops_working(db, client):
    bob = make_user("bob")
    token, raw = ApiToken.issue(bob, lifetime_seconds=60)
    headers = {"Authorization": f"Bearer {raw}"}
    assert client.get("/api/2.2/jobs/list", headers=headers).status_code == 200
    ApiToken.objects.filter(id=token.id).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get("/api/2.2/jobs/list", headers=headers).status_code == 401
    _, raw = ApiToken.issue(bob)
    bob.is_active = False
    bob.save()
    assert client.get("/api/2.2/jobs/list", headers={"Authorization": f"Bearer {raw}"}).status_code == 401


def test_admins_manage_everyones_tokens_and_make_one_for_a_service_principal(db, client):
    admins, _ = Group.objects.get_or_create(name="admins")
    carol = make_user("carol")
    admins.user_set.add(carol)
    admin = client_for(client, carol)
    bob_token, _ = ApiToken.issue(make_user("bob"), "bob's")
    listed = admin.client.get("/api/2.0/token-management/tokens", {"created_by_username": "bob"},
                              headers=admin.headers()).json()["token_infos"]
    assert [(t["token_id"], t["created_by_username"]) for t in listed] == [(str(bob_token.id), "bob")]
    assert admin.client.delete(f"/api/2.0/token-management/tokens/{bob_token.id}",
                               headers=admin.headers()).status_code == 200
    assert not ApiToken.valid().filter(id=bob_token.id).exists()

    robot = make_user("robot")
    principal = ServicePrincipal.objects.create(user=robot)
    made = admin.client.post("/api/2.0/token-management/on-behalf-of/tokens",
                             {"application_id": str(principal.application_id), "comment": "etl"},
                             content_type="application/json", headers=admin.headers()).json()
    me = client.get("/api/2.0/preview/scim/v2/Me", headers={"Authorization": f"Bearer {made['token_value']}"})
    assert me.json()["applicationId"] == str(principal.application_id)


def test_token_management_is_for_admins_only(api):
    refused = api.client.get("/api/2.0/token-management/tokens", headers=api.headers())
    assert refused.status_code == 403 and "is not an admin" in refused.json()["message"]


def test_bad_input_names_the_field(api):
    response = api.client.post("/api/2.0/token/create", {"lifetime_seconds": -5},
                               content_type="application/json", headers=api.headers())
    assert response.status_code == 400 and "lifetime_seconds" in response.json()["message"]


def test_the_settings_page_makes_lists_and_revokes_tokens(db, client):
    bob = make_user("bob")
    client.force_login(bob)
    page = client.post("/settings/tokens/", {"comment": "laptop", "lifetime_days": "30"})
    assert page.status_code == 200 and "copy it now" in page.content.decode()
    token = ApiToken.objects.get(user=bob)
    assert token.comment == "laptop" and token.expires_at is not None
    assert "laptop" in client.get("/settings/tokens/").content.decode()
    client.post(f"/settings/tokens/{token.id}/revoke/")
    assert not ApiToken.valid().filter(id=token.id).exists()
    assert "laptop" not in client.get("/settings/tokens/").content.decode()
