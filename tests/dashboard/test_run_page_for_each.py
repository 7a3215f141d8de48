"""The run page of a for-each: the loop's counts in the snapshot, its panel's iteration chips (the
first ones, with how many there are), and the page's queries do not grow with the loop."""

import json

from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs.admission import create_run
from runs.control_flow import execute_control_flow
from runs.dispatch import finish_attempt
from runs.engine.endings import attempt_ended
from runs.engine.states import RunResultState as R
from runs.models import TaskRun
from runs.views import ITERATION_CHIPS
from tests.dashboard.conftest import make_job


def loop_run(user, size, concurrency=4):
    item = {"task_key": "item", "shell_command_task": {"command": "echo {{input}}"}}
    job = make_job(user, tasks=[{"task_key": "loop", "for_each_task": {
        "inputs": str(list(range(size))), "concurrency": concurrency, "task": item}}])
    run, _ = create_run(job, creator=user)
    loop = TaskRun.objects.get(run=run, task_key="loop", for_each_key="")
    execute_control_flow(loop.id)
    return run, loop


def iteration(run, index):
    return TaskRun.objects.get(run=run, for_each_key="loop", is_current=True, iteration=index)


def page(browser, run, **query):
    got = browser.get(f"/jobs/{run.job_id}/runs/{run.id}/", query)
    assert got.status_code == 200
    return got


def snapshot_of(response):
    text = response.content.decode()
    start = text.index('<script id="run-snapshot" type="application/json">') + len(
        '<script id="run-snapshot" type="application/json">')
    return json.loads(text[start:text.index("</script>", start)])


def test_the_run_page_shows_the_loops_counts(browser, user, held_broker):
    run, _ = loop_run(user, 6, concurrency=2)
    assert finish_attempt(iteration(run, 0).id, attempt_ended(R.SUCCESS))
    assert finish_attempt(iteration(run, 1).id, attempt_ended(R.FAILED, "boom"), error="boom")

    (node,) = snapshot_of(page(browser, run))["nodes"]

    assert node["for_each"] == {"total_iterations": 6, "scheduled_iterations": 2, "active_iterations": 0,
                                "completed_iterations": 2, "succeeded_iterations": 1, "failed_iterations": 1}


def test_the_panel_of_a_big_loop_shows_its_first_iterations_with_their_states_and_how_many_there_are(
        browser, user, held_broker):
    run, loop = loop_run(user, ITERATION_CHIPS + 50)
    assert finish_attempt(iteration(run, 0).id, attempt_ended(R.SUCCESS))
    assert finish_attempt(iteration(run, 1).id, attempt_ended(R.FAILED, "boom"), error="boom")

    html = browser.get(f"/task-runs/{loop.id}/", {"fragment": "1"}).content.decode()

    assert html.count('class="chip state-') == ITERATION_CHIPS
    assert f'data-task-run-id="{iteration(run, 0).id}" class="chip state-success"' in html
    assert f'data-task-run-id="{iteration(run, 1).id}" class="chip state-failed"' in html
    assert f"The first {ITERATION_CHIPS} of {ITERATION_CHIPS + 50} iterations." in html


def test_a_small_loops_panel_shows_every_iteration_without_a_count(browser, user, held_broker):
    run, loop = loop_run(user, 3)
    html = browser.get(f"/task-runs/{loop.id}/", {"fragment": "1"}).content.decode()
    assert html.count('class="chip state-') == 3
    assert 'id="iterations-shown"' not in html


def queries_of_the_page(browser, user, size):
    run, _ = loop_run(user, size)
    assert finish_attempt(iteration(run, 0).id, attempt_ended(R.SUCCESS))
    page(browser, run)  # the session and caches warm
    with CaptureQueriesContext(connection) as ctx:
        page(browser, run)
    return ctx.captured_queries


def test_the_run_page_reads_as_much_of_a_loop_of_300_as_of_a_loop_of_5(browser, user, held_broker):
    small = queries_of_the_page(browser, user, 5)
    large = queries_of_the_page(browser, user, 300)
    assert len(small) == len(large)
    # The iterations are counted, not read one by one.
    listed = [q["sql"] for q in large if q["sql"].startswith("SELECT") and "\"for_each_key\" = 'loop'" in q["sql"]
              and "COUNT(" not in q["sql"] and "LIMIT" not in q["sql"]]
    assert listed == []
