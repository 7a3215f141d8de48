"""A trigger's sql_condition evaluated on real warehouses (runs/sql_conditions.py): the embedded
DuckDB one and a created one in a temporary task home, and Postgres; both trigger modes, the
failures that must not start a run (and keep the state), the time limit, the DuckDB file's lock
shared with sql_tasks, and the save-time check of the warehouse ids."""

import secrets
import threading

import duckdb
import psycopg
import pytest
from django.utils import timezone

from jobs.checks import check_settings_against_server
from jobs.spec.settings import SettingsInvalid
from runs.executors.sql import _duckdb_session
from runs.sql_conditions import evaluate_sql_condition
from tests.api.conftest import client_for, make_user, shell_task
from tests.executors.test_sql import pg_url  # noqa: F401 (a fixture)
from warehouses import catalog
from warehouses.models import Warehouse


@pytest.fixture
def warehouse(tmp_path, settings):
    """The embedded warehouse's URL, in a task home of this test's own."""
    home = tmp_path / "task-home"
    home.mkdir()
    settings.LAKEFLOW_TASK_HOME = home
    url = f"duckdb:///{home / 'warehouse' / 'warehouse.duckdb'}"
    settings.LAKEFLOW_WAREHOUSES = {"default": url}
    return url


def sql(url, *statements):
    """Statements run as a sql_task runs them: holding the warehouse's lock."""
    with _duckdb_session(url) as connection:
        for statement in statements:
            connection.execute(statement)


def evaluate(query, previous=None, mode=None, warehouse_id="default"):
    config = {"warehouse_id": warehouse_id, "query": query, **({"trigger_mode": mode} if mode else {})}
    return evaluate_sql_condition(config, previous, job=None, now=timezone.now())


def test_returns_rows_fires_when_the_query_returns_rows(warehouse):
    sql(warehouse, "CREATE TABLE orders AS SELECT * FROM range(3) t(id)")

    result = evaluate("SELECT id FROM orders")

    assert (result.satisfied, result.reason, result.error) == (True, "the query returned 3 rows", None)
    statement_id = result.state["latest_condition_evaluation_sql_statement_id"]
    assert result.state == {"latest_condition_evaluation_satisfied": True,
                            "latest_condition_evaluation_sql_statement_id": statement_id}
    assert result.details == {"condition_evaluation_satisfied": True,
                              "condition_evaluation_sql_statement_id": statement_id}


def test_returns_rows_does_not_fire_on_no_rows_and_each_evaluation_has_its_own_statement_id(warehouse):
    sql(warehouse, "CREATE TABLE orders (id INT)")

    first, second = evaluate("SELECT id FROM orders", mode="QUERY_RETURNS_ROWS"), evaluate("SELECT id FROM orders")

    assert (first.satisfied, first.reason, first.error) == (False, "the query returned no rows", None)
    assert first.state["latest_condition_evaluation_satisfied"] is False
    assert first.details["condition_evaluation_satisfied"] is False
    assert (first.state["latest_condition_evaluation_sql_statement_id"]
            != second.state["latest_condition_evaluation_sql_statement_id"])


def test_value_changes_keeps_a_baseline_then_fires_only_when_the_value_changes(warehouse):
    sql(warehouse, "CREATE TABLE orders AS SELECT * FROM range(4) t(id)")
    query = "SELECT count(*) FROM orders"

    first = evaluate(query, mode="RESULT_VALUE_CHANGES")
    still = evaluate(query, first.state, mode="RESULT_VALUE_CHANGES")
    sql(warehouse, "INSERT INTO orders VALUES (4)")
    changed = evaluate(query, still.state, mode="RESULT_VALUE_CHANGES")

    assert (first.satisfied, first.reason, first.state["last_value"]) == (False, "the first evaluation keeps the value 4 as the baseline", 4)
    assert (still.satisfied, still.reason, still.state["last_value"]) == (False, "the value is still 4", 4)
    assert (changed.satisfied, changed.reason, changed.state["last_value"]) == (True, "the value changed from 4 to 5", 5)
    assert changed.details["condition_evaluation_satisfied"] is True


