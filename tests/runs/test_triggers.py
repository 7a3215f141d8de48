"""The clock's trigger step with an injected now: schedules, periodic, file arrival, table
updates and continuous jobs against the real database (attempts go to a recording broker)."""

import os
import uuid
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.utils import timezone

from runs.admission import create_run
from runs.dispatch import cancel_run, finish_attempt
from runs.engine.endings import attempt_ended
from runs.engine.states import RunResultState as R
from runs.models import Run, TaskRun, TriggerDecision, TriggerState
from runs.triggers import record_table_writes, run_due_triggers, sync_trigger_state
from runs.watch import fingerprints
from tests.runs.conftest import claim_attempt, make_job, shell

T0 = datetime(2026, 3, 1, 12, 0, 0, 500_000, tzinfo=dt_timezone.utc)


def seconds(n):
    return timedelta(seconds=n)


def job_with(alice, now, **settings):
    """A saved job whose trigger state is as if it was saved at `now`."""
    job = make_job(alice, [shell("a")], **settings)
    TriggerState.objects.filter(job=job).delete()
    sync_trigger_state(job, now)
    return job


def runs_of(job):
    return list(Run.objects.filter(job=job).order_by("id"))


def every_two_seconds(**fields):
    return {"schedule": {"quartz_cron_expression": "0/2 * * * * ?", "timezone_id": "UTC", **fields}}


# --- schedules -------------------------------------------------------------------------------


def test_a_schedule_fires_each_slot_once_with_its_trigger_time(alice, broker):
    job = job_with(alice, T0, **every_two_seconds())
    first_slot = T0.replace(microsecond=0) + seconds(2)
    assert TriggerState.objects.get(job=job).next_check_at == first_slot

    assert run_due_triggers(T0 + seconds(1)) == 0  # not yet
    assert run_due_triggers(first_slot + seconds(0.1)) == 1
    assert run_due_triggers(first_slot + seconds(0.3)) == 0  # the same slot again: nothing
    assert run_due_triggers(first_slot + seconds(2.1)) == 1

    runs = runs_of(job)
    assert [r.trigger for r in runs] == ["PERIODIC", "PERIODIC"]
    assert [r.trigger_time for r in runs] == [first_slot, first_slot + seconds(2)]


def test_many_schedules_due_at_once_each_start_one_run(alice, broker):
    jobs = [job_with(alice, T0, **every_two_seconds()) for _ in range(12)]
    slot = T0.replace(microsecond=0) + seconds(2)

    assert run_due_triggers(slot + seconds(0.1)) == 12
    assert run_due_triggers(slot + seconds(0.2)) == 0

    for job in jobs:
        assert [r.trigger_time for r in runs_of(job)] == [slot]
        assert TriggerState.objects.get(job=job).last_run_id == runs_of(job)[0].id
    assert len(broker.take()) == 12


def test_two_clocks_firing_one_slot_make_one_run(alice, broker):
    job = job_with(alice, T0, **every_two_seconds())
    slot = T0.replace(microsecond=0) + seconds(2)
    assert run_due_triggers(slot) == 1
    # A second clock that read the state before the first one moved it fires the same slot:
    # the unique constraint on (job, trigger_slot) hands it the existing run.
    TriggerState.objects.filter(job=job).update(next_check_at=slot, last_slot=None)
    assert run_due_triggers(slot + seconds(0.5)) == 0
    assert len(runs_of(job)) == 1
    again, created = create_run(job, trigger=Run.Trigger.PERIODIC, trigger_slot=slot, trigger_time=slot)
    assert not created and again == runs_of(job)[0]


def test_after_downtime_only_the_latest_missed_slot_fires(alice, broker):
    job = job_with(alice, T0, **every_two_seconds())
    back = T0 + timedelta(hours=1, seconds=1)
    assert run_due_triggers(back) == 1
    (run,) = runs_of(job)
    assert run.trigger_time == T0.replace(microsecond=0) + timedelta(hours=1)
    state = TriggerState.objects.get(job=job)
    assert state.next_check_at == run.trigger_time + seconds(2)


