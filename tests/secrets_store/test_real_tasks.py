"""Real task processes (django-q2's sync mode) read secrets over HTTP from a live server: a script
that fails with the value in its exception has its error, trace and state message stored with the
value [REDACTED]; a notebook's log and rendered outputs show it [REDACTED]."""

from runs.admission import create_run
from runs.engine.states import RunResultState as R
from runs.models import TaskRun
from runs.task_logs import read_task_log_tail
from tests.runs.conftest import alice, make_job  # noqa: F401 (a fixture)
from vault import store

SCRIPT = """
value = dbutils.secrets.get("s", "k")
print("got", value, flush=True)
raise ValueError(f"cannot connect with {value}")
"""


def test_a_task_that_fails_with_a_secret_in_its_error_stores_it_redacted(alice, live_server, settings, tmp_path):
    settings.LAKEFLOW_BASE_URL = live_server.url
    store.create_scope("s", alice)
    store.put_secret("s", "k", b"Pa55-in-an-error", alice)
    script = tmp_path / "leak.py"
    script.write_text(SCRIPT)
    run, _ = create_run(make_job(alice, [{"task_key": "py", "spark_python_task": {"python_file": str(script)}}]))

    attempt = TaskRun.objects.get(run=run, task_key="py")
    assert attempt.result_state == R.FAILED
    assert attempt.error == "ValueError: cannot connect with [REDACTED]"
    assert attempt.state_message == "ValueError: cannot connect with [REDACTED]"
    assert "leak.py" in attempt.error_trace and "Pa55" not in attempt.error_trace
    assert read_task_log_tail(attempt).text.startswith("got [REDACTED]\n")
    assert "Pa55-in-an-error" in open(attempt.log_path).read()  # the file keeps what the task wrote


NOTEBOOK = """# Databricks notebook source
from databricks.sdk.runtime import dbutils
value = dbutils.secrets.get(scope="s", key="k")
print("in a cell:", value)
"""


def test_a_notebook_reads_a_secret_and_its_outputs_are_shown_redacted(alice, live_server, settings, tmp_path, client):
    settings.LAKEFLOW_BASE_URL = live_server.url
    store.create_scope("s", alice)
    store.put_secret("s", "k", b"notebook-Pa55", alice)
    (tmp_path / "reads.py").write_text(NOTEBOOK)
    run, _ = create_run(make_job(alice, [{"task_key": "nb", "notebook_task": {"notebook_path": str(tmp_path / "reads")}}]))

    attempt = TaskRun.objects.get(run=run, task_key="nb")
    assert attempt.result_state == R.SUCCESS, (attempt.error, read_task_log_tail(attempt).text)
    assert "in a cell: [REDACTED]" in read_task_log_tail(attempt).text
    client.force_login(alice)
    page = client.get(f"/task-runs/{attempt.id}/output/").content.decode()
    assert "in a cell: [REDACTED]" in page and "notebook-Pa55" not in page
    assert "notebook-Pa55" in open(attempt.executed_notebook).read()  # kept as executed; shown redacted