def test_a_value_is_kept_in_its_json_form(warehouse):
    result = evaluate("SELECT DATE '2024-05-01' + 1", mode="RESULT_VALUE_CHANGES")
    assert result.state["last_value"] == "2024-05-02"
    again = evaluate("SELECT 1.50::DECIMAL(5, 2)", result.state, mode="RESULT_VALUE_CHANGES")
    assert (again.reason, again.state["last_value"]) == ('the value changed from "2024-05-02" to "1.50"', "1.50")


@pytest.mark.parametrize("query, says", [
    ("SELEC 1", "Parser Error"),
    ("SELECT * FROM missing_table", "missing_table does not exist"),
    ("SELECT 1/0::INT AS x FROM range(1) WHERE error('the data is not ready')", "the data is not ready"),
])
def test_a_failing_query_is_an_error_and_keeps_the_state(warehouse, query, says):
    previous = {"latest_condition_evaluation_satisfied": True, "latest_condition_evaluation_sql_statement_id": "s1",
                "last_value": 3}

    result = evaluate(query, previous, mode="RESULT_VALUE_CHANGES")

    assert result.satisfied is False
    assert says in result.error and result.error.startswith("SQL warehouse 'default': ")
    assert result.reason == f"the condition's query failed: {result.error}"
    assert result.state == previous


def test_value_changes_on_a_result_that_is_not_one_cell_is_an_error_and_keeps_the_state(warehouse):
    result = evaluate("SELECT * FROM range(2) t(a), range(1) u(b)", {"last_value": 3}, mode="RESULT_VALUE_CHANGES")

    assert result.satisfied is False
    assert result.error == ("RESULT_VALUE_CHANGES needs a result of one row and one column; "
                            "the query returned 2 rows of 2 columns")
    assert result.state == {"last_value": 3}


@pytest.mark.parametrize("query", ["CREATE TABLE sneaky AS SELECT 1", "SELECT 1; CREATE TABLE sneaky AS SELECT 1"])
def test_a_write_that_reaches_the_warehouse_is_refused_there_too(warehouse, query):
    # The save-time check refuses these; the evaluation does not rely on it.
    result = evaluate(query)

    assert result.error == "SQL warehouse 'default': the query must be one statement that reads (SELECT)"
    with duckdb.connect(warehouse.removeprefix("duckdb://"), read_only=True) as db:
        assert db.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'sneaky'").fetchone() == (0,)


def test_a_query_past_the_time_limit_is_stopped_and_is_an_error(warehouse, settings):
    settings.LAKEFLOW_SQL_CONDITION_TIMEOUT_SECONDS = 1

    result = evaluate("SELECT count(*) FROM range(100000000) a, range(100000000) b", {"last_value": 1})

    assert result.satisfied is False
    # (It says what it was doing: "running the query", unless the machine was too slow to get there.)
    assert result.error.startswith("SQL warehouse 'default': timed out after 1 s ")
    assert result.error.endswith(" (LAKEFLOW_SQL_CONDITION_TIMEOUT_SECONDS)")
    assert result.state == {"last_value": 1}


def test_a_condition_waits_for_a_sql_task_that_holds_the_warehouse_and_times_out_if_it_never_lets_go(
        warehouse, settings):
    sql(warehouse, "CREATE TABLE orders (id INT)")
    settings.LAKEFLOW_SQL_CONDITION_TIMEOUT_SECONDS = 1

    with _duckdb_session(warehouse):  # a sql_task in the middle of its statements
        result = evaluate("SELECT id FROM orders")

    assert result.error == ("SQL warehouse 'default': timed out after 1 s waiting for the warehouse, which a "
                            "task is using (LAKEFLOW_SQL_CONDITION_TIMEOUT_SECONDS)")


