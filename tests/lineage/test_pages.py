"""The lineage dashboard with Django's test client: the Lineage graph, a table's page, the run and
job cards and the run's upstream root cause. Runs are made by the engine (create_run, claim,
finish) and their lineage recorded as capture records it (lineage.recording)."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from lineage import upstream
from lineage.models import Access, Dataset, Direction, Source
from lineage.names import DatasetName, table_dataset
from lineage.picture import NODE_HEIGHT, NODE_WIDTH
from lineage.recording import note_accesses, record_accesses, record_columns, record_gap
from runs.admission import create_run
from runs.dispatch import finish_attempt
from runs.engine.endings import attempt_ended
from runs.engine.states import RunResultState as R
from runs.models import TaskRun
from tests.runs.conftest import claim_attempt, make_job, shell

BRONZE, SILVER, GOLD = "default.main.bronze", "default.main.silver", "default.main.gold"


@pytest.fixture
def browser(client, alice):
    client.force_login(alice)
    return client


def page(browser, url, status=200):
    response = browser.get(url)
    assert response.status_code == status, response.content[:500]
    return response.content.decode()


def run_tasks(broker, job, failing=()):
    """One run of the job with every task finished at once (failing ones FAILED): {key: attempt}."""
    create_run(job)
    attempts = {}
    for attempt_id in broker.take():
        key = claim_attempt(attempt_id).task_key
        result, error = (R.FAILED, f"{key} broke") if key in failing else (R.SUCCESS, "")
        assert finish_attempt(attempt_id, attempt_ended(result, error), error=error)
        attempts[key] = TaskRun.objects.select_related("run").get(id=attempt_id)
    return attempts


def lineage(attempt, reads=(), writes=(), at=None, rows=None, columns=None, source=Source.SQL):
    """Record what the attempt read and wrote as capture does when it ends, `at` (now); an
    attempt said to end in the past started half a minute before."""
    if at is not None:
        TaskRun.objects.filter(id=attempt.id).update(started_at=at - timedelta(seconds=30), ended_at=at)
    record_accesses(attempt, [(table_dataset(name), Direction.READ, None, None) for name in reads]
                    + [(table_dataset(name), Direction.WRITE, columns, rows) for name in writes],
                    source, at or timezone.now())


@pytest.fixture
def medallion(alice, broker):
    """Job A: bronze_load writes bronze, silver_build reads it and writes silver; job B's
    gold_build reads silver and writes gold."""
    a = make_job(alice, [shell("bronze_load"), shell("silver_build")], name="A")
    b = make_job(alice, [shell("gold_build")], name="B")
    run_a = run_tasks(broker, a)
    lineage(run_a["bronze_load"], writes=[BRONZE], rows=1, columns=["id", "name"])
    lineage(run_a["silver_build"], reads=[BRONZE], writes=[SILVER], rows=1, columns=["id", "name"])
    record_columns(run_a["silver_build"], [(table_dataset(SILVER), "name", table_dataset(BRONZE), "name"),
                                           (table_dataset(SILVER), "id", table_dataset(BRONZE), "id")], timezone.now())
    run_b = run_tasks(broker, b)
    lineage(run_b["gold_build"], reads=[SILVER], writes=[GOLD], rows=1)
    return {"a": a, "b": b, "run_a": run_a, "run_b": run_b}


def nodes(body):
    """{data-name: (kind, x, y)} of the boxes drawn."""
    return {name: (kind, int(x), int(y)) for kind, name, x, y in re.findall(
        r'class="lnode [^"]*" data-kind="(\w+)" data-name="([^"]*)" data-x="(-?\d+)" data-y="(-?\d+)"', body)}


def lines(body):
    return re.findall(r'data-source="([^"]*)" data-target="([^"]*)"', body)


# --- the Lineage graph --------------------------------------------------------------------------


def test_the_lineage_page_draws_tables_and_tasks_left_to_right_with_their_links(browser, medallion):
    a, b = medallion["a"], medallion["b"]
    body = page(browser, "/lineage/")

    drawn = nodes(body)
    silver_build, gold_build = f"{a.id}/silver_build", f"{b.id}/gold_build"
    assert {BRONZE, SILVER, GOLD, f"{a.id}/bronze_load", silver_build, gold_build} == set(drawn)
    assert {(BRONZE, silver_build), (silver_build, SILVER), (SILVER, gold_build), (gold_build, GOLD)} <= set(lines(body))
    for source, target in lines(body):
        assert drawn[source][1] < drawn[target][1], f"{source} -> {target} points left"
    assert [drawn[n][0] for n in (BRONZE, silver_build, SILVER)] == ["dataset", "task", "dataset"]
    assert f'href="/lineage/tables/{SILVER}/"' in body and f'href="/jobs/{a.id}/"' in body
    assert 'class="nav-link active" href="/lineage/"' in body


def test_no_two_boxes_overlap(browser, medallion):
    boxes = list(nodes(page(browser, "/lineage/")).values())
    for i, (_, x1, y1) in enumerate(boxes):
        for _, x2, y2 in boxes[i + 1:]:
            assert abs(x1 - x2) >= NODE_WIDTH or abs(y1 - y2) >= NODE_HEIGHT


def test_the_search_keeps_datasets_whose_name_contains_the_words(browser, medallion):
    body = page(browser, "/lineage/?q=SILV")

    assert {n for n, (kind, *_) in nodes(body).items() if kind == "dataset"} == {SILVER}


def test_centring_on_a_table_keeps_what_is_within_the_depth(browser, medallion):
    body = page(browser, f"/lineage/?table={BRONZE}&depth=1")
    datasets = {n for n, (kind, *_) in nodes(body).items() if kind == "dataset"}
    assert datasets == {BRONZE, SILVER}
    assert 'class="lnode dataset centre"' in body

    datasets = {n for n, (kind, *_) in nodes(page(browser, f"/lineage/?table={BRONZE}&depth=2")).items()
                if kind == "dataset"}
    assert datasets == {BRONZE, SILVER, GOLD}


def test_an_unknown_centre_or_a_depth_out_of_range_is_refused(browser, medallion):
    assert "No dataset is named" in page(browser, "/lineage/?table=default.main.nope", status=404)
    page(browser, f"/lineage/?table={BRONZE}&depth=11", status=400)
    page(browser, "/lineage/?cap=0", status=400)


def test_the_cap_leaves_datasets_out_and_says_how_many_with_a_link_for_more(browser, alice, broker):
    job = make_job(alice, [shell("fan_out")], name="fan")
    lineage(run_tasks(broker, job)["fan_out"], writes=[f"default.main.t{i:02}" for i in range(12)])

    body = page(browser, "/lineage/?cap=5")
    assert len([n for n, (kind, *_) in nodes(body).items() if kind == "dataset"]) == 5
    assert re.search(r"7 more not shown — <a href=\"\?cap=10\" id=\"lineage-show-more\">show more</a>", body)
    more = page(browser, "/lineage/?cap=10")
    assert "2 more not shown" in more and len(nodes(more)) == 11


def test_a_ten_thousand_table_graph_draws_only_the_cap(browser, alice, broker):
    job = make_job(alice, [shell("big")], name="big")
    attempt = run_tasks(broker, job)["big"]
    names = [DatasetName(f"default.main.big_{i:05}", "TABLE") for i in range(10_000)]
    Dataset.objects.bulk_create([Dataset(name=n.name, kind=n.kind) for n in names])
    Access.objects.bulk_create([Access(dataset=d, direction=Direction.WRITE, job_id=job.id, task_key="big",
                                       last_run_id=attempt.run_id) for d in Dataset.objects.all()])

    body = page(browser, "/lineage/")
    assert len(nodes(body)) == 150 + 1  # the capped datasets and their one task
    assert "9850 more not shown" in body


def test_a_trigger_is_a_node_of_its_own_and_its_edge_says_trigger(browser, alice, medallion):
    watcher = make_job(alice, [shell("report")], name="on gold",
                       trigger={"table_update": {"table_names": [GOLD]}, "pause_status": "PAUSED"})

    body = page(browser, "/lineage/")
    assert (GOLD, f"{watcher.id}/") in lines(body)
    assert re.search(f'class="lnode task trigger" data-kind="task" data-name="{watcher.id}/"', body)
    assert '<text class="lline-label"' in body and ">trigger</text>" in body


def test_a_run_job_link_is_a_dashed_line_to_the_child_jobs_tasks(browser, alice, medallion):
    parent = make_job(alice, [shell("prepare"), {"task_key": "call_b", "run_job_task": {"job_id": medallion["b"].id}}],
                      name="orchestrator")
    # The parent reads gold (no run needed: the graph walks Access rows).
    note_accesses({Dataset.objects.get(name=GOLD).id}, Direction.READ, parent.id, "prepare", timezone.now())

    body = page(browser, "/lineage/")
    assert re.search(rf'class="lline dashed" d="[^"]*" data-source="{parent.id}/call_b" '
                     rf'data-target="{medallion["b"].id}/gold_build"', body)


# --- a table's page -----------------------------------------------------------------------------


def test_a_table_page_shows_writers_readers_freshness_columns_and_impact(browser, medallion):
    a, run_a, run_b = medallion["a"], medallion["run_a"], medallion["run_b"]
    body = page(browser, f"/lineage/tables/{SILVER}/")

    writers = body.split('id="table-writers"')[1].split("</table>")[0]
    assert "silver_build" in writers and f'href="/runs/{run_a["silver_build"].run_id}/"' in writers
    readers = body.split('id="table-readers"')[1].split("</table>")[0]
    assert "gold_build" in readers and f'href="/runs/{run_b["gold_build"].run_id}/"' in readers
    assert "Last successful write" in body and "1 row" in body
    columns = body.split('id="table-columns"')[1].split("</table>")[0]
    assert 'data-column="name"' in columns and f'href="/lineage/tables/{BRONZE}/"' in columns
    impact = body.split('id="downstream-impact"')[1]
    assert "1 dataset · 1 task · 1 job" in impact and GOLD in impact
    assert f'href="/jobs/{a.id}/"' in body
    assert 'id="row-count-chart"' in body and "plotly.min.js" in body


def test_a_newer_failed_write_is_flagged_beside_the_last_successful_one(browser, alice, broker, medallion):
    job = make_job(alice, [shell("bad_load")], name="bad")
    failed = run_tasks(broker, job, failing=["bad_load"])["bad_load"]
    lineage(failed, writes=[SILVER])

    fresh = page(browser, f"/lineage/tables/{SILVER}/").split('id="freshness"')[1].split("</div></div>")[0]
    assert f'href="/runs/{medallion["run_a"]["silver_build"].run_id}/"' in fresh
    assert 'id="newer-write"' in fresh and "failed" in fresh and f'href="/runs/{failed.run_id}/"' in fresh


def test_a_trigger_reader_says_which_job_it_triggers(browser, alice, medallion):
    watcher = make_job(alice, [shell("report")], name="on silver",
                       trigger={"table_update": {"table_names": [SILVER]}, "pause_status": "PAUSED"})

    readers = page(browser, f"/lineage/tables/{SILVER}/").split('id="table-readers"')[1].split("</table>")[0]
    assert re.search(f'triggers job <a href="/jobs/{watcher.id}/">on silver</a>', readers)


def test_a_table_page_lists_the_gaps_of_its_recent_writers(browser, medallion):
    record_gap(medallion["run_a"]["silver_build"], "statement 2 could not be parsed", timezone.now())

    assert "lineage unknown: statement 2 could not be parsed" in page(browser, f"/lineage/tables/{SILVER}/")
    assert "lineage unknown" not in page(browser, f"/lineage/tables/{GOLD}/")


def test_a_path_dataset_has_a_page_and_an_unknown_table_is_404(browser, alice, broker):
    attempt = run_tasks(broker, make_job(alice, [shell("land")]))["land"]
    record_accesses(attempt, [(DatasetName("/Volumes/main/raw/landing", "PATH"), Direction.WRITE, None, None)],
                    Source.DECLARED, timezone.now())

    assert "/Volumes/main/raw/landing" in page(browser, "/lineage/tables//Volumes/main/raw/landing/")
    page(browser, "/lineage/tables/default.main.nope/", status=404)


def test_the_lineage_pages_need_sign_in(client, medallion):
    run_id = medallion["run_a"]["bronze_load"].run_id
    for url in ["/lineage/", f"/lineage/tables/{SILVER}/", f"/lineage/runs/{run_id}/card/",
                f"/lineage/runs/{run_id}/upstream/", f"/lineage/jobs/{medallion['a'].id}/card/"]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


# --- the run and job cards ----------------------------------------------------------------------


def test_the_run_card_lists_each_tasks_reads_and_writes_and_its_gaps(browser, medallion):
    run_a = medallion["run_a"]
    record_gap(run_a["silver_build"], "a Python UDF hides what it reads", timezone.now())

    body = page(browser, f"/lineage/runs/{run_a['silver_build'].run_id}/card/")
    silver = body.split('data-task-key="silver_build"')[1]
    assert re.search(f'data-direction="read" data-dataset="{BRONZE}"', silver)
    assert re.search(f'data-direction="write" data-dataset="{SILVER}"', silver)
    assert "from its SQL" in silver and "1 row" in silver and "attempt 1" in silver
    assert "lineage unknown: a Python UDF hides what it reads" in silver
    assert 'data-task-key="bronze_load"' in body
    assert "data-lineage-pending" not in body


def test_the_run_page_and_the_job_page_fetch_their_lineage_cards(browser, medallion):
    a, run_id = medallion["a"], medallion["run_a"]["bronze_load"].run_id

    run_page = page(browser, f"/jobs/{a.id}/runs/{run_id}/")
    assert f'data-lineage-url="/lineage/runs/{run_id}/card/"' in run_page and "lineage_fragments.js" in run_page
    job_page = page(browser, f"/jobs/{a.id}/")
    assert f'data-lineage-url="/lineage/jobs/{a.id}/card/"' in job_page and "lineage_fragments.js" in job_page


def test_the_job_card_lists_the_tables_of_its_tasks_and_marks_its_trigger(browser, alice, medallion):
    a = medallion["a"]
    a.save_version({**a.settings, "trigger": {"table_update": {"table_names": ["default.main.seed"]},
                                              "pause_status": "PAUSED"}}, alice)

    body = page(browser, f"/lineage/jobs/{a.id}/card/")
    assert re.search(f'data-task-key="silver_build" data-direction="read" data-dataset="{BRONZE}"', body)
    assert re.search(f'data-task-key="silver_build" data-direction="write" data-dataset="{SILVER}"', body)
    assert re.search(r'data-task-key="" data-direction="read" data-dataset="default.main.seed"', body)
    assert ">trigger</span>" in body and "watches" in body
    page(browser, "/lineage/jobs/987654/card/", status=404)


# --- root cause upstream ------------------------------------------------------------------------


def test_the_upstream_cause_names_the_failed_run_that_wrote_an_input(browser, alice, broker):
    c = make_job(alice, [shell("make_broken")], name="C")
    d = make_job(alice, [shell("use_broken")], name="D")
    bad_write = run_tasks(broker, c, failing=["make_broken"])["make_broken"]
    lineage(bad_write, writes=["default.main.broken"], at=timezone.now() - timedelta(minutes=1))
    reader = run_tasks(broker, d, failing=["use_broken"])["use_broken"]
    lineage(reader, reads=["default.main.broken"])

    body = page(browser, f"/lineage/runs/{reader.run_id}/upstream/")
    assert 'data-dataset="default.main.broken"' in body and "failed" in body
    assert f'href="/runs/{bad_write.run_id}/"' in body and f'href="/jobs/{c.id}/">C</a>' in body
    run_page = page(browser, f"/jobs/{d.id}/runs/{reader.run_id}/")
    assert f'data-lineage-url="/lineage/runs/{reader.run_id}/upstream/"' in run_page.split('id="root-cause"')[1]


def test_the_walk_goes_up_through_failed_writers_to_the_first_failure(browser, alice, broker):
    early = timezone.now() - timedelta(minutes=10)
    first = run_tasks(broker, make_job(alice, [shell("extract")], name="E"), failing=["extract"])["extract"]
    lineage(first, writes=["default.main.raw"], at=early)
    middle = run_tasks(broker, make_job(alice, [shell("clean")], name="C"), failing=["clean"])["clean"]
    lineage(middle, reads=["default.main.raw"], writes=["default.main.broken"], at=early + timedelta(minutes=1))
    reader = run_tasks(broker, make_job(alice, [shell("report")], name="D"), failing=["report"])["report"]
    lineage(reader, reads=["default.main.broken"])

    (task,) = upstream.failed_inputs(reader.run, timezone.now())
    (broken,) = task["inputs"]
    assert broken["failed_write"].task_run_id == middle.id
    assert [w.task_run_id for w in broken["first_failures"]] == [first.id]
    body = page(browser, f"/lineage/runs/{reader.run_id}/upstream/")
    assert re.search(f'First failure upstream: <a href="/runs/{first.run_id}/">', body)


def test_a_task_that_reads_and_writes_its_own_table_and_keeps_failing_ends_the_walk(alice, broker):
    job = make_job(alice, [shell("merge")], name="loop")
    at = timezone.now() - timedelta(hours=3)
    attempts = []
    for hour in range(3):
        attempts.append(attempt := run_tasks(broker, job, failing=["merge"])["merge"])
        lineage(attempt, reads=["default.main.t"], writes=["default.main.t"], at=at + timedelta(hours=hour))
    attempt.refresh_from_db()

    (task,) = upstream.failed_inputs(attempt.run, timezone.now())
    (t,) = task["inputs"]
    assert t["failed_write"].task_run_id == attempts[1].id  # the write it read: the run before
    assert [w.task_run_id for w in t["first_failures"]] == [attempts[0].id]


def test_writes_stamped_before_their_own_attempt_started_cannot_loop_the_walk(alice, broker):
    # An OpenLineage client with a slow clock: each attempt's write seems to come before it ran.
    job = make_job(alice, [shell("merge")], name="skewed")
    for minutes in (20, 10):
        attempt = run_tasks(broker, job, failing=["merge"])["merge"]
        record_accesses(attempt, [(table_dataset("default.main.t"), d, None, None) for d in Direction],
                        Source.OPENLINEAGE, timezone.now() - timedelta(minutes=minutes))

    (task,) = upstream.failed_inputs(attempt.run, timezone.now())
    (t,) = task["inputs"]
    assert t["failed_write"].task_run_id != attempt.id  # never what it wrote itself
    assert len(t["first_failures"]) == 1


def test_a_stale_input_is_older_than_twice_its_usual_interval(browser, alice, broker):
    loader = make_job(alice, [shell("daily_load")], name="loader")
    now = timezone.now()
    for days in (9, 8, 7, 6):  # daily, then nothing for six days
        lineage(run_tasks(broker, loader)["daily_load"], writes=["default.main.daily"], at=now - timedelta(days=days))
    lineage(run_tasks(broker, loader)["daily_load"], writes=["default.main.fresh"], at=now - timedelta(hours=1))
    reader = run_tasks(broker, make_job(alice, [shell("use_daily")], name="user"), failing=["use_daily"])["use_daily"]
    lineage(reader, reads=["default.main.daily", "default.main.fresh"])

    (task,) = upstream.failed_inputs(reader.run, now)
    stale = {i["dataset"].name: i["stale"] for i in task["inputs"]}
    assert stale["default.main.fresh"] is None  # fewer than three writes: no usual interval
    assert stale["default.main.daily"]["usual"] == timedelta(days=1)
    assert stale["default.main.daily"]["age"] > timedelta(days=5)
    body = page(browser, f"/lineage/runs/{reader.run_id}/upstream/")
    assert "stale" in body.split('data-dataset="default.main.daily"')[1].split("</li>")[0]
    assert "on time" in body.split('data-dataset="default.main.fresh"')[1].split("</li>")[0]


def test_an_input_written_on_time_is_not_stale(alice, broker):
    loader = make_job(alice, [shell("hourly")], name="loader")
    now = timezone.now()
    for hours in (4, 3, 2, 1):
        lineage(run_tasks(broker, loader)["hourly"], writes=["default.main.hourly"], at=now - timedelta(hours=hours))
    reader = run_tasks(broker, make_job(alice, [shell("use")]), failing=["use"])["use"]
    lineage(reader, reads=["default.main.hourly"])

    (task,) = upstream.failed_inputs(reader.run, now)
    assert task["inputs"][0]["stale"] is None and task["inputs"][0]["failed_write"] is None


def test_a_failed_attempt_that_captured_nothing_is_judged_by_what_its_task_read_before(alice, broker):
    c = make_job(alice, [shell("make_broken")], name="C")
    lineage(run_tasks(broker, c, failing=["make_broken"])["make_broken"], writes=["default.main.broken"],
            at=timezone.now() - timedelta(minutes=5))
    d = make_job(alice, [shell("use_broken")], name="D")
    lineage(run_tasks(broker, d)["use_broken"], reads=["default.main.broken"], at=timezone.now() - timedelta(minutes=2))
    silent = run_tasks(broker, d, failing=["use_broken"])["use_broken"]  # this time nothing was captured

    (task,) = upstream.failed_inputs(silent.run, timezone.now())
    assert task["from_earlier_runs"] is True
    assert [i["dataset"].name for i in task["inputs"]] == ["default.main.broken"]
    assert task["inputs"][0]["failed_write"] is not None


def test_a_run_that_did_not_fail_has_no_upstream_cause(browser, medallion):
    body = page(browser, f"/lineage/runs/{medallion['run_a']['bronze_load'].run_id}/upstream/")
    assert "No failed task" in body
    page(browser, "/lineage/runs/987654/upstream/", status=404)
    page(browser, "/lineage/runs/987654/card/", status=404)


def test_tables_are_seen_by_all_but_the_tasks_and_runs_of_a_job_only_by_its_viewers(client, medallion):
    from django.contrib.auth import get_user_model

    from jobs.models import JobPermission

    a, b = medallion["a"], medallion["b"]
    client.force_login(get_user_model().objects.create_user("bob"))
    JobPermission.objects.create(job=b, user=get_user_model().objects.get(username="bob"), level="CAN_VIEW")
    graph = page(client, "/lineage/")
    assert f'href="/lineage/tables/{SILVER}/"' in graph  # every table
    assert f'href="/jobs/{b.id}/"' in graph and f'href="/jobs/{a.id}/"' not in graph  # only B's tasks
    silver = page(client, f"/lineage/tables/{SILVER}/")
    run_a = medallion["run_a"]["silver_build"].run_id
    assert f"/jobs/{a.id}/" not in silver and f"/runs/{run_a}/" not in silver and f"run {run_a}" not in silver
    assert f'href="/jobs/{b.id}/"' in silver  # B reads silver
    page(client, f"/lineage/runs/{run_a}/card/", status=403)
    page(client, f"/lineage/jobs/{a.id}/card/", status=403)