def test_slots_missed_while_the_clock_was_away_briefly_fire_late_in_order(alice, broker, settings):
    settings.LAKEFLOW_SCHEDULE_CATCH_UP_SECONDS = 30
    job = job_with(alice, T0, **every_two_seconds())
    first = T0.replace(microsecond=0) + seconds(2)
    assert run_due_triggers(first) == 1
    back = first + seconds(20.3)  # the lease moved: ten slots came while no clock ran, the oldest 20 s ago
    fired = [run_due_triggers(back + seconds(0.01 * i)) for i in range(11)]

    assert sum(fired) == 10 and fired[-1] == 0  # in one pass or several (each pass has a time budget)
    assert [run.trigger_slot for run in runs_of(job)] == [first + seconds(2 * i) for i in range(11)]
    state = TriggerState.objects.get(job=job)
    assert (state.last_slot, state.next_check_at) == (first + seconds(20), first + seconds(22))
    reasons = list(TriggerDecision.objects.filter(job=job).order_by("id").values_list("kind", "reason"))
    assert [kind for kind, _ in reasons] == ["fired"] * 11
    assert "fired late, to catch up" in reasons[1][1] and "catch up" not in reasons[0][1]


def test_a_clock_away_longer_than_the_catch_up_window_fires_only_the_latest(alice, broker, settings):
    settings.LAKEFLOW_SCHEDULE_CATCH_UP_SECONDS = 30
    job = job_with(alice, T0, **every_two_seconds())
    first = T0.replace(microsecond=0) + seconds(2)
    assert run_due_triggers(first) == 1
    assert run_due_triggers(first + seconds(32.3)) == 1  # the oldest missed slot came 30.3 s ago
    assert run_due_triggers(first + seconds(32.4)) == 0

    assert [run.trigger_slot for run in runs_of(job)] == [first, first + seconds(32)]
    assert TriggerDecision.objects.filter(job=job, kind="skipped").count() == 1


def test_pausing_stops_a_schedule_and_resuming_does_not_fire_what_was_missed(alice, broker):
    job = job_with(alice, T0, **every_two_seconds())
    job.save_version({**job.settings, **every_two_seconds(pause_status="PAUSED")}, alice)
    assert TriggerState.objects.get(job=job).paused
    assert run_due_triggers(T0 + seconds(60)) == 0

    later = T0 + seconds(600)
    job.save_version({**job.settings, **every_two_seconds(pause_status="UNPAUSED")}, alice)
    TriggerState.objects.filter(job=job).update(enabled_at=later)  # as if resumed at `later`
    sync_trigger_state(job, later)
    state = TriggerState.objects.get(job=job)
    state.next_check_at = later.replace(microsecond=0) + seconds(2)
    state.save()
    assert run_due_triggers(later + seconds(2.1)) == 1
    assert runs_of(job)[0].trigger_time > later


def test_a_changed_schedule_starts_over_and_removing_it_removes_the_state(alice, broker):
    job = job_with(alice, T0, **every_two_seconds())
    job.save_version({**job.settings, "schedule": {"quartz_cron_expression": "0 0 6 * * ?",
                                                   "timezone_id": "Europe/Berlin"}}, alice)
    state = TriggerState.objects.get(job=job)
    assert state.config["timezone_id"] == "Europe/Berlin"
    settings = dict(job.settings)
    del settings["schedule"]
    job.save_version(settings, alice)
    assert not TriggerState.objects.filter(job=job).exists()


def test_a_periodic_trigger_fires_every_interval_from_when_it_was_enabled(alice, broker):
    job = job_with(alice, T0, trigger={"periodic": {"interval": 1, "unit": "MINUTES"}})
    assert run_due_triggers(T0 + seconds(59)) == 0
    assert run_due_triggers(T0 + seconds(60)) == 1
    assert run_due_triggers(T0 + seconds(121)) == 1
    assert [r.trigger_time for r in runs_of(job)] == [T0 + seconds(60), T0 + seconds(120)]


# --- file arrival ----------------------------------------------------------------------------


def test_a_new_file_starts_a_run_with_the_location_and_old_files_do_not(alice, broker, tmp_path):
    watched = tmp_path / "landing"
    (watched / "old").mkdir(parents=True)
    (watched / "old" / "existing.csv").write_text("x")
    job = job_with(alice, T0, trigger={"file_arrival": {"url": f"file://{watched}"}})

    assert run_due_triggers(T0) == 0  # the first look only notes what is there
    (watched / "old" / "new.csv").write_text("y")
    assert run_due_triggers(T0 + seconds(3)) == 1
    assert run_due_triggers(T0 + seconds(6)) == 0  # nothing new since
    (run,) = runs_of(job)
    assert run.trigger == "FILE_ARRIVAL"
    assert run.trigger_details == {"file_arrival": {"location": f"file://{watched}"}}
    assert TriggerState.objects.get(job=job).snapshot == fingerprints(["old/existing.csv", "old/new.csv"])


