"""POST /sql/statements: a query of the system tables as JSON, for API callers and for a SQL task
with its attempt's system tables credential (its run-as identity's own grants, never an admin's)."""

import json

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from jobs.models import ApiToken
from runs.attempt_credentials import run_as_token, system_tables_access, system_tables_credential
from runs.models import TaskRun
from tests.system_tables.conftest import make_attempt, make_job, make_run, shell

pytestmark = pytest.mark.usefixtures("system_db")
URL = reverse("system_tables:statements")


def post(client, token, body):
    return client.post(URL, json.dumps(body), content_type="application/json",
                       headers={"Authorization": f"Bearer {token}"} if token else {})


def test_a_token_holder_gets_the_answer_as_json(client, users, history):
    token = ApiToken.issue(users["bob"])[1]

    answer = post(client, token, {"statement": "SELECT job_id, run_id, result_state, period_start_time "
                                               "FROM system.lakeflow.job_run_timeline WHERE job_id = :job",
                                  "parameters": {"job": str(history["reports"].id)}}).json()

    assert [column["name"] for column in answer["columns"]] == ["job_id", "run_id", "result_state", "period_start_time"]
    assert answer["columns"][3]["type"] == "TIMESTAMP"
    assert answer["rows"] == [[history["reports"].id, history["short"].id, "FAILED", "2026-03-02T10:35:00"]]
    assert answer["row_count"] == 1 and answer["truncated"] is False


def test_a_token_holder_sees_only_what_they_may_view(client, users, history):
    token = ApiToken.issue(users["bob"])[1]

    answer = post(client, token, {"statement": "SELECT DISTINCT job_id FROM system.lakeflow.job_task_run_timeline"})

    assert answer.json()["rows"] == [[history["reports"].id]]


def test_bad_input_is_a_400_naming_the_field_or_the_problem(client, users):
    token = ApiToken.issue(users["bob"])[1]

    missing = post(client, token, {})
    assert missing.status_code == 400 and "statement" in missing.json()["message"]
    refused = post(client, token, {"statement": "DELETE FROM lakeflow.jobs"})
    assert refused.status_code == 400 and refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "Only queries" in refused.json()["message"]
    too_many = post(client, token, {"statement": "SELECT 1", "max_rows": 10**9})
    assert too_many.status_code == 400 and "max_rows" in too_many.json()["message"]
    assert post(client, "", {"statement": "SELECT 1"}).status_code == 401


def test_a_tasks_credential_reads_as_its_run_as_identity_while_it_runs(client, users, history):
    attempt = history["running_a"]  # alice's run, still running

    answer = post(client, system_tables_credential(attempt.id),
                  {"statement": "SELECT DISTINCT job_id FROM system.lakeflow.job_run_timeline"})

    assert answer.status_code == 200, answer.content
    assert answer.json()["rows"] == [[history["etl"].id]]
    TaskRun.objects.filter(id=attempt.id).update(life_cycle_state="TERMINATED", result_state="SUCCESS")
    ended = post(client, system_tables_credential(attempt.id), {"statement": "SELECT 1"})
    assert ended.status_code == 401 and "attempt has ended" in ended.json()["message"]


def test_an_admins_task_reads_with_the_admins_own_grants_as_its_run_as_token_does(client, users, history):
    """Other tasks under the same operating-system user can read a task's credentials: neither
    reads as an admin (README, "Who can do what"), so neither sees the other users' jobs."""
    admins_job = make_job(users["admin"], [shell("x")], name="admin's")
    run = make_run(admins_job, history["running"].created_at, life_cycle_state="RUNNING",
                   started_at=history["running"].started_at)
    attempt = make_attempt(run, "x", run.started_at, None)
    statement = {"statement": "SELECT DISTINCT job_id FROM system.lakeflow.jobs ORDER BY job_id"}
    AuditEvent.objects.create(service_name="jobs", action_name="create", user_id=users["alice"].id,
                              user_name="alice", request_params={}, method="POST", path="/api/2.2/jobs/create",
                              status_code=200, outcome="ok")

    credential = post(client, system_tables_credential(attempt.id), statement).json()["rows"]
    token = post(client, run_as_token(attempt.id), statement).json()["rows"]
    audit = post(client, system_tables_credential(attempt.id),
                 {"statement": "SELECT count(*) FROM system.access.audit WHERE user_id <> :me",
                  "parameters": {"me": str(users["admin"].id)}}).json()["rows"]

    assert credential == token == [[admins_job.id]]
    assert audit == [[0]]


def test_the_launch_spec_gets_the_url_and_a_credential_of_its_attempt(users, history, settings):
    settings.LAKEFLOW_BASE_URL = "http://lakeflow.example:8000"
    access = system_tables_access(history["running_a"])

    assert access["url"] == "http://lakeflow.example:8000/sql/statements"
    assert access["token"] == system_tables_credential(history["running_a"].id)
    history["running"].run_as = None
    assert system_tables_access(history["running_a"]) is None
