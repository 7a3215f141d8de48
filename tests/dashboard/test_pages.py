"""The dashboard's pages and actions with Django's test client: sign-in, the jobs list, a job's
run history, a run's page with its task panels, cancel and repair. Runs execute for real
(django-q2 sync mode: an attempt runs as its transaction commits)."""

import json

import pytest
from django.test import Client
from django.utils import timezone

from jobs.models import Job
from runs.admission import create_run
from runs.models import Repair, Run, TaskRun
from tests.dashboard.conftest import make_job


@pytest.fixture
def committed(transactional_db):
    return transactional_db


def shell(key, command, *depends_on):
    task = {"task_key": key, "shell_command_task": {"command": command}}
    if depends_on:
        task["depends_on"] = [{"task_key": d} for d in depends_on]
    return task


def page(browser, url, status=200):
    response = browser.get(url)
    assert response.status_code == status, response.content[:500]
    return response.content.decode()


def test_every_page_needs_sign_in(client, user):
    job = make_job(user)
    for url in ["/", f"/jobs/{job.id}/", "/runs/"]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(f"/login/?next={url}")
    assert client.post(f"/jobs/{job.id}/run-now/").status_code == 302
    assert not Run.objects.exists()


def test_signing_in_leads_to_the_jobs_list_with_the_admin_link_for_staff(client, user):
    assert "Sign in" in page(client, "/login/")
    response = client.post("/login/", {"username": "ada", "password": "pw"})
    assert response.status_code == 302 and response["Location"] == "/"
    body = page(client, "/")
    assert "Admin console" in body and 'href="/admin/"' in body


def test_a_wrong_password_keeps_the_user_name_and_says_so(client, user):
    body = client.post("/login/", {"username": "ada", "password": "nope"}).content.decode()
    assert "did not match" in body and 'value="ada"' in body


def test_the_jobs_list_searches_names_and_tags_and_shows_the_schedule(browser, user):
    make_job(user, name="nightly sales", tags={"team": "finance"},
             schedule={"quartz_cron_expression": "0 0 6 * * ?", "timezone_id": "UTC"})
    make_job(user, name="hourly clicks", tags={"team": "web", "pii": ""})
    body = page(browser, "/")
    assert "nightly sales" in body and "hourly clicks" in body and "Schedule" in body and "0 0 6 * * ?" in body
    assert "nightly sales" not in page(browser, "/?q=clicks")
    assert "hourly clicks" not in page(browser, "/?q=tag:team:finance")
    assert "nightly sales" not in page(browser, "/?q=tag:pii")
    assert "No job matches" in page(browser, "/?q=nothing-like-this")


def test_run_now_is_a_post_that_opens_the_new_run(browser, user, committed):
    job = make_job(user, tasks=[shell("a", "echo one"), shell("b", "echo two", "a")])
    assert browser.get(f"/jobs/{job.id}/run-now/").status_code == 405
    response = browser.post(f"/jobs/{job.id}/run-now/")
    run = Run.objects.get(job=job)
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.id}/runs/{run.id}/"
    run.refresh_from_db()
    assert run.result_state == "SUCCESS"


def test_run_now_with_different_parameters_and_bad_json(browser, user, committed):
    job = make_job(user, parameters=[{"name": "day", "default": "monday"}],
                   tasks=[shell("a", "echo day={{job.parameters.day}}")])
    browser.post(f"/jobs/{job.id}/run-now/", {"param-day": "friday"})
    run = Run.objects.get(job=job)
    assert {p["name"]: p["value"] for p in run.job_parameters} == {"day": "friday"}
    response = browser.post(f"/jobs/{job.id}/run-now/", {"parameters_json": "{not json"}, follow=True)
    assert "not valid JSON" in response.content.decode()
    assert Run.objects.filter(job=job).count() == 1


def test_the_job_page_shows_the_matrix_and_the_duration_chart(browser, user, committed):
    job = make_job(user, tasks=[shell("extract", "echo e"), shell("load", "exit 3", "extract")])
    runs = [create_run(job, creator=user)[0] for _ in range(2)]
    body = page(browser, f"/jobs/{job.id}/")
    assert body.count('class="cell state-success"') == 2 and body.count('class="cell state-failed"') == 2
    for run in runs:
        assert f'/jobs/{job.id}/runs/{run.id}/' in body
    chart = json.loads(body.split('<script id="duration-data" type="application/json">')[1].split("</script>")[0])
    assert [point["run_id"] for point in chart] == [run.id for run in runs]
    assert all(point["failed"] for point in chart)


def test_missing_and_deleted_jobs_and_runs_are_404_pages(browser, user):
    job = make_job(user)
    run, _ = create_run(job, creator=user)
    Job.objects.filter(id=job.id).update(deleted_at=timezone.now())
    page(browser, f"/jobs/{job.id}/", status=404)
    page(browser, "/jobs/999999/", status=404)
    page(browser, f"/jobs/{job.id + 1}/runs/{run.id}/", status=404)
    page(browser, "/jobs/1/runs/999999/", status=404)
    page(browser, "/task-runs/999999/", status=404)
    assert "(deleted)" in page(browser, f"/jobs/{job.id}/runs/{run.id}/")


