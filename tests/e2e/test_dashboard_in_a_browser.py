"""Issue 5's "done when", in Debian's Chromium driven by Playwright against a real `serve`:
sign in, author a two-task job in the form, run it, watch the graph turn green without a reload,
make a task fail, read the root cause, repair it in two clicks and watch it succeed.

Screenshots of the main pages land in test-artifacts/screenshots/ (look at them)."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e

SHOTS = ROOT / "test-artifacts" / "screenshots"
LIVE = 60_000  # ms: how long a browser waits for a run to move on


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page, server):
    page.goto(server.url + "/")
    expect(page).to_have_url(server.url + "/login/?next=/")
    shot(page, "00-sign-in")
    page.fill("#id_username", "admin")
    page.fill("#id_password", server.env["LAKEFLOW_ADMIN_PASSWORD"])
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("Jobs")


def node(page, key):
    return page.locator(f"#run-graph g.node[data-task-key='{key}']")


def test_author_run_watch_fail_understand_and_repair_in_the_browser(page, sqlite_server, tmp_path):
    server = sqlite_server
    marker = tmp_path / "fixed"
    sign_in(page, server)
    shot(page, "01-jobs-list")

    job_url = author_two_task_job(page, server, marker)
    shot(page, "03-job-page-new")

    page.click("#run-now")
    expect(page.locator("#run-graph")).to_be_visible()
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    expect(node(page, "extract")).to_have_attribute("data-state", "success", timeout=LIVE)
    expect(node(page, "load")).to_have_attribute("data-state", "failed", timeout=LIVE)
    expect(page.locator("#run-state")).to_have_text("Failed", timeout=LIVE)
    assert page.evaluate("window.__sameDocument") is True, "the run page reloaded instead of updating live"
    assert page.evaluate("document.body.dataset.live") in ("socket", "polling")

    # The root cause names the task where the failure started and its error, in one look.
    cause = page.locator("#root-cause")
    expect(cause).to_be_visible(timeout=LIVE)
    expect(cause.locator(".root-cause-origin[data-task-key='load']")).to_be_visible()
    expect(cause).to_contain_text("is missing")
    shot(page, "04-run-failed-root-cause")

    # Every decision is there with its reason.
    events = page.locator("#run-events")
    expect(events).to_contain_text("extract is ready to start: it has no dependencies", timeout=LIVE)
    expect(events).to_contain_text("load is ready to start: its dependency succeeded (ALL_SUCCESS)")
    expect(events).to_contain_text("load ended FAILED")

    # Repair in two clicks: the failed task is preselected; the preview says what runs again.
    marker.touch()
    page.click("#repair-run")
    expect(page.locator("#repair-tasks input[value='load']")).to_be_checked()
    expect(page.locator("#repair-tasks input[value='extract']")).not_to_be_checked()
    page.click("#repair-preview-button")
    expect(page.locator("#repair-preview")).to_have_text("Runs again: load", timeout=LIVE)
    shot(page, "05a-repair-preview")
    page.click("#repair-submit")
    expect(node(page, "load")).to_have_attribute("data-state", "success", timeout=LIVE)
    expect(page.locator("#run-state")).to_have_text("Success", timeout=LIVE)
    expect(page.locator("#repair-history")).to_contain_text("Repair 1: load", timeout=LIVE)
    shot(page, "05-run-repaired")

    page.goto(job_url)
    expect(page.locator("#run-matrix a.cell.state-success")).to_have_count(2)
    expect(page.locator("#duration-chart .main-svg").first).to_be_attached()
    shot(page, "06-job-page-history")


def author_two_task_job(page, server, marker):
    """Create the job in the authoring form: extract -> load, where load fails until `marker` exists."""
    page.click("#create-job")
    form = page.locator("form#job-form")
    expect(form).to_be_visible()
    page.fill("#id_name", "browser authored")
    fill_task(page, 0, "extract", server.script("ok.py"), [])
    page.click("#add-task")
    fill_task(page, 1, "load", server.script("fail_until_marker.py"), ["extract"], parameters=str(marker))
    expect(page.locator("#dag-preview")).to_contain_text("load")
    shot(page, "02-authoring-form")
    page.click("#save-job")
    expect(page.locator("h1")).to_contain_text("browser authored")
    return page.url


def fill_task(page, index, key, python_file, depends_on, parameters=""):
    prefix = f"#id_tasks-{index}-"
    page.fill(prefix + "task_key", key)
    page.select_option(prefix + "task_type", "spark_python_task")
    page.fill(prefix + "python_file", python_file)
    page.fill(prefix + "python_parameters", parameters)
    if depends_on:
        page.fill(prefix + "depends_on", ", ".join(depends_on))


def test_the_live_graph_follows_a_run_on_postgres_and_redis(page, scaleout_server):
    server = scaleout_server
    from databricks.sdk.service import jobs

    w = server.client()
    job = w.jobs.create(name="live on redis", tasks=[
        jobs.Task(task_key="first", spark_python_task=jobs.SparkPythonTask(python_file=server.script("ok.py"),
                                                                           parameters=["1"])),
        jobs.Task(task_key="second", depends_on=[jobs.TaskDependency(task_key="first")],
                  spark_python_task=jobs.SparkPythonTask(python_file=server.script("ok.py"))),
    ])
    sign_in(page, server)
    run_id = w.jobs.run_now(job_id=job.job_id).run_id
    page.goto(f"{server.url}/jobs/{job.job_id}/runs/{run_id}/")
    page.evaluate("window.__sameDocument = true")
    expect(page.locator("#live-text")).to_have_text("live", timeout=LIVE)
    expect(node(page, "second")).to_have_attribute("data-state", "success", timeout=LIVE)
    assert page.evaluate("window.__sameDocument") is True


def test_escaped_output_and_not_found_pages(page, sqlite_server):
    server = sqlite_server
    from databricks.sdk.service import jobs

    w = server.client()
    job = w.jobs.create(name="prints html", tasks=[jobs.Task(
        task_key="shout", spark_python_task=jobs.SparkPythonTask(
            python_file=server.script("ok.py"), parameters=["<script>window.__owned=1</script>"]))])
    run = w.jobs.run_now(job_id=job.job_id).result()
    sign_in(page, server)
    page.goto(f"{server.url}/jobs/{job.job_id}/runs/{run.run_id}/?task={run.tasks[0].run_id}")
    expect(page.locator("#task-log")).to_contain_text("<script>window.__owned=1</script>")
    assert page.evaluate("window.__owned") is None
    shot(page, "07-task-panel")
    assert page.goto(f"{server.url}/jobs/{job.job_id}/runs/987654321/").status == 404
    assert page.goto(f"{server.url}/jobs/987654321/").status == 404


def test_screenshots_are_kept(page, sqlite_server):
    """The artifacts the session looks at: every main page rendered, not just reachable."""
    sign_in(page, sqlite_server)
    page.goto(sqlite_server.url + "/runs/")
    expect(page.locator("h1")).to_have_text("Job runs")
    shot(page, "08-runs-list")
    assert Path(SHOTS / "08-runs-list.png").stat().st_size > 10_000


def test_a_thousand_task_run_page_follows_the_run_and_cancels_it(page, sqlite_server):
    server = sqlite_server
    w = server.client()
    # A tree: t0, then 10 tasks under it, 100 under those, 889 under those.
    tasks = [{"task_key": f"t{i}", "shell_command_task": {"command": "true"},
              **({"depends_on": [{"task_key": f"t{(i - 1) // 10}"}]} if i else {})} for i in range(1000)]
    job_id = w.api_client.do("POST", "/api/2.2/jobs/create", body={"name": "thousand in a browser", "tasks": tasks})["job_id"]
    run_id = w.jobs.run_now(job_id=job_id).run_id
    sign_in(page, server)
    page.goto(f"{server.url}/jobs/{job_id}/runs/{run_id}/")
    page.evaluate("window.__sameDocument = true")
    expect(page.locator("#run-graph g.node")).to_have_count(1000)
    # Live on a big graph: tasks of the third level turn green without a reload.
    expect(page.locator("#run-graph g.node[data-task-key='t11'][data-state='success']")).to_have_count(1, timeout=LIVE)
    shot(page, "09-thousand-task-run")
    page.click("#cancel-run")
    expect(page.locator("#run-state")).to_have_text("Canceled", timeout=LIVE)
    assert w.jobs.get_run(run_id).state.result_state.value == "CANCELED"
    done = page.locator("#run-graph g.node[data-state='success']").count()
    assert 0 < done < 1000
