"""workspace/rules.py and jobs/spec/deployment.py's bundle summary: pure decisions, no database."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.spec.deployment import bundle_summary
from workspace.rules import WorkspaceRefused, export_content, plan_import, workspace_parts, write_refusal

ROOT = Path(__file__).resolve().parents[2]
HEADER = b"# Databricks notebook source\n"


def test_paths_are_the_same_with_or_without_the_workspace_prefix():
    assert workspace_parts("/Workspace/Users/a/x") == workspace_parts("/Users/a/x/") == ("Users", "a", "x")
    assert workspace_parts("/Workspace") == workspace_parts("/") == ()
    assert workspace_parts("/WorkspaceX/y") == ("WorkspaceX", "y")  # only the whole name is the prefix


@pytest.mark.parametrize("path", ["Users/a", "/Users/../etc", "/Users/./a", "/a\x00b", "/" + "x" * 256,
                                  "/" + "/".join(["abc"] * 1000), 7])
def test_bad_paths_are_refused(path):
    with pytest.raises(WorkspaceRefused) as refused:
        workspace_parts(path)
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("name, content, fmt, language, shown, stored, kind", [
    ("nb.py", HEADER + b"x", "AUTO", None, "nb", "nb.py", "NOTEBOOK"),
    ("q.sql", b"-- Databricks notebook source\nselect 1", "AUTO", None, "q", "q.sql", "NOTEBOOK"),
    ("lib.py", b"x = 1", "AUTO", None, "lib.py", "lib.py", "FILE"),
    ("nb.py", HEADER + b"x", "RAW", None, "nb.py", "nb.py", "FILE"),
    ("a.ipynb", b'{"cells": []}', "AUTO", None, "a", "a.ipynb", "NOTEBOOK"),
    ("a.ipynb", b"[1]", "AUTO", None, "a.ipynb", "a.ipynb", "FILE"),
    ("a", b'{"cells": []}', "JUPYTER", None, "a", "a.ipynb", "NOTEBOOK"),
    ("etl", b"x", "SOURCE", "PYTHON", "etl", "etl.py", "NOTEBOOK"),
    ("etl.py", b"x", "SOURCE", "PYTHON", "etl", "etl.py", "NOTEBOOK"),
    ("m.scala", b"x", "SOURCE", "SCALA", "m", "m.scala", "NOTEBOOK"),
])
def test_an_import_stores_notebooks_with_their_extension_and_shows_them_without(
        name, content, fmt, language, shown, stored, kind):
    planned = plan_import(("Users", "a", name), content, fmt, language)
    assert (planned.parts[-1], planned.stored[-1], planned.object_type) == (shown, stored, kind)


def test_a_source_notebook_gets_its_header_once():
    assert plan_import(("n",), b"x = 1\n", "SOURCE", "PYTHON").content == HEADER + b"x = 1\n"
    assert plan_import(("n",), HEADER + b"x = 1\n", "SOURCE", "PYTHON").content == HEADER + b"x = 1\n"


def test_a_file_exports_only_as_itself():
    assert export_content("FILE", "a.txt", b"x", "SOURCE") == b"x"
    with pytest.raises(WorkspaceRefused):
        export_content("FILE", "a.txt", b"x", "JUPYTER")
    odd = json.dumps({"cells": [3, {"cell_type": "raw", "source": "r"}, {"cell_type": "code", "source": "y"}]})
    assert export_content("NOTEBOOK", "n.ipynb", odd.encode(), "SOURCE") == HEADER + b"y\n"


@pytest.mark.parametrize("parts, user, admin, task, mkdirs, allowed", [
    (("Users", "ada", "x"), "ada", False, False, False, True),
    (("Users", "ada"), "ada", False, False, True, True),  # mkdirs of one's own home
    (("Users", "ada"), "ada", False, False, False, False),  # deleting it
    (("Users", "bob", "x"), "ada", False, False, False, False),
    (("Users", "ada-x", "y"), "ada", False, False, False, False),
    (("Shared", "x"), "ada", False, False, False, True),
    (("Shared",), "ada", False, False, False, False),
    (("Repos", "x"), "ada", True, False, False, True),
    (("Users", "ada", "x"), "ada", True, True, False, False),  # a task, even an admin's
])
def test_who_may_write_where(parts, user, admin, task, mkdirs, allowed):
    refusal = write_refusal(parts, user_name=user, is_admin=admin, for_a_task=task, making_directories=mkdirs)
    assert (refusal is None) == allowed, refusal


def test_the_bundle_summary_reads_name_target_git_and_the_jobs_file():
    metadata = {"version": 1, "config": {"bundle": {"name": "demo", "target": "prod", "git": {"branch": "main"}},
                                         "resources": {"jobs": {"a": {"id": "7", "relative_path": "r/a.yml"},
                                                                "b": {"id": "8"}}}}}
    assert bundle_summary(metadata, 7) == {"name": "demo", "target": "prod", "branch": "main",
                                           "resource_key": "a", "relative_path": "r/a.yml"}
    assert bundle_summary(metadata, 9) == {"name": "demo", "target": "prod", "branch": "main"}
    for broken in ([], {"config": []}, {"config": {"bundle": {"name": 3}}}, {"config": {"bundle": {}}}):
        assert bundle_summary(broken, 7) is None


def test_the_rules_import_no_django():
    code = "import sys, workspace.rules, jobs.spec.deployment; print(any(m.startswith('django') for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr
