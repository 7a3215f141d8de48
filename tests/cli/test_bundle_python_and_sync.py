"""Python-defined resources through databricks-bundles' own build entry point; which files a
deploy syncs; ``bundle run``'s arguments and its progress view."""

import pytest

from lakeflow_cli.bundle import run as running, sync
from lakeflow_cli.bundle.located import plain
from lakeflow_cli.bundle.prepare import prepare
from lakeflow_cli.bundle.problems import BundleError
from tests.cli.bundles import ALICE, no_lookup, write_bundle

PYTHON_BUNDLE = {
    "databricks.yml": """
        bundle:
          name: pyb
        python:
          resources:
            - "resources:load_resources"
        variables:
          greeting:
            default: hello
    """,
    "resources/__init__.py": """
        from databricks.bundles.core import Bundle, Resources, Variable, variables
        from databricks.bundles.jobs import Job


        @variables
        class Variables:
            greeting: Variable[str]


        def load_resources(bundle: Bundle) -> Resources:
            resources = Resources()
            job = Job.from_dict({
                "name": "python job",
                "tasks": [{"task_key": "hello", "spark_python_task": {
                    "python_file": "../src/hello.py", "parameters": [bundle.resolve_variable(Variables.greeting)]}}],
            })
            resources.add_job("python_job", job)
            return resources
    """,
    "src/hello.py": "import sys; print(sys.argv[1])\n",
}


def test_python_resources_load_through_the_packages_build_entry_point(tmp_path):
    root = write_bundle(tmp_path, PYTHON_BUNDLE)
    prepared = prepare(root, None, user=ALICE, lookup=no_lookup)
    job = plain(prepared.resources("jobs")["python_job"])
    assert job["name"] == "python job"
    task = job["tasks"][0]["spark_python_task"]
    assert task["parameters"] == ["hello"]
    assert task["python_file"] == "/Workspace/Users/alice@example.com/.bundle/pyb/default/files/src/hello.py"


def test_python_mutators_change_every_job_yaml_ones_too(tmp_path):
    files = dict(PYTHON_BUNDLE)
    files["databricks.yml"] = PYTHON_BUNDLE["databricks.yml"].replace(
        '            - "resources:load_resources"\n',
        '            - "resources:load_resources"\n          mutators:\n            - "mutators:tag_team"\n') + """
        resources:
          jobs:
            yaml_job:
              tasks: [{task_key: t, spark_python_task: {python_file: src/hello.py}}]
    """
    files["mutators.py"] = """
        from dataclasses import replace

        from databricks.bundles.core import Bundle, job_mutator
        from databricks.bundles.jobs import Job


        @job_mutator
        def tag_team(bundle: Bundle, job: Job) -> Job:
            return replace(job, tags={**(job.tags or {}), "team": "data", "target": bundle.target})
    """
    root = write_bundle(tmp_path, files)
    prepared = prepare(root, None, user=ALICE, lookup=no_lookup)
    for key in ("python_job", "yaml_job"):
        assert plain(prepared.resources("jobs")[key])["tags"] == {"team": "data", "target": "default"}


def test_an_error_in_python_resources_names_the_python_file(tmp_path):
    files = dict(PYTHON_BUNDLE)
    files["resources/__init__.py"] = "def load_resources():\n    raise RuntimeError('no jobs today')\n"
    root = write_bundle(tmp_path, files)
    with pytest.raises(BundleError) as caught:
        prepare(root, None, user=ALICE, lookup=no_lookup)
    text = str(caught.value)
    assert "no jobs today" in text and "resources/__init__.py" in text