def test_the_run_page_lays_out_the_graph_and_escapes_what_tasks_print(browser, user, committed):
    job = make_job(user, tasks=[shell("a", "echo '<script>alert(1)</script>'"), shell("b", "echo b", "a"),
                                shell("c", "exit 1", "a"), shell("d", "echo d", "b", "c")])
    run, _ = create_run(job, creator=user)
    body = page(browser, f"/jobs/{job.id}/runs/{run.id}/")
    snapshot = json.loads(body.split('<script id="run-snapshot" type="application/json">')[1].split("</script>")[0])
    nodes = {n["key"]: n for n in snapshot["nodes"]}
    assert {k: (n["level"], n["state"]) for k, n in nodes.items()} == {
        "a": (0, "success"), "b": (1, "success"), "c": (1, "failed"), "d": (2, "upstream")}
    assert nodes["d"]["depends_on"] == ["b", "c"] and snapshot["finished"] and snapshot["state"] == "failed"

    a = TaskRun.objects.get(run=run, task_key="a")
    panel = page(browser, f"/task-runs/{a.id}/?fragment=1")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in panel and "<script>alert(1)" not in panel
    assert json.loads(page(browser, f"/runs/{run.id}/state/"))["event_id"] == snapshot["event_id"]


def test_the_task_log_is_served_in_chunks_from_an_offset(browser, user, committed):
    job = make_job(user, tasks=[shell("a", "printf 'first line\\nsecond line\\n'")])
    run, _ = create_run(job, creator=user)
    attempt = TaskRun.objects.get(run=run)
    whole = json.loads(page(browser, f"/task-runs/{attempt.id}/log/?offset=0"))
    assert whole["text"] == "first line\nsecond line\n" and whole["finished"]
    rest = json.loads(page(browser, f"/task-runs/{attempt.id}/log/?offset=11"))
    assert rest["text"] == "second line\n" and rest["offset"] == whole["offset"]


def test_cancel_run_and_cancel_task_are_posts(browser, user, held_broker):
    job = make_job(user, tasks=[shell("a", "sleep 30"), shell("b", "sleep 30")])
    run, _ = create_run(job, creator=user)
    a = TaskRun.objects.get(run=run, task_key="a")
    assert browser.get(f"/runs/{run.id}/cancel/").status_code == 405
    response = browser.post(f"/task-runs/{a.id}/cancel/")
    assert response.status_code == 302
    a.refresh_from_db()
    assert a.result_state == "CANCELED"
    browser.post(f"/runs/{run.id}/cancel/")
    run.refresh_from_db()
    assert run.result_state == "CANCELED"
    assert "already finished" in browser.post(f"/runs/{run.id}/cancel/", follow=True).content.decode()


def test_a_repair_preselects_the_failed_task_and_its_dependents_and_reruns_what_is_picked(browser, user, committed,
                                                                                          tmp_path):
    marker = tmp_path / "fixed"
    job = make_job(user, tasks=[shell("a", "echo a"), shell("b", f"test -e {marker}", "a"), shell("c", "echo c", "b")])
    run, _ = create_run(job, creator=user)
    body = page(browser, f"/jobs/{job.id}/runs/{run.id}/")
    assert 'id="root-cause' in body or "root-cause" in body
    checked = {key for key in "abc" if f'value="{key}" id="rerun-' in body and
               body.split(f'value="{key}" id="rerun-')[1].split(">")[0].endswith("checked")}
    assert checked == {"b", "c"}

    marker.touch()
    browser.post(f"/runs/{run.id}/repair/", {"rerun_tasks": ["b", "c"]})
    run.refresh_from_db()
    assert run.result_state == "SUCCESS" and Repair.objects.get(run=run).rerun_tasks == ["b", "c"]
    assert "Repair 1: b, c" in page(browser, f"/jobs/{job.id}/runs/{run.id}/")


def test_a_refused_repair_says_why(browser, user, held_broker):
    job = make_job(user)
    run, _ = create_run(job, creator=user)
    body = browser.post(f"/runs/{run.id}/repair/", {"rerun_tasks": ["hello"]}, follow=True).content.decode()
    assert "The repair did not start" in body and "still active" in body


def test_state_changes_need_the_csrf_token(user):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(user)
    job = make_job(user)
    assert csrf_client.post(f"/jobs/{job.id}/run-now/").status_code == 403
    assert not Run.objects.exists()


def test_the_api_run_page_url_of_a_task_run_opens_its_run_with_the_attempt(browser, user, held_broker):
    job = make_job(user)
    run, _ = create_run(job, creator=user)
    attempt = TaskRun.objects.get(run=run)
    response = browser.get(f"/jobs/{job.id}/runs/{attempt.id}/")
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.id}/runs/{run.id}/?task={attempt.id}"
    assert browser.get(f"/runs/{attempt.id}/")["Location"] == f"/jobs/{job.id}/runs/{run.id}/?task={attempt.id}"
