"""Issue 15, job permissions in Chromium against a real `serve`: bob sees only the jobs he may
view, has no Repair or Cancel on a job he may only view, and shares his own job through the
Permissions dialog, which the API then reports."""

import secrets

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import jobs
from playwright.sync_api import expect

from tests.e2e.test_core_with_the_sdk import WAIT
from tests.e2e.test_dashboard_in_a_browser import shot

pytestmark = pytest.mark.e2e


def make_user(server, name, password):
    token = server.manage("createapitoken", name).strip().splitlines()[-1]
    server.manage("shell", "-c", "from django.contrib.auth import get_user_model; "
                  f"u = get_user_model().objects.get(username={name!r}); u.set_password({password!r}); u.save()")
    return WorkspaceClient(host=server.url, token=token)


def failing_task(server):
    return jobs.Task(task_key="t", spark_python_task=jobs.SparkPythonTask(python_file=server.script("fail.py")))


def test_bob_sees_his_jobs_cannot_repair_a_viewed_one_and_shares_his_own(page, sqlite_server):
    server, admin = sqlite_server, sqlite_server.client()
    suffix = secrets.token_hex(3)
    bob_name, charlie_name, password = f"bob-{suffix}", f"charlie-{suffix}", secrets.token_urlsafe(12)
    bob = make_user(server, bob_name, password)
    make_user(server, charlie_name, secrets.token_urlsafe(12))
    hidden = admin.jobs.create(name=f"alice only {suffix}", tasks=[failing_task(server)]).job_id
    viewed = admin.jobs.create(name=f"shared view {suffix}", tasks=[failing_task(server)], access_control_list=[
        jobs.JobAccessControlRequest(user_name=bob_name, permission_level=jobs.JobPermissionLevel.CAN_VIEW)]).job_id
    finished = admin.jobs.run_now(job_id=viewed).result(timeout=WAIT)
    assert finished.state.result_state == jobs.RunResultState.FAILED
    failed_run = next(iter(admin.jobs.list_runs(job_id=viewed))).run_id
    own = bob.jobs.create(name=f"bob's own {suffix}", tasks=[failing_task(server)]).job_id

    page.goto(server.url + "/login/?next=/")
    page.fill("#id_username", bob_name)
    page.fill("#id_password", password)
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("Jobs")
    page.goto(server.url + f"/?q={suffix}")
    expect(page.get_by_role("link", name=f"bob's own {suffix}")).to_be_visible()
    expect(page.get_by_role("link", name=f"shared view {suffix}")).to_be_visible()
    expect(page.get_by_role("link", name=f"alice only {suffix}")).to_have_count(0)
    shot(page, "30-jobs-bob-may-view")
    assert page.goto(server.url + f"/jobs/{hidden}/").status == 403

    page.goto(server.url + f"/jobs/{viewed}/runs/{failed_run}/")
    expect(page.locator("#run-state")).to_have_text("Failed")
    expect(page.locator("#repair-run")).to_have_count(0)
    expect(page.locator("#cancel-run")).to_have_count(0)
    page.goto(server.url + f"/jobs/{viewed}/")
    expect(page.locator("#run-now")).to_have_count(0)
    page.click("#permissions-button")
    expect(page.locator("#permissions-dialog")).to_contain_text("Only those with CAN_MANAGE")
    expect(page.locator("#permissions-save")).to_have_count(0)

    page.goto(server.url + f"/jobs/{own}/")
    page.click("#permissions-button")
    dialog = page.locator("#permissions-dialog")
    expect(dialog.locator(f"tr[data-principal='{bob_name}']")).to_have_attribute("data-level", "IS_OWNER")
    page.select_option("#permission-kind", "user_name")
    page.fill("#permission-principal", charlie_name)
    page.select_option("#permission-level", "CAN_MANAGE_RUN")
    shot(page, "31-permissions-dialog")
    page.click("#permissions-save")
    expect(page.locator(".alert-success")).to_contain_text(f"{charlie_name} now has CAN_MANAGE_RUN")
    granted = {entry.user_name: entry.all_permissions[0].permission_level
               for entry in admin.jobs.get_permissions(str(own)).access_control_list if entry.user_name}
    assert granted == {bob_name: jobs.JobPermissionLevel.IS_OWNER, charlie_name: jobs.JobPermissionLevel.CAN_MANAGE_RUN}

    page.click("#permissions-button")
    page.fill("#permission-principal", "nobody-at-all")
    page.click("#permissions-save")
    expect(page.locator(".alert-danger")).to_contain_text("User nobody-at-all does not exist")
