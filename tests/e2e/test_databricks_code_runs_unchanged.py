"""Databricks task code and job definitions, unchanged, on a real `serve`: a notebook under
/Workspace that imports databricks.sdk.runtime, reads a widget and a secret, writes into a volume
and lists it with dbutils.fs; a job with a pipeline_task whose other tasks still run."""

import hashlib
import json
import os
from pathlib import Path

import pytest
from databricks.sdk.service import jobs

pytestmark = pytest.mark.e2e

NOTEBOOK = '''# Databricks notebook source
import hashlib, json
from databricks.sdk.runtime import dbutils

dbutils.widgets.text("day", "monday")
day = dbutils.widgets.get("day")
key = dbutils.secrets.get(scope="e2e-code", key="api-key")
print("the key is", key)

# COMMAND ----------

dbutils.fs.put(f"/Volumes/main/raw/landing/{day}.txt", "hello " + day, overwrite=True)
with open("/Volumes/main/raw/landing/by_open.txt", "w") as f:
    f.write("written with open()")
files = [info.name for info in dbutils.fs.ls("/Volumes/main/raw/landing")]
dbutils.notebook.exit(json.dumps({"files": files, "key_sha": hashlib.sha256(key.encode()).hexdigest()}))
'''


def task_home(server):
    return Path(f"{server.env['LAKEFLOW_HOME']}-tasks")


def test_a_workspace_notebook_reads_a_widget_and_a_secret_and_writes_a_volume(sqlite_server):
    w = sqlite_server.client()
    secret = "s3cr3t-" + os.urandom(6).hex()
    w.secrets.create_scope(scope="e2e-code")
    w.secrets.put_secret(scope="e2e-code", key="api-key", string_value=secret)
    shared = task_home(sqlite_server) / "Workspace" / "Shared"
    shared.mkdir(parents=True, exist_ok=True)
    (shared / "ingest.py").write_text(NOTEBOOK)

    job = w.jobs.create(name="databricks notebook", tasks=[jobs.Task(
        task_key="ingest", notebook_task=jobs.NotebookTask(notebook_path="/Workspace/Shared/ingest",
                                                           base_parameters={"day": "friday"}))])
    run = w.jobs.run_now(job.job_id).result()
    (task,) = run.tasks
    output = w.jobs.get_run_output(task.run_id)
    assert task.state.result_state == jobs.RunResultState.SUCCESS, (output.error, output.logs)
    seen = json.loads(output.notebook_output.result)
    assert seen == {"files": ["by_open.txt", "friday.txt"], "key_sha": hashlib.sha256(secret.encode()).hexdigest()}
    landing = task_home(sqlite_server) / "Volumes" / "main" / "raw" / "landing"
    assert (landing / "friday.txt").read_text() == "hello friday"
    assert (landing / "by_open.txt").read_text() == "written with open()"
    exported = w.jobs.export_run(task.run_id)
    shown = (output.logs or "") + "".join(view.content or "" for view in exported.views)
    assert "the key is [REDACTED]" in shown
    assert secret not in shown


def test_a_pipeline_task_fails_alone_and_the_rest_of_the_job_runs(sqlite_server):
    w = sqlite_server.client()
    ok = jobs.SparkPythonTask(python_file=sqlite_server.script("ok.py"))
    job = w.jobs.create(name="with a pipeline", tasks=[
        jobs.Task(task_key="extract", spark_python_task=ok),
        jobs.Task(task_key="refresh", pipeline_task=jobs.PipelineTask(pipeline_id="0123-abcd", full_refresh=True)),
        jobs.Task(task_key="load", depends_on=[jobs.TaskDependency(task_key="extract")], spark_python_task=ok),
        jobs.Task(task_key="report", depends_on=[jobs.TaskDependency(task_key="refresh")],
                  run_if=jobs.RunIf.ALL_DONE, spark_python_task=ok),
        jobs.Task(task_key="publish", depends_on=[jobs.TaskDependency(task_key="refresh")], spark_python_task=ok),
    ])
    assert w.jobs.get(job.job_id).settings.tasks[1].pipeline_task.pipeline_id == "0123-abcd"  # kept as written
    run = w.jobs.run_now(job.job_id).result()
    states = {t.task_key: t.state.result_state for t in run.tasks}
    assert states == {"extract": jobs.RunResultState.SUCCESS, "refresh": jobs.RunResultState.FAILED,
                      "load": jobs.RunResultState.SUCCESS, "report": jobs.RunResultState.SUCCESS,
                      "publish": jobs.RunResultState.UPSTREAM_FAILED}
    refresh = next(t for t in run.tasks if t.task_key == "refresh")
    assert "pipeline_task is not supported by this server" in w.jobs.get_run_output(refresh.run_id).error
    assert run.state.result_state == jobs.RunResultState.FAILED
