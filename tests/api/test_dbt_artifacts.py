"""runs/get-output's dbt_output and the download it links to: for who may read the job's logs,
only for a dbt task run that left its archive, never through a link its task planted."""

import os
import types
from pathlib import Path

import pytest

from runs.executors.dbt import artifacts_path
from runs.models import TaskRun
from tests.api.conftest import create_job
from tests.api.test_runs import run_now


@pytest.fixture
def dbt_attempt(api, bob_api, held_broker, tmp_path):
    """A dbt task run whose attempt left an archive (the broker held it: no dbt runs here)."""
    job_id = create_job(api, tasks=[{"task_key": "models", "dbt_task": {"commands": ["dbt run"],
                                                                        "project_directory": "shop"}}],
                        access_control_list=[{"user_name": "bob", "permission_level": "CAN_VIEW"}])
    attempt = TaskRun.objects.get(run_id=run_now(api, job_id))
    log_path = tmp_path / "attempt" / "output.log"
    Path(artifacts_path(str(log_path))).parent.mkdir(parents=True)
    Path(artifacts_path(str(log_path))).write_bytes(b"\x1f\x8b archive")
    TaskRun.objects.filter(id=attempt.id).update(log_path=str(log_path))
    return attempt


def test_get_output_links_the_archive_and_the_link_downloads_it(api, dbt_attempt):
    output = api.get_ok("jobs/runs/get-output", run_id=dbt_attempt.id)

    link = output["dbt_output"]["artifacts_link"]
    assert link.startswith(f"http://testserver/api/2.2/jobs/runs/dbt-artifacts?run_id={dbt_attempt.id}&signature=")
    download = api.get("jobs/runs/dbt-artifacts", run_id=dbt_attempt.id)
    assert download.status_code == 200 and download["Content-Type"] == "application/gzip"
    assert b"".join(download.streaming_content) == b"\x1f\x8b archive"
    assert download["Content-Disposition"] == f'attachment; filename="dbt-artifacts-{dbt_attempt.id}.tar.gz"'


def test_the_link_is_pre_signed_as_databricks_links_are_and_only_for_its_run_and_half_an_hour(
        api, client, dbt_attempt, monkeypatch):
    from django.core import signing

    link = api.get_ok("jobs/runs/get-output", run_id=dbt_attempt.id)["dbt_output"]["artifacts_link"]
    no_token = client.get(link.removeprefix("http://testserver"))
    assert no_token.status_code == 200 and b"".join(no_token.streaming_content) == b"\x1f\x8b archive"

    other_run = link.replace(f"run_id={dbt_attempt.id}", f"run_id={dbt_attempt.id + 1}")
    assert client.get(other_run.removeprefix("http://testserver")).status_code == 403
    assert client.get(link.removeprefix("http://testserver") + "x").status_code == 403
    now = signing.time.time  # the link as seen 31 minutes after it was made
    monkeypatch.setattr(signing, "time", types.SimpleNamespace(time=lambda: now() + 31 * 60))
    expired = client.get(link.removeprefix("http://testserver"))
    assert expired.status_code == 403 and "older than 30 minutes" in expired.json()["message"]


def test_who_may_view_the_job_but_not_read_its_logs_gets_no_link_and_no_archive(bob_api, dbt_attempt):
    assert "dbt_output" not in bob_api.get_ok("jobs/runs/get-output", run_id=dbt_attempt.id)

    refused = bob_api.get("jobs/runs/dbt-artifacts", run_id=dbt_attempt.id)
    assert refused.status_code == 403 and refused.json()["error_code"] == "PERMISSION_DENIED"


def test_an_archive_the_task_replaced_by_a_symlink_is_not_served(api, dbt_attempt, tmp_path):
    archive = artifacts_path(TaskRun.objects.get(id=dbt_attempt.id).log_path)
    os.unlink(archive)
    (tmp_path / "secret").write_text("the server's")
    os.symlink(tmp_path / "secret", archive)

    assert "dbt_output" not in api.get_ok("jobs/runs/get-output", run_id=dbt_attempt.id)
    missing = api.get("jobs/runs/dbt-artifacts", run_id=dbt_attempt.id)
    assert missing.status_code == 404 and missing.json()["message"] == f"Run {dbt_attempt.id} has no dbt artifacts."


def test_a_task_run_of_another_type_has_no_dbt_output(api, held_broker):
    attempt = TaskRun.objects.get(run_id=run_now(api, create_job(api)))

    assert "dbt_output" not in api.get_ok("jobs/runs/get-output", run_id=attempt.id)
    assert api.get("jobs/runs/dbt-artifacts", run_id=attempt.id).status_code == 404
