"""The Secrets API in the SDK's shapes: scopes, secrets and ACLs, with Databricks' error codes;
values encrypted at rest, never in a list, an error or the audit log."""

import base64
import json

from django.contrib.auth.models import Group

from audit.models import AuditEvent
from vault.models import Secret
from vault.rules import MAX_VALUE_BYTES


def test_a_secret_put_is_read_back_and_listed_without_its_value(alice_secrets):
    alice_secrets.create_scope("team-a")
    alice_secrets.put("team-a", "db.password", "hunter2-é")
    assert alice_secrets.value("team-a", "db.password") == "hunter2-é"
    listed = alice_secrets.ok(alice_secrets.get("list", scope="team-a"))
    assert [s["key"] for s in listed["secrets"]] == ["db.password"]
    assert listed["secrets"][0]["last_updated_timestamp"] > 1_600_000_000_000  # ms
    assert "hunter2" not in json.dumps(listed)
    scopes = alice_secrets.ok(alice_secrets.get("scopes/list"))["scopes"]
    assert scopes == [{"name": "team-a", "backend_type": "DATABRICKS"}]


def test_bytes_values_come_back_as_the_same_bytes(alice_secrets):
    alice_secrets.create_scope("s")
    raw = bytes(range(256))
    alice_secrets.ok(alice_secrets.post("put", {"scope": "s", "key": "k", "bytes_value": base64.b64encode(raw).decode()}))
    got = alice_secrets.ok(alice_secrets.get("get", scope="s", key="k"))
    assert got == {"key": "k", "value": base64.b64encode(raw).decode()}


def test_a_put_overwrites_and_a_delete_removes(alice_secrets):
    alice_secrets.create_scope("s")
    alice_secrets.put("s", "k", "one")
    alice_secrets.put("s", "k", "two")
    assert alice_secrets.value("s", "k") == "two"
    alice_secrets.ok(alice_secrets.post("delete", {"scope": "s", "key": "k"}))
    missing = alice_secrets.get("get", scope="s", key="k")
    assert missing.status_code == 404
    assert missing.json() == {"error_code": "RESOURCE_DOES_NOT_EXIST",
                              "message": "Secret does not exist with scope: s and key: k"}


def test_values_are_encrypted_at_rest(alice_secrets):
    alice_secrets.create_scope("s")
    alice_secrets.put("s", "k", "plain-text-that-must-not-be-stored")
    stored = bytes(Secret.objects.get(key="k").encrypted_value)
    assert b"plain-text-that-must-not-be-stored" not in stored
    assert b"plain-text" not in base64.urlsafe_b64decode(stored)  # not merely encoded either