def test_a_volume_watched_before_anything_wrote_to_it_fires_on_its_first_file(alice, broker, settings):
    volume = f"/Volumes/main/raw/landing_{uuid.uuid4().hex[:8]}"
    job = job_with(alice, T0, trigger={"file_arrival": {"url": volume}})

    assert run_due_triggers(T0) == 0  # not there yet: empty, not an error
    assert TriggerState.objects.get(job=job).last_error == ""
    local = settings.LAKEFLOW_FS_ROOTS.local_path(volume)
    assert local.startswith(settings.LAKEFLOW_FS_ROOTS.volumes + "/")
    os.makedirs(local)
    open(os.path.join(local, "a.csv"), "w").close()
    assert run_due_triggers(T0 + seconds(3)) == 1
    (run,) = runs_of(job)
    assert run.trigger_details == {"file_arrival": {"location": volume}}


def test_a_directory_that_disappears_is_shown_on_the_trigger_and_others_go_on(alice, broker, tmp_path):
    watched = tmp_path / "landing"
    watched.mkdir()
    watcher = job_with(alice, T0, trigger={"file_arrival": {"url": str(watched)}})
    scheduled = job_with(alice, T0, **every_two_seconds())
    run_due_triggers(T0)
    watched.rmdir()
    run_due_triggers(T0 + seconds(2.6))
    assert "does not exist" in TriggerState.objects.get(job=watcher).last_error
    assert len(runs_of(scheduled)) == 1


def test_wait_after_last_change_batches_files_that_keep_arriving(alice, broker, tmp_path):
    watched = tmp_path / "landing"
    watched.mkdir()
    job = job_with(alice, T0, trigger={"file_arrival": {"url": str(watched), "wait_after_last_change_seconds": 60}})
    run_due_triggers(T0)
    for i, at in enumerate((10, 40, 70)):
        (watched / f"part-{i}").write_text("x")
        assert run_due_triggers(T0 + seconds(at)) == 0
    assert run_due_triggers(T0 + seconds(125)) == 0  # 55 s after the last new file
    assert run_due_triggers(T0 + seconds(131)) == 1
    assert len(runs_of(job)) == 1


# --- table updates ---------------------------------------------------------------------------


def test_a_table_written_by_a_sql_task_fires_the_job_watching_it(alice, broker):
    job = job_with(alice, T0, trigger={"table_update": {"table_names": ["default.main.orders"]}})
    assert run_due_triggers(T0) == 0
    record_table_writes(None, ["default.main.customers"], T0 + seconds(1))
    assert run_due_triggers(T0 + seconds(1)) == 0  # not a watched table
    record_table_writes(None, ["default.main.orders"], T0 + seconds(2))
    assert run_due_triggers(T0 + seconds(2)) == 1
    (run,) = runs_of(job)
    assert run.trigger == "TABLE"
    details = run.trigger_details["table_update"]
    assert details["updated_tables"] == ["default.main.orders"]
    assert details["tables"]["default.main.orders"]["commit_timestamp"] == (T0 + seconds(2)).isoformat()


def test_all_updated_waits_until_every_table_was_written(alice, broker):
    job = job_with(alice, T0, trigger={"table_update": {"table_names": ["w.s.a", "w.s.b"],
                                                        "condition": "ALL_UPDATED"}})
    run_due_triggers(T0)
    record_table_writes(None, ["w.s.a"], T0 + seconds(1))
    assert run_due_triggers(T0 + seconds(1)) == 0
    record_table_writes(None, ["w.s.b"], T0 + seconds(5))
    assert run_due_triggers(T0 + seconds(5)) == 1
    assert runs_of(job)[0].trigger_details["table_update"]["updated_tables"] == ["w.s.a", "w.s.b"]


# --- continuous ------------------------------------------------------------------------------


def finish_run_with(run, result):
    for attempt_id in TaskRun.objects.filter(run=run).values_list("id", flat=True):
        claim_attempt(attempt_id)
        finish_attempt(attempt_id, attempt_ended(result))


def test_a_continuous_job_keeps_exactly_one_run_going_and_backs_off_after_failures(alice, broker, settings):
    settings.LAKEFLOW_CONTINUOUS_BACKOFF_SECONDS = 10
    job = job_with(alice, T0, continuous={"pause_status": "UNPAUSED"})
    assert run_due_triggers(T0) == 1
    assert run_due_triggers(T0 + seconds(6)) == 0  # one is active
    (first,) = runs_of(job)
    assert first.trigger == "CONTINUOUS"

    finish_run_with(first, R.FAILED)
    state = TriggerState.objects.get(job=job)
    assert state.failures == 1
    backoff = state.next_check_at - timezone.now()
    assert seconds(8) < backoff <= seconds(10)
    assert run_due_triggers(timezone.now()) == 0  # still backing off
    assert run_due_triggers(state.next_check_at) == 1
    second = runs_of(job)[-1]
    assert second.trigger == "CONTINUOUS"

    finish_run_with(second, R.FAILED)
    state.refresh_from_db()
    assert state.failures == 2 and state.next_check_at - timezone.now() > seconds(18)


