"""POST jobs/backfill and jobs/backfills/*: the dry run, creation, get and list, cancel and
repair-failed, every bad input with the field it names, and who may do what."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from jobs.models import Job
from jobs.permissions import change_acl
from backfills.models import Backfill, BackfillRun
from runs.dispatch import finish_attempt
from runs.engine.endings import attempt_ended
from runs.engine.states import RunLifeCycleState as L, RunResultState as R
from runs.models import Run, TaskRun
from tests.api.conftest import client_for, make_user
from tests.backfills.conftest import UTC, create_job, dated_job, days, ms, shell_task


def finish(run_id, result=R.SUCCESS):
    """End every pending attempt of a run as a worker would report it."""
    from tests.runs.conftest import claim_attempt

    for attempt in TaskRun.objects.filter(run_id=run_id, life_cycle_state=L.PENDING):
        finish_attempt(claim_attempt(attempt.id).id, attempt_ended(result))


def test_a_dry_run_answers_each_slots_run_and_saves_nothing(api, held_broker):
    job_id = dated_job(api)
    body = api.post_ok("jobs/backfill", days(job_id, 1, 3, order="NEWEST_FIRST",
                                             job_parameters={"who": "run for {{backfill.iso_date}}"}, dry_run=True))
    assert body == {"dry_run": True, "parameter": "day", "runs": [
        {"slot_time": ms(2024, 1, day), "job_parameters": {"day": f"2024-01-0{day}", "who": f"run for 2024-01-0{day}"}}
        for day in (3, 2, 1)]}
    assert not Backfill.objects.exists() and not Run.objects.exists()


def test_a_backfill_starts_its_first_runs_up_to_its_limit_as_ordinary_runs(api, held_broker):
    job_id = dated_job(api, max_concurrent_runs=5)
    backfill_id = api.post_ok("jobs/backfill", days(job_id, 1, 4, max_concurrent_runs=2))["backfill_id"]

    got = api.get_ok("jobs/backfills/get", backfill_id=backfill_id)
    assert got["state"] == "RUNNING" and got["parameter"] == "day" and got["creator_user_name"] == "alice"
    assert got["interval"] == {"interval": 1, "unit": "DAYS"} and got["timezone_id"] == "UTC"
    assert got["progress"] == {"total": 4, "done": 0, "running": 2, "failed": 0, "queued": 0, "not_started": 2}
    assert [slot["state"] for slot in got["slots"]] == ["running", "running", "not_started", "not_started"]

    runs = api.get_ok("jobs/runs/list", job_id=job_id)["runs"]
    assert {run["trigger"] for run in runs} == {"BACKFILL"}
    first = api.get_ok("jobs/runs/get", run_id=got["slots"][0]["run_id"])
    assert first["trigger"] == "BACKFILL"
    assert first["job_parameters"] == [{"name": "day", "default": "2024-01-01", "value": "2024-01-01"},
                                       {"name": "who", "default": "ada", "value": "ada"}]
    run = Run.objects.get(id=first["run_id"])
    assert run.trigger_time == datetime(2024, 1, 1, tzinfo=UTC) and run.trigger_slot is None
    assert run.trigger_details == {"backfill": {"id": backfill_id, "start_time": "2024-01-01T00:00:00+00:00",
                                                "slot": "2024-01-01T00:00:00+00:00"}}


def test_a_job_with_a_schedule_backfills_its_schedules_slots(api, held_broker):
    job_id = create_job(api, schedule={"quartz_cron_expression": "0 30 6 ? * MON", "timezone_id": "Europe/Berlin",
                                       "pause_status": "PAUSED"})
    body = api.post_ok("jobs/backfill", {"job_id": job_id, "start_time": ms(2024, 1, 1), "end_time": ms(2024, 1, 22),
                                         "dry_run": True})
    assert [run["slot_time"] for run in body["runs"]] == [ms(2024, 1, 1, 5, 30), ms(2024, 1, 8, 5, 30),
                                                          ms(2024, 1, 15, 5, 30)]
    assert "parameter" not in body


def test_a_schedule_among_the_jobs_triggers_gives_the_slots(api, held_broker):
    job_id = create_job(api, triggers=[
        {"periodic": {"interval": 1, "unit": "HOURS"}},
        {"schedule": {"quartz_cron_expression": "0 0 6 * * ?", "timezone_id": "UTC"}}])
    body = api.post_ok("jobs/backfill", {"job_id": job_id, "start_time": ms(2024, 1, 1), "end_time": ms(2024, 1, 3),
                                         "dry_run": True})
    assert [run["slot_time"] for run in body["runs"]] == [ms(2024, 1, 1, 6), ms(2024, 1, 2, 6)]


def test_a_job_whose_runs_are_all_skipped_is_refused(api, held_broker):
    job_id = dated_job(api, max_concurrent_runs=0)
    response = api.post("jobs/backfill", days(job_id, 1, 2))
    assert response.status_code == 400 and response.json()["message"].startswith("job_id: ")


def test_the_missing_policy_leaves_out_slots_the_schedule_or_an_earlier_backfill_ran(api, held_broker):
    job_id = dated_job(api, max_concurrent_runs=10)
    api.post_ok("jobs/backfill", days(job_id, 2, 1))  # 2024-01-02 has a run now
    job = Run.objects.filter(job_id=job_id).first().job
    Run.objects.create(job=job, job_version=job.current_version, trigger=Run.Trigger.PERIODIC,
                       trigger_slot=datetime(2024, 1, 3, tzinfo=UTC),
                       life_cycle_state=L.TERMINATED, result_state=R.FAILED)
    body = api.post_ok("jobs/backfill", days(job_id, 1, 4, reprocess_policy="MISSING", dry_run=True))
    assert [run["job_parameters"]["day"] for run in body["runs"]] == ["2024-01-01", "2024-01-04"]
    failed = api.post_ok("jobs/backfill", days(job_id, 1, 4, reprocess_policy="FAILED", dry_run=True))
    assert [run["job_parameters"]["day"] for run in failed["runs"]] == ["2024-01-03"]


def test_list_pages_through_a_jobs_backfills_newest_first(api, held_broker):
    job_id = dated_job(api, max_concurrent_runs=10)
    made = [api.post_ok("jobs/backfill", days(job_id, day, 1))["backfill_id"] for day in (1, 2, 3)]
    first = api.get_ok("jobs/backfills/list", job_id=job_id, limit=2)
    assert [b["backfill_id"] for b in first["backfills"]] == made[:0:-1] and first["has_more"]
    assert "slots" not in first["backfills"][0] and first["backfills"][0]["progress"]["total"] == 1
    rest = api.get_ok("jobs/backfills/list", job_id=job_id, limit=2, page_token=first["next_page_token"])
    assert [b["backfill_id"] for b in rest["backfills"]] == made[:1] and not rest["has_more"]


def test_cancel_cancels_its_unfinished_runs_and_starts_no_more(api, held_broker, committed):
    job_id = dated_job(api, max_concurrent_runs=1)
    backfill_id = api.post_ok("jobs/backfill", days(job_id, 1, 5, max_concurrent_runs=2))["backfill_id"]
    running, queued = (slot["run_id"] for slot in api.get_ok("jobs/backfills/get", backfill_id=backfill_id)["slots"][:2])

    canceled = api.post_ok("jobs/backfills/cancel", {"backfill_id": backfill_id})
    assert sorted(canceled["canceled_run_ids"]) == sorted([running, queued])
    finish(running, R.CANCELED)  # the worker stops the canceled task

    got = api.get_ok("jobs/backfills/get", backfill_id=backfill_id)
    assert got["state"] == "CANCELED"
    assert got["progress"] == {"total": 5, "done": 0, "running": 0, "failed": 2, "queued": 0, "not_started": 3}
    assert Run.objects.filter(job_id=job_id).count() == 2
    again = api.post("jobs/backfills/cancel", {"backfill_id": backfill_id})
    assert again.status_code == 400 and again.json()["error_code"] == "INVALID_STATE"


def test_repair_failed_repairs_every_failed_run_within_the_limit_and_the_backfill_finishes(api, held_broker, committed):
    job_id = dated_job(api, max_concurrent_runs=10)
    backfill_id = api.post_ok("jobs/backfill", days(job_id, 1, 3, max_concurrent_runs=3))["backfill_id"]
    slots = api.get_ok("jobs/backfills/get", backfill_id=backfill_id)["slots"]
    finish(slots[0]["run_id"], R.FAILED)
    finish(slots[1]["run_id"], R.SUCCESS)
    finish(slots[2]["run_id"], R.FAILED)
    got = api.get_ok("jobs/backfills/get", backfill_id=backfill_id)
    assert got["state"] == "FINISHED" and got["progress"]["failed"] == 2 and got["progress"]["done"] == 1

    answer = api.post_ok("jobs/backfills/repair-failed", {"backfill_id": backfill_id})
    assert sorted(answer["repaired_run_ids"]) == sorted([slots[0]["run_id"], slots[2]["run_id"]])
    assert answer["refused"] == []
    assert api.get_ok("jobs/backfills/get", backfill_id=backfill_id)["state"] == "RUNNING"
    for run_id in answer["repaired_run_ids"]:
        assert Run.objects.get(id=run_id).repair_count == 1
        finish(run_id, R.SUCCESS)
    got = api.get_ok("jobs/backfills/get", backfill_id=backfill_id)
    assert got["state"] == "FINISHED" and got["progress"]["done"] == 3
    nothing = api.post("jobs/backfills/repair-failed", {"backfill_id": backfill_id})
    assert nothing.status_code == 400 and "no failed run" in nothing.json()["message"]


def test_repair_failed_waits_for_free_places_when_the_backfill_is_at_its_limit(api, held_broker, committed):
    job_id = dated_job(api, max_concurrent_runs=10)
    backfill_id = api.post_ok("jobs/backfill", days(job_id, 1, 3, max_concurrent_runs=1))["backfill_id"]
    first = api.get_ok("jobs/backfills/get", backfill_id=backfill_id)["slots"][0]["run_id"]
    finish(first, R.FAILED)  # the second slot's run starts
    api.post_ok("jobs/backfills/repair-failed", {"backfill_id": backfill_id})
    assert Run.objects.get(id=first).repair_count == 0  # asked, and waiting: one place, taken
    assert api.get_ok("jobs/backfills/get", backfill_id=backfill_id)["slots"][0]["state"] == "queued"

    second = api.get_ok("jobs/backfills/get", backfill_id=backfill_id)["slots"][1]["run_id"]
    finish(second)
    assert Run.objects.get(id=first).repair_count == 1  # the repair goes before the third slot
    assert BackfillRun.objects.filter(backfill_id=backfill_id).count() == 2


NOW = timezone.now()
FUTURE = int((NOW + timedelta(days=2)).timestamp() * 1000)


@pytest.mark.parametrize("change, field", [
    ({"start_time": None}, "start_time"),
    ({"end_time": None}, "end_time"),
    ({"start_time": ms(2024, 1, 5), "end_time": ms(2024, 1, 5)}, "end_time"),
    ({"start_time": ms(2024, 1, 6), "end_time": ms(2024, 1, 5)}, "end_time"),
    ({"end_time": FUTURE}, "end_time"),
    ({"start_time": ms(2022, 1, 1), "end_time": ms(2023, 6, 1)}, "end_time"),  # longer than 366 days
    ({"interval": {"interval": 1, "unit": "HOURS"}, "start_time": ms(2024, 1, 1), "end_time": ms(2024, 3, 1)},
     "end_time"),  # 1,440 hourly slots: more than 1,000 runs
    ({"parameter": "nope"}, "parameter"),
    ({"job_parameters": {"nope": "x"}}, "job_parameters"),
    ({"job_parameters": {"who": 3}}, "job_parameters.who"),
    ({"parameter": "day", "job_parameters": {"day": "x"}}, "job_parameters"),
    ({"interval": None}, "interval"),
    ({"interval": {"interval": 1, "unit": "MINUTES"}}, "interval.unit"),
    ({"interval": {"interval": 0, "unit": "DAYS"}}, "interval.interval"),
    ({"interval": "daily"}, "interval"),
    ({"timezone_id": "Mars/Olympus"}, "timezone_id"),
    ({"reprocess_policy": "SOME"}, "reprocess_policy"),
    ({"order": "RANDOM"}, "order"),
    ({"max_concurrent_runs": 0}, "max_concurrent_runs"),
    ({"max_concurrent_runs": 1001}, "max_concurrent_runs"),
    ({"max_concurrent_runs": "many"}, "max_concurrent_runs"),
    ({"start_time": -1}, "start_time"),
])
def test_bad_input_is_a_400_that_names_the_field_and_makes_nothing(api, held_broker, change, field):
    job_id = dated_job(api)
    body = {key: value for key, value in {**days(job_id, 1, 3), **change}.items() if value is not None}
    response = api.post("jobs/backfill", body)
    assert response.status_code == 400, response.content
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert field in response.json()["message"]
    assert not Backfill.objects.exists() and not Run.objects.exists()


def test_a_range_whose_slots_all_ran_under_missing_is_refused_as_nothing_to_do(api, held_broker):
    job_id = dated_job(api, max_concurrent_runs=10)
    api.post_ok("jobs/backfill", days(job_id, 1, 2))
    response = api.post("jobs/backfill", days(job_id, 1, 2, reprocess_policy="MISSING"))
    assert response.status_code == 400 and "reprocess_policy" in response.json()["message"]


def test_an_unknown_job_or_backfill_is_a_404(api):
    assert api.post("jobs/backfill", days(987, 1, 2)).status_code == 404
    assert api.get("jobs/backfills/get", backfill_id=987).status_code == 404
    assert api.post("jobs/backfills/cancel", {"backfill_id": 987}).status_code == 404


def test_backfilling_needs_can_manage_run_and_reading_one_can_view(api, alice, client, held_broker):
    job_id = dated_job(api, max_concurrent_runs=10)
    backfill_id = api.post_ok("jobs/backfill", days(job_id, 1, 2))["backfill_id"]
    viewer = make_user("viewer")
    change_acl(Job.objects.get(id=job_id), [{"user_name": "viewer", "permission_level": "CAN_VIEW"}],
               user=alice, replace=False)
    viewer_api = client_for(client, viewer)
    stranger_api = client_for(client, make_user("stranger"))

    for caller in (viewer_api, stranger_api):
        for endpoint, body in [("jobs/backfill", days(job_id, 3, 1)), ("jobs/backfill", days(job_id, 3, 1, dry_run=True)),
                               ("jobs/backfills/cancel", {"backfill_id": backfill_id}),
                               ("jobs/backfills/repair-failed", {"backfill_id": backfill_id})]:
            response = caller.post(endpoint, body)
            assert response.status_code == 403 and response.json()["error_code"] == "PERMISSION_DENIED", endpoint
    assert viewer_api.get_ok("jobs/backfills/get", backfill_id=backfill_id)["backfill_id"] == backfill_id
    assert [b["backfill_id"] for b in viewer_api.get_ok("jobs/backfills/list")["backfills"]] == [backfill_id]
    assert stranger_api.get("jobs/backfills/get", backfill_id=backfill_id).status_code == 403
    assert stranger_api.get_ok("jobs/backfills/list")["backfills"] == []
    assert Backfill.objects.count() == 1


def test_the_backfill_calls_are_in_the_audit_log(api, held_broker):
    job_id = dated_job(api, max_concurrent_runs=10)
    backfill_id = api.post_ok("jobs/backfill", days(job_id, 1, 2))["backfill_id"]
    api.post_ok("jobs/backfills/cancel", {"backfill_id": backfill_id})
    rows = list(AuditEvent.objects.filter(path__contains="backfill").order_by("id"))
    assert [(row.action_name, row.job_id, row.target, row.status_code) for row in rows] == [
        ("createBackfill", job_id, f"job {job_id}", 200), ("cancelBackfill", job_id, f"backfill {backfill_id}", 200)]
    assert rows[1].request_params == {"backfill_id": backfill_id}


def test_the_2_1_paths_answer_too(api, held_broker):
    job_id = dated_job(api)
    body = api.as_version("2.1").post_ok("jobs/backfill", days(job_id, 1, 2, dry_run=True))
    assert len(body["runs"]) == 2


def test_the_shell_task_sees_the_slot_in_its_references_and_parameter(api, committed):
    job_id = create_job(api, tasks=[shell_task(
        "t", 'echo "backfill={{backfill.iso_date}} trigger={{job.trigger.time.iso_date}} day={{job.parameters.day}}"')],
        parameters=[{"name": "day", "default": "{{job.trigger.time.iso_date}}"}])
    # Synchronous broker: each run runs as its transaction commits, and its end starts the next slot.
    backfill_id = api.post_ok("jobs/backfill", days(job_id, 30, 2))["backfill_id"]
    got = api.get_ok("jobs/backfills/get", backfill_id=backfill_id)
    assert got["state"] == "FINISHED" and got["progress"]["done"] == 2
    for slot, day in zip(got["slots"], ("2024-01-30", "2024-01-31")):
        run = api.get_ok("jobs/runs/get", run_id=slot["run_id"])
        logs = api.get_ok("jobs/runs/get-output", run_id=run["tasks"][0]["run_id"])["logs"]
        assert f"backfill={day} trigger={day} day={day}" in logs
