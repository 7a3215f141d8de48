"""OpenLineage out: each attempt's START and end go to the configured endpoint (a real HTTP
server on loopback here), from an outbox: a failed send waits and tries again, a run never waits."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from lineage import export
from lineage.models import Delivery
from runs.admission import create_run
from runs.dispatch import finish_attempt
from runs.engine.endings import attempt_ended
from runs.engine.states import RunResultState as R
from runs.models import TaskRun
from tests.runs.conftest import claim_attempt, make_job, shell


class Endpoint(BaseHTTPRequestHandler):
    status = 201
    received = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append((self.path, self.headers.get("Authorization"), body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint(settings):
    Endpoint.status, Endpoint.received = 201, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.LAKEFLOW_OPENLINEAGE_EXPORT_URL = f"http://127.0.0.1:{server.server_port}"
    settings.LAKEFLOW_OPENLINEAGE_EXPORT_API_KEY = "k"
    yield Endpoint
    server.shutdown()


def run_one_sql_task(alice, result=R.SUCCESS):
    run, _ = create_run(make_job(alice, [shell("t")]))
    attempt = claim_attempt(TaskRun.objects.get(run=run).id)
    finish_attempt(attempt.id, attempt_ended(result), data_access={"sql": {
        "warehouse_id": "default", "dialect": "duckdb", "statements": ["CREATE TABLE b AS SELECT * FROM a"],
        "row_counts": [4], "schema": {}}})
    return attempt


def test_each_attempt_sends_start_and_complete_with_what_it_read_and_wrote(alice, broker, endpoint):
    attempt = run_one_sql_task(alice)
    assert set(Delivery.objects.values_list("event_type", flat=True)) == {"START", "COMPLETE"}
    assert export.deliver_openlineage_events(timezone.now()) == 2
    assert export.deliver_openlineage_events(timezone.now()) == 0  # delivered once
    events = {body["eventType"]: body for _, _, body in endpoint.received}
    assert {path for path, _, _ in endpoint.received} == {"/api/v1/lineage"}
    assert {auth for _, auth, _ in endpoint.received} == {"Bearer k"}
    complete = events["COMPLETE"]
    assert [(d["namespace"], d["name"]) for d in complete["inputs"]] == [("lakeflow", "default.main.a")]
    assert [(d["namespace"], d["name"]) for d in complete["outputs"]] == [("lakeflow", "default.main.b")]
    assert complete["run"]["runId"] == events["START"]["run"]["runId"]
    assert complete["job"]["name"] == f"job_{attempt.run.job_id}.t"


def test_a_failed_attempt_is_a_fail_event(alice, broker, endpoint):
    run_one_sql_task(alice, R.FAILED)
    assert set(Delivery.objects.values_list("event_type", flat=True)) == {"START", "FAIL"}


def test_a_refusing_endpoint_is_tried_again_later_and_given_up_after_max_tries(alice, broker, endpoint):
    endpoint.status = 503
    run_one_sql_task(alice)
    now = timezone.now()
    assert export.deliver_openlineage_events(now) == 0
    first = Delivery.objects.order_by("id").first()
    assert first.tries == 1 and first.next_try_at == now + timedelta(seconds=2) and "503" in first.error
    assert len(endpoint.received) == 1  # stopped at the first failure: the endpoint is likely down for all
    for _ in range(export.MAX_TRIES):
        now += timedelta(hours=1)
        export.deliver_openlineage_events(now)
    first.refresh_from_db()
    assert (first.tries, first.next_try_at, first.delivered_at) == (export.MAX_TRIES, None, None)

    endpoint.status = 201  # back up: the rest goes out
    assert export.deliver_openlineage_events(now + timedelta(hours=1)) == 1


def test_nothing_is_queued_when_no_endpoint_is_configured(alice, broker, settings):
    settings.LAKEFLOW_OPENLINEAGE_EXPORT_URL = ""
    run_one_sql_task(alice)
    assert not Delivery.objects.exists()


def test_the_admin_shows_each_deliverys_state(alice, broker, endpoint, client):
    from django.contrib.auth import get_user_model

    run_one_sql_task(alice)
    export.deliver_openlineage_events(timezone.now())
    client.force_login(get_user_model().objects.create_superuser("root", password="x"))
    page = client.get("/admin/lineage/delivery/")
    assert page.status_code == 200 and page.content.decode().count("delivered") >= 2
    for model in ("dataset", "edge", "gap"):
        assert client.get(f"/admin/lineage/{model}/").status_code == 200
