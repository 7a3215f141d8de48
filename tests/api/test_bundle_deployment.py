"""`deployment` and `edit_mode` through the Jobs API: checked strictly, kept through create, get,
reset and update, and a UI_LOCKED job still changes through jobs/update and jobs/reset (how a
bundle redeploys)."""

import pytest

from tests.api.conftest import create_job, shell_task

DEPLOYMENT = {"kind": "BUNDLE", "metadata_file_path": "/Workspace/Users/alice/.bundle/demo/dev/state/metadata.json"}


def problems(response):
    assert response.status_code == 400, response.content.decode()
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    return {d["path"]: d["message"] for d in body["details"] if "path" in d}


@pytest.mark.parametrize("deployment, path, message", [
    ({"metadata_file_path": "/x"}, "deployment.kind", "is required"),
    ({"kind": "GIT"}, "deployment.kind", "must be one of BUNDLE, SYSTEM_MANAGED"),
    ({"kind": "BUNDLE", "metadata_file_path": 3}, "deployment.metadata_file_path", "must be a string"),
    ({"kind": "BUNDLE", "bundle_name": "x"}, "deployment.bundle_name", "is not a field of deployment"),
    ("BUNDLE", "deployment", "must be an object"),
])
def test_a_bad_deployment_is_refused_naming_the_field(api, deployment, path, message):
    found = problems(api.post("jobs/create", {"name": "j", "tasks": [shell_task("a")], "deployment": deployment}))
    assert found[path].startswith(message)


def test_a_bad_edit_mode_is_refused(api):
    found = problems(api.post("jobs/create", {"name": "j", "tasks": [shell_task("a")], "edit_mode": "LOCKED"}))
    assert found["edit_mode"] == "must be one of EDITABLE, UI_LOCKED"


def test_deployment_and_edit_mode_round_trip_and_a_locked_job_changes_through_the_api(api):
    job_id = create_job(api, deployment=DEPLOYMENT, edit_mode="UI_LOCKED")
    settings = api.get_ok("jobs/get", job_id=job_id)["settings"]
    assert (settings["deployment"], settings["edit_mode"]) == (DEPLOYMENT, "UI_LOCKED")

    api.post_ok("jobs/update", {"job_id": job_id, "new_settings": {"description": "redeployed"}})
    settings = api.get_ok("jobs/get", job_id=job_id)["settings"]
    assert (settings["deployment"], settings["edit_mode"], settings["description"]) == (
        DEPLOYMENT, "UI_LOCKED", "redeployed")

    moved = {**DEPLOYMENT, "metadata_file_path": "/Workspace/Shared/demo/state/metadata.json"}
    api.post_ok("jobs/reset", {"job_id": job_id, "new_settings": {
        "name": "j", "tasks": [shell_task("b")], "deployment": moved, "edit_mode": "UI_LOCKED"}})
    settings = api.get_ok("jobs/get", job_id=job_id)["settings"]
    assert settings["deployment"] == moved and [t["task_key"] for t in settings["tasks"]] == ["b"]

    api.post_ok("jobs/update", {"job_id": job_id, "new_settings": {}, "fields_to_remove": ["deployment"]})
    assert "deployment" not in api.get_ok("jobs/get", job_id=job_id)["settings"]
