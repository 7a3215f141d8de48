"""Issue 14 end to end, through the official databricks-sdk against real processes: job A's SQL
tasks write bronze -> silver on the embedded DuckDB; job B, fired by a table-update trigger on
silver, "writes" gold in a Python task that sends OpenLineage with the stock client; a Postgres
warehouse pipeline the same way. The Databricks lineage API, column lineage and the system-table
rows answer from what was captured; a real OpenLineage receiver gets every attempt's events."""

import json
import secrets
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
from databricks.sdk.service import jobs

from tests.e2e.conftest import start_serve, wait_until
from tests.e2e.test_security_over_http import signed_in
from tests.e2e.test_core_with_the_sdk import WAIT

pytestmark = pytest.mark.e2e

EMIT_OPENLINEAGE = """
    import datetime, uuid
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import column_lineage_dataset as cl, output_statistics_output_dataset as st

    source, target = "{source}", "{target}"
    column = cl.ColumnLineageDatasetFacet(fields={{"total": cl.Fields(
        inputFields=[cl.InputField(namespace="lakeflow", name=source, field="id")],
        transformationDescription="", transformationType="")}})
    OpenLineageClient().emit(RunEvent(  # configured by OPENLINEAGE_URL / OPENLINEAGE_API_KEY
        eventType=RunState.COMPLETE, eventTime=datetime.datetime.now(datetime.timezone.utc).isoformat(),
        run=Run(runId=str(uuid.uuid4())), job=Job(namespace="lakeflow", name="gold builder"), producer="e2e",
        inputs=[InputDataset(namespace="lakeflow", name=source)],
        outputs=[OutputDataset(namespace="lakeflow", name=target, facets={{"columnLineage": column}},
                               outputFacets={{"outputStatistics": st.OutputStatisticsOutputDatasetFacet(rowCount=3)}})]))
    print("sent")
"""


def lineage_api(w, endpoint, **query):
    return w.api_client.do("GET", f"/api/2.0/lineage-tracking/{endpoint}", query=query)


def sql_task(key, warehouse, text, depends_on=()):
    return {"task_key": key, "sql_task": {"warehouse_id": warehouse, "query": {"query_text": text}},
            "depends_on": [{"task_key": d} for d in depends_on]}


def names(entries):
    return sorted(f"{e['tableInfo']['catalog_name']}.{e['tableInfo']['schema_name']}.{e['tableInfo']['name']}"
                  for e in entries)


def test_tables_written_by_sql_and_openlineage_chain_across_a_triggered_job(server):
    w = server.client()
    suffix = secrets.token_hex(3)
    bronze, silver, gold = (f"default.main.{layer}_{suffix}" for layer in ("bronze", "silver", "gold"))
    script = server.workspace / f"emit_{suffix}.py"
    script.write_text(textwrap.dedent(EMIT_OPENLINEAGE.format(source=silver, target=gold)))
    job_b = w.jobs.create(name=f"gold {suffix}", trigger=jobs.TriggerSettings(
        pause_status=jobs.PauseStatus.UNPAUSED,
        table_update=jobs.TableUpdateTriggerConfiguration(table_names=[silver])),
        tasks=[jobs.Task(task_key="gold", spark_python_task=jobs.SparkPythonTask(python_file=str(script)))])
    job_a = w.api_client.do("POST", "/api/2.2/jobs/create", body={"name": f"silver {suffix}", "tasks": [
        sql_task("bronze_load", "default", f"CREATE OR REPLACE TABLE bronze_{suffix} AS "
                                           "SELECT range AS id, 'n' || range AS name FROM range(3)"),
        sql_task("silver_build", "default", f"CREATE OR REPLACE TABLE silver_{suffix} AS "
                                            f"SELECT id, upper(name) AS name FROM bronze_{suffix}",
                 depends_on=["bronze_load"]),
    ]})["job_id"]
    try:
        run_a = w.jobs.run_now(job_id=job_a).result(timeout=WAIT)
        assert run_a.state.result_state == jobs.RunResultState.SUCCESS
        (run_b,) = wait_until(lambda: list(w.jobs.list_runs(job_id=job_b.job_id)), what="the table-update run")
        ended = w.jobs.wait_get_run_job_terminated_or_skipped(run_id=run_b.run_id, timeout=WAIT)
        assert ended.state.result_state == jobs.RunResultState.SUCCESS, ended.state.state_message

        # Capture is a reaction to each attempt's end: wait for it, not for time.
        around_silver = wait_until(lambda: (lambda body: names(body.get("upstreams", [])) and
                                            names(body.get("downstreams", [])) and body)(
            lineage_api(w, "table-lineage", table_name=silver, include_entity_lineage="true")),
            what="silver's lineage both ways")
        assert names(around_silver["upstreams"]) == [bronze]
        assert around_silver["upstreams"][0]["jobInfos"] == [{"job_id": job_a, "workspace_id": 0}]
        assert names(around_silver["downstreams"]) == [gold]
        assert around_silver["downstreams"][0]["jobInfos"] == [{"job_id": job_b.job_id, "workspace_id": 0}]
        assert around_silver["upstreams"][0]["tableInfo"]["table_type"] == "TABLE"

        name_from = lineage_api(w, "column-lineage", table_name=silver, column_name="name")
        assert name_from["upstream_cols"] == [{"name": "name", "catalog_name": "default", "schema_name": "main",
                                               "table_name": f"bronze_{suffix}"}]
        total_from = lineage_api(w, "column-lineage", table_name=gold, column_name="total")
        assert [c["name"] for c in total_from["upstream_cols"]] == ["id"]

        rows = lineage_api(w, "system/table_lineage", run_id=run_a.run_id)["rows"]
        assert {(r["source_table_full_name"], r["target_table_full_name"], r["entity_id"]) for r in rows} == {
            (bronze, None, str(job_a)), (None, bronze, str(job_a)), (None, silver, str(job_a))}
        assert {r["entity_run_id"] for r in rows} == {str(run_a.run_id)}
        gold_rows = lineage_api(w, "system/table_lineage", table_name=gold)["rows"]
        assert [(r["target_table_full_name"], r["capture"], r["entity_id"]) for r in gold_rows] == [
            (gold, "openlineage", str(job_b.job_id))]

        # The pages walk the same lineage with recursive SQL, on this mode's database.
        browser = signed_in(server, "admin", server.env["LAKEFLOW_ADMIN_PASSWORD"])
        graph = browser.get(f"{server.url}/lineage/", params={"table": silver, "depth": 3}, timeout=60)
        assert graph.status_code == 200 and all(name.split(".")[-1] in graph.text for name in (bronze, silver, gold))
        table = browser.get(f"{server.url}/lineage/tables/{silver}/", timeout=60)
        assert table.status_code == 200 and f"gold_{suffix}" in table.text.split("Downstream impact")[1]
    finally:
        w.jobs.delete(job_b.job_id)
        w.jobs.delete(job_a)


