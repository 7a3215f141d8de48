"""The Workspace API (api/workspace.py, workspace/): import in JSON, multipart and raw bodies,
export, mkdirs, delete, get-status and list; overwrite rules and the exclusive create the bundle
deploy lock relies on; who may write where; paths that try to leave the root; the size limit."""

import base64
import json
import os

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile

from api.urls import urlpatterns

from audit.models import AuditEvent
from runs.attempt_credentials import run_as_token
from runs.executors.files import TaskFiles
from runs.executors.notebook import _resolve_notebook_path
from runs.executors.workspace_paths import Roots
from runs.models import TaskRun
from tests.api.conftest import client_for, create_job, make_user
from workspace import store
from workspace.rules import MAX_IMPORT_BYTES

NOTEBOOK = b"# Databricks notebook source\nprint('hi')\n"


@pytest.fixture
def root(tmp_path, settings):
    roots = Roots(tmp_path / "Volumes", tmp_path / "Workspace", tmp_path / "dbfs")
    for directory in (roots.volumes, roots.workspace, roots.dbfs):
        os.makedirs(directory)
    settings.LAKEFLOW_FS_ROOTS = roots
    return tmp_path / "Workspace"


class Workspace:
    """Calls of one caller, paths relative to /api/2.0/."""

    def __init__(self, client, token):
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    def post(self, route, body):
        return self.client.post(f"/api/2.0/{route}", json.dumps(body), content_type="application/json",
                                headers=self.headers)

    def get(self, route, **query):
        return self.client.get(f"/api/2.0/{route}", query, headers=self.headers)

    def put(self, path, content, **fields):
        return self.post("workspace/import", {"path": path, "content": base64.b64encode(content).decode(), **fields})

    def upload(self, path, content, **fields):
        """As the SDK's w.workspace.upload: a multipart form with a `content` file part."""
        form = {"path": path, "content": SimpleUploadedFile("content", content), **fields}
        return self.client.post("/api/2.0/workspace/import", form, headers=self.headers)

    def import_file(self, path, content, overwrite=False):
        return self.client.post(f"/api/2.0/workspace-files/import-file/{path.lstrip('/')}"
                                f"?overwrite={'true' if overwrite else 'false'}", content,
                                content_type="application/octet-stream", headers=self.headers)

    def download(self, path, **query):
        response = self.get("workspace/export", path=path, direct_download="true", **query)
        assert response.status_code == 200, response.content[:500]
        return response.content

    def status(self, path):
        return self.get("workspace/get-status", path=path)


def ok(response):
    assert response.status_code == 200, response.content.decode()[:1000]
    return response.json()


def refused(response, status, code):
    assert response.status_code == status, response.content.decode()[:1000]
    assert response.json()["error_code"] == code
    return response.json()["message"]


@pytest.fixture
def alice(db):
    return make_user("alice")


@pytest.fixture
def ws(client, alice, root):
    return Workspace(client, client_for(client, alice).token)


@pytest.fixture
def bob_ws(db, client, root):
    return Workspace(client, client_for(client, make_user("bob")).token)


@pytest.fixture
def admin_ws(db, client, root):
    return Workspace(client, client_for(client, make_user("root", is_superuser=True)).token)


# --- import and export -------------------------------------------------------------------------


def test_a_file_imported_as_json_is_exported_as_base64_and_as_raw_bytes(ws, root):
    ok(ws.put("/Users/alice/data/a.txt", b"hello\n", format="AUTO"))

    assert (root / "Users" / "alice" / "data" / "a.txt").read_bytes() == b"hello\n"
    exported = ok(ws.get("workspace/export", path="/Workspace/Users/alice/data/a.txt"))
    assert base64.b64decode(exported["content"]) == b"hello\n"
    assert ws.download("/Users/alice/data/a.txt") == b"hello\n"
    status = ok(ws.status("/Users/alice/data/a.txt"))
    assert (status["object_type"], status["path"], status["size"]) == ("FILE", "/Users/alice/data/a.txt", 6)
    assert isinstance(status["object_id"], int) and status["modified_at"] > 0


