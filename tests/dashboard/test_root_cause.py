"""The failure root-cause view: which tasks a failed run's trouble started in, what they said,
whether they failed like this before, and what changed since the job last succeeded."""

from django.template.loader import render_to_string

from jobs.checks import check_settings_against_server
from jobs.spec.settings import validate_job_settings

from runs.admission import create_run
from runs.control_flow import execute_control_flow
from runs.dispatch import cancel_run, finish_attempt
from runs.engine.endings import attempt_ended, lost_with_its_worker
from runs.engine.states import RunLifeCycleState as L
from runs.engine.states import RunResultState as R
from runs.models import TaskRun
from runs.rootcause import explain
from tests.dashboard.conftest import make_job


def shell(key, command="true", depends_on=(), **fields):
    return {"task_key": key, "shell_command_task": {"command": command},
            "depends_on": [{"task_key": d} for d in depends_on], **fields}


def edit_job(job, user, **settings):
    """Save a new version the way the editor and jobs/reset do: validated and filled in."""
    body = {**job.settings, **settings}
    return job.save_version(check_settings_against_server(validate_job_settings(body)), user)


def attempt(run, key):
    return TaskRun.objects.get(run=run, task_key=key, for_each_key="", is_current=True)


def fail(run, key, error="ValueError: boom", **fields):
    assert finish_attempt(attempt(run, key).id, attempt_ended(R.FAILED, error), error=error, **fields)


def succeed(run, key):
    assert finish_attempt(attempt(run, key).id, attempt_ended(R.SUCCESS))


def refreshed(run):
    run.refresh_from_db()
    return run


def origin_keys(explained):
    return [origin["task_key"] for origin in explained["origins"]]


def run_that_fails(job, user, key="hello", error="ValueError: boom", **fields):
    run, _ = create_run(job, creator=user)
    fail(run, key, error, **fields)
    return refreshed(run)


def run_that_succeeds(job, user, **parameters):
    run, _ = create_run(job, creator=user, job_parameters=parameters or None)
    for task in job.settings["tasks"]:
        succeed(run, task["task_key"])
    run = refreshed(run)
    assert run.result_state == R.SUCCESS
    return run


# --- which runs are explained --------------------------------------------------------------


def test_a_successful_run_has_nothing_to_explain(user, held_broker):
    assert explain(run_that_succeeds(make_job(user), user)) is None


def test_a_run_still_going_has_nothing_to_explain(user, held_broker):
    run, _ = create_run(make_job(user), creator=user)

    assert explain(run) is None


# --- origins -------------------------------------------------------------------------------


def test_in_a_chain_the_first_failed_task_is_the_origin_not_the_tasks_it_skipped(user, held_broker):
    job = make_job(user, tasks=[shell("a"), shell("b", depends_on=["a"]), shell("c", depends_on=["b"])])
    run, _ = create_run(job, creator=user)
    fail(run, "a", "ValueError: bad row 7", error_trace="Traceback...\nValueError: bad row 7")
    run = refreshed(run)
    assert run.result_state == R.FAILED
    assert attempt(run, "b").result_state == attempt(run, "c").result_state == R.UPSTREAM_FAILED

    explained = explain(run)

    assert explained["title"] == "Why this run failed" and explained["result_state"] == R.FAILED
    [origin] = explained["origins"]
    assert origin["task_key"] == "a" and origin["kind"] == "failed"
    assert origin["task_run_id"] == attempt(run, "a").id
    assert origin["error"] == "ValueError: bad row 7"
    assert origin["error_trace"] == "Traceback...\nValueError: bad row 7"
    assert origin["exception_type"] == "ValueError"
    assert origin["attempt_count"] == 1
    assert origin["downstream_skipped"] == ["b", "c"]


