"""Fixtures for the Jobs API tests: users with tokens, a client that speaks JSON, job factories."""

import json

import pytest
from django.contrib.auth import get_user_model

from jobs.models import ApiToken


class ApiClient:
    """Django's test client with a Bearer token; paths are relative to /api/<version>/."""

    def __init__(self, client, token, version="2.2"):
        self.client, self.token, self.version = client, token, version

    def headers(self):
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def url(self, endpoint):
        return f"/api/{self.version}/{endpoint}"

    def get(self, endpoint, **params):
        return self.client.get(self.url(endpoint), params, headers=self.headers())

    def post(self, endpoint, body=None, *, raw=None):
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.post(self.url(endpoint), data, content_type="application/json", headers=self.headers())

    def ok(self, response):
        assert response.status_code == 200, response.content.decode()[:2000]
        return response.json()

    def get_ok(self, endpoint, **params):
        return self.ok(self.get(endpoint, **params))

    def post_ok(self, endpoint, body=None):
        return self.ok(self.post(endpoint, body))

    def as_version(self, version):
        return ApiClient(self.client, self.token, version)


def make_user(name, **fields):
    return get_user_model().objects.create_user(name, password="x", **fields)


def client_for(client, user):
    return ApiClient(client, ApiToken.issue(user, "tests")[1])


@pytest.fixture
def alice(db):
    return make_user("alice")


@pytest.fixture
def api(alice, client):
    return client_for(client, alice)


@pytest.fixture
def bob_api(db, client):
    return client_for(client, make_user("bob"))


def shell_task(key, command="echo hi", depends_on=(), **fields):
    task = {"task_key": key, "shell_command_task": {"command": command}, **fields}
    if depends_on:
        task["depends_on"] = [{"task_key": upstream} for upstream in depends_on]
    return task


def create_job(api, name="job", tasks=None, **settings):
    body = {"name": name, "tasks": tasks if tasks is not None else [shell_task("hello")], **settings}
    return api.post_ok("jobs/create", body)["job_id"]