def test_a_condition_started_while_a_sql_task_writes_sees_what_the_task_wrote(warehouse):
    sql(warehouse, "CREATE TABLE orders (id INT)")
    results = []

    with _duckdb_session(warehouse) as task:
        evaluation = threading.Thread(target=lambda: results.append(evaluate("SELECT id FROM orders")))
        evaluation.start()
        task.execute("INSERT INTO orders VALUES (1), (2)")
    evaluation.join()

    # Had it opened the file beside the task, DuckDB would have refused it (the file is locked).
    assert (results[0].error, results[0].reason) == (None, "the query returned 2 rows")


def test_an_unknown_warehouse_is_an_error_naming_the_warehouses_there_are(warehouse, db):
    result = evaluate("SELECT 1", {"last_value": 1}, warehouse_id="nope")

    assert result.error == "SQL warehouse 'nope' does not exist; there are: default"
    assert result.state == {"last_value": 1}


@pytest.fixture
def alice(db):
    return make_user("alice")


@pytest.fixture
def api(alice, client):
    return client_for(client, alice)


def created(user, name="analytics", connection_url=None):
    fields = {"name": name, "cluster_size": "2X-Small", "min_num_clusters": 1, "max_num_clusters": 1}
    return catalog.create(fields, connection_url, user)


def test_a_created_warehouse_is_queried_in_its_own_file_and_a_stopped_one_starts(warehouse, alice):
    made = created(alice)
    sql(catalog.url_of(made), "CREATE TABLE answers AS SELECT 42 AS answer")
    catalog.stop(made.id)

    result = evaluate("SELECT answer FROM answers", mode="RESULT_VALUE_CHANGES", warehouse_id=made.id)

    assert (result.satisfied, result.state["last_value"]) == (False, 42)  # the baseline
    assert Warehouse.objects.get(id=made.id).state == Warehouse.State.RUNNING


def test_a_deleted_warehouse_is_an_error(warehouse, alice):
    made = created(alice, name="gone")
    catalog.delete(made.id)

    result = evaluate("SELECT 1", warehouse_id=made.id)

    assert result.error == f"SQL warehouse 'gone' ({made.id}) was deleted"


@pytest.mark.postgres
def test_a_postgres_warehouse_answers_in_a_read_only_transaction(warehouse, settings, pg_url):  # noqa: F811
    table = f"lakeflow_condition_{secrets.token_hex(4)}"
    settings.LAKEFLOW_WAREHOUSES = {**settings.LAKEFLOW_WAREHOUSES, "pg": pg_url}
    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute(f"CREATE TABLE {table} AS SELECT 7 AS n")
    try:
        value = evaluate(f"SELECT n FROM {table} WHERE n::text LIKE '7%'", mode="RESULT_VALUE_CHANGES",
                         warehouse_id="pg")
        write = evaluate(f"DELETE FROM {table}", warehouse_id="pg")
        smuggled = evaluate(f"SELECT 1; COMMIT; DELETE FROM {table}", warehouse_id="pg")
        with psycopg.connect(pg_url) as connection:
            left = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    finally:
        with psycopg.connect(pg_url, autocommit=True) as connection:
            connection.execute(f"DROP TABLE {table}")

    assert (value.satisfied, value.state["last_value"]) == (False, 7)  # the baseline
    assert "cannot execute DELETE in a read-only transaction" in write.error
    assert "cannot insert multiple commands into a prepared statement" in smuggled.error
    assert left == (1,)


@pytest.mark.postgres
def test_a_postgres_query_past_the_time_limit_is_canceled(warehouse, settings, pg_url):  # noqa: F811
    settings.LAKEFLOW_WAREHOUSES = {**settings.LAKEFLOW_WAREHOUSES, "pg": pg_url}
    settings.LAKEFLOW_SQL_CONDITION_TIMEOUT_SECONDS = 1

    result = evaluate("SELECT pg_sleep(30)", warehouse_id="pg")

    # The server cancels it (statement_timeout) or the evaluation's own deadline stops it first.
    assert "statement timeout" in result.error or "timed out after 1 s running the query" in result.error