def test_two_independent_failures_are_both_origins(user, held_broker):
    job = make_job(user, tasks=[shell("left"), shell("right"), shell("ok"),
                                shell("join", depends_on=["left", "right", "ok"])])
    run, _ = create_run(job, creator=user)
    fail(run, "left", "KeyError: 'day'")
    succeed(run, "ok")
    fail(run, "right", "Task exited with code 3")

    explained = explain(refreshed(run))

    assert origin_keys(explained) == ["left", "right"]
    assert [o["downstream_skipped"] for o in explained["origins"]] == [["join"], ["join"]]
    assert [o["error"] for o in explained["origins"]] == ["KeyError: 'day'", "Task exited with code 3"]


def test_retries_are_counted_and_the_latest_attempt_is_the_one_shown(user, held_broker):
    job = make_job(user, tasks=[shell("flaky", max_retries=2)])
    run, _ = create_run(job, creator=user)
    for n in range(3):
        fail(run, "flaky", f"RuntimeError: try {n}")

    run = refreshed(run)
    [origin] = explain(run)["origins"]

    assert run.result_state == R.FAILED
    assert origin["attempt_count"] == 3
    assert origin["task_run_id"] == attempt(run, "flaky").id
    assert origin["error"] == "RuntimeError: try 2"


def test_a_timed_out_task_is_an_origin(user, held_broker):
    run, _ = create_run(make_job(user), creator=user)
    assert finish_attempt(attempt(run, "hello").id, attempt_ended(R.TIMEDOUT, "Task timed out after 5 seconds"))

    explained = explain(refreshed(run))

    assert explained["origins"][0]["result_state"] == R.TIMEDOUT
    assert explained["origins"][0]["error"] == "Task timed out after 5 seconds"


def test_a_task_whose_worker_died_is_an_origin(user, held_broker):
    run, _ = create_run(make_job(user), creator=user)
    message = "The worker running this task stopped responding (no heartbeat since 10:00:00 UTC)"
    assert finish_attempt(attempt(run, "hello").id, lost_with_its_worker(message, canceling=False))

    [origin] = explain(refreshed(run))["origins"]

    assert origin["life_cycle_state"] == L.INTERNAL_ERROR and origin["error"] == message


def test_a_run_that_succeeded_with_failures_explains_the_failed_task(user, held_broker):
    job = make_job(user, tasks=[shell("a"), shell("cleanup", depends_on=["a"], run_if="ALL_DONE")])
    run, _ = create_run(job, creator=user)
    fail(run, "a")
    succeed(run, "cleanup")
    run = refreshed(run)
    assert run.result_state == R.SUCCESS_WITH_FAILURES

    explained = explain(run)

    assert explained["title"] == "Why some tasks of this run failed"
    assert [(o["task_key"], o["downstream_skipped"]) for o in explained["origins"]] == [("a", [])]


def test_a_for_each_points_at_its_failed_iterations(user, held_broker):
    loop = {"task_key": "loop", "for_each_task": {"inputs": "[10, 20, 30]", "concurrency": 3,
                                                  "task": shell("item", "echo {{input}}")}}
    job = make_job(user, tasks=[loop, shell("after", depends_on=["loop"])])
    run, _ = create_run(job, creator=user)
    execute_control_flow(attempt(run, "loop").id)
    iterations = {row.iteration: row for row in TaskRun.objects.filter(run=run, for_each_key="loop")}
    finish_attempt(iterations[0].id, attempt_ended(R.SUCCESS))
    finish_attempt(iterations[1].id, attempt_ended(R.FAILED, "ValueError: 20"), error="ValueError: 20")
    finish_attempt(iterations[2].id, attempt_ended(R.FAILED, "ValueError: 30"), error="ValueError: 30")
    run = refreshed(run)
    assert run.result_state == R.FAILED

    explained = explain(run)

    assert [(o["for_each_key"], o["iteration"], o["task_key"]) for o in explained["origins"]] == [
        ("loop", 1, "item"), ("loop", 2, "item")]
    assert [o["task_run_id"] for o in explained["origins"]] == [iterations[1].id, iterations[2].id]
    assert explained["origins"][0]["error"] == "ValueError: 20"
    assert explained["origins"][0]["attempt_count"] == 1
    assert explained["origins"][0]["downstream_skipped"] == ["after"]
    assert explained["more_origins"] == []


