"""Health rules (notifications/health.py): the clock's watch over RUN_DURATION_SECONDS, driven
with an injected now, and STREAMING_BACKLOG_* figures a task reports as task values when it ends."""

from datetime import timedelta

import pytest
from django.core import mail

from notifications import health
from notifications.delivery import deliver_due
from notifications.health import watch_run_durations
from notifications.models import HealthWarning, Notification
from runs.admission import create_run
from runs.control_flow import execute_control_flow
from runs.dispatch import finish_attempt
from runs.engine.endings import attempt_ended
from runs.engine.states import RunLifeCycleState as L, RunResultState as R
from runs.models import Reaction, Run, TaskRun
from runs.repair import repair_run
from tests.runs.conftest import claim_attempt, make_job, shell

OPS = ["ops@example.com"]
DURATION_ALERT = "on_duration_warning_threshold_exceeded"
BACKLOG_ALERT = "on_streaming_backlog_exceeded"


def rule(value, metric="RUN_DURATION_SECONDS"):
    return {"rules": [{"metric": metric, "op": "GREATER_THAN", "value": value}]}


def alerts(*events):
    return {"email_notifications": {event: OPS for event in events}}


def running(job):
    """A run of the job with its one task claimed by a worker; (run, attempt) as stored."""
    run, _ = create_run(job)
    attempt = claim_attempt(TaskRun.objects.get(run=run, life_cycle_state=L.PENDING).id)
    return Run.objects.get(id=run.id), TaskRun.objects.get(id=attempt.id)


def warnings(run):
    return sorted(HealthWarning.objects.filter(run=run).values_list("task_key", "metric", "occasion"))


def notified(run, event):
    return sorted(Notification.objects.filter(run=run, event=event).values_list("task_key", "cause"))


def test_a_job_duration_rule_warns_once_after_its_threshold_and_not_before(alice, broker):
    job = make_job(alice, [shell("t")], health=rule(60), **alerts(DURATION_ALERT))
    run, _ = running(job)

    watch_run_durations(run.started_at + timedelta(seconds=59))
    assert warnings(run) == []
    watch_run_durations(run.started_at + timedelta(seconds=61))
    watch_run_durations(run.started_at + timedelta(seconds=600))
    assert warnings(run) == [("", "RUN_DURATION_SECONDS", "run")]

    event = run.events.get(type="run.health_warning")
    assert event.data["threshold"] == 60 and event.data["observed"] == 61
    assert "longer than its health rule's RUN_DURATION_SECONDS > 60" in event.data["reason"]
    assert notified(run, DURATION_ALERT) == [("", f"job:{DURATION_ALERT}:run")]
    assert deliver_due(run.started_at + timedelta(seconds=61)) == ["SENT"]  # due when it happened
    assert mail.outbox[0].subject == f"[Lakeflow] Run {run.id} of job job is running longer than expected"


def test_a_task_duration_rule_warns_once_for_that_task_and_not_before(alice, broker):
    job = make_job(alice, [shell("slow", health=rule(30), **alerts(DURATION_ALERT))])
    run, attempt = running(job)

    watch_run_durations(attempt.started_at + timedelta(seconds=30))  # the rule is "greater than"
    assert warnings(run) == []
    watch_run_durations(attempt.started_at + timedelta(seconds=31))
    watch_run_durations(attempt.started_at + timedelta(seconds=90))
    assert warnings(run) == [("slow", "RUN_DURATION_SECONDS", f"attempt-{attempt.id}")]
    assert notified(run, DURATION_ALERT) == [("slow", f"task:slow:{DURATION_ALERT}:attempt-{attempt.id}")]


def test_two_clock_passes_at_the_same_instant_make_one_warning(alice, broker, monkeypatch):
    job = make_job(alice, [shell("t", health=rule(30))], health=rule(60), **alerts(DURATION_ALERT))
    run, attempt = running(job)
    now = max(run.started_at, attempt.started_at) + timedelta(seconds=61)

    assert watch_run_durations(now) == 2
    # Another node's clock process: none of this one's memory, only the database's unique key.
    monkeypatch.setattr(health, "_warned", set())
    assert watch_run_durations(now) == 0
    assert len(warnings(run)) == 2
    assert run.events.filter(type="run.health_warning").count() == 2
    assert len(notified(run, DURATION_ALERT)) == 1  # the task sets no recipients of its own