def test_a_warehouse_that_cannot_be_reached_never_shows_its_password(warehouse, settings):
    settings.LAKEFLOW_WAREHOUSES = {**settings.LAKEFLOW_WAREHOUSES,
                                    "pg": "postgresql://etl:pw-S3cr3t%21@127.0.0.1:1/nowhere?connect_timeout=5"}

    result = evaluate("SELECT 1", warehouse_id="pg")

    assert result.error.startswith("SQL warehouse 'pg': Cannot connect to SQL warehouse 'pg'")
    assert "S3cr3t" not in result.error and "S3cr3t" not in result.reason


# --- at save ---------------------------------------------------------------------------------


def test_saving_a_job_whose_sql_conditions_name_unknown_warehouses_is_refused_at_each_path(warehouse, alice):
    made = created(alice)
    condition = {"query": "SELECT 1", "trigger_mode": "QUERY_RETURNS_ROWS"}
    settings_ = {
        "name": "j",
        "schedule": {"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "UTC",
                     "sql_condition": {**condition, "warehouse_id": "nope"}},
        "trigger": {"periodic": {"interval": 1, "unit": "HOURS"}, "sql_condition": {**condition, "warehouse_id": "default"}},
        "triggers": [{"periodic": {"interval": 1, "unit": "HOURS"}, "sql_condition": {**condition, "warehouse_id": made.id}},
                     {"file_arrival": {"url": "/tmp"}, "sql_condition": {**condition, "warehouse_id": "gone"}}],
    }

    with pytest.raises(SettingsInvalid) as refused:
        check_settings_against_server(settings_)

    ours = [(p.path, p.message) for p in refused.value.problems if "sql_condition" in p.path]
    there_are = ", ".join(sorted(["default", made.id]))
    assert ours == [("schedule.sql_condition.warehouse_id", f"SQL warehouse 'nope' does not exist; there are: {there_are}"),
                    ("triggers[1].sql_condition.warehouse_id", f"SQL warehouse 'gone' does not exist; there are: {there_are}")]


def test_a_deleted_warehouse_cannot_be_named_by_a_new_condition(warehouse, alice):
    made = created(alice)
    catalog.delete(made.id)

    with pytest.raises(SettingsInvalid) as refused:
        check_settings_against_server({"name": "j", "trigger": {"periodic": {"interval": 1, "unit": "HOURS"},
                                                               "sql_condition": {"warehouse_id": made.id, "query": "SELECT 1"}}})

    assert [p.path for p in refused.value.problems] == ["trigger.sql_condition.warehouse_id"]


def test_the_api_refuses_a_bad_condition_then_an_unknown_warehouse_naming_the_field(warehouse, api):
    trigger = {"periodic": {"interval": 1, "unit": "HOURS"},
               "sql_condition": {"warehouse_id": "nope", "query": "DELETE FROM orders"}}
    body = {"name": "gated", "tasks": [shell_task("t")], "trigger": trigger}

    bad_query = api.post("jobs/create", body)
    trigger["sql_condition"]["query"] = "SELECT 1 FROM orders"
    unknown = api.post("jobs/create", body)
    trigger["sql_condition"]["warehouse_id"] = "default"

    assert bad_query.status_code == unknown.status_code == 400
    assert bad_query.json()["error_code"] == unknown.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "trigger.sql_condition.query: must be a query that reads (SELECT, WITH ... SELECT, VALUES), not DELETE" \
        in bad_query.json()["message"]
    assert "trigger.sql_condition.warehouse_id: SQL warehouse 'nope' does not exist; there are: default" \
        in unknown.json()["message"]
    job_id = api.post_ok("jobs/create", body)["job_id"]
    saved = api.get_ok("jobs/get", job_id=job_id)["settings"]["trigger"]["sql_condition"]
    assert (saved["warehouse_id"], saved["query"]) == ("default", "SELECT 1 FROM orders")
