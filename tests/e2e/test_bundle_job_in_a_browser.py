"""A job deployed as a bundle deploys it, seen in Chromium against a real `serve`: created through
the SDK with deployment BUNDLE and edit_mode UI_LOCKED, its metadata.json uploaded through the
Workspace API; the page names the bundle and target, Edit is disabled with the reason, and
"Disconnect from source" makes it editable."""

import json
import secrets

import pytest
from databricks.sdk.service import jobs
from databricks.sdk.service.workspace import ImportFormat
from playwright.sync_api import expect

from jobs.spec.deployment import LOCKED_REASON
from tests.e2e.test_dashboard_in_a_browser import shot, sign_in

pytestmark = pytest.mark.e2e


def test_a_bundle_job_names_its_bundle_and_is_locked_until_disconnected(page, sqlite_server):
    server, w = sqlite_server, sqlite_server.client()
    bundle = f"demo-{secrets.token_hex(3)}"
    state = f"/Workspace/Users/{w.current_user.me().user_name}/.bundle/{bundle}/dev/state"
    job_id = w.jobs.create(
        name=f"[dev] nightly {bundle}",
        tasks=[jobs.Task(task_key="t", spark_python_task=jobs.SparkPythonTask(python_file=server.script("ok.py")))],
        deployment=jobs.JobDeployment(kind=jobs.JobDeploymentKind.BUNDLE, metadata_file_path=f"{state}/metadata.json"),
        edit_mode=jobs.JobEditMode.UI_LOCKED).job_id
    metadata = {"version": 1, "config": {
        "bundle": {"name": bundle, "target": "dev"},
        "workspace": {"file_path": f"{state.removesuffix('/state')}/files"},
        "resources": {"jobs": {"nightly": {"id": str(job_id), "relative_path": "resources/nightly.yml"}}}}}
    w.workspace.upload(f"{state}/metadata.json", json.dumps(metadata).encode(), format=ImportFormat.AUTO,
                       overwrite=True)

    sign_in(page, server)
    page.goto(server.url + f"/jobs/{job_id}/")
    expect(page.locator("#bundle-name")).to_have_text(bundle)
    expect(page.locator("#bundle-target")).to_have_text("dev")
    expect(page.locator("#bundle-banner")).to_contain_text("resources/nightly.yml")
    expect(page.locator("#edit-job")).to_be_disabled()
    expect(page.locator("#locked-reason")).to_contain_text(LOCKED_REASON)
    shot(page, "40-bundle-job-locked")

    page.goto(server.url + f"/jobs/{job_id}/edit/")
    expect(page.locator("#save-job")).to_be_disabled()

    page.goto(server.url + f"/jobs/{job_id}/")
    page.click("#disconnect-from-source")
    expect(page.locator(".alert-success")).to_contain_text("Disconnected")
    expect(page.locator("#edit-job")).to_be_enabled()
    assert w.jobs.get(job_id).settings.edit_mode == jobs.JobEditMode.EDITABLE


def test_a_metadata_file_nested_too_deep_to_parse_leaves_the_job_page_showing_its_path(page, sqlite_server):
    # Anyone may write /Workspace/Shared: a file there must not take down the page of every viewer.
    server, w = sqlite_server, sqlite_server.client()
    metadata_path = f"/Workspace/Shared/deep-{secrets.token_hex(3)}/metadata.json"
    w.workspace.mkdirs(metadata_path.rsplit("/", 1)[0])
    w.workspace.upload(metadata_path, b"[" * 100_000 + b"]" * 100_000, format=ImportFormat.AUTO)
    job_id = w.jobs.create(
        name="deeply nested metadata",
        tasks=[jobs.Task(task_key="t", spark_python_task=jobs.SparkPythonTask(python_file=server.script("ok.py")))],
        deployment=jobs.JobDeployment(kind=jobs.JobDeploymentKind.BUNDLE, metadata_file_path=metadata_path)).job_id

    sign_in(page, server)
    response = page.goto(server.url + f"/jobs/{job_id}/")

    assert response.status == 200
    expect(page.locator("#bundle-banner")).to_contain_text(f"its metadata {metadata_path} cannot be read")
