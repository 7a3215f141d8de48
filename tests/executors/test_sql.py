"""sql_task: statement splitting and marker binding, then real task processes on DuckDB and Postgres."""

import base64
import fcntl
import json
import os
import secrets
import shutil
import threading
import time
from pathlib import Path

import pytest

from runs import sql_tables
from runs.executors import sql
from runs.executors.errors import LaunchError
from runs.executors.launch import prepare_attempt
from runs.executors.supervisor import read_attempt_result, read_log_tail, supervise

FIXTURES = Path(__file__).resolve().with_name("sql")


def run_sql(tmp_path, sql_task, warehouses, attempt="a"):
    """Run one sql_task attempt in a real task process; return (outcome, result, log text)."""
    spec = prepare_attempt({"task_key": "q", "sql_task": sql_task}, attempt_dir=tmp_path / attempt,
                           workspace_root=tmp_path, warehouses=warehouses, other_roots=(FIXTURES,))
    log_path = tmp_path / attempt / "log.txt"
    outcome = supervise(spec, log_path=log_path, timeout_seconds=60)
    return outcome, read_attempt_result(spec, outcome), read_log_tail(log_path)[0]


def inline(query_text, warehouse_id="default", **parameters):
    return {"warehouse_id": warehouse_id, "query": {"query_text": query_text},
            "parameters": parameters}


@pytest.fixture
def duckdb_file(tmp_path):
    return tmp_path / "warehouse" / "warehouse.duckdb"  # the directory does not exist yet


@pytest.fixture
def duckdb_warehouses(duckdb_file):
    return {"default": f"duckdb:///{duckdb_file}"}  # four slashes, as the settings write it


# --- splitting and markers ---------------------------------------------------------------------

def texts(source):
    return [statement.text for statement in sql.split_statements(source)]


def test_statements_split_on_semicolons_outside_strings_comments_and_dollar_quotes():
    assert texts("SELECT 'a;b'; SELECT $$c;d$$;\n-- e; f\nSELECT 3 /* g; h */") == [
        "SELECT 'a;b';", "SELECT $$c;d$$;", "-- e; f\nSELECT 3 /* g; h */"]


def test_empty_and_comment_only_statements_are_skipped():
    assert texts(";;\n-- only a comment\n/* and another */;\nSELECT 1;\n  ;\n-- trailing\n") == [
        "SELECT 1;"]
    assert texts("-- nothing to run\n") == []


def test_a_postgres_function_body_stays_one_statement():
    source = ("CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql;"
              " SELECT f()")
    assert len(texts(source)) == 2


def test_the_log_summary_is_the_first_line_of_code_cut_at_120_characters():
    statement, = sql.split_statements("-- why\n/* how */\nSELECT a,\n  b FROM t")
    assert statement.summary == "SELECT a,"
    long, = sql.split_statements("SELECT " + "x" * 200)
    assert len(long.summary) == 120 and long.summary.endswith("...")


def only(source):
    statement, = sql.split_statements(source)
    return statement


def test_markers_ignore_casts_strings_comments_assignments_and_slices():
    statement = only("SELECT :a, x::INTEGER, 'a:b', \"c:d\", arr[lo:hi], y := 1, $$:e$$ -- :f\n"
                     "/* :g */ FROM t WHERE id = :b AND n = :a::int")
    assert sql.markers(statement) == ["a", "b"]


def test_other_placeholder_styles_are_not_our_markers():
    assert sql.markers(only("SELECT ?, $1, $name, %s, :1")) == []


def test_duckdb_markers_become_dollar_names():
    statement = only("SELECT :a::INTEGER, 'x:y', '50%' WHERE b = :b")
    assert sql.to_driver_sql(statement, "duckdb") == "SELECT $a::INTEGER, 'x:y', '50%' WHERE b = $b"


def test_psycopg_markers_become_pyformat_and_every_other_percent_is_doubled():
    statement = only("SELECT :a, 'x:y' WHERE c LIKE '%100%' -- 5%\n AND b = :b::text")
    assert sql.to_driver_sql(statement, "postgres") == (
        "SELECT %(a)s, 'x:y' WHERE c LIKE '%%100%%' -- 5%%\n AND b = %(b)s::text")


def test_statements_without_markers_are_sent_as_written_without_parameters():
    statement = only("SELECT 'it''s 100%'")
    assert sql.bind([statement], {"a": "1"}, "postgres") == [("SELECT 'it''s 100%'", None)]


