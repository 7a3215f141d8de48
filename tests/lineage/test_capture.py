"""Lineage is captured from what attempts report when they finish (SQL statements, declared
names) and from OpenLineage events they send while they run; traversal walks it across jobs."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from jobs.models import ApiToken
from lineage.graph import reach
from lineage.models import Access, ColumnEdge, Dataset, Edge, Gap
from runs.admission import create_run
from runs.attempt_credentials import attempt_credential, openlineage_run_id
from runs.dispatch import finish_attempt
from runs.engine.endings import attempt_ended
from runs.engine.states import RunResultState as R
from runs.models import RunEvent, TaskRun
from tests.runs.conftest import claim_attempt, make_job, shell


def finished_attempt(job, task_key="t", result=R.SUCCESS, **data_access):
    run, _ = create_run(job)
    attempt = TaskRun.objects.get(run=run, task_key=task_key)
    finish_attempt(claim_attempt(attempt.id).id, attempt_ended(result), data_access=data_access or None)
    return TaskRun.objects.select_related("run").get(id=attempt.id)


def sql_ran(*statements, row_counts=None, schema=None, warehouse_id="default", dialect="duckdb"):
    return {"warehouse_id": warehouse_id, "dialect": dialect, "statements": list(statements),
            "row_counts": row_counts or [None] * len(statements), "schema": schema or {}}


def edges_of(attempt):
    return sorted((e.direction, e.dataset.name, e.source, e.row_count)
                  for e in Edge.objects.filter(task_run=attempt).select_related("dataset"))


def test_a_sql_attempt_records_its_reads_writes_columns_and_row_counts(alice, broker):
    job = make_job(alice, [shell("t")])
    attempt = finished_attempt(job, sql=sql_ran(
        "CREATE TABLE silver AS SELECT id, upper(name) AS name FROM bronze",
        "INSERT INTO gold SELECT s.id FROM silver s JOIN dims d ON d.id = s.id", row_counts=[3, 2]))
    assert edges_of(attempt) == [
        ("read", "default.main.bronze", "sql", None), ("read", "default.main.dims", "sql", None),
        ("read", "default.main.silver", "sql", None),
        ("write", "default.main.gold", "sql", 2), ("write", "default.main.silver", "sql", 3)]
    assert set(ColumnEdge.objects.filter(target__name="default.main.silver").values_list(
        "target_column", "source__name", "source_column")) == {
        ("id", "default.main.bronze", "id"), ("name", "default.main.bronze", "name")}
    assert set(Access.objects.filter(job_id=job.id).values_list("dataset__name", "direction", "task_key")) >= {
        ("default.main.bronze", "read", "t"), ("default.main.silver", "write", "t")}
    event = RunEvent.objects.get(task_run=attempt, type="task.finished")
    assert event.data["data_access"] is True and not event.reactions_pending  # reacted on commit


def test_a_statement_sqlglot_cannot_read_is_a_gap_and_the_rest_is_kept(alice, broker):
    attempt = finished_attempt(make_job(alice, [shell("t")]), sql=sql_ran(
        "INSERT INTO kept SELECT * FROM src", "INSERT INTO weird ((( nonsense"))
    assert ("write", "default.main.kept", "sql", None) in edges_of(attempt)
    assert ("write", "default.main.weird", "sql", None) in edges_of(attempt)  # by its first words
    [gap] = Gap.objects.filter(task_run=attempt)
    assert "lineage unknown" in gap.message and "statement 2" in gap.message


def test_declared_names_become_edges_and_a_bad_name_is_a_gap(alice, broker):
    attempt = finished_attempt(make_job(alice, [shell("t")]), declared=[
        {"reads": ["main.raw_orders", "/Volumes/main/raw/files/"], "writes": ["analytics.main.orders"]},
        {"writes": ["not a table"]}])
    assert edges_of(attempt) == [
        ("read", "/Volumes/main/raw/files", "declared", None), ("read", "default.main.raw_orders", "declared", None),
        ("write", "analytics.main.orders", "declared", None)]
    assert "'not a table' is neither a table" in Gap.objects.get(task_run=attempt).message


def test_an_attempt_that_reported_nothing_leaves_no_pending_reaction(alice, broker):
    attempt = finished_attempt(make_job(alice, [shell("t")]))
    event = RunEvent.objects.get(task_run=attempt, type="task.finished")
    assert "data_access" not in event.data and event.reactions_pending is None
    assert not Edge.objects.exists()


def test_reach_walks_tasks_and_triggers_across_jobs_both_ways(alice, broker):
    job_a = make_job(alice, [shell("load"), shell("build", depends_on=["load"])], name="A")
    job_b = make_job(alice, [shell("t")], name="B",
                     trigger={"table_update": {"table_names": ["default.main.silver"]}})
    run_a, _ = create_run(job_a)
    for key, statement in (("load", "CREATE TABLE bronze AS SELECT 1 AS id"),
                           ("build", "CREATE TABLE silver AS SELECT id FROM bronze")):
        attempt = TaskRun.objects.get(run=run_a, task_key=key)
        finish_attempt(claim_attempt(attempt.id).id, attempt_ended(R.SUCCESS), data_access={"sql": sql_ran(statement)})
    finished_attempt(job_b, sql=sql_ran("CREATE TABLE gold AS SELECT id FROM silver"))
    # The trigger reads silver for the whole of job B (task_key "").
    assert Access.objects.filter(job_id=job_b.id, task_key="", dataset__name="default.main.silver").exists()

    ids = dict(Dataset.objects.values_list("name", "id"))
    names = {v: k for k, v in ids.items()}
    down = reach([ids["default.main.bronze"]], "downstream", 5)
    assert {names[i]: d for i, d in down.items()} == {
        "default.main.bronze": 0, "default.main.silver": 1, "default.main.gold": 2}
    up = reach([ids["default.main.gold"]], "upstream", 1)
    assert {names[i]: d for i, d in up.items()} == {"default.main.gold": 0, "default.main.silver": 1}


def test_a_trigger_link_follows_the_jobs_settings(alice, broker):
    job = make_job(alice, [shell("t")], trigger={"table_update": {"table_names": ["default.main.a"]}})
    settings = {**job.settings, "trigger": {"file_arrival": {"url": "/Volumes/main/raw/in/"}}}
    job.save_version(settings, alice)
    assert list(Access.objects.filter(job_id=job.id).values_list("dataset__name", "task_key", "direction")) == [
        ("/Volumes/main/raw/in", "", "read")]


# --- OpenLineage in ----------------------------------------------------------------------------


def openlineage_event(**overrides):
    event = {"eventType": "COMPLETE", "eventTime": "2026-12-06T10:00:00Z", "producer": "tests",
             "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
             "run": {"runId": "0e8bd2c0-33e7-4d5c-9dcb-1d1b4b4f4f11"}, "job": {"namespace": "lakeflow", "name": "x"},
             "inputs": [{"namespace": "lakeflow", "name": "default.main.silver"}],
             "outputs": [{"namespace": "lakeflow", "name": "default.main.gold", "outputFacets": {
                 "outputStatistics": {"rowCount": 7}}, "facets": {"columnLineage": {"fields": {
                     "total": {"inputFields": [{"namespace": "lakeflow", "name": "default.main.silver",
                                                "field": "amount"}]}}}}}]}
    event.update(overrides)
    return event


def post(event, token):
    return Client().post("/api/v1/lineage", json.dumps(event), content_type="application/json",
                         headers={"Authorization": f"Bearer {token}"} if token else {})


@pytest.fixture
def running_attempt(alice, broker):
    run, _ = create_run(make_job(alice, [shell("t")]))
    return claim_attempt(TaskRun.objects.get(run=run).id)


def test_an_event_with_the_attempts_credential_is_recorded_for_that_attempt(running_attempt):
    response = post(openlineage_event(), attempt_credential(running_attempt.id))
    assert response.status_code == 200, response.content
    assert edges_of(running_attempt) == [("read", "default.main.silver", "openlineage", None),
                                         ("write", "default.main.gold", "openlineage", 7)]
    assert ColumnEdge.objects.get().source_column == "amount"
    post(openlineage_event(), attempt_credential(running_attempt.id))  # sent twice: recorded once
    assert Edge.objects.count() == 2


def test_an_api_token_names_the_attempt_by_the_parent_facet(running_attempt, alice):
    token = ApiToken.issue(alice, "tests")[1]
    parent = {"parent": {"run": {"runId": openlineage_run_id(running_attempt.id)},
                         "job": {"namespace": "lakeflow", "name": "job"}}}
    event = openlineage_event(run={"runId": "0e8bd2c0-33e7-4d5c-9dcb-1d1b4b4f4f11", "facets": parent})
    assert post(event, token).status_code == 200
    assert Edge.objects.filter(task_run=running_attempt).count() == 2
    refused = post(openlineage_event(), token)  # names no attempt of ours
    assert refused.status_code == 400 and "names no task attempt" in refused.json()["message"]
    from django.contrib.auth import get_user_model

    stranger = ApiToken.issue(get_user_model().objects.create_user("mallory"), "tests")[1]
    denied = post(event, stranger)  # another's job: only those who may run it write its lineage
    assert denied.status_code == 403 and "mallory" in denied.json()["message"]
    assert Edge.objects.filter(task_run=running_attempt).count() == 2


@pytest.mark.parametrize("change, message", [
    ({"eventTime": None}, "field eventTime is required"),
    ({"job": {"namespace": "lakeflow"}}, "field job.name is required"),
    ({"inputs": "silver"}, "field inputs must be an array"),
    ({"inputs": [{"namespace": "lakeflow"}]}, "field name is required"),
    ({"eventType": "DONE"}, "eventType must be one of"),
])
def test_a_malformed_event_is_a_400_naming_the_field(running_attempt, change, message):
    event = {key: value for key, value in {**openlineage_event(), **change}.items() if value is not None}
    response = post(event, attempt_credential(running_attempt.id))
    assert response.status_code == 400 and message in response.json()["message"]
    assert not Edge.objects.exists()


def test_events_for_an_attempt_long_finished_or_without_credentials_are_refused(running_attempt):
    TaskRun.objects.filter(id=running_attempt.id).update(ended_at=timezone.now() - timedelta(hours=2))
    late = post(openlineage_event(), attempt_credential(running_attempt.id))
    assert late.status_code == 400 and "its lineage is closed" in late.json()["message"]
    assert post(openlineage_event(), None).status_code == 401
    assert post(openlineage_event(), attempt_credential(running_attempt.id) + "x").status_code == 401


def test_a_warehouse_uri_namespace_is_the_same_table_as_sql_capture(running_attempt, settings):
    settings.LAKEFLOW_WAREHOUSES = {"default": "duckdb:///tmp/w.duckdb", "pg": "postgresql://u@localhost/analytics"}
    event = openlineage_event(inputs=[{"namespace": "postgres://127.0.0.1:5432", "name": "analytics.public.orders"}],
                              outputs=[{"namespace": "file", "name": "/data/out.csv"}])
    assert post(event, attempt_credential(running_attempt.id)).status_code == 200
    assert edges_of(running_attempt) == [("read", "pg.public.orders", "openlineage", None),
                                         ("write", "/data/out.csv", "openlineage", None)]


def test_a_trigger_alone_links_the_table_it_watches_to_what_the_job_writes(alice, broker):
    job = make_job(alice, [shell("a"), shell("b")], trigger={"table_update": {"table_names": ["default.main.x"]}})
    run, _ = create_run(job)
    for key in ("a", "b"):
        attempt = TaskRun.objects.get(run=run, task_key=key)
        finish_attempt(claim_attempt(attempt.id).id, attempt_ended(R.SUCCESS),
                       data_access={"sql": sql_ran(f"CREATE TABLE out_{key} AS SELECT 1 AS n")})
    ids = dict(Dataset.objects.values_list("name", "id"))
    assert set(reach([ids["default.main.x"]], "downstream", 1)) == {
        ids["default.main.x"], ids["default.main.out_a"], ids["default.main.out_b"]}
    assert set(reach([ids["default.main.out_b"]], "upstream", 1)) == {ids["default.main.out_b"], ids["default.main.x"]}


def test_downstream_impact_lists_the_nearest_and_counts_the_rest(alice, broker):
    from lineage.graph import downstream_impact

    job = make_job(alice, [shell("t")])
    finished_attempt(job, sql=sql_ran(*[f"CREATE TABLE d{i + 1} AS SELECT * FROM d{i}" for i in range(5)]))
    found = downstream_impact(Dataset.objects.get(name="default.main.d0"), cap=2)
    assert [d.name for d in found["datasets"]] == ["default.main.d1", "default.main.d2"]
    assert found["more"] == 3


def test_system_table_rows_and_the_databricks_api_answer_from_what_was_captured(alice, broker, client):
    from jobs.models import ApiToken as Token

    job = make_job(alice, [shell("t")])
    attempt = finished_attempt(job, sql=sql_ran("CREATE TABLE s AS SELECT a, b AS c FROM r"))
    headers = {"Authorization": f"Bearer {Token.issue(alice, 'tests')[1]}"}
    rows = client.get("/api/2.0/lineage-tracking/system/table_lineage", {"run_id": attempt.run_id},
                      headers=headers).json()["rows"]
    assert {(r["source_table_full_name"], r["target_table_full_name"], r["entity_type"], r["entity_id"],
             r["created_by"]) for r in rows} == {(None, "default.main.s", "JOB", str(job.id), None),
                                                 ("default.main.r", None, "JOB", str(job.id), None)}
    columns = client.get("/api/2.0/lineage-tracking/system/column_lineage", {"table_name": "default.main.s"},
                         headers=headers).json()["rows"]
    assert sorted((r["source_column_name"], r["target_column_name"]) for r in columns) == [("a", "a"), ("b", "c")]
    body = client.get("/api/2.0/lineage-tracking/table-lineage", {"table_name": "default.main.r",
                                                                  "include_entity_lineage": "true"},
                      headers=headers).json()
    assert body["upstreams"] == [] and body["downstreams"][0]["tableInfo"]["name"] == "s"
    assert body["downstreams"][0]["jobInfos"] == [{"job_id": job.id, "workspace_id": 0}]
    missing = client.get("/api/2.0/lineage-tracking/table-lineage", {"table_name": "default.main.nope"},
                         headers=headers)
    assert missing.status_code == 404 and "has no lineage here" in missing.json()["message"]
    bad = client.get("/api/2.0/lineage-tracking/table-lineage", {"table_name": "nope"}, headers=headers)
    assert bad.status_code == 400 and "<catalog>.<schema>.<table>" in bad.json()["message"]


def test_a_refused_event_records_nothing_not_even_the_gaps_before_the_refusal(running_attempt):
    event = openlineage_event(inputs=[{"namespace": "nowhere", "name": "x"}, {"namespace": "lakeflow"}])
    response = post(event, attempt_credential(running_attempt.id))
    assert response.status_code == 400 and "field name is required" in response.json()["message"]
    assert not Gap.objects.exists() and not Edge.objects.exists()