def test_a_canceled_run_names_who_canceled_it(user, held_broker):
    job = make_job(user, tasks=[shell("a"), shell("b", depends_on=["a"])])
    run, _ = create_run(job, creator=user)
    assert cancel_run(run.id, message="Canceled by ada")

    explained = explain(refreshed(run))

    assert explained["title"] == "Why this run was canceled"
    assert explained["cancel_message"] == "Canceled by ada"
    assert [(o["task_key"], o["kind"]) for o in explained["origins"]] == [("a", "canceled")]
    assert explained["origins"][0]["downstream_skipped"] == ["b"]
    assert explained["origins"][0]["earlier_failures"] == []


def test_a_queued_run_that_was_canceled_has_no_origins_but_says_who_canceled_it(user, held_broker):
    job = make_job(user, max_concurrent_runs=1, queue={"enabled": True})
    create_run(job, creator=user)
    queued, _ = create_run(job, creator=user)
    assert queued.life_cycle_state == L.QUEUED
    assert cancel_run(queued.id, message="Canceled by ada")

    explained = explain(refreshed(queued))

    assert explained["origins"] == [] and explained["cancel_message"] == "Canceled by ada"


def test_a_run_that_timed_out_says_the_job_timeout_stopped_it(user, held_broker):
    run, _ = create_run(make_job(user, timeout_seconds=60), creator=user)
    assert cancel_run(run.id, reason="TIMEOUT")

    explained = explain(refreshed(run))

    assert explained["title"] == "Why this run timed out"
    assert explained["cancel_message"] == "Canceled by the job's timeout (60 seconds)"


# --- the log ---------------------------------------------------------------------------------


def test_the_last_lines_of_a_long_log_are_shown(user, held_broker, tmp_path):
    log = tmp_path / "output.log"
    log.write_text("".join(f"line {n}\n" for n in range(200_000)))  # a couple of megabytes
    run = run_that_fails(make_job(user), user, log_path=str(log))

    [origin] = explain(run)["origins"]

    assert origin["last_log_lines"] == [f"line {n}" for n in range(199_980, 200_000)]


def test_a_missing_log_shows_no_lines(user, held_broker, tmp_path):
    run = run_that_fails(make_job(user), user, log_path=str(tmp_path / "gone.log"))

    assert explain(run)["origins"][0]["last_log_lines"] == []


# --- earlier failures ----------------------------------------------------------------------


def test_earlier_runs_that_failed_the_same_way_are_found_newest_first(user, held_broker):
    job = make_job(user)
    first = run_that_fails(job, user, error="ValueError: bad row 7")
    run_that_fails(job, user, error="KeyError: 'day'")
    run_that_succeeds(job, user)
    third = run_that_fails(job, user, error="ValueError: bad row 9")
    other_job = make_job(user)
    run_that_fails(other_job, user, error="ValueError: bad row 7")
    latest = run_that_fails(job, user, error="ValueError: bad row 11")

    [origin] = explain(latest)["origins"]

    assert [e["run_id"] for e in origin["earlier_failures"]] == [third.id, first.id]
    assert origin["earlier_failure_count"] == 2
    assert origin["earlier_failures"][0] == {
        "run_id": third.id, "job_id": job.id, "task_run_id": attempt(third, "hello").id,
        "failed_at": attempt(third, "hello").ended_at, "error_line": "ValueError: bad row 9"}


def test_a_different_error_of_the_same_task_is_not_the_same_failure(user, held_broker):
    job = make_job(user)
    run_that_fails(job, user, error="Task exited with code 3")
    latest = run_that_fails(job, user, error="Task exited with code 4")

    assert explain(latest)["origins"][0]["earlier_failures"] == []


