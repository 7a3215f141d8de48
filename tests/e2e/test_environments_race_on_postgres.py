"""Two workers of a Postgres + Redis cluster with two qcluster nodes start tasks with the same
environment spec at the same moment: one builds it, the other waits for that build and uses it.

The overlap is forced, not hoped for: the environment installs from a package index this test
serves, which holds its answer until the second worker's setup log says it is waiting for the
first one's build. The index is asked once: the environment was built once."""

import re
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest
from databricks.sdk.service import compute, jobs

from tests.e2e.conftest import wait_until
from tests.wheels import make_wheel

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


class HeldIndex:
    """A PEP 503 index of one wheel whose project page waits for `release`."""

    def __init__(self, wheel):
        self.wheel, self.release, self.page_requests = wheel, threading.Event(), 0
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self):  # uv asks for the wheel's size and range support first
                self.do_GET(with_body=False)

            def do_GET(self, with_body=True):
                if self.path.rstrip("/") == "/simple/lakeflow-demo":
                    index.page_requests += 1
                    index.release.wait(timeout=120)
                    body = f'<a href="/files/{index.wheel.name}">{index.wheel.name}</a>'.encode()
                    kind = "text/html"
                elif self.path == f"/files/{index.wheel.name}":
                    body, kind = index.wheel.read_bytes(), "application/octet-stream"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/simple"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.http.shutdown()


def setup_logs(server, run_id):
    """This run's setup logs only: the server is shared with other tests that build environments."""
    attempts = Path(f"{server.env['LAKEFLOW_HOME']}-tasks") / "attempts"
    return [path.read_text() for path in attempts.glob(f"{run_id}/*/setup.log")]


def test_two_workers_starting_tasks_of_one_spec_build_its_environment_once(shared_two_node_server, tmp_path):
    server = shared_two_node_server
    w = server.client()
    index = HeldIndex(make_wheel(tmp_path))
    try:
        (server.workspace / "show.py").write_text("import lakeflow_demo\nprint(lakeflow_demo.VALUE)\n")
        spec = compute.Environment(environment_version="4",
                                   dependencies=[f"--index-url {index.url}", "lakeflow-demo==1.0"])
        task = lambda key: jobs.Task(task_key=key, environment_key="shared",  # noqa: E731
                                     spark_python_task=jobs.SparkPythonTask(python_file=server.script("show.py")))
        job = w.jobs.create(name="one environment, two workers", tasks=[task("a"), task("b")],
                            environments=[jobs.JobEnvironment(environment_key="shared", spec=spec)])
        run_id = w.jobs.run_now(job_id=job.job_id).run_id

        wait_until(lambda: any("Waiting for" in log for log in setup_logs(server, run_id)), timeout=120,
                   what="the second worker to wait for the first one's build")
        index.release.set()
        run = w.jobs.wait_get_run_job_terminated_or_skipped(run_id, timeout=timedelta(minutes=4))
    finally:
        index.close()

    assert [t.state.result_state for t in run.tasks] == [jobs.RunResultState.SUCCESS] * 2, (
        [t.state.state_message for t in run.tasks], setup_logs(server, run_id))
    assert [w.jobs.get_run_output(t.run_id).logs for t in run.tasks] == ["42\n", "42\n"]
    logs = setup_logs(server, run_id)
    assert sum("built in" in log for log in logs) == 1 and sum("Waiting for" in log for log in logs) == 1
    assert index.page_requests == 1
    keys = {found.group(1) for log in logs for found in re.finditer(r"Environment (\w+) (?:built|ready) in", log)}
    assert len(keys) == 1, logs
    with psycopg.connect(server.database_url) as conn:
        rows = conn.execute("SELECT state FROM runs_taskenvironment WHERE key = %s", (keys.pop(),)).fetchall()
    assert rows == [("READY",)]