def test_sync_honours_gitignore_and_include_exclude(tmp_path):
    root = write_bundle(tmp_path, {
        "databricks.yml": "bundle: {name: s}\n", ".gitignore": "*.log\nbuild/\n!keep.log\n",
        "src/a.py": "", "src/debug.log": "", "keep.log": "", "build/out.txt": "", "build/wanted.txt": "",
        "src/sub/.gitignore": "secret.txt\n", "src/sub/secret.txt": "", "src/sub/ok.txt": "",
        "docs/big.pdf": "", ".databricks/bundle/dev/x": "", ".git/config": "",
    })
    assert sync.bundle_files(root) == [".gitignore", "databricks.yml", "docs/big.pdf", "keep.log", "src/a.py",
                                       "src/sub/.gitignore", "src/sub/ok.txt"]
    chosen = sync.bundle_files(root, include=["build/wanted.txt"], exclude=["docs/**"])
    assert "build/wanted.txt" in chosen and "build/out.txt" not in chosen and "docs/big.pdf" not in chosen


def test_sync_plan_sends_only_changes_and_deletes_removed_files(tmp_path):
    root = write_bundle(tmp_path, {"a.txt": "1", "b.txt": "2"})
    upload, delete, snapshot = sync.plan(root, ["a.txt", "b.txt"], {}, "/Workspace/x")
    assert (upload, delete) == (["a.txt", "b.txt"], [])
    (root / "a.txt").write_text("changed")
    (root / "b.txt").unlink()
    upload, delete, _ = sync.plan(root, ["a.txt"], snapshot, "/Workspace/x")
    assert (upload, delete) == (["a.txt"], ["b.txt"])
    upload, _, _ = sync.plan(root, ["a.txt"], snapshot, "/Workspace/elsewhere")
    assert upload == ["a.txt"]  # another remote root: everything again


def test_run_arguments_follow_the_cli():
    assert running.parse_params("a=1,b=x=y") == {"a": "1", "b": "x=y"}
    with pytest.raises(BundleError):
        running.parse_params("novalue")
    assert running.parse_trailing(["--a", "1", "--b=2"], True) == ({"a": "1", "b": "2"}, [])
    assert running.parse_trailing(["x", "--y"], False) == ({}, ["x", "--y"])
    with pytest.raises(BundleError):
        running.parse_trailing(["--a"], True)


class RunServer:
    """runs/get answers in the order a run moves through them."""

    def __init__(self, states):
        self.states = list(states)

    def call(self, method, path, body=None, query=None):
        if path.endswith("/runs/get"):
            return self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {"error": "boom", "logs": "line 1\nTraceback: boom"}


def test_the_progress_view_prints_each_task_change_once_and_the_failure_with_its_log():
    def run(life, result=None, tasks=()):
        state = {"life_cycle_state": life, **({"result_state": result} if result else {})}
        return {"run_id": 7, "run_page_url": "http://x/jobs/1/runs/7/", "state": state,
                "tasks": [{"run_id": 70 + i, "task_key": key, "attempt_number": 0,
                           "state": {"life_cycle_state": tl, **({"result_state": tr} if tr else {})}}
                          for i, (key, tl, tr) in enumerate(tasks)]}
    server = RunServer([
        run("RUNNING", tasks=[("a", "RUNNING", None), ("b", "BLOCKED", None)]),
        run("RUNNING", tasks=[("a", "RUNNING", None), ("b", "BLOCKED", None)]),
        run("RUNNING", tasks=[("a", "TERMINATED", "SUCCESS"), ("b", "RUNNING", None)]),
        run("TERMINATED", "FAILED", tasks=[("a", "TERMINATED", "SUCCESS"), ("b", "TERMINATED", "FAILED")]),
    ])
    lines = []
    finished = running.follow(server, 7, lines.append, sleep=lambda s: None)
    shown = [line.split(" ", 2)[2] for line in lines[1:]]
    assert lines[0] == "Run URL: http://x/jobs/1/runs/7/"
    assert shown == ['"a" RUNNING', '"b" BLOCKED', '"a" SUCCESS', '"b" RUNNING', '"b" FAILED']
    summary = running.summary_lines(server, finished)
    assert summary[0] == "Run 7 FAILED" and summary[1] == "Task b FAILED: boom"
    assert summary[-1] == "  Traceback: boom"
