"""The lineage dashboard in Debian's Chromium against a real `serve`: SQL tasks on the embedded
DuckDB warehouse, made and run with the databricks-sdk, show up as a graph (bronze -> silver ->
gold with their tasks between), a table page, the run page's Lineage card, and a failed run's
upstream root cause naming the failed run that wrote its input.

Screenshots land in test-artifacts/screenshots/ (look at them)."""

import secrets

import pytest
from databricks.sdk.service import jobs
from playwright.sync_api import expect

from tests.e2e.test_control_flow_with_the_sdk import finished_run
from tests.e2e.test_core_with_the_sdk import WAIT, tasks_by_key
from tests.e2e.test_dashboard_in_a_browser import shot, sign_in

pytestmark = pytest.mark.e2e

LIVE = 60_000  # ms: how long the browser waits for lineage, which is captured as tasks end


def sql_task(tmp_path, key, text, depends_on=()):
    """A sql_task on the embedded DuckDB warehouse, its statements in a file."""
    path = tmp_path / f"{key}.sql"
    path.write_text(text)
    return jobs.Task(task_key=key, depends_on=[jobs.TaskDependency(task_key=d) for d in depends_on],
                     sql_task=jobs.SqlTask(warehouse_id="default", file=jobs.SqlTaskFile(path=str(path))))


def test_sql_lineage_shows_as_a_graph_a_table_page_a_run_card_and_an_upstream_cause(page, sqlite_server, tmp_path):
    server, w = sqlite_server, sqlite_server.client()
    suffix = secrets.token_hex(3)  # the warehouse and the server are shared by the session's tests
    bronze, silver, gold, broken = (f"{name}_{suffix}" for name in ("bronze", "silver", "gold", "broken"))
    full = {table: f"default.main.{table}" for table in (bronze, silver, gold, broken)}

    a = w.jobs.create(name=f"A {suffix}", tasks=[
        sql_task(tmp_path, "bronze_load", f"CREATE OR REPLACE TABLE {bronze} AS SELECT 1 AS id, 'x' AS name;"),
        sql_task(tmp_path, "silver_build",
                 f"CREATE OR REPLACE TABLE {silver} AS SELECT id, upper(name) AS name FROM {bronze};",
                 depends_on=["bronze_load"])])
    b = w.jobs.create(name=f"B {suffix}", tasks=[
        sql_task(tmp_path, "gold_build", f"CREATE OR REPLACE TABLE {gold} AS SELECT id, name FROM {silver};")])
    c = w.jobs.create(name=f"C {suffix}", tasks=[sql_task(
        tmp_path, "make_broken",
        f"CREATE OR REPLACE TABLE {broken} AS SELECT 1 AS x;\nSELECT * FROM no_such_table_{suffix};")])
    d = w.jobs.create(name=f"D {suffix}", tasks=[sql_task(
        tmp_path, "use_broken", f"SELECT * FROM {broken};\nSELECT * FROM no_such_table_{suffix};")])

    run_a = w.jobs.run_now(job_id=a.job_id).result(timeout=WAIT)
    assert run_a.state.result_state == jobs.RunResultState.SUCCESS
    assert w.jobs.run_now(job_id=b.job_id).result(timeout=WAIT).state.result_state == jobs.RunResultState.SUCCESS
    run_c = finished_run(w, w.jobs.run_now(job_id=c.job_id).run_id)
    assert run_c.state.result_state == jobs.RunResultState.FAILED
    run_d = finished_run(w, w.jobs.run_now(job_id=d.job_id).run_id)
    assert run_d.state.result_state == jobs.RunResultState.FAILED

    sign_in(page, server)

    # The run page's Lineage card: what each task of job A read and wrote (captured as each ended).
    page.goto(f"{server.url}/jobs/{a.job_id}/runs/{run_a.run_id}/")
    card = page.locator("#lineage-card")
    silver_build = card.locator("section.lineage-attempt[data-task-key='silver_build']")
    expect(silver_build.locator(f"tr[data-direction='read'][data-dataset='{full[bronze]}']")).to_be_visible(timeout=LIVE)
    expect(silver_build.locator(f"tr[data-direction='write'][data-dataset='{full[silver]}']")).to_be_visible()
    expect(card.locator(f"section[data-task-key='bronze_load'] tr[data-direction='write'][data-dataset='{full[bronze]}']")
           ).to_be_visible()
    expect(silver_build).to_contain_text("from its SQL")
    shot(page, "20-run-lineage-card")

    # The Lineage graph, searched down to this test's tables: bronze -> silver_build -> silver -> gold_build -> gold.
    page.goto(f"{server.url}/lineage/?q={suffix}")
    graph = page.locator("#lineage-graph")
    chain = [(full[bronze], f"{a.job_id}/silver_build"), (f"{a.job_id}/silver_build", full[silver]),
             (full[silver], f"{b.job_id}/gold_build"), (f"{b.job_id}/gold_build", full[gold])]
    for source, target in chain:
        expect(graph.locator(f"path.lline[data-source='{source}'][data-target='{target}']")).to_have_count(1)
    xs = [graph.locator(f"a.lnode[data-name='{name}']").get_attribute("data-x")
          for name in (full[bronze], f"{a.job_id}/silver_build", full[silver], f"{b.job_id}/gold_build", full[gold])]
    assert [int(x) for x in xs] == sorted(int(x) for x in xs) and len(set(xs)) == 5, xs
    shot(page, "21-lineage-graph")

    # Clicking silver opens its table page: written by job A's silver_build, read by job B's gold_build.
    graph.locator(f"a.lnode[data-name='{full[silver]}']").click()
    expect(page.locator("#dataset-name")).to_have_text(full[silver])
    expect(page.locator("#table-writers")).to_contain_text("silver_build")
    expect(page.locator(f"#table-writers a[href='/runs/{run_a.run_id}/']")).to_be_visible()
    expect(page.locator("#table-readers")).to_contain_text("gold_build")
    expect(page.locator("#table-columns tr[data-column='name']")).to_contain_text(full[bronze])
    expect(page.locator("#downstream-impact")).to_contain_text(full[gold])
    shot(page, "22-lineage-table-page")

    # Job D's failed run: the root cause names job C's failed run, which wrote what D read.
    page.goto(f"{server.url}/jobs/{d.job_id}/runs/{run_d.run_id}/")
    cause = page.locator("#root-cause-upstream")
    expect(cause.locator(f"li.upstream-input[data-dataset='{full[broken]}'] .upstream-failed")).to_be_visible(
        timeout=LIVE)
    expect(cause.locator(f"a[href='/runs/{run_c.run_id}/']")).to_be_visible()
    expect(cause).to_contain_text(f"C {suffix}")
    shot(page, "23-upstream-root-cause")

    # Job C's page lists the table its task wrote.
    page.goto(f"{server.url}/jobs/{c.job_id}/")
    expect(page.locator(f"#lineage-card tr[data-task-key='make_broken'][data-dataset='{full[broken]}']")).to_be_visible(
        timeout=LIVE)
    assert tasks_by_key(run_c)["make_broken"].state.result_state == jobs.RunResultState.FAILED