def test_bind_passes_each_statement_only_the_values_it_uses():
    statements = sql.split_statements("SELECT :a, :a; SELECT :b")
    assert sql.bind(statements, {"a": "1", "b": "2", "c": "3"}, "duckdb") == [
        ("SELECT $a, $a;", {"a": "1"}), ("SELECT $b", {"b": "2"})]


def test_a_marker_without_a_value_names_the_statement_and_the_known_parameters():
    statements = sql.split_statements("SELECT 1; SELECT :region")
    with pytest.raises(ValueError) as failure:
        sql.bind(statements, {"b": "1", "a": "2"}, "duckdb")
    assert str(failure.value) == ("Statement 2 uses :region, but the task has no parameter "
                                  "'region' (parameters: a, b)")


# --- tables written ----------------------------------------------------------------------------

@pytest.mark.parametrize("statement, tables", [
    ("INSERT INTO orders VALUES (1)", ["main.orders"]),
    ("INSERT OR REPLACE INTO orders BY NAME SELECT 1 AS id", ["main.orders"]),
    ("INSERT OR IGNORE INTO sales.orders (id) VALUES (1)", ["sales.orders"]),
    ("CREATE TABLE t (x INT)", ["main.t"]),
    ("CREATE OR REPLACE TABLE IF NOT EXISTS Sales.T AS SELECT * FROM other", ["sales.t"]),
    ("CREATE UNLOGGED TABLE t (x INT)", ["main.t"]),
    ("UPDATE t SET x = 1 FROM other WHERE other.id = t.id", ["main.t"]),
    ("UPDATE ONLY s.t AS alias SET x = 1", ["s.t"]),
    ("DELETE FROM t USING other WHERE t.id = other.id", ["main.t"]),
    ("MERGE INTO target AS t USING source AS s ON t.id = s.id "
     "WHEN MATCHED THEN UPDATE SET x = s.x WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.x)",
     ["main.target"]),
    ("COPY t FROM '/tmp/in.csv' (HEADER)", ["main.t"]),
    ("COPY s.t (a, b) FROM STDIN", ["s.t"]),
    ("COPY (SELECT * FROM t) TO '/tmp/out.csv'", []),
    ("COPY t TO '/tmp/out.csv'", []),
    ("COPY FROM DATABASE a TO b", []),
    ("TRUNCATE t", ["main.t"]),
    ("TRUNCATE TABLE ONLY a, s.b RESTART IDENTITY", ["main.a", "s.b"]),
    ("ALTER TABLE IF EXISTS t ADD COLUMN y INT", ["main.t"]),
    ("ALTER VIEW v RENAME TO w", []),
    ("CREATE VIEW v AS SELECT * FROM t", []),
    ("CREATE INDEX i ON t (x)", []),
    ("SELECT * FROM t", []),
    ("SELECT 'INSERT INTO t VALUES (1)'", []),
    ("DROP TABLE t", []),
])
def test_the_tables_each_kind_of_statement_writes(statement, tables):
    assert sql_tables.written_tables(statement, default_schema="main") == tables


def test_only_the_target_counts_not_the_tables_read():
    assert sql_tables.written_tables("INSERT INTO t SELECT * FROM other JOIN s.third USING (id)",
                              default_schema="public") == ["public.t"]


def test_a_cte_before_the_statement_is_not_a_target():
    statement = ("WITH x AS (SELECT * FROM a), y (n) AS MATERIALIZED (SELECT 1 FROM b) "
                 "INSERT INTO t SELECT * FROM x, y")
    assert sql_tables.written_tables(statement, default_schema="main") == ["main.t"]
    assert sql_tables.written_tables("WITH x AS (SELECT 1) SELECT * FROM x", default_schema="main") == []


def test_a_data_modifying_cte_writes_its_table_too():
    statement = ("WITH moved AS (DELETE FROM inbox WHERE done RETURNING *) "
                 "INSERT INTO archive SELECT * FROM moved")
    assert sql_tables.written_tables(statement, default_schema="public") == ["public.archive", "public.inbox"]


def test_quoted_names_keep_their_case_and_lose_their_quotes():
    assert sql_tables.written_tables('INSERT INTO "Sales"."Order ""Lines""" VALUES (1)',
                              default_schema="main") == ['Sales.Order "Lines"']
    assert sql_tables.written_tables("insert into SALES.Orders values (1)", default_schema="main") == [
        "sales.orders"]


def test_a_three_part_name_drops_its_database():
    assert sql_tables.written_tables("INSERT INTO warehouse.sales.orders VALUES (1)",
                              default_schema="main") == ["sales.orders"]


