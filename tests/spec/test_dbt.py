"""dbt_task without dbt: the save-time checks, the environment, the generated profile, the command
lines, dbt's error text, and the tables a manifest and run results say were read and written."""

import pytest

from jobs.spec import dbt
from jobs.spec.environments import environment_spec
from jobs.spec.settings import SettingsInvalid, validate_job_settings
from jobs.spec.task_types import unsupported_kind


def dbt_job(block, **task_fields):
    return {"name": "dbt", "tasks": [{"task_key": "d", "dbt_task": block, **task_fields}]}


def problems_of(block):
    with pytest.raises(SettingsInvalid) as caught:
        validate_job_settings(dbt_job(block))
    return {problem.path: problem.message for problem in caught.value.problems}


# --- save time ------------------------------------------------------------------


def test_a_dbt_task_with_every_field_is_saved_as_written_and_is_one_this_server_runs():
    block = {"commands": ["dbt deps", "dbt seed", "dbt run --select tag:daily"], "project_directory": "/Workspace/shop",
             "profiles_directory": "profiles", "schema": "sales", "catalog": "main", "warehouse_id": "pg",
             "source": "WORKSPACE"}

    settings = validate_job_settings(dbt_job(block))

    assert settings["tasks"][0]["dbt_task"] == block
    assert unsupported_kind(settings["tasks"][0]) is None


@pytest.mark.parametrize("block, path, message", [
    ({}, "tasks[0].dbt_task.commands", "is required"),
    ({"commands": []}, "tasks[0].dbt_task.commands", "must not be empty"),
    ({"commands": "dbt run"}, "tasks[0].dbt_task.commands", "must be a list of strings"),
    ({"commands": [f"dbt run -s m{i}" for i in range(11)]}, "tasks[0].dbt_task.commands",
     "has 11 commands; at most 10"),
    ({"commands": ["dbt seed", "ls -la"]}, "tasks[0].dbt_task.commands[1]", "must start with dbt (got 'ls -la')"),
    ({"commands": ["dbtx run"]}, "tasks[0].dbt_task.commands[0]", "must start with dbt (got 'dbtx run')"),
    ({"commands": [7]}, "tasks[0].dbt_task.commands[0]", "must be a string"),
    ({"commands": ["dbt run --vars '{a: 1}"]}, "tasks[0].dbt_task.commands[0]",
     "cannot be read as a command line: No closing quotation"),
    ({"commands": ["dbt run"], "warehouse_id": 5}, "tasks[0].dbt_task.warehouse_id", "must be a string"),
    ({"commands": ["dbt run"], "source": "S3"}, "tasks[0].dbt_task.source", "must be one of WORKSPACE, GIT"),
])
def test_each_dbt_task_rule_reports_its_own_path(block, path, message):
    assert problems_of(block) == {path: message}


def test_ten_commands_are_allowed():
    validate_job_settings(dbt_job({"commands": [f"dbt run -s m{i}" for i in range(10)]}))


# --- the environment ------------------------------------------------------------


def lines_of(job_settings, task):
    spec = environment_spec(job_settings, dbt.environment_task(job_settings, task, duckdb_version="1.5.6"), "dbt_task")
    return [line.value for line in spec.lines]


def test_the_environment_is_dbt_with_both_adapters_and_the_servers_duckdb():
    assert lines_of({}, {"task_key": "d", "dbt_task": {"commands": ["dbt run"]}}) == [
        "dbt-core==1.11.16", "dbt-duckdb==1.11.1", "dbt-postgres==1.11.0", "duckdb==1.5.6"]


def test_the_job_environment_adds_its_dependencies_and_its_own_dbt_versions_replace_ours():
    job_settings = {"environments": [{"environment_key": "e", "spec": {
        "client": "2", "dependencies": ["dbt-core==1.10.5", "dbt-databricks>=1.8", "six"]}}]}
    task = {"task_key": "d", "environment_key": "e", "dbt_task": {"commands": ["dbt run"]}}

    assert lines_of(job_settings, task) == [
        "dbt-duckdb==1.11.1", "dbt-postgres==1.11.0", "duckdb==1.5.6", "dbt-core==1.10.5", "six"]


def test_task_libraries_join_the_environment_when_the_task_has_no_environment_key():
    task = {"task_key": "d", "dbt_task": {"commands": ["dbt run"]},
            "libraries": [{"pypi": {"package": "dbt_Databricks"}}, {"whl": "/Volumes/c/s/v/x.whl"}]}

    assert lines_of({}, task)[-1:] == ["/Volumes/c/s/v/x.whl"]  # Databricks' adapter is left out


# --- the profile ----------------------------------------------------------------


def test_the_default_warehouse_profile_is_the_duckdb_file_in_schema_main():
    assert dbt.profile_document("shop", "default", "duckdb:////srv/lakeflow/warehouse/warehouse.duckdb") == {
        "shop": {"target": "default", "outputs": {"default": {
            "type": "duckdb", "path": "/srv/lakeflow/warehouse/warehouse.duckdb", "schema": "main", "threads": 1}}}}


def test_a_postgres_warehouse_profile_has_the_urls_parts_and_schema_public_unless_given():
    document = dbt.profile_document("shop", "pg", "postgresql://ann:p%40ss@db.local:6543/sales?sslmode=require")

    assert document["shop"] == {"target": "pg", "outputs": {"pg": {
        "type": "postgres", "host": "db.local", "port": 6543, "user": "ann", "password": "p@ss", "dbname": "sales",
        "schema": "public", "threads": 4, "sslmode": "require"}}}
    assert dbt.profile_document("p", "pg", "postgres://127.0.0.1/test", "marts")["p"]["outputs"]["pg"]["schema"] == "marts"


