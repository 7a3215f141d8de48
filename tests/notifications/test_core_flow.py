"""The outbox from end to end inside one process: run events become notifications, once per
cause and recipient, and the sender delivers them to a real HTTP receiver on loopback."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from notifications.delivery import deliver_due
from notifications.models import Destination, Notification
from runs.admission import create_run
from runs.dispatch import finish_attempt
from runs.engine.endings import attempt_ended
from runs.engine.states import RunLifeCycleState as L, RunResultState as R
from runs.models import TaskRun
from tests.runs.conftest import claim_attempt, make_job, shell


@pytest.fixture
def receiver():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers.get("Lakeflow-Delivery-Id"), json.loads(body)))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.received = received
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield server
    server.shutdown()


def webhook(url, name="hook"):
    destination = Destination(display_name=name, destination_type="WEBHOOK")
    destination.secrets = {"url": url}
    destination.save()
    return destination


def finish_all(run, result):
    for attempt in TaskRun.objects.filter(run=run, life_cycle_state=L.PENDING):
        finish_attempt(claim_attempt(attempt.id).id, attempt_ended(result))


def test_a_failed_run_notifies_each_destination_once(alice, broker, receiver):
    hook = webhook(receiver.url)
    job = make_job(alice, [shell("t")], webhook_notifications={"on_failure": [{"id": hook.id}],
                                                              "on_success": [{"id": hook.id}]})
    run, _ = create_run(job)
    finish_all(run, R.FAILED)

    row = Notification.objects.get(run=run)
    assert (row.event, row.state, row.task_key) == ("on_failure", "PENDING", "")
    assert deliver_due() == ["SENT"]
    assert deliver_due() == []
    assert len(receiver.received) == 1
    delivery_id, payload = receiver.received[0]
    assert payload == {"event_type": "jobs.on_failure", "workspace_id": "0", "run": {"run_id": str(run.id)},
                       "job": {"job_id": str(job.id), "name": "job"}}
    assert delivery_id == f"lakeflow-notification-{row.id}"
    assert Notification.objects.get(id=row.id).answer.startswith("HTTP 200")


def test_a_task_that_fails_then_succeeds_on_retry_sends_no_failure_alert(alice, broker, receiver):
    hook = webhook(receiver.url)
    job = make_job(alice, [shell("t", max_retries=1, webhook_notifications={"on_failure": [{"id": hook.id}]})],
                   webhook_notifications={"on_failure": [{"id": hook.id}], "on_success": [{"id": hook.id}]})
    run, _ = create_run(job)
    finish_all(run, R.FAILED)
    finish_all(run, R.SUCCESS)
    assert TaskRun.objects.filter(run=run).count() == 2
    # The run's success was told (its reactions ran), and nothing else.
    assert list(Notification.objects.filter(run=run).values_list("event", flat=True)) == ["on_success"]


def test_a_failure_whose_retry_never_runs_alerts_when_its_run_is_canceled(alice, broker, receiver):
    from runs.dispatch import cancel_run

    hook = webhook(receiver.url)
    job = make_job(alice, [shell("t", max_retries=1, min_retry_interval_millis=3_600_000,
                                 notification_settings={"no_alert_for_canceled_runs": True},
                                 webhook_notifications={"on_failure": [{"id": hook.id}]})])
    run, _ = create_run(job)
    [first] = TaskRun.objects.filter(run=run)
    finish_attempt(claim_attempt(first.id).id, attempt_ended(R.FAILED, "boom"))
    assert TaskRun.objects.get(run=run, attempt_number=1).life_cycle_state == L.WAITING_FOR_RETRY
    assert not Notification.objects.filter(run=run).exists()  # a retry is to follow

    cancel_run(run.id)  # the retry never runs: the failure was the last attempt
    row = Notification.objects.get(run=run)
    assert (row.event, row.cause, row.facts["result_state"], row.facts["attempt_number"]) == (
        "on_failure", f"task:t:on_failure:attempt-{first.id}", "FAILED", 0)


def test_the_last_failed_attempt_alerts_and_every_attempt_alerts_when_asked(alice, broker, receiver):
    hook = webhook(receiver.url)
    job = make_job(alice, [
        shell("quiet", max_retries=1, webhook_notifications={"on_failure": [{"id": hook.id}]}),
        shell("loud", max_retries=1, webhook_notifications={"on_failure": [{"id": hook.id}]},
              notification_settings={"alert_on_last_attempt": False})])
    run, _ = create_run(job)
    finish_all(run, R.FAILED)
    finish_all(run, R.FAILED)
    alerts = sorted(Notification.objects.filter(run=run).values_list("task_key", flat=True))
    assert alerts == ["loud", "loud", "quiet"]


def test_a_repair_alerts_like_a_run_and_a_redelivered_event_alerts_no_more(alice, broker, receiver):
    from runs.reactions import run_reactions
    from runs.models import Reaction, RunEvent
    from runs.repair import repair_run

    hook = webhook(receiver.url)
    job = make_job(alice, [shell("t")], webhook_notifications={"on_start": [{"id": hook.id}],
                                                              "on_failure": [{"id": hook.id}],
                                                              "on_success": [{"id": hook.id}]})
    run, _ = create_run(job)
    finish_all(run, R.FAILED)
    repair_run(run.id, rerun_tasks=["t"])
    finish_all(run, R.SUCCESS)

    rows = Notification.objects.filter(run=run).order_by("id")
    assert [(n.event, n.cause) for n in rows] == [
        ("on_start", "job:on_start:run"), ("on_failure", "job:on_failure:run"),
        ("on_start", f"job:on_start:repair-{run.repairs.get().id}"),
        ("on_success", f"job:on_success:repair-{run.repairs.get().id}")]
    # The reaction running again (a sweep after a crash, another node) adds nothing.
    finished = RunEvent.objects.filter(run=run, type="run.finished").first()
    Reaction.objects.filter(event=finished).delete()
    RunEvent.objects.filter(id=finished.id).update(reactions_pending=True)
    assert run_reactions(finished.id)
    assert Notification.objects.filter(run=run).count() == 4
    assert deliver_due() == ["SENT"] * 4
    assert [r[1]["event_type"] for r in receiver.received] == [
        "jobs.on_start", "jobs.on_failure", "jobs.on_start", "jobs.on_success"]


def test_a_run_canceled_by_its_job_timeout_alerts_as_a_failure_naming_the_timeout(alice, broker):
    from runs.dispatch import cancel_run
    from runs.engine.states import CancelReason

    job = make_job(alice, [shell("t")], timeout_seconds=30,
                   email_notifications={"on_failure": ["ops@example.com"]})
    run, _ = create_run(job)
    [attempt] = TaskRun.objects.filter(run=run)
    claim_attempt(attempt.id)
    cancel_run(run.id, reason=CancelReason.TIMEOUT)
    finish_attempt(attempt.id, attempt_ended(R.CANCELED))

    row = Notification.objects.get(run=run, event="on_failure")
    assert (row.recipient, row.channel, row.facts["result_state"]) == ("email:ops@example.com", "EMAIL", "TIMEDOUT")
    assert row.facts["message"] == "Timed out: the run took longer than the job's timeout_seconds (30 s)"


def test_a_destination_deleted_after_the_job_was_saved_fails_visibly_and_is_never_tried(alice, broker, receiver):
    hook = webhook(receiver.url)
    job = make_job(alice, [shell("t")], webhook_notifications={"on_failure": [{"id": hook.id}]})
    hook.delete()
    run, _ = create_run(job)
    finish_all(run, R.FAILED)
    row = Notification.objects.get(run=run)
    assert (row.state, row.next_try_at) == ("FAILED", None)
    assert "no longer exists" in row.error
    assert deliver_due() == [] and receiver.received == []


def test_task_notifications_tell_the_task_and_the_parent_run(alice, broker, receiver):
    hook = webhook(receiver.url)
    job = make_job(alice, [shell("t", webhook_notifications={"on_start": [{"id": hook.id}]})])
    run, _ = create_run(job)
    [attempt] = TaskRun.objects.filter(run=run)
    claim_attempt(attempt.id)
    assert deliver_due() == ["SENT"]
    assert receiver.received[0][1] == {"event_type": "jobs.on_start", "workspace_id": "0",
                                       "task": {"task_key": "t"},
                                       "run": {"run_id": str(attempt.id), "parent_run_id": str(run.id)},
                                       "job": {"job_id": str(job.id), "name": "job"}}


def test_a_job_without_notifications_leaves_its_events_without_pending_reactions(alice, broker):
    from runs.models import RunEvent

    run, _ = create_run(make_job(alice, [shell("t")]))
    finish_all(run, R.SUCCESS)
    started = RunEvent.objects.get(run=run, type="task.running")
    assert started.reactions_pending is None
    assert not Notification.objects.exists()
