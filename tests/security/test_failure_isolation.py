"""One broken run or trigger never stops the others: settings stored before today's bounds (a
retry interval of 2**62 ms, a timeout of 2**63 s) make date arithmetic raise; that run alone
ends INTERNAL_ERROR saying why, and the clock, the reaper and admission go on with the rest."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job
from runs.models import TriggerState
from jobs.spec.settings import validate_job_settings
from runs.admission import admit_queued_runs, create_run
from runs.clock import reap_lost_attempts
from runs.engine.states import RunLifeCycleState as L, RunResultState as R
from runs.models import Run, TaskRun
from runs.triggers import run_due_triggers
from tests.runs.conftest import alice, make_job, shell  # noqa: F401 (a fixture)

HUGE_INTERVAL = 4611686018427387904  # ms: far past the year 9999


def job_with_stored_settings(user, tasks, **fields):
    """A job whose settings were stored without today's checks, as an older server let them in."""
    settings = validate_job_settings({"name": "legacy", "tasks": [shell(t["task_key"]) for t in tasks]})
    settings.update(fields, tasks=[{**plain, **task} for plain, task in zip(settings["tasks"], tasks)])
    job = Job(creator=user)
    job.save_version(settings, user)
    return job


def broken_retry_task(key="t", command="false"):
    return {**shell(key, command), "max_retries": 1, "min_retry_interval_millis": HUGE_INTERVAL}


def test_a_run_whose_retry_cannot_be_scheduled_ends_internal_error_saying_why(alice):
    job = job_with_stored_settings(alice, [broken_retry_task()])

    run, _ = create_run(job)  # the broker's sync twin runs the failing attempt inline
    run.refresh_from_db()

    assert (run.life_cycle_state, run.result_state, run.termination_code) == (L.INTERNAL_ERROR, R.FAILED, "INTERNAL_ERROR")
    assert "out of range" in run.state_message
    assert not TaskRun.objects.filter(run=run).exclude(life_cycle_state__in=[L.INTERNAL_ERROR, L.TERMINATED]).exists()
    good, _ = create_run(make_job(alice, [shell("ok", "true")]))
    good.refresh_from_db()
    assert good.result_state == R.SUCCESS


def running_attempt(run, heartbeat_at):
    TaskRun.objects.filter(run=run).update(life_cycle_state=L.RUNNING, started_at=heartbeat_at,
                                           heartbeat_at=heartbeat_at, worker_host="gone-host")
    return TaskRun.objects.get(run=run)


def test_the_reaper_reaps_every_other_lost_attempt_when_one_run_cannot_go_on(alice, held_broker):
    broken = job_with_stored_settings(alice, [broken_retry_task()])
    fine = make_job(alice, [shell("t")])
    long_ago = timezone.now() - timedelta(minutes=5)
    broken_run, _ = create_run(broken)
    fine_run, _ = create_run(fine)
    broken_attempt = running_attempt(broken_run, long_ago)
    fine_attempt = running_attempt(fine_run, long_ago)

    reap_lost_attempts(timezone.now())

    fine_attempt.refresh_from_db()
    assert (fine_attempt.life_cycle_state, fine_attempt.result_state) == (L.INTERNAL_ERROR, R.FAILED)
    assert Run.objects.get(id=fine_run.id).result_state == R.FAILED
    broken_run.refresh_from_db()
    assert broken_run.life_cycle_state == L.INTERNAL_ERROR
    assert f"Task run {broken_attempt.id} was lost" in broken_run.state_message
    assert "out of range" in broken_run.state_message
    assert TaskRun.objects.get(id=broken_attempt.id).life_cycle_state == L.INTERNAL_ERROR


