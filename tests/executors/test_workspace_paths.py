"""Databricks paths on this machine: /Volumes, /Workspace and dbfs:/ in job fields, dbutils.fs
and open() inside task processes, and refusals of paths that leave their root."""

import json
import os

import pytest

from runs.executors.dbutils_fs import FileSystem
from runs.executors.launch import LaunchError, prepare_attempt
from runs.executors.workspace_paths import PathOutsideRoot, Roots
from tests.executors.test_runner import run_script


@pytest.fixture
def roots(tmp_path):
    made = Roots(tmp_path / "Volumes", tmp_path / "Workspace", tmp_path / "dbfs")
    for root in (made.volumes, made.workspace, made.dbfs):
        os.makedirs(root)
    return made


@pytest.mark.parametrize("given, root, rest", [
    ("/Volumes/main/raw/in/a.csv", "volumes", "main/raw/in/a.csv"),
    ("dbfs:/Volumes/main/raw/in", "volumes", "main/raw/in"),
    ("/Workspace/Users/ann@example.com/etl.py", "workspace", "Users/ann@example.com/etl.py"),
    ("dbfs:/FileStore/x.txt", "dbfs", "FileStore/x.txt"),
    ("DBFS:/FileStore/x.txt", "dbfs", "FileStore/x.txt"),
    ("/dbfs/FileStore/x.txt", "dbfs", "FileStore/x.txt"),
])
def test_databricks_paths_map_into_their_roots(roots, given, root, rest):
    expected = os.path.join(getattr(roots, root), rest)
    assert roots.local_path(given) == expected
    assert roots.fs_path(given) == expected


def test_other_paths_stay_local_for_job_fields_and_are_dbfs_for_dbutils_fs(roots):
    assert roots.local_path("/data/in") == "/data/in"
    assert roots.local_path("file:///data/in") == "/data/in"
    assert roots.fs_path("/tmp/x") == os.path.join(roots.dbfs, "tmp/x")  # as on Databricks
    assert roots.fs_path("file:/tmp/x") == "/tmp/x"


@pytest.mark.parametrize("given", ["/Volumes/../../etc/passwd", "dbfs:/a/../../x", "/Workspace/a/../../b",
                                   "/dbfs/../Volumes/x"])
def test_dot_dot_out_of_a_root_is_refused(roots, given):
    with pytest.raises(PathOutsideRoot, match="leads outside its root"):
        roots.local_path(given)


