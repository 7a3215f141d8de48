"""The Permissions API for jobs: GET, PUT, PATCH and permissionLevels in the SDK's shapes,
access_control_list on jobs/create and runs/submit, and every bad list refused whole."""

import json

import pytest
from django.contrib.auth.models import Group

from jobs.models import ADMINS_GROUP, JobPermission, ServicePrincipal
from tests.api.conftest import client_for, create_job, make_user, shell_task


def call(api, method, job_id, body=None, suffix=""):
    return api.client.generic(method, f"/api/2.0/permissions/jobs/{job_id}{suffix}", json.dumps(body or {}),
                              content_type="application/json", headers=api.headers())


def acl(api, method, job_id, *entries):
    return call(api, method, job_id, {"access_control_list": list(entries)})


def levels(body):
    return {next(v for k, v in e.items() if k.endswith("_name")): [
        (p["permission_level"], p["inherited"]) for p in e["all_permissions"]] for e in body["access_control_list"]}


@pytest.fixture
def bob(db):
    return make_user("bob")


@pytest.fixture
def admin_api(client, db):
    root = make_user("root")
    root.groups.add(Group.objects.get(name=ADMINS_GROUP))
    return client_for(client, root)


def test_get_shows_the_owner_the_grants_and_the_admins_inherited_manage(api, bob):
    team = Group.objects.create(name="data-eng")
    job_id = create_job(api, access_control_list=[{"user_name": "bob", "permission_level": "CAN_VIEW"},
                                                  {"group_name": "data-eng", "permission_level": "CAN_MANAGE_RUN"}])
    body = call(api, "GET", job_id).json()
    assert body["object_id"] == f"/jobs/{job_id}" and body["object_type"] == "job"
    assert levels(body) == {"alice": [("IS_OWNER", False)], "bob": [("CAN_VIEW", False)],
                            team.name: [("CAN_MANAGE_RUN", False)], ADMINS_GROUP: [("CAN_MANAGE", True)]}
    admins = body["access_control_list"][-1]
    assert admins["all_permissions"][0]["inherited_from_object"] == ["/jobs/"]
    listed = call(api, "GET", job_id, suffix="/permissionLevels").json()["permission_levels"]
    assert [entry["permission_level"] for entry in listed] == ["CAN_VIEW", "CAN_MANAGE_RUN", "IS_OWNER", "CAN_MANAGE"]


def test_patch_merges_put_replaces_and_both_answer_the_new_list(api, bob):
    make_user("carol")
    job_id = create_job(api)
    patched = acl(api, "PATCH", job_id, {"user_name": "bob", "permission_level": "CAN_VIEW"})
    assert levels(patched.json())["bob"] == [("CAN_VIEW", False)]
    acl(api, "PATCH", job_id, {"user_name": "carol", "permission_level": "CAN_MANAGE"})
    replaced = acl(api, "PUT", job_id, {"user_name": "carol", "permission_level": "CAN_VIEW"}).json()
    assert set(levels(replaced)) == {"alice", "carol", ADMINS_GROUP}  # bob is gone, the owner stays
    assert levels(replaced)["carol"] == [("CAN_VIEW", False)]


def test_service_principals_are_principals_and_may_own_a_job(admin_api, api):
    sp_user = make_user("6f2e1c2a-0000-4000-8000-000000000001")
    ServicePrincipal.objects.create(user=sp_user, application_id="6f2e1c2a-0000-4000-8000-000000000001")
    job_id = create_job(api)
    body = acl(admin_api, "PATCH", job_id, {"service_principal_name": sp_user.username,
                                            "permission_level": "IS_OWNER"}).json()
    assert levels(body)[sp_user.username] == [("IS_OWNER", False)]
    assert levels(body)["alice"] == [("CAN_MANAGE", False)]  # the previous owner keeps CAN_MANAGE


@pytest.mark.parametrize("entries, words", [
    ([{"user_name": "nobody", "permission_level": "CAN_VIEW"}], "User nobody does not exist"),
    ([{"group_name": "ghosts", "permission_level": "CAN_VIEW"}], "Group ghosts does not exist"),
    ([{"service_principal_name": "bob", "permission_level": "CAN_VIEW"}], "Service principal bob does not exist"),
    ([{"user_name": "bob", "permission_level": "CAN_EVERYTHING"}], "'CAN_EVERYTHING' is not a permission level"),
    ([{"group_name": "users-group", "permission_level": "IS_OWNER"}], "A group cannot own a job"),
    ([{"user_name": "alice", "permission_level": "IS_OWNER"}, {"user_name": "bob", "permission_level": "IS_OWNER"}],
     "exactly one owner"),
    ([{"user_name": "alice", "permission_level": "CAN_VIEW"}], "without an owner"),
    ([{"user_name": "bob", "group_name": "users-group", "permission_level": "CAN_VIEW"}], "exactly one of"),
    ([{"user_name": "bob"}], "permission_level is required"),
])
def test_each_bad_list_is_a_400_naming_the_entry_and_changes_nothing(api, bob, entries, words):
    Group.objects.create(name="users-group")
    job_id = create_job(api, access_control_list=[{"user_name": "bob", "permission_level": "CAN_VIEW"}])
    before = list(JobPermission.objects.filter(job_id=job_id).values_list("id", "user_id", "group_id", "level"))
    for method in ("PATCH", "PUT"):
        # The valid first entry must not be applied when a later one is refused.
        response = acl(api, method, job_id, {"user_name": "bob", "permission_level": "CAN_MANAGE"}, *entries)
        assert response.status_code == 400, response.content
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert words in response.json()["message"]
    after = list(JobPermission.objects.filter(job_id=job_id).values_list("id", "user_id", "group_id", "level"))
    assert after == before


