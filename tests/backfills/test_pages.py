"""The backfill pages: the form's Preview and Start, the backfill's page with its progress bar,
slots and buttons, its status part, the job page's card, and who may do what."""

import re
from datetime import datetime

import pytest
from django.contrib.auth import get_user_model

from backfills.models import Backfill
from backfills.planning import BackfillRequest, create_backfill
from jobs.models import Job
from jobs.permissions import change_acl
from runs.models import Run
from tests.backfills.conftest import UTC
from tests.runs.conftest import make_job, shell


@pytest.fixture
def ada(db):
    return get_user_model().objects.create_user("ada", password="pw")


@pytest.fixture
def browser(client, ada):
    client.force_login(ada)
    return client


@pytest.fixture
def job(ada):
    return make_job(ada, [shell("t")], max_concurrent_runs=10,
                    parameters=[{"name": "day", "default": "2024-01-01"}])


def form(**fields):
    return {"start": "2024-01-01", "end": "2024-01-03", "interval": "1", "unit": "DAYS", "timezone_id": "UTC",
            "parameter": "", "reprocess_policy": "ALL", "order": "OLDEST_FIRST", "max_concurrent_runs": "2",
            "parameters_json": "", **fields}


def test_the_form_offers_the_jobs_parameters_and_its_limit(browser, job):
    page = browser.get(f"/jobs/{job.id}/backfill/").content.decode()
    assert 'id="backfill-form"' in page and '<option value="day">day</option>' in page
    assert 'name="max_concurrent_runs" value="10"' in page


def test_preview_lists_the_runs_and_makes_none(browser, job, held_broker):
    page = browser.post(f"/jobs/{job.id}/backfill/", form(action="preview")).content.decode()
    assert 'id="backfill-preview-runs"' in page
    assert "3 runs, filling <code>day</code>" in page  # the end date is included
    for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
        assert f"<code>day</code>={day}" in page
    assert not Backfill.objects.exists() and not Run.objects.exists()


def test_start_makes_the_backfill_and_shows_its_page(browser, job, held_broker):
    response = browser.post(f"/jobs/{job.id}/backfill/", form(action="start", end="2024-01-04T00:00"))
    backfill = Backfill.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/backfills/{backfill.id}/"
    assert len(backfill.slots) == 3 and backfill.max_concurrent_runs == 2 and backfill.creator.username == "ada"

    page = browser.get(f"/backfills/{backfill.id}/").content.decode()
    assert 'id="backfill-progress"' in page and 'data-part="running" data-count="2"' in page
    assert page.count('data-slot-state="running"') == 2 and page.count('data-slot-state="not_started"') == 1
    assert 'id="backfill-cancel"' in page and 'id="backfill-repair-failed"' in page
    assert "data-backfill-live" in page
    status = browser.get(f"/backfills/{backfill.id}/status/").content.decode()
    assert 'id="backfill-progress"' in status and "<html" not in status


@pytest.mark.parametrize("fields, field, message", [
    ({"start": "yesterday"}, "start", "Not a date"),
    ({"end": "2023-12-01"}, "end", "must be after start_time"),
    ({"parameter": "", "parameters_json": '{"nope": "x"}'}, "parameters_json", "nope"),
    ({"parameters_json": "[1]"}, "parameters_json", "JSON object"),
    ({"interval": "", "unit": ""}, "interval", "has no schedule"),
    ({"timezone_id": "Mars/Olympus"}, "timezone_id", "Unknown time zone"),
])
def test_bad_input_is_shown_next_to_its_field_and_makes_nothing(browser, job, fields, field, message):
    response = browser.post(f"/jobs/{job.id}/backfill/", form(action="start", **fields))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors and message in " ".join(errors[field]), errors
    assert not Backfill.objects.exists()


def backfill_of(job, user, days=3):
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return create_backfill(job, BackfillRequest(start_time=start, end_time=start.replace(day=1 + days),
                                                interval={"interval": 1, "unit": "DAYS"}, max_concurrent_runs=1), user)