def test_names_that_are_also_keywords_are_table_names():
    assert sql_tables.written_tables("INSERT INTO events VALUES (1); UPDATE user SET a = 1; "
                              "DELETE FROM data", default_schema="main") == [
        "main.data", "main.events", "main.user"]


def test_comments_are_not_read_as_sql():
    statement = ("-- INSERT INTO commented\n/* UPDATE also_commented SET x = 1 */\n"
                 "INSERT /* INTO nope */ INTO real_one VALUES ('DELETE FROM nope') -- TRUNCATE x")
    assert sql_tables.written_tables(statement, default_schema="main") == ["main.real_one"]


def test_temporary_tables_are_left_out():
    for statement in ("CREATE TEMP TABLE t AS SELECT 1", "CREATE TEMPORARY TABLE t (x INT)",
                      "CREATE OR REPLACE TEMP TABLE t AS SELECT 1", "INSERT INTO temp.t VALUES (1)",
                      "INSERT INTO temp.main.t VALUES (1)", "INSERT INTO pg_temp.t VALUES (1)"):
        assert sql_tables.written_tables(statement, default_schema="main") == [], statement
    assert sql_tables.written_tables("INSERT INTO temperatures.t VALUES (1)", default_schema="main") == [
        "temperatures.t"]


def writes_of(*texts, dialect="duckdb"):
    writes = sql_tables.TableWrites(dialect)
    for text in texts:
        for statement in sql.split_statements(text):
            writes.ran(statement.text)
    return writes.tables("wh")


def written(result):
    """What the worker makes of a sql_task's report of the statements that ran."""
    ran = result["sql_ran"]
    return sql_tables.tables_written(ran["statements"], warehouse_id=ran["warehouse_id"], dialect=ran["dialect"])


def test_the_run_qualifies_names_with_the_warehouse_and_lists_each_once():
    assert writes_of("INSERT INTO b VALUES (1)", "INSERT INTO a VALUES (1)",
                     "UPDATE main.b SET x = 2") == ["wh.main.a", "wh.main.b"]


def test_writes_to_a_temporary_table_created_earlier_are_left_out():
    assert writes_of("CREATE TEMP TABLE staging (x INT)", "INSERT INTO staging VALUES (1)",
                     "INSERT INTO t SELECT * FROM staging") == ["wh.main.t"]
    # Named with its schema, the permanent table of the same name is meant.
    assert writes_of("CREATE TEMP TABLE t (x INT)", "INSERT INTO main.t VALUES (1)") == ["wh.main.t"]


def test_writes_in_a_transaction_count_once_committed():
    assert writes_of("BEGIN", "INSERT INTO a VALUES (1)") == []  # closing the session rolls back
    assert writes_of("BEGIN TRANSACTION", "INSERT INTO a VALUES (1)", "COMMIT") == ["wh.main.a"]
    assert writes_of("START TRANSACTION", "INSERT INTO a VALUES (1)", "END") == ["wh.main.a"]
    assert writes_of("BEGIN", "INSERT INTO a VALUES (1)", "ROLLBACK",
                     "INSERT INTO b VALUES (1)") == ["wh.main.b"]
    assert writes_of("BEGIN", "INSERT INTO a VALUES (1)", "ROLLBACK TO SAVEPOINT s",
                     "COMMIT") == ["wh.main.a"]  # partly undone: better a trigger too many


# --- values and preview ------------------------------------------------------------------------

def test_values_become_json_safe():
    import datetime
    import decimal
    import uuid

    values = [decimal.Decimal("1.50"), datetime.date(2024, 1, 2), datetime.datetime(2024, 1, 2, 3, 4),
              datetime.time(5, 6), b"\x01\xff", uuid.UUID(int=1), float("nan"), float("-inf"),
              {"k": [decimal.Decimal("2")]}, datetime.timedelta(days=1)]
    assert [sql.json_safe(v) for v in values] == [
        "1.50", "2024-01-02", "2024-01-02T03:04:00", "05:06:00", base64.b64encode(b"\x01\xff").decode(),
        "00000000-0000-0000-0000-000000000001", "NaN", "-Infinity", {"k": ["2"]}, "1 day, 0:00:00"]


def test_repeated_column_names_get_a_suffix():
    assert sql.unique_columns(["a", "a", "b", "a", "a_2"]) == ["a", "a_2", "b", "a_3", "a_2_2"]


