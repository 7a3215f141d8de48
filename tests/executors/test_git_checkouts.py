"""A task's file in the run's checkout (prepare_attempt with git_checkout): relative to the
repository root for every task type that reads one, never out of it."""

import json
from pathlib import Path

import pytest

from runs.executors.errors import LaunchError
from runs.executors.launch import prepare_attempt


@pytest.fixture
def checkout(tmp_path):
    root = tmp_path / "checkout"
    (root / "project").mkdir(parents=True)
    (root / "project" / "dbt_project.yml").write_text("name: p\n")
    (root / "q.sql").write_text("SELECT 1")
    (root / "run.py").write_text("print(1)\n")
    return root


def prepared(tmp_path, checkout, task):
    spec = prepare_attempt({"task_key": "t", **task}, attempt_dir=tmp_path / "a", workspace_root=tmp_path / "ws",
                           git_checkout=str(checkout), warehouses={"default": "duckdb:///:memory:"})
    return json.loads(Path(spec.spec_path).read_text())


def test_each_kind_of_task_finds_its_file_relative_to_the_checkout(tmp_path, checkout):
    (tmp_path / "ws").mkdir()

    assert prepared(tmp_path, checkout, {"spark_python_task": {"python_file": "run.py"}})["python_file"] == \
        str(checkout / "run.py")
    assert prepared(tmp_path, checkout, {"sql_task": {"warehouse_id": "default", "file": {"path": "q.sql"}}})[
        "sql_file"] == str(checkout / "q.sql")
    dbt = prepared(tmp_path, checkout, {"dbt_task": {"commands": ["dbt run"], "project_directory": "project"}})
    assert dbt["project_dir"] == str(checkout / "project")


@pytest.mark.parametrize("python_file, words", [
    ("../outside.py", "leads outside the repository"),
    ("/etc/passwd", "must be relative to the repository root"),
    ("dbfs:/x.py", "must be relative to the repository root"),
])
def test_a_path_out_of_the_checkout_is_refused(tmp_path, checkout, python_file, words):
    (tmp_path / "outside.py").write_text("print('escaped')\n")

    with pytest.raises(LaunchError) as refused:
        prepared(tmp_path, checkout, {"spark_python_task": {"python_file": python_file}})

    assert refused.value.code == "INVALID_RUN_CONFIGURATION"
    assert words in refused.value.message


def test_a_workspace_task_ignores_the_checkout(tmp_path, checkout):
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "run.py").write_text("print(2)\n")

    spec = prepared(tmp_path, checkout, {"spark_python_task": {"python_file": "run.py", "source": "WORKSPACE"}})

    assert spec["python_file"] == str(tmp_path / "ws" / "run.py")