def test_a_bad_list_on_create_or_submit_leaves_no_job_and_no_run(api):
    from jobs.models import Job
    from runs.models import Run

    jobs, runs = Job.objects.count(), Run.objects.count()
    bad = [{"user_name": "nobody", "permission_level": "CAN_VIEW"}]
    assert api.post("jobs/create", {"name": "j", "tasks": [shell_task("t")], "access_control_list": bad}).status_code == 400
    assert api.post("jobs/runs/submit", {"run_name": "r", "tasks": [shell_task("t")],
                                         "access_control_list": bad}).status_code == 400
    assert (Job.objects.count(), Run.objects.count()) == (jobs, runs)


def test_only_admins_hand_a_job_to_someone_else(api, admin_api, bob):
    job_id = create_job(api)
    response = acl(api, "PATCH", job_id, {"user_name": "bob", "permission_level": "IS_OWNER"})
    assert response.status_code == 403 and "Only workspace admins" in response.json()["message"]
    refused = api.post("jobs/create", {"name": "j", "access_control_list": [
        {"user_name": "bob", "permission_level": "IS_OWNER"}]})
    assert refused.status_code == 403
    assert acl(admin_api, "PATCH", job_id, {"user_name": "bob", "permission_level": "IS_OWNER"}).status_code == 200


def test_a_removed_user_loses_access_at_once(api, client, bob):
    job_id = create_job(api, access_control_list=[{"user_name": "bob", "permission_level": "CAN_MANAGE"}])
    bob_api = client_for(client, bob)
    assert bob_api.get("jobs/get", job_id=job_id).status_code == 200
    bob.is_active = False
    bob.save()
    assert bob_api.get("jobs/get", job_id=job_id).status_code == 401


def test_unknown_jobs_and_submit_jobs_have_no_permissions_object(api):
    assert call(api, "GET", 999999).status_code == 404
    assert call(api, "GET", "abc").status_code == 400
    run_id = api.post_ok("jobs/runs/submit", {"run_name": "r", "tasks": [shell_task("t")]})["run_id"]
    from runs.models import Run

    hidden_job = Run.objects.get(id=run_id).job_id
    assert call(api, "GET", hidden_job).status_code == 404


def test_a_create_list_naming_its_creator_below_owner_keeps_the_creator_owner(api, bob):
    job_id = create_job(api, access_control_list=[{"user_name": "alice", "permission_level": "CAN_MANAGE"},
                                                  {"user_name": "bob", "permission_level": "CAN_VIEW"}])
    assert levels(call(api, "GET", job_id).json()) == {"alice": [("IS_OWNER", False)], "bob": [("CAN_VIEW", False)],
                                                       ADMINS_GROUP: [("CAN_MANAGE", True)]}


def test_the_grant_of_a_deactivated_user_can_still_be_removed(api, client, bob):
    from jobs.models import Job
    from jobs.permissions import revoke

    job_id = create_job(api, access_control_list=[{"user_name": "bob", "permission_level": "CAN_VIEW"}])
    bob.is_active = False
    bob.save()
    revoke(Job.objects.get(id=job_id), "user_name", "bob", user=make_user("carol", is_superuser=True))
    assert not JobPermission.objects.filter(job_id=job_id, user=bob).exists()


def test_a_level_the_rule_does_not_know_grants_nothing(api, client, bob):
    job_id = create_job(api)
    JobPermission.objects.create(job_id=job_id, user=bob, level="CAN_EVERYTHING")  # a hand-edited row
    assert client_for(client, bob).get("jobs/get", job_id=job_id).status_code == 403


def test_keeping_a_run_job_target_needs_no_new_grant(api, client, bob):
    target = create_job(api, name="child")
    bob_api = client_for(client, bob)
    refused = bob_api.post("jobs/create", {"name": "parent", "tasks": [{"task_key": "t", "run_job_task": {"job_id": target}}]})
    assert refused.status_code == 400 and f"permissions on job {target}" in refused.content.decode()
    acl(api, "PATCH", target, {"user_name": "bob", "permission_level": "CAN_MANAGE_RUN"})
    parent = bob_api.post_ok("jobs/create", {"name": "parent", "tasks": [{"task_key": "t", "run_job_task": {"job_id": target}}]})["job_id"]
    acl(api, "PUT", target)  # bob loses his grant on the child
    assert bob_api.post("jobs/update", {"job_id": parent, "new_settings": {"description": "still mine"}}).status_code == 200
