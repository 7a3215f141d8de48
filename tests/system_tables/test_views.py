"""The system tables answer the rows and shapes of Databricks' (reference §6.2-6.4) for a job with
versions, runs sliced per hour, retries and a repair."""

from datetime import datetime, timedelta

import pytest

from audit.models import AuditEvent
from lineage.models import ColumnEdge, Dataset, Edge
from runs.models import Run
from tests.system_tables.conftest import at, make_attempt, make_run, query

pytestmark = pytest.mark.usefixtures("system_db")


def naive(moment):
    """The views' times are UTC TIMESTAMPs: naive datetimes in UTC."""
    return moment.replace(tzinfo=None)


def test_jobs_has_a_row_per_version_with_its_settings(users, history):
    rows = query(users["alice"], "SELECT * FROM system.lakeflow.jobs ORDER BY version")

    assert [(r["job_id"], r["version"], r["name"]) for r in rows] == [(history["etl"].id, 1, "etl"),
                                                                       (history["etl"].id, 2, "etl")]
    first, second = rows
    assert first["change_time"] == naive(history["first_version"].created_at)
    assert first["tags"] == {} and first["trigger_type"] is None and first["paused"] is None
    assert second["tags"] == {"team": "data"}
    assert second["trigger_type"] == "CRON" and second["paused"] is True
    assert second["trigger"]["schedule"] is not None
    assert second["timeout_seconds"] == 7200
    assert second["creator_user_name"] == second["run_as_user_name"] == "alice"
    assert second["run_as"] == str(users["alice"].id)
    assert second["delete_time"] is None and second["workspace_id"] == "0"


def test_a_deleted_job_has_its_delete_time_on_its_latest_row_only(users, history):
    etl = history["etl"]
    etl.deleted_at = at(200)
    etl.save(update_fields=["deleted_at"])

    rows = query(users["alice"], "SELECT version, delete_time FROM system.lakeflow.jobs ORDER BY version")

    assert rows == [{"version": 1, "delete_time": None}, {"version": 2, "delete_time": naive(at(200))}]


def test_job_tasks_has_a_row_per_task_and_version_with_its_dependencies(users, history):
    rows = query(users["alice"], "SELECT version, task_key, depends_on_keys FROM system.lakeflow.job_tasks "
                                 "ORDER BY version, task_key")

    assert rows == [{"version": 1, "task_key": "a", "depends_on_keys": []},
                    {"version": 2, "task_key": "a", "depends_on_keys": []},
                    {"version": 2, "task_key": "b", "depends_on_keys": ["a"]}]


def test_a_long_run_is_sliced_per_clock_hour_and_its_last_slice_carries_the_result(users, history):
    rows = query(users["alice"], f"SELECT * FROM system.lakeflow.job_run_timeline WHERE run_id = {history['long'].id} "
                                 "ORDER BY period_start_time")

    assert [(r["period_start_time"], r["period_end_time"]) for r in rows] == [
        (naive(at(0)), naive(at(30))), (naive(at(30)), naive(at(90))), (naive(at(90)), naive(at(100)))]
    assert [r["result_state"] for r in rows] == [None, None, "SUCCEEDED"]
    last = rows[-1]
    assert last["termination_code"] == "SUCCESS" and last["termination_type"] == "SUCCESS"
    assert last["run_duration_seconds"] == 6000.0
    assert last["queue_duration_seconds"] == 5.0
    assert last["execution_duration_seconds"] == 5995.0
    assert last["job_parameters"] == {"day": "2026-03-02"}
    assert last["trigger_type"] == "ONE_TIME" and last["run_type"] == "JOB_RUN"
    assert {c["type"] for c in last["compute"]} == {"WORKER", "WAREHOUSE"}
    assert last["compute_ids"] == ["default"]
    assert rows[0]["run_duration_seconds"] is None  # counted once per run


