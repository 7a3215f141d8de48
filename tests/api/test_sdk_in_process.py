"""The official databricks-sdk against this app served over real HTTP in a thread.

django-q2 runs in sync mode here, so a run finishes inside the run-now request; the SDK's
waiters still poll runs/get over HTTP. (Separate processes are tested in tests/e2e.)"""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue, InvalidState, NotFound, ResourceDoesNotExist
from databricks.sdk.service import jobs

from jobs.models import ApiToken
from tests.api.conftest import make_user

WAIT = timedelta(seconds=60)


@pytest.fixture
def connect(live_server):
    """WorkspaceClient(host, token) for a user; its connections close before the server stops
    (a kept-alive connection would leave a server thread to die noisily at exit)."""
    clients = []

    def connect_as(user):
        client = WorkspaceClient(host=live_server.url, token=ApiToken.issue(user, "sdk")[1])
        clients.append(client)
        return client

    yield connect_as
    for client in clients:
        client.api_client._api_client._session.close()


@pytest.fixture
def workspace(connect, db):
    return connect(make_user("sdk-user"))


@pytest.fixture
def script(tmp_path):
    """An absolute path to a Python script with this source."""

    def write(name, source):
        path = tmp_path / name
        path.write_text(source)
        return str(path)

    return write


def python_task(key, python_file, *parameters, depends_on=()):
    return jobs.Task(
        task_key=key,
        spark_python_task=jobs.SparkPythonTask(python_file=python_file, parameters=list(parameters)),
        depends_on=[jobs.TaskDependency(task_key=d) for d in depends_on],
    )