def test_a_queued_run_that_cannot_start_ends_alone_and_the_next_one_starts(alice, held_broker):
    job = job_with_stored_settings(alice, [shell("t")], max_concurrent_runs=1)
    holder, _ = create_run(job)
    broken_version = job.save_version({**job.settings, "timeout_seconds": 2**63}, alice)
    blocked, _ = create_run(job, version=broken_version)
    job.save_version({**job.settings, "timeout_seconds": 0}, alice)
    waiting, _ = create_run(job)
    assert Run.objects.get(id=blocked.id).life_cycle_state == L.QUEUED
    Run.objects.filter(id=holder.id).update(life_cycle_state=L.TERMINATED, result_state=R.SUCCESS)

    assert admit_queued_runs(job.id) == [waiting.id]

    blocked.refresh_from_db()
    assert blocked.life_cycle_state == L.INTERNAL_ERROR
    assert blocked.state_message.startswith("The run could not start: OverflowError")
    assert Run.objects.get(id=waiting.id).life_cycle_state == L.RUNNING


def test_run_now_of_a_job_stored_with_an_impossible_timeout_answers_with_a_run_that_says_why(alice, held_broker):
    job = job_with_stored_settings(alice, [shell("t")], timeout_seconds=2**63)
    run, created = create_run(job)
    run.refresh_from_db()
    assert created and run.life_cycle_state == L.INTERNAL_ERROR
    assert "could not start" in run.state_message


def test_a_trigger_whose_check_raises_says_so_and_the_other_triggers_fire(alice, held_broker):
    now = timezone.now()
    due = now - timedelta(seconds=1)
    fine = make_job(alice, [shell("t")], schedule={"quartz_cron_expression": "* * * * * ?", "timezone_id": "UTC"})
    broken = make_job(alice, [shell("t")], schedule={"quartz_cron_expression": "* * * * * ?", "timezone_id": "UTC"})
    TriggerState.objects.filter(job=broken).update(config={"quartz_cron_expression": "not cron"}, next_check_at=due)
    TriggerState.objects.filter(job=fine).update(next_check_at=due, enabled_at=due - timedelta(minutes=1))

    assert run_due_triggers(now) == 1

    assert Run.objects.filter(job=fine, trigger="PERIODIC").count() == 1
    state = TriggerState.objects.get(job=broken)
    assert state.last_error.startswith("The clock could not check this trigger:")
    assert state.next_check_at > now
    assert not Run.objects.filter(job=broken).exists()


@pytest.mark.parametrize("fields, path", [
    ({"timeout_seconds": 2**63}, "timeout_seconds"),
    ({"tasks": [{**shell("t"), "max_retries": 1180591620717411303424}]}, "tasks[0].max_retries"),
    ({"tasks": [{**shell("t"), "min_retry_interval_millis": HUGE_INTERVAL}]}, "tasks[0].min_retry_interval_millis"),
    ({"tasks": [{**shell("t"), "timeout_seconds": 9223372036854775808}]}, "tasks[0].timeout_seconds"),
    ({"trigger": {"periodic": {"interval": 2**31 - 1, "unit": "WEEKS"}}}, "trigger.periodic.interval"),
    ({"tasks": [{"task_key": "t", "run_job_task": {"job_id": 2**70}}]}, "tasks[0].run_job_task.job_id"),
])
def test_integers_past_databricks_ranges_are_refused_at_save(fields, path):
    from jobs.spec.settings import SettingsInvalid

    with pytest.raises(SettingsInvalid) as refused:
        validate_job_settings({"name": "j", "tasks": [shell("t")], **fields})
    assert [p.path for p in refused.value.problems] == [path]
    assert "must be between" in refused.value.problems[0].message


def test_a_failure_to_record_a_failure_does_not_stop_the_loop(db):
    from runs.isolation import each_isolated

    handled = []

    def handle(item):
        if item == "broken":
            raise ValueError("bad item")
        handled.append(item)
        return 1

    def on_failure(item, why):
        raise RuntimeError("and the reason cannot be written either")

    assert each_isolated(["broken", "fine"], handle, on_failure) == 1
    assert handled == ["fine"]


def test_the_continuous_backoff_stays_a_number_after_thousands_of_failures(settings):
    from runs.triggers import continuous_backoff

    assert continuous_backoff(5000).total_seconds() == settings.LAKEFLOW_CONTINUOUS_BACKOFF_MAX_SECONDS
