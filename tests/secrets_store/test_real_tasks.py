"""A real task process (django-q2's sync mode) reads a secret over HTTP from a live server and
fails with the value in its exception: the error, the trace and the state message are stored
with the value [REDACTED], and its log is shown so."""

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
