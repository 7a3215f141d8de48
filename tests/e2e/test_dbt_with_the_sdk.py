"""dbt_task on a real `serve`, driven by the databricks-sdk: a dbt project (a seed, a table model,
two data tests) runs `dbt seed`, `dbt run` and `dbt test` in its own environment built from the
registry, on the embedded DuckDB warehouse and on the Postgres warehouse `pg`; its artifacts
download from runs/get-output's dbt_output, the model's table is in the warehouse, and a job
watching that table is fired by the run."""

import io
import json
import secrets
import tarfile
from datetime import timedelta

import psycopg
import pytest
import requests
from databricks.sdk.service import jobs

from tests.e2e.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
WAIT = timedelta(minutes=10)  # the first run builds the dbt environment


def make_project(workspace, suffix):
    """A dbt project with names of its own: the warehouse outlives the test."""
    root = workspace / f"shop_{suffix}"
    (root / "models").mkdir(parents=True)
    (root / "seeds").mkdir()
    (root / "dbt_project.yml").write_text(f'name: shop_{suffix}\nversion: "1.0"\nprofile: shop\n')
    (root / "seeds" / f"fruits_{suffix}.csv").write_text("id,name\n1,apple\n2,pear\n")
    (root / "models" / f"fruit_names_{suffix}.sql").write_text(
        "{{ config(materialized='table') }}\n"
        f"select id, upper(name) as name from {{{{ ref('fruits_{suffix}') }}}}\n")
    (root / "models" / "schema.yml").write_text(
        f"version: 2\nmodels:\n  - name: fruit_names_{suffix}\n    columns:\n      - name: id\n"
        "        data_tests: [unique, not_null]\n")
    return root


def run_dbt(w, project, **fields):
    job = w.jobs.create(name=f"dbt {project.name}", tasks=[jobs.Task(task_key="models", dbt_task=jobs.DbtTask(
        project_directory=str(project), commands=["dbt seed", "dbt run", "dbt test"], **fields))])
    run = w.jobs.run_now(job_id=job.job_id).result(timeout=WAIT)
    (task,) = run.tasks
    return job, task


def artifacts(server, link):
    """The archive at artifacts_link: pre-signed, as Databricks' links, so fetched without a token."""
    response = requests.get(link, timeout=60)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as archive:
        return {name: json.load(archive.extractfile(name)) for name in archive.getnames() if name.endswith(".json")}


def test_a_dbt_project_builds_its_model_on_duckdb_and_the_job_watching_the_model_runs(sqlite_server):
    server, suffix = sqlite_server, secrets.token_hex(3)
    w = server.client()
    model = f"default.main.fruit_names_{suffix}"
    # The watcher reads the model back from the warehouse through the server: table and trigger at once.
    watcher = w.api_client.do("POST", "/api/2.2/jobs/create", body={
        "name": "on the model", "trigger": {"pause_status": "UNPAUSED", "table_update": {"table_names": [model]}},
        "tasks": [{"task_key": "read", "sql_task": {"warehouse_id": "default", "query": {
            "query_text": f"SELECT id, name FROM main.fruit_names_{suffix} ORDER BY id"}}}]})
    try:
        _, task = run_dbt(w, make_project(server.workspace, suffix))

        assert task.state.result_state == jobs.RunResultState.SUCCESS, task.state.state_message
        output = w.jobs.get_run_output(task.run_id)
        assert "=== dbt command 3 of 3: dbt test" in output.logs and "PASS=2" in output.logs
        files = artifacts(server, output.dbt_output.artifacts_link)
        assert f"model.shop_{suffix}.fruit_names_{suffix}" in files["target/manifest.json"]["nodes"]
        assert [r["status"] for r in files["commands/2/run_results.json"]["results"]] == ["success"]

        (fired,) = wait_until(lambda: list(w.jobs.list_runs(job_id=watcher["job_id"])), timeout=120,
                              what="the run the model's table fired")
        assert fired.trigger == jobs.TriggerType.TABLE
        ended = w.jobs.wait_get_run_job_terminated_or_skipped(run_id=fired.run_id, timeout=WAIT)
        assert ended.state.result_state == jobs.RunResultState.SUCCESS, ended.state.state_message
        read = w.jobs.get_run_output(ended.tasks[0].run_id).logs
        assert "APPLE" in read and "PEAR" in read
    finally:
        w.jobs.delete(watcher["job_id"])


def test_a_dbt_project_builds_its_model_on_postgres_in_the_schema_it_names(sqlite_server):
    server, suffix = sqlite_server, secrets.token_hex(3)
    w = server.client()
    schema = f"dbt_e2e_{suffix}"
    dsn = server.env["LAKEFLOW_WAREHOUSES"].split("=", 1)[1]
    try:
        job, task = run_dbt(w, make_project(server.workspace, suffix), warehouse_id="pg", schema=schema)

        assert task.state.result_state == jobs.RunResultState.SUCCESS, task.state.state_message
        with psycopg.connect(dsn) as conn:
            rows = conn.execute(f"SELECT id, name FROM {schema}.fruit_names_{suffix} ORDER BY id").fetchall()
        assert rows == [(1, "APPLE"), (2, "PEAR")]
        model = f"pg.{schema}.fruit_names_{suffix}"

        def model_lineage():
            return w.api_client.do("GET", "/api/2.0/lineage-tracking/system/table_lineage",
                                   query={"table_name": model})["rows"]

        rows = wait_until(model_lineage, timeout=60, what="the model's lineage")
        assert [(r["target_table_full_name"], r["capture"], r["entity_id"]) for r in rows] == [
            (model, "dbt", str(job.job_id))]
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_a_dbt_project_with_a_compile_error_fails_with_dbts_message(sqlite_server):
    server, suffix = sqlite_server, secrets.token_hex(3)
    w = server.client()
    project = make_project(server.workspace, suffix)
    (project / "models" / "broken.sql").write_text("select * from {{ ref('nowhere') }\n")

    _, task = run_dbt(w, project)

    assert task.state.result_state == jobs.RunResultState.FAILED
    assert "dbt command 1 of 3 (dbt seed) failed" in task.state.state_message
    assert "Compilation Error in model broken (models/broken.sql)" in task.state.state_message