def test_a_postgres_url_without_a_user_or_password_uses_postgres_and_none():
    output = dbt.profile_document("p", "pg", "postgresql://127.0.0.1:5432/test")["p"]["outputs"]["pg"]

    assert (output["user"], output["password"], output["port"]) == ("postgres", "", 5432)


# --- command lines --------------------------------------------------------------


def test_a_command_gets_the_project_and_profiles_directories_unless_it_gives_its_own():
    assert dbt.command_arguments("dbt run --select 'tag:daily'", project_dir="/p", profiles_dir="/a/profiles") == [
        "run", "--select", "tag:daily", "--project-dir", "/p", "--profiles-dir", "/a/profiles"]
    assert dbt.command_arguments("dbt test --profiles-dir=mine", project_dir="/p", profiles_dir="/a") == [
        "test", "--profiles-dir=mine", "--project-dir", "/p"]
    assert dbt.command_arguments("dbt --version", project_dir="/p", profiles_dir="/a") == ["--version"]


def test_the_error_text_is_dbts_error_messages_without_the_status_lines():
    events = [
        {"info": {"level": "info", "name": "MainReportVersion", "msg": "Running with dbt=1.11.16"}},
        {"info": {"level": "error", "name": "LogModelResult", "msg": "1 of 2 ERROR creating sql view model main.broken"}},
        {"info": {"level": "error", "name": "RunResultFailure", "msg": "Failure in model broken (models/broken.sql)"}},
        {"info": {"level": "error", "name": "RunResultError", "msg": "  Runtime Error in model broken\n  Binder Error"}},
        {"info": {"level": "error", "name": "RunResultFailure", "msg": "Failure in model broken (models/broken.sql)"}},
    ]

    assert dbt.error_text(events) == "Failure in model broken (models/broken.sql)\nRuntime Error in model broken\n  Binder Error"


# --- what the artifacts say -----------------------------------------------------


def node(unique_id, resource_type, materialized=None, depends_on=(), schema="main", alias=None):
    name = unique_id.split(".")[2]
    return {"unique_id": unique_id, "resource_type": resource_type, "name": name, "alias": alias or name,
            "schema": schema, "database": "warehouse", "depends_on": {"nodes": list(depends_on), "macros": []},
            "config": {"materialized": materialized} if materialized else {}}


MANIFEST = {
    "nodes": {n["unique_id"]: n for n in [
        node("seed.shop.fruits", "seed", "seed"),
        node("model.shop.stg_fruits", "model", "ephemeral", ["source.shop.raw.orders", "seed.shop.fruits"]),
        node("model.shop.fruit_names", "model", "table", ["model.shop.stg_fruits"], alias="Fruit_Names"),
        node("model.shop.fruit_view", "model", "view", ["model.shop.fruit_names"]),
        node("model.shop.not_run", "model", "table", ["seed.shop.fruits"]),
        node("test.shop.unique_fruit_names_id", "test", "test", ["model.shop.fruit_names"]),
    ]},
    "sources": {"source.shop.raw.orders": {"unique_id": "source.shop.raw.orders", "resource_type": "source",
                                           "name": "orders", "identifier": "orders", "schema": "raw"}},
}


def results(*statuses):
    return {"results": [{"unique_id": unique_id, "status": status} for unique_id, status in statuses]}


def test_seeds_and_table_models_that_succeeded_are_writes_views_are_lineage_only_reads_look_through_ephemerals():
    succeeded = [*dbt.succeeded_nodes(results(("seed.shop.fruits", "success"))),
                 *dbt.succeeded_nodes(results(("model.shop.stg_fruits", "success"), ("model.shop.fruit_names", "success"),
                                              ("model.shop.fruit_view", "success"), ("model.shop.not_run", "error"))),
                 *dbt.succeeded_nodes(results(("test.shop.unique_fruit_names_id", "pass")))]

    tables = dbt.tables_of(MANIFEST, succeeded, "default")

    assert tables.writes == ("default.main.fruits", "default.main.fruit_names")
    assert tables.views == ("default.main.fruit_view",)
    # fruits is written by this run too: what the table model read is the source only, besides it
    assert tables.reads == ("default.raw.orders",)


def test_a_model_that_failed_writes_nothing_and_reads_nothing():
    tables = dbt.tables_of(MANIFEST, dbt.succeeded_nodes(results(("model.shop.not_run", "error"))), "pg")

    assert (tables.writes, tables.views, tables.reads) == ((), (), ())


def test_a_model_alone_reads_its_upstream_tables_in_the_warehouse_it_ran_on():
    tables = dbt.tables_of(MANIFEST, ["model.shop.fruit_view"], "pg")

    assert tables == dbt.DbtTables(writes=(), views=("pg.main.fruit_view",), reads=("pg.main.fruit_names",))


def test_malformed_artifacts_give_no_tables_rather_than_an_error():
    assert dbt.succeeded_nodes({"results": [None, {"status": "success"}, {"unique_id": 3, "status": "success"}]}) == []
    assert dbt.tables_of({"nodes": {"model.a.b": "x"}, "sources": []}, ["model.a.b"], "default").writes == ()
