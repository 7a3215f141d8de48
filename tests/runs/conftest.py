import pytest
from django.contrib.auth import get_user_model

from jobs.models import Job
from jobs.spec.settings import validate_job_settings


@pytest.fixture
def alice(transactional_db):
    # Real commits: attempts reach the broker only after their transaction commits.
    return get_user_model().objects.create_user("alice", password="x")


def make_job(user, tasks, **settings):
    """A saved job whose tasks are shell commands unless given otherwise."""
    normalized = validate_job_settings({"name": settings.pop("name", "job"), "tasks": tasks, **settings})
    job = Job(creator=user)
    job.save_version(normalized, user)
    return job


def shell(key, command="true", depends_on=(), **fields):
    return {"task_key": key, "shell_command_task": {"command": command},
            "depends_on": [{"task_key": d} for d in depends_on], **fields}


@pytest.fixture
def broker(monkeypatch):
    """The broker's twin: records what would be enqueued, after commit, instead of running it."""

    class Recorder:
        def __init__(self):
            self.sent = []

        def __call__(self, ids):
            self.sent.extend(ids)

        def take(self):
            sent, self.sent = self.sent, []
            return sent

    recorder = Recorder()
    monkeypatch.setattr("runs.broker.enqueue_attempts", recorder)
    return recorder


def claim_attempt(attempt_id):
    """The attempt, claimed as a worker of this host would claim it, or None."""
    from runs.worker import claim_loaded, claimable

    attempt = claimable(attempt_id)
    return attempt if attempt is not None and claim_loaded(attempt) else None