def test_a_repair_warns_again_once_timed_from_the_repair(alice, broker):
    job = make_job(alice, [shell("t")], health=rule(60), **alerts(DURATION_ALERT))
    run, attempt = running(job)
    watch_run_durations(run.started_at + timedelta(seconds=61))
    finish_attempt(attempt.id, attempt_ended(R.FAILED), now=run.started_at + timedelta(seconds=62))

    repaired_at = run.started_at + timedelta(seconds=120)
    repair = repair_run(run.id, rerun_all_failed_tasks=True, now=repaired_at)
    claim_attempt(TaskRun.objects.get(run=run, life_cycle_state=L.PENDING).id)
    # The run is 179 s old, but its repair only 59 s: nothing yet.
    watch_run_durations(repaired_at + timedelta(seconds=59))
    assert warnings(run) == [("", "RUN_DURATION_SECONDS", "run")]
    watch_run_durations(repaired_at + timedelta(seconds=61))
    watch_run_durations(repaired_at + timedelta(seconds=61))
    assert warnings(run) == [("", "RUN_DURATION_SECONDS", "repair-" + str(repair.id)),
                             ("", "RUN_DURATION_SECONDS", "run")]
    assert notified(run, DURATION_ALERT) == [("", f"job:{DURATION_ALERT}:repair-{repair.id}"),
                                             ("", f"job:{DURATION_ALERT}:run")]


def test_a_task_rule_warns_once_over_its_retries_and_again_when_a_repair_reruns_it(alice, broker):
    job = make_job(alice, [shell("t", max_retries=1, health=rule(30))])
    run, first = running(job)
    watch_run_durations(first.started_at + timedelta(seconds=31))
    finish_attempt(first.id, attempt_ended(R.FAILED))
    retry = claim_attempt(TaskRun.objects.get(run=run, life_cycle_state=L.PENDING).id)
    assert TaskRun.objects.get(id=retry.id).original_attempt_id == first.id
    watch_run_durations(TaskRun.objects.get(id=retry.id).started_at + timedelta(seconds=31))
    assert warnings(run) == [("t", "RUN_DURATION_SECONDS", f"attempt-{first.id}")]

    finish_attempt(retry.id, attempt_ended(R.FAILED))
    repair_run(run.id, rerun_all_failed_tasks=True)
    rerun = TaskRun.objects.get(id=claim_attempt(TaskRun.objects.get(run=run, life_cycle_state=L.PENDING).id).id)
    watch_run_durations(rerun.started_at + timedelta(seconds=31))
    watch_run_durations(rerun.started_at + timedelta(seconds=62))
    assert warnings(run) == [("t", "RUN_DURATION_SECONDS", f"attempt-{first.id}"),
                             ("t", "RUN_DURATION_SECONDS", f"attempt-{rerun.id}")]


def test_a_run_without_rules_is_never_warned(alice, broker):
    plain, _ = running(make_job(alice, [shell("t")], **alerts(DURATION_ALERT, "on_failure")))
    ruled, _ = running(make_job(alice, [shell("t")], health=rule(60)))
    now = max(plain.started_at, ruled.started_at) + timedelta(hours=5)

    watch_run_durations(now)
    assert warnings(ruled) == [("", "RUN_DURATION_SECONDS", "run")]  # the pass did look at this instant
    assert warnings(plain) == []
    assert not plain.events.filter(type="run.health_warning").exists()
    assert notified(plain, DURATION_ALERT) == []


