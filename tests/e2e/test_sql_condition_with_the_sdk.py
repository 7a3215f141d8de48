"""A trigger's sql_condition gate on a real `serve`, through the databricks-sdk: a file-arrival
trigger whose condition reads a table a first job's sql_task writes on the embedded DuckDB
warehouse starts no run while the query returns no rows (the trigger's history records that
evaluation), starts one once it does (trigger_info.sql_condition says which evaluation), and
a broken query shows as the trigger's last_failed, never as a run."""

import secrets

import pytest
from databricks.sdk.service import jobs

from tests.e2e.conftest import wait_until
from tests.e2e.test_core_with_the_sdk import WAIT, python_task

pytestmark = pytest.mark.e2e


def raw_job(w, job_id):
    """jobs/get as JSON: the per-trigger state carries our condition state's last value too."""
    return w.api_client.do("GET", "/api/2.2/jobs/get", query={"job_id": job_id})


def gated_settings(server, landing, query):
    # `query` (the condition's SQL text) is this server's extension the SDK does not know: raw JSON.
    return {"name": "gated by a sql_condition",
            "tasks": [python_task(server, "t", "ok.py").as_dict()],
            "triggers": [{"file_arrival": {"url": str(landing)},
                          "sql_condition": {"warehouse_id": "default", "query": query,
                                            "trigger_mode": "QUERY_RETURNS_ROWS"}}]}


def test_a_sql_condition_holds_file_arrivals_back_until_its_query_returns_rows(sqlite_server, tmp_path):
    server, w = sqlite_server, sqlite_server.client()
    table = f"e2e_gate_{secrets.token_hex(3)}"
    landing, writer_sql = tmp_path / "landing", tmp_path / "writer.sql"
    landing.mkdir()
    writer_sql.write_text(f"CREATE TABLE {table} (id INT);\n")
    writer = w.api_client.do("POST", "/api/2.2/jobs/create", body={"name": "writer", "tasks": [
        {"task_key": "w", "sql_task": {"warehouse_id": "default", "file": {"path": str(writer_sql)}}}]})["job_id"]
    assert w.jobs.run_now(job_id=writer).result(timeout=WAIT).state.result_state == jobs.RunResultState.SUCCESS
    gated = w.api_client.do("POST", "/api/2.2/jobs/create",
                            body=gated_settings(server, landing, f"SELECT id FROM {table}"))["job_id"]

    def trigger(what, check):
        return wait_until(lambda: (found := w.jobs.get(gated).trigger_details[0]) and check(found) and found,
                          timeout=60, what=what)

    def history():
        return w.jobs.get(gated).trigger_details[0].history

    def state():
        return raw_job(w, gated)["trigger_details"][0]["state"]

    wait_until(lambda: state()["file_arrival"]["last_checked_time"] > 0, what="the trigger's first look")
    (landing / "1.csv").write_text("id\n")
    held = trigger("the condition's first evaluation", lambda t: t.history and t.history.last_not_triggered)
    assert "its sql_condition was not met: the query returned no rows" in held.history.last_not_triggered.description
    assert state()["sql_condition"]["latest_condition_evaluation_satisfied"] is False
    assert list(w.jobs.list_runs(job_id=gated)) == []  # that evaluation was the firing's answer: no run

    writer_sql.write_text(f"INSERT INTO {table} VALUES (1), (2);\n")
    assert w.jobs.run_now(job_id=writer).result(timeout=WAIT).state.result_state == jobs.RunResultState.SUCCESS
    (landing / "2.csv").write_text("id\n")
    (run,) = wait_until(lambda: list(w.jobs.list_runs(job_id=gated)), what="the gated run")
    assert run.trigger == jobs.TriggerType.FILE_ARRIVAL
    details = w.jobs.get_run(run.run_id).trigger_info.sql_condition
    assert details.condition_evaluation_satisfied is True
    assert details.condition_evaluation_sql_statement_id == \
        state()["sql_condition"]["latest_condition_evaluation_sql_statement_id"]
    fired = history().last_triggered
    assert fired.run_id == run.run_id and "its sql_condition was met: the query returned 2 rows" in fired.description

    # A broken query: the firing is a failed evaluation with the warehouse's error, not a run.
    broken = gated_settings(server, landing, f"SELECT id FROM {table}_missing")
    w.api_client.do("POST", "/api/2.2/jobs/reset", body={"job_id": gated, "new_settings": broken})
    wait_until(lambda: state()["file_arrival"]["files_seen"] == 2, what="the new trigger's first look")
    (landing / "3.csv").write_text("id\n")
    failed = trigger("the broken query's evaluation", lambda t: t.history.last_failed)
    assert f"{table}_missing does not exist" in failed.history.last_failed.description
    assert "Its sql_condition failed" in state()["last_error"]
    assert [r.run_id for r in w.jobs.list_runs(job_id=gated)] == [run.run_id]
    w.jobs.delete(gated)
    w.jobs.delete(writer)
