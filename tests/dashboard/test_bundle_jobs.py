"""Jobs a bundle deployed: the job page names the bundle and target (read from the metadata file
in the workspace, tolerant of a missing or broken one), a UI_LOCKED job's editors render disabled
with the reason and refuse their POSTs, and "Disconnect from source" makes it editable again."""

import json
import os

import pytest
from bs4 import BeautifulSoup
from django.contrib.auth import get_user_model
from django.urls import reverse

from audit.models import AuditEvent
from jobs.models import JobPermission
from jobs.spec.deployment import LOCKED_REASON
from runs.executors.workspace_paths import Roots
from tests.dashboard.conftest import make_job

STATE = "/Workspace/Users/ada/.bundle/demo/dev/state"


@pytest.fixture
def root(tmp_path, settings):
    roots = Roots(tmp_path / "Volumes", tmp_path / "Workspace", tmp_path / "dbfs")
    os.makedirs(roots.workspace)
    settings.LAKEFLOW_FS_ROOTS = roots
    return tmp_path / "Workspace"


def write_metadata(root, job_id, text=None):
    path = root / "Users/ada/.bundle/demo/dev/state/metadata.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text is not None else json.dumps({"version": 1, "config": {
        "bundle": {"name": "demo", "target": "dev", "git": {"branch": "main", "commit": "0123456789abcdef"}},
        "workspace": {"file_path": "/Workspace/Users/ada/.bundle/demo/dev/files"},
        "resources": {"jobs": {"nightly": {"id": str(job_id), "relative_path": "resources/nightly.yml"}}}}}))


def bundle_job(user, edit_mode="UI_LOCKED"):
    return make_job(user, edit_mode=edit_mode,
                    deployment={"kind": "BUNDLE", "metadata_file_path": f"{STATE}/metadata.json"})


def soup(response):
    assert response.status_code == 200, response.status_code
    return BeautifulSoup(response.content, "html.parser")


def text_of(page, element_id):
    return " ".join(page.find(id=element_id).get_text().split())


def test_the_job_page_names_the_bundle_and_disables_edit_with_the_reason(browser, user, root):
    job = bundle_job(user)
    write_metadata(root, job.id)

    page = soup(browser.get(reverse("jobs:detail", args=[job.id])))

    banner = text_of(page, "bundle-banner")
    assert banner.startswith("Deployed from bundle demo (target dev), defined in resources/nightly.yml")
    assert "branch main" in banner and LOCKED_REASON in banner
    edit = page.find(id="edit-job")
    assert edit.name == "button" and edit.has_attr("disabled") and edit.parent["title"] == LOCKED_REASON
    assert page.find(id="disconnect-from-source") is not None


@pytest.mark.parametrize("metadata", [None, "{not json", '{"version": 1}', "[" * 100_000 + "]" * 100_000],
                         ids=["missing", "broken", "no-bundle", "nested-too-deep"])
def test_an_unreadable_metadata_file_shows_its_path(browser, user, root, metadata):
    job = bundle_job(user, edit_mode="EDITABLE")
    if metadata is not None:
        write_metadata(root, job.id, metadata)

    page = soup(browser.get(reverse("jobs:detail", args=[job.id])))

    assert text_of(page, "bundle-banner") == (f"Deployed from a bundle; its metadata {STATE}/metadata.json "
                                              "cannot be read.")
    assert page.find(id="edit-job").name == "a"  # EDITABLE: the bundle does not lock it


def test_a_job_without_deployment_shows_no_banner(browser, user, root):
    page = soup(browser.get(reverse("jobs:detail", args=[make_job(user).id])))
    assert page.find(id="bundle-banner") is None and page.find(id="locked-reason") is None


def test_the_editors_of_a_locked_job_render_disabled_and_refuse_their_posts(browser, user, root):
    job = bundle_job(user)
    for name in ("jobs:edit", "jobs:edit_source"):
        page = soup(browser.get(reverse(name, args=[job.id])))
        assert LOCKED_REASON in text_of(page, "locked-reason")
        assert page.find("form", method="post", id=["job-form", "source-form"]).fieldset.has_attr("disabled")
    versions = soup(browser.get(reverse("jobs:versions", args=[job.id])))
    assert "Restore" not in versions.get_text()

    for name, body in (("jobs:edit", {"name": "changed"}), ("jobs:edit_source", {"format": "json", "source": "{}"})):
        refused = browser.post(reverse(name, args=[job.id]), body)
        assert refused.status_code == 403
        assert LOCKED_REASON in BeautifulSoup(refused.content, "html.parser").find(id="permission-denied").text
    job.refresh_from_db()
    assert job.current_version.number == 1 and job.name == "nightly"


def test_disconnecting_makes_the_job_editable_and_is_audited(browser, user, root):
    job = bundle_job(user)

    response = browser.post(reverse("jobs:disconnect", args=[job.id]))

    assert response.status_code == 302
    job.refresh_from_db()
    assert job.current_version.number == 2 and job.settings["edit_mode"] == "EDITABLE"
    assert job.settings["deployment"]["kind"] == "BUNDLE"  # still deployed from it
    event = AuditEvent.objects.get(path=reverse("jobs:disconnect", args=[job.id]))
    assert (event.service_name, event.action_name, event.outcome) == ("jobs", "disconnectFromSource", AuditEvent.Outcome.OK)
    page = soup(browser.get(reverse("jobs:detail", args=[job.id])))
    assert page.find(id="edit-job").name == "a" and page.find(id="disconnect-from-source") is None
    assert browser.get(reverse("jobs:edit", args=[job.id])).status_code == 200


def test_only_those_who_may_manage_the_job_disconnect_it(client, user, root):
    job = bundle_job(user)
    viewer = get_user_model().objects.create_user("viewer", password="pw")
    JobPermission.objects.create(job=job, user=viewer, level="CAN_VIEW")
    client.force_login(viewer)

    page = soup(client.get(reverse("jobs:detail", args=[job.id])))
    assert page.find(id="disconnect-from-source") is None and page.find(id="edit-job") is None
    assert client.post(reverse("jobs:disconnect", args=[job.id])).status_code == 403
    job.refresh_from_db()
    assert job.settings["edit_mode"] == "UI_LOCKED"
