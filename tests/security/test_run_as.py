"""run_as names an identity its saver may use (Databricks' rule: themself, or anyone for an
admin; a service principal only for admins here), and the tasks of a run act as that identity
through a token that works only while their attempt runs."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from jobs.models import ADMINS_GROUP, ServicePrincipal
from runs.attempt_credentials import databricks_environment, run_as_token
from runs.dispatch import finish_attempt
from runs.engine.endings import attempt_ended
from runs.models import Run, TaskRun
from tests.api.conftest import client_for, shell_task

APPLICATION_ID = "0b7c6c3e-1111-4222-8333-444455556666"


def service_principal():
    user = get_user_model().objects.create_user(APPLICATION_ID)
    ServicePrincipal.objects.create(user=user, application_id=APPLICATION_ID)
    return user


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


def test_groups_are_refused_and_service_principals_are_for_admins(api, client, db):
    response = api.post("jobs/create", job_body(run_as={"group_name": "admins"}))
    assert "run_as.group_name: jobs cannot run as a group" in response.json()["message"]
    response = api.post("jobs/create", job_body(run_as={"service_principal_name": "sp-1"}))
    assert "run_as.service_principal_name: there is no active service principal 'sp-1'" in response.json()["message"]
    robot = service_principal()
    response = api.post("jobs/create", job_body(run_as={"service_principal_name": APPLICATION_ID}))
    assert response.status_code == 400
    assert f"alice may not run jobs as service principal {APPLICATION_ID}" in response.json()["message"]
    admin = get_user_model().objects.create_user("root-admin")
    admin.groups.add(Group.objects.get(name=ADMINS_GROUP))
    admin_api = client_for(client, admin)
    job_id = admin_api.post_ok("jobs/create", job_body(run_as={"service_principal_name": APPLICATION_ID}))["job_id"]
    assert admin_api.get_ok("jobs/get", job_id=job_id)["run_as_user_name"] == robot.username


def test_a_job_runs_as_its_owner_by_default_and_its_tasks_get_a_token_of_that_identity(api, client, db, held_broker):
    robot = service_principal()
    alice_job = api.post_ok("jobs/create", job_body())["job_id"]
    root = client_for(client, get_user_model().objects.create_superuser("root-admin"))
    robot_job = root.post_ok("jobs/create", job_body(run_as={"service_principal_name": APPLICATION_ID}))["job_id"]
    mine = api.post_ok("jobs/run-now", {"job_id": alice_job})["run_id"]
    robots = root.post_ok("jobs/run-now", {"job_id": robot_job})["run_id"]
    assert Run.objects.get(id=mine).run_as.username == "alice"
    assert Run.objects.get(id=robots).run_as == robot

    attempt = TaskRun.objects.select_related("run").get(run_id=robots)
    environment = databricks_environment(attempt)
    assert set(environment) == {"DATABRICKS_HOST", "DATABRICKS_TOKEN"}
    as_task = client_for(client, robot)
    as_task.token = environment["DATABRICKS_TOKEN"]
    me = client.get("/api/2.0/preview/scim/v2/Me", headers=as_task.headers()).json()
    assert me["applicationId"] == me["userName"] == APPLICATION_ID  # w.current_user.me().user_name
    # It acts as the robot, with the robot's permissions: alice's job is not the robot's to view.
    assert as_task.get("jobs/get", job_id=alice_job).status_code == 403
    finish_attempt(attempt.id, attempt_ended("SUCCESS"))
    assert client.get("/api/2.0/preview/scim/v2/Me", headers=as_task.headers()).status_code == 401


def test_a_forged_or_foreign_run_as_token_is_refused(api, client, db, held_broker):
    job_id = api.post_ok("jobs/create", job_body())["job_id"]
    run_id = api.post_ok("jobs/run-now", {"job_id": job_id})["run_id"]
    attempt = TaskRun.objects.get(run_id=run_id)
    good = run_as_token(attempt.id)
    for token in (good[:-2] + ("AA" if not good.endswith("AA") else "BB"), f"runas-{attempt.id}",
                  run_as_token(attempt.id + 1000)):
        assert client.get("/api/2.0/preview/scim/v2/Me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert client.get("/api/2.0/preview/scim/v2/Me", headers={"Authorization": f"Bearer {good}"}).status_code == 200


def test_a_user_may_name_themself_and_an_admin_anyone(api, client, db):
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


def test_a_task_token_is_never_admin_and_makes_no_tokens(api, client, db, held_broker, settings):
    root = get_user_model().objects.create_superuser("root-admin")
    admin_api = client_for(client, root)
    job_id = admin_api.post_ok("jobs/create", job_body())["job_id"]  # runs as root, its owner
    other = api.post_ok("jobs/create", job_body())["job_id"]  # alice's: root may see it as an admin only
    run_id = admin_api.post_ok("jobs/run-now", {"job_id": job_id})["run_id"]
    attempt = TaskRun.objects.select_related("run").get(run_id=run_id)
    headers = {"Authorization": f"Bearer {databricks_environment(attempt)['DATABRICKS_TOKEN']}"}
    assert client.get("/api/2.2/jobs/get", {"job_id": job_id}, headers=headers).status_code == 200  # its own job
    assert client.get("/api/2.2/jobs/get", {"job_id": other}, headers=headers).status_code == 403  # no admin
    made = client.post("/api/2.0/token/create", "{}", content_type="application/json", headers=headers)
    assert made.status_code == 403 and "cannot make or revoke tokens" in made.json()["message"]
    assert client.get("/api/2.0/token-management/tokens", headers=headers).status_code == 403
    settings.LAKEFLOW_TASK_RUN_AS_TOKEN = False
    assert databricks_environment(attempt) == {}


def test_a_service_principal_may_name_itself_as_run_as(client, db):
    robot = service_principal()
    robot_api = client_for(client, robot)
    job_id = robot_api.post_ok("jobs/create", job_body(run_as={"service_principal_name": APPLICATION_ID}))["job_id"]
    assert robot_api.get_ok("jobs/get", job_id=job_id)["run_as_user_name"] == APPLICATION_ID