def test_a_running_run_has_no_result_and_its_slice_ends_now(users, history):
    before = datetime.utcnow()
    rows = query(users["alice"], f"SELECT * FROM system.lakeflow.job_run_timeline WHERE run_id = {history['running'].id}")
    after = datetime.utcnow()

    assert len(rows) in (1, 2)  # 2 when the run's 30 seconds cross a clock hour
    assert all(r["result_state"] is None and r["run_duration_seconds"] is None for r in rows)
    assert before - timedelta(seconds=1) <= rows[-1]["period_end_time"] <= after + timedelta(seconds=1)


def test_every_attempt_is_a_task_run_with_its_retry_and_repair(users, history):
    rows = query(users["alice"], f"""
        SELECT run_id, task_key, attempt_number, result_state, period_start_time, period_end_time,
               execution_duration_seconds, setup_duration_seconds, cleanup_duration_seconds, compute, task_parameters
        FROM system.lakeflow.job_task_run_timeline WHERE job_run_id = {history['long'].id}
        ORDER BY run_id, period_start_time""")

    attempts = [(r["run_id"], r["task_key"], r["attempt_number"], r["result_state"]) for r in rows
                if r["result_state"] is not None]
    h = history
    assert attempts == [(h["a0"].id, "a", 0, "FAILED"), (h["a1"].id, "a", 1, "SUCCEEDED"),
                        (h["b0"].id, "b", 0, "FAILED"), (h["b1"].id, "b", 0, "SUCCEEDED")]
    retry = [r for r in rows if r["run_id"] == h["a1"].id]
    assert [(r["period_start_time"], r["period_end_time"]) for r in retry] == [
        (naive(at(11)), naive(at(30))), (naive(at(30)), naive(at(50)))]
    assert retry[-1]["setup_duration_seconds"] == 4.0 and retry[-1]["cleanup_duration_seconds"] == 1.0
    assert retry[-1]["execution_duration_seconds"] == 39 * 60 - 5
    assert retry[0]["execution_duration_seconds"] is None
    assert retry[0]["compute"] == [{"type": "WORKER", "cluster_id": "node-1", "warehouse_id": None}]
    repaired = [r for r in rows if r["run_id"] == h["b1"].id][-1]
    assert repaired["compute"] == [{"type": "WAREHOUSE", "cluster_id": None, "warehouse_id": "default"}]
    assert repaired["task_parameters"] == {"day": "2026-03-02"}


def test_result_states_are_spelled_as_the_system_tables_spell_them(users, history):
    etl = history["etl"]
    for result, code in [("TIMEDOUT", "CANCELED"), ("CANCELED", "USER_CANCELED"), ("UPSTREAM_FAILED", "SKIPPED"),
                         ("SUCCESS_WITH_FAILURES", "SUCCESS_WITH_FAILURES"), ("MAXIMUM_CONCURRENT_RUNS_REACHED", "SKIPPED")]:
        make_run(etl, at(300), started_at=at(300), ended_at=at(301), result_state=result, termination_code=code)
    make_run(etl, at(300), ended_at=at(300), life_cycle_state="SKIPPED", termination_code="SKIPPED")
    make_run(etl, at(300), started_at=at(300), ended_at=at(301), result_state="FAILED",
             termination_type="INTERNAL_ERROR", termination_code="INTERNAL_ERROR")

    rows = query(users["alice"], f"SELECT result_state, termination_code FROM system.lakeflow.job_run_timeline "
                                 f"WHERE period_start_time = TIMESTAMP '{naive(at(300))}' ORDER BY run_id")

    assert [r["result_state"] for r in rows] == ["TIMED_OUT", "CANCELLED", "SKIPPED", "SUCCEEDED", "SKIPPED",
                                                 "SKIPPED", "ERROR"]


def test_task_usage_has_what_each_attempt_consumed(users, history, settings):
    settings.LAKEFLOW_COST_CURRENCY = "EUR"
    rows = query(users["alice"], f"SELECT * FROM system.lakeflow.task_usage WHERE task_run_id = {history['a1'].id}")

    assert len(rows) == 1
    usage = rows[0]
    assert (usage["job_id"], usage["run_id"], usage["task_key"], usage["attempt_number"]) == (
        history["etl"].id, history["long"].id, "a", 1)
    assert (usage["cpu_seconds"], usage["peak_memory_bytes"], usage["read_bytes"], usage["written_bytes"]) == (
        42.0, 200_000_000, 1000, 2000)
    assert usage["cost"] == 0.25 and usage["currency"] == "EUR"
    assert (usage["period_start_time"], usage["period_end_time"]) == (naive(at(11)), naive(at(50)))


