"""`lakeflow bundle` end to end against a real server: bundles written from Databricks'
documentation are validated, deployed, run, changed and redeployed (same job ids, a removed job
deleted) and destroyed, through the real console script and HTTP only."""

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from databricks.sdk.errors import NotFound
from databricks.sdk.service.workspace import ImportFormat

pytestmark = pytest.mark.e2e

LAKEFLOW = str(Path(sys.executable).with_name("lakeflow"))

DOCS_BUNDLE = {
    # The shape of Databricks' default-python template: two targets, a variable, includes, a wheel
    # artifact and a notebook.
    "databricks.yml": """
        bundle:
          name: nightly_etl
        include:
          - resources/*.yml
        variables:
          catalog:
            description: The catalog to write to
            default: dev_catalog
        artifacts:
          etl_wheel:
            type: whl
            path: .
        targets:
          dev:
            mode: development
            default: true
          prod:
            mode: production
            workspace:
              root_path: /Workspace/Shared/.bundle/${bundle.name}/${bundle.target}
            variables:
              catalog: prod_catalog
    """,
    "resources/etl.job.yml": """
        resources:
          jobs:
            etl:
              name: etl
              schedule:
                quartz_cron_expression: "0 0 5 * * ?"
                timezone_id: Europe/Amsterdam
              parameters:
                - name: catalog
                  default: ${var.catalog}
              tasks:
                - task_key: explore
                  notebook_task:
                    notebook_path: ../src/explore.ipynb
                - task_key: main
                  depends_on: [{task_key: explore}]
                  environment_key: default
                  python_wheel_task:
                    package_name: nightly_etl
                    entry_point: main
                    parameters: ["--catalog", "${var.catalog}"]
              environments:
                - environment_key: default
                  spec:
                    environment_version: "2"
                    dependencies: [../dist/*.whl]
            cleanup:
              name: cleanup
              tasks:
                - task_key: sweep
                  spark_python_task:
                    python_file: ../src/sweep.py
    """,
    "src/explore.ipynb": json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": [
            "from databricks.sdk.runtime import dbutils\n",
            "print('exploring', dbutils.widgets.get('catalog'))"]}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}),
    "src/sweep.py": "print('sweeping')\n",
    "src/nightly_etl/__init__.py": "",
    "src/nightly_etl/main.py": """
        import sys


        def main():
            print('main task with', sys.argv[1:])
    """,
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "nightly_etl"
        version = "0.1.0"

        [project.entry-points.packages]
        main = "nightly_etl.main:main"

        [tool.setuptools.packages.find]
        where = ["src"]
    """,
    ".gitignore": "dist/\nbuild/\n*.egg-info/\n.databricks/\n",
}


def write(root, files):
    for relative, text in files.items():
        path = Path(root) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return Path(root)


def lakeflow(server, root, *args, check=True, env=None):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "BUNDLE_VAR_"))}
    environment.update(DATABRICKS_HOST=server.url, DATABRICKS_TOKEN=server.token, HOME=str(root.parent),
                       **(env or {}))
    done = subprocess.run([LAKEFLOW, "bundle", *args], cwd=root, env=environment, capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)
    if check:
        assert done.returncode == 0, f"lakeflow bundle {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def summary(server, root, *args):
    return json.loads(lakeflow(server, root, "summary", "-o", "json", *args).stdout)


def test_a_documented_bundle_deploys_runs_redeploys_and_is_destroyed(server, tmp_path):
    root = write(tmp_path / "nightly_etl", DOCS_BUNDLE)
    w = server.client()
    me = w.current_user.me().user_name
    validated = lakeflow(server, root, "validate")
    assert "Validation OK!" in validated.stdout

    lakeflow(server, root, "deploy")
    jobs = summary(server, root)["resources"]["jobs"]
    etl_id, cleanup_id = int(jobs["etl"]["id"]), int(jobs["cleanup"]["id"])
    assert jobs["etl"]["url"] == f"{server.url}/jobs/{etl_id}/"
    etl = w.jobs.get(etl_id).settings
    assert etl.name == f"[dev {me.split('@')[0]}] etl"
    assert etl.schedule.pause_status.value == "PAUSED"  # development mode pauses schedules
    assert etl.deployment.kind.value == "BUNDLE" and etl.edit_mode.value == "UI_LOCKED"
    root_path = f"/Workspace/Users/{me}/.bundle/nightly_etl/dev"
    assert etl.deployment.metadata_file_path == f"{root_path}/state/metadata.json"
    wheel = etl.environments[0].spec.dependencies[0]
    assert wheel.startswith(f"{root_path}/artifacts/.internal/nightly_etl-0.1.0-") and wheel.endswith(".whl")
    assert w.workspace.get_status(f"{root_path}/files/src/sweep.py").path.endswith("sweep.py")

    ran = lakeflow(server, root, "run", "etl", "--params", "catalog=from_cli")
    assert f"/jobs/{etl_id}/runs/" in ran.stdout and '"main" SUCCESS' in ran.stdout
    run_id = int(ran.stdout.split(f"/jobs/{etl_id}/runs/")[1].split("/")[0])
    run = w.jobs.get_run(run_id)
    assert run.state.result_state.value == "SUCCESS"
    assert [p.value for p in run.job_parameters if p.name == "catalog"] == ["from_cli"]
    main_task = next(t for t in run.tasks if t.task_key == "main")
    assert "main task with ['--catalog', 'dev_catalog']" in w.jobs.get_run_output(main_task.run_id).logs

    # Change a task and drop a job: the same id is updated, the dropped job is deleted.
    job_file = root / "resources/etl.job.yml"
    job_file.write_text(job_file.read_text().split("    cleanup:")[0].replace("task_key: explore", "task_key: look")
                        .replace("{task_key: explore}", "{task_key: look}"))
    lakeflow(server, root, "deploy")
    assert int(summary(server, root)["resources"]["jobs"]["etl"]["id"]) == etl_id
    assert [t.task_key for t in w.jobs.get(etl_id).settings.tasks] == ["look", "main"]
    with pytest.raises(NotFound):
        w.jobs.get(cleanup_id)

    destroyed = lakeflow(server, root, "destroy", "--auto-approve")
    assert f"delete job etl ({etl_id})" in destroyed.stdout
    with pytest.raises(NotFound):
        w.jobs.get(etl_id)
    with pytest.raises(NotFound):
        w.workspace.get_status(root_path)


def test_the_production_target_uses_its_overrides(sqlite_server, tmp_path):
    root = write(tmp_path / "nightly_etl", DOCS_BUNDLE)
    lakeflow(sqlite_server, root, "deploy", "-t", "prod")
    w = sqlite_server.client()
    try:
        jobs = summary(sqlite_server, root, "-t", "prod")["resources"]["jobs"]
        etl = w.jobs.get(int(jobs["etl"]["id"])).settings
        assert etl.name == "etl"
        assert etl.schedule.pause_status is None or etl.schedule.pause_status.value == "UNPAUSED"
        assert etl.parameters[0].default == "prod_catalog"
        assert etl.tasks[0].notebook_task.notebook_path == \
            "/Workspace/Shared/.bundle/nightly_etl/prod/files/src/explore"
    finally:
        lakeflow(sqlite_server, root, "destroy", "-t", "prod", "--auto-approve")


def test_a_python_defined_bundle_deploys_and_runs(sqlite_server, tmp_path):
    root = write(tmp_path / "py_bundle", {
        "databricks.yml": """
            bundle:
              name: py_bundle
            python:
              resources:
                - "resources:load_resources"
        """,
        "resources/__init__.py": """
            from databricks.bundles.core import Resources
            from databricks.bundles.jobs import Job, SparkPythonTask, Task


            def load_resources() -> Resources:
                resources = Resources()
                resources.add_job("greet", Job(name="greet", tasks=[
                    Task(task_key="hello", spark_python_task=SparkPythonTask(python_file="../src/hello.py"))]))
                return resources
        """,
        "src/hello.py": "import sys\nprint('hello from python-defined resources', sys.argv[1:])\n",
    })
    lakeflow(sqlite_server, root, "deploy")
    ran = lakeflow(sqlite_server, root, "run", "greet")
    assert '"hello" SUCCESS' in ran.stdout and "Run " in ran.stdout
    # --no-wait returns with the run's URL; after --, a job without parameters takes python_params.
    started = lakeflow(sqlite_server, root, "run", "greet", "--no-wait", "--", "to", "you")
    run_id = int(started.stdout.split("/runs/")[1].split("/")[0])
    w = sqlite_server.client()
    run = w.jobs.wait_get_run_job_terminated_or_skipped(run_id)
    assert run.state.result_state.value == "SUCCESS"
    assert "['to', 'you']" in w.jobs.get_run_output(run.tasks[0].run_id).logs
    lakeflow(sqlite_server, root, "destroy", "--auto-approve")


def test_bundle_permissions_are_applied(sqlite_server, tmp_path):
    w = sqlite_server.client()
    w.users.create(user_name="bundle.reader@example.com")
    root = write(tmp_path / "perm_bundle", {
        "databricks.yml": """
            bundle:
              name: perm_bundle
            permissions:
              - level: CAN_VIEW
                user_name: bundle.reader@example.com
            resources:
              jobs:
                shared:
                  tasks:
                    - task_key: t
                      spark_python_task: {python_file: ./t.py}
        """,
        "t.py": "print(1)\n",
    })
    lakeflow(sqlite_server, root, "deploy")
    job_id = int(summary(sqlite_server, root)["resources"]["jobs"]["shared"]["id"])
    acl = w.permissions.get("jobs", str(job_id)).access_control_list
    levels = {(a.user_name, p.permission_level.value) for a in acl for p in a.all_permissions if not p.inherited}
    assert ("bundle.reader@example.com", "CAN_VIEW") in levels
    assert any(level == "IS_OWNER" for _, level in levels)
    lakeflow(sqlite_server, root, "destroy", "--auto-approve")


def test_bad_bundles_are_refused_before_anything_changes(sqlite_server, tmp_path):
    files = dict(DOCS_BUNDLE)
    files["resources/etl.job.yml"] = DOCS_BUNDLE["resources/etl.job.yml"].replace("${var.catalog}", "${var.catalgo}")
    root = write(tmp_path / "nightly_etl", files)
    before = {j.job_id for j in sqlite_server.client().jobs.list()}
    for verb in ("validate", "deploy"):
        refused = lakeflow(sqlite_server, root, verb, check=False)
        assert refused.returncode == 1
        assert "reference does not exist: ${var.catalgo}" in refused.stderr
        assert "resources/etl.job.yml:" in refused.stderr
    unknown_target = lakeflow(sqlite_server, root, "deploy", "-t", "staging", check=False)
    assert unknown_target.returncode == 1 and "staging: no such target" in unknown_target.stderr
    assert {j.job_id for j in sqlite_server.client().jobs.list()} == before


def test_run_exits_with_the_runs_result(sqlite_server, tmp_path):
    root = write(tmp_path / "failing", {
        "databricks.yml": """
            bundle:
              name: failing
            resources:
              jobs:
                breaks:
                  tasks:
                    - task_key: boom
                      spark_python_task: {python_file: ./boom.py}
        """,
        "boom.py": "raise SystemExit('the data is not there')\n",
    })
    lakeflow(sqlite_server, root, "deploy")
    w = sqlite_server.client()
    lock = f"/Workspace/Users/{w.current_user.me().user_name}/.bundle/failing/default/state/deploy.lock"
    w.workspace.upload(lock, io.BytesIO(b'{"User": "someone.else@example.com", "ID": "x"}'),
                       format=ImportFormat.AUTO, overwrite=False)
    locked = lakeflow(sqlite_server, root, "deploy", check=False)  # another deploy holds the target
    assert locked.returncode == 1 and "deploy lock acquired by someone.else@example.com" in locked.stderr
    lakeflow(sqlite_server, root, "deploy", "--force-lock")
    with pytest.raises(NotFound):
        w.workspace.get_status(lock)  # released by the deploy that forced it
    ran = lakeflow(sqlite_server, root, "run", "breaks", check=False)
    assert ran.returncode == 1
    assert '"boom" FAILED' in ran.stdout and "the data is not there" in ran.stdout
    unconfirmed = lakeflow(sqlite_server, root, "destroy", check=False)  # no terminal to ask on
    assert unconfirmed.returncode == 1 and "please specify --auto-approve" in unconfirmed.stderr
    job_id = int(summary(sqlite_server, root)["resources"]["jobs"]["breaks"]["id"])
    assert sqlite_server.client().jobs.get(job_id).job_id == job_id  # still there
    lakeflow(sqlite_server, root, "destroy", "--auto-approve")


def test_a_bundle_with_a_git_source_runs_from_the_repository(sqlite_server, tmp_path):
    from tests.git_repos import make_repository

    repository = make_repository(tmp_path / "git")
    commit = repository.commit({"jobs/hello.py": "print('hello from git')\n"})
    root = write(tmp_path / "git_bundle", {
        "databricks.yml": f"""
            bundle:
              name: git_bundle
            resources:
              jobs:
                from_git:
                  git_source:
                    git_url: {repository.url}
                    git_provider: gitHub
                    git_branch: main
                  tasks:
                    - task_key: hello
                      spark_python_task:
                        python_file: jobs/hello.py
        """,
    })
    lakeflow(sqlite_server, root, "deploy")
    job_id = int(summary(sqlite_server, root)["resources"]["jobs"]["from_git"]["id"])
    w = sqlite_server.client()
    assert w.jobs.get(job_id).settings.tasks[0].spark_python_task.python_file == "jobs/hello.py"  # not rewritten
    ran = lakeflow(sqlite_server, root, "run", "from_git")
    run_id = int(ran.stdout.split(f"/jobs/{job_id}/runs/")[1].split("/")[0])
    run = w.jobs.get_run(run_id)
    assert run.state.result_state.value == "SUCCESS"
    assert run.git_source.git_snapshot.used_commit == commit
    assert "hello from git" in w.jobs.get_run_output(run.tasks[0].run_id).logs
    lakeflow(sqlite_server, root, "destroy", "--auto-approve")


def test_a_bundle_deploys_its_sql_warehouse_and_a_task_queries_it(sqlite_server, tmp_path):
    root = write(tmp_path / "wh_bundle", {
        "databricks.yml": """
            bundle:
              name: wh_bundle
            variables:
              analytics:
                description: a configured warehouse, found by name
                lookup:
                  warehouse: pg
            resources:
              sql_warehouses:
                reporting:
                  name: reporting
                  cluster_size: 2X-Small
                  max_num_clusters: 1
                  auto_stop_mins: 10
              jobs:
                report:
                  tasks:
                    - task_key: count
                      sql_task:
                        warehouse_id: ${resources.sql_warehouses.reporting.id}
                        file:
                          path: ./count.sql
                    - task_key: elsewhere
                      sql_task:
                        warehouse_id: ${var.analytics}
                        file:
                          path: ./count.sql
        """,
        "count.sql": "CREATE TABLE IF NOT EXISTS seen AS SELECT 42 AS answer;\nSELECT answer FROM seen;\n",
    })
    lakeflow(sqlite_server, root, "deploy")
    resources = summary(sqlite_server, root)["resources"]
    warehouse_id = resources["sql_warehouses"]["reporting"]["id"]
    w = sqlite_server.client()
    assert w.warehouses.get(warehouse_id).name == "reporting"
    job = w.jobs.get(int(resources["jobs"]["report"]["id"])).settings
    assert job.tasks[0].sql_task.warehouse_id == warehouse_id
    assert job.tasks[1].sql_task.warehouse_id == "pg"
    lakeflow(sqlite_server, root, "run", "report", "--only", "count")
    lakeflow(sqlite_server, root, "destroy", "--auto-approve")
    assert warehouse_id not in {wh.id for wh in w.warehouses.list()}


def test_the_starter_bundle_of_init_deploys_and_runs(sqlite_server, tmp_path):
    made = subprocess.run([LAKEFLOW, "bundle", "init", "--project-name", "starter", "--output-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    root = tmp_path / "starter"
    assert "Validation OK!" in lakeflow(sqlite_server, root, "validate").stdout
    lakeflow(sqlite_server, root, "deploy")
    ran = lakeflow(sqlite_server, root, "run", "starter_job")
    assert '"notebook_task" SUCCESS' in ran.stdout and '"main_task" SUCCESS' in ran.stdout
    lakeflow(sqlite_server, root, "destroy", "--auto-approve")