def test_the_sdk_starts_with_a_token_and_asks_for_nothing_but_the_discovery_document(connect, db, monkeypatch):
    asked = []
    send = requests.Session.request

    def recording(session, method, url, *args, **kwargs):
        asked.append((method, urlsplit(url).path))
        return send(session, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", recording)
    w = connect(make_user("starter"))
    assert list(w.jobs.list()) == []
    assert asked == [("GET", "/.well-known/databricks-config"), ("GET", "/api/2.2/jobs/list")]
    assert w.config.auth_type == "pat"
    assert w.config.workspace_id == "1"


def test_the_sdk_creates_gets_lists_and_deletes_jobs(workspace):
    created = [workspace.jobs.create(name=f"job {i}", tasks=[python_task("t", "/x.py")]).job_id for i in range(23)]
    job = workspace.jobs.get(created[0])
    assert job.settings.name == "job 0" and job.creator_user_name == "sdk-user"
    assert job.settings.tasks[0].spark_python_task.python_file == "/x.py"
    # The SDK follows next_page_token until a page has none.
    assert [j.job_id for j in workspace.jobs.list(limit=5)] == created[::-1]
    assert [j.job_id for j in workspace.jobs.list(name="JOB 7")] == [created[7]]
    workspace.jobs.delete(created[0])
    with pytest.raises(ResourceDoesNotExist):
        workspace.jobs.get(created[0])


def test_the_sdk_reads_a_job_with_250_tasks_across_pages(workspace):
    tasks = [python_task(f"t{i:03d}", "/x.py", depends_on=[f"t{i - 1:03d}"] if i else []) for i in range(250)]
    job_id = workspace.jobs.create(name="big", tasks=tasks).job_id
    assert [t.task_key for t in workspace.jobs.get(job_id).settings.tasks] == [t.task_key for t in tasks]


def test_the_sdk_updates_and_resets_a_job(workspace):
    job_id = workspace.jobs.create(name="before", tasks=[python_task("a", "/a.py")], tags={"x": "1"}).job_id
    workspace.jobs.update(job_id, new_settings=jobs.JobSettings(name="after"), fields_to_remove=["tags"])
    settings = workspace.jobs.get(job_id).settings
    assert settings.name == "after" and not settings.tags and settings.tasks[0].task_key == "a"
    workspace.jobs.reset(job_id, jobs.JobSettings(name="reset", tasks=[python_task("b", "/b.py")]))
    assert [t.task_key for t in workspace.jobs.get(job_id).settings.tasks] == ["b"]
    with pytest.raises(InvalidParameterValue, match="tasks"):
        workspace.jobs.reset(job_id, jobs.JobSettings(name="bad", tasks=[jobs.Task(task_key="typeless")]))


def test_the_sdk_runs_a_job_and_reads_its_output(workspace, script):
    hello = script("hello.py", "import sys\nprint('hello', *sys.argv[1:])\n")
    job_id = workspace.jobs.create(
        name="greeting",
        parameters=[jobs.JobParameterDefinition(name="who", default="world")],
        tasks=[python_task("greet", hello, "{{job.parameters.who}}"),
               python_task("again", hello, "again", depends_on=["greet"])],
    ).job_id
    waiter = workspace.jobs.run_now(job_id, job_parameters={"who": "sdk"}, idempotency_token="greet-1")
    run = waiter.result(timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert run.status.termination_details.code == jobs.TerminationCodeCode.SUCCESS
    assert [t.task_key for t in run.tasks] == ["greet", "again"]
    assert run.job_parameters[0].value == "sdk"
    output = workspace.jobs.get_run_output(run.tasks[0].run_id)
    assert "hello sdk" in output.logs
    assert output.metadata.job_run_id == run.run_id
    same = workspace.jobs.run_now(job_id, idempotency_token="greet-1").result(timeout=WAIT)
    assert same.run_id == run.run_id
    assert [r.run_id for r in workspace.jobs.list_runs(job_id=job_id, expand_tasks=True)] == [run.run_id]
    exported = workspace.jobs.export_run(run.run_id)
    assert "greet" in exported.views[0].content
    with pytest.raises(InvalidParameterValue):
        workspace.jobs.run_now(job_id, job_parameters={"nobody": "x"})


def test_the_sdk_repairs_a_failed_run(workspace, script, tmp_path):
    marker = tmp_path / "fixed"
    flaky = script("flaky.py", f"import os, sys\nsys.exit(0 if os.path.exists({str(marker)!r}) else 1)\n")
    ok = script("ok.py", "print('ok')\n")
    job_id = workspace.jobs.create(
        name="repairable", tasks=[python_task("extract", flaky), python_task("load", ok, depends_on=["extract"])]
    ).job_id
    run = workspace.jobs.run_now(job_id).result(timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.FAILED
    marker.touch()
    repaired = workspace.jobs.repair_run(run.run_id, rerun_all_failed_tasks=True).result(timeout=WAIT)
    assert repaired.state.result_state == jobs.RunResultState.SUCCESS
    history = workspace.jobs.get_run(run.run_id, include_history=True).repair_history
    assert [h.type for h in history] == [jobs.RepairHistoryItemType.ORIGINAL, jobs.RepairHistoryItemType.REPAIR]
    with pytest.raises(InvalidState):
        workspace.jobs.cancel_run(run.run_id)
    workspace.jobs.delete_run(run.run_id)
    with pytest.raises(NotFound):
        workspace.jobs.get_run(run.run_id)


def test_the_sdk_cancels_a_run_and_submits_a_one_time_run(workspace, script, monkeypatch):
    held = []
    monkeypatch.setattr("runs.broker.enqueue_attempts", held.extend)  # attempts wait: the run stays active
    job_id = workspace.jobs.create(name="slow", tasks=[python_task("wait", "/x.py")]).job_id
    run_id = workspace.jobs.run_now(job_id).run_id
    assert workspace.jobs.get_run(run_id).state.life_cycle_state == jobs.RunLifeCycleState.RUNNING
    canceled = workspace.jobs.cancel_run(run_id).result(timeout=WAIT)
    assert canceled.state.result_state == jobs.RunResultState.CANCELED
    assert held, "the attempt was handed to the broker"

    monkeypatch.undo()
    ok = script("ok.py", "print('one time')\n")
    run = workspace.jobs.submit(run_name="adhoc", tasks=[jobs.SubmitTask(
        task_key="once", spark_python_task=jobs.SparkPythonTask(python_file=ok))]).result(timeout=WAIT)
    assert run.run_type == jobs.RunType.SUBMIT_RUN and run.state.result_state == jobs.RunResultState.SUCCESS
    assert "one time" in workspace.jobs.get_run_output(run.tasks[0].run_id).logs
    assert [j.job_id for j in workspace.jobs.list()] == [job_id]
