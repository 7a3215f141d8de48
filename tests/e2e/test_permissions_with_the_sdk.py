"""Issue 15, job permissions: the permission matrix through the official SDK, on a real `serve`
and on Postgres + Redis. An admin makes a job with a failed run and grants one level; a user
holding exactly that level walks the Jobs and Permissions APIs and is allowed or refused as the
rule says."""

import secrets
from datetime import timedelta

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue, PermissionDenied
from databricks.sdk.service import iam, jobs

pytestmark = pytest.mark.e2e

WAIT = timedelta(minutes=3)
RANK = {"none": 0, "view": 1, "manage_run": 2, "manage": 3, "owner": 3, "admin": 3}
GRANTS = {"view": "CAN_VIEW", "manage_run": "CAN_MANAGE_RUN", "manage": "CAN_MANAGE"}


def failing_job(server, admin, name, acl):
    failing = jobs.Task(task_key="t", spark_python_task=jobs.SparkPythonTask(python_file=server.script("fail.py")))
    job = admin.jobs.create(name=name, tasks=[failing], access_control_list=acl)
    finished = admin.jobs.run_now(job_id=job.job_id).result(timeout=WAIT)
    assert finished.state.result_state == jobs.RunResultState.FAILED
    run = next(iter(admin.jobs.list_runs(job_id=job.job_id, expand_tasks=True)))
    return job.job_id, run


def user_client(server, name, admin_group=False, group=None):
    token = server.manage("createapitoken", name).strip().splitlines()[-1]
    client = WorkspaceClient(host=server.url, token=token)
    me = client.current_user.me()
    admin = server.client()
    for target in ([admin_group] if admin_group else []) + ([group] if group else []):
        admin.groups.patch(target, operations=[iam.Patch(op=iam.PatchOp.ADD, path="members",
                                                         value=[{"value": me.id}])])
    return client


def outcome(call):
    """"ok" or "denied": anything else is a failure of the test."""
    try:
        call()
    except PermissionDenied:
        return "denied"
    return "ok"


@pytest.mark.parametrize("level", list(RANK))
def test_the_permission_matrix_through_the_sdk(server, level):
    admin = server.client()
    suffix = secrets.token_hex(3)
    name = f"u-{level}-{suffix}"
    admins_group = next(iter(admin.groups.list(filter='displayName eq "admins"'))).id
    team = admin.groups.create(display_name=f"team-{suffix}").id if level == "manage" else None
    user = user_client(server, name, admin_group=admins_group if level == "admin" else None, group=team)
    acl = []
    if level in ("view", "manage_run"):
        acl = [jobs.JobAccessControlRequest(user_name=name, permission_level=jobs.JobPermissionLevel(GRANTS[level]))]
    elif level == "manage":
        acl = [jobs.JobAccessControlRequest(group_name=f"team-{suffix}",
                                            permission_level=jobs.JobPermissionLevel.CAN_MANAGE)]
    job_id, run = failing_job(server, admin, f"matrix {level}", acl)
    if level == "owner":  # an admin hands the job over
        admin.jobs.update_permissions(job_id, access_control_list=[jobs.JobAccessControlRequest(
            user_name=name, permission_level=jobs.JobPermissionLevel.IS_OWNER)])
    attempt = run.tasks[0].run_id

    view = {
        "get": lambda: user.jobs.get(job_id),
        "get_run": lambda: user.jobs.get_run(run.run_id),
        "get_run_output": lambda: user.jobs.get_run_output(attempt),
        "export_run": lambda: user.jobs.export_run(run.run_id),
        "list_runs": lambda: list(user.jobs.list_runs(job_id=job_id)),
        "get_permissions": lambda: user.jobs.get_permissions(str(job_id)),
        "get_permission_levels": lambda: user.jobs.get_permission_levels(str(job_id)),
    }
    run_calls = {
        "cancel_all_runs": lambda: user.jobs.cancel_all_runs(job_id=job_id),
        "repair_run": lambda: user.jobs.repair_run(run.run_id, rerun_all_failed_tasks=True),
        "run_now": lambda: user.jobs.run_now(job_id=job_id),
    }
    manage = {
        "update": lambda: user.jobs.update(job_id, new_settings=jobs.JobSettings(description="changed")),
        "update_permissions": lambda: user.jobs.update_permissions(str(job_id), access_control_list=[]),
        # The same list again: a CAN_MANAGE group keeps its grant for the delete below.
        "set_permissions": lambda: user.jobs.set_permissions(str(job_id), access_control_list=acl),
    }
    rank = RANK[level]
    for needed, calls in ((1, view), (2, run_calls), (3, manage)):
        for call_name, call in calls.items():
            assert outcome(call) == ("ok" if rank >= needed else "denied"), (level, call_name)

    listed = [j.job_id for j in user.jobs.list(name=f"matrix {level}")]
    assert listed == ([job_id] if rank >= 1 else [])
    output = user.jobs.get_run_output(attempt) if rank >= 1 else None
    if output is not None:
        assert (output.logs is not None) is (rank >= 2)  # logs are for CAN_MANAGE_RUN and up
    assert outcome(lambda: user.jobs.delete(job_id)) == ("ok" if rank >= 3 else "denied")

    # Each of those changes is in the audit log, allowed or denied, as the admin reads it.
    logged = admin.api_client.do("GET", "/api/2.0/lakeflow/audit-log", query={"user_name": name, "limit": 100})
    actions = {(e["service_name"], e["action_name"], e["response"]["result"]) for e in logged["events"]}
    expected_run, expected_manage = ("ok" if rank >= 2 else "denied"), ("ok" if rank >= 3 else "denied")
    assert {("jobs", "runNow", expected_run), ("jobs", "repairRun", expected_run),
            ("jobs", "changeJobAcl", expected_manage), ("jobs", "delete", expected_manage)} <= actions
    assert all(e["job_id"] == job_id for e in logged["events"] if e["service_name"] == "jobs")


