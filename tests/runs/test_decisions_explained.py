"""Every decision is an event with its reason: starts, skips, retries, admission, ends; and a
repair can be previewed (dry run) from the same plan the repair carries out."""

from django.contrib.auth import get_user_model

from runs.admission import create_run
from runs.dispatch import finish_attempt
from runs.engine.endings import attempt_ended
from runs.engine.states import RunLifeCycleState as L, RunResultState as R
from runs.event_log import event_rows
from runs.models import Repair, Run, TaskRun
from tests.api.conftest import client_for
from tests.runs.conftest import claim_attempt, make_job, shell


def texts(run):
    return [row["text"] for row in event_rows(run)]


def finish_pending(run, result=R.SUCCESS, keys=None):
    for attempt in TaskRun.objects.filter(run=run, life_cycle_state=L.PENDING):
        if keys is None or attempt.task_key in keys:
            finish_attempt(claim_attempt(attempt.id).id, attempt_ended(result, "boom" if result == R.FAILED else ""))


def test_a_runs_events_say_why_each_task_started_skipped_and_the_run_ended(alice, broker):
    job = make_job(alice, [shell("a"), shell("b", depends_on=["a"]), shell("c", depends_on=["a"]),
                           shell("d", depends_on=["b", "c"])])
    run, _ = create_run(job, creator=alice)
    finish_pending(run)
    finish_pending(run, keys=["b"])
    finish_pending(run, R.FAILED, keys=["c"])

    said = texts(run)
    assert said[0] == "Queued: run now by alice"
    assert "Started: admitted: 0 of the job's 1 concurrent run(s) in use" in said
    assert "a is ready to start: it has no dependencies" in said
    assert "b is ready to start: its dependency succeeded (ALL_SUCCESS)" in said
    assert "c ended FAILED: boom" in said
    assert any(text.startswith("d skipped (UPSTREAM_FAILED)") for text in said)
    assert said[-1].startswith("Run ended FAILED")


def test_the_api_pages_through_a_runs_events_and_one_attempts(alice, broker, client):
    api = client_for(client, alice)
    job = make_job(alice, [shell("a"), shell("b", depends_on=["a"])])
    run, _ = create_run(job, creator=alice)
    finish_pending(run)
    finish_pending(run, R.FAILED)

    pages, token = [], None
    while True:
        page = api.get_ok("jobs/runs/events", run_id=run.id, limit=3, **({"page_token": token} if token else {}))
        pages.append(page["events"])
        if not page["has_more"]:
            assert "next_page_token" not in page
            break
        token = page["next_page_token"]
    events = [event for page in pages for event in page]
    assert len(pages) > 1 and all(len(page) <= 3 for page in pages)
    assert [event["description"] for event in events] == texts(run)
    assert [event["event_id"] for event in events] == sorted({event["event_id"] for event in events})
    assert events[0]["type"] == "run.queued" and "task_run_id" not in events[0]

    b = TaskRun.objects.get(run=run, task_key="b")
    attempt = api.get_ok("jobs/runs/events", run_id=b.id)["events"]
    assert {(event["task_run_id"], event["task_key"]) for event in attempt} == {(b.id, "b")}
    assert "b ended FAILED: boom" in [event["description"] for event in attempt]

    assert api.get("jobs/runs/events", run_id=10**9).status_code == 404
    assert api.get("jobs/runs/events", run_id=run.id, page_token="nonsense").status_code == 400
    assert api.get("jobs/runs/events", run_id=run.id, limit=0).status_code == 400


def test_a_retry_says_which_retry_it_is_and_when_it_is_due(alice, broker):
    job = make_job(alice, [{**shell("t"), "max_retries": 2, "min_retry_interval_millis": 60_000}])
    run, _ = create_run(job)
    finish_pending(run, R.FAILED)
    [retry] = [text for text in texts(run) if text.startswith("t: retry")]
    assert retry.startswith("t: retry 1 of 2, due at ") and retry.endswith(" UTC")


def test_a_queued_run_says_why_it_waits(alice, broker):
    job = make_job(alice, [shell("t")], max_concurrent_runs=1, queue={"enabled": True})
    create_run(job)
    second, _ = create_run(job)
    assert texts(second)[-1] == ("Waiting: the job already has 1 active run(s), its max_concurrent_runs: "
                                 "it starts when one ends")


def test_a_repair_dry_run_says_what_would_run_again_and_changes_nothing(alice, broker, client):
    api = client_for(client, alice)
    job = make_job(alice, [shell("a"), shell("b", depends_on=["a"]), shell("c", depends_on=["b"]), shell("x")])
    run, _ = create_run(job, creator=alice)
    finish_pending(run, keys=["a", "x"])
    finish_pending(run, R.FAILED, keys=["b"])
    assert Run.objects.get(id=run.id).result_state == R.FAILED
    events_before = len(texts(run))

    preview = api.post_ok("jobs/runs/repair", {"run_id": run.id, "rerun_all_failed_tasks": True,
                                               "rerun_dependent_tasks": True, "dry_run": True})
    assert preview == {"dry_run": True, "rerun_tasks": ["b", "c"], "rerun_iterations": {}}
    assert not Repair.objects.exists() and Run.objects.get(id=run.id).life_cycle_state == L.TERMINATED
    assert len(texts(run)) == events_before

    repaired = api.post_ok("jobs/runs/repair", {"run_id": run.id, "rerun_all_failed_tasks": True,
                                                "rerun_dependent_tasks": True})
    assert Repair.objects.get(id=repaired["repair_id"]).rerun_tasks == preview["rerun_tasks"]


