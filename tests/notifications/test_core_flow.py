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


def webhook(url):
    destination = Destination(display_name="hook", destination_type="WEBHOOK")
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
                   webhook_notifications={"on_failure": [{"id": hook.id}]})
    run, _ = create_run(job)
    finish_all(run, R.FAILED)
    finish_all(run, R.SUCCESS)
    assert TaskRun.objects.filter(run=run).count() == 2
    assert not Notification.objects.filter(run=run).exists()


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