def test_bad_lists_through_the_sdk_are_refused_whole(server):
    admin = server.client()
    job_id = admin.jobs.create(name="acl edges").job_id
    before = admin.jobs.get_permissions(str(job_id)).as_dict()
    for entries in ([jobs.JobAccessControlRequest(user_name="no-such-user", permission_level=jobs.JobPermissionLevel.CAN_VIEW)],
                    [jobs.JobAccessControlRequest(group_name="admins", permission_level=jobs.JobPermissionLevel.IS_OWNER)]):
        with pytest.raises(InvalidParameterValue):
            admin.jobs.set_permissions(str(job_id), access_control_list=entries)
    assert admin.jobs.get_permissions(str(job_id)).as_dict() == before


AS_ROBOT = '''
import sys
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import PermissionDenied

w = WorkspaceClient()  # the SDK's default auth: DATABRICKS_HOST and DATABRICKS_TOKEN from the server
print("me", w.current_user.me().user_name)
print("dbutils", w.dbutils is dbutils)  # the runtime's dbutils, as on Databricks
print("readable", w.jobs.get(int(sys.argv[1])).settings.name)
try:
    w.jobs.get(int(sys.argv[2]))
    print("private visible")
except PermissionDenied as exc:
    print("private denied:", exc)
'''


def test_a_task_s_own_workspace_client_acts_as_the_run_as_identity(server):
    admin = server.client()
    robot = admin.service_principals.create(display_name=f"robot {secrets.token_hex(3)}")
    readable = admin.jobs.create(name="the robot may read", access_control_list=[jobs.JobAccessControlRequest(
        service_principal_name=robot.application_id, permission_level=jobs.JobPermissionLevel.CAN_VIEW)]).job_id
    private = admin.jobs.create(name="not for the robot").job_id
    script = server.workspace / "as_robot.py"
    script.write_text(AS_ROBOT)
    job = admin.jobs.create(
        name="runs as the robot", run_as=jobs.JobRunAs(service_principal_name=robot.application_id),
        tasks=[jobs.Task(task_key="t", spark_python_task=jobs.SparkPythonTask(
            python_file=str(script), parameters=[str(readable), str(private)]))])
    assert admin.jobs.get(job.job_id).run_as_user_name == robot.application_id
    run = admin.jobs.run_now(job_id=job.job_id).result(timeout=WAIT)
    logs = admin.jobs.get_run_output(run.tasks[0].run_id).logs
    assert f"me {robot.application_id}" in logs
    assert "dbutils True" in logs
    assert "readable the robot may read" in logs
    assert f"private denied: User {robot.application_id} does not have View permissions on job {private}." in logs
