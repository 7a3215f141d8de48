"""Usage and cost in the dashboard: the run page (each attempt's figures and time split, the
run's sums), the job page (a cost and CPU row in the run history, the cost chart's data) and the
Usage page (top jobs by cost and by run time over a range, their cost per day, only the jobs the
viewer may see, in a fixed number of queries). The usage columns are written on the rows here:
measuring them is runs/executors/usage.py's part."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs.models import Job
from runs.models import Run, TaskRun
from runs.templatetags.usage_format import cost, cpu, money, span
from tests.dashboard.conftest import make_job

NBSP = "\xa0"  # Django's filesizeformat puts one between number and unit


def user_named(name):
    return get_user_model().objects.create_user(name, password="pw")


def signed_in(client, who):
    client.force_login(who)
    return client


def finished_run(job, *, ago, seconds=60.0, cost=None, cpu=None, result="SUCCESS"):
    created = timezone.now() - ago
    return Run.objects.create(job=job, job_version=job.current_version, life_cycle_state="TERMINATED",
                              result_state=result, created_at=created, started_at=created + timedelta(seconds=1),
                              ended_at=created + timedelta(seconds=1 + seconds), cost=cost, cpu_seconds=cpu)


def page(client, url, status=200):
    response = client.get(url)
    assert response.status_code == status, response.content[:500]
    return response.content.decode()


def script_data(body, element_id):
    return json.loads(body.split(f'<script id="{element_id}" type="application/json">')[1].split("</script>")[0])


def table(body, table_id):
    return body.split(f'id="{table_id}"')[1].split("</table>")[0]


def rows_of(body, table_id):
    """{job id: the row's HTML}, in the table's order."""
    rows = {}
    for chunk in table(body, table_id).split('<tr data-job-id="')[1:]:
        job_id, _, rest = chunk.partition('"')
        rows[int(job_id)] = rest.split("</tr>")[0]
    return rows


# --- formatting ---------------------------------------------------------------------------------


def test_it_shows_small_costs_with_two_significant_digits_and_missing_figures_as_not_measured():
    assert money(0) == "0.00" and money(12345.678) == "12,345.68" and money(0.5) == "0.50"
    assert money(1 / 3600 * 0.05) == "0.000014"  # one CPU-second at 0.05 per CPU-hour
    assert money(0.0123) == "0.012"
    assert cost(None) == cpu(None) == span(None) == "not measured"
    assert cost(0.0) == "0.00 USD" and cpu(0.0) == "0.00 s"
    assert span(850) == "850 ms" and span(12_400) == "12.4 s" and span(185_000) == "3 min 5 s"


# --- the Usage page -----------------------------------------------------------------------------


def test_the_usage_page_ranks_jobs_by_cost_and_by_run_time_with_their_figures(client, db):
    alice = user_named("alice")
    cheap_long = make_job(alice, name="cheap but long")
    dear_short = make_job(alice, name="dear but short")
    for _ in range(3):
        finished_run(cheap_long, ago=timedelta(hours=5), seconds=600, cost=0.01, cpu=2.0)
    finished_run(dear_short, ago=timedelta(hours=5), seconds=30, cost=1.25, cpu=90_000.0)
    body = page(signed_in(client, alice), "/usage/")

    assert list(rows_of(body, "top-by-cost")) == [dear_short.id, cheap_long.id]
    assert list(rows_of(body, "top-by-duration")) == [cheap_long.id, dear_short.id]
    row = rows_of(body, "top-by-cost")[cheap_long.id]
    assert f'href="/jobs/{cheap_long.id}/"' in row and "cheap but long" in row
    assert '<td class="text-end">3</td>' in row and "6.00 s" in row and "0.030 USD" in row and "30 min 0 s" in row
    assert "90,000 s" in rows_of(body, "top-by-cost")[dear_short.id]
    assert 'id="total-runs">4<' in body and 'id="total-cost">1.28 USD<' in body
    assert 'class="nav-link active" href="/usage/" id="nav-usage"' in body


def test_runs_without_a_measured_cost_show_not_measured_and_rank_only_by_run_time(client, db):
    alice = user_named("alice")
    old = make_job(alice, name="before measuring")
    finished_run(old, ago=timedelta(hours=2), seconds=120)
    body = page(signed_in(client, alice), "/usage/")
    assert rows_of(body, "top-by-cost") == {}
    assert "No run in this range has a measured cost." in body
    row = rows_of(body, "top-by-duration")[old.id]
    assert row.count("not measured") == 2 and "0.00" not in row  # CPU and cost
    assert 'id="total-cost">not measured<' in body
    assert script_data(body, "usage-trend")["traces"] == []


def test_bob_does_not_see_alices_jobs_on_the_usage_page(client, db):
    alice, bob = user_named("alice"), user_named("bob")
    hers, his = make_job(alice, name="alice's secret job"), make_job(bob, name="bob's job")
    finished_run(hers, ago=timedelta(hours=1), cost=9.0, cpu=100.0)
    finished_run(his, ago=timedelta(hours=1), cost=0.5, cpu=10.0)
    body = page(signed_in(client, bob), "/usage/")
    assert "alice's secret job" not in body and "alice&#x27;s secret job" not in body
    assert list(rows_of(body, "top-by-cost")) == [his.id]
    assert 'id="total-runs">1<' in body and 'id="total-cost">0.50 USD<' in body
    assert [t["job_id"] for t in script_data(body, "usage-trend")["traces"]] == [his.id]


def test_an_admin_sees_every_job_and_a_deleted_one_unlinked(client, db):
    alice = user_named("alice")
    admin = get_user_model().objects.create_user("root", password="pw", is_superuser=True)
    gone = make_job(alice, name="retired job")
    finished_run(gone, ago=timedelta(hours=1), cost=0.2, cpu=1.0)
    Job.objects.filter(id=gone.id).update(deleted_at=timezone.now())
    body = page(signed_in(client, admin), "/usage/")
    row = rows_of(body, "top-by-cost")[gone.id]
    assert "retired job" in row and "(deleted)" in row and "href" not in row
    assert script_data(body, "usage-trend")["traces"][0]["url"] is None


def test_the_presets_and_a_custom_range_count_the_runs_started_in_them(client, db):
    alice = user_named("alice")
    job = make_job(alice, name="daily")
    ages = [timedelta(hours=2), timedelta(days=3), timedelta(days=20), timedelta(days=60), timedelta(days=120)]
    runs = [finished_run(job, ago=age, cost=1.0, cpu=1.0) for age in ages]
    signed_in(client, alice)
    counts = {}
    for preset in ("24h", "7d", "30d", "90d"):
        body = page(client, f"/usage/?range={preset}")
        counts[preset] = int(body.split('id="total-runs">')[1].split("<")[0])
        assert f'active" href="?range={preset}"' in body
    assert counts == {"24h": 1, "7d": 2, "30d": 3, "90d": 4}
    assert 'active" href="?range=7d"' in page(client, "/usage/")  # the default

    day = runs[3].created_at.date()  # a whole UTC day, both ends included
    body = page(client, f"/usage/?from={day}&to={day}")
    assert 'id="total-runs">1<' in body and "active" not in body.split('id="usage-presets"')[1].split("</div>")[0]
    assert f'value="{day}"' in body
    since = runs[2].created_at.date()  # `to` defaults to today
    assert 'id="total-runs">3<' in page(client, f"/usage/?from={since}")


@pytest.mark.parametrize("query, message", [
    ("from=2026-13-01&to=2026-12-31", "from must be a date like 2026-12-01, not &#x27;2026-13-01&#x27;"),
    ("from=2026-12-01&to=yesterday", "to must be a date like 2026-12-01, not &#x27;yesterday&#x27;"),
    ("from=2026-12-10&to=2026-12-01", "from (2026-12-10) is after to (2026-12-01)"),
    ("from=2020-01-01&to=2026-01-01", "is longer than 366 days"),
    ("from=9999-12-31&to=9999-12-31", "to must be a day before 9999-12-31, not 9999-12-31"),
    ("to=2026-12-01", "from is needed with to"),
    ("range=5y", "range must be one of 24h, 7d, 30d, 90d, not &#x27;5y&#x27;"),
])
def test_a_bad_range_says_what_is_wrong_on_the_page(client, db, query, message):
    alice = user_named("alice")
    finished_run(make_job(alice), ago=timedelta(hours=1), cost=1.0)
    body = page(signed_in(client, alice), f"/usage/?{query}", status=400)
    assert message in body.split('id="usage-problem">')[1].split("</div>")[0]
    assert 'id="usage-totals"' not in body and "usage-trend" not in body
    assert 'id="usage-custom-range"' in body  # to correct it


def test_the_trend_holds_each_top_jobs_cost_per_day(client, db):
    alice = user_named("alice")
    etl, report = make_job(alice, name="etl"), make_job(alice, name="report")
    a = finished_run(etl, ago=timedelta(days=1), cost=0.25)
    b = finished_run(etl, ago=timedelta(days=1, minutes=1), cost=0.5)
    c = finished_run(report, ago=timedelta(days=3), cost=0.125)
    unmeasured = finished_run(report, ago=timedelta(days=5))
    trend = script_data(page(signed_in(client, alice), "/usage/?range=7d"), "usage-trend")
    assert trend["currency"] == "USD" and not trend["hourly"] and len(trend["buckets"]) in (7, 8)
    assert trend["buckets"] == sorted(trend["buckets"])
    traces = {t["job_id"]: dict(zip(trend["buckets"], t["cost"])) for t in trend["traces"]}
    assert [t["name"] for t in trend["traces"]] == ["etl", "report"]  # by cost
    day = lambda run: run.created_at.strftime("%Y-%m-%d")  # noqa: E731
    if day(a) == day(b):  # the two runs are a minute apart: midnight may part them
        assert traces[etl.id][day(a)] == 0.75
    assert traces[report.id][day(c)] == 0.125
    assert traces[report.id][day(unmeasured)] is None  # it ran, nobody measured it: a gap, not 0
    assert sum(v for v in traces[report.id].values() if v) == 0.125
    assert all(v == 0 for key, v in traces[report.id].items() if key not in (day(c), day(unmeasured)))


def test_the_last_24_hours_are_traced_per_hour(client, db):
    alice = user_named("alice")
    run = finished_run(make_job(alice, name="hourly"), ago=timedelta(hours=3), cost=0.5)
    trend = script_data(page(signed_in(client, alice), "/usage/?range=24h"), "usage-trend")
    assert trend["hourly"] and len(trend["buckets"]) in (24, 25)
    values = dict(zip(trend["buckets"], trend["traces"][0]["cost"]))
    assert values[run.created_at.strftime("%Y-%m-%dT%H:00")] == 0.5


def test_job_names_are_escaped_on_the_usage_page(client, db):
    alice = user_named("alice")
    job = make_job(alice, name="<script>alert(1)</script>")
    finished_run(job, ago=timedelta(hours=1), cost=0.1, cpu=1.0)
    body = page(signed_in(client, alice), "/usage/")
    assert "<script>alert(1)" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rows_of(body, "top-by-cost")[job.id]
    assert script_data(body, "usage-trend")["traces"][0]["name"] == "<script>alert(1)</script>"


def test_the_usage_page_takes_as_many_queries_for_many_jobs_as_for_one(client, db, django_assert_max_num_queries):
    alice = user_named("alice")
    finished_run(make_job(alice, name="one"), ago=timedelta(hours=1), cost=0.1, cpu=1.0)
    signed_in(client, alice)
    page(client, "/usage/")
    with CaptureQueriesContext(connection) as one:
        page(client, "/usage/")
    for number in range(15):
        job = make_job(alice, name=f"job {number}")
        for hours in range(1, 6):
            finished_run(job, ago=timedelta(hours=hours * 20), cost=0.01 * number, cpu=float(number))
    with django_assert_max_num_queries(len(one.captured_queries)):
        body = page(client, "/usage/")
    assert len(rows_of(body, "top-by-cost")) == 10 and len(script_data(body, "usage-trend")["traces"]) == 10


def test_the_usage_page_needs_sign_in(client, db):
    response = client.get("/usage/")
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=/usage/")


# --- the job page -------------------------------------------------------------------------------


def test_the_job_page_shows_each_runs_cost_and_cpu_and_charts_the_measured_ones(browser, user):
    job = make_job(user)
    older = finished_run(job, ago=timedelta(hours=3))  # before usage was measured
    measured = finished_run(job, ago=timedelta(hours=2), cost=0.000014, cpu=1.02)
    failed = finished_run(job, ago=timedelta(hours=1), cost=0.5, cpu=3.0, result="FAILED")
    body = page(browser, f"/jobs/{job.id}/")
    costs = body.split('id="run-costs"')[1].split("</tr>")[0]
    assert "cost (USD)" in costs
    assert f'data-run-id="{measured.id}">0.000014<' in costs and f'data-run-id="{failed.id}">0.50<' in costs
    assert f'data-run-id="{older.id}">not measured<' in costs
    cpus = body.split('id="run-cpu"')[1].split("</tr>")[0]
    assert f'data-run-id="{measured.id}">1.02 s<' in cpus and f'data-run-id="{older.id}">not measured<' in cpus

    chart = script_data(body, "cost-data")
    assert chart["currency"] == "USD"
    assert [(p["run_id"], p["cost"], p["cpu_seconds"], p["failed"]) for p in chart["runs"]] == [
        (measured.id, 0.000014, 1.02, False), (failed.id, 0.5, 3.0, True)]  # oldest first, unmeasured left out
    assert [p["run_id"] for p in script_data(body, "duration-data")] == [older.id, measured.id, failed.id]
    assert 'src="/static/js/cost_chart.js"' in body and 'id="cost-chart"' in body


# --- the run page -------------------------------------------------------------------------------


def attempt_of(run, key, **fields):
    return TaskRun.objects.create(**{"run": run, "task_key": key, "task_type": "shell_command_task",
                                     "life_cycle_state": "TERMINATED", "result_state": "SUCCESS", **fields})


def test_the_run_page_shows_the_runs_sums_and_each_attempts_usage_and_time_split(browser, user):
    job = make_job(user)
    run = finished_run(job, ago=timedelta(minutes=10), cost=0.0032, cpu=61.5)
    queued = run.created_at + timedelta(seconds=2)
    measured = attempt_of(run, "hello", queued_at=queued, started_at=queued + timedelta(milliseconds=250),
                          ended_at=queued + timedelta(seconds=10, milliseconds=250), setup_duration_ms=1500,
                          cleanup_duration_ms=40, cpu_seconds=61.5, peak_memory_bytes=200 * 1024 * 1024,
                          read_bytes=0, written_bytes=3 * 1024, cost=0.0032)
    body = page(browser, f"/jobs/{job.id}/runs/{run.id}/?task={measured.id}")
    assert 'id="run-cost">0.0032 USD<' in body and 'id="run-cpu">61.50 s<' in body

    panel = page(browser, f"/task-runs/{measured.id}/?fragment=1")
    assert 'data-usage="cpu_seconds">61.50 s<' in panel
    assert f'data-usage="peak_memory_bytes">200.0{NBSP}MB<' in panel
    assert f'data-usage="read_bytes">0{NBSP}bytes<' in panel and f'data-usage="written_bytes">3.0{NBSP}KB<' in panel
    assert 'data-usage="cost">0.0032 USD<' in panel
    assert 'data-phase="queue">queue 250 ms<' in panel and 'data-phase="setup">setup 1.5 s<' in panel
    assert 'data-phase="execution">execution 8.5 s<' in panel and 'data-phase="cleanup">cleanup 40 ms<' in panel


def test_an_attempt_nobody_measured_reads_not_measured_never_zero(browser, user):
    job = make_job(user)
    run = finished_run(job, ago=timedelta(minutes=5))
    at = run.created_at
    condition = attempt_of(run, "check", task_type="condition_task", queued_at=at, started_at=at,
                           ended_at=at + timedelta(milliseconds=5))
    body = page(browser, f"/jobs/{job.id}/runs/{run.id}/")
    assert 'id="run-cost">not measured<' in body and 'id="run-cpu">not measured<' in body
    panel = page(browser, f"/task-runs/{condition.id}/?fragment=1")
    for figure in ("cpu_seconds", "peak_memory_bytes", "read_bytes", "written_bytes", "cost"):
        assert f'data-usage="{figure}">not measured<' in panel
    assert 'data-phase="setup">setup none<' in panel and 'data-phase="cleanup">cleanup not measured<' in panel
    assert 'data-phase="execution">execution 5 ms<' in panel
