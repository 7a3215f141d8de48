"""sql_task on warehouses made with the SQL Warehouses API, through the worker: a DuckDB one is a
file of its own (not the embedded warehouse), a Postgres one is the database its connection tag
names, a stopped one starts for the query, a deleted one fails the task saying so."""

import secrets

import duckdb
import psycopg
import pytest
from django.contrib.auth import get_user_model

from runs.admission import create_run
from runs.engine.states import RunResultState as R
from runs.models import TaskRun
from tests.executors.test_sql import pg_url  # noqa: F401 (a fixture)
from tests.runs.conftest import make_job
from warehouses import catalog
from warehouses.models import Warehouse


@pytest.fixture
def alice(transactional_db):
    # Real commits: attempts reach the broker only after their transaction commits.
    return get_user_model().objects.create_user("alice", password="x")


@pytest.fixture(autouse=True)
def task_home(tmp_path, settings):
    home = tmp_path / "task-home"
    home.mkdir()
    settings.LAKEFLOW_TASK_HOME = home
    settings.LAKEFLOW_WORKSPACE_ROOT = tmp_path / "workspace"
    settings.LAKEFLOW_WORKSPACE_ROOT.mkdir()
    settings.LAKEFLOW_WAREHOUSES = {"default": f"duckdb:///{home / 'warehouse' / 'warehouse.duckdb'}"}
    return home


def created(user, name="analytics", connection_url=None):
    fields = {"name": name, "cluster_size": "2X-Small", "min_num_clusters": 1, "max_num_clusters": 1}
    return catalog.create(fields, connection_url, user)


def run_sql(user, warehouse_id, query_text):
    run, _ = create_run(make_job(user, [{"task_key": "q", "sql_task": {
        "warehouse_id": warehouse_id, "query": {"query_text": query_text}}}]))
    return TaskRun.objects.get(run=run, task_key="q", is_current=True)


def test_a_sql_task_writes_to_the_created_warehouses_own_duckdb_file(alice, task_home):
    warehouse = created(alice)

    attempt = run_sql(alice, warehouse.id, "CREATE TABLE answers AS SELECT 42 AS answer; SELECT * FROM answers")

    assert attempt.result_state == R.SUCCESS, attempt.state_message
    assert attempt.sql_output["rows"] == [{"answer": 42}]
    with duckdb.connect(str(task_home / "warehouse" / f"{warehouse.id}.duckdb"), read_only=True) as db:
        assert db.sql("SELECT answer FROM answers").fetchall() == [(42,)]
    embedded = task_home / "warehouse" / "warehouse.duckdb"
    if embedded.exists():  # another test's task may have made it; it must not have the table
        with duckdb.connect(str(embedded), read_only=True) as db:
            assert db.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'answers'").fetchone() == (0,)


def test_a_query_on_a_stopped_warehouse_starts_it(alice):
    warehouse = created(alice)
    catalog.stop(warehouse.id)

    attempt = run_sql(alice, warehouse.id, "SELECT 1 AS one")

    assert attempt.result_state == R.SUCCESS, attempt.state_message
    assert Warehouse.objects.get(id=warehouse.id).state == Warehouse.State.RUNNING


def test_a_task_on_a_deleted_warehouse_fails_saying_so(alice):
    warehouse = created(alice, name="gone")
    job = make_job(alice, [{"task_key": "q", "sql_task": {"warehouse_id": warehouse.id,
                                                           "query": {"query_text": "SELECT 1"}}}])
    catalog.delete(warehouse.id)

    run, _ = create_run(job)
    attempt = TaskRun.objects.get(run=run, task_key="q", is_current=True)

    assert attempt.result_state == R.FAILED
    assert attempt.state_message == f"SQL warehouse 'gone' ({warehouse.id}) was deleted"


@pytest.mark.postgres
def test_a_postgres_warehouse_runs_on_the_database_of_its_connection(alice, pg_url):  # noqa: F811
    schema = f"lakeflow_wh_{secrets.token_hex(4)}"
    warehouse = created(alice, name="pg-made", connection_url=pg_url)
    try:
        attempt = run_sql(alice, warehouse.id, f"CREATE SCHEMA {schema}; CREATE TABLE {schema}.t AS SELECT 7 AS n")

        assert attempt.result_state == R.SUCCESS, attempt.state_message
        with psycopg.connect(pg_url) as connection:
            assert connection.execute(f"SELECT n FROM {schema}.t").fetchall() == [(7,)]
    finally:
        with psycopg.connect(pg_url, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
