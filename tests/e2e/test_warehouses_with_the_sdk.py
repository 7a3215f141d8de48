"""The SQL Warehouses API with the official databricks-sdk against a real server, on both modes:
create_and_wait, list and get, a job whose sql_task runs on the new warehouse (its result read
back), stop, a query that starts it again, edit, and delete (a task on it then fails saying so)."""

import secrets
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, InvalidParameterValue, NotFound, PermissionDenied
from databricks.sdk.service import jobs
from databricks.sdk.service.sql import EndpointTagPair, EndpointTags, State

pytestmark = pytest.mark.e2e


def sql_job(server, w, name, warehouse_id, query_text):
    """A job of one sql_task, its SQL in a workspace file (the SDK has no inline query_text)."""
    path = server.workspace / f"{secrets.token_hex(4)}.sql"
    path.write_text(query_text)
    return w.jobs.create(name=name, tasks=[jobs.Task(task_key="q", sql_task=jobs.SqlTask(
        warehouse_id=warehouse_id, file=jobs.SqlTaskFile(path=str(path))))]).job_id


def run_and_wait(w, job_id):
    run = w.jobs.run_now_and_wait(job_id=job_id, timeout=timedelta(minutes=3))
    return run, run.tasks[0]


def preview_rows(w, task_run_id):
    """The preview's rows (ours beside Databricks' fields: the SDK's SqlQueryOutput drops them)."""
    raw = w.api_client.do("GET", "/api/2.2/jobs/runs/get-output", query={"run_id": task_run_id})
    return raw["sql_output"]["query_output"]["rows"]


def test_a_created_warehouse_runs_sql_tasks_through_its_life(server):
    w = server.client()
    name = f"e2e analytics {secrets.token_hex(3)}"

    created = w.warehouses.create_and_wait(name=name, cluster_size="2X-Small", max_num_clusters=1,
                                           tags=EndpointTags(custom_tags=[EndpointTagPair(key="team", value="e2e")]))
    assert created.state == State.RUNNING and created.name == name and created.cluster_size == "2X-Small"
    listed = {warehouse.id: warehouse for warehouse in w.warehouses.list()}
    assert listed[created.id].name == name and "default" in listed
    assert w.warehouses.get(created.id).tags.custom_tags[0].value == "e2e"

    job_id = sql_job(server, w, f"on {name}", created.id, "CREATE OR REPLACE TABLE e2e_made AS SELECT 42 AS answer; "
                                                  "SELECT answer FROM e2e_made")
    run, task = run_and_wait(w, job_id)
    assert task.state.result_state == jobs.RunResultState.SUCCESS, task.state.state_message
    output = w.jobs.get_run_output(task.run_id).sql_output.query_output
    assert output.warehouse_id == created.id
    # The warehouse is a DuckDB file of its own, beside the embedded one.
    task_home = Path(server.env.get("LAKEFLOW_TASK_HOME") or f"{server.env['LAKEFLOW_HOME']}-tasks")
    duckdb_file = task_home / "warehouse" / f"{created.id}.duckdb"
    assert duckdb_file.is_file()

    w.warehouses.stop_and_wait(created.id)
    assert w.warehouses.get(created.id).state == State.STOPPED
    reader = sql_job(server, w, f"read {name}", created.id, "SELECT answer FROM e2e_made")
    _, task = run_and_wait(w, reader)  # a query on a stopped warehouse starts it
    assert task.state.result_state == jobs.RunResultState.SUCCESS, task.state.state_message
    assert preview_rows(w, task.run_id) == [{"answer": 42}]
    assert w.warehouses.get(created.id).state == State.RUNNING

    edited = w.warehouses.edit_and_wait(created.id, name=f"{name} (medium)", cluster_size="Medium",
                                        max_num_clusters=2)
    assert (edited.name, edited.cluster_size, edited.max_num_clusters) == (f"{name} (medium)", "Medium", 2)
    with pytest.raises(InvalidParameterValue, match="auto_stop_mins"):
        w.warehouses.edit(created.id, auto_stop_mins=5)

    w.warehouses.delete(created.id)
    assert w.warehouses.get(created.id).state == State.DELETED
    assert not duckdb_file.exists()
    [kept] = (duckdb_file.parent / "deleted").glob(f"{created.id}-*.duckdb")  # its data is kept
    with duckdb.connect(str(kept), read_only=True) as kept_warehouse:
        assert kept_warehouse.execute("SELECT answer FROM e2e_made").fetchall() == [(42,)]
    assert created.id not in {warehouse.id for warehouse in w.warehouses.list()}
    _, task = run_and_wait(w, reader)
    assert task.state.result_state == jobs.RunResultState.FAILED
    assert "was deleted" in task.state.state_message


def test_configured_warehouses_are_read_only_and_users_may_only_read(server):
    w = server.client()

    assert w.warehouses.get("default").state == State.RUNNING
    with pytest.raises(DatabricksError, match="LAKEFLOW_WAREHOUSES"):
        w.warehouses.delete("pg")
    with pytest.raises(NotFound):
        w.warehouses.get("0123456789abcdef")

    # A user of no group (createapitoken makes the user): reads warehouses, changes none.
    reader = WorkspaceClient(host=server.url, token=server.manage(
        "createapitoken", f"e2e-reader-{secrets.token_hex(3)}").strip().splitlines()[-1])
    assert "default" in {warehouse.id for warehouse in reader.warehouses.list()}
    with pytest.raises(PermissionDenied):
        reader.warehouses.create(name=f"e2e refused {secrets.token_hex(3)}", cluster_size="2X-Small")
    with pytest.raises(PermissionDenied):
        reader.warehouses.stop("default")
