"""What may run over the system tables and what it becomes (runs/executors/system_statements.py):
pure, no database."""

import pytest

from runs.executors.system_statements import Refused, checked
from runs.executors.system_views import ALIAS


@pytest.mark.parametrize("sql, runs", [
    ("SELECT * FROM system.lakeflow.jobs", "SELECT * FROM lakeflow.jobs"),
    ("select * from SYSTEM.LAKEFLOW.JOB_RUN_TIMELINE", "SELECT * FROM lakeflow.job_run_timeline"),
    ('SELECT * FROM "system"."access"."audit"', "SELECT * FROM access.audit"),
    ("SELECT * FROM lakeflow.task_usage", "SELECT * FROM lakeflow.task_usage"),
    ("FROM system.access.table_lineage SELECT entity_id", "SELECT entity_id FROM access.table_lineage"),
    ("SELECT system.lakeflow.jobs.name FROM system.lakeflow.jobs", "SELECT lakeflow.jobs.name FROM lakeflow.jobs"),
    ("WITH last AS (SELECT * FROM system.lakeflow.jobs) SELECT * FROM last",
     "WITH last AS (SELECT * FROM lakeflow.jobs) SELECT * FROM last"),
    ("SELECT k FROM system.lakeflow.job_tasks t, unnest(t.depends_on_keys) AS u(k)",
     "SELECT k FROM lakeflow.job_tasks AS t JOIN UNNEST(t.depends_on_keys) AS u(k) ON TRUE"),
    ("SELECT * FROM system.lakeflow.jobs WHERE change_time > now() - INTERVAL 1 DAY",
     "SELECT * FROM lakeflow.jobs WHERE change_time > CAST(CURRENT_TIMESTAMP AS TIMESTAMP) - INTERVAL '1' DAY"),
    ("SELECT * FROM system.lakeflow.jobs WHERE job_id = :job", "SELECT * FROM lakeflow.jobs WHERE job_id = $job"),
    ("SELECT 1;", "SELECT 1"),
    ("WITH a AS (SELECT 1 AS x), b AS (SELECT * FROM a) SELECT * FROM (WITH c AS (SELECT * FROM b) SELECT * FROM c)",
     "WITH a AS (SELECT 1 AS x), b AS (SELECT * FROM a) SELECT * FROM (WITH c AS (SELECT * FROM b) SELECT * FROM c)"),
    ("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) SELECT * FROM t",
     "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) SELECT * FROM t"),
])
def test_a_query_of_the_system_tables_runs_on_their_views(sql, runs):
    assert checked(sql) == runs


@pytest.mark.parametrize("sql, says", [
    (f"SELECT * FROM {ALIAS}.runs_run", "is not a system table"),
    ("SELECT * FROM runs_run", "is not a system table"),
    ("SELECT * FROM system.lakeflow.secrets", "is not a system table"),
    ("SELECT * FROM system.main.duckdb_tables", "is not a system table"),
    (f"SELECT * FROM system.lakeflow.jobs WHERE job_id IN (SELECT job_id FROM {ALIAS}.runs_run)", "not a system table"),
    (f"WITH x AS (SELECT 1) SELECT * FROM {ALIAS}.x", "not a system table"),
    # A name outside its CTE's scope is DuckDB's own catalog (duckdb_databases: the attached
    # database's connection string, password included).
    ("SELECT path FROM (WITH duckdb_databases AS (SELECT 1) SELECT 1), duckdb_databases", "not a system table"),
    ("WITH duckdb_databases AS (SELECT * FROM duckdb_databases) SELECT path FROM duckdb_databases",
     "not a system table"),
    ("WITH a AS (SELECT * FROM duckdb_tables), duckdb_tables AS (SELECT 1) SELECT * FROM a", "not a system table"),
    ("WITH RECURSIVE duckdb_databases AS (SELECT path FROM duckdb_databases UNION ALL "
     "SELECT path FROM duckdb_databases WHERE false) SELECT * FROM duckdb_databases", "not a system table"),
    ("(WITH pragma_database_list AS (SELECT 1) SELECT 1) UNION ALL SELECT file FROM pragma_database_list",
     "not a system table"),
    ("SELECT * FROM sqlite_scan('/etc/passwd', 'x')", "not available"),
    (f"SELECT * FROM query_table('{ALIAS}.runs_run')", "not available"),
    (f"SELECT * FROM query('SELECT * FROM {ALIAS}.runs_run')", "not available"),
    ("SELECT * FROM postgres_query('db', 'SELECT 1')", "not available"),
    ("SELECT * FROM read_csv('/etc/passwd')", "not available"),
    ("SELECT * FROM read_text('/etc/passwd')", "not available"),
    ("SELECT * FROM '/etc/passwd'", "not a system table"),
    ("SELECT * FROM duckdb_views()", "not available"),
    ("SELECT current_setting('threads')", "not available"),
    ("ATTACH '/tmp/x.sqlite3' AS x (TYPE sqlite)", "Only queries"),
    ("DETACH lakeflow_db", "Only queries"),
    ("COPY (SELECT * FROM system.lakeflow.jobs) TO '/tmp/jobs.csv'", "Only queries"),
    ("EXPORT DATABASE '/tmp/all'", "Cannot read the query"),  # sqlglot has no EXPORT: refused unread
    ("INSTALL httpfs", "Only queries"),
    ("LOAD httpfs", "Only queries"),
    ("SET enable_external_access = true", "Only queries"),
    ("RESET lock_configuration", "Only queries"),
    ("PRAGMA database_list", "Only queries"),
    ("USE lakeflow_db", "Only queries"),
    ("SELECT 1 INTO stolen", "Only queries"),
    ("CREATE VIEW lakeflow.jobs AS SELECT 1", "Only queries"),
    ("DROP VIEW lakeflow.jobs", "Only queries"),
    ("INSERT INTO lakeflow.jobs VALUES (1)", "Only queries"),
    ("DESCRIBE system.lakeflow.jobs", "Only queries"),
    ("SELECT 1; SELECT 2", "one query at a time"),
    ("", "no query"),
    ("SELEC 1", "Cannot read the query"),
])
def test_anything_else_is_refused_saying_why(sql, says):
    with pytest.raises(Refused, match=says):
        checked(sql)


def test_a_refusal_of_an_unknown_table_lists_the_tables():
    with pytest.raises(Refused) as refused:
        checked("SELECT * FROM system.lakeflow.job_runs")
    assert "system.lakeflow.job_run_timeline" in str(refused.value)
