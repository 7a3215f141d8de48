"""dbt_task through the worker, for real: its environment built with uv from the registry, dbt run
in a task process on the embedded DuckDB warehouse, the artifacts served by runs/get-output's
dbt_output, the tables it wrote recorded for triggers and lineage; bad projects fail with dbt's
message or the path."""

import io
import json
import tarfile
from pathlib import Path

import duckdb
import pytest
from django.contrib.auth import get_user_model

from lineage.models import Edge, Source
from runs.admission import create_run
from runs.engine.states import RunResultState as R
from runs.models import TableWrite, TaskRun
from tests.runs.conftest import make_job

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def alice(transactional_db):
    # Real commits: attempts reach the broker only after their transaction commits.
    return get_user_model().objects.create_user("alice", password="x")


@pytest.fixture(scope="module")
def shared_environments(tmp_path_factory):
    """One build of the dbt environment for the module (every test's task home links to it)."""
    return tmp_path_factory.mktemp("dbt-environments")


@pytest.fixture(autouse=True)
def task_home(tmp_path, settings, shared_environments):
    home = tmp_path / "task-home"
    home.mkdir()
    (home / "environments").symlink_to(shared_environments)
    settings.LAKEFLOW_TASK_HOME = home
    settings.LAKEFLOW_WORKSPACE_ROOT = tmp_path / "workspace"
    settings.LAKEFLOW_WAREHOUSES = {"default": f"duckdb:///{home / 'warehouse' / 'warehouse.duckdb'}"}
    return home


@pytest.fixture
def project(tmp_path):
    """A tiny dbt project: a seed, a table model over it, two tests on the model."""
    root = tmp_path / "workspace" / "shop"
    (root / "models").mkdir(parents=True)
    (root / "seeds").mkdir()
    (root / "dbt_project.yml").write_text('name: shop\nversion: "1.0"\nprofile: shop\n')
    (root / "seeds" / "fruits.csv").write_text("id,name\n1,apple\n2,pear\n")
    (root / "models" / "fruit_names.sql").write_text(
        "{{ config(materialized='table') }}\nselect id, upper(name) as name from {{ ref('fruits') }}\n")
    (root / "models" / "schema.yml").write_text(
        "version: 2\nmodels:\n  - name: fruit_names\n    columns:\n      - name: id\n"
        "        data_tests: [unique, not_null]\n")
    return root


def dbt_task(commands, project_directory="shop", **fields):
    return {"task_key": "d", "dbt_task": {"commands": commands, "project_directory": project_directory, **fields}}


def run_dbt(user, task):
    run, _ = create_run(make_job(user, [task]))
    return TaskRun.objects.get(run=run, task_key="d", is_current=True)


def log_of(attempt):
    return Path(attempt.log_path).read_text()


def test_seed_run_and_test_build_the_model_in_the_warehouse_and_report_its_tables_and_artifacts(
        alice, project, task_home, client):
    attempt = run_dbt(alice, dbt_task(["dbt seed", "dbt run", "dbt test"]))

    assert attempt.result_state == R.SUCCESS, attempt.state_message + log_of(attempt)
    log = log_of(attempt)
    for n, command in enumerate(["dbt seed", "dbt run", "dbt test"], 1):
        assert f"=== dbt command {n} of 3: {command}" in log
    assert "PASS=2" in log  # dbt test's own summary
    with duckdb.connect(str(task_home / "warehouse" / "warehouse.duckdb"), read_only=True) as warehouse:
        assert warehouse.sql("select * from main.fruit_names order by id").fetchall() == [(1, "APPLE"), (2, "PEAR")]
    assert not (project / "target").exists()  # dbt wrote its target into the attempt's directory

    written = set(TableWrite.objects.filter(task_run=attempt).values_list("table_name", flat=True))
    assert written == {"default.main.fruits", "default.main.fruit_names"}
    edges = {(e.dataset.name, e.direction) for e in Edge.objects.filter(task_run_id=attempt.id, source=Source.DBT)}
    assert edges == {("default.main.fruits", "write"), ("default.main.fruit_names", "write")}

    client.force_login(alice)
    output = client.get("/api/2.2/jobs/runs/get-output", {"run_id": attempt.id}).json()
    link = output["dbt_output"]["artifacts_link"]
    assert link.startswith(f"http://testserver/api/2.2/jobs/runs/dbt-artifacts?run_id={attempt.id}&signature=")
    download = client.get(link.removeprefix("http://testserver"))
    assert download.status_code == 200 and download["Content-Type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(b"".join(download.streaming_content)), mode="r:gz") as archive:
        names = set(archive.getnames())
        manifest = json.load(archive.extractfile("target/manifest.json"))
        seeded = json.load(archive.extractfile("commands/1/run_results.json"))
    assert {"target/run_results.json", "commands/2/run_results.json", "commands/3/run_results.json",
            "logs/dbt.log"} <= names
    assert "model.shop.fruit_names" in manifest["nodes"]
    assert [r["unique_id"] for r in seeded["results"]] == ["seed.shop.fruits"]


def test_a_compile_error_fails_the_task_with_dbts_message_and_later_commands_do_not_run(alice, project):
    (project / "models" / "broken.sql").write_text("select * from {{ ref('fruits') }\n")

    attempt = run_dbt(alice, dbt_task(["dbt run", "dbt test"]))

    assert attempt.result_state == R.FAILED
    assert attempt.state_message.startswith("dbt command 1 of 2 (dbt run) failed:")
    assert "Compilation Error in model broken (models/broken.sql)" in attempt.state_message
    assert "=== dbt command 2 of 2" not in log_of(attempt)
    assert not TableWrite.objects.filter(task_run=attempt).exists()


def test_a_missing_project_directory_fails_the_task_with_its_path(alice, tmp_path):
    (tmp_path / "workspace").mkdir()

    attempt = run_dbt(alice, dbt_task(["dbt run"], project_directory="nowhere"))

    assert attempt.result_state == R.FAILED
    assert attempt.state_message == f"dbt_task.project_directory {tmp_path / 'workspace' / 'nowhere'} does not exist"


def test_an_unknown_warehouse_fails_the_task_naming_the_configured_ones(alice, project):
    attempt = run_dbt(alice, dbt_task(["dbt run"], warehouse_id="nope"))

    assert attempt.result_state == R.FAILED
    assert attempt.state_message == ("SQL warehouse 'nope' is not configured; configured: default "
                                     "(set LAKEFLOW_WAREHOUSES)")