def test_the_sdk_upload_form_imports_a_file_and_overwrite_replaces_it(ws, root):
    ok(ws.upload("/Workspace/Users/alice/b.bin", b"\x00\x01binary", format="AUTO"))
    assert ws.download("/Users/alice/b.bin") == b"\x00\x01binary"

    refused(ws.upload("/Users/alice/b.bin", b"second", format="AUTO"), 400, "RESOURCE_ALREADY_EXISTS")
    assert ws.download("/Users/alice/b.bin") == b"\x00\x01binary"
    ok(ws.upload("/Users/alice/b.bin", b"second", format="AUTO", overwrite="true"))
    assert ws.download("/Users/alice/b.bin") == b"second"
    assert not [n for n in os.listdir(root / "Users" / "alice") if n.startswith(".")]  # no temporary left


def test_a_source_notebook_is_stored_with_its_extension_and_found_by_a_notebook_task(ws, root):
    ok(ws.put("/Users/alice/etl", b"print('hi')\n", format="SOURCE", language="PYTHON"))

    stored = root / "Users" / "alice" / "etl.py"
    assert stored.read_bytes() == NOTEBOOK  # Databricks adds the header a source notebook lacks
    status = ok(ws.status("/Workspace/Users/alice/etl"))
    assert (status["object_type"], status["path"], status["language"]) == ("NOTEBOOK", "/Users/alice/etl", "PYTHON")
    assert ok(ws.get("workspace/get-status", path="/Users/alice/etl",
                     return_export_info="true"))["repos_export_format"] == "SOURCE"
    files = TaskFiles(workspace_root=root, fs_roots=store.settings.LAKEFLOW_FS_ROOTS)
    assert _resolve_notebook_path("/Workspace/Users/alice/etl", files) == str(stored)
    assert ws.download("/Users/alice/etl") == NOTEBOOK


def test_auto_makes_a_notebook_of_a_file_with_the_header_and_keeps_others_as_files(ws, root):
    ok(ws.put("/Users/alice/nb.py", NOTEBOOK, format="AUTO"))
    ok(ws.put("/Users/alice/lib.py", b"def f(): pass\n", format="AUTO"))

    listed = ok(ws.get("workspace/list", path="/Users/alice"))["objects"]
    assert [(o["path"], o["object_type"]) for o in listed] == [("/Users/alice/lib.py", "FILE"),
                                                             ("/Users/alice/nb", "NOTEBOOK")]


def test_overwrite_replaces_a_file_with_a_notebook_of_the_same_disk_name_and_back(ws, root):
    stored = root / "Users" / "alice" / "x.py"
    ok(ws.put("/Users/alice/x.py", b"print(1)\n", format="AUTO"))

    refused(ws.put("/Users/alice/x", b"print(2)\n", format="SOURCE", language="PYTHON"), 400,
            "RESOURCE_ALREADY_EXISTS")
    assert stored.read_bytes() == b"print(1)\n"
    ok(ws.put("/Users/alice/x", b"print(2)\n", format="SOURCE", language="PYTHON", overwrite=True))
    assert ok(ws.status("/Users/alice/x"))["object_type"] == "NOTEBOOK"

    # A bundle deploy syncs x.py with AUTO: a notebook that lost its header comes back as a file.
    refused(ws.put("/Users/alice/x.py", b"print(3)\n", format="AUTO"), 400, "RESOURCE_ALREADY_EXISTS")
    assert stored.read_bytes() == b"# Databricks notebook source\nprint(2)\n"
    ok(ws.put("/Users/alice/x.py", b"print(3)\n", format="AUTO", overwrite=True))
    assert stored.read_bytes() == b"print(3)\n"
    assert ok(ws.status("/Users/alice/x.py"))["object_type"] == "FILE"
    refused(ws.status("/Users/alice/x"), 404, "RESOURCE_DOES_NOT_EXIST")
    refused(ws.import_file("/Users/alice/x.py", b"print(4)\n"), 409, "RESOURCE_ALREADY_EXISTS")
    assert sorted(os.listdir(root / "Users" / "alice")) == ["x.py"]  # no temporary left


def test_overwrite_never_replaces_a_directory(ws, root):
    ok(ws.post("workspace/mkdirs", {"path": "/Users/alice/d.py"}))

    refused(ws.put("/Users/alice/d", b"print(1)\n", format="SOURCE", language="PYTHON", overwrite=True), 400,
            "RESOURCE_ALREADY_EXISTS")
    refused(ws.put("/Users/alice/d.py", b"print(1)\n", format="AUTO", overwrite=True), 400,
            "RESOURCE_ALREADY_EXISTS")
    assert (root / "Users" / "alice" / "d.py").is_dir()


