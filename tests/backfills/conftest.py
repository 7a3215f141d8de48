"""Fixtures for the backfill tests: the API tests' users and clients, a job with a date
parameter, times in epoch milliseconds, and the broker's twin that holds what it is given."""

from datetime import datetime, timezone

import pytest

from tests.api.conftest import client_for, create_job, make_user, shell_task  # noqa: F401 (create_job, shell_task: for the tests)

UTC = timezone.utc
DAY_MS = 24 * 3600 * 1000


def ms(*args):
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def dated_job(api, command="echo {{job.parameters.day}}", **settings):
    """A job without a schedule whose `day` parameter looks like a date."""
    return create_job(api, tasks=[shell_task("t", command)],
                      parameters=[{"name": "day", "default": "2024-01-01"}, {"name": "who", "default": "ada"}],
                      **settings)


def days(job_id, first_day, count, **body):
    """A jobs/backfill body for `count` daily slots from 2024-01-`first_day`."""
    start = ms(2024, 1, first_day)
    return {"job_id": job_id, "start_time": start, "end_time": start + count * DAY_MS,
            "interval": {"interval": 1, "unit": "DAYS"}, **body}


@pytest.fixture
def alice(db):
    return make_user("alice")


@pytest.fixture
def api(alice, client):
    return client_for(client, alice)


@pytest.fixture
def committed(transactional_db):
    """Real commits: reactions run after their transaction commits, as in production."""
    return transactional_db
