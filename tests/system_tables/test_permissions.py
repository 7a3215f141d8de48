"""An identity sees only the jobs it may view (their runs, tasks, usage and lineage), admins all;
the audit log is an admin's, or a user's own actions; no query text gets around it or writes."""

import pytest

from audit.models import AuditEvent
from lineage.models import Dataset, Edge
from runs.executors.system_views import ALIAS, Scope, connect
from system_tables.queries import QueryFailed, open_for, run_on, scope_for
from tests.system_tables.conftest import grant, query

pytestmark = pytest.mark.usefixtures("system_db")

TABLES = ["system.lakeflow.jobs", "system.lakeflow.job_tasks", "system.lakeflow.job_run_timeline",
          "system.lakeflow.job_task_run_timeline", "system.lakeflow.task_usage"]


def job_ids(user, table):
    return {row["job_id"] for row in query(user, f"SELECT DISTINCT job_id FROM {table}")}


def job_ids_by_table(user):
    union = " UNION ALL ".join(f"SELECT DISTINCT '{table}' AS t, job_id FROM {table}" for table in TABLES)
    found = {table: set() for table in TABLES}
    for row in query(user, union):
        found[row["t"]].add(row["job_id"])
    return found


def test_bob_sees_only_his_jobs_in_every_table(users, history):
    etl, reports = history["etl"].id, history["reports"].id
    assert job_ids_by_table(users["bob"]) == {table: {reports} for table in TABLES}
    assert job_ids_by_table(users["alice"]) == {table: {etl} for table in TABLES}
    assert job_ids_by_table(users["admin"]) == {table: {etl, reports} for table in TABLES}


def test_a_grant_shows_the_job_at_the_next_query(users, history):
    grant(history["etl"], users["bob"])

    assert job_ids(users["bob"], "system.lakeflow.job_run_timeline") == {history["etl"].id, history["reports"].id}


def test_lineage_rows_follow_their_job(users, history):
    data = Dataset.objects.create(name="default.main.t", kind="TABLE")
    for run, attempt in ((history["long"], history["b1"]), (history["short"], history["short_attempt"])):
        Edge.objects.create(dataset=data, direction="read", source="sql", task_run=attempt, run=run,
                            job_id=run.job_id, task_key=attempt.task_key)

    rows = query(users["bob"], "SELECT entity_id FROM system.access.table_lineage")

    assert [row["entity_id"] for row in rows] == [history["reports"].id]


def test_the_audit_log_is_an_admins_and_a_users_own_actions(users, system_db):
    for user in (users["alice"], users["bob"]):
        AuditEvent.objects.create(service_name="jobs", action_name="create", user_id=user.id, user_name=user.username,
                                  request_params={}, method="POST", path="/api/2.2/jobs/create", status_code=200,
                                  outcome="ok")

    assert {r["user_name"] for r in query(users["admin"], "SELECT user_identity.email AS user_name "
                                                          "FROM system.access.audit")} == {"alice", "bob"}
    assert [r["user_id"] for r in query(users["bob"], "SELECT user_id FROM system.access.audit")] == [users["bob"].id]


def test_a_user_without_any_job_sees_no_rows(users, history):
    nobody = type(users["bob"]).objects.create_user("carol", password="x")

    assert query(nobody, "SELECT * FROM system.lakeflow.job_run_timeline") == []


def test_a_query_of_another_table_is_refused_before_it_runs(users, history):
    """The statement check's refusals (tests/system_tables/test_statements.py has them all) on
    the way every query takes."""
    with open_for(scope_for(users["bob"])) as cursor:
        for sql, says in [(f"SELECT * FROM {ALIAS}.auth_user", "is not a system table"),
                          ("SELECT * FROM sqlite_scan('/etc/passwd', 'x')", "not available"),
                          ("ATTACH '/tmp/x.sqlite3' AS x (TYPE sqlite)", "Only queries")]:
            with pytest.raises(QueryFailed, match=says):
                run_on(cursor, sql)


def test_the_connection_itself_refuses_files_extensions_and_settings(tmp_path, system_db):
    """Below the statement check: with the connection locked, DuckDB refuses these by itself.
    (DuckDB's sqlite scanner attaches and scans SQLite files whatever enable_external_access says:
    only the statement check, tested above, stops ATTACH ... TYPE sqlite and sqlite_scan.)"""
    import duckdb

    connection = connect(system_db(), Scope(frozenset()))
    try:
        for sql in [f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'",
                    "SELECT * FROM read_csv('/etc/passwd')",
                    f"ATTACH '{tmp_path / 'other.duckdb'}' AS other",
                    "INSTALL httpfs",
                    "LOAD httpfs",
                    "SET enable_external_access = true",
                    "SET threads = 1",
                    "RESET lock_configuration"]:
            with pytest.raises(duckdb.Error):
                connection.execute(sql)
        assert not (tmp_path / "out.csv").exists() and not (tmp_path / "other.duckdb").exists()
        with pytest.raises(duckdb.Error):  # attached READ_ONLY
            connection.execute(f"DELETE FROM {ALIAS}.runs_run")
    finally:
        connection.close()
