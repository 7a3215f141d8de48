"""Issue 19's backfill "done when", on `serve` and on Postgres + Redis, through the databricks-sdk's API client
(the SDK has no backfill method): a backfill of 30 days whose task fails on 3 of them the first
time makes 27 successful and 3 failed runs; one repair-failed call makes all 30 succeed; and the
runs are ordinary runs of the job, listed with trigger BACKFILL."""

from datetime import date, datetime, timedelta, timezone

import pytest
from databricks.sdk.service import jobs

from tests.e2e.conftest import wait_until
from tests.e2e.test_core_with_the_sdk import python_task

pytestmark = pytest.mark.e2e

FIRST_DAY = date(2024, 1, 1)
DAYS = [FIRST_DAY + timedelta(days=n) for n in range(30)]
FAILING = {date(2024, 1, 5), date(2024, 1, 17), date(2024, 1, 29)}


def epoch_ms(day):
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)


def backfill_of(w, backfill_id):
    return w.api_client.do("GET", "/api/2.2/jobs/backfills/get", query={"backfill_id": backfill_id})


def finished(w, backfill_id):
    got = backfill_of(w, backfill_id)
    return got if got["state"] == "FINISHED" else None


def all_runs(w, job_id):
    """jobs/runs/list as JSON, every page: the SDK reads our trigger BACKFILL as an unknown enum (None)."""
    runs, token = [], None
    while True:
        page = w.api_client.do("GET", "/api/2.2/jobs/runs/list",
                               query={"job_id": job_id, "limit": 25, **({"page_token": token} if token else {})})
        runs += page.get("runs", [])
        token = page.get("next_page_token")
        if not token:
            return runs


def test_a_30_day_backfill_with_3_failures_is_repaired_in_one_call(server, tmp_path):
    w = server.client()
    for day in set(DAYS) - FAILING:  # the other days' input is there; the 3 failing days' appears on first try
        (tmp_path / day.isoformat()).touch()
    job = w.jobs.create(
        name="daily load", max_concurrent_runs=5, queue=jobs.QueueSettings(enabled=True),
        parameters=[jobs.JobParameterDefinition(name="day", default="2024-01-01")],
        tasks=[python_task(server, "load", "fail_until_marker.py", f"{tmp_path}/{{{{job.parameters.day}}}}", "create")])

    dry = w.api_client.do("POST", "/api/2.2/jobs/backfill", body={
        "job_id": job.job_id, "start_time": epoch_ms(DAYS[0]), "end_time": epoch_ms(DAYS[-1] + timedelta(days=1)),
        "interval": {"interval": 1, "unit": "DAYS"}, "max_concurrent_runs": 5, "dry_run": True})
    assert [run["job_parameters"]["day"] for run in dry["runs"]] == [day.isoformat() for day in DAYS]
    assert not list(w.jobs.list_runs(job_id=job.job_id))

    backfill_id = w.api_client.do("POST", "/api/2.2/jobs/backfill", body={
        "job_id": job.job_id, "start_time": epoch_ms(DAYS[0]), "end_time": epoch_ms(DAYS[-1] + timedelta(days=1)),
        "interval": {"interval": 1, "unit": "DAYS"}, "max_concurrent_runs": 5})["backfill_id"]
    done = wait_until(lambda: finished(w, backfill_id), timeout=240, what="the backfill's 30 runs to end")
    assert done["progress"] == {"total": 30, "done": 27, "running": 0, "failed": 3, "queued": 0, "not_started": 0}
    failed_days = {datetime.fromtimestamp(slot["slot_time"] / 1000, timezone.utc).date()
                   for slot in done["slots"] if slot["state"] == "failed"}
    assert failed_days == FAILING

    repaired = w.api_client.do("POST", "/api/2.2/jobs/backfills/repair-failed", body={"backfill_id": backfill_id})
    assert len(repaired["repaired_run_ids"]) == 3 and repaired["refused"] == []
    done = wait_until(lambda: (got := finished(w, backfill_id)) and got["progress"]["done"] == 30 and got,
                      timeout=120, what="the 3 repaired runs to succeed")
    assert {slot["result_state"] for slot in done["slots"]} == {"SUCCESS"}

    # Ordinary runs of the job: the SDK lists all 30, each ran once (the 3 were repaired, not re-run).
    assert len(list(w.jobs.list_runs(job_id=job.job_id))) == 30
    runs = all_runs(w, job.job_id)
    assert len(runs) == 30 and {run["trigger"] for run in runs} == {"BACKFILL"}
    assert sorted(run["job_parameters"][0]["value"] for run in runs) == [day.isoformat() for day in DAYS]
    for run_id in repaired["repaired_run_ids"]:
        run = w.jobs.get_run(run_id, include_history=True)
        assert run.state.result_state == jobs.RunResultState.SUCCESS
        assert len(run.repair_history) == 2  # the original run and one repair