def test_the_job_page_has_the_button_and_its_card_lists_the_backfills(browser, job, ada, held_broker):
    page = browser.get(f"/jobs/{job.id}/").content.decode()
    assert f'href="/jobs/{job.id}/backfill/" id="backfill-button"' in page
    assert f'data-backfill-url="/jobs/{job.id}/backfills/card/"' in page
    assert "No backfills yet" in browser.get(f"/jobs/{job.id}/backfills/card/").content.decode()

    backfill = backfill_of(job, ada)
    card = browser.get(f"/jobs/{job.id}/backfills/card/").content.decode()
    assert f'data-backfill-id="{backfill.id}"' in card and "0/3 done" in card and "data-backfill-live" in card


def test_cancel_and_repair_from_the_page(browser, job, ada, held_broker):
    backfill = backfill_of(job, ada)
    response = browser.post(f"/backfills/{backfill.id}/repair-failed/", follow=True)
    assert "Nothing was repaired" in response.content.decode()
    response = browser.post(f"/backfills/{backfill.id}/cancel/", follow=True)
    assert f"Backfill {backfill.id} canceled, and 1 of its run(s)." in response.content.decode()
    assert Backfill.objects.get(id=backfill.id).state == Backfill.State.CANCELED
    assert browser.get(f"/backfills/{backfill.id}/cancel/").status_code == 405


def test_the_refreshed_status_part_carries_the_buttons_as_the_state_now_allows(browser, job, ada, held_broker):
    # The page refreshes only its status part: buttons outside it would still offer Cancel on a
    # backfill that finished meanwhile.
    backfill = backfill_of(job, ada)
    running = browser.get(f"/backfills/{backfill.id}/status/").content.decode()
    assert re.search(r'id="backfill-cancel">Cancel', running)
    Backfill.objects.filter(id=backfill.id).update(state=Backfill.State.FINISHED)

    finished = browser.get(f"/backfills/{backfill.id}/status/").content.decode()

    assert re.search(r'id="backfill-cancel" disabled>Cancel', finished)
    assert re.search(r'id="backfill-repair-failed">Repair failed runs', finished)


def test_a_viewer_sees_the_backfill_but_may_not_start_cancel_or_repair_one(client, job, ada, held_broker):
    backfill = backfill_of(job, ada)
    viewer = get_user_model().objects.create_user("viewer", password="pw")
    change_acl(Job.objects.get(id=job.id), [{"user_name": "viewer", "permission_level": "CAN_VIEW"}], user=ada,
               replace=False)
    client.force_login(viewer)
    page = client.get(f"/backfills/{backfill.id}/").content.decode()
    assert 'id="backfill-progress"' in page and 'id="backfill-cancel"' not in page
    assert 'id="backfill-cancel"' not in client.get(f"/backfills/{backfill.id}/status/").content.decode()
    assert 'id="backfill-button"' not in client.get(f"/jobs/{job.id}/").content.decode()
    for url in (f"/jobs/{job.id}/backfill/", f"/backfills/{backfill.id}/cancel/", f"/backfills/{backfill.id}/repair-failed/"):
        assert client.post(url, form(action="start")).status_code == 403, url
    assert Backfill.objects.get(id=backfill.id).state == Backfill.State.RUNNING and Backfill.objects.count() == 1

    stranger = get_user_model().objects.create_user("stranger", password="pw")
    client.force_login(stranger)
    assert client.get(f"/backfills/{backfill.id}/").status_code == 403
    assert client.get(f"/backfills/{backfill.id}/status/").status_code == 403
    assert client.get(f"/jobs/{job.id}/backfills/card/").status_code == 403


def test_pages_need_a_sign_in(client, job, ada, held_broker):
    backfill = backfill_of(job, ada)
    for url in (f"/jobs/{job.id}/backfill/", f"/backfills/{backfill.id}/", f"/backfills/{backfill.id}/status/"):
        assert client.get(url).status_code == 302, url