def test_the_exception_at_the_end_of_a_traceback_matches_earlier_failures(user, held_broker):
    job = make_job(user)
    trace = "Traceback (most recent call last):\n  File \"etl.py\", line 3\nKeyError: '{}'\n"
    earlier = run_that_fails(job, user, error="Task exited with code 1", error_trace=trace.format("day"))
    latest = run_that_fails(job, user, error="Task exited with code 2", error_trace=trace.format("month"))

    assert [e["run_id"] for e in explain(latest)["origins"][0]["earlier_failures"]] == [earlier.id]


def test_earlier_failures_show_at_most_five_and_count_them_all(user, held_broker):
    job = make_job(user)
    earlier = [run_that_fails(job, user, error="OSError: disk full") for _ in range(7)]
    latest = run_that_fails(job, user, error="OSError: disk full")

    [origin] = explain(latest)["origins"]

    assert [e["run_id"] for e in origin["earlier_failures"]] == [r.id for r in reversed(earlier)][:5]
    assert origin["earlier_failure_count"] == 7


def test_only_the_newest_earlier_runs_are_searched(user, held_broker, monkeypatch):
    monkeypatch.setattr("runs.rootcause.EARLIER_RUNS_SEARCHED", 2)
    job = make_job(user)
    run_that_fails(job, user, error="OSError: disk full")  # three runs back: beyond the search
    run_that_succeeds(job, user)
    run_that_succeeds(job, user)
    latest = run_that_fails(job, user, error="OSError: disk full")

    assert explain(latest)["origins"][0]["earlier_failures"] == []


def test_explaining_a_run_takes_a_few_queries_per_origin(user, held_broker, django_assert_max_num_queries):
    job = make_job(user, tasks=[shell(key) for key in "abcd"] + [shell("z", depends_on=list("abcd"))])
    for _ in range(3):
        run, _ = create_run(job, creator=user)
        for key in "abcd":
            fail(run, key, f"ValueError: {key}")
    run = refreshed(run)

    with django_assert_max_num_queries(4 + 3 * 4):
        explained = explain(run)

    assert origin_keys(explained) == list("abcd")
    assert all(o["earlier_failure_count"] == 2 for o in explained["origins"])


# --- what changed --------------------------------------------------------------------------


def test_with_no_earlier_success_there_is_nothing_to_compare(user, held_broker):
    changes = explain(run_that_fails(make_job(user), user))["changes"]

    assert changes["last_success_run_id"] is None
    assert changes["version_diff"] is None and changes["parameter_diff"] == []


def test_nothing_changed_when_the_version_and_parameters_are_the_same(user, held_broker):
    job = make_job(user)
    good = run_that_succeeds(job, user)

    changes = explain(run_that_fails(job, user))["changes"]

    assert changes["last_success_run_id"] == good.id
    assert changes["version_diff"] is None and changes["parameter_diff"] == []


def test_an_edit_of_the_job_since_the_last_success_shows_as_a_diff(user, held_broker):
    job = make_job(user, tasks=[shell("hello", "echo hi")])
    good = run_that_succeeds(job, user)
    before = job.current_version
    after = edit_job(job, user, tasks=[shell("hello", "echo bye")])

    diff = explain(run_that_fails(job, user))["changes"]["version_diff"]

    assert (diff["from_version"], diff["to_version"]) == (before.number, after.number) == (1, 2)
    added = [line["text"] for line in diff["lines"] if line["kind"] == "add"]
    removed = [line["text"] for line in diff["lines"] if line["kind"] == "del"]
    assert added == ["+    command: echo bye"] and removed == ["-    command: echo hi"]
    assert diff["diff"].startswith("--- version 1\n+++ version 2\n")
    assert good.job_version_id == before.id


