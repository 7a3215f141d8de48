"""A backfill from the dashboard, in Debian's Chromium against a real `serve`: from a job's page,
Backfill opens the form; Preview lists the runs it would make; Start makes them; the backfill's
page fills its progress bar to 100% without a reload; the job page's card lists it.

Screenshots land in test-artifacts/screenshots/ (look at them)."""

import re
import secrets

import pytest
from databricks.sdk.service import jobs
from playwright.sync_api import expect

from tests.e2e.test_core_with_the_sdk import python_task
from tests.e2e.test_dashboard_in_a_browser import shot, sign_in

pytestmark = pytest.mark.e2e

LIVE = 60_000  # ms: how long the browser waits for the server to move on


def test_a_backfill_made_in_the_form_fills_its_progress_bar(page, sqlite_server):
    server, w = sqlite_server, sqlite_server.client()
    job = w.jobs.create(name=f"daily report {secrets.token_hex(3)}", max_concurrent_runs=2,
                        parameters=[jobs.JobParameterDefinition(name="day", default="2024-01-01")],
                        tasks=[python_task(server, "report", "ok.py", "day={{job.parameters.day}}")])
    sign_in(page, server)
    page.goto(f"{server.url}/jobs/{job.job_id}/")
    expect(page.locator("#backfills-card")).to_contain_text("No backfills yet")
    page.click("#backfill-button")

    expect(page.locator("h1")).to_contain_text("Backfill")
    page.fill("#id_start", "2024-02-01")
    page.fill("#id_end", "2024-02-04")
    page.click("#backfill-preview")
    preview = page.locator("#backfill-preview-runs tbody tr")
    expect(preview).to_have_count(4)  # the end date is included
    expect(page.locator("#backfill-preview-runs")).to_contain_text("day=2024-02-04")
    shot(page, "60-backfill-preview")

    page.click("#backfill-start")
    expect(page).to_have_url(re.compile(re.escape(server.url) + r"/backfills/[0-9]+/$"))
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    done = page.locator("#backfill-progress [data-part='done']")
    expect(done).to_have_attribute("aria-valuenow", "100", timeout=LIVE)
    expect(page.locator("#backfill-status")).to_have_attribute("data-state", "FINISHED")
    expect(page.locator("#backfill-cancel")).to_be_disabled()  # the buttons follow the state too
    expect(page.locator("#backfill-slots tbody tr[data-slot-state='done']")).to_have_count(4)
    assert page.evaluate("window.__sameDocument") is True, "the backfill page reloaded instead of refreshing its part"
    shot(page, "61-backfill-done")

    page.goto(f"{server.url}/jobs/{job.job_id}/")
    expect(page.locator("#job-backfills")).to_contain_text("4/4 done")
