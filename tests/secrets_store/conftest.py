"""Secrets tests: API clients for alice (who makes the scopes) and bob, a secrets helper."""

import base64

import pytest

from tests.api.conftest import alice, api, client_for, make_user  # noqa: F401 (fixtures)


class SecretsClient:
    """The Secrets API under /api/2.0/secrets/ with one user's token."""

    def __init__(self, api):
        self.api = api

    def post(self, route, body):
        return self.api.client.post(f"/api/2.0/secrets/{route}", body, content_type="application/json",
                                    headers=self.api.headers())

    def get(self, route, **query):
        return self.api.client.get(f"/api/2.0/secrets/{route}", query, headers=self.api.headers())

    def ok(self, response):
        assert response.status_code == 200, response.content.decode()[:2000]
        return response.json()

    def create_scope(self, scope, **fields):
        return self.ok(self.post("scopes/create", {"scope": scope, **fields}))

    def put(self, scope, key, value):
        return self.ok(self.post("put", {"scope": scope, "key": key, "string_value": value}))

    def value(self, scope, key):
        return base64.b64decode(self.ok(self.get("get", scope=scope, key=key))["value"]).decode()

    def grant(self, scope, principal, permission):
        return self.ok(self.post("acls/put", {"scope": scope, "principal": principal, "permission": permission}))


@pytest.fixture
def alice_secrets(api):
    return SecretsClient(api)


@pytest.fixture
def bob(db):
    return make_user("bob")


@pytest.fixture
def bob_secrets(bob, client):
    return SecretsClient(client_for(client, bob))