def test_duckdb_urls_with_three_or_four_slashes_name_an_absolute_file():
    assert sql.duckdb_path("duckdb:////srv/w.duckdb") == "/srv/w.duckdb"
    assert sql.duckdb_path("duckdb:///srv/w.duckdb") == "/srv/w.duckdb"
    assert sql.duckdb_path("duckdb:///:memory:") == ":memory:"


# --- prepare: configuration errors -------------------------------------------------------------

def prepare(tmp_path, sql_task, warehouses=None):
    return prepare_attempt({"task_key": "q", "sql_task": sql_task}, attempt_dir=tmp_path / "a",
                           workspace_root=tmp_path,
                           warehouses=warehouses or {"default": "duckdb:///:memory:",
                                                     "pg": "postgresql://u:pw@h/db"})


def test_an_unknown_warehouse_lists_the_configured_ones(tmp_path):
    with pytest.raises(LaunchError) as failure:
        prepare(tmp_path, inline("SELECT 1", warehouse_id="x"))
    assert failure.value.code == "RESOURCE_NOT_FOUND"
    assert failure.value.message == ("SQL warehouse 'x' is not configured; configured: default, pg "
                                     "(set LAKEFLOW_WAREHOUSES)")


def test_a_missing_warehouse_id_is_a_configuration_error(tmp_path):
    with pytest.raises(LaunchError) as failure:
        prepare(tmp_path, {"query": {"query_text": "SELECT 1"}})
    assert failure.value.code == "INVALID_RUN_CONFIGURATION"


def test_a_missing_file_names_its_path(tmp_path):
    with pytest.raises(LaunchError) as failure:
        prepare(tmp_path, {"warehouse_id": "default", "file": {"path": "reports/missing.sql"}})
    assert failure.value.code == "RESOURCE_NOT_FOUND"
    assert str(tmp_path / "reports" / "missing.sql") in failure.value.message


@pytest.mark.parametrize("sql_task, words", [
    ({"query": {"query_id": "abc"}}, "saved queries (query_id) are not supported; "
                                     "use query.query_text or file.path"),
    ({"file": {"path": "q.sql", "source": "GIT"}}, "GIT"),
    ({"alert": {"alert_id": "a"}}, "alert is not supported"),
    ({"dashboard": {"dashboard_id": "d"}}, "dashboard is not supported"),
    ({"file": {"path": "q.sql"}, "query": {"query_text": "SELECT 1"}}, "exactly one of file or query"),
    ({}, "exactly one of file or query"),
])
def test_unsupported_sources_are_configuration_errors(tmp_path, sql_task, words):
    with pytest.raises(LaunchError) as failure:
        prepare(tmp_path, {"warehouse_id": "default", **sql_task})
    assert failure.value.code == "INVALID_RUN_CONFIGURATION"
    assert words in failure.value.message


def test_the_spec_names_the_warehouse_the_file_and_the_parameters(tmp_path):
    (tmp_path / "q.sql").write_text("SELECT 1")
    spec = prepare(tmp_path, {"warehouse_id": "pg", "file": {"path": "q.sql"},
                              "parameters": {"n": 3, "s": "x"}})
    written = json.loads(Path(spec.spec_path).read_text())
    assert {k: written[k] for k in ("kind", "warehouse_id", "warehouse_url", "sql_file", "parameters")} == {
        "kind": "sql", "warehouse_id": "pg", "warehouse_url": "postgresql://u:pw@h/db",
        "sql_file": str(tmp_path / "q.sql"), "parameters": {"n": "3", "s": "x"}}


# --- DuckDB ------------------------------------------------------------------------------------

def test_a_file_of_statements_returns_the_preview_of_its_last_select(tmp_path, duckdb_warehouses):
    shutil.copy(FIXTURES / "orders.sql", tmp_path / "orders.sql")
    outcome, result, log = run_sql(tmp_path, {
        "warehouse_id": "default", "file": {"path": "orders.sql"},
        "parameters": {"region": "north", "min_total": "10"}}, duckdb_warehouses)
    assert outcome.succeeded, result.error
    output = result.sql_output
    assert output["columns"] == ["id", "total", "note", "eight"]
    assert output["rows"] == [
        {"id": 1, "total": "10.50", "note": "time 12:30; a:b", "eight": 8},
        {"id": 2, "total": "99.99", "note": "dollar; quoted :x", "eight": 8}]
    assert (output["row_count_shown"], output["truncated"]) == (2, False)
    assert output["query_text"] == (FIXTURES / "orders.sql").read_text()
    assert output["warehouse_id"] == "default"
    assert output["sql_statements"] == [{"lookup_key": f"statement-{n}"} for n in (1, 2, 3)]
    assert output["output_link"] == ""
    assert "[statement 1/3] CREATE TABLE orders" in log and "[statement 3/3] SELECT id, total" in log
    assert "10.50 | time 12:30; a:b" in log


