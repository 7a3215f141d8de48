"""System tables end to end, on both modes: a job runs, then another job's sql_task queries
system.lakeflow.job_run_timeline for that run and finds it finished, read back through the
databricks-sdk. The task process asks the server over HTTP (its attempt's credential), which
reads the live database (SQLite, or Postgres in the scale-out mode)."""

import secrets
from datetime import timedelta

import pytest
from databricks.sdk.service import jobs

pytestmark = pytest.mark.e2e


def test_a_sql_task_sees_the_run_that_just_finished(server):
    w = server.client()
    first = w.jobs.create(name=f"e2e etl {secrets.token_hex(3)}", tasks=[jobs.Task(
        task_key="load", spark_python_task=jobs.SparkPythonTask(python_file=server.script("ok.py")))]).job_id
    finished = w.jobs.run_now_and_wait(job_id=first, timeout=timedelta(minutes=3))
    assert finished.state.result_state == jobs.RunResultState.SUCCESS

    query = server.workspace / f"{secrets.token_hex(4)}.sql"
    query.write_text(f"""
        SELECT job_id, run_id, result_state, trigger_type, run_duration_seconds > 0 AS took_time
        FROM system.lakeflow.job_run_timeline
        WHERE run_id = {finished.run_id} AND result_state IS NOT NULL;
    """)
    reader = w.jobs.create(name=f"e2e system tables {secrets.token_hex(3)}", tasks=[jobs.Task(
        task_key="q", sql_task=jobs.SqlTask(warehouse_id="default", file=jobs.SqlTaskFile(path=str(query))))]).job_id
    run = w.jobs.run_now_and_wait(job_id=reader, timeout=timedelta(minutes=3))

    assert run.state.result_state == jobs.RunResultState.SUCCESS, run.state.state_message
    task_run = run.tasks[0].run_id
    output = w.jobs.get_run_output(task_run).sql_output.query_output
    assert output.warehouse_id == "default" and "system.lakeflow.job_run_timeline" in output.query_text
    # The preview's rows are ours beside Databricks' fields: the SDK's SqlQueryOutput drops them.
    raw = w.api_client.do("GET", "/api/2.2/jobs/runs/get-output", query={"run_id": task_run})
    assert raw["sql_output"]["query_output"]["rows"] == [{
        "job_id": first, "run_id": finished.run_id, "result_state": "SUCCEEDED", "trigger_type": "ONE_TIME",
        "took_time": True}]