def test_a_repair_dry_run_lists_the_for_each_iterations_that_would_run_again(alice, broker, client):
    from runs.control_flow import execute_control_flow

    api = client_for(client, alice)
    job = make_job(alice, [{"task_key": "each", "for_each_task": {"inputs": "[1, 2, 3]", "concurrency": 3,
                                                                  "task": shell("item")}}])
    run, _ = create_run(job)
    execute_control_flow(TaskRun.objects.get(run=run, task_key="each").id)
    iterations = {row.iteration: row for row in TaskRun.objects.filter(run=run, for_each_key="each")}
    for index, result in ((0, R.SUCCESS), (1, R.FAILED), (2, R.SUCCESS)):
        finish_attempt(claim_attempt(iterations[index].id).id, attempt_ended(result))
    assert Run.objects.get(id=run.id).result_state == R.FAILED

    preview = api.post_ok("jobs/runs/repair", {"run_id": run.id, "rerun_all_failed_tasks": True, "dry_run": True})
    assert preview == {"dry_run": True, "rerun_tasks": ["each"], "rerun_iterations": {"each": [1]}}


def test_the_run_page_shows_the_events_and_preselects_from_the_engine(alice, broker, client):
    job = make_job(alice, [shell("a"), shell("b", depends_on=["a"]), shell("c", depends_on=["b"])])
    run, _ = create_run(job, creator=alice)
    finish_pending(run)
    finish_pending(run, R.FAILED)
    client.force_login(get_user_model().objects.get(username="alice"))
    page = client.get(f"/jobs/{job.id}/runs/{run.id}/").content.decode()
    assert 'id="run-events"' in page and "a is ready to start: it has no dependencies" in page
    assert 'value="b" id="rerun-2" checked' in page and 'value="c" id="rerun-3" checked' in page
    assert 'value="a" id="rerun-1" >' in page


def test_a_schedule_says_which_slot_fired_on_which_node_and_what_downtime_skipped(alice, broker):
    from datetime import datetime, timedelta, timezone as tz

    from runs.models import TriggerDecision, TriggerState
    from runs.triggers import run_due_triggers, sync_trigger_state

    t0 = datetime(2026, 3, 1, 12, 0, 0, 500_000, tzinfo=tz.utc)
    job = make_job(alice, [shell("t")], schedule={"quartz_cron_expression": "0 * * * * ?", "timezone_id": "UTC"})
    TriggerState.objects.filter(job=job).delete()
    sync_trigger_state(job, t0)
    run_due_triggers(t0 + timedelta(seconds=60))  # 12:01 fires
    run_due_triggers(t0 + timedelta(minutes=5, seconds=10))  # down until 12:05:10: 12:02-12:04 skipped

    decisions = list(TriggerDecision.objects.filter(job=job).order_by("id").values_list("kind", "reason"))
    assert decisions[0][0] == "fired" and decisions[0][1].startswith("slot 2026-03-01 12:01:00 UTC came; fired by")
    assert decisions[1] == ("skipped", "slot 2026-03-01 12:05:00 UTC came; 3 earlier slot(s) came while no clock "
                                       "ran and are skipped: after downtime only the latest fires")
    assert decisions[2][0] == "fired"
    assert Run.objects.filter(job=job).count() == 2


def test_a_slot_whose_run_the_job_refuses_says_so(alice, broker):
    from datetime import timedelta

    from django.utils import timezone

    from runs.models import TriggerDecision, TriggerState
    from runs.triggers import run_due_triggers

    job = make_job(alice, [shell("t")], max_concurrent_runs=1, queue={"enabled": False},
                   schedule={"quartz_cron_expression": "* * * * * ?", "timezone_id": "UTC"})
    create_run(job)  # holds the only slot
    TriggerState.objects.filter(job=job).update(next_check_at=timezone.now() - timedelta(seconds=1),
                                                enabled_at=timezone.now() - timedelta(minutes=1))
    run_due_triggers(timezone.now())
    # Every slot of the minute the clock did not look comes (catching up), and each is refused.
    refused = list(TriggerDecision.objects.filter(job=job, kind="refused"))
    assert refused and not TriggerDecision.objects.filter(job=job, kind="fired").exists()
    for decision in refused:
        assert "its run was skipped: Skipped: the job already has 1 active run(s)" in decision.reason


def test_pausing_and_resuming_are_decisions_too(alice, client):
    from runs.models import TriggerDecision

    api = client_for(client, alice)
    schedule = {"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "UTC"}
    job_id = api.post_ok("jobs/create", {"name": "j", "tasks": [shell("t")], "schedule": schedule})["job_id"]
    api.post_ok("jobs/update", {"job_id": job_id, "new_settings": {"schedule": {**schedule, "pause_status": "PAUSED"}}})
    api.post_ok("jobs/update", {"job_id": job_id, "new_settings": {"schedule": {**schedule, "pause_status": "UNPAUSED"}}})
    assert list(TriggerDecision.objects.filter(job_id=job_id).order_by("id").values_list("kind", flat=True)) == [
        "paused", "resumed"]
    client.force_login(alice)
    page = client.get(f"/jobs/{job_id}/").content.decode()
    assert 'id="trigger-decisions"' in page and "resumed: it starts from now" in page
