"""The audit log: one append-only row per state-changing request from the API, the dashboard and
the admin console, denied ones too, with secrets redacted; read by admins on a page and as JSON."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from audit.actions import REDACTED, action_of, redacted
from audit.models import AppendOnly, AuditEvent
from jobs.models import ADMINS_GROUP
from tests.api.conftest import client_for, create_job, make_user, shell_task


def rows():
    return list(AuditEvent.objects.order_by("id"))


@pytest.fixture
def root(db):
    user = make_user("root", is_staff=True)
    user.groups.add(Group.objects.get(name=ADMINS_GROUP))
    return user


def test_api_actions_are_recorded_with_databricks_names_targets_and_outcomes(api, bob_api, held_broker):
    job_id = create_job(api, name="audited", parameters=[{"name": "day", "default": "sun"}])
    api.post_ok("jobs/run-now", {"job_id": job_id, "job_parameters": {"day": "mon"}})
    denied = bob_api.post("jobs/run-now", {"job_id": job_id})
    assert denied.status_code == 403
    bad = api.post("jobs/update", {"job_id": job_id, "new_settings": {"max_concurrent_runs": -1}})
    assert bad.status_code == 400
    listed = [(r.user_name, f"{r.service_name}.{r.action_name}", r.target, r.job_id, r.outcome) for r in rows()]
    assert listed == [
        ("alice", "jobs.create", "", None, "ok"),
        ("alice", "jobs.runNow", f"job {job_id}", job_id, "ok"),
        ("bob", "jobs.runNow", f"job {job_id}", job_id, "denied"),
        ("alice", "jobs.update", f"job {job_id}", job_id, "failed"),
    ]
    run_now = rows()[1]
    assert run_now.request_params == {"job_id": job_id, "job_parameters": {"day": "mon"}}
    assert run_now.credential.startswith("token dapi") and run_now.method == "POST"
    assert run_now.path == "/api/2.2/jobs/run-now" and run_now.status_code == 200
    assert rows()[2].error_message == f"User bob does not have Manage Run or Owner or Admin permissions on job {job_id}."


def test_reads_are_not_recorded(api):
    job_id = create_job(api)
    api.get_ok("jobs/get", job_id=job_id)
    api.get_ok("jobs/list")
    assert [r.action_name for r in rows()] == ["create"]


def test_secrets_in_parameters_are_redacted(api, client, root):
    admin = client_for(client, root)
    admin.client.post("/api/2.0/token/create", json.dumps({"comment": "ci", "lifetime_seconds": 60}),
                      content_type="application/json", headers=admin.headers())
    created = rows()[-1]
    assert (created.service_name, created.action_name) == ("tokens", "create")
    assert created.request_params == {"comment": "ci", "lifetime_seconds": 60}
    assert redacted({"password": "p", "nested": [{"api_key": "k", "run_id": 3}], "idempotency_token": "i",
                     "string_value": "s"}) == {
        "password": REDACTED, "nested": [{"api_key": REDACTED, "run_id": 3}], "idempotency_token": "i",
        "string_value": REDACTED}


def test_dashboard_posts_and_sign_ins_are_recorded(client, db, held_broker):
    alice = get_user_model().objects.create_user("alice", password="right")
    failed = client.post("/login/", {"username": "alice", "password": "wrong"})
    assert failed.status_code == 200
    client.post("/login/", {"username": "alice", "password": "right"})
    source = "name: from the page\ntasks:\n- task_key: x\n  shell_command_task: {command: id}\n"
    client.post("/jobs/new/source/", {"format": "yaml", "source": source})
    client.post("/jobs/new/source/", {"format": "yaml", "source": "name: [broken"})
    client.post("/logout/")
    listed = [(r.user_name, f"{r.service_name}.{r.action_name}", r.outcome) for r in rows()]
    assert listed == [("alice", "accounts.login", "failed"), ("alice", "accounts.login", "ok"),
                      ("alice", "jobs.create", "ok"), ("alice", "jobs.create", "failed"),
                      ("alice", "accounts.logout", "ok")]
    assert all(r.request_params.get("password") in (None, REDACTED) for r in rows())
    assert rows()[0].request_params["password"] == REDACTED
    assert "csrfmiddlewaretoken" not in json.dumps([r.request_params for r in rows()]).replace(f'"{REDACTED}"', "")
    assert alice.pk == rows()[1].user_id


def test_admin_console_changes_are_recorded(client, root):
    root.is_superuser = True
    root.save()
    client.force_login(root)
    bob = make_user("bob")
    response = client.post(f"/admin/auth/user/{bob.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    last = rows()[-1]
    assert (last.service_name, last.action_name, last.user_name, last.outcome) == (
        "admin", "auth.user.delete", "root", "ok")


def test_rows_cannot_be_changed_or_deleted_through_any_interface(api, client, root):
    create_job(api)
    event = rows()[0]
    with pytest.raises(AppendOnly):
        AuditEvent.objects.filter(id=event.id).update(outcome="denied")
    with pytest.raises(AppendOnly):
        AuditEvent.objects.filter(id=event.id).delete()
    with pytest.raises(AppendOnly):
        event.delete()
    event.outcome = "denied"
    with pytest.raises(AppendOnly):
        event.save()
    client.force_login(root)
    assert client.get(f"/admin/audit/auditevent/{event.id}/delete/").status_code == 403
    changed = client.post(f"/admin/audit/auditevent/{event.id}/change/", {"outcome": "denied"})
    assert changed.status_code == 403
    assert AuditEvent.objects.get(id=event.id).outcome == "ok"
    # Removing the user who acted leaves the row as it was.
    get_user_model().objects.filter(username="alice").delete()
    assert AuditEvent.objects.get(id=event.id).user_name == "alice"


def test_the_audit_page_and_api_are_for_admins_and_filter(api, bob_api, client, root, held_broker):
    job_id = create_job(api, tasks=[shell_task("t")])
    other = create_job(api, name="other")
    api.post_ok("jobs/run-now", {"job_id": job_id})
    bob_api.post("jobs/run-now", {"job_id": other})
    admin = client_for(client, root)
    assert bob_api.client.get("/api/2.0/lakeflow/audit-log", headers=bob_api.headers()).status_code == 403
    body = admin.client.get("/api/2.0/lakeflow/audit-log", {"action_name": "jobs.runNow"},
                            headers=admin.headers()).json()
    assert [(e["user_identity"]["email"], e["response"]["result"]) for e in body["events"]] == [
        ("bob", "denied"), ("alice", "ok")]
    by_job = admin.client.get("/api/2.0/lakeflow/audit-log", {"job_id": job_id}, headers=admin.headers()).json()
    assert {e["job_id"] for e in by_job["events"]} == {job_id}
    one = admin.client.get("/api/2.0/lakeflow/audit-log", {"limit": 1}, headers=admin.headers()).json()
    assert len(one["events"]) == 1 and one["next_page_token"]
    following = admin.client.get("/api/2.0/lakeflow/audit-log", {"limit": 1, "page_token": one["next_page_token"]},
                                 headers=admin.headers()).json()
    assert int(following["events"][0]["event_id"]) < int(one["events"][0]["event_id"])
    bad = admin.client.get("/api/2.0/lakeflow/audit-log", {"start_time": "yesterday"}, headers=admin.headers())
    assert bad.status_code == 400 and bad.json()["message"].startswith("start_time must be a time")

    client.force_login(make_user("carol"))
    assert client.get("/audit/").status_code == 403
    client.force_login(root)
    page = client.get("/audit/", {"user": "bob"}).content.decode()
    assert 'data-action="jobs.runNow" data-outcome="denied"' in page and 'data-outcome="ok"' not in page
    assert 'id="nav-audit"' in page


@pytest.mark.parametrize("url_name, namespace, method, expected", [
    ("jobs-run-now-2.2", "api", "POST", ("jobs", "runNow")),
    ("job-permissions", "api", "PATCH", ("jobs", "changeJobAcl")),
    ("scim-user", "api", "DELETE", ("accounts", "deleteUser")),
    ("something-new-2.2", "api", "POST", ("api", "POST something-new")),
    ("repair", "runs", "POST", ("jobs", "repairRun")),
    ("jobs_job_change", "admin", "POST", ("admin", "jobs.job.update")),
    ("unknown", "lineage", "POST", ("web", "lineage:unknown")),
])
def test_every_route_has_a_name_in_the_log(url_name, namespace, method, expected):
    assert action_of(url_name, namespace, method) == expected


def test_a_deeply_nested_body_is_logged_summarized_not_refused(api):
    deep = {"name": "deep"}
    cursor = deep
    for _ in range(100):
        cursor["x"] = {}
        cursor = cursor["x"]
    api.post("jobs/create", deep)
    logged = json.dumps(rows()[-1].request_params)
    assert '"[NESTED TOO DEEP]"' in logged and logged.count('"x"') == 20


def test_odd_ids_and_form_encoded_json_are_logged_not_lost(api, held_broker):
    job_id = create_job(api)
    run_id = api.post_ok("jobs/run-now", {"job_id": job_id})["run_id"]
    # A stray job_id that is no number (or too big for one) must not keep the cancel out of the log.
    for stray in ("²", "9" * 30):
        api.client.post("/api/2.2/jobs/runs/cancel", json.dumps({"run_id": run_id, "job_id": stray}),
                        content_type="application/json", headers=api.headers())
    cancels = [r for r in rows() if r.action_name == "cancel"]
    assert [(r.target, r.job_id) for r in cancels] == [(f"run {run_id}", job_id)] * 2
    # The API reads a JSON body whatever its content type: so does the log, and redacts it.
    api.client.post("/api/2.0/token/create", json.dumps({"comment": "curl", "token": "s3cret"}),
                    content_type="application/x-www-form-urlencoded", headers=api.headers())
    assert rows()[-1].request_params == {"comment": "curl", "token": REDACTED}


def test_a_huge_body_is_summarized_in_a_bounded_row(client, db):
    client.post("/api/2.2/jobs/create", json.dumps({("k" * 5000) + str(i): 1 for i in range(20)}),
                content_type="application/json")
    logged = rows()[-1]
    assert logged.outcome == "denied" and logged.request_params["truncated"] is True
    assert len(json.dumps(logged.request_params)) < 10_000
