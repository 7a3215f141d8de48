"""Task environments on a real `serve`, driven by the databricks-sdk: a job environment installs a
small pure-Python package from the package registry and its task imports it; an environment whose
dependency does not exist fails its task with the installer's message, and the next task does not
start on a half-built environment."""

from datetime import timedelta

import pytest
from databricks.sdk.service import compute, jobs

pytestmark = pytest.mark.e2e

SHOW_SIX = "import six, sys\nprint('six', six.__version__, 'in', sys.prefix)\n"


def run_to_end(w, job_id):
    run_id = w.jobs.run_now(job_id=job_id).run_id
    return w.jobs.wait_get_run_job_terminated_or_skipped(run_id, timeout=timedelta(minutes=5))


def test_a_task_imports_a_package_its_environment_installed_from_the_registry(sqlite_server):
    server = sqlite_server
    w = server.client()
    (server.workspace / "show_six.py").write_text(SHOW_SIX)
    job = w.jobs.create(
        name="environment from the registry",
        environments=[jobs.JobEnvironment(environment_key="default", spec=compute.Environment(
            environment_version="4", dependencies=["six==1.16.0"]))],
        tasks=[jobs.Task(task_key="show", environment_key="default",
                         spark_python_task=jobs.SparkPythonTask(python_file=server.script("show_six.py")))])

    run = run_to_end(w, job.job_id)
    task = run.tasks[0]
    assert task.state.result_state == jobs.RunResultState.SUCCESS, task.state.state_message
    logs = w.jobs.get_run_output(task.run_id).logs
    assert logs.startswith("six 1.16.0 in ") and "/environments/" in logs
    assert task.setup_duration > 0  # the build is the task's setup, apart from its execution
    assert w.jobs.get(job.job_id).settings.environments[0].spec.environment_version == "4"

    again = run_to_end(w, job.job_id).tasks[0]  # the same spec: the environment is reused
    assert again.state.result_state == jobs.RunResultState.SUCCESS
    assert w.jobs.get_run_output(again.run_id).logs == logs


def test_a_dependency_that_cannot_be_resolved_fails_the_task_with_the_installers_message(sqlite_server):
    server = sqlite_server
    w = server.client()
    (server.workspace / "show_six.py").write_text(SHOW_SIX)
    missing = "lakeflow-e2e-no-such-package-qx==1.0"
    job = w.jobs.create(
        name="unresolvable environment",
        tasks=[jobs.Task(task_key="show", libraries=[compute.Library(pypi=compute.PythonPyPiLibrary(package=missing))],
                         spark_python_task=jobs.SparkPythonTask(python_file=server.script("show_six.py")))])

    for _ in range(2):  # the failure is not kept as a built environment: each attempt tries again
        task = run_to_end(w, job.job_id).tasks[0]
        assert task.state.result_state == jobs.RunResultState.FAILED
        assert task.status.termination_details.code == jobs.TerminationCodeCode.LIBRARY_INSTALLATION_ERROR
        assert "lakeflow-e2e-no-such-package-qx" in task.state.state_message