def test_changed_job_parameters_are_listed(user, held_broker):
    job = make_job(user, parameters=[{"name": "day", "default": "mon"}, {"name": "env", "default": "prod"}])
    run_that_succeeds(job, user)

    run, _ = create_run(job, creator=user, job_parameters={"day": "tue"})
    fail(run, "hello")
    changes = explain(refreshed(run))["changes"]

    assert changes["version_diff"] is None
    assert changes["parameter_diff"] == [{"name": "day", "before": "mon", "after": "tue"}]


def test_the_last_success_is_the_newest_successful_run_before_this_one(user, held_broker):
    job = make_job(user)
    run_that_succeeds(job, user)
    newest_good = run_that_succeeds(job, user)
    failed = run_that_fails(job, user)
    run_that_succeeds(job, user)  # after the failure: not what the failure is compared with

    assert explain(failed)["changes"]["last_success_run_id"] == newest_good.id


# --- the partial -----------------------------------------------------------------------------


def render(run):
    # Whitespace folded as a browser shows it, so the template may wrap its lines freely.
    return " ".join(render_to_string("runs/_root_cause.html", {"root_cause": explain(run)}).split())


def test_the_card_shows_each_origin_with_a_link_to_its_task_run(user, held_broker):
    job = make_job(user, tasks=[shell("extract", max_retries=2), shell("load", depends_on=["extract"])])
    run_that_succeeds(job, user)
    run, _ = create_run(job, creator=user)
    for _ in range(3):
        fail(run, "extract", "ValueError: bad row 7", error_trace="Traceback (most recent call last):\n...")
    run = refreshed(run)

    html = render(run)

    assert 'id="root-cause"' in html and "Why this run failed" in html
    assert 'class="root-cause-origin mb-4" data-task-key="extract"' in html
    assert 'data-task-key="load"' not in html
    assert f'href="?task={attempt(run, "extract").id}"' in html
    assert "ValueError: bad row 7" in html
    assert "Failed after 3 attempts" in html
    assert "<summary" in html and "Traceback (most recent call last)" in html
    assert "Nothing changed: same job version and parameters." in html


def test_the_card_escapes_run_output(user, held_broker, tmp_path):
    log = tmp_path / "output.log"
    log.write_text("starting\n<script>alert('log')</script>\n")
    job = make_job(user)
    run = run_that_fails(job, user, error="<script>alert('error')</script>", log_path=str(log),
                         error_trace="<script>alert('trace')</script>")

    html = render(run)

    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;error&#x27;)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(&#x27;log&#x27;)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(&#x27;trace&#x27;)&lt;/script&gt;" in html
    assert "No earlier successful run of this job." in html


def test_the_card_links_earlier_failures_and_shows_what_changed(user, held_broker):
    job = make_job(user, parameters=[{"name": "day", "default": "mon"}])
    run_that_succeeds(job, user)
    earlier = run_that_fails(job, user, error="OSError: disk full")
    edit_job(job, user, tasks=[shell("hello", "echo <b>bye</b>")])
    run, _ = create_run(job, creator=user, job_parameters={"day": "<i>tue</i>"})
    fail(run, "hello", "OSError: disk full")

    html = render(refreshed(run))

    assert "Failed the same way in 1 earlier run:" in html
    assert f'href="/jobs/{job.id}/runs/{earlier.id}/"' in html
    assert "version 1 → version 2" in html
    assert "echo &lt;b&gt;bye&lt;/b&gt;" in html and "diff-add" in html and "diff-del" in html
    assert 'data-parameter="day"' in html and "&lt;i&gt;tue&lt;/i&gt;" in html
    assert "Nothing changed" not in html


def test_a_canceled_run_card_says_who_canceled_it(user, held_broker):
    run, _ = create_run(make_job(user), creator=user)
    cancel_run(run.id, message="Canceled by <ada>")

    html = render(refreshed(run))

    assert "Why this run was canceled" in html
    assert "Canceled by &lt;ada&gt;" in html
    assert "Canceled after 1 attempt " in html
