"""The legacy `databricks-cli` (0.18, module databricks_cli) drives a real server unchanged: its
`databricks jobs` and `databricks runs` commands, with Jobs API 2.0 (its default, the
single-task format) and with --version=2.1.

That CLI drops the port of its host (databricks-cli#578), so it reaches a server on another port
than 80/443 only through an HTTP proxy: HTTP_PROXY names the server itself, which accepts the
absolute-form requests a proxy gets (lakeflow_site/web.py), as HTTP requires of servers."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import wait_until

pytestmark = pytest.mark.e2e

CLI = shutil.which("databricks", path=str(Path(sys.executable).parent))
FINISHED = ("TERMINATED", "SKIPPED", "INTERNAL_ERROR")


@pytest.fixture
def cli(server, tmp_path):
    """Run `databricks <args>` against `server`: (exit code, stdout parsed as JSON or text, stderr)."""
    assert CLI, f"no databricks command beside {sys.executable}: pip install databricks-cli==0.18.0"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DATABRICKS_") and k.lower() not in ("http_proxy", "https_proxy", "no_proxy")}
    # HOME: a directory of the test's own, so no ~/.databrickscfg of the machine is read.
    env.update(HOME=str(tmp_path), DATABRICKS_HOST=server.url, DATABRICKS_TOKEN=server.token,
               HTTP_PROXY=server.url, NO_PROXY="")

    def run(*args, ok=True):
        done = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=60)
        if ok:
            assert done.returncode == 0, f"databricks {' '.join(args)}: {done.stdout} {done.stderr}"
        try:
            out = json.loads(done.stdout)
        except ValueError:
            out = done.stdout
        return done.returncode, out, done.stderr

    run.tmp_path = tmp_path
    return run


def json_file(tmp_path, name, body):
    path = tmp_path / name
    path.write_text(json.dumps(body))
    return str(path)


def finished_run(cli, run_id, *version):
    """runs get, polled until the run has finished (deadline-bound)."""
    def done():
        run = cli("runs", "get", "--run-id", str(run_id), *version)[1]
        return run if run["state"]["life_cycle_state"] in FINISHED else None
    return wait_until(done, timeout=90, interval=0.3, what=f"run {run_id} to finish")


def test_the_legacy_cli_manages_a_single_task_job_with_jobs_api_2_0(server, cli):
    ok_py = server.script("ok.py")
    job = {"name": "legacy cli nightly", "spark_python_task": {"python_file": ok_py, "parameters": ["stored"]},
           "existing_cluster_id": "0923-164208-meows279", "max_retries": 1, "timeout_seconds": 600}

    code, created, warning = cli("jobs", "create", "--json-file", json_file(cli.tmp_path, "job.json", job))
    job_id = created["job_id"]
    assert "Jobs API 2.0" in warning  # the CLI's own notice that it speaks 2.0 by default

    table = cli("jobs", "list")[1]
    assert f"{job_id}  legacy cli nightly" in table.splitlines()
    listed = cli("jobs", "list", "--output", "JSON")[1]["jobs"]
    assert next(j for j in listed if j["job_id"] == job_id)["settings"]["spark_python_task"]["python_file"] == ok_py

    settings = cli("jobs", "get", "--job-id", str(job_id))[1]["settings"]
    assert "tasks" not in settings and settings["format"] == "SINGLE_TASK"
    assert (settings["existing_cluster_id"], settings["max_retries"]) == ("0923-164208-meows279", 1)

    run_id = cli("jobs", "run-now", "--job-id", str(job_id), "--python-params", '["from", "the cli"]')[1]["run_id"]
    run = finished_run(cli, run_id)
    assert run["state"]["result_state"] == "SUCCESS"
    assert run["task"] == {"spark_python_task": {"python_file": ok_py, "parameters": ["stored"]}}
    assert run["overriding_parameters"] == {"python_params": ["from", "the cli"]}
    # A single-task run has its output under its own run_id in 2.0.
    assert "ok from the cli" in cli("runs", "get-output", "--run-id", str(run_id))[1]["logs"]
    runs = cli("runs", "list", "--job-id", str(job_id), "--output", "JSON")[1]["runs"]
    assert [(r["run_id"], r["state"]["result_state"]) for r in runs] == [(run_id, "SUCCESS")]

    cli("jobs", "reset", "--job-id", str(job_id), "--json",
        json.dumps({"name": "legacy cli renamed", "spark_python_task": {"python_file": ok_py}}))
    assert cli("jobs", "get", "--job-id", str(job_id))[1]["settings"]["name"] == "legacy cli renamed"

    cli("jobs", "delete", "--job-id", str(job_id))
    code, out, _ = cli("jobs", "get", "--job-id", str(job_id), ok=False)
    assert code == 1 and "RESOURCE_DOES_NOT_EXIST" in out


def test_the_legacy_cli_manages_a_multi_task_job_with_jobs_api_2_1(server, cli):
    ok_py = server.script("ok.py")
    job = {"name": "legacy cli etl", "tasks": [
        {"task_key": "extract", "spark_python_task": {"python_file": ok_py, "parameters": ["extract"]}},
        {"task_key": "load", "depends_on": [{"task_key": "extract"}],
         "spark_python_task": {"python_file": ok_py, "parameters": ["load"]}},
    ]}

    code, created, warning = cli("jobs", "create", "--version=2.1", "--json-file",
                                 json_file(cli.tmp_path, "etl.json", job))
    job_id = created["job_id"]
    assert "WARN" not in warning  # an explicit --version silences it

    assert f"{job_id}  legacy cli etl" in cli("jobs", "list", "--version=2.1")[1].splitlines()
    listed = cli("jobs", "list", "--version=2.1", "--name", "legacy cli etl", "--output", "JSON")[1]["jobs"]
    assert [j["job_id"] for j in listed] == [job_id]
    got = cli("jobs", "get", "--job-id", str(job_id), "--version=2.1")[1]
    assert [t["task_key"] for t in got["settings"]["tasks"]] == ["extract", "load"]

    run_id = cli("jobs", "run-now", "--job-id", str(job_id), "--version=2.1",
                 "--python-params", '["overridden"]')[1]["run_id"]
    run = finished_run(cli, run_id, "--version=2.1")
    assert run["state"]["result_state"] == "SUCCESS"
    assert "task" not in run  # 2.1 has no single-task shape
    load = next(t for t in run["tasks"] if t["task_key"] == "load")
    output = cli("runs", "get-output", "--run-id", str(load["run_id"]), "--version=2.1")[1]
    assert "ok overridden" in output["logs"]
    runs = cli("runs", "list", "--job-id", str(job_id), "--version=2.1", "--output", "JSON")[1]["runs"]
    assert [r["run_id"] for r in runs] == [run_id]

    cli("jobs", "reset", "--job-id", str(job_id), "--version=2.1", "--json",
        json.dumps({"name": "legacy cli etl", "tasks": job["tasks"][:1]}))
    assert len(cli("jobs", "get", "--job-id", str(job_id), "--version=2.1")[1]["settings"]["tasks"]) == 1
    cli("jobs", "delete", "--job-id", str(job_id), "--version=2.1")
    assert cli("jobs", "get", "--job-id", str(job_id), "--version=2.1", ok=False)[0] == 1


@pytest.mark.parametrize("version", ["2.0", "2.1"])
def test_the_legacy_cli_submits_and_cancels_one_time_runs(server, cli, version):
    marker = cli.tmp_path / "started"
    sleeper = {"spark_python_task": {"python_file": server.script("sleeper.py"),
                                     "parameters": [str(cli.tmp_path / "pid"), str(marker)]}}
    body = ({"run_name": "legacy sleeper", **sleeper} if version == "2.0"
            else {"run_name": "legacy sleeper", "tasks": [{"task_key": "sleep", **sleeper}]})

    run_id = cli("runs", "submit", f"--version={version}", "--json-file",
                 json_file(cli.tmp_path, "submit.json", body))[1]["run_id"]
    wait_until(marker.exists, timeout=60, what="the one-time run's task to start")
    running = cli("runs", "get", "--run-id", str(run_id), f"--version={version}")[1]
    listed = cli("runs", "list", "--job-id", str(running["job_id"]), f"--version={version}", "--output", "JSON")[1]
    assert [(r["run_id"], r["state"]["life_cycle_state"]) for r in listed["runs"]] == [(run_id, "RUNNING")]
    cli("runs", "cancel", "--run-id", str(run_id), f"--version={version}")

    run = finished_run(cli, run_id, f"--version={version}")
    assert (run["run_type"], run["state"]["result_state"]) == ("SUBMIT_RUN", "CANCELED")
    if version == "2.0":
        assert run["task"]["spark_python_task"] == sleeper["spark_python_task"]


def test_the_legacy_cli_gets_a_400_naming_the_field_for_a_job_in_both_formats(cli):
    body = {"name": "legacy cli both", "notebook_task": {"notebook_path": "/n"},
            "tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/n"}}]}

    code, out, _ = cli("jobs", "create", "--json-file", json_file(cli.tmp_path, "both.json", body), ok=False)

    assert code == 1 and "INVALID_PARAMETER_VALUE" in out and "notebook_task" in out
    names = [j["settings"]["name"] for j in cli("jobs", "list", "--output", "JSON")[1]["jobs"]]
    assert "legacy cli both" not in names


def test_a_2_0_update_changes_the_task_level_fields_of_a_job_the_legacy_cli_made(server, cli):
    # The legacy CLI has no `jobs update`; its 2.0 clients (and scripts) call the endpoint directly.
    body = {"name": "legacy cli update", "spark_python_task": {"python_file": "/x.py"}, "max_retries": 1}
    job_id = cli("jobs", "create", "--json-file", json_file(cli.tmp_path, "update.json", body))[1]["job_id"]

    updated = requests.post(f"{server.url}/api/2.0/jobs/update", timeout=30,
                            headers={"Authorization": f"Bearer {server.token}"},
                            json={"job_id": job_id, "new_settings": {"max_retries": 3, "retry_on_timeout": True}})

    assert updated.status_code == 200, updated.text
    shown = cli("jobs", "get", "--job-id", str(job_id))[1]["settings"]
    assert shown["max_retries"] == 3 and shown["retry_on_timeout"] is True
    assert shown["spark_python_task"] == {"python_file": "/x.py"}


def test_the_server_takes_the_host_of_an_absolute_form_request_and_still_checks_it(server):
    headers = {"Authorization": f"Bearer {server.token}"}
    through = {"http": server.url}  # the server as the proxy: requests sends the absolute form

    allowed = requests.get("http://127.0.0.1/api/2.0/jobs/list", headers=headers, proxies=through, timeout=10)
    foreign = requests.get("http://evil.example/api/2.0/jobs/list", headers=headers, proxies=through, timeout=10)

    assert allowed.status_code == 200 and "jobs" in allowed.json()
    assert foreign.status_code == 400  # ALLOWED_HOSTS applies to the host named in the request target
