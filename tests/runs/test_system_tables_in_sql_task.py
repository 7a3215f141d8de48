"""A sql_task's query of system.lakeflow.job_run_timeline sees the run that just finished, as the
run's run-as identity: the task process asks the server (a live one here), which reads our
database (runs/executors/sql.py, system_tables/api.py)."""

import pytest

from runs.admission import create_run
from runs.engine.states import RunResultState as R
from runs.models import TaskRun
from tests.system_tables.conftest import make_job, make_user, shell, system_db  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("system_db")


@pytest.fixture
def server(live_server, settings, tmp_path):
    settings.LAKEFLOW_BASE_URL = live_server.url
    settings.LAKEFLOW_TASK_HOME = tmp_path / "task-home"
    settings.LAKEFLOW_TASK_HOME.mkdir()
    settings.LAKEFLOW_WORKSPACE_ROOT = tmp_path
    settings.LAKEFLOW_WAREHOUSES = {"default": f"duckdb:///{tmp_path / 'warehouse.duckdb'}"}
    return live_server


def sql_job(user, text):
    return make_job(user, [{"task_key": "q", "sql_task": {"warehouse_id": "default", "query": {"query_text": text}}}],
                    name="report")


def test_a_sql_task_sees_the_run_that_just_finished(server):
    alice, bob = make_user("alice"), make_user("bob")
    finished, _ = create_run(make_job(alice, [shell("a")], name="etl"))
    finished.refresh_from_db()
    assert finished.result_state == R.SUCCESS
    others, _ = create_run(make_job(bob, [shell("b")], name="bob's"))

    run, _ = create_run(sql_job(alice, f"""
        CREATE OR REPLACE TABLE warehouse_side AS SELECT 1 AS one;
        SELECT job_id, run_id, result_state FROM system.lakeflow.job_run_timeline
        WHERE run_id IN ({finished.id}, {others.id}) AND result_state IS NOT NULL"""))

    attempt = TaskRun.objects.get(run=run, task_key="q")
    assert attempt.result_state == R.SUCCESS, attempt.error
    # bob's run is not alice's to see
    assert attempt.sql_output["rows"] == [{"job_id": finished.job_id, "run_id": finished.id, "result_state": "SUCCEEDED"}]


def test_a_statement_that_writes_from_system_tables_fails_saying_why(server):
    alice = make_user("alice")

    run, _ = create_run(sql_job(alice, "CREATE TABLE copied AS SELECT * FROM system.lakeflow.jobs"))

    attempt = TaskRun.objects.get(run=run, task_key="q")
    assert attempt.result_state == R.FAILED
    assert "Statement 1 of 1 failed: Only queries" in attempt.error
    assert "cannot write to the warehouse" in attempt.error
