"""Usage and cost in Chromium against a real `serve`: a job run with the databricks-sdk has its
consumption measured by the worker, and the Usage page ranks it with its cost and draws its cost
per day; the job page draws its cost per run and the run page shows its sums.

The viewer is a user of the test's own, who sees only the job they made: the session's server is
shared, and an admin's Usage page would rank every other test's jobs too.
Screenshots land in test-artifacts/screenshots/ (look at them)."""

import re
import secrets

import pytest
from databricks.sdk.service import jobs
from playwright.sync_api import expect

from tests.e2e.test_core_with_the_sdk import WAIT
from tests.e2e.test_dashboard_in_a_browser import shot
from tests.e2e.test_permissions_in_a_browser import make_user

pytestmark = pytest.mark.e2e

MEASURED_COST = re.compile(r"^\d[\d,]*\.\d+ USD$")  # the server's default currency


def test_a_measured_run_shows_on_the_usage_page_and_in_the_job_and_run_pages(page, sqlite_server):
    server = sqlite_server
    suffix = secrets.token_hex(3)
    name, password = f"usage-{suffix}", secrets.token_urlsafe(12)
    w = make_user(server, name, password)
    job_id = w.jobs.create(name=f"measured <{suffix}>", tasks=[jobs.Task(
        task_key="work", spark_python_task=jobs.SparkPythonTask(python_file=server.script("ok.py"),
                                                                parameters=["0.2"]))]).job_id
    run = w.jobs.run_now(job_id=job_id).result(timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS

    page.goto(server.url + "/login/?next=/usage/")
    page.fill("#id_username", name)
    page.fill("#id_password", password)
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("Usage")

    row = page.locator(f"#top-by-cost tr[data-job-id='{job_id}']")
    expect(row).to_contain_text(f"measured <{suffix}>")
    expect(row.locator(".usage-cost")).to_have_text(MEASURED_COST)
    expect(page.locator("#top-by-cost tbody tr")).to_have_count(1)  # only the job this user may see
    expect(page.locator("#total-runs")).to_have_text("1")
    expect(page.locator("#usage-chart .scatterlayer .trace")).to_have_count(1)  # plotly drew the job's line
    expect(page.locator("#usage-chart .legendtext")).to_have_text(f"measured <{suffix}>")
    shot(page, "40-usage-page")

    page.click(f"#top-by-cost tr[data-job-id='{job_id}'] a")
    expect(page).to_have_url(f"{server.url}/jobs/{job_id}/")
    expect(page.locator(f"#run-costs td[data-run-id='{run.run_id}']")).to_have_text(re.compile(r"^\d[\d,]*\.\d+$"))
    expect(page.locator(f"#run-cpu td[data-run-id='{run.run_id}']")).to_have_text(re.compile(r"^\d+\.\d\d s$"))
    expect(page.locator("#cost-chart .barlayer .trace .point")).to_have_count(1)  # one bar: the run
    shot(page, "41-job-page-cost")

    page.goto(f"{server.url}/jobs/{job_id}/runs/{run.run_id}/")
    expect(page.locator("#run-cost")).to_have_text(MEASURED_COST)
    page.locator("#run-graph g.node[data-task-key='work']").click()
    expect(page.locator("#task-panel [data-usage='cpu_seconds']")).to_have_text(re.compile(r"^\d+\.\d\d s$"))
    expect(page.locator("#task-panel [data-usage='peak_memory_bytes']")).to_have_text(re.compile(r"^[\d.]+\s[KMG]B$"))
    expect(page.locator("#task-panel [data-phase='execution']")).to_have_text(re.compile(r"^execution \d"))
    shot(page, "42-run-page-usage")