def test_a_postgres_warehouse_pipeline_has_table_and_column_lineage(server):
    w = server.client()
    suffix = secrets.token_hex(3)
    raw, clean = f"e2e_raw_{suffix}", f"e2e_clean_{suffix}"
    job = w.api_client.do("POST", "/api/2.2/jobs/create", body={"name": f"pg {suffix}", "tasks": [
        sql_task("load", "pg", f"CREATE TABLE {raw} (id int, amount numeric); "
                               f"INSERT INTO {raw} VALUES (1, 2.5), (2, 4)"),
        sql_task("clean", "pg", f"CREATE TABLE {clean} AS SELECT id, amount * 2 AS doubled FROM {raw} WHERE id > 0",
                 depends_on=["load"]),
    ]})["job_id"]
    try:
        run = w.jobs.run_now(job_id=job).result(timeout=WAIT)
        assert run.state.result_state == jobs.RunResultState.SUCCESS
        body = wait_until(lambda: (lambda b: b.get("upstreams") and b)(
            lineage_api(w, "table-lineage", table_name=f"pg.public.{clean}")), what="the clean table's lineage")
        assert names(body["upstreams"]) == [f"pg.public.{raw}"]
        doubled = lineage_api(w, "column-lineage", table_name=f"pg.public.{clean}", column_name="doubled")
        assert [(c["table_name"], c["name"]) for c in doubled["upstream_cols"]] == [(raw, "amount")]
        rows = lineage_api(w, "system/table_lineage", table_name=f"pg.public.{raw}")["rows"]
        writes = [r for r in rows if r["target_table_full_name"] == f"pg.public.{raw}"]
        assert writes and writes[0]["capture"] == "sql"
    finally:
        with psycopg.connect(server.env["LAKEFLOW_WAREHOUSES"].split("=", 1)[1], autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {clean}")
            conn.execute(f"DROP TABLE IF EXISTS {raw}")
        w.jobs.delete(job)


class Receiver(BaseHTTPRequestHandler):
    """An OpenLineage endpoint that keeps what it gets (a real HTTP server, not a mock)."""

    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, self.headers.get("Authorization"), json.loads(body)))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_every_attempt_is_exported_to_an_openlineage_endpoint(tmp_path_factory):
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    server = start_serve(tmp_path_factory.mktemp("serve-export"), "serve (export)", "--no-demo", extra_env={
        "LAKEFLOW_OPENLINEAGE_EXPORT_URL": f"http://127.0.0.1:{receiver.server_port}",
        "LAKEFLOW_OPENLINEAGE_EXPORT_API_KEY": "e2e-key"})
    try:
        w = server.client()
        job = w.api_client.do("POST", "/api/2.2/jobs/create", body={"name": "exported", "tasks": [
            sql_task("write", "default", "CREATE OR REPLACE TABLE exported AS SELECT 1 AS id")]})["job_id"]
        run = w.jobs.run_now(job_id=job).result(timeout=WAIT)
        (attempt,) = run.tasks
        events = wait_until(lambda: (lambda got: got if {e["eventType"] for e in got} == {"START", "COMPLETE"} else None)(
            [e for _, _, e in Receiver.received]), timeout=120, what="START and COMPLETE")
        # At least once (a send that timed out after the receiver took it goes again): never a third kind.
        assert {e["eventType"] for e in events} == {"COMPLETE", "START"}
        complete = next(e for e in events if e["eventType"] == "COMPLETE")
        assert complete["job"]["namespace"] == "lakeflow" and complete["job"]["name"] == f"job_{job}.write"
        assert [o["name"] for o in complete["outputs"]] == ["default.main.exported"]
        assert complete["run"]["runId"] == next(e for e in events if e["eventType"] == "START")["run"]["runId"]
        assert complete["run"]["facets"]["parent"]["job"]["name"] == f"job_{job}"
        assert {path for path, _, _ in Receiver.received} == {"/api/v1/lineage"}
        assert {auth for _, auth, _ in Receiver.received} == {"Bearer e2e-key"}
        assert attempt.state.result_state == jobs.RunResultState.SUCCESS
    finally:
        server.stop()
        receiver.shutdown()