def test_a_symlink_out_of_a_root_is_refused(roots, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.makedirs(os.path.join(roots.volumes, "main", "raw"))
    os.symlink(outside, os.path.join(roots.volumes, "main", "raw", "escape"))
    with pytest.raises(PathOutsideRoot):
        roots.local_path("/Volumes/main/raw/escape/secret.txt")


def test_listings_name_files_as_databricks_does(roots):
    fs = FileSystem(roots)
    fs.put("/Volumes/main/raw/in/a.csv", "x,y\n")
    fs.put("dbfs:/tmp/b.txt", "b")
    fs.put("/Workspace/Shared/c.py", "c")
    assert [(i.path, i.name, i.size) for i in fs.ls("/Volumes/main/raw/in")] == [
        ("dbfs:/Volumes/main/raw/in/a.csv", "a.csv", 4)]
    assert [i.path for i in fs.ls("dbfs:/")] == ["dbfs:/tmp/"]
    assert [(i.path, i.name) for i in fs.ls("/Workspace/Shared")] == [("file:/Workspace/Shared/c.py", "c.py")]
    assert fs.ls("/Volumes/main/raw/in/a.csv")[0].name == "a.csv"  # ls of a file lists the file


def test_put_head_cp_mv_rm_with_their_databricks_flags(roots, capsys):
    fs = FileSystem(roots)
    assert fs.put("/Volumes/c/s/v/d/one.txt", "hello world") is True  # the volume appears on write
    assert capsys.readouterr().out == "Wrote 11 bytes.\n"
    with pytest.raises(FileExistsError, match="overwrite=True"):
        fs.put("/Volumes/c/s/v/d/one.txt", "again")
    fs.put("/Volumes/c/s/v/d/one.txt", "héllo", overwrite=True)
    assert fs.head("/Volumes/c/s/v/d/one.txt") == "héllo"
    assert fs.head("/Volumes/c/s/v/d/one.txt", 1) == "h"

    with pytest.raises(IsADirectoryError, match="recurse=True"):
        fs.cp("/Volumes/c/s/v/d", "dbfs:/copy")
    assert fs.cp("/Volumes/c/s/v/d", "dbfs:/copy", recurse=True)
    assert fs.head("dbfs:/copy/one.txt") == "héllo"
    fs.mkdirs("dbfs:/into")
    fs.cp("dbfs:/copy/one.txt", "dbfs:/into")  # a file copied onto a directory lands inside it
    assert [i.name for i in fs.ls("dbfs:/into")] == ["one.txt"]

    assert fs.mv("dbfs:/into/one.txt", "/Workspace/moved.txt")
    assert fs.ls("dbfs:/into") == []
    assert fs.head("/Workspace/moved.txt") == "héllo"

    with pytest.raises(OSError, match="recurse=True"):
        fs.rm("dbfs:/copy")
    assert fs.rm("dbfs:/copy", recurse=True) is True
    assert fs.rm("dbfs:/copy") is False  # nothing there any more
    with pytest.raises(FileNotFoundError, match="File dbfs:/copy does not exist"):
        fs.ls("dbfs:/copy")


def test_dbutils_fs_refuses_paths_out_of_their_root(roots):
    fs = FileSystem(roots)
    with pytest.raises(PathOutsideRoot):
        fs.put("/Volumes/../../escaped.txt", "x")
    with pytest.raises(ValueError, match="only dbfs:/, file:/, /Volumes and /Workspace"):
        fs.ls("s3://bucket/x")


def test_a_task_uses_volumes_with_the_runtime_dbutils_dbutils_fs_and_open(tmp_path, roots):
    outcome, result, log = run_script(tmp_path, """
        from databricks.sdk.runtime import dbutils
        dbutils.fs.put("/Volumes/main/raw/landing/a.csv", "id\\n1\\n")
        with open("/Volumes/main/raw/landing/b.csv", "w") as f:  # as through Databricks' FUSE mount
            f.write("id\\n2\\n")
        print([info.path for info in dbutils.fs.ls("/Volumes/main/raw/landing")])
        print(open("/Volumes/main/raw/landing/a.csv").read().split())
    """, fs_roots=roots)
    assert result.error is None, log
    assert "['dbfs:/Volumes/main/raw/landing/a.csv', 'dbfs:/Volumes/main/raw/landing/b.csv']" in log
    assert "['id', '1']" in log
    assert open(os.path.join(roots.volumes, "main/raw/landing/b.csv")).read() == "id\n2\n"


def test_a_python_file_under_workspace_or_dbfs_runs_from_its_root(tmp_path, roots):
    os.makedirs(os.path.join(roots.workspace, "Users", "ann"))
    script = os.path.join(roots.workspace, "Users", "ann", "etl.py")
    open(script, "w").close()
    (tmp_path / "ws").mkdir()
    for given in ("/Workspace/Users/ann/etl.py", "dbfs:/../Workspace/Users/ann/etl.py"):
        task = {"task_key": "t", "spark_python_task": {"python_file": given}}
        if given.startswith("dbfs:/.."):
            with pytest.raises(LaunchError, match="leads outside its root"):
                prepare_attempt(task, attempt_dir=tmp_path / "attempt", workspace_root=tmp_path / "ws",
                                fs_roots=roots, private_roots=(tmp_path,))
            continue
        # The roots lie in the tasks' area (a private root), yet a Databricks path may use them.
        spec = prepare_attempt(task, attempt_dir=tmp_path / "attempt", workspace_root=tmp_path / "ws",
                               fs_roots=roots, private_roots=(tmp_path,))
        assert json.loads(open(spec.spec_path).read())["python_file"] == script
        assert spec.env["LAKEFLOW_FS_ROOTS"] == roots.to_env()


def test_a_notebook_path_under_workspace_resolves_without_its_extension(tmp_path, roots):
    os.makedirs(os.path.join(roots.workspace, "Shared"))
    notebook = os.path.join(roots.workspace, "Shared", "daily.py")
    with open(notebook, "w") as f:
        f.write("# Databricks notebook source\nprint(1)\n")
    (tmp_path / "ws").mkdir()
    task = {"task_key": "t", "notebook_task": {"notebook_path": "/Workspace/Shared/daily"}}
    spec = prepare_attempt(task, attempt_dir=tmp_path / "attempt", workspace_root=tmp_path / "ws",
                           fs_roots=roots, private_roots=(tmp_path,))
    assert spec.cwd == os.path.join(roots.workspace, "Shared")


def test_a_dbt_projects_relative_profiles_directory_resolves_beside_a_workspace_project(tmp_path, roots):
    from runs.executors import dbt
    from runs.executors.files import TaskFiles

    project = os.path.join(roots.workspace, "Shared", "shop")
    os.makedirs(os.path.join(project, "profiles"))
    open(os.path.join(project, "dbt_project.yml"), "w").close()
    (tmp_path / "ws").mkdir()
    files = TaskFiles(tmp_path / "ws", (), (tmp_path,), roots)  # the roots lie in a private area
    spec = dbt.prepare({"commands": ["dbt run"], "project_directory": "/Workspace/Shared/shop",
                        "profiles_directory": "profiles"}, files=files, attempt_dir=tmp_path / "a", warehouses={})
    assert (spec["project_dir"], spec["profiles_dir"]) == (project, os.path.join(project, "profiles"))


def test_the_task_learns_the_roots_from_the_workers_task_files_too(tmp_path, roots):
    from runs.executors.files import TaskFiles

    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "x.py").write_text("")
    files = TaskFiles(tmp_path / "ws", (), (), roots)  # as the worker builds it, once per attempt
    spec = prepare_attempt({"task_key": "t", "spark_python_task": {"python_file": "x.py"}},
                           attempt_dir=tmp_path / "attempt", files=files)
    assert spec.env["LAKEFLOW_FS_ROOTS"] == roots.to_env()