def test_a_jupyter_notebook_exports_as_itself_and_as_databricks_source(ws, root):
    notebook = {"cells": [{"cell_type": "markdown", "source": ["# Title"]},
                          {"cell_type": "code", "source": ["x = 1\n", "print(x)"]}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    content = json.dumps(notebook).encode()
    ok(ws.upload("/Users/alice/analysis.ipynb", content, format="JUPYTER"))

    assert (root / "Users" / "alice" / "analysis.ipynb").read_bytes() == content
    assert ok(ws.status("/Users/alice/analysis"))["object_type"] == "NOTEBOOK"
    assert ws.download("/Users/alice/analysis", format="JUPYTER") == content
    assert ws.download("/Users/alice/analysis", format="SOURCE").decode() == (
        "# Databricks notebook source\n# MAGIC %md\n# MAGIC # Title\n# COMMAND ----------\nx = 1\nprint(x)\n")


def test_bad_formats_languages_and_content_are_refused_by_name(ws):
    assert "format" in refused(ws.put("/Users/alice/x", b"x", format="ZIP"), 400, "INVALID_PARAMETER_VALUE")
    assert "DBC" in refused(ws.put("/Users/alice/x", b"x", format="DBC"), 400, "INVALID_PARAMETER_VALUE")
    assert "language" in refused(ws.put("/Users/alice/x", b"x", format="SOURCE"), 400, "INVALID_PARAMETER_VALUE")
    assert "Jupyter" in refused(ws.put("/Users/alice/x", b"[]", format="JUPYTER"), 400, "INVALID_PARAMETER_VALUE")
    bad = ws.post("workspace/import", {"path": "/Users/alice/x", "content": "not base64!"})
    assert "base64" in refused(bad, 400, "INVALID_PARAMETER_VALUE")
    assert "content" in refused(ws.post("workspace/import", {"path": "/Users/alice/x"}), 400,
                                "INVALID_PARAMETER_VALUE")
    assert "path" in refused(ws.put("Users/alice/x", b"x", format="RAW"), 400, "INVALID_PARAMETER_VALUE")


def test_an_import_over_ten_megabytes_is_refused_and_one_of_ten_megabytes_is_taken(ws, root):
    # Ten megabytes in base64 is past the API's usual 10 MB body limit: this endpoint allows it.
    ok(ws.put("/Users/alice/big.bin", b"a" * MAX_IMPORT_BYTES, format="RAW"))
    assert os.path.getsize(root / "Users" / "alice" / "big.bin") == MAX_IMPORT_BYTES

    message = refused(ws.put("/Users/alice/bigger.bin", b"a" * (MAX_IMPORT_BYTES + 1), format="RAW"),
                      400, "MAX_NOTEBOOK_SIZE_EXCEEDED")
    assert "10,485,760" in message
    refused(ws.import_file("/Users/alice/bigger.bin", b"a" * (MAX_IMPORT_BYTES + 1)), 400,
            "MAX_NOTEBOOK_SIZE_EXCEEDED")
    refused(ws.upload("/Users/alice/bigger.bin", b"a" * (MAX_IMPORT_BYTES + 1), format="RAW"), 400,
            "MAX_NOTEBOOK_SIZE_EXCEEDED")
    assert not (root / "Users" / "alice" / "bigger.bin").exists()


# --- the CLI's import-file, and the exclusive create -------------------------------------------


def test_import_file_makes_the_parents_and_answers_409_for_an_existing_file(ws, root):
    path = "/Workspace/Users/alice/.bundle/demo/dev/state/deploy.lock"
    ok(ws.import_file(path, b'{"ID": "one"}'))
    assert (root / "Users/alice/.bundle/demo/dev/state/deploy.lock").read_bytes() == b'{"ID": "one"}'

    message = refused(ws.import_file(path, b'{"ID": "two"}'), 409, "RESOURCE_ALREADY_EXISTS")
    assert message == "Path (/Users/alice/.bundle/demo/dev/state/deploy.lock) already exists."
    ok(ws.import_file(path, b'{"ID": "three"}', overwrite=True))
    assert ws.download(path) == b'{"ID": "three"}'


def test_of_two_racing_creates_of_one_new_path_exactly_one_wins(ws, root, monkeypatch):
    # The first import passes every check, then the second runs whole before the first links its
    # file into place: the first must then fail, and the file hold the second's content.
    real_write = store.write_temporary
    raced = []

    def write_then_let_the_rival_in(directory, content):
        temporary = real_write(directory, content)
        if content == b"first":
            raced.append(ws.import_file("/Users/alice/lock/deploy.lock", b"rival"))
        return temporary

    monkeypatch.setattr(store, "write_temporary", write_then_let_the_rival_in)
    first = ws.import_file("/Users/alice/lock/deploy.lock", b"first")

    assert raced[0].status_code == 200
    refused(first, 409, "RESOURCE_ALREADY_EXISTS")
    assert (root / "Users/alice/lock/deploy.lock").read_bytes() == b"rival"
    assert os.listdir(root / "Users/alice/lock") == ["deploy.lock"]  # the loser's temporary is gone


# --- directories ------------------------------------------------------------------------------


def test_mkdirs_list_and_delete_follow_databricks(ws, root):
    ok(ws.post("workspace/mkdirs", {"path": "/Workspace/Users/alice/a/b"}))
    ok(ws.post("workspace/mkdirs", {"path": "/Users/alice/a/b"}))  # again: nothing to do
    ok(ws.put("/Users/alice/a/b/f.txt", b"x", format="AUTO"))
    assert ok(ws.status("/Users/alice/a"))["object_type"] == "DIRECTORY"
    assert [o["path"] for o in ok(ws.get("workspace/list", path="/Users/alice/a"))["objects"]] == ["/Users/alice/a/b"]
    assert [o["path"] for o in ok(ws.get("workspace/list", path="/Users/alice/a/b/f.txt"))["objects"]] == [
        "/Users/alice/a/b/f.txt"]  # a file lists as itself
    refused(ws.post("workspace/mkdirs", {"path": "/Users/alice/a/b/f.txt/c"}), 400, "RESOURCE_ALREADY_EXISTS")

    message = refused(ws.post("workspace/delete", {"path": "/Users/alice/a"}), 400, "DIRECTORY_NOT_EMPTY")
    assert "/Users/alice/a" in message and (root / "Users/alice/a/b/f.txt").exists()
    ok(ws.post("workspace/delete", {"path": "/Users/alice/a", "recursive": True}))
    assert not (root / "Users/alice/a").exists()
    refused(ws.post("workspace/delete", {"path": "/Users/alice"}), 403, "PERMISSION_DENIED")  # the home stays

    for response in (ws.status("/Users/alice/a"), ws.get("workspace/list", path="/Users/alice/a"),
                     ws.post("workspace/delete", {"path": "/Users/alice/a"}),
                     ws.get("workspace/export", path="/Users/alice/a/b/f.txt")):
        assert refused(response, 404, "RESOURCE_DOES_NOT_EXIST").startswith("Path (/Users/alice/a")


def test_deleting_a_notebook_removes_its_stored_file(ws, root):
    ok(ws.put("/Users/alice/nb", b"x = 1\n", format="SOURCE", language="PYTHON"))
    ok(ws.post("workspace/delete", {"path": "/Users/alice/nb"}))
    assert not (root / "Users/alice/nb.py").exists()


# --- paths ------------------------------------------------------------------------------------


def test_paths_that_climb_or_follow_a_link_out_of_the_root_are_refused(ws, admin_ws, root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "Users").mkdir()
    os.symlink(outside, root / "Users" / "alice")

    for response in (admin_ws.put("/Users/bob/../../etc/x", b"x", format="RAW"),
                     ws.put("/Users/alice/x.txt", b"x", format="RAW"),
                     ws.import_file("/Users/alice/y.txt", b"y"),
                     ws.status("/Users/alice"),
                     ws.get("workspace/list", path="/Users/alice")):
        refused(response, 400, "INVALID_PARAMETER_VALUE")
    assert os.listdir(outside) == []
    (root / "Shared").mkdir()
    os.symlink(outside, root / "Shared" / "out")
    assert ok(ws.get("workspace/list", path="/Shared"))["objects"] == []
    refused(admin_ws.post("workspace/delete", {"path": "/", "recursive": True}), 400, "INVALID_PARAMETER_VALUE")


# --- who may write ------------------------------------------------------------------------------


def test_users_write_their_own_folder_and_shared_and_read_everything(ws, bob_ws, root):
    ok(ws.put("/Users/alice/mine.txt", b"alice's", format="AUTO"))

    message = refused(bob_ws.put("/Users/alice/mine.txt", b"bob's", format="AUTO", overwrite=True), 403,
                      "PERMISSION_DENIED")
    assert message.startswith("bob may change only /Workspace/Users/bob/ and /Workspace/Shared/")
    refused(bob_ws.post("workspace/delete", {"path": "/Users/alice/mine.txt"}), 403, "PERMISSION_DENIED")
    refused(bob_ws.post("workspace/mkdirs", {"path": "/Users/alice/x"}), 403, "PERMISSION_DENIED")
    refused(bob_ws.import_file("/Users/alice/y", b"y"), 403, "PERMISSION_DENIED")
    refused(bob_ws.post("workspace/mkdirs", {"path": "/Repos/x"}), 403, "PERMISSION_DENIED")
    assert bob_ws.download("/Users/alice/mine.txt") == b"alice's"
    ok(bob_ws.post("workspace/mkdirs", {"path": "/Users/bob"}))
    ok(bob_ws.put("/Shared/team.txt", b"bob's", format="AUTO"))
    ok(ws.put("/Shared/team.txt", b"alice's", format="AUTO", overwrite=True))
    assert (root / "Users/alice/mine.txt").read_bytes() == b"alice's"


def test_admins_write_anywhere(admin_ws, root):
    ok(admin_ws.put("/Repos/ops/x.txt", b"x", format="AUTO"))
    ok(admin_ws.post("workspace/delete", {"path": "/Repos", "recursive": True}))
    assert not (root / "Repos").exists()


def test_a_task_run_as_token_reads_but_never_writes(client, alice, ws, root, held_broker):
    ok(ws.put("/Users/alice/code.py", b"print(1)\n", format="AUTO"))
    alice.is_superuser = True  # even an admin's task may not rewrite code
    alice.save()
    run_id = client_for(client, alice).post_ok("jobs/run-now", {"job_id": create_job(client_for(client, alice))})["run_id"]
    task = Workspace(client, run_as_token(TaskRun.objects.get(run_id=run_id).id))

    assert task.download("/Users/alice/code.py") == b"print(1)\n"
    message = refused(task.put("/Users/alice/code.py", b"evil", format="AUTO", overwrite=True), 403,
                      "PERMISSION_DENIED")
    assert "run-as token" in message
    refused(task.import_file("/Users/alice/code.py", b"evil", overwrite=True), 403, "PERMISSION_DENIED")
    refused(task.post("workspace/delete", {"path": "/Users/alice/code.py"}), 403, "PERMISSION_DENIED")
    refused(task.post("workspace/mkdirs", {"path": "/Users/alice/x"}), 403, "PERMISSION_DENIED")
    assert (root / "Users/alice/code.py").read_bytes() == b"print(1)\n"


def test_writes_are_audited_with_the_content_as_its_size(ws, root):
    ok(ws.put("/Users/alice/a.txt", b"x" * 3000, format="AUTO"))
    ok(ws.post("workspace/mkdirs", {"path": "/Users/alice/d"}))
    ok(ws.upload("/Users/alice/b.txt", b"form", format="AUTO"))
    ok(ws.import_file("/Users/alice/c.txt", b"raw"))
    ok(ws.post("workspace/delete", {"path": "/Users/alice/d"}))

    events = list(AuditEvent.objects.order_by("id").values_list("service_name", "action_name", "request_params"))
    assert [(service, action) for service, action, _ in events] == [
        ("workspace", "import"), ("workspace", "mkdirs"), ("workspace", "import"), ("workspace", "import"),
        ("workspace", "delete")]
    assert events[0][2]["path"] == "/Users/alice/a.txt" and events[0][2]["content"] == "[4,000 characters of content]"
    assert events[2][2]["path"] == "/Users/alice/b.txt" and "content" not in events[2][2]


def test_the_openapi_document_has_every_workspace_endpoint():
    document = yaml.safe_load(open("api/openapi-workspace.yaml"))
    served = {"/" + str(p.pattern).replace("<path:file_path>", "{path}") for p in urlpatterns
              if str(p.pattern).startswith(("api/2.0/workspace/", "api/2.0/workspace-files/"))}
    assert served == set(document["paths"]) and len(served) == 7