def test_a_successful_continuous_run_is_followed_at_once_and_pausing_stops_new_runs(alice, broker):
    job = job_with(alice, T0, continuous={"pause_status": "UNPAUSED"})
    run_due_triggers(T0)
    finish_run_with(runs_of(job)[0], R.SUCCESS)
    assert run_due_triggers(timezone.now() + seconds(0.1)) == 1

    job.save_version({**job.settings, "continuous": {"pause_status": "PAUSED"}}, alice)
    cancel_run(runs_of(job)[-1].id)
    assert run_due_triggers(timezone.now() + seconds(60)) == 0
    assert len(runs_of(job)) == 2


@pytest.mark.parametrize("url", ["/Volumes/main/raw/never_written", "dbfs:/landing/new"])
def test_a_volume_or_dbfs_directory_that_does_not_exist_yet_is_accepted_at_save(client, alice, url):
    from jobs.models import ApiToken
    from tests.api.conftest import ApiClient

    api = ApiClient(client, ApiToken.issue(alice, "t")[1])
    response = api.post("jobs/create", {"name": "x", "tasks": [shell("a")], "trigger": {"file_arrival": {"url": url}}})
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize("settings, path, message", [
    ({"schedule": {"quartz_cron_expression": "0 0 6 * *", "timezone_id": "UTC"}},
     "schedule.quartz_cron_expression", ""),
    ({"schedule": {"quartz_cron_expression": "0 0 6 * * ?", "timezone_id": "Mars/Base"}},
     "schedule.timezone_id", "unknown time zone 'Mars/Base'"),
    ({"trigger": {"file_arrival": {"url": "/no/such/dir"}}}, "trigger.file_arrival.url",
     "directory /no/such/dir does not exist"),
    ({"trigger": {"file_arrival": {"url": "/Volumes/main/../../../etc"}}}, "trigger.file_arrival.url",
     "/Volumes/main/../../../etc leads outside its root"),
])
def test_bad_triggers_are_refused_at_save_with_the_field(client, alice, settings, path, message):
    from jobs.models import ApiToken
    from tests.api.conftest import ApiClient

    api = ApiClient(client, ApiToken.issue(alice, "t")[1])
    response = api.post("jobs/create", {"name": "x", "tasks": [shell("a")], **settings})
    assert response.status_code == 400
    assert path in response.json()["message"] and message in response.json()["message"]


def test_a_clock_that_read_a_catching_up_trigger_before_another_fired_from_it_fires_nothing(alice, broker, settings,
                                                                                             monkeypatch):
    import runs.triggers
    from runs.triggers import fire_schedules

    settings.LAKEFLOW_SCHEDULE_CATCH_UP_SECONDS = 30
    monkeypatch.setattr(runs.triggers, "CATCH_UP_ROUNDS", 1)  # one slot a pass
    job = job_with(alice, T0, **every_two_seconds())
    first = T0.replace(microsecond=0) + seconds(2)
    assert run_due_triggers(first) == 1
    back = first + seconds(8.3)
    assert run_due_triggers(back) == 1  # first + 2 s, late
    stale = TriggerState.objects.select_related("job", "job__creator").get(job=job)
    assert run_due_triggers(back) == 1  # first + 4 s: the next check stays the latest slot, the last slot moves

    # The stale read's next check is still the trigger's: only its last slot tells it is stale.
    assert stale.next_check_at == TriggerState.objects.get(job=job).next_check_at
    assert fire_schedules([stale], back) == (0, [])  # its compare-and-swap lost: nothing to fire one by one
    assert [run.trigger_slot for run in runs_of(job)] == [first, first + seconds(2), first + seconds(4)]


def test_a_trigger_with_a_sql_condition_does_not_catch_up(alice, broker, settings):
    from runs.triggers import schedule_decision

    settings.LAKEFLOW_SCHEDULE_CATCH_UP_SECONDS = 30
    job = job_with(alice, T0, **every_two_seconds())
    state = TriggerState.objects.get(job=job)
    first = T0.replace(microsecond=0) + seconds(2)
    state.last_slot = first
    back = first + seconds(8.3)
    assert schedule_decision(state, back).fire == first + seconds(2)  # catches up
    # It evaluates one firing at a time and skips the slots that come meanwhile: the latest fires.
    state.config = {**state.config, "sql_condition": {"warehouse_id": "w", "condition": "SELECT 1"}}
    decision = schedule_decision(state, back)
    assert (decision.fire, decision.missed) == (first + seconds(8), 3)
