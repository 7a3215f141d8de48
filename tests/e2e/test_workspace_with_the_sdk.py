"""The Workspace API end to end, driven by the official databricks-sdk against a real server (both
modes): mkdirs, upload (its multipart form), download, list, get_status, delete; a notebook
uploaded through it runs as a notebook_task; the Databricks CLI's raw import-file, and its
exclusive create under concurrent callers (the bundle deploy lock)."""

import io
import secrets
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from databricks.sdk.errors import DatabricksError, NotFound, ResourceAlreadyExists
from databricks.sdk.service import jobs
from databricks.sdk.service.workspace import ImportFormat, Language, ObjectType

from tests.e2e.test_core_with_the_sdk import WAIT

pytestmark = pytest.mark.e2e

NOTEBOOK = b"# Databricks notebook source\nprint('from the workspace')\n"


def test_the_sdk_uploads_lists_downloads_and_deletes_workspace_files(server):
    w = server.client()
    base = f"/Workspace/Users/{w.current_user.me().user_name}/sdk-{secrets.token_hex(4)}"

    w.workspace.mkdirs(f"{base}/lib")
    w.workspace.upload(f"{base}/lib/data.csv", io.BytesIO(b"a,b\n1,2\n"), format=ImportFormat.AUTO)
    w.workspace.upload(f"{base}/etl.py", NOTEBOOK, format=ImportFormat.AUTO)
    w.workspace.upload(f"{base}/report", b"select 1", format=ImportFormat.SOURCE, language=Language.SQL)

    assert w.workspace.download(f"{base}/lib/data.csv").read() == b"a,b\n1,2\n"
    notebook = w.workspace.get_status(f"{base}/etl")
    assert (notebook.object_type, notebook.language, notebook.path) == (
        ObjectType.NOTEBOOK, Language.PYTHON, f"{base.removeprefix('/Workspace')}/etl")
    assert w.workspace.download(f"{base}/report").read() == b"-- Databricks notebook source\nselect 1"
    listed = {(o.path.rsplit("/", 1)[1], o.object_type) for o in w.workspace.list(base)}
    assert listed == {("lib", ObjectType.DIRECTORY), ("etl", ObjectType.NOTEBOOK), ("report", ObjectType.NOTEBOOK)}
    assert [o.path.rsplit("/", 1)[1] for o in w.workspace.list(base, recursive=True)
            if o.object_type == ObjectType.FILE] == ["data.csv"]

    with pytest.raises(ResourceAlreadyExists):
        w.workspace.upload(f"{base}/lib/data.csv", b"again", format=ImportFormat.AUTO)
    w.workspace.upload(f"{base}/lib/data.csv", b"again", format=ImportFormat.AUTO, overwrite=True)
    assert w.workspace.download(f"{base}/lib/data.csv").read() == b"again"

    with pytest.raises(DatabricksError) as not_empty:
        w.workspace.delete(base)
    assert not_empty.value.error_code == "DIRECTORY_NOT_EMPTY"
    w.workspace.delete(base, recursive=True)
    with pytest.raises(NotFound):
        w.workspace.get_status(base)


def test_an_overwriting_upload_replaces_a_notebook_with_a_file_of_its_disk_name_and_back(server):
    # A bundle deploy syncs x.py with AUTO and overwrite: a notebook that lost its header is a file.
    w = server.client()
    base = f"/Workspace/Users/{w.current_user.me().user_name}/sdk-{secrets.token_hex(4)}"
    w.workspace.upload(f"{base}/x", b"print(1)", format=ImportFormat.SOURCE, language=Language.PYTHON)

    with pytest.raises(ResourceAlreadyExists):
        w.workspace.upload(f"{base}/x.py", b"print(2)", format=ImportFormat.AUTO)
    w.workspace.upload(f"{base}/x.py", b"print(2)", format=ImportFormat.AUTO, overwrite=True)
    assert w.workspace.get_status(f"{base}/x.py").object_type == ObjectType.FILE
    with pytest.raises(NotFound):
        w.workspace.get_status(f"{base}/x")
    w.workspace.upload(f"{base}/x", b"print(3)", format=ImportFormat.SOURCE, language=Language.PYTHON,
                       overwrite=True)

    assert w.workspace.get_status(f"{base}/x").object_type == ObjectType.NOTEBOOK
    assert w.workspace.download(f"{base}/x").read() == b"# Databricks notebook source\nprint(3)"
    w.workspace.delete(base, recursive=True)


def test_a_notebook_uploaded_through_the_sdk_runs_as_a_notebook_task(server):
    w = server.client()
    path = f"/Workspace/Users/{w.current_user.me().user_name}/run-{secrets.token_hex(4)}/nb"
    w.workspace.upload(path, NOTEBOOK, format=ImportFormat.SOURCE, language=Language.PYTHON)

    run = w.jobs.submit(run_name="workspace notebook", tasks=[
        jobs.SubmitTask(task_key="nb", notebook_task=jobs.NotebookTask(notebook_path=path))]).result(timeout=WAIT)

    assert run.state.result_state == jobs.RunResultState.SUCCESS, run.state.state_message
    output = w.jobs.get_run_output(run.tasks[0].run_id)
    assert "from the workspace" in (output.logs or "")


def test_of_concurrent_cli_creates_of_one_lock_file_exactly_one_wins(server):
    w = server.client()
    lock = f"Workspace/Users/{w.current_user.me().user_name}/.bundle/race-{secrets.token_hex(4)}/deploy.lock"
    headers = {"Authorization": f"Bearer {server.token}"}

    def create(n):
        return requests.post(f"{server.url}/api/2.0/workspace-files/import-file/{lock}?overwrite=false",
                             data=f'{{"ID": "{n}"}}'.encode(), headers=headers, timeout=60)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(create, range(8)))

    assert sorted(a.status_code for a in answers) == [200] + [409] * 7
    winner = next(n for n, a in enumerate(answers) if a.status_code == 200)
    assert w.workspace.download("/" + lock).read() == f'{{"ID": "{winner}"}}'.encode()
    assert {a.json()["error_code"] for a in answers if a.status_code == 409} == {"RESOURCE_ALREADY_EXISTS"}
