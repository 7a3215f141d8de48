"""One permission rule for every way a job can be changed: the API, the form editor and the
YAML/JSON editor all refuse a signed-in user who is neither the job's creator nor a superuser."""

import json

import pytest
from django.contrib.auth import get_user_model

from jobs.models import ApiToken, Job, JobVersion
from tests.dashboard.conftest import make_job
from tests.dashboard.test_authoring import job_post


@pytest.fixture
def owner(db):
    return get_user_model().objects.create_user("olga", password="pw")


@pytest.fixture
def intruder(db):
    return get_user_model().objects.create_user("mallory", password="pw")


@pytest.fixture
def job(owner):
    return make_job(owner)


def versions_of(job):
    return list(JobVersion.objects.filter(job=job).values_list("number", flat=True))


def test_the_yaml_editor_refuses_to_save_a_job_for_someone_who_may_not_change_it(client, intruder, job):
    client.force_login(intruder)
    source = "name: hijacked\ntasks:\n- task_key: x\n  shell_command_task: {command: id}\n"
    response = client.post(f"/jobs/{job.id}/source/", {"format": "yaml", "source": source})
    assert response.status_code == 403
    assert "mallory" in response.content.decode() and "creator or a superuser" in response.content.decode()
    assert versions_of(job) == [1]
    assert Job.objects.get(id=job.id).name == "nightly"


def test_the_form_editor_refuses_to_save_a_job_for_someone_who_may_not_change_it(client, intruder, job):
    client.force_login(intruder)
    response = client.post(f"/jobs/{job.id}/edit/", job_post([{"task_key": "x", "command": "id"}], name="hijacked"))
    assert response.status_code == 403
    assert versions_of(job) == [1]


def test_the_edit_pages_are_refused_and_not_offered_to_someone_who_may_not_change_the_job(client, intruder, job):
    client.force_login(intruder)
    assert client.get(f"/jobs/{job.id}/edit/").status_code == 403
    assert client.get(f"/jobs/{job.id}/source/").status_code == 403
    detail = client.get(f"/jobs/{job.id}/").content.decode()
    assert 'id="edit-job"' not in detail
    versions = client.get(f"/jobs/{job.id}/versions/")
    assert versions.status_code == 200 and f"/jobs/{job.id}/source/" not in versions.content.decode()


def test_the_api_refuses_the_same_change_with_the_same_rule(client, intruder, job):
    token = ApiToken.issue(intruder)[1]
    response = client.post("/api/2.2/jobs/reset", json.dumps({"job_id": job.id, "new_settings": {"name": "x"}}),
                           content_type="application/json", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403 and response.json()["error_code"] == "PERMISSION_DENIED"
    assert versions_of(job) == [1]


@pytest.mark.parametrize("who", ["creator", "superuser"])
def test_the_creator_and_superusers_may_still_save_from_the_editor(client, owner, job, who):
    user = owner if who == "creator" else get_user_model().objects.create_superuser("root-user", password="pw")
    client.force_login(user)
    source = "name: renamed\ntasks:\n- task_key: x\n  shell_command_task: {command: echo hi}\n"
    response = client.post(f"/jobs/{job.id}/source/", {"format": "yaml", "source": source})
    assert response.status_code == 302
    assert versions_of(job) == [1, 2] and Job.objects.get(id=job.id).name == "renamed"
    assert 'id="edit-job"' in client.get(f"/jobs/{job.id}/").content.decode()
