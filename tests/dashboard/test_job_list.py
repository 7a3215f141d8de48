"""The jobs list `/`: each job's newest runs as chips (oldest first, linking to the run), read in
one query whatever the number of jobs and runs, and only for the jobs the caller may view."""

from datetime import UTC, datetime, timedelta

from bs4 import BeautifulSoup
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.models import JobPermission
from runs.job_pages import CHIPS_PER_JOB
from runs.models import Run
from tests.dashboard.conftest import make_job

T0 = datetime(2024, 3, 1, 6, 0, tzinfo=UTC)


def add_runs(job, count, failed_every=0):
    """`count` finished runs of `job`, one minute apart from T0; every `failed_every`th one failed."""
    return [Run.objects.create(
        job=job, job_version=job.current_version, life_cycle_state="TERMINATED", created_at=T0 + timedelta(minutes=i),
        result_state="FAILED" if failed_every and (i + 1) % failed_every == 0 else "SUCCESS")
        for i in range(count)]


def chips(client, job):
    page = BeautifulSoup(client.get("/").content, "html.parser")
    row = page.find("tr", attrs={"data-job-id": str(job.id)})
    return None if row is None else [(a["href"], a["title"], a["class"]) for a in row.select("a.chip")], row


def test_a_job_shows_its_newest_runs_oldest_first_linking_to_each(browser, user):
    job = make_job(user, name="nightly")
    runs = add_runs(job, CHIPS_PER_JOB + 3, failed_every=4)
    shown, _ = chips(browser, job)
    newest = runs[-CHIPS_PER_JOB:]
    assert [href for href, _, _ in shown] == [f"/jobs/{job.id}/runs/{run.id}/" for run in newest]
    assert shown[0][1] == f"Run {newest[0].id}: Failed · 2024-03-01 06:03:00"  # the 4th run fails
    assert [(title.split(": ")[1].split(" ·")[0], cls) for _, title, cls in shown] == [
        ("Failed", ["chip", "state-failed"]) if run.result_state == "FAILED" else ("Success", ["chip", "state-success"])
        for run in newest]


def test_a_job_without_runs_says_so(browser, user):
    job = make_job(user, name="fresh")
    shown, row = chips(browser, job)
    assert shown == [] and "no runs yet" in row.text


def test_the_page_takes_as_many_queries_for_many_jobs_with_many_runs_as_for_one(browser, user,
                                                                             django_assert_max_num_queries):
    add_runs(make_job(user, name="job-00"), 1)
    browser.get("/")
    with CaptureQueriesContext(connection) as one:
        assert browser.get("/").status_code == 200
    for n in range(1, 6):
        add_runs(make_job(user, name=f"job-{n:02d}", schedule={"quartz_cron_expression": "0 0 6 * * ?",
                                                                "timezone_id": "UTC"}), 3 * CHIPS_PER_JOB)
    with django_assert_max_num_queries(len(one.captured_queries)):
        body = browser.get("/").content.decode()
    assert body.count('class="chip ') == 1 + 5 * CHIPS_PER_JOB


def test_a_viewer_sees_only_the_jobs_and_runs_it_may_view(client, user):
    mine, theirs = make_job(user, name="granted"), make_job(user, name="not-for-viewers")
    granted, hidden = add_runs(mine, 2), add_runs(theirs, 2)
    viewer = get_user_model().objects.create_user("viewer", password="pw")
    JobPermission.objects.create(job=mine, user=viewer, level="CAN_VIEW")
    client.force_login(viewer)
    body = client.get("/").content.decode()
    shown, _ = chips(client, mine)
    assert [href for href, _, _ in shown] == [f"/jobs/{mine.id}/runs/{run.id}/" for run in granted]
    assert chips(client, theirs)[0] is None and "not-for-viewers" not in body
    assert all(f"/runs/{run.id}/" not in body for run in hidden)
