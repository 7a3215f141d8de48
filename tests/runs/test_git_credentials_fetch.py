"""A repository behind HTTP basic authentication (git's own http-backend, served in a thread): the
worker fetches it with the run-as user's Git credential for the job's provider, and never shows
the token; without a credential the task fails with git's message."""

import base64
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from runs.admission import create_run
from runs.engine.states import RunResultState as R
from runs.models import TaskRun
from tests.git_repos import SCRIPT, make_repository
from tests.runs.conftest import make_job
from vault.git_credentials import create_credential

TOKEN = "glpat-example-token-42"


@pytest.fixture(autouse=True)
def own_task_home(tmp_path, settings):
    settings.LAKEFLOW_TASK_HOME = tmp_path / "task-home"


@pytest.fixture
def served(tmp_path):
    """(repository, URL) of a bare repository that answers only user "octo" with TOKEN."""
    repo = make_repository(tmp_path / "repo")
    repo.first = repo.commit({"data.txt": "private\n", "jobs/run.py": SCRIPT})
    expected = "Basic " + base64.b64encode(f"octo:{TOKEN}".encode()).decode()

    class GitOverHttp(BaseHTTPRequestHandler):
        def do_GET(self):
            self.serve()

        def do_POST(self):
            self.serve()

        def serve(self):
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            env = {**repo.env, "GIT_PROJECT_ROOT": str(repo.bare.parent), "GIT_HTTP_EXPORT_ALL": "1",
                   "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
                   "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
                   "REMOTE_USER": "octo", "REMOTE_ADDR": "127.0.0.1",
                   "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", "")}
            out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
            head, _, content = out.partition(b"\r\n\r\n")
            headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n") if ": " in line)
            self.send_response(int(headers.pop("Status", "200").split()[0]))
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), GitOverHttp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield repo, f"http://127.0.0.1:{server.server_address[1]}/{repo.bare.name}"
    server.shutdown()
    server.server_close()


def run_as(user, url):
    job = make_job(user, [{"task_key": "py", "spark_python_task": {"python_file": "jobs/run.py"}}],
                   git_source={"git_url": url, "git_provider": "gitLab", "git_branch": "main"})
    run, _ = create_run(job)
    run.refresh_from_db()
    return run, TaskRun.objects.get(run=run, task_key="py", is_current=True)


def test_the_run_as_users_credential_fetches_a_private_repository(alice, served):
    repo, url = served
    create_credential(alice, "gitLab", token=TOKEN, git_username="octo")

    run, attempt = run_as(alice, url)

    assert attempt.result_state == R.SUCCESS, attempt.state_message
    assert "script sees private" in Path(attempt.log_path).read_text()
    assert run.git_commit == repo.first
    setup_log = Path(attempt.log_path).with_name("setup.log").read_text()
    assert TOKEN not in setup_log and "git fetch" in setup_log


def test_without_a_credential_the_task_fails_with_gits_message(alice, served):
    _, url = served
    bob = get_user_model().objects.create_user("bob", password="x")
    create_credential(bob, "gitLab", token=TOKEN, git_username="octo")  # bob's is not alice's

    _, attempt = run_as(alice, url)

    assert attempt.result_state == R.FAILED
    assert "could not read Username" in attempt.state_message
