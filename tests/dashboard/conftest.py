"""Fixtures for the dashboard tests: a signed-in browser session (Django's test client) and
jobs made through the same code the API uses."""

import pytest
from django.contrib.auth import get_user_model

from jobs.checks import check_settings_against_server
from jobs.models import Job
from jobs.spec.settings import validate_job_settings


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("ada", password="pw", is_staff=True)


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


def make_job(user, **settings):
    body = {"name": "nightly", "tasks": [{"task_key": "hello", "shell_command_task": {"command": "echo hi"}}], **settings}
    job = Job(kind=Job.Kind.JOB, creator=user)
    job.save_version(check_settings_against_server(validate_job_settings(body)), user)
    return job