def test_a_for_each_iteration_does_not_count_only_the_for_each_task(alice, broker):
    job = make_job(alice, [{"task_key": "each", "health": rule(60),
                            "for_each_task": {"inputs": "[1, 2]", "concurrency": 2,
                                              "task": shell("each_item")}}])
    run, _ = create_run(job)
    parent = TaskRun.objects.get(run=run, task_key="each")
    execute_control_flow(parent.id)
    iterations = [claim_attempt(row.id) for row in TaskRun.objects.filter(run=run, for_each_key="each")]
    assert len(iterations) == 2 and all(iterations)
    started = TaskRun.objects.filter(run=run).values_list("started_at", flat=True)

    watch_run_durations(max(started) + timedelta(seconds=120))
    assert warnings(run) == [("each", "RUN_DURATION_SECONDS", f"attempt-{parent.id}")]


def test_the_task_inside_a_for_each_cannot_have_health_rules_or_notifications():
    from jobs.spec.settings import SettingsInvalid, validate_job_settings

    with pytest.raises(SettingsInvalid) as refused:
        validate_job_settings({"name": "j", "tasks": [{"task_key": "each", "for_each_task": {
            "inputs": "[1]", "task": shell("item", health=rule(60), email_notifications={"on_failure": ["a@b.co"]})}}]})
    assert sorted(p.path for p in refused.value.problems) == [
        "tasks[0].for_each_task.task.email_notifications", "tasks[0].for_each_task.task.health"]


def streaming_job(user, **job_fields):
    return make_job(user, [shell("stream", health=rule(600, "STREAMING_BACKLOG_SECONDS"),
                                 **alerts(BACKLOG_ALERT, "on_success"))], **job_fields)


def ends_reporting(attempt, **values):
    assert finish_attempt(attempt.id, attempt_ended(R.SUCCESS), task_values=values)


def test_a_task_reporting_a_backlog_above_its_rule_warns_and_notifies_once(alice, broker):
    run, attempt = running(streaming_job(alice))
    ends_reporting(attempt, STREAMING_BACKLOG_SECONDS=700)

    assert warnings(run) == [("stream", "STREAMING_BACKLOG_SECONDS", f"attempt-{attempt.id}")]
    warning = HealthWarning.objects.get(run=run)
    assert (warning.threshold, warning.observed) == (600, 700)
    assert notified(run, BACKLOG_ALERT) == [("stream", f"task:stream:{BACKLOG_ALERT}:attempt-{attempt.id}")]
    row = Notification.objects.get(run=run, event=BACKLOG_ALERT)
    assert (row.facts["metric"], row.facts["threshold"], row.facts["observed"]) == ("STREAMING_BACKLOG_SECONDS", 600, 700)
    assert row.facts["message"] == "Task stream reported STREAMING_BACKLOG_SECONDS = 700, above its health rule's 600"
    assert sorted(deliver_due()) == ["SENT", "SENT"]  # the backlog alert and the task's on_success
    subjects = sorted(message.subject for message in mail.outbox)
    assert subjects[0] == f"[Lakeflow] Run {run.id} of task stream of job job has a streaming backlog above its limit"


def test_a_task_reporting_a_backlog_within_its_rule_warns_nobody(alice, broker):
    run, attempt = running(streaming_job(alice))
    ends_reporting(attempt, STREAMING_BACKLOG_SECONDS=500)

    # The backlog check ran on the task's end (its mark is done) and the task's own alert is queued.
    assert Reaction.objects.filter(event__run=run, event__type="task.finished", done_at__isnull=False,
                                   name="notifications.health.check_reported_backlog").exists()
    assert notified(run, "on_success") == [("stream", f"task:stream:on_success:attempt-{attempt.id}")]
    assert warnings(run) == []
    assert notified(run, BACKLOG_ALERT) == []


def test_a_job_level_backlog_rule_is_checked_against_every_task_report(alice, broker):
    job = make_job(alice, [shell("stream")], health=rule(1000, "STREAMING_BACKLOG_RECORDS"), **alerts(BACKLOG_ALERT))
    run, attempt = running(job)
    ends_reporting(attempt, STREAMING_BACKLOG_RECORDS=5000)

    assert warnings(run) == [("", "STREAMING_BACKLOG_RECORDS", f"attempt-{attempt.id}")]
    assert notified(run, BACKLOG_ALERT) == [("", f"job:{BACKLOG_ALERT}:attempt-{attempt.id}")]