def test_audit_has_databricks_columns(users, system_db):
    AuditEvent.objects.create(service_name="jobs", action_name="runNow", user_id=users["alice"].id,
                              user_name="alice", credential="session", job_id=7, target="job 7",
                              request_params={"job_id": 7, "notebook_params": {"a": "b"}}, method="POST",
                              path="/api/2.2/jobs/run-now", status_code=200, outcome="ok",
                              source_ip_address="10.0.0.1", user_agent="sdk")

    row = query(users["admin"], "SELECT * FROM system.access.audit")[0]

    assert (row["service_name"], row["action_name"]) == ("jobs", "runNow")
    assert row["user_identity"] == {"email": "alice", "subject_name": "alice"}
    assert row["request_params"] == {"job_id": "7", "notebook_params": '{"a":"b"}'}
    assert row["response"] == {"status_code": 200, "error_message": None, "result": None}
    assert row["source_ip_address"] == "10.0.0.1" and row["event_date"] == row["event_time"].date()


def test_lineage_has_a_row_per_edge_and_column_edges(users, history):
    source = Dataset.objects.create(name="default.main.raw", kind="TABLE")
    target = Dataset.objects.create(name="/Volumes/a/b/c/out.csv", kind="PATH")
    b1, long = history["b1"], history["long"]
    Edge.objects.create(dataset=source, direction="read", source="sql", task_run=b1, run=long, job_id=long.job_id,
                        task_key="b")
    Edge.objects.create(dataset=target, direction="write", source="sql", task_run=b1, run=long,
                        job_id=long.job_id, task_key="b", row_count=3)
    ColumnEdge.objects.create(target=target, target_column="total", source=source, source_column="amount",
                              task_run=b1, run=long, job_id=long.job_id)

    tables = query(users["alice"], "SELECT * FROM system.access.table_lineage ORDER BY record_id")
    columns = query(users["alice"], "SELECT * FROM system.access.column_lineage")

    read, write = tables
    assert (read["source_table_full_name"], read["source_table_catalog"], read["source_table_schema"],
            read["source_table_name"], read["target_type"]) == ("default.main.raw", "default", "main", "raw", None)
    assert (write["target_path"], write["target_type"], write["source_type"], write["row_count"]) == (
        "/Volumes/a/b/c/out.csv", "PATH", None, 3)
    assert (read["entity_type"], read["entity_id"], read["entity_run_id"], read["created_by"]) == (
        "JOB", long.job_id, long.id, "alice")
    assert [(c["source_table_full_name"], c["source_column_name"], c["target_column_name"]) for c in columns] == [
        ("default.main.raw", "amount", "total")]


def test_the_views_are_current_a_new_run_shows_at_the_next_query(users, history):
    before = query(users["alice"], "SELECT count(DISTINCT run_id) AS runs FROM system.lakeflow.job_run_timeline")
    run = make_run(history["etl"], at(400), started_at=at(400), ended_at=at(401), result_state="SUCCESS")
    make_attempt(run, "a", at(400), at(401))

    after = query(users["alice"], "SELECT count(DISTINCT run_id) AS runs FROM system.lakeflow.job_run_timeline")

    assert after[0]["runs"] == before[0]["runs"] + 1 == Run.objects.filter(job=history["etl"]).count()


def test_now_compares_with_the_utc_times(users, history):
    rows = query(users["alice"], "SELECT DISTINCT run_id FROM system.lakeflow.job_run_timeline "
                                 "WHERE period_end_time >= now() - INTERVAL 5 MINUTES")

    assert [r["run_id"] for r in rows] == [history["running"].id]