def test_an_absolute_file_path_is_used_as_is(tmp_path, duckdb_warehouses):
    outcome, result, _ = run_sql(tmp_path, {
        "warehouse_id": "default", "file": {"path": str(FIXTURES / "orders.sql")},
        "parameters": {"region": "other", "min_total": "50"}}, duckdb_warehouses)
    assert outcome.succeeded, result.error
    assert [row["id"] for row in result.sql_output["rows"]] == [2]


def test_statements_that_return_no_rows_leave_the_last_preview(tmp_path, duckdb_warehouses):
    outcome, result, _ = run_sql(tmp_path, inline(
        "CREATE TABLE t AS SELECT 1 AS x; SELECT x FROM t; INSERT INTO t VALUES (2); "
        "UPDATE t SET x = 3 WHERE x = 2; SET threads = 1"), duckdb_warehouses)
    assert outcome.succeeded, result.error
    assert result.sql_output["rows"] == [{"x": 1}]


def test_a_task_without_a_select_has_an_empty_preview(tmp_path, duckdb_warehouses):
    _, result, _ = run_sql(tmp_path, inline("CREATE TABLE t (x INTEGER)"), duckdb_warehouses)
    assert {k: result.sql_output[k] for k in ("columns", "rows", "row_count_shown", "truncated")} == {
        "columns": [], "rows": [], "row_count_shown": 0, "truncated": False}


def test_a_marker_without_a_value_fails_before_any_statement_runs(tmp_path, duckdb_warehouses, duckdb_file):
    outcome, result, log = run_sql(tmp_path, inline("CREATE TABLE t (x INTEGER); SELECT :nope", n="1"),
                                   duckdb_warehouses)
    assert outcome.exit_code == 1
    assert result.error == ("Statement 2 uses :nope, but the task has no parameter 'nope' "
                            "(parameters: n)")
    assert result.error_code == "INVALID_RUN_CONFIGURATION"
    assert "[statement 1/2]" not in log and not duckdb_file.exists()


def test_a_sql_error_fails_with_the_database_message_and_the_statement_number(tmp_path, duckdb_warehouses):
    outcome, result, log = run_sql(tmp_path, inline(
        "SELECT 1; SELECT * FROM no_such_table; SELECT 3"), duckdb_warehouses)
    assert outcome.exit_code == 1
    assert result.error.startswith("Statement 2 of 3 failed: Catalog Error: Table with name "
                                   "no_such_table does not exist")
    assert result.error_trace == "SELECT * FROM no_such_table;"
    assert "[statement 3/3]" not in log and result.error.splitlines()[0] in log


def test_at_most_a_thousand_rows_are_shown(tmp_path, duckdb_warehouses):
    _, result, log = run_sql(tmp_path, inline("SELECT range AS n FROM range(1500)"), duckdb_warehouses)
    output = result.sql_output
    assert output["rows"][:2] == [{"n": 0}, {"n": 1}] and len(output["rows"]) == 1000
    assert (output["row_count_shown"], output["truncated"]) == (1000, True)
    assert "(20 of 1000 preview rows (truncated))" in log and "\n19\n" in log and "\n20\n" not in log


def test_wide_rows_are_cut_at_48_kb(tmp_path, duckdb_warehouses):
    _, result, _ = run_sql(tmp_path, inline("SELECT range AS n, repeat('x', 1000) AS wide FROM range(100)"),
                           duckdb_warehouses)
    output = result.sql_output
    assert output["truncated"] is True
    assert 40 < output["row_count_shown"] < 100
    assert len(json.dumps(output["rows"]).encode()) <= 48 * 1024


def test_dates_decimals_and_binary_values_are_json_safe(tmp_path, duckdb_warehouses):
    outcome, result, _ = run_sql(tmp_path, inline(
        "SELECT DATE '2024-01-02' AS d, TIMESTAMP '2024-01-02 03:04:05' AS ts, TIME '06:07:08' AS t, "
        "12.30::DECIMAL(10, 2) AS m, '\\x01'::BLOB AS b, 'nan'::DOUBLE AS f, [1.5::DECIMAL(3, 1)] AS l, "
        "{'k': DATE '2024-01-03'} AS s, '00000000-0000-0000-0000-000000000001'::UUID AS u"),
        duckdb_warehouses)
    assert outcome.succeeded, result.error
    assert result.sql_output["rows"] == [{
        "d": "2024-01-02", "ts": "2024-01-02T03:04:05", "t": "06:07:08", "m": "12.30",
        "b": base64.b64encode(b"\x01").decode(), "f": "NaN", "l": ["1.5"], "s": {"k": "2024-01-03"},
        "u": "00000000-0000-0000-0000-000000000001"}]