def test_unknown_scopes_and_duplicate_scopes_answer_databricks_codes(alice_secrets):
    response = alice_secrets.get("list", scope="nope")
    assert response.status_code == 404
    assert response.json() == {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Scope nope does not exist!"}
    for route, body in [("put", {"scope": "nope", "key": "k", "string_value": "v"}),
                        ("delete", {"scope": "nope", "key": "k"}), ("scopes/delete", {"scope": "nope"}),
                        ("acls/put", {"scope": "nope", "principal": "alice", "permission": "READ"})]:
        assert alice_secrets.post(route, body).json()["error_code"] == "RESOURCE_DOES_NOT_EXIST", route
    alice_secrets.create_scope("s")
    again = alice_secrets.post("scopes/create", {"scope": "s"})
    assert again.status_code == 400 and again.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"


def test_bad_names_values_and_bodies_are_refused_with_a_400_never_a_500(alice_secrets):
    alice_secrets.create_scope("s")
    cases = [
        ("scopes/create", {"scope": "has space"}),
        ("scopes/create", {"scope": "x" * 129}),
        ("scopes/create", {"scope": ""}),
        ("scopes/create", {"scope": 7}),
        ("scopes/create", {}),
        ("scopes/create", {"scope": "ok", "scope_backend_type": "AZURE_KEYVAULT"}),
        ("put", {"scope": "s", "key": "a/b", "string_value": "v"}),
        ("put", {"scope": "s", "key": "k"}),
        ("put", {"scope": "s", "key": "k", "string_value": "v", "bytes_value": "dg=="}),
        ("put", {"scope": "s", "key": "k", "bytes_value": "not base64!"}),
        ("put", {"scope": "s", "key": "k", "string_value": ["v"]}),
        ("put", {"scope": "s", "key": "k", "string_value": "\ud800"}),
        ("put", {"scope": "s", "key": "k", "string_value": "x" * (MAX_VALUE_BYTES + 1)}),
        ("acls/put", {"scope": "s", "principal": "alice", "permission": "OWNER"}),
        ("acls/put", {"scope": "s", "principal": "no-such-user", "permission": "READ"}),
    ]
    for route, body in cases:
        response = alice_secrets.post(route, body)
        assert response.status_code == 400, (route, body, response.content)
        assert response.json()["error_code"] in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"), (route, body)
    assert not Secret.objects.exists()
    oversized = alice_secrets.post("put", {"scope": "s", "key": "k", "string_value": "é" * (MAX_VALUE_BYTES // 2 + 1)})
    assert "limit is 131,072 bytes" in oversized.json()["message"] and "é" not in oversized.json()["message"]
    malformed = alice_secrets.api.client.post("/api/2.0/secrets/put", "{not json", content_type="application/json",
                                              headers=alice_secrets.api.headers())
    assert malformed.status_code == 400
    assert alice_secrets.get("get", scope="s").status_code == 400  # no key
    assert alice_secrets.get("get", scope="s", key="k" * 200).status_code == 404
    exactly = alice_secrets.post("put", {"scope": "s", "key": "k", "string_value": "x" * MAX_VALUE_BYTES})
    assert exactly.status_code == 200
    as_bytes = base64.b64encode(b"\xff" * MAX_VALUE_BYTES).decode()
    assert alice_secrets.post("put", {"scope": "s", "key": "b", "bytes_value": as_bytes}).status_code == 200
    over = base64.b64encode(b"\xff" * (MAX_VALUE_BYTES + 1)).decode()
    assert alice_secrets.post("put", {"scope": "s", "key": "b", "bytes_value": over}).status_code == 400


def test_without_credentials_every_call_is_refused(client, db):
    assert client.get("/api/2.0/secrets/scopes/list").status_code == 401
    assert client.post("/api/2.0/secrets/scopes/create", {"scope": "s"},
                       content_type="application/json").status_code == 401
    assert client.get("/api/2.0/secrets/get", {"scope": "s", "key": "k",
                                               }, headers={"Authorization": "Bearer secrets-1:forged"}).status_code == 401


# --- the ACL matrix ---------------------------------------------------------------------------

def can(client, scope):
    """What `client` may do on `scope` (each tried for real), as a set of words."""
    done = set()
    if client.get("list", scope=scope).status_code == 200 and client.get("get", scope=scope, key="k").status_code == 200:
        done.add("read")
    if client.post("put", {"scope": scope, "key": "k", "string_value": "v2"}).status_code == 200:
        done.add("write")
    if client.get("acls/list", scope=scope).status_code == 200:
        done.add("manage")
    return done


def test_each_permission_allows_exactly_its_level_and_the_levels_below(alice_secrets, bob_secrets):
    expected = {None: set(), "READ": {"read"}, "WRITE": {"read", "write"}, "MANAGE": {"read", "write", "manage"}}
    for permission, allowed in expected.items():
        scope = f"scope-{permission or 'none'}"
        alice_secrets.create_scope(scope)
        alice_secrets.put(scope, "k", "v")
        if permission:
            alice_secrets.grant(scope, "bob", permission)
        assert can(bob_secrets, scope) == allowed, permission
    refused = bob_secrets.get("get", scope="scope-none", key="k")
    assert refused.status_code == 403 and refused.json()["error_code"] == "PERMISSION_DENIED"
    assert "bob" in refused.json()["message"] and "scope-none" in refused.json()["message"]


def test_only_manage_deletes_a_scope_or_changes_its_acls(alice_secrets, bob_secrets):
    alice_secrets.create_scope("s")
    alice_secrets.grant("s", "bob", "WRITE")
    assert bob_secrets.post("scopes/delete", {"scope": "s"}).status_code == 403
    assert bob_secrets.post("acls/put", {"scope": "s", "principal": "bob", "permission": "MANAGE"}).status_code == 403
    assert bob_secrets.post("acls/delete", {"scope": "s", "principal": "alice"}).status_code == 403
    assert bob_secrets.get("acls/get", scope="s", principal="bob").status_code == 403
    alice_secrets.grant("s", "bob", "MANAGE")
    assert bob_secrets.ok(bob_secrets.get("acls/get", scope="s", principal="bob")) == {
        "principal": "bob", "permission": "MANAGE"}
    bob_secrets.ok(bob_secrets.post("scopes/delete", {"scope": "s"}))
    assert alice_secrets.get("list", scope="s").status_code == 404


def test_the_creator_manages_and_acls_reach_groups_and_everyone(alice_secrets, bob_secrets, bob):
    alice_secrets.create_scope("s")
    alice_secrets.put("s", "k", "v")
    assert alice_secrets.ok(alice_secrets.get("acls/list", scope="s")) == {
        "items": [{"principal": "alice", "permission": "MANAGE"}]}
    assert can(bob_secrets, "s") == set()
    team = Group.objects.create(name="data-team")
    team.user_set.add(bob)
    alice_secrets.grant("s", "data-team", "READ")
    assert can(bob_secrets, "s") == {"read"}
    alice_secrets.ok(alice_secrets.post("acls/delete", {"scope": "s", "principal": "data-team"}))
    assert can(bob_secrets, "s") == set()
    alice_secrets.grant("s", "users", "WRITE")
    assert can(bob_secrets, "s") == {"read", "write"}
    gone = alice_secrets.post("acls/delete", {"scope": "s", "principal": "data-team"})
    assert gone.status_code == 404 and gone.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_initial_manage_principal_users_lets_everyone_manage(alice_secrets, bob_secrets):
    alice_secrets.create_scope("shared", initial_manage_principal="users")
    assert can(bob_secrets, "shared") == {"write", "manage"}  # no secret "k" to read yet
    refused = alice_secrets.post("scopes/create", {"scope": "x", "initial_manage_principal": "bob"})
    assert refused.status_code == 400


def test_admins_manage_every_scope(alice_secrets, bob_secrets, bob):
    alice_secrets.create_scope("s")
    alice_secrets.put("s", "k", "v")
    Group.objects.get_or_create(name="admins")[0].user_set.add(bob)
    assert can(bob_secrets, "s") == {"read", "write", "manage"}


def test_the_audit_log_names_secret_actions_and_never_holds_a_value(alice_secrets):
    alice_secrets.create_scope("s")
    alice_secrets.put("s", "k", "audit-must-not-see-this")
    alice_secrets.ok(alice_secrets.post("put", {"scope": "s", "key": "b",
                                                "bytes_value": base64.b64encode(b"nor-these-bytes").decode()}))
    alice_secrets.post("put", {"scope": "s", "key": "bad key", "string_value": "nor-a-refused-one"})
    rows = list(AuditEvent.objects.filter(service_name="secrets").values_list("action_name", "request_params"))
    assert [action for action, _ in rows] == ["createScope", "putSecret", "putSecret", "putSecret"]
    dumped = json.dumps([params for _, params in rows]) + json.dumps(
        list(AuditEvent.objects.values_list("error_message", flat=True)))
    assert "s" in dumped and "k" in dumped  # the rows are there, with their scope and key...
    for value in ("audit-must-not-see-this", base64.b64encode(b"nor-these-bytes").decode(), "nor-a-refused-one"):
        assert value not in dumped  # ...but no value
