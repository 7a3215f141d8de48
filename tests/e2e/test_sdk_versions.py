"""The SDK range the README promises: the suite drives every server with the newest databricks-sdk
(pinned in pyproject's test extra); this drives a real `serve` with the oldest supported one,
installed from the registry into a virtual environment of its own."""

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.e2e

OLDEST_SUPPORTED_SDK = "0.156.0"
"""Keep in step with the README's "Use it with the Databricks SDK"."""

CLIENT = """
import json, sys
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import jobs
from databricks.sdk.version import __version__

host, token, ok_py, fail_py = sys.argv[1:5]
w = WorkspaceClient(host=host, token=token)
job = w.jobs.create(
    name="oldest sdk",
    parameters=[jobs.JobParameterDefinition(name="day", default="monday")],
    tasks=[
        jobs.Task(task_key="first", spark_python_task=jobs.SparkPythonTask(python_file=ok_py,
                                                                        parameters=["{{job.parameters.day}}"])),
        jobs.Task(task_key="second", depends_on=[jobs.TaskDependency(task_key="first")],
                  spark_python_task=jobs.SparkPythonTask(python_file=fail_py)),
    ],
)
run = w.jobs.run_now(job.job_id, job_parameters={"day": "friday"}).result()
first = next(t for t in run.tasks if t.task_key == "first")
w.jobs.repair_run(run.run_id, rerun_tasks=["second"]).result()
repaired = w.jobs.get_run(run.run_id, include_history=True)
print(json.dumps({
    "version": __version__,
    "job_name": w.jobs.get(job.job_id).settings.name,
    "listed": job.job_id in [j.job_id for j in w.jobs.list(name="oldest sdk")],
    "result": run.state.result_state.value,
    "first": first.state.result_state.value,
    "first_logs": w.jobs.get_run_output(first.run_id).logs,
    "runs": [r.run_id for r in w.jobs.list_runs(job_id=job.job_id)],
    "run_id": run.run_id,
    "repair_count": len(repaired.repair_history or []),
    "me": w.current_user.me().user_name,
}))
"""


@pytest.fixture(scope="module")
def oldest_sdk_python(tmp_path_factory):
    venv = tmp_path_factory.mktemp("oldest-sdk") / "venv"
    # No pip of its own (ensurepip costs tens of seconds on a busy machine): ours installs into it.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet",
                                f"databricks-sdk=={OLDEST_SUPPORTED_SDK}"], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr
    return python


def test_the_oldest_supported_sdk_creates_runs_repairs_and_reads_jobs(sqlite_server, oldest_sdk_python, tmp_path):
    client = tmp_path / "client.py"
    client.write_text(textwrap.dedent(CLIENT))
    done = subprocess.run([oldest_sdk_python, str(client), sqlite_server.url, sqlite_server.token,
                           sqlite_server.script("ok.py"), sqlite_server.script("fail.py")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["version"] == OLDEST_SUPPORTED_SDK
    assert seen["job_name"] == "oldest sdk" and seen["listed"] is True
    assert (seen["result"], seen["first"]) == ("FAILED", "SUCCESS")
    assert "ok friday" in seen["first_logs"]
    assert seen["runs"] == [seen["run_id"]]
    assert seen["repair_count"] >= 1
    assert seen["me"]
