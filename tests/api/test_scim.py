"""The workspace's users, groups and service principals over SCIM, as the SDK reads them:
anyone signed in reads, admins (superusers and the admins group) write."""

import json

import pytest
from django.contrib.auth.models import Group

from jobs.models import ApiToken, ServicePrincipal
from tests.api.conftest import make_user

SCIM = "/api/2.0/preview/scim/v2"


class Scim:
    def __init__(self, client, user):
        self.client, self.headers = client, {"Authorization": f"Bearer {ApiToken.issue(user, 'tests')[1]}"}

    def call(self, method, path, body=None, **query):
        kwargs = {"data": json.dumps(body), "content_type": "application/json"} if body is not None else {"data": query}
        return getattr(self.client, method)(f"{SCIM}/{path}", headers=self.headers, **kwargs)

    def ok(self, method, path, body=None, **query):
        response = self.call(method, path, body, **query)
        assert response.status_code == 200, response.content.decode()
        return response.json()


@pytest.fixture
def admin(db, client):
    return Scim(client, make_user("root@example.com", is_superuser=True))


@pytest.fixture
def bob(db, client):
    return Scim(client, make_user("bob@example.com"))


def test_me_is_the_caller(bob):
    me = bob.ok("get", "Me")
    assert me["userName"] == "bob@example.com" and me["active"] is True
    assert me["emails"] == [{"value": "bob@example.com", "type": "work", "primary": True}]
    assert me["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User"]


def test_an_admin_creates_lists_filters_patches_and_deletes_users(admin):
    created = admin.ok("post", "Users", {"userName": "ada@example.com", "displayName": "Ada Lovelace"})
    assert (created["displayName"], created["name"]) == ("Ada Lovelace", {"givenName": "Ada", "familyName": "Lovelace"})
    found = admin.ok("get", "Users", filter='userName eq "ADA@example.com"')
    assert [u["id"] for u in found["Resources"]] == [created["id"]] and found["totalResults"] == 1
    assert admin.ok("get", "Users", filter='userName sw "ada" or userName co "root"')["totalResults"] == 2
    admin.ok("patch", f"Users/{created['id']}", {"Operations": [{"op": "replace", "path": "active", "value": False}],
                                                  "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]})
    assert admin.ok("get", f"Users/{created['id']}")["active"] is False
    admin.ok("delete", f"Users/{created['id']}")
    assert admin.call("get", f"Users/{created['id']}").status_code == 404


def test_pages_follow_start_index_and_end_empty_as_the_sdk_expects(admin):
    for i in range(3):
        admin.ok("post", "Users", {"userName": f"u{i}@example.com"})
    first = admin.ok("get", "Users", startIndex=1, count=2)
    rest = admin.ok("get", "Users", startIndex=3, count=2)
    past = admin.ok("get", "Users", startIndex=5, count=2)
    assert (len(first["Resources"]), len(rest["Resources"]), past["Resources"]) == (2, 2, [])
    assert first["totalResults"] == 4


def test_groups_hold_users_and_service_principals(admin):
    ada = admin.ok("post", "Users", {"userName": "ada@example.com"})
    robot = admin.ok("post", "ServicePrincipals", {"displayName": "nightly etl"})
    assert ServicePrincipal.objects.filter(application_id=robot["applicationId"]).exists()
    group = admin.ok("post", "Groups", {"displayName": "analysts", "members": [{"value": ada["id"]}]})
    admin.ok("patch", f"Groups/{group['id']}", {"Operations": [
        {"op": "add", "path": "members", "value": [{"value": robot["id"]}]}]})
    members = {m["value"]: m["$ref"] for m in admin.ok("get", f"Groups/{group['id']}")["members"]}
    assert members == {ada["id"]: f"Users/{ada['id']}", robot["id"]: f"ServicePrincipals/{robot['id']}"}
    admin.ok("patch", f"Groups/{group['id']}", {"Operations": [
        {"op": "remove", "path": f'members[value eq "{ada["id"]}"]'}]})
    assert [m["value"] for m in admin.ok("get", f"Groups/{group['id']}")["members"]] == [robot["id"]]
    assert admin.ok("get", f"ServicePrincipals/{robot['id']}")["groups"][0]["display"] == "analysts"
    # A service principal is not a user: the lists keep them apart.
    assert robot["id"] not in {u["id"] for u in admin.ok("get", "Users")["Resources"]}
    assert [s["displayName"] for s in admin.ok("get", "ServicePrincipals")["Resources"]] == ["nightly etl"]


def test_a_member_of_the_admins_group_administers_and_anyone_else_only_reads(bob, client):
    refused = bob.call("post", "Groups", {"displayName": "mine"})
    assert refused.status_code == 403 and "is not an admin" in refused.json()["message"]
    assert bob.ok("get", "Groups")["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    admins, _ = Group.objects.get_or_create(name="admins")
    admins.user_set.add(make_user("carol@example.com"))
    carol = Scim(client, admins.user_set.get())
    assert carol.ok("post", "Groups", {"displayName": "mine"})["displayName"] == "mine"


@pytest.mark.parametrize("path, body, message", [
    ("Users", {"displayName": "no name"}, "userName is required"),
    ("Users", {"userName": "root@example.com"}, "already exists"),
    ("Groups", {"displayName": "g", "members": [{"value": "999999"}]}, "no user or service principal has id 999999"),
    ("ServicePrincipals", {"applicationId": "not-a-uuid"}, "is not a UUID"),
])
def test_bad_input_is_refused_naming_what_is_wrong_and_nothing_is_half_made(admin, path, body, message):
    response = admin.call("post", path, body)
    assert response.status_code in (400, 409) and message in response.json()["message"]
    assert not Group.objects.filter(name="g").exists()


def test_an_unsupported_filter_or_patch_path_is_a_400(admin):
    response = admin.call("get", "Users", filter="userName pr")
    assert response.status_code == 400 and "is not supported" in response.json()["message"]
    ada = admin.ok("post", "Users", {"userName": "ada@example.com"})
    response = admin.call("patch", f"Users/{ada['id']}", {"Operations": [{"op": "replace", "path": "password",
                                                                          "value": "x"}]})
    assert response.status_code == 400 and "'password' is not supported" in response.json()["message"]