def test_two_tasks_on_the_same_file_take_turns(tmp_path, duckdb_warehouses):
    query = ("CREATE TABLE IF NOT EXISTS t (n BIGINT); INSERT INTO t SELECT range FROM range(300000); "
             "INSERT INTO t SELECT range FROM range(300000); SELECT count(*) AS c FROM t")
    results = {}

    def one(name):
        results[name] = run_sql(tmp_path, inline(query), duckdb_warehouses, attempt=name)

    threads = [threading.Thread(target=one, args=(name,)) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = sorted(result.sql_output["rows"][0]["c"] for _, result, _ in results.values())
    assert all(outcome.succeeded for outcome, _, _ in results.values())
    assert counts == [600000, 1200000]


def test_a_task_waits_for_the_warehouse_lock(tmp_path, duckdb_warehouses, duckdb_file):
    duckdb_file.parent.mkdir()
    fd = os.open(f"{duckdb_file}.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    released = threading.Timer(1.0, os.close, (fd,))  # closing the descriptor releases the lock
    released.start()
    started = time.monotonic()
    try:
        outcome, result, log = run_sql(tmp_path, inline("SELECT 1 AS one"), duckdb_warehouses)
    finally:
        released.join()
    assert outcome.succeeded, result.error
    assert "waiting for the warehouse lock" in log
    assert time.monotonic() - started >= 1.0


def run_for_result_file(tmp_path, sql_task, warehouses, attempt="w"):
    """(outcome, the result file as the task process wrote it): it has every key, not only the
    ones the worker reads today."""
    spec = prepare_attempt({"task_key": "q", "sql_task": sql_task}, attempt_dir=tmp_path / attempt,
                           workspace_root=tmp_path, warehouses=warehouses)
    outcome = supervise(spec, log_path=tmp_path / attempt / "log.txt", timeout_seconds=60)
    return outcome, json.loads(Path(spec.result_path).read_text())


MULTI_STATEMENT = """
CREATE SCHEMA IF NOT EXISTS sales;
CREATE TABLE sales.orders (id INT, total INT);
CREATE TABLE "Audit" (msg VARCHAR);
CREATE TEMP TABLE staging AS SELECT 1 AS id, 10 AS total;  -- temporary: not listed
INSERT INTO staging VALUES (2, 20);
INSERT INTO {db}.sales.orders SELECT * FROM staging;
UPDATE sales.orders SET total = total + 1 WHERE id = 1;
WITH big AS (SELECT * FROM sales.orders WHERE total > 15) INSERT INTO "Audit" SELECT 'big' FROM big;
SELECT * FROM sales.orders;
"""


def test_a_duckdb_task_reports_the_tables_it_wrote(tmp_path, duckdb_warehouses):
    (tmp_path / "load.sql").write_text(MULTI_STATEMENT.format(db="warehouse"))
    outcome, result = run_for_result_file(
        tmp_path, {"warehouse_id": "default", "file": {"path": "load.sql"}}, duckdb_warehouses)
    assert outcome.succeeded, result.get("error")
    assert written(result) == ["default.main.Audit", "default.sales.orders"]


def test_a_failed_duckdb_task_still_reports_what_the_statements_before_wrote(
        tmp_path, duckdb_warehouses, duckdb_file):
    import duckdb

    outcome, result = run_for_result_file(tmp_path, inline(
        "CREATE TABLE a (x INT); BEGIN; INSERT INTO a VALUES (1); CREATE TABLE b (x INT); "
        "INSERT INTO missing VALUES (1); COMMIT; CREATE TABLE never (x INT)"), duckdb_warehouses)
    assert outcome.exit_code == 1
    assert result["error"].startswith("Statement 5 of 7 failed")
    # The open transaction was rolled back with the failure: only a's creation happened.
    assert written(result) == ["default.main.a"]
    with duckdb.connect(str(duckdb_file)) as connection:
        assert connection.execute("SELECT table_name FROM duckdb_tables()").fetchall() == [("a",)]


# --- Postgres ----------------------------------------------------------------------------------

PG_URL = "postgresql://{user}@127.0.0.1:5432/test"


@pytest.fixture(scope="module")
def pg_url():
    """The machine's PostgreSQL, which every development and CI machine runs: without it these
    tests fail (like the e2e setup does) rather than skip what they are for."""
    import psycopg

    for user in ("postgres", "root"):
        url = PG_URL.format(user=user)
        try:
            psycopg.connect(url, connect_timeout=3).close()
            return url
        except psycopg.OperationalError:
            continue
    pytest.fail("no PostgreSQL server on 127.0.0.1:5432 (database test, user postgres or root)")


@pytest.fixture
def pg_schema(pg_url):
    """A schema of its own for one test, dropped afterwards."""
    import psycopg

    schema = f"lakeflow_sql_test_{secrets.token_hex(4)}"
    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    yield schema
    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.mark.postgres
def test_postgres_binds_markers_and_keeps_percent_literals(tmp_path, pg_url, pg_schema):
    outcome, result, log = run_sql(tmp_path, inline(
        f"CREATE TABLE {pg_schema}.t (id int, label text);\n"
        f"INSERT INTO {pg_schema}.t VALUES (1, :label), (2, 'plain'), (3, 'it''s 5%');\n"
        f"SELECT id, label, :label = label AS same, 1.50::numeric AS m, DATE '2024-01-02' AS d "
        f"FROM {pg_schema}.t WHERE label LIKE '%100%%' OR id = :id::int ORDER BY id",
        warehouse_id="pg", label="it's 100%", id="2"), {"pg": pg_url})
    assert outcome.succeeded, result.error
    assert result.sql_output["rows"] == [
        {"id": 1, "label": "it's 100%", "same": True, "m": "1.50", "d": "2024-01-02"},
        {"id": 2, "label": "plain", "same": False, "m": "1.50", "d": "2024-01-02"}]
    assert result.sql_output["warehouse_id"] == "pg"
    assert "[statement 3/3] SELECT id, label" in log


@pytest.mark.postgres
def test_each_postgres_statement_commits_and_an_error_carries_the_server_message(tmp_path, pg_url,
                                                                                pg_schema):
    import psycopg

    outcome, result, _ = run_sql(tmp_path, inline(
        f"CREATE TABLE {pg_schema}.kept (id int);\n"
        f"INSERT INTO {pg_schema}.kept VALUES (1);\n"
        f"SELECT * FROM {pg_schema}.missing", warehouse_id="pg"), {"pg": pg_url})
    assert outcome.exit_code == 1
    assert result.error.startswith(f'Statement 3 of 3 failed: relation "{pg_schema}.missing" '
                                   "does not exist")
    assert result.error_trace == f"SELECT * FROM {pg_schema}.missing"
    with psycopg.connect(pg_url) as connection:
        assert connection.execute(f"SELECT id FROM {pg_schema}.kept").fetchall() == [(1,)]


@pytest.mark.postgres
def test_begin_and_commit_in_the_sql_still_group_statements(tmp_path, pg_url, pg_schema):
    outcome, result, _ = run_sql(tmp_path, inline(
        f"CREATE TABLE {pg_schema}.t (id int); BEGIN; INSERT INTO {pg_schema}.t VALUES (1); "
        f"ROLLBACK; SELECT count(*) AS n FROM {pg_schema}.t", warehouse_id="pg"), {"pg": pg_url})
    assert outcome.succeeded, result.error
    assert result.sql_output["rows"] == [{"n": 0}]


@pytest.mark.postgres
def test_a_connection_failure_names_the_warehouse_but_not_the_password(tmp_path):
    outcome, result, _ = run_sql(tmp_path, inline("SELECT 1", warehouse_id="pg"),
                                 {"pg": "postgresql://someone:s3cret@127.0.0.1:1/test"})
    assert outcome.exit_code == 1
    assert result.error.startswith("Cannot connect to SQL warehouse 'pg': ")
    assert "s3cret" not in result.error


@pytest.mark.postgres
def test_a_postgres_task_reports_the_tables_it_wrote(tmp_path, pg_url, pg_schema):
    outcome, result = run_for_result_file(tmp_path, inline(
        f"CREATE TABLE {pg_schema}.orders (id int, total int);\n"
        f"CREATE TEMP TABLE staging AS SELECT 1 AS id, 10 AS total;\n"
        f"INSERT INTO {pg_schema}.orders SELECT * FROM staging;\n"
        f"CREATE TABLE {pg_schema}.\"Archive\" (id int);\n"
        f"WITH gone AS (DELETE FROM {pg_schema}.orders WHERE total > 5 RETURNING id)\n"
        f"  INSERT INTO {pg_schema}.\"Archive\" SELECT id FROM gone;\n"
        f"BEGIN; TRUNCATE {pg_schema}.\"Archive\"; ROLLBACK;\n"
        f"SELECT count(*) FROM test.{pg_schema}.orders",
        warehouse_id="pg"), {"pg": pg_url})
    assert outcome.succeeded, result.get("error")
    assert written(result) == [f"pg.{pg_schema}.Archive", f"pg.{pg_schema}.orders"]


def test_a_commit_or_begin_with_comments_around_it_still_counts():
    assert writes_of("BEGIN; INSERT INTO t VALUES (1); -- publish\nCOMMIT;") == ["wh.main.t"]
    assert writes_of("BEGIN; INSERT INTO t VALUES (1); COMMIT; -- done") == ["wh.main.t"]
    assert writes_of("/* go */ START TRANSACTION; INSERT INTO t VALUES (1); END;", dialect="postgres") == [
        "wh.public.t"]
    assert writes_of("BEGIN; INSERT INTO t VALUES (1); -- undo\nABORT;", dialect="postgres") == []


def test_sql_too_deep_or_too_long_to_parse_is_read_by_its_first_words():
    deep = "INSERT INTO deep SELECT " + "coalesce(" * 400 + "1" + ")" * 400
    assert sql_tables.written_tables(deep, default_schema="main") == ["main.deep"]
    long = "INSERT INTO sales.big VALUES " + ", ".join(["(1)"] * 100_000)
    assert len(long) > sql_tables.MAX_PARSED_CHARS
    assert sql_tables.written_tables(long, default_schema="main") == ["sales.big"]
    assert sql_tables.written_tables('UPDATE "Odd ""Name""" SET x = 1 WHERE ' + "(" * 400 + "1=1" + ")" * 400,
                                     default_schema="main") == ['main.Odd "Name"']
    assert sql_tables.written_tables("SELECT " + "(" * 400 + "1" + ")" * 400, default_schema="main") == []


def test_postgres_statements_sqlglot_does_not_model_are_read_by_their_first_words():
    assert sql_tables.written_tables("SELECT * INTO archive FROM orders", default_schema="public",
                                     dialect="postgres") == ["public.archive"]
    assert sql_tables.written_tables("SELECT * INTO TEMP scratch FROM orders", default_schema="public",
                                     dialect="postgres") == []
    assert sql_tables.written_tables("ALTER TABLE s.staging RENAME TO live", default_schema="public",
                                     dialect="postgres") == ["s.live", "s.staging"]
    # In Postgres, temp is an ordinary schema; in DuckDB, the temporary catalog.
    assert sql_tables.written_tables("INSERT INTO temp.t VALUES (1)", default_schema="public",
                                     dialect="postgres") == ["temp.t"]


def test_a_temporary_table_dropped_and_created_again_for_real_counts():
    assert writes_of("CREATE TEMP TABLE stg (x INT); DROP TABLE stg; CREATE TABLE stg (x INT);") == ["wh.main.stg"]
    assert writes_of("CREATE TEMP TABLE stg (x INT); INSERT INTO stg VALUES (1);") == []


def test_a_run_reports_rows_written_and_the_columns_of_the_tables_it_names(tmp_path, duckdb_warehouses):
    outcome, result, _ = run_sql(tmp_path, inline(
        "CREATE TABLE other (z INT); CREATE TABLE src AS SELECT range AS id, 'x' AS name FROM range(3);"
        "INSERT INTO src VALUES (9, 'y'); SELECT * FROM src"), duckdb_warehouses)
    assert outcome.exit_code == 0
    ran = result.sql_ran
    assert ran["row_counts"] == [None, 3, 1, None]
    assert ran["schema"] == {"main.other": {"z": "INTEGER"}, "main.src": {"id": "BIGINT", "name": "VARCHAR"}}


def test_the_columns_reported_are_only_those_of_tables_the_statements_name(tmp_path, duckdb_warehouses):
    run_sql(tmp_path, inline("CREATE TABLE unrelated (z INT); CREATE TABLE src (id INT)"), duckdb_warehouses, "a")
    _, result, _ = run_sql(tmp_path, inline("INSERT INTO src VALUES (1)"), duckdb_warehouses, "b")
    assert result.sql_ran["schema"] == {"main.src": {"id": "INTEGER"}}
    assert result.sql_ran["row_counts"] == [1]
