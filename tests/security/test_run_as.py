"""run_as.user_name may name only a user the saver may use (until run_as comes with per-job
permissions): themself, or anyone for a superuser. Otherwise run_as_user_name is a lie."""

from django.contrib.auth import get_user_model

from tests.api.conftest import client_for, shell_task


def job_body(**fields):
    return {"name": "j", "tasks": [shell_task("t")], **fields}


def test_a_user_may_not_name_someone_else_as_run_as(api, db):
    get_user_model().objects.create_user("bob")
    response = api.post("jobs/create", job_body(run_as={"user_name": "bob"}))
    assert response.status_code == 400
    assert "run_as.user_name: alice may not run jobs as bob" in response.json()["message"]
    response = api.post("jobs/create", job_body(run_as={"user_name": "nobody-here"}))
    assert "run_as.user_name: there is no active user 'nobody-here'" in response.json()["message"]
    response = api.post("jobs/runs/submit", {"run_name": "r", "tasks": [shell_task("t")], "run_as": {"user_name": "bob"}})
    assert response.status_code == 400


def test_service_principals_and_groups_are_refused_for_now(api):
    response = api.post("jobs/create", job_body(run_as={"service_principal_name": "sp-1"}))
    assert "run_as.service_principal_name: service principals and groups cannot be run as" in response.json()["message"]


def test_a_user_may_name_themself_and_a_superuser_anyone(api, client, db):
    created = api.post_ok("jobs/create", job_body(run_as={"user_name": "alice"}))
    assert api.get_ok("jobs/get", job_id=created["job_id"])["run_as_user_name"] == "alice"
    bob = get_user_model().objects.create_user("bob")
    admin = client_for(client, get_user_model().objects.create_superuser("root-admin"))
    job_id = admin.post_ok("jobs/create", job_body(run_as={"user_name": "bob"}))["job_id"]
    assert admin.get_ok("jobs/get", job_id=job_id)["run_as_user_name"] == bob.username


def test_an_unchanged_run_as_stays_when_its_owner_edits_the_job(api, client, db):
    get_user_model().objects.create_user("bob")
    job_id = api.post_ok("jobs/create", job_body())["job_id"]
    admin = client_for(client, get_user_model().objects.create_superuser("root-admin"))
    admin.post_ok("jobs/update", {"job_id": job_id, "new_settings": {"run_as": {"user_name": "bob"}}})
    api.post_ok("jobs/update", {"job_id": job_id, "new_settings": {"name": "renamed"}})
    refused = api.post("jobs/update", {"job_id": job_id, "new_settings": {"run_as": {"user_name": "root-admin"}}})
    assert refused.status_code == 400
    assert api.get_ok("jobs/get", job_id=job_id)["run_as_user_name"] == "bob"


def test_the_editor_applies_the_same_rule(browser, db):
    get_user_model().objects.create_user("bob")
    source = "name: j\nrun_as: {user_name: bob}\ntasks:\n- task_key: t\n  shell_command_task: {command: 'true'}\n"
    response = browser.post("/jobs/new/source/", {"format": "yaml", "source": source})
    assert response.status_code == 200 and "may not run jobs as bob" in response.content.decode()
